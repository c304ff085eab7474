"""Tables: create (and stage-create), load, list, drop/purge, rename, register."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from pyiceberg.catalog import MANIFEST, MANIFEST_LIST, METADATA, PREVIOUS_METADATA, delete_data_files, delete_files
from pyiceberg.exceptions import ValidationError as IcebergValidationError
from pyiceberg.io import FileIO, InputFile, OutputFile
from pyiceberg.manifest import ManifestFile
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import TableMetadata, new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER, SortOrder
from starlette.concurrency import run_in_threadpool

from catalog import errors
from catalog.persistence.entity_reader import AsyncEntityReader
from catalog.persistence.store import TABLE, VIEW, CatalogStore, EntityRow, Namespace, Page, Warehouse
from catalog.service.identifiers import check_entity_name, check_namespace
from catalog.service.locations import check_inside_warehouse, default_table_location, is_inside
from catalog.storage.fileio import CachedMetadata, MetadataFileInvalid, MetadataFileMissing, Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedTable:
    entity: EntityRow | None  # None for a staged (not yet committed) table
    metadata_location: str | None
    entry: CachedMetadata


def qualified(namespace: Namespace, name: str) -> str:
    return ".".join((*namespace, name))


class _InsideOnly(FileIO):
    """The catalog's FileIO for a purge: reads what the metadata names, deletes only inside the warehouse.

    Clients write manifests and registered metadata files, so the paths in them are not trusted.
    """

    def __init__(self, io: FileIO, root: str) -> None:
        super().__init__(io.properties)
        self._io, self._root = io, root

    def new_input(self, location: str) -> InputFile:
        return self._io.new_input(location)

    def new_output(self, location: str) -> OutputFile:
        return self._io.new_output(location)

    def delete(self, location: str | InputFile | OutputFile) -> None:
        path = location if isinstance(location, str) else location.location
        if not is_inside(path, self._root):
            log.warning("purge: not deleting %s, it is outside the warehouse %s", path, self._root)
            return
        self._io.delete(location)


# How often a row is read again when the metadata file it named has gone (see read_current).
MISSING_FILE_REREADS = 3
# How often a drop reads the table again when it changed between the read and the delete.
DROP_ATTEMPTS = 5


def _no_such_table(namespace: Namespace, name: str) -> errors.NoSuchTable:
    # Always NoSuchTable, even when the namespace is missing: Spark resolves metadata tables
    # (`db.tbl.snapshots`) by first asking for table `snapshots` in namespace `db.tbl` and
    # only falls back on NoSuchTableException (the reference REST server answers the same).
    return errors.NoSuchTable(f"Table does not exist: {qualified(namespace, name)}")


def _found(entity: EntityRow | None, namespace: Namespace, name: str) -> EntityRow:
    if entity is None:
        raise _no_such_table(namespace, name)
    return entity


def read_current(
    store: CatalogStore, storage: Storage, warehouse_id: int, entity: EntityRow
) -> tuple[EntityRow, CachedMetadata] | None:
    """The table's row and the metadata it names, as loads and commits read them; None when the
    table was dropped meanwhile.

    A file that is gone may have been purged by a drop that ran after the row was read: the row
    is read again, and one moved on to a new file is read there. Only a row that still names a
    missing file is a storage failure (503).
    """
    table = qualified(entity.namespace, entity.name)
    for _ in range(MISSING_FILE_REREADS):
        location = entity.metadata_location
        try:
            return entity, storage.read_table_metadata(location)
        except MetadataFileMissing as exc:
            again = store.get_entity(warehouse_id, entity.namespace, entity.name, TABLE)
            if again is None:
                return None
            if again.metadata_location == location:
                raise errors.StorageUnavailable(f"Metadata file of {table} is missing: {location}") from exc
            entity = again
        except MetadataFileInvalid as exc:
            raise errors.StorageUnavailable(f"Metadata file of {table} is unreadable: {exc}") from exc
    raise errors.StorageUnavailable(f"The metadata of {table} kept moving while it was read; retry")


class TableService:
    def __init__(self, store: CatalogStore, storage: Storage, entity_reader: AsyncEntityReader | None = None) -> None:
        self.store = store
        self.storage = storage
        self.entity_reader = entity_reader  # PostgreSQL: the lookup of loadTable on the event loop

    def get(self, warehouse: Warehouse, namespace: Namespace, name: str) -> EntityRow:
        return _found(self.store.get_entity(warehouse.id, namespace, name, TABLE), namespace, name)

    def load(self, warehouse: Warehouse, namespace: Namespace, name: str) -> LoadedTable:
        return self._read(warehouse, self.get(warehouse, namespace, name))

    def _open_reader(self) -> AsyncEntityReader | None:
        reader = self.entity_reader
        return reader if reader is not None and reader.is_open else None

    async def get_async(self, warehouse: Warehouse, namespace: Namespace, name: str) -> EntityRow:
        """:meth:`get` without blocking the event loop (in the thread pool where there is no async reader)."""
        reader = self._open_reader()
        if reader is None:
            return await run_in_threadpool(self.get, warehouse, namespace, name)
        return _found(await reader.entity(warehouse.id, namespace, name, TABLE), namespace, name)

    async def load_async(self, warehouse: Warehouse, namespace: Namespace, name: str) -> LoadedTable:
        """:meth:`load` without blocking the event loop: a metadata file not in the cache is read in the thread pool."""
        if self._open_reader() is None:
            return await run_in_threadpool(self.load, warehouse, namespace, name)  # one hop for both reads
        entity = await self.get_async(warehouse, namespace, name)
        entry = self.storage.cached_table_metadata(entity.metadata_location)
        if entry is None:
            return await run_in_threadpool(self._read, warehouse, entity)
        return LoadedTable(entity, entity.metadata_location, entry)

    def _read(self, warehouse: Warehouse, entity: EntityRow) -> LoadedTable:
        """The table with the metadata its row names (a 404 if a drop removed it meanwhile)."""
        current = read_current(self.store, self.storage, warehouse.id, entity)
        if current is None:
            raise _no_such_table(entity.namespace, entity.name)
        found, entry = current
        return LoadedTable(found, found.metadata_location, entry)

    def list(
        self,
        warehouse: Warehouse,
        namespace: Namespace,
        page_token: str | None,
        page_size: int | None,
        only: Collection[str] | None = None,
    ) -> Page:
        """Tables of a namespace; ``only`` (names) keeps those the caller may see."""
        return self.store.list_entities(warehouse.id, namespace, TABLE, page_token, page_size, only)

    def create(
        self,
        warehouse: Warehouse,
        namespace: Namespace,
        name: str,
        schema: Schema,
        *,
        location: str | None = None,
        partition_spec: PartitionSpec | None = None,
        sort_order: SortOrder | None = None,
        properties: dict[str, str] | None = None,
        stage_only: bool = False,
    ) -> LoadedTable:
        """Create a table; with ``stage_only`` return its metadata without committing anything."""
        namespace = check_namespace(namespace)
        name = check_entity_name(name)
        ns = self.store.get_namespace(warehouse.id, namespace)
        if self.store.entity_kind(warehouse.id, namespace, name) is not None:
            raise errors.AlreadyExists(f"Table or view already exists: {qualified(namespace, name)}")
        if location:
            location = check_inside_warehouse(location, warehouse)
        else:
            location = default_table_location(warehouse, namespace, ns.properties, name)
        try:
            metadata = new_table_metadata(
                schema=schema,
                partition_spec=partition_spec or UNPARTITIONED_PARTITION_SPEC,
                sort_order=sort_order or UNSORTED_SORT_ORDER,
                location=location,
                properties=dict(properties or {}),
            )
            metadata.spec().check_compatible(metadata.schema())  # e.g. `year` of a string column
            metadata.sort_order().check_compatible(metadata.schema())
        except (ValueError, IcebergValidationError) as exc:
            raise errors.BadRequest(f"Invalid table definition: {exc}") from exc
        if metadata.format_version > 2:
            raise errors.BadRequest(f"Format version {metadata.format_version} is not supported (PyIceberg writes 1-2)")
        if stage_only:
            return LoadedTable(
                None, None, CachedMetadata(metadata, metadata.model_dump_json(exclude_none=True).encode())
            )
        metadata_location = load_location_provider(location, metadata.properties).new_table_metadata_file_location(0)
        check_inside_warehouse(metadata_location, warehouse)  # `write.metadata.path` may point elsewhere
        entry = self.storage.write_table_metadata(metadata, metadata_location)
        try:
            self.store.create_entity(warehouse.id, namespace, name, TABLE, metadata_location, replace=False)
        except BaseException:
            self.storage.delete_quietly([metadata_location])
            raise
        entity = self.store.get_entity(warehouse.id, namespace, name, TABLE)
        return LoadedTable(entity, metadata_location, entry)

    def register(
        self, warehouse: Warehouse, namespace: Namespace, name: str, metadata_location: str, *, overwrite: bool
    ) -> LoadedTable:
        namespace = check_namespace(namespace)
        name = check_entity_name(name)
        metadata_location = check_inside_warehouse(metadata_location, warehouse)
        try:
            entry = self.storage.read_table_metadata(metadata_location)
        except MetadataFileMissing as exc:
            raise errors.BadRequest(f"No metadata file at {metadata_location}") from exc
        check_inside_warehouse(entry.metadata.location, warehouse)
        self.store.create_entity(warehouse.id, namespace, name, TABLE, metadata_location, replace=overwrite)
        return LoadedTable(self.store.get_entity(warehouse.id, namespace, name, TABLE), metadata_location, entry)

    def drop(self, warehouse: Warehouse, namespace: Namespace, name: str, *, purge: bool) -> None:
        """Forget the table (and with ``purge`` delete the files its last metadata names).

        The row is deleted only as it was read: a table renamed or committed to meanwhile is read
        again (a rename makes this a 404), so the purge always sees the table's final state.
        """
        for _ in range(DROP_ATTEMPTS):
            entity = self.get(warehouse, namespace, name)
            metadata: TableMetadata | None = None
            if purge:
                try:
                    metadata = self.storage.read_table_metadata(entity.metadata_location).metadata
                except MetadataFileMissing:
                    metadata = None
            if self.store.delete_entity(warehouse.id, entity):
                if purge and metadata is not None:
                    self._purge_files(entity.metadata_location, metadata, warehouse)
                return
        raise errors.CommitFailed(f"{qualified(namespace, name)} kept changing while it was dropped; retry")

    def unregister(self, warehouse: Warehouse, namespace: Namespace, name: str) -> LoadedTable:
        """Forget the table but keep every file, and return its last metadata (the opposite of
        registerTable). Like :meth:`drop`, the row is deleted only as it was read, so the metadata
        returned includes every commit made before the unregister; a commit after it finds no table.
        """
        for _ in range(DROP_ATTEMPTS):
            table = self._read(warehouse, self.get(warehouse, namespace, name))
            assert table.entity is not None  # a committed table has its row
            if self.store.delete_entity(warehouse.id, table.entity):
                return table
        raise errors.CommitFailed(f"{qualified(namespace, name)} kept changing while it was unregistered; retry")

    def _purge_files(self, metadata_location: str, metadata: TableMetadata, warehouse: Warehouse) -> None:
        """Delete every file the table's metadata references (PyIceberg's purge helpers), inside the warehouse."""
        io = _InsideOnly(self.storage.io_for(metadata_location), warehouse.location)
        manifests: list[ManifestFile] = []
        manifest_lists: set[str] = set()
        try:
            for snapshot in metadata.snapshots:
                manifests.extend(snapshot.manifests(io))
                manifest_lists.add(snapshot.manifest_list)
            delete_data_files(io, manifests)
        except Exception:  # noqa: BLE001 - the table is dropped; leftover files are only garbage
            log.warning("purge of %s was incomplete", metadata.location, exc_info=True)
        delete_files(io, {m.manifest_path for m in manifests}, MANIFEST)
        delete_files(io, manifest_lists, MANIFEST_LIST)
        delete_files(io, {entry.metadata_file for entry in metadata.metadata_log}, PREVIOUS_METADATA)
        delete_files(io, {metadata_location}, METADATA)

    def rename(
        self,
        warehouse: Warehouse,
        source: tuple[Namespace, str],
        destination: tuple[Namespace, str],
        *,
        kind: str = TABLE,
    ) -> None:
        src_ns, src_name = check_namespace(source[0]), check_entity_name(source[1])
        dst_ns, dst_name = check_namespace(destination[0]), check_entity_name(destination[1])
        entity = self.store.get_entity(warehouse.id, src_ns, src_name, kind)
        if entity is None:
            missing = errors.NoSuchView if kind == VIEW else errors.NoSuchTable
            raise missing(f"{kind.capitalize()} does not exist: {qualified(src_ns, src_name)}")
        self.store.rename_entity(warehouse.id, entity, dst_ns, dst_name)
