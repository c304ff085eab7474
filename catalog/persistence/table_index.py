"""Every table of a warehouse across all namespaces, in one query (the detached-mode table list).

The Iceberg REST API lists one namespace at a time; ``GET /api/v1/tables`` lists the whole
warehouse, filtered to what the caller may see. The filter is part of the WHERE clause so that
pages stay full and tokens stay valid after filtering.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, and_, false, or_, select, true

from catalog.persistence.schema import NAMESPACE_SEPARATOR, entities, namespaces
from catalog.persistence.store import TABLE, namespace_levels


@dataclass(frozen=True)
class TableRef:
    namespace: tuple[str, ...]
    name: str
    metadata_location: str


@dataclass(frozen=True)
class TableFilter:
    """Which tables a caller may see: all, or those in/below ``namespaces`` (keys) or named in ``tables``."""

    everything: bool
    namespaces: Collection[str] = ()
    tables: Collection[tuple[str, str]] = ()  # (namespace key, table name)


def _visible(only: TableFilter) -> ColumnElement[bool]:
    if only.everything:
        return true()
    clauses: list[ColumnElement[bool]] = []
    for key in only.namespaces:
        clauses.append(namespaces.c.name == key)
        clauses.append(namespaces.c.name.startswith(key + NAMESPACE_SEPARATOR, autoescape=True))
    for key, name in only.tables:
        clauses.append(and_(namespaces.c.name == key, entities.c.name == name))
    return or_(*clauses) if clauses else false()


class TableIndex:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list_tables(
        self, warehouse_id: int, only: TableFilter, after: tuple[str, str] | None, limit: int | None
    ) -> list[TableRef]:
        """Tables ordered by (namespace key, name), starting after ``after``; at most ``limit``."""
        query = (
            select(namespaces.c.name.label("namespace"), entities.c.name, entities.c.metadata_location)
            .join(namespaces, namespaces.c.id == entities.c.namespace_id)
            .where(namespaces.c.warehouse_id == warehouse_id, entities.c.kind == TABLE, _visible(only))
            .order_by(namespaces.c.name, entities.c.name)
        )
        if after is not None:
            key, name = after
            query = query.where(or_(namespaces.c.name > key, and_(namespaces.c.name == key, entities.c.name > name)))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [TableRef(namespace_levels(r.namespace), r.name, r.metadata_location) for r in rows]
