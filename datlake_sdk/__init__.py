"""Datlake SDK: resolve table names to URIs, register Parquet as snapshots, follow jobs.

Talks to a Datlake Catalog over HTTP only (``/api/v1``); it never imports the server. Everything
public is importable from here::

    from datlake_sdk import DatalakeClient, NotFoundError

    client = DatalakeClient()              # DATLAKE_URL, DATLAKE_API_KEY, or a profile
    uri = client.get_table_uri("sales_q1")
"""

from datlake_sdk._client import DatalakeClient, __version__, error_from_response
from datlake_sdk._config import ClientConfig, S3Settings, config_path, resolve_config, write_profile
from datlake_sdk._errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    DatlakeError,
    ForbiddenError,
    InvalidRequestError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    ServerError,
    UnreachableError,
)
from datlake_sdk._models import Job, JobStatus, Snapshot, TableInfo

__all__ = [
    "APIError",
    "AuthenticationError",
    "ClientConfig",
    "ConfigurationError",
    "ConflictError",
    "DatalakeClient",
    "DatlakeError",
    "ForbiddenError",
    "InvalidRequestError",
    "Job",
    "JobFailedError",
    "JobStatus",
    "JobTimeoutError",
    "NotFoundError",
    "S3Settings",
    "ServerError",
    "Snapshot",
    "TableInfo",
    "UnreachableError",
    "__version__",
    "config_path",
    "error_from_response",
    "resolve_config",
    "write_profile",
]
