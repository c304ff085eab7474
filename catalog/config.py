"""Runtime configuration: one settings object, read from ``DATLAKE_*`` environment variables.

With no variables at all the catalog runs embedded: SQLite and a ``file://`` warehouse under
``./.datlake/`` and jobs in-process. Every production knob is an environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path(".datlake")
MAX_DEFAULT_WORKERS = 4  # more processes mean more database connections; set DATLAKE_WORKERS to go beyond


def _file_uri(path: Path) -> str:
    return path.resolve().as_uri()


class Settings(BaseSettings):
    """All configuration of the catalog service, the worker and the admin commands."""

    model_config = SettingsConfigDict(env_prefix="DATLAKE_", extra="ignore")

    home: Path = Field(default=DEFAULT_HOME, description="Directory for embedded-mode state (SQLite file, warehouse).")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the catalog database, e.g. postgresql+psycopg://user@127.0.0.1:5432/db. "
        "Unset: SQLite at <home>/catalog.db.",
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        description="Connections kept per process in each of its two pools (PostgreSQL): one for transactions, "
        "one in autocommit for single statements.",
    )
    database_read_pool_size: int = Field(
        default=4,
        ge=1,
        description="More connections per process (PostgreSQL) for the table lookups of loadTable, made on the "
        "event loop.",
    )
    warehouse: str | None = Field(
        default=None,
        description="Location of the default warehouse: file:///path or s3://bucket/prefix. Unset: <home>/warehouse.",
    )
    warehouse_name: str = Field(
        default="lake",
        description="Name of the default warehouse; clients pass it as `warehouse` and get it as prefix.",
    )
    s3_endpoint: str | None = Field(default=None, description="S3 endpoint URL (MinIO, SeaweedFS, ...). Unset: AWS.")
    s3_client_endpoint: str | None = Field(
        default=None,
        description="S3 endpoint handed to clients (table config, vended credentials, presigned URLs) when they "
        "reach the store at another address than the catalog does, e.g. `http://127.0.0.1:9000` next to "
        "`DATLAKE_S3_ENDPOINT=http://minio:9000` in docker compose. Unset: `DATLAKE_S3_ENDPOINT`.",
    )
    s3_access_key_id: str | None = Field(default=None, description="S3 access key the catalog itself uses.")
    s3_secret_access_key: str | None = Field(default=None, description="S3 secret key the catalog itself uses.")
    s3_region: str = Field(default="us-east-1", description="S3 region.")
    s3_path_style_access: bool = Field(default=True, description="Use path-style S3 addressing (MinIO, SeaweedFS).")
    redis_url: str | None = Field(default=None, description="Redis URL for the job queue. Unset: jobs run in-process.")
    host: str = Field(
        default="127.0.0.1", description="Address `datlake serve` (and the metrics port of `datlake worker`) binds."
    )
    port: int = Field(default=8181, description="Port `datlake serve` binds.")
    workers: int | None = Field(
        default=None,
        ge=1,
        description="Number of uvicorn worker processes for `datlake serve`. Unset: 1 on the embedded SQLite "
        "database, otherwise one per CPU core, at most 4 (each process has its own database pool).",
    )
    shutdown_timeout_seconds: int = Field(
        default=20,
        ge=1,
        description="After SIGTERM, how long `datlake serve` lets requests in flight finish (new connections are "
        "refused) and `datlake worker` its current job; then the requests are cancelled and the job goes back to "
        "the queue. Keep it below the orchestrator's kill delay (Kubernetes: 30 s).",
    )
    max_request_bytes: int = Field(default=16 * 1024 * 1024, description="Largest accepted request body.")
    metadata_cache_entries: int = Field(default=2048, ge=0, description="Parsed metadata files kept in memory.")
    idempotency_lifetime_seconds: int = Field(
        default=1800, ge=0, description="How long an Idempotency-Key outcome is remembered."
    )
    api_docs_enabled: bool = Field(
        default=True,
        description="Serve /openapi.json, Swagger UI (/docs) and ReDoc (/redoc) without authentication: they "
        "describe the API and expose no catalog data. false: none of the three.",
    )
    # --- detached mode (/api/v1) and register-snapshot jobs ---
    default_namespace: str = Field(
        default="default", description="Namespace of tables named without a dot in /api/v1 (`sales_q1`)."
    )
    register_allowed_locations: str = Field(
        default="",
        description="Comma-separated URI prefixes, besides the warehouse, whose objects may be registered "
        "as table data (e.g. s3://landing/exports/).",
    )
    job_queue: str = Field(default="datlake", description="Name of the RQ queue carrying register-snapshot jobs.")
    job_heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="How often a running job records that its worker is alive."
    )
    job_stale_seconds: float = Field(
        default=60.0, gt=0, description="A running job silent for this long is retried or failed (its worker died)."
    )
    job_max_attempts: int = Field(
        default=3,
        ge=1,
        description="Runs of a job before a dead worker or a transient failure fails it (runs a stopping worker "
        "handed back do not count).",
    )
    job_timeout_seconds: int = Field(default=3600, ge=1, description="Longest a register-snapshot job may run.")
    register_threads: int = Field(
        default=16, ge=1, description="Objects a register-snapshot job checks and reads footers of in parallel."
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port on which `datlake worker` serves its Prometheus metrics (job attempts by outcome, their "
        "durations) at /metrics, bound to DATLAKE_HOST. Unset: not served.",
    )

    log_level: str = Field(default="INFO", description="Log level of the server and worker.")
    log_format: str = Field(default="json", description="`json` (one object per line, with request ids) or `text`.")

    auth_allow_anonymous: bool = Field(
        default=False,
        description="Let callers without credentials in, with full access (development only; logged as a warning).",
    )
    auth_jwt_secret: str | None = Field(
        default=None,
        description="HS256 key that signs the catalog's access tokens. Unset: embedded mode generates one at "
        "<home>/jwt-secret; with any other database the server refuses to start.",
    )
    auth_token_ttl_seconds: int = Field(default=3600, ge=60, description="Lifetime of issued access tokens.")
    auth_jwt_issuer: str = Field(default="datlake-catalog", description="`iss` claim of issued access tokens.")
    auth_oidc_issuer: str | None = Field(
        default=None, description="Trust JWTs of this external OIDC issuer (its `iss`). Unset: no external tokens."
    )
    auth_oidc_jwks_url: str | None = Field(default=None, description="JWKS URL of the external OIDC issuer.")
    auth_oidc_audience: str | None = Field(
        default=None, description="Required `aud` of external OIDC tokens. Unset: audience not checked."
    )
    auth_oidc_principal_claim: str = Field(
        default="sub", description="Claim of an external OIDC token that names an existing principal."
    )
    # --- access delegation: vended credentials, remote signing, presigned URLs (docs/credentials.md) ---
    vending_sts_role_arn: str | None = Field(
        default=None,
        description="Role the catalog assumes (STS AssumeRole, session policy limited to one table's location, "
        "read-only for readers) to vend temporary S3 credentials. Unset: no STS vending.",
    )
    vending_sts_endpoint: str | None = Field(
        default=None, description="STS endpoint URL. Unset: the S3 endpoint (MinIO, SeaweedFS), or AWS STS."
    )
    vending_credentials_ttl_seconds: int = Field(
        default=3600, ge=900, le=43200, description="Lifetime of vended STS credentials."
    )
    vending_static_credentials: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Weaker fallback without STS: static S3 keys vended per warehouse, JSON "
        '{"<warehouse>": {"read-access-key-id", "read-secret-access-key", "write-access-key-id", '
        '"write-secret-access-key"}}. Not limited to a table; readers only ever get the read pair.',
    )
    presigned_url_max_seconds: int = Field(
        default=3600, ge=1, le=604800, description="Longest lifetime of a presigned URL (detached mode)."
    )

    @field_validator("warehouse")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def embedded(self) -> bool:
        """True when running on the built-in SQLite database."""
        return self.resolved_database_url.startswith("sqlite")

    @property
    def serve_workers(self) -> int:
        """``workers``, or the default for this deployment: one process per core pays off as soon as
        several clients call at once (the GIL serialises a single process)."""
        if self.workers is not None:
            return self.workers
        if self.embedded:
            return 1  # SQLite serialises writers; one process keeps the embedded catalog simple
        return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'catalog.db').resolve()}"

    @property
    def resolved_warehouse(self) -> str:
        if self.warehouse:
            if "://" not in self.warehouse:
                return _file_uri(Path(self.warehouse)).rstrip("/")
            return self.warehouse
        return _file_uri(self.home / "warehouse")

    @property
    def client_s3_endpoint(self) -> str | None:
        """The S3 endpoint as clients reach it."""
        return self.s3_client_endpoint or self.s3_endpoint

    def s3_properties(self) -> dict[str, str]:
        """PyIceberg FileIO properties for S3, from the catalog's own credentials."""
        props: dict[str, str] = {"s3.region": self.s3_region}
        if self.s3_endpoint:
            props["s3.endpoint"] = self.s3_endpoint
        if self.s3_access_key_id:
            props["s3.access-key-id"] = self.s3_access_key_id
        if self.s3_secret_access_key:
            props["s3.secret-access-key"] = self.s3_secret_access_key
        if self.s3_path_style_access:
            props["s3.force-virtual-addressing"] = "false"
        return props
