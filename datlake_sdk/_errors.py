"""The exceptions the SDK raises.

Everything derives from ``DatlakeError``, so one ``except DatlakeError`` catches all of them::

    DatlakeError
    ├── ConfigurationError     the client cannot be set up: no URL, half a client credential,
    │                          an unknown profile, DuckDB not installed
    ├── UnreachableError       no answer from the server after the retries (connection refused,
    │                          timeouts, DNS)
    ├── APIError               the server answered with an error status; carries its message
    │   ├── InvalidRequestError    400 / 422: the request was refused as malformed
    │   ├── AuthenticationError    401: no credentials, or wrong, revoked or expired ones
    │   ├── ForbiddenError         403: authenticated, but not granted the privilege
    │   ├── NotFoundError          404: unknown table, snapshot or job
    │   ├── ConflictError          409: the request conflicts with the current state
    │   └── ServerError            5xx (after the retries for 502/503/504)
    ├── JobFailedError         a register-snapshot job ended ``failed``; carries the job and the
    │                          server's error message
    └── JobTimeoutError        waiting for a job took longer than the given timeout

``APIError`` instances keep ``status_code``, ``error_type`` (the server's ``type``, e.g.
``NoSuchTableException``) and ``message`` (the server's message, verbatim).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datlake_sdk._models import Job


class DatlakeError(Exception):
    """Base of every error the SDK raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(DatlakeError):
    """The client lacks something it needs; the message names it and where to set it."""


class UnreachableError(DatlakeError):
    """The server could not be reached, even after retrying."""


class APIError(DatlakeError):
    """The server answered with an error status."""

    def __init__(self, message: str, *, status_code: int, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type

    def __str__(self) -> str:
        return self.message


class InvalidRequestError(APIError):
    """400 or 422: the server refused the request as malformed or unprocessable."""


class AuthenticationError(APIError):
    """401: missing, wrong, revoked or expired credentials."""


class ForbiddenError(APIError):
    """403: the caller is authenticated but lacks the privilege."""


class NotFoundError(APIError):
    """404: the table, snapshot or job does not exist (or is not visible to the caller)."""


class ConflictError(APIError):
    """409: the request conflicts with the current state of the catalog."""


class ServerError(APIError):
    """5xx: the server failed; 502/503/504 are only raised after the retries ran out."""


class JobFailedError(DatlakeError):
    """A register-snapshot job ended ``failed``; ``message`` is the server's error for it."""

    def __init__(self, job: Job) -> None:
        super().__init__(job.error or f"job {job.job_id} failed")
        self.job = job


class JobTimeoutError(DatlakeError):
    """A job did not finish within the time given to wait for it; ``job`` is its last state."""

    def __init__(self, job: Job, timeout: float) -> None:
        super().__init__(f"job {job.job_id} still {job.status} after {timeout:g}s")
        self.job = job
        self.timeout = timeout


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
}


def error_for_status(status_code: int, message: str, error_type: str | None = None) -> APIError:
    """The exception for an error response of ``status_code``."""
    if status_code in _BY_STATUS:
        cls = _BY_STATUS[status_code]
    elif status_code >= 500:
        cls = ServerError
    else:
        cls = APIError
    return cls(message, status_code=status_code, error_type=error_type)
