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
