"""Views: create, load, list, replace (commit), drop, rename and register.

A view is an ``entities`` row of kind ``view`` whose pointer names a view metadata file
(``<location>/metadata/<NNNNN>-<uuid>.metadata.json``). Tables and views share one name space
per namespace. A replace follows the same shape as a table commit: read the current metadata,
check the requirements (``assert-view-uuid``) against it, apply the updates, write the new
metadata file, then compare-and-swap the pointer; a lost race starts again on the new base.

The update rules are those of the Iceberg view spec as the Java implementation enforces them
(what Spark and PyIceberg expect): schemas and versions that already exist are reused instead of
duplicated, ids are assigned by the catalog, ``-1`` means "the schema/version added last in this
request", setting the current version appends to the version log, old versions are expired past
``version.history.num-entries`` and a replace may not silently drop a SQL dialect.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field, ValidationError
from pyiceberg.exceptions import ValidationError as IcebergValidationError
from pyiceberg.schema import Schema
from pyiceberg.table.update import (
    AddSchemaUpdate,
    AssignUUIDUpdate,
    RemovePropertiesUpdate,
    SetLocationUpdate,
    SetPropertiesUpdate,
    UpgradeFormatVersionUpdate,
)
from pyiceberg.typedef import IcebergBaseModel
from pyiceberg.view.metadata import ViewHistoryEntry, ViewMetadata, ViewVersion

from catalog import errors
from catalog.lru import LruCache
from catalog.persistence.store import VIEW, CatalogStore, EntityRow, Namespace, Page, PointerSwap, Warehouse
from catalog.service.identifiers import check_entity_name, check_namespace
from catalog.service.locations import check_inside_warehouse, default_table_location, normalize
from catalog.service.tables import DROP_ATTEMPTS
from catalog.storage.fileio import MetadataFileMissing, Storage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
LAST_ADDED = -1
SUPPORTED_FORMAT_VERSION = 1
VERSION_HISTORY_SIZE = "version.history.num-entries"
VERSION_HISTORY_SIZE_DEFAULT = 10
REPLACE_DROP_DIALECT_ALLOWED = "replace.drop-dialect.allowed"
WRITE_METADATA_PATH = "write.metadata.path"
CACHE_ENTRIES = 512

_METADATA_FILE_VERSION = re.compile(r"^(\d+)-.*\.metadata\.json$")


class AssertViewUUID(IcebergBaseModel):
    """The only view requirement of the spec: the view's UUID is still the one the client read."""

    type: Literal["assert-view-uuid"] = Field(default="assert-view-uuid")
    uuid: str


class AddViewVersionUpdate(IcebergBaseModel):
    action: Literal["add-view-version"] = Field(default="add-view-version")
    view_version: ViewVersion = Field(alias="view-version")


class SetCurrentViewVersionUpdate(IcebergBaseModel):
    action: Literal["set-current-view-version"] = Field(default="set-current-view-version")
    view_version_id: int = Field(alias="view-version-id")


ViewUpdate = Annotated[
    AssignUUIDUpdate
    | UpgradeFormatVersionUpdate
    | AddSchemaUpdate
    | SetLocationUpdate
    | SetPropertiesUpdate
    | RemovePropertiesUpdate
    | AddViewVersionUpdate
    | SetCurrentViewVersionUpdate,
    Field(discriminator="action"),
]


@dataclass(frozen=True)
class LoadedView:
    metadata_location: str
    metadata: ViewMetadata
    json_bytes: bytes  # the metadata file's JSON, as served in LoadViewResult


def qualified(namespace: Namespace, name: str) -> str:
    return ".".join((*namespace, name))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _dialects(version: ViewVersion) -> set[str]:
    return {rep.root.dialect.casefold() for rep in version.representations}


def _same_version(one: ViewVersion, two: ViewVersion) -> bool:
    """Two versions define the same view when everything but their id and timestamp agrees."""
    return (
        one.schema_id == two.schema_id
        and one.summary == two.summary
        and one.representations == two.representations
        and one.default_catalog == two.default_catalog
        and tuple(one.default_namespace) == tuple(two.default_namespace)
    )


@dataclass
class _ViewBuilder:
    """Applies view updates to a base (or to nothing, for a create) and builds the new metadata."""

    base: ViewMetadata | None
    view_uuid: str | None = None
    format_version: int = SUPPORTED_FORMAT_VERSION
    location: str | None = None
    schemas: list[Schema] = field(default_factory=list)
    versions: list[ViewVersion] = field(default_factory=list)
    version_log: list[ViewHistoryEntry] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    current_version_id: int | None = None
    last_added_schema_id: int | None = None
    last_added_version_id: int | None = None
    added_version_ids: set[int] = field(default_factory=set)
    history_entry: ViewHistoryEntry | None = None

    @classmethod
    def from_base(cls, base: ViewMetadata | None) -> _ViewBuilder:
        if base is None:
            return cls(base=None)
        return cls(
            base=base,
            view_uuid=base.view_uuid,
            format_version=base.format_version,
            location=base.location,
            schemas=list(base.schemas),
            versions=list(base.versions),
            version_log=list(base.version_log),
            properties=dict(base.properties),
            current_version_id=base.current_version_id,
        )

    # --- single updates -------------------------------------------------------------------------

    def apply(self, update: ViewUpdate) -> None:
        if isinstance(update, AssignUUIDUpdate):
            self.assign_uuid(str(update.uuid))
        elif isinstance(update, UpgradeFormatVersionUpdate):
            self.upgrade_format_version(update.format_version)
        elif isinstance(update, AddSchemaUpdate):
            self.add_schema(update.schema_)
        elif isinstance(update, SetLocationUpdate):
            self.set_location(update.location)
        elif isinstance(update, SetPropertiesUpdate):
            self.set_properties(update.updates)
        elif isinstance(update, RemovePropertiesUpdate):
            self.remove_properties(update.removals)
        elif isinstance(update, AddViewVersionUpdate):
            self.add_version(update.view_version)
        else:
            self.set_current_version(update.view_version_id)

    def assign_uuid(self, value: str) -> None:
        try:
            new = str(uuid.UUID(value))
        except ValueError as exc:
            raise errors.BadRequest(f"Invalid view UUID: {value!r}") from exc
        if self.view_uuid is not None and str(uuid.UUID(self.view_uuid)) != new:
            raise errors.BadRequest(f"Cannot reassign the view UUID {self.view_uuid} to {new}")
        if self.view_uuid is None:
            self.view_uuid = new

    def upgrade_format_version(self, version: int) -> None:
        if version > SUPPORTED_FORMAT_VERSION or version < 1:
            raise errors.BadRequest(
                f"Cannot upgrade the view to unsupported format version v{version} "
                f"(supported: v{SUPPORTED_FORMAT_VERSION})"
            )
        if version < self.format_version:
            raise errors.BadRequest(f"Cannot downgrade a v{self.format_version} view to v{version}")
        self.format_version = version

    def add_schema(self, schema: Schema) -> int:
        """Add a schema, or reuse an identical one; return its id in this view."""
        new_id = max(schema.schema_id, 0)
        for existing in self.schemas:
            if existing == schema:  # Schema equality ignores the id
                self.last_added_schema_id = existing.schema_id
                return existing.schema_id
            if existing.schema_id >= new_id:
                new_id = existing.schema_id + 1
        if new_id != schema.schema_id:
            schema = schema.model_copy(update={"schema_id": new_id})
        self.schemas.append(schema)
        self.last_added_schema_id = new_id
        return new_id

    def set_location(self, location: str) -> None:
        if not location or not location.strip():
            raise errors.BadRequest("Invalid view location: it must be a non-empty string")
        self.location = normalize(location)

    def set_properties(self, updates: dict[str, str]) -> None:
        self.properties.update(updates)

    def remove_properties(self, removals: Sequence[str]) -> None:
        for key in removals:
            self.properties.pop(key, None)

    def add_version(self, version: ViewVersion) -> int:
        """Add a version (resolving schema id -1), or reuse an identical one; return its id."""
        schema_id = version.schema_id
        if schema_id == LAST_ADDED:
            if self.last_added_schema_id is None:
                raise errors.BadRequest("Cannot set the last added schema: no schema has been added")
            schema_id = self.last_added_schema_id
        if not any(s.schema_id == schema_id for s in self.schemas):
            raise errors.BadRequest(f"Cannot add a view version with unknown schema: {schema_id}")
        seen: set[str] = set()
        for rep in version.representations:
            dialect = rep.root.dialect.casefold()
            if dialect in seen:
                raise errors.BadRequest(
                    f"Invalid view version: cannot add multiple queries for dialect {rep.root.dialect}"
                )
            seen.add(dialect)
        if schema_id != version.schema_id:
            version = version.model_copy(update={"schema_id": schema_id})
        new_id = max(version.version_id, 1)
        for existing in self.versions:
            if _same_version(existing, version):
                self.last_added_version_id = existing.version_id
                return existing.version_id
            if existing.version_id >= new_id:
                new_id = existing.version_id + 1
        if new_id != version.version_id:
            version = version.model_copy(update={"version_id": new_id})
        self.versions.append(version)
        self.added_version_ids.add(new_id)
        self.last_added_version_id = new_id
        return new_id

    def set_current_version(self, version_id: int) -> None:
        if version_id == LAST_ADDED:
            if self.last_added_version_id is None:
                raise errors.BadRequest("Cannot set the last added view version: no view version has been added")
            version_id = self.last_added_version_id
        version = next((v for v in self.versions if v.version_id == version_id), None)
        if version is None:
            raise errors.BadRequest(f"Cannot set the current view version to unknown version: {version_id}")
        self.current_version_id = version_id
        timestamp = version.timestamp_ms if version_id in self.added_version_ids else _now_ms()
        self.history_entry = ViewHistoryEntry(timestamp_ms=timestamp, version_id=version_id)

    # --- the result -----------------------------------------------------------------------------

    def build(self) -> ViewMetadata:
        if self.view_uuid is None:
            raise errors.BadRequest("Invalid view: it has no UUID")
        if self.location is None:
            raise errors.BadRequest("Invalid view: it has no location")
        if not self.versions:
            raise errors.BadRequest("Invalid view: no versions were added")
        if self.current_version_id is None:
            raise errors.BadRequest("Invalid view: no current version was set")
        by_id = {v.version_id: v for v in self.versions}
        current = by_id[self.current_version_id]
        self._check_dialects(current)
        history = list(self.version_log)
        changed_current = self.base is None or self.base.current_version_id != self.current_version_id
        if changed_current and self.history_entry is not None:
            history.append(self.history_entry)
        versions, history = self._expire(history)
        try:
            return ViewMetadata(
                view_uuid=self.view_uuid,
                format_version=SUPPORTED_FORMAT_VERSION,
                location=self.location,
                schemas=self.schemas,
                current_version_id=self.current_version_id,
                versions=versions,
                version_log=history,
                properties=self.properties,
            )
        except (ValidationError, ValueError) as exc:
            raise errors.BadRequest(f"Invalid view metadata: {exc}") from exc

    def _check_dialects(self, current: ViewVersion) -> None:
        """A replace may not lose a dialect unless ``replace.drop-dialect.allowed`` says so."""
        if self.base is None or self.base.current_version_id == current.version_id:
            return
        if self.properties.get(REPLACE_DROP_DIALECT_ALLOWED, "false").strip().lower() == "true":
            return
        previous = next((v for v in self.base.versions if v.version_id == self.base.current_version_id), None)
        if previous is None:
            return
        before, after = _dialects(previous), _dialects(current)
        if not before <= after:
            raise errors.BadRequest(
                f"Cannot replace the view: it would lose the dialects {sorted(before - after)} "
                f"({REPLACE_DROP_DIALECT_ALLOWED}=false). Previous dialects: {sorted(before)}; "
                f"new dialects: {sorted(after)}"
            )

    def _expire(self, history: list[ViewHistoryEntry]) -> tuple[list[ViewVersion], list[ViewHistoryEntry]]:
        """Keep the newest ``version.history.num-entries`` versions (never the current or new ones)."""
        raw = self.properties.get(VERSION_HISTORY_SIZE, str(VERSION_HISTORY_SIZE_DEFAULT))
        try:
            size = int(raw)
        except ValueError as exc:
            raise errors.BadRequest(f"{VERSION_HISTORY_SIZE} must be an integer but was {raw!r}") from exc
        if size < 1:
            raise errors.BadRequest(f"{VERSION_HISTORY_SIZE} must be positive but was {size}")
        assert self.current_version_id is not None
        keep = set(self.added_version_ids) | {self.current_version_id}
        if len(self.versions) <= max(size, len(keep)):
            return list(self.versions), history
        for version_id in sorted((v.version_id for v in self.versions), reverse=True):
            if len(keep) >= size:
                break
            keep.add(version_id)
        versions = [v for v in self.versions if v.version_id in keep]
        # The log keeps only its tail of entries whose versions all still exist.
        kept: list[ViewHistoryEntry] = []
        for entry in history:
            if entry.version_id in keep:
                kept.append(entry)
            else:
                kept = []
        return versions, kept


def _validate_requirements(requirements: Sequence[AssertViewUUID], base: ViewMetadata) -> None:
    for requirement in requirements:
        try:
            expected = uuid.UUID(requirement.uuid)
        except ValueError as exc:
            raise errors.BadRequest(f"Invalid assert-view-uuid requirement: {requirement.uuid!r}") from exc
        if uuid.UUID(base.view_uuid) != expected:
            raise errors.CommitFailed(
                f"Requirement failed: view UUID does not match: expected {requirement.uuid} != {base.view_uuid}"
            )


def _check_consistent(metadata: ViewMetadata, location: str) -> None:
    """What PyIceberg and Spark rely on when they read a view: the current version and its schema exist."""
    schema_ids = {s.schema_id for s in metadata.schemas}
    versions = {v.version_id: v for v in metadata.versions}
    current = versions.get(metadata.current_version_id)
    if current is None:
        raise errors.BadRequest(
            f"Invalid view metadata at {location}: current version {metadata.current_version_id} is not a version"
        )
    for version in metadata.versions:
        if version.schema_id not in schema_ids:
            raise errors.BadRequest(
                f"Invalid view metadata at {location}: version {version.version_id} "
                f"names unknown schema {version.schema_id}"
            )


def _metadata_file_version(location: str) -> int:
    match = _METADATA_FILE_VERSION.match(location.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else -1


def _new_metadata_file(metadata: ViewMetadata, version: int) -> str:
    directory = metadata.properties.get(WRITE_METADATA_PATH) or f"{metadata.location}/metadata"
    return f"{normalize(directory)}/{version:05d}-{uuid.uuid4()}.metadata.json"


class ViewService:
    def __init__(self, store: CatalogStore, storage: Storage, cache_entries: int = CACHE_ENTRIES) -> None:
        self.store = store
        self.storage = storage
        self._cache: LruCache[str, LoadedView] = LruCache(cache_entries)

    # --- reading ----------------------------------------------------------------------------------

    def get(self, warehouse: Warehouse, namespace: Namespace, name: str) -> EntityRow:
        namespace = check_namespace(namespace)
        name = check_entity_name(name)
        entity = self.store.get_entity(warehouse.id, namespace, name, VIEW)
        if entity is None:
            # NoSuchView even when the namespace is missing (as loadTable answers NoSuchTable): Spark
            # resolves `db.tbl.snapshots` by also asking for view `snapshots` in namespace `db.tbl`.
            raise errors.NoSuchView(f"View does not exist: {qualified(namespace, name)}")
        return entity

    def load(self, warehouse: Warehouse, namespace: Namespace, name: str) -> LoadedView:
        entity = self.get(warehouse, namespace, name)
        try:
            return self._read(entity.metadata_location)
        except MetadataFileMissing as exc:
            raise errors.StorageUnavailable(
                f"Metadata file of view {qualified(namespace, name)} is missing: {entity.metadata_location}"
            ) from exc

    def list(
        self,
        warehouse: Warehouse,
        namespace: Namespace,
        page_token: str | None,
        page_size: int | None,
        only: Collection[str] | None = None,
    ) -> Page:
        """Views of a namespace; ``only`` (names) keeps those the caller may see."""
        return self.store.list_entities(warehouse.id, check_namespace(namespace), VIEW, page_token, page_size, only)

    def _read(self, location: str) -> LoadedView:
        """Parse the view metadata file at ``location`` (cached: metadata files never change)."""
        cached = self._cache.get(location)
        if cached is not None:
            return cached
        raw = self.storage.read_metadata_json(location)
        try:
            metadata = ViewMetadata.model_validate_json(raw)
        except (ValidationError, ValueError, IcebergValidationError) as exc:
            raise errors.BadRequest(f"Not a valid Iceberg view metadata file: {location}: {exc}") from exc
        _check_consistent(metadata, location)
        loaded = LoadedView(location, metadata, raw)
        self._remember(loaded)
        return loaded

    def _remember(self, loaded: LoadedView) -> None:
        self._cache.put(loaded.metadata_location, loaded)

    def _write(self, warehouse: Warehouse, metadata: ViewMetadata, version: int) -> LoadedView:
        check_inside_warehouse(metadata.location, warehouse)
        location = check_inside_warehouse(_new_metadata_file(metadata, version), warehouse)
        raw = metadata.model_dump_json().encode()
        self.storage.write_new(location, raw)
        return LoadedView(location, metadata, raw)

    # --- writing ----------------------------------------------------------------------------------

    def create(
        self,
        warehouse: Warehouse,
        namespace: Namespace,
        name: str,
        schema: Schema,
        version: ViewVersion,
        *,
        location: str | None = None,
        properties: dict[str, str] | None = None,
    ) -> LoadedView:
        """Create a view whose first (current) version is ``version`` over ``schema``."""
        namespace = check_namespace(namespace)
        name = check_entity_name(name)
        ns = self.store.get_namespace(warehouse.id, namespace)
        if (kind := self.store.entity_kind(warehouse.id, namespace, name)) is not None:
            raise errors.AlreadyExists(f"A {kind} already exists: {qualified(namespace, name)}")
        if location:
            location = check_inside_warehouse(location, warehouse)
        else:
            location = default_table_location(warehouse, namespace, ns.properties, name)
        builder = _ViewBuilder.from_base(None)
        builder.assign_uuid(str(uuid.uuid4()))
        builder.set_location(location)
        builder.set_properties(dict(properties or {}))
        # The spec: the view version's schema-id is replaced by the id the schema gets here.
        schema_id = builder.add_schema(schema)
        builder.set_current_version(builder.add_version(version.model_copy(update={"schema_id": schema_id})))
        loaded = self._write(warehouse, builder.build(), 0)
        try:
            self.store.create_entity(warehouse.id, namespace, name, VIEW, loaded.metadata_location, replace=False)
        except BaseException:
            self.storage.delete_quietly([loaded.metadata_location])
            raise
        self._remember(loaded)
        return loaded

    def replace(
        self,
        warehouse: Warehouse,
        namespace: Namespace,
        name: str,
        requirements: Sequence[AssertViewUUID],
        updates: Sequence[ViewUpdate],
    ) -> LoadedView:
        """Commit updates to a view: validate against the current metadata, write, compare-and-swap."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            entity = self.get(warehouse, namespace, name)
            try:
                base = self._read(entity.metadata_location)
            except MetadataFileMissing as exc:
                raise errors.StorageUnavailable(
                    f"The view's current metadata file is missing: {entity.metadata_location}"
                ) from exc
            _validate_requirements(requirements, base.metadata)
            builder = _ViewBuilder.from_base(base.metadata)
            for update in updates:
                builder.apply(update)
            new_metadata = builder.build()
            if new_metadata.model_dump(mode="json") == base.metadata.model_dump(mode="json"):
                return base  # nothing changes: no new metadata file
            written = self._write(warehouse, new_metadata, _metadata_file_version(entity.metadata_location) + 1)
            try:
                self.store.swap_pointers(
                    warehouse.id,
                    [
                        PointerSwap(
                            entity_id=entity.id,
                            expected=entity.metadata_location,
                            new=written.metadata_location,
                            namespace_id=entity.namespace_id,
                            name=entity.name,
                            kind=VIEW,
                        )
                    ],
                )
            except errors.ConcurrentCommit:
                self.storage.delete_quietly([written.metadata_location])
                if attempt == MAX_ATTEMPTS:
                    raise
                log.info("view commit race lost, retrying on the new base (attempt %d)", attempt)
                continue
            except BaseException:
                self.storage.delete_quietly([written.metadata_location])
                raise
            self._remember(written)
            return written
        raise AssertionError("unreachable")

    def register(self, warehouse: Warehouse, namespace: Namespace, name: str, metadata_location: str) -> LoadedView:
        """Track an existing view metadata file (inside the warehouse) under a new name."""
        namespace = check_namespace(namespace)
        name = check_entity_name(name)
        self.store.get_namespace(warehouse.id, namespace)
        metadata_location = check_inside_warehouse(metadata_location, warehouse)
        try:
            loaded = self._read(metadata_location)
        except MetadataFileMissing as exc:
            raise errors.BadRequest(f"No metadata file at {metadata_location}") from exc
        check_inside_warehouse(loaded.metadata.location, warehouse)
        self.store.create_entity(warehouse.id, namespace, name, VIEW, metadata_location, replace=False)
        return loaded

    def drop(self, warehouse: Warehouse, namespace: Namespace, name: str) -> None:
        """Forget the view; its metadata files stay (they hold no data). As for tables, the row is
        deleted only as it was read: one renamed meanwhile is not dropped under its old name."""
        for _ in range(DROP_ATTEMPTS):
            if self.store.delete_entity(warehouse.id, self.get(warehouse, namespace, name)):
                return
        raise errors.CommitFailed(f"View {qualified(namespace, name)} kept changing while it was dropped; retry")

    def rename(self, warehouse: Warehouse, source: tuple[Namespace, str], destination: tuple[Namespace, str]) -> None:
        src_ns, src_name = check_namespace(source[0]), check_entity_name(source[1])
        dst_ns, dst_name = check_namespace(destination[0]), check_entity_name(destination[1])
        entity = self.store.get_entity(warehouse.id, src_ns, src_name, VIEW)
        if entity is None:
            raise errors.NoSuchView(f"View does not exist: {qualified(src_ns, src_name)}")
        try:
            self.store.rename_entity(warehouse.id, entity, dst_ns, dst_name)
        except errors.NoSuchTable as exc:  # the row vanished between the read and the rename
            raise errors.NoSuchView(f"View does not exist: {qualified(src_ns, src_name)}") from exc
