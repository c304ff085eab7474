"""Detached mode: Datlake table names, table listing, and snapshot → physical URI resolution.

Names: a bare name (``sales_q1``) is a table of the default namespace (``DATLAKE_DEFAULT_NAMESPACE``);
a dotted one (``finance.eu.sales_q1``) is namespace levels then the table.

The URI of a snapshot is what DuckDB reads with ``SELECT * FROM '<uri>'`` to get exactly that
snapshot's rows:

* one Parquet data file and no delete files → that file;
* a snapshot that holds exactly the files of one registration of several files → the glob the
  register-snapshot job recorded in the snapshot summary (``datlake.register-uri``);
* anything else → the table's metadata JSON, ``format: iceberg`` (read it with ``iceberg_scan``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyiceberg.manifest import DataFile, FileFormat, ManifestContent
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Snapshot

from catalog import errors
from catalog.config import Settings
from catalog.lru import LruCache
from catalog.persistence.store import CatalogStore, Warehouse, namespace_key
from catalog.persistence.table_index import TableFilter, TableIndex
from catalog.service.identifiers import check_entity_name, check_namespace
from catalog.service.tables import TableService
from catalog.storage.fileio import CachedMetadata, Storage

# Snapshot summary properties written by the register-snapshot job.
SUMMARY_JOB_ID = "datlake.job-id"
SUMMARY_REGISTER_SOURCE = "datlake.register-source"  # the URI the caller registered
SUMMARY_REGISTER_URI = "datlake.register-uri"  # a DuckDB glob matching exactly the registered files
SUMMARY_REGISTER_FILES = "datlake.register-files"  # how many files that glob matched

FORMAT_PARQUET = "parquet"
FORMAT_ICEBERG = "iceberg"

_RESOLUTION_CACHE_ENTRIES = 4096


def parse_table_name(value: str, default_namespace: str) -> tuple[tuple[str, ...], str]:
    """``sales_q1`` → ((default,), sales_q1); ``finance.sales_q1`` → ((finance,), sales_q1)."""
    parts = value.split(".")
    if not value or any(not part for part in parts):
        raise errors.Unprocessable(f"Invalid table name {value!r}: expected `table` or `namespace.table`")
    try:
        if len(parts) == 1:
            return (default_namespace,), check_entity_name(parts[0])
        return check_namespace(parts[:-1]), check_entity_name(parts[-1])
    except errors.BadRequest as exc:
        raise errors.Unprocessable(exc.message) from exc


def display_name(namespace: tuple[str, ...], name: str, default_namespace: str) -> str:
    """The Datlake name of a table: bare in the default namespace, dotted elsewhere."""
    if namespace == (default_namespace,):
        return name
    return ".".join((*namespace, name))


def _timestamp(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _summary_int(snapshot: Snapshot, key: str) -> int | None:
    if snapshot.summary is None:
        return None
    value = snapshot.summary.additional_properties.get(key)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _summary_str(snapshot: Snapshot, key: str) -> str | None:
    if snapshot.summary is None:
        return None
    value = snapshot.summary.additional_properties.get(key)
    return str(value) if value is not None else None


@dataclass(frozen=True)
class ListedTable:
    name: str
    latest_snapshot_id: int | None


@dataclass(frozen=True)
class TablePage:
    tables: list[ListedTable]
    next_page_token: str | None


@dataclass(frozen=True)
class SnapshotEntry:
    """A snapshot in a table's history."""

    snapshot_id: int
    parent_snapshot_id: int | None
    created_at: datetime
    operation: str | None
    data_files: int | None
    record_count: int | None


@dataclass(frozen=True)
class ResolvedSnapshot:
    """A snapshot and where to read it."""

    table_name: str
    snapshot_id: int
    parent_snapshot_id: int | None
    created_at: datetime
    operation: str | None
    uri: str
    format: str
    schema: dict[str, Any]
    metadata_location: str
    data_files: int
    record_count: int


@dataclass(frozen=True)
class _Resolution:
    uri: str | None  # None: read the metadata JSON (iceberg)
    data_files: int
    record_count: int


def _entry(snapshot: Snapshot) -> SnapshotEntry:
    return SnapshotEntry(
        snapshot_id=snapshot.snapshot_id,
        parent_snapshot_id=snapshot.parent_snapshot_id,
        created_at=_timestamp(snapshot.timestamp_ms),
        operation=snapshot.summary.operation.value if snapshot.summary is not None else None,
        data_files=_summary_int(snapshot, "total-data-files"),
        record_count=_summary_int(snapshot, "total-records"),
    )


def _encode_token(namespace: tuple[str, ...], name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([namespace_key(namespace), name]).encode()).decode()


def _decode_token(token: str) -> tuple[str, str]:
    try:
        key, name = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError) as exc:
        raise errors.Unprocessable(f"Invalid page_token: {token!r}") from exc
    if not isinstance(key, str) or not isinstance(name, str):
        raise errors.Unprocessable(f"Invalid page_token: {token!r}")
    return key, name


class DetachedService:
    """Read side of detached mode: list tables, describe snapshots, resolve them to URIs."""

    def __init__(self, settings: Settings, store: CatalogStore, storage: Storage, tables: TableService) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.tables = tables
        self.index = TableIndex(store.engine)
        self._cache: LruCache[tuple[str, int], _Resolution] = LruCache(_RESOLUTION_CACHE_ENTRIES)

    @property
    def default_namespace(self) -> str:
        return self.settings.default_namespace

    def warehouse(self) -> Warehouse:
        """The warehouse detached mode serves (the default one)."""
        warehouse = self.store.get_warehouse(self.settings.warehouse_name)
        if warehouse is None:  # pragma: no cover - created at start
            raise errors.NoSuchWarehouse(f"Warehouse does not exist: {self.settings.warehouse_name}")
        return warehouse

    def resolve_name(self, table_name: str) -> tuple[tuple[str, ...], str]:
        return parse_table_name(table_name, self.default_namespace)

    def name_of(self, namespace: tuple[str, ...], name: str) -> str:
        return display_name(namespace, name, self.default_namespace)

    # --- listing ----------------------------------------------------------------------------------

    def list_tables(self, only: TableFilter, page_token: str | None = None, page_size: int | None = None) -> TablePage:
        """Tables the caller may see with their latest snapshot ids; the whole list without ``page_size``."""
        warehouse = self.warehouse()
        after = _decode_token(page_token) if page_token else None
        limit = page_size + 1 if page_size is not None else None
        refs = self.index.list_tables(warehouse.id, only, after, limit)
        next_token = None
        if page_size is not None and len(refs) > page_size:
            refs = refs[:page_size]
            next_token = _encode_token(refs[-1].namespace, refs[-1].name)

        def latest(location: str) -> int | None:
            try:
                return self.storage.read_table_metadata(location).metadata.current_snapshot_id
            except Exception:  # noqa: BLE001 - one unreadable table must not break the listing
                return None

        with ThreadPoolExecutor(max_workers=8) as pool:
            snapshot_ids = list(pool.map(latest, [ref.metadata_location for ref in refs]))
        tables = [
            ListedTable(self.name_of(ref.namespace, ref.name), snapshot_id)
            for ref, snapshot_id in zip(refs, snapshot_ids, strict=True)
        ]
        return TablePage(tables, next_token)

    # --- snapshots --------------------------------------------------------------------------------

    def _load(self, table_name: str) -> tuple[tuple[str, ...], str, str, CachedMetadata]:
        namespace, name = self.resolve_name(table_name)
        loaded = self.tables.load(self.warehouse(), namespace, name)
        assert loaded.metadata_location is not None
        return namespace, name, loaded.metadata_location, loaded.entry

    def latest(self, table_name: str) -> ResolvedSnapshot:
        namespace, name, location, entry = self._load(table_name)
        snapshot = entry.metadata.current_snapshot()
        if snapshot is None:
            raise errors.NotFound(f"Table {self.name_of(namespace, name)} has no snapshot yet")
        return self._resolved(namespace, name, location, entry.metadata, snapshot)

    def snapshot(self, table_name: str, snapshot_id: int) -> ResolvedSnapshot:
        namespace, name, location, entry = self._load(table_name)
        snapshot = entry.metadata.snapshot_by_id(snapshot_id)
        if snapshot is None:
            raise errors.NotFound(f"Table {self.name_of(namespace, name)} has no snapshot {snapshot_id}")
        return self._resolved(namespace, name, location, entry.metadata, snapshot)

    def history(self, table_name: str) -> list[SnapshotEntry]:
        """Every snapshot of the table, newest first."""
        _, _, _, entry = self._load(table_name)
        snapshots = sorted(
            entry.metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number or 0), reverse=True
        )
        return [_entry(s) for s in snapshots]

    def _resolved(
        self,
        namespace: tuple[str, ...],
        name: str,
        metadata_location: str,
        metadata: TableMetadata,
        snapshot: Snapshot,
    ) -> ResolvedSnapshot:
        resolution = self._resolution(metadata_location, snapshot)
        schema = metadata.schema_by_id(snapshot.schema_id) if snapshot.schema_id is not None else None
        schema = schema or metadata.schema()
        entry = _entry(snapshot)
        return ResolvedSnapshot(
            table_name=self.name_of(namespace, name),
            snapshot_id=snapshot.snapshot_id,
            parent_snapshot_id=snapshot.parent_snapshot_id,
            created_at=entry.created_at,
            operation=entry.operation,
            uri=resolution.uri or metadata_location,
            format=FORMAT_PARQUET if resolution.uri else FORMAT_ICEBERG,
            schema=json.loads(schema.model_dump_json()),
            metadata_location=metadata_location,
            data_files=resolution.data_files,
            record_count=resolution.record_count,
        )

    def _resolution(self, metadata_location: str, snapshot: Snapshot) -> _Resolution:
        key = (metadata_location, snapshot.snapshot_id)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        resolution = self._resolve(metadata_location, snapshot)
        self._cache.put(key, resolution)
        return resolution

    def _resolve(self, metadata_location: str, snapshot: Snapshot) -> _Resolution:
        data_files = _summary_int(snapshot, "total-data-files")
        delete_files = _summary_int(snapshot, "total-delete-files")
        records = _summary_int(snapshot, "total-records")
        live: list[DataFile] | None = None
        if data_files is None or records is None or delete_files is None:
            live, delete_count = self._live_files(metadata_location, snapshot)
            data_files, delete_files = len(live), delete_count
            records = sum(f.record_count for f in live)
        if delete_files:
            return _Resolution(None, data_files, records)
        if data_files == 1:
            if live is None:
                live, _ = self._live_files(metadata_location, snapshot, stop_after=2)
            if len(live) == 1:
                only = live[0]
                if only.file_format == FileFormat.PARQUET and only.file_path.lower().endswith(".parquet"):
                    return _Resolution(only.file_path, data_files, records)
            return _Resolution(None, data_files, records)
        pattern = _summary_str(snapshot, SUMMARY_REGISTER_URI)
        registered = _summary_int(snapshot, SUMMARY_REGISTER_FILES)
        if pattern and registered is not None and registered == data_files:
            return _Resolution(pattern, data_files, records)
        return _Resolution(None, data_files, records)

    def _live_files(
        self, metadata_location: str, snapshot: Snapshot, stop_after: int | None = None
    ) -> tuple[list[DataFile], int]:
        """Live data files of a snapshot (up to ``stop_after``) and the number of live delete files."""
        io = self.storage.io_for(metadata_location)
        files: list[DataFile] = []
        deletes = 0

        def entries() -> Iterator[tuple[bool, DataFile]]:
            for manifest in snapshot.manifests(io):
                is_data = manifest.content == ManifestContent.DATA
                for item in manifest.fetch_manifest_entry(io, discard_deleted=True):
                    yield is_data, item.data_file

        for is_data, data_file in entries():
            if not is_data:
                deletes += 1
                continue
            files.append(data_file)
            if stop_after is not None and len(files) >= stop_after:
                break
        return files, deletes
