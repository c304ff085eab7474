"""Domain exceptions, and the one table that maps them to the Iceberg REST error model.

Services raise these; the HTTP layer turns any of them into
``{"error": {"message", "type", "code"}}`` with the status below. The ``type`` names are the ones
Iceberg clients map to their own exceptions (PyIceberg, the Java client used by Spark, DuckDB).
"""

from __future__ import annotations


class CatalogError(Exception):
    """Base of every error the catalog reports to a client."""

    status_code: int = 500
    error_type: str = "InternalServerError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(CatalogError):
    status_code = 400
    error_type = "BadRequestException"


class Unprocessable(CatalogError):
    status_code = 422
    error_type = "UnprocessableEntityException"


class NotAuthorized(CatalogError):
    status_code = 401
    error_type = "NotAuthorizedException"


class Forbidden(CatalogError):
    status_code = 403
    error_type = "ForbiddenException"


class NotFound(CatalogError):
    status_code = 404
    error_type = "NotFoundException"


class NoSuchWarehouse(NotFound):
    error_type = "NoSuchWarehouseException"


class NoSuchNamespace(NotFound):
    error_type = "NoSuchNamespaceException"


class NoSuchTable(NotFound):
    error_type = "NoSuchTableException"


class NoSuchView(NotFound):
    error_type = "NoSuchViewException"


class AlreadyExists(CatalogError):
    status_code = 409
    error_type = "AlreadyExistsException"


class NamespaceNotEmpty(CatalogError):
    status_code = 409
    error_type = "NamespaceNotEmptyException"


class CommitFailed(CatalogError):
    status_code = 409
    error_type = "CommitFailedException"


class CommitStateUnknown(CatalogError):
    """The database connection failed after the swap was sent: it may or may not have been applied.

    The spec's answer for a commit whose outcome the server cannot tell: clients must then not
    delete the files they wrote, and load the table to see which state it is in.
    """

    status_code = 500
    error_type = "CommitStateUnknownException"


class ConcurrentCommit(CommitFailed):
    """Another commit moved the table's pointer first; the commit service retries these."""


class PayloadTooLarge(CatalogError):
    status_code = 413
    error_type = "PayloadTooLargeException"


class NotImplementedByCatalog(CatalogError):
    status_code = 406
    error_type = "UnsupportedOperationException"


class StorageUnavailable(CatalogError):
    """The object store could not be reached or refused the catalog's request."""

    status_code = 503
    error_type = "ServiceUnavailableException"


class DatabaseUnavailable(CatalogError):
    status_code = 503
    error_type = "ServiceUnavailableException"


def error_body(status_code: int, error_type: str, message: str) -> dict[str, dict[str, object]]:
    """The spec's error model."""
    return {"error": {"message": message, "type": error_type, "code": status_code}}
