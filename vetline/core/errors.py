"""Domain errors, mapped to HTTP once: in ``core.middleware`` for pages and in ``vetline.api``."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the business was broken; the message is shown to the user as is."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    """Also raised when the object exists but the actor may not see it: existence is not leaked."""

    status = 404
    code = "not_found"

    def __init__(self, message: str = "Not found.", **kwargs: str | None) -> None:
        super().__init__(message, **kwargs)
