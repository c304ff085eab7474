"""All SQL of the catalog: warehouses, namespaces, tables/views and idempotency records.

Every method opens one short transaction. The only write to a table pointer is
:meth:`CatalogStore.swap_pointers`, a compare-and-swap on ``metadata_location`` that the commit
service calls after the new metadata file is already written, so no object-store I/O ever
happens while the database holds a lock.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Collection, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, any_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from catalog import errors
from catalog.persistence.database import read_engine
from catalog.persistence.schema import (
    NAMESPACE_SEPARATOR,
    entities,
    grants,
    idempotency_records,
    namespaces,
    warehouses,
)

Namespace = tuple[str, ...]

TABLE = "table"
VIEW = "view"


@dataclass(frozen=True)
class Warehouse:
    id: int
    name: str
    location: str
    properties: dict[str, str]


@dataclass(frozen=True)
class NamespaceRow:
    id: int
    levels: Namespace
    properties: dict[str, str]


@dataclass(frozen=True)
class EntityRow:
    id: int
    namespace: Namespace
    name: str
    kind: str
    metadata_location: str
    namespace_id: int


@dataclass(frozen=True)
class PointerSwap:
    """Move one entity from ``expected`` to ``new`` metadata, or create it when ``entity_id`` is None.

    A move applies only while the entity still has ``namespace_id`` and ``name`` (those it was
    read with): a commit racing a rename loses, as it would against a concurrent commit, and its
    retry finds no table under the old name, instead of changing the table that now has another.
    """

    entity_id: int | None
    expected: str | None
    new: str
    namespace_id: int | None = None
    name: str | None = None
    kind: str = TABLE


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_token: str | None


def namespace_key(levels: Namespace) -> str:
    return NAMESPACE_SEPARATOR.join(levels)


def namespace_levels(key: str) -> Namespace:
    return tuple(key.split(NAMESPACE_SEPARATOR)) if key else ()


def encode_page_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode()


def decode_page_token(token: str | None) -> str | None:
    if not token:
        return None
    try:
        value = base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.BadRequest(f"Invalid pageToken: {token!r}") from exc
    # a listing position is a name: never empty, no control characters but the namespace separator
    if not value or any(ord(ch) < 0x20 and ch != NAMESPACE_SEPARATOR for ch in value):
        raise errors.BadRequest(f"Invalid pageToken: {token!r}")
    return value


def _now() -> datetime:
    return datetime.now(UTC)


# The loadTable/commit lookup, built once: constructing the select on every call costs ~60 µs of CPU.
ENTITY_BY_NAME = (
    select(entities.c.id, entities.c.kind, entities.c.metadata_location, entities.c.namespace_id)
    .join(namespaces, namespaces.c.id == entities.c.namespace_id)
    .where(
        namespaces.c.warehouse_id == bindparam("warehouse_id"),
        namespaces.c.name == bindparam("namespace"),
        entities.c.name == bindparam("name"),
    )
)

# The compare-and-swap of every commit, also built once.
_SWAP_POINTER = (
    update(entities)
    .where(
        entities.c.id == bindparam("entity_id"),
        entities.c.metadata_location == bindparam("expected"),
        entities.c.namespace_id == bindparam("entity_namespace_id"),
        entities.c.name == bindparam("entity_name"),
    )
    .values(
        metadata_location=bindparam("new"),
        previous_metadata_location=bindparam("expected"),
        updated_at=bindparam("now"),
    )
)


class CatalogStore:
    """Repository over the catalog database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = read_engine(engine)  # single-statement reads: no BEGIN/ROLLBACK round trips
        self._warehouses: dict[str, Warehouse] = {}

    # --- plumbing -----------------------------------------------------------------------------

    def ping(self) -> None:
        with self._reader.connect() as connection:
            connection.execute(select(1))

    # --- warehouses ---------------------------------------------------------------------------

    def ensure_warehouse(self, name: str, location: str, properties: dict[str, str] | None = None) -> Warehouse:
        """Create the warehouse, or bring its location in line with the configuration."""
        with self.engine.begin() as conn:
            row = conn.execute(select(warehouses).where(warehouses.c.name == name)).mappings().first()
            if row is None:
                try:
                    conn.execute(
                        insert(warehouses).values(
                            name=name, location=location, properties=properties or {}, created_at=_now()
                        )
                    )
                except IntegrityError:  # another replica created it at the same moment
                    pass
            elif row["location"] != location or (properties is not None and row["properties"] != properties):
                conn.execute(
                    update(warehouses)
                    .where(warehouses.c.name == name)
                    .values(location=location, properties=properties if properties is not None else row["properties"])
                )
        self._warehouses.pop(name, None)
        warehouse = self.get_warehouse(name)
        assert warehouse is not None
        return warehouse

    def cached_warehouse(self, name: str) -> Warehouse | None:
        """The warehouse if already known to this process (no database access)."""
        return self._warehouses.get(name)

    def get_warehouse(self, name: str) -> Warehouse | None:
        cached = self._warehouses.get(name)
        if cached is not None:
            return cached
        with self._reader.connect() as conn:
            row = conn.execute(select(warehouses).where(warehouses.c.name == name)).mappings().first()
        if row is None:
            return None
        warehouse = Warehouse(row["id"], row["name"], row["location"], dict(row["properties"] or {}))
        self._warehouses[name] = warehouse
        return warehouse

    def list_warehouses(self) -> list[Warehouse]:
        with self._reader.connect() as conn:
            rows = conn.execute(select(warehouses).order_by(warehouses.c.name)).mappings().all()
        return [Warehouse(r["id"], r["name"], r["location"], dict(r["properties"] or {})) for r in rows]

    # --- namespaces ---------------------------------------------------------------------------

    @staticmethod
    def _namespace_id(conn: Connection, warehouse_id: int, levels: Namespace) -> int | None:
        return conn.execute(
            select(namespaces.c.id).where(
                namespaces.c.warehouse_id == warehouse_id, namespaces.c.name == namespace_key(levels)
            )
        ).scalar()

    def create_namespace(self, warehouse_id: int, levels: Namespace, properties: dict[str, str]) -> None:
        with self.engine.begin() as conn:
            if len(levels) > 1 and self._namespace_id(conn, warehouse_id, levels[:-1]) is None:
                raise errors.NoSuchNamespace(f"Parent namespace does not exist: {'.'.join(levels[:-1])}")
            try:
                conn.execute(
                    insert(namespaces).values(
                        warehouse_id=warehouse_id,
                        name=namespace_key(levels),
                        parent=namespace_key(levels[:-1]),
                        properties=properties,
                        created_at=_now(),
                    )
                )
            except IntegrityError as exc:
                raise errors.AlreadyExists(f"Namespace already exists: {'.'.join(levels)}") from exc

    def get_namespace(self, warehouse_id: int, levels: Namespace) -> NamespaceRow:
        with self._reader.connect() as conn:
            row = conn.execute(
                select(namespaces.c.id, namespaces.c.properties).where(
                    namespaces.c.warehouse_id == warehouse_id, namespaces.c.name == namespace_key(levels)
                )
            ).first()
        if row is None:
            raise errors.NoSuchNamespace(f"Namespace does not exist: {'.'.join(levels)}")
        return NamespaceRow(row.id, levels, dict(row.properties or {}))

    def list_namespaces(
        self,
        warehouse_id: int,
        parent: Namespace,
        token: str | None,
        size: int | None,
        only: Collection[str] | None = None,
    ) -> Page:
        """Child namespaces of ``parent``; ``only`` (namespace keys) restricts them to what a caller may see."""
        after = decode_page_token(token)
        with self._reader.connect() as conn:
            if parent and self._namespace_id(conn, warehouse_id, parent) is None:
                raise errors.NoSuchNamespace(f"Namespace does not exist: {'.'.join(parent)}")
            query = (
                select(namespaces.c.name)
                .where(namespaces.c.warehouse_id == warehouse_id, namespaces.c.parent == namespace_key(parent))
                .order_by(namespaces.c.name)
            )
            if only is not None:
                names = _filtered_names(conn, query, namespaces.c.name, only, after, size)
                return _page([namespace_levels(n) for n in names], names, size)
            if after is not None:
                query = query.where(namespaces.c.name > after)
            if size is not None:
                query = query.limit(size + 1)
            names = list(conn.execute(query).scalars())
        return _page([namespace_levels(n) for n in names], names, size)

    def drop_namespace(self, warehouse_id: int, levels: Namespace) -> None:
        with self.engine.begin() as conn:
            ns_id = self._namespace_id(conn, warehouse_id, levels)
            if ns_id is None:
                raise errors.NoSuchNamespace(f"Namespace does not exist: {'.'.join(levels)}")
            has_entities = conn.execute(select(entities.c.id).where(entities.c.namespace_id == ns_id).limit(1)).first()
            has_children = conn.execute(
                select(namespaces.c.id)
                .where(namespaces.c.warehouse_id == warehouse_id, namespaces.c.parent == namespace_key(levels))
                .limit(1)
            ).first()
            if has_entities or has_children:
                what = "tables or views" if has_entities else "child namespaces"
                raise errors.NamespaceNotEmpty(f"Namespace {'.'.join(levels)} is not empty: it holds {what}")
            conn.execute(delete(namespaces).where(namespaces.c.id == ns_id))
            _delete_grants(conn, warehouse_id, "namespace", namespace_key(levels))

    def update_namespace_properties(
        self, warehouse_id: int, levels: Namespace, removals: Sequence[str], updates: dict[str, str]
    ) -> tuple[list[str], list[str], list[str]]:
        """Apply removals and updates; return (updated, removed, missing)."""
        with self.engine.begin() as conn:
            query = select(namespaces.c.id, namespaces.c.properties).where(
                namespaces.c.warehouse_id == warehouse_id, namespaces.c.name == namespace_key(levels)
            )
            if conn.dialect.name != "sqlite":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                raise errors.NoSuchNamespace(f"Namespace does not exist: {'.'.join(levels)}")
            props = dict(row.properties or {})
            unique = list(dict.fromkeys(removals))  # a key named twice is removed (or missing) once
            removed = [key for key in unique if key in props]
            missing = [key for key in unique if key not in props]
            for key in removed:
                del props[key]
            props.update(updates)
            conn.execute(update(namespaces).where(namespaces.c.id == row.id).values(properties=props))
        return sorted(updates), removed, missing

    # --- tables and views ---------------------------------------------------------------------

    def get_entity(self, warehouse_id: int, levels: Namespace, name: str, kind: str) -> EntityRow | None:
        """The live row of a table or view, or None (also when the name belongs to the other kind)."""
        params = {"warehouse_id": warehouse_id, "namespace": namespace_key(levels), "name": name}
        with self._reader.connect() as conn:
            row = conn.execute(ENTITY_BY_NAME, params).first()
        if row is None or row.kind != kind:
            return None
        return EntityRow(row.id, levels, name, row.kind, row.metadata_location, row.namespace_id)

    def entity_kind(self, warehouse_id: int, levels: Namespace, name: str) -> str | None:
        with self._reader.connect() as conn:
            return conn.execute(
                select(entities.c.kind)
                .join(namespaces, namespaces.c.id == entities.c.namespace_id)
                .where(
                    namespaces.c.warehouse_id == warehouse_id,
                    namespaces.c.name == namespace_key(levels),
                    entities.c.name == name,
                )
            ).scalar()

    def list_entities(
        self,
        warehouse_id: int,
        levels: Namespace,
        kind: str,
        token: str | None,
        size: int | None,
        only: Collection[str] | None = None,
    ) -> Page:
        """Tables or views of a namespace; ``only`` (names) restricts them to what a caller may see."""
        after = decode_page_token(token)
        with self._reader.connect() as conn:
            ns_id = self._namespace_id(conn, warehouse_id, levels)
            if ns_id is None:
                raise errors.NoSuchNamespace(f"Namespace does not exist: {'.'.join(levels)}")
            query = (
                select(entities.c.name)
                .where(entities.c.namespace_id == ns_id, entities.c.kind == kind)
                .order_by(entities.c.name)
            )
            if only is not None:
                names = _filtered_names(conn, query, entities.c.name, only, after, size)
                return _page(names, names, size)
            if after is not None:
                query = query.where(entities.c.name > after)
            if size is not None:
                query = query.limit(size + 1)
            names = list(conn.execute(query).scalars())
        return _page(names, names, size)

    def count_entities(self, warehouse_id: int) -> int:
        with self._reader.connect() as conn:
            return int(conn.execute(select(func.count()).where(entities.c.warehouse_id == warehouse_id)).scalar() or 0)

    def metadata_locations_under(self, warehouse_id: int, prefixes: Sequence[str]) -> list[str]:
        """Current metadata locations of the tables and views whose metadata lies under any of ``prefixes``.

        Table locations may nest (``ns.t`` at ``.../ns/t`` and ``ns.t.x`` at ``.../ns/t/x``): access
        delegated for one table must leave out the others under it (see catalog/service/credentials.py).
        """
        if not prefixes:
            return []
        under = [entities.c.metadata_location.startswith(p.rstrip("/") + "/", autoescape=True) for p in prefixes]
        with self._reader.connect() as conn:
            rows = conn.execute(
                select(entities.c.metadata_location).where(entities.c.warehouse_id == warehouse_id, or_(*under))
            ).all()
        return [row.metadata_location for row in rows]

    def namespace_id_for_create(self, warehouse_id: int, levels: Namespace) -> int:
        with self._reader.connect() as conn:
            ns_id = self._namespace_id(conn, warehouse_id, levels)
        if ns_id is None:
            raise errors.NoSuchNamespace(f"Namespace does not exist: {'.'.join(levels)}")
        return ns_id

    def swap_pointers(self, warehouse_id: int, swaps: Iterable[PointerSwap]) -> None:
        """Apply all pointer moves in one transaction, or none of them.

        A pointer that no longer holds its expected location (another commit won the race) or a
        name taken in the meantime raises :class:`errors.CommitFailed`/:class:`errors.AlreadyExists`
        and rolls every swap back.
        """
        now = _now()
        swaps = list(swaps)
        # One statement is atomic by itself: on PostgreSQL it runs in autocommit (no BEGIN/COMMIT round trips).
        single = len(swaps) == 1 and self._reader is not self.engine
        try:
            connection = (self._reader if single else self.engine).connect()
        except OperationalError as exc:  # nothing was sent: the commit certainly did not apply
            raise errors.DatabaseUnavailable("The catalog database is unreachable") from exc
        with connection:
            try:
                with nullcontext() if single else connection.begin():
                    for swap in swaps:
                        self._swap(connection, warehouse_id, swap, now)
            except (OperationalError, InterfaceError) as exc:
                raise errors.CommitStateUnknown(
                    "The catalog database failed during the commit, which may or may not have been applied: "
                    "load the table to see its state"
                ) from exc

    @staticmethod
    def _swap(conn: Connection, warehouse_id: int, swap: PointerSwap, now: datetime) -> None:
        if swap.entity_id is None:
            try:
                conn.execute(
                    insert(entities).values(
                        warehouse_id=warehouse_id,
                        namespace_id=swap.namespace_id,
                        name=swap.name,
                        kind=swap.kind,
                        metadata_location=swap.new,
                        previous_metadata_location=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
            except IntegrityError as exc:
                raise errors.AlreadyExists(f"Table or view already exists: {swap.name}") from exc
            return
        assert swap.namespace_id is not None and swap.name is not None, "a move names the entity as it was read"
        result = conn.execute(
            _SWAP_POINTER,
            {
                "entity_id": swap.entity_id,
                "expected": swap.expected,
                "new": swap.new,
                "now": now,
                "entity_namespace_id": swap.namespace_id,
                "entity_name": swap.name,
            },
        )
        if result.rowcount != 1:
            raise errors.ConcurrentCommit("The table was changed by a concurrent commit; refresh and retry")

    def create_entity(
        self, warehouse_id: int, levels: Namespace, name: str, kind: str, metadata_location: str, *, replace: bool
    ) -> None:
        """Insert a table/view row (register, create).

        With ``replace`` an existing row of the same kind is repointed instead.
        """
        now = _now()
        with self.engine.begin() as conn:
            ns_id = self._namespace_id(conn, warehouse_id, levels)
            if ns_id is None:
                raise errors.NoSuchNamespace(f"Namespace does not exist: {'.'.join(levels)}")
            existing = conn.execute(
                select(entities.c.id, entities.c.kind, entities.c.metadata_location).where(
                    entities.c.namespace_id == ns_id, entities.c.name == name
                )
            ).first()
            if existing is not None:
                if not replace or existing.kind != kind:
                    what = "A view" if existing.kind == VIEW else "A table"
                    raise errors.AlreadyExists(f"{what} already exists: {'.'.join((*levels, name))}")
                conn.execute(
                    update(entities)
                    .where(entities.c.id == existing.id)
                    .values(
                        metadata_location=metadata_location,
                        previous_metadata_location=existing.metadata_location,
                        updated_at=now,
                    )
                )
                return
            try:
                conn.execute(
                    insert(entities).values(
                        warehouse_id=warehouse_id,
                        namespace_id=ns_id,
                        name=name,
                        kind=kind,
                        metadata_location=metadata_location,
                        created_at=now,
                        updated_at=now,
                    )
                )
            except IntegrityError as exc:
                raise errors.AlreadyExists(f"Table or view already exists: {'.'.join((*levels, name))}") from exc

    def delete_entity(self, warehouse_id: int, entity: EntityRow) -> bool:
        """Delete the row and the grants on it (a later object of the same name starts without any),
        only while it is as read: same name and current metadata. False when it was renamed, moved
        on or deleted meanwhile, so a drop never removes the object that now has another name, nor
        purges files older than the table's last commit."""
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(entities).where(
                    entities.c.id == entity.id,
                    entities.c.namespace_id == entity.namespace_id,
                    entities.c.name == entity.name,
                    entities.c.metadata_location == entity.metadata_location,
                )
            )
            if result.rowcount != 1:
                return False
            _delete_grants(conn, warehouse_id, entity.kind, _entity_key(entity.namespace, entity.name))
        return True

    def rename_entity(self, warehouse_id: int, entity: EntityRow, to_levels: Namespace, to_name: str) -> None:
        with self.engine.begin() as conn:
            ns_id = self._namespace_id(conn, warehouse_id, to_levels)
            if ns_id is None:
                raise errors.NoSuchNamespace(f"Namespace does not exist: {'.'.join(to_levels)}")
            taken = conn.execute(
                select(entities.c.kind).where(entities.c.namespace_id == ns_id, entities.c.name == to_name)
            ).scalar()
            if taken is not None:
                raise errors.AlreadyExists(f"A {taken} already exists: {'.'.join((*to_levels, to_name))}")
            try:
                result = conn.execute(
                    update(entities)
                    .where(entities.c.id == entity.id)
                    .values(namespace_id=ns_id, name=to_name, updated_at=_now())
                )
            except IntegrityError as exc:
                raise errors.AlreadyExists(f"Name already taken: {'.'.join((*to_levels, to_name))}") from exc
            if result.rowcount != 1:
                raise errors.NoSuchTable(f"Table does not exist: {'.'.join((*entity.namespace, entity.name))}")
            # Grants on the object follow it to its new name, in the same transaction.
            conn.execute(
                update(grants)
                .where(
                    grants.c.warehouse_id == warehouse_id,
                    grants.c.securable_type == entity.kind,
                    grants.c.securable_name == _entity_key(entity.namespace, entity.name),
                )
                .values(securable_name=_entity_key(to_levels, to_name))
            )

    # --- idempotency --------------------------------------------------------------------------

    def get_idempotent_outcome(self, key: str, lifetime_seconds: int) -> tuple[str, int, str] | None:
        cutoff = int(time.time() * 1000) - lifetime_seconds * 1000
        with self._reader.connect() as conn:
            row = conn.execute(
                select(idempotency_records).where(
                    idempotency_records.c.key == key, idempotency_records.c.created_at_ms >= cutoff
                )
            ).first()
        return (row.operation, row.status_code, row.body) if row is not None else None

    def save_idempotent_outcome(self, key: str, operation: str, status_code: int, body: str, lifetime: int) -> None:
        now_ms = int(time.time() * 1000)
        with self.engine.begin() as conn:
            # Expired records are replaced; a live one is kept (the first outcome wins).
            conn.execute(
                delete(idempotency_records).where(
                    or_(
                        and_(
                            idempotency_records.c.key == key,
                            idempotency_records.c.created_at_ms < now_ms - lifetime * 1000,
                        ),
                        idempotency_records.c.created_at_ms < now_ms - 2 * lifetime * 1000,
                    )
                )
            )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(idempotency_records).values(
                        key=key, operation=operation, status_code=status_code, body=body, created_at_ms=now_ms
                    )
                )
        except IntegrityError:
            pass  # a concurrent request with the same key recorded its outcome first


FILTER_CHUNK = 500


def _filtered_names(
    conn: Connection, query: Any, column: Any, only: Collection[str], after: str | None, size: int | None
) -> list[str]:
    """Run a name-ordered listing restricted to ``only``, in sorted chunks so that neither a long list
    of visible names nor pagination (``after``/``size``) is a problem: a page costs one or a few
    indexed queries however many names exist in total. A chunk is about one page long, so a page
    of a namespace with 10,000 tables of which 100 are visible looks up ~page-size names."""
    candidates = sorted(n for n in only if after is None or n > after)
    chunk_size = FILTER_CHUNK if size is None else min(FILTER_CHUNK, max(size + 1, 32))
    found: list[str] = []
    for start in range(0, len(candidates), chunk_size):
        chunk = candidates[start : start + chunk_size]
        found.extend(conn.execute(query.where(_one_of(conn, column, chunk))).scalars())
        if size is not None and len(found) > size:
            break
    return found[: size + 1] if size is not None else found


def _one_of(conn: Connection, column: Any, values: list[str]) -> Any:
    """``column IN values``; on PostgreSQL ``= ANY(:array)``: one parameter, so one statement text
    that the driver prepares once, whatever the number of values."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam("only_names", values, type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def _entity_key(levels: Namespace, name: str) -> str:
    return namespace_key(levels) + NAMESPACE_SEPARATOR + name


def _delete_grants(conn: Connection, warehouse_id: int, securable_type: str, securable_name: str) -> None:
    conn.execute(
        delete(grants).where(
            grants.c.warehouse_id == warehouse_id,
            grants.c.securable_type == securable_type,
            grants.c.securable_name == securable_name,
        )
    )


def _page(items: list[Any], keys: list[str], size: int | None) -> Page:
    if size is not None and len(items) > size:
        return Page(items[:size], encode_page_token(keys[size - 1]))
    return Page(items, None)
