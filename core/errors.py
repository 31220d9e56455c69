"""The one error type for failures a user can fix; pages and the API turn it into a message."""


class ApplicationError(Exception):
    """A user-fixable failure: `message` is shown as is, `extra` goes into API error bodies."""

    status_code = 400

    def __init__(self, message: str, *, extra: dict | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        if status_code is not None:
            self.status_code = status_code


class PermissionDenied(ApplicationError):
    status_code = 403


class NotFound(ApplicationError):
    status_code = 404
