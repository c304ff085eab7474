"""The one commit path: REST table commits, multi-table transactions and register-snapshot jobs.

For each table: read its current metadata (cached by location), validate the client's
requirements against it, apply the updates with PyIceberg's update handlers (see
:func:`apply_updates`), write the new ``<NNNNN>-<uuid>.metadata.json``; then swap every pointer
in one short database transaction (compare-and-swap on ``metadata_location``). A lost race
re-runs the whole thing on the new base, so requirements are always checked against what is
actually committed; a requirement that no longer holds is a 409 and nothing changes. Metadata
files of a failed attempt are deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from pyiceberg.catalog import MetastoreCatalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.exceptions import ValidationError as IcebergValidationError
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.update import (
    AssertCreate,
    RemovePropertiesUpdate,
    TableRequirement,
    TableUpdate,
    _apply_table_update,
    _TableMetadataUpdateContext,
    _update_table_metadata_log,
    update_table_metadata,
)
from pyiceberg.utils.datetime import datetime_to_millis

from catalog import errors
from catalog.observability import COMMIT_CONFLICTS, COMMITS
from catalog.persistence.store import TABLE, CatalogStore, Namespace, PointerSwap, Warehouse
from catalog.service.locations import check_inside_warehouse
from catalog.service.tables import read_current
from catalog.storage.fileio import CachedMetadata, Storage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class TableChange:
    """What a client asks of one table: requirements that must hold, then updates to apply."""

    namespace: Namespace
    name: str
    requirements: Sequence[TableRequirement]
    updates: Sequence[TableUpdate]


@dataclass(frozen=True)
class CommittedTable:
    metadata_location: str
    entry: CachedMetadata


@dataclass
class _Staged:
    change: TableChange
    entity_id: int | None
    namespace_id: int | None
    base_location: str | None
    new_location: str | None
    metadata: TableMetadata  # the new metadata, or the base when nothing changes
    entry: CachedMetadata | None = None  # set once written (or the base entry when nothing changes)


class CommitService:
    def __init__(self, store: CatalogStore, storage: Storage) -> None:
        self.store = store
        self.storage = storage

    def commit_table(self, warehouse: Warehouse, change: TableChange) -> CommittedTable:
        return self.commit_transaction(warehouse, [change])[0]

    def commit_transaction(self, warehouse: Warehouse, changes: Sequence[TableChange]) -> list[CommittedTable]:
        """Commit all changes atomically; return the new state of each table in order."""
        seen = {(c.namespace, c.name) for c in changes}
        if len(seen) != len(changes):
            raise errors.BadRequest("A transaction may name each table only once")
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                staged = [self._stage(warehouse, change) for change in changes]
            except errors.CommitFailed:
                COMMITS.labels("conflict").inc()  # a requirement does not hold on what is committed: 409
                raise
            written: list[str] = []
            try:
                for item in staged:
                    if item.new_location is not None:
                        item.entry = self.storage.write_table_metadata(item.metadata, item.new_location)
                        written.append(item.new_location)
            except BaseException:
                self.storage.delete_quietly(written)
                COMMITS.labels("failed").inc()
                raise
            try:
                swaps = [
                    PointerSwap(
                        entity_id=item.entity_id,
                        expected=item.base_location,
                        new=item.new_location,
                        namespace_id=item.namespace_id,
                        name=item.change.name,
                        kind=TABLE,
                    )
                    for item in staged
                    if item.new_location is not None
                ]
                if swaps:
                    self.store.swap_pointers(warehouse.id, swaps)
            except errors.ConcurrentCommit:
                self.storage.delete_quietly(written)
                COMMIT_CONFLICTS.inc()
                if attempt == MAX_ATTEMPTS:
                    COMMITS.labels("conflict").inc()
                    raise
                log.info("commit race lost, retrying on the new base (attempt %d)", attempt)
                continue
            except errors.CommitStateUnknown:
                # The database may have applied the swap before its answer was lost, and a pointer
                # may now name these files: keep them (at worst they are never referenced).
                COMMITS.labels("failed").inc()
                log.warning("commit state unknown (the database connection failed); keeping %s", written)
                raise
            except BaseException:
                self.storage.delete_quietly(written)  # the swap was refused: nothing names these files
                COMMITS.labels("failed").inc()
                raise
            COMMITS.labels("committed").inc()
            results = []
            for item in staged:
                assert item.entry is not None
                results.append(CommittedTable(item.new_location or item.base_location or "", item.entry))
            return results
        raise AssertionError("unreachable")

    def _stage(self, warehouse: Warehouse, change: TableChange) -> _Staged:
        entity = self.store.get_entity(warehouse.id, change.namespace, change.name, TABLE)
        current = None if entity is None else read_current(self.store, self.storage, warehouse.id, entity)
        if current is None:  # no such table, or dropped since the row was read
            return self._stage_create(warehouse, change)
        entity, base = current
        _validate(change.requirements, base.metadata)
        new_metadata = base.metadata
        if change.updates:
            new_metadata = _apply(base.metadata, change.updates, entity.metadata_location, enforce=False)
        if new_metadata is base.metadata:  # no updates, or none that changed anything (set-properties {}, ...)
            return _Staged(change, entity.id, entity.namespace_id, entity.metadata_location, None, base.metadata, base)
        check_inside_warehouse(new_metadata.location, warehouse)
        version = MetastoreCatalog._parse_metadata_version(entity.metadata_location) + 1
        new_location = check_inside_warehouse(_metadata_file_location(new_metadata, version), warehouse)
        return _Staged(change, entity.id, entity.namespace_id, entity.metadata_location, new_location, new_metadata)

    def _stage_create(self, warehouse: Warehouse, change: TableChange) -> _Staged:
        """A commit with ``assert-create``: the staged-create flow of Spark CTAS and PyIceberg."""
        if not any(isinstance(r, AssertCreate) for r in change.requirements):
            raise errors.NoSuchTable(f"Table does not exist: {'.'.join((*change.namespace, change.name))}")
        namespace_id = self.store.namespace_id_for_create(warehouse.id, change.namespace)
        if self.store.entity_kind(warehouse.id, change.namespace, change.name) is not None:
            raise errors.AlreadyExists(f"A view already exists: {'.'.join((*change.namespace, change.name))}")
        _validate(change.requirements, None)
        new_metadata = _apply(MetastoreCatalog._empty_table_metadata(), change.updates, None, enforce=True)
        _check_complete(new_metadata)
        check_inside_warehouse(new_metadata.location, warehouse)
        new_location = check_inside_warehouse(_metadata_file_location(new_metadata, 0), warehouse)
        return _Staged(change, None, namespace_id, None, new_location, new_metadata)


def _check_complete(metadata: TableMetadata) -> None:
    """A table created through a commit names a current schema, default partition spec and default
    sort order that exist: engines refuse to load metadata that does not (Java's parser does)."""
    present = {
        "schema": any(s.schema_id == metadata.current_schema_id for s in metadata.schemas),
        "partition spec": any(s.spec_id == metadata.default_spec_id for s in metadata.partition_specs),
        "sort order": any(o.order_id == metadata.default_sort_order_id for o in metadata.sort_orders),
    }
    missing = [name for name, found in present.items() if not found]
    if missing:
        raise errors.BadRequest(f"Invalid table update: {_INCOMPLETE_CREATE} (missing: {', '.join(missing)})")


_INCOMPLETE_CREATE = (
    "the table would have no current schema, default partition spec or default sort order; a table created "
    "through a commit needs add-schema, add-spec and add-sort-order with their set-* updates"
)


def _metadata_file_location(metadata: TableMetadata, version: int) -> str:
    provider = load_location_provider(metadata.location, metadata.properties)
    return provider.new_table_metadata_file_location(version)


def _validate(requirements: Sequence[TableRequirement], base: TableMetadata | None) -> None:
    for requirement in requirements:
        try:
            requirement.validate(base)
        except CommitFailedException as exc:
            raise errors.CommitFailed(str(exc)) from exc


def apply_updates(base: TableMetadata, updates: Sequence[TableUpdate], base_location: str) -> TableMetadata:
    """``update_table_metadata`` on an existing table, without its final defensive deep copy, and
    with Java's leniency on ``remove-properties``: keys that are not set are ignored.

    PyIceberg's metadata models are frozen and every update handler returns a new model
    (``model_copy(update=...)`` with new containers), so the base is never modified and the
    result may share unchanged parts with it. The deep copy was a quarter of a commit's CPU and
    grows with the metadata (snapshots, metadata log). A unit test checks that the result equals
    ``update_table_metadata``'s for every kind of update.
    """
    context = _TableMetadataUpdateContext()
    new = base
    for update in updates:
        if isinstance(update, RemovePropertiesUpdate):
            # Java's catalogs ignore keys that are not set (or named twice); PyIceberg's handler raises a KeyError.
            update = RemovePropertiesUpdate(removals=[k for k in dict.fromkeys(update.removals) if k in new.properties])
        new = _apply_table_update(update, new, context)
    if context.has_changes():
        new = _update_table_metadata_log(new, base_location, base.last_updated_ms)
        if new.last_updated_ms == base.last_updated_ms:
            new = new.model_copy(update={"last_updated_ms": datetime_to_millis(datetime.now().astimezone())})
    new.spec().check_compatible(new.schema())
    new.sort_order().check_compatible(new.schema())
    return new


def _apply(
    base: TableMetadata, updates: Sequence[TableUpdate], base_location: str | None, *, enforce: bool
) -> TableMetadata:
    try:
        if base_location is not None and not enforce:
            return apply_updates(base, updates, base_location)
        return update_table_metadata(
            base_metadata=base, updates=tuple(updates), enforce_validation=enforce, metadata_location=base_location
        )
    except CommitFailedException as exc:
        raise errors.CommitFailed(str(exc)) from exc
    except (ValueError, ValidationError, IcebergValidationError, KeyError, NotImplementedError) as exc:
        raise errors.BadRequest(f"Invalid table update: {exc}") from exc
    except StopIteration as exc:  # PyIceberg's schema()/spec()/sort_order() found no current one
        raise errors.BadRequest(f"Invalid table update: {_INCOMPLETE_CREATE}") from exc
