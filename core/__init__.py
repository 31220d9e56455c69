"""Cross-app plumbing: the application error type and its translation for the API."""
