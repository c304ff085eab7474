"""The catalog database's tables (SQLAlchemy Core). Alembic migrations mirror this file.

A namespace's name is its levels joined by the ASCII unit separator (``\\x1f``), which is also
how the REST spec encodes multi-level namespaces in URLs; ``parent`` holds the name of the
namespace one level up ('' at the top) so children are listed with one indexed query.
Tables and views share one ``entities`` table because they share one name space: a view
cannot take a table's name.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMESPACE_SEPARATOR = "\x1f"

metadata = MetaData()

warehouses = Table(
    "warehouses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("location", Text, nullable=False),
    Column("properties", JSON, nullable=False, default=dict),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

namespaces = Table(
    "namespaces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("warehouse_id", Integer, ForeignKey("warehouses.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("parent", Text, nullable=False),
    Column("properties", JSON, nullable=False, default=dict),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("warehouse_id", "name", name="uq_namespaces_warehouse_name"),
    Index("ix_namespaces_parent", "warehouse_id", "parent", "name"),
)

entities = Table(
    "entities",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("warehouse_id", Integer, ForeignKey("warehouses.id", ondelete="CASCADE"), nullable=False),
    Column("namespace_id", Integer, ForeignKey("namespaces.id"), nullable=False),
    Column("name", String(1024), nullable=False),
    Column("kind", String(16), nullable=False),  # "table" | "view"
    Column("metadata_location", Text, nullable=False),
    Column("previous_metadata_location", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("namespace_id", "name", name="uq_entities_namespace_name"),
    Index("ix_entities_listing", "namespace_id", "kind", "name"),
)

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("operation", Text, nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
)

# --- identity and access control (RBAC) ---------------------------------------------------------

principals = Table(
    "principals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("type", String(16), nullable=False),  # "user" | "service"
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# OAuth2 client credentials and API keys. Only a SHA-256 of each secret is stored; secrets are
# 256-bit random strings, so a slow password hash would add latency without adding safety.
credentials = Table(
    "credentials",
    metadata,
    Column("id", String(64), primary_key=True),  # key_id (API key) or client_id (OAuth2 client)
    Column("principal_id", Integer, ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # "client" | "api_key"
    Column("secret_hash", String(128), nullable=False),
    Column("prefix", String(32), nullable=False),  # first characters of the secret, for listing
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_credentials_principal", "principal_id"),
)

roles = Table(
    "roles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

role_members = Table(
    "role_members",
    metadata,
    Column("role_id", Integer, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    Column("principal_id", Integer, ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_role_members_principal", "principal_id"),
)

# A grant of one privilege on one securable. ``securable_name`` is '' for a catalog, the
# namespace key for a namespace, and the namespace key + separator + name for a table or view.
grants = Table(
    "grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("role_id", Integer, ForeignKey("roles.id", ondelete="CASCADE"), nullable=False),
    Column("privilege", String(32), nullable=False),
    Column("securable_type", String(16), nullable=False),  # catalog | namespace | table | view
    Column("warehouse_id", Integer, ForeignKey("warehouses.id", ondelete="CASCADE"), nullable=False),
    Column("securable_name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint(
        "role_id", "privilege", "securable_type", "warehouse_id", "securable_name", name="uq_grants_unique"
    ),
    Index("ix_grants_role", "role_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("principal", String(255), nullable=True),
    Column("action", String(64), nullable=False),
    Column("securable", Text, nullable=False),
    Column("outcome", String(16), nullable=False),  # allowed | denied | failed
    Column("status_code", Integer, nullable=True),
    Column("request_id", String(64), nullable=True),
    Index("ix_audit_log_at", "at"),
)

# --- detached mode: register-snapshot jobs -------------------------------------------------------

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("warehouse_id", Integer, ForeignKey("warehouses.id", ondelete="CASCADE"), nullable=False),
    Column("table_name", Text, nullable=False),  # as the caller named it (bare or dotted)
    Column("namespace", Text, nullable=False),  # namespace key
    Column("table", String(1024), nullable=False),
    Column("uri", Text, nullable=False),
    Column("format", String(16), nullable=False),
    Column("mode", String(16), nullable=False),  # overwrite | append
    Column("schema", JSON, nullable=True),
    Column("status", String(16), nullable=False),  # queued | running | completed | failed
    Column("snapshot_id", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Column("submitted_by", String(255), nullable=True),
    Column("idempotency_key", String(255), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    # Attempts a stopping worker gave back unfinished: they do not count against the job's limit.
    Column("handbacks", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("submitted_by", "idempotency_key", name="uq_jobs_idempotency"),
    Index("ix_jobs_submitter", "submitted_by", "created_at"),
    Index("ix_jobs_status", "status"),
)
