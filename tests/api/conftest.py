from tests.snapshots.conftest import export, labelled  # noqa: F401  (shared fixtures)
