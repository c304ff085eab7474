"""Object-store access for the catalog, through PyIceberg's FileIO, except the new metadata file
of a commit on S3, which :meth:`catalog.storage.s3.S3Access.put_object` writes in one request.

Metadata files are immutable once written, so parsed table metadata and its JSON bytes are
cached by location: a warm ``loadTable`` touches the database once and the store never.
Every storage failure surfaces as :class:`errors.StorageUnavailable` (503), a missing file as
:class:`errors.NotFound`-family errors chosen by the caller.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pyiceberg.exceptions import ValidationError as IcebergValidationError
from pyiceberg.io import FileIO, load_file_io
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.table.metadata import TableMetadata, TableMetadataUtil
from pyiceberg.typedef import UTF8

from catalog import errors
from catalog.config import Settings
from catalog.lru import LruCache
from catalog.storage.s3 import access_for, is_s3


class MetadataFileMissing(Exception):
    """The metadata file a pointer names does not exist (anymore)."""


class MetadataFileInvalid(errors.BadRequest):
    """The file exists but is not valid table metadata: 400 for a client's file (register), while
    callers reading a table's *current* file turn it into 503 (the catalog's state is damaged)."""


@dataclass(frozen=True)
class CachedMetadata:
    metadata: TableMetadata
    json_bytes: bytes


def _is_storage_failure(exc: BaseException) -> bool:
    return isinstance(exc, OSError | ConnectionError | TimeoutError) and not isinstance(exc, FileNotFoundError)


class CatalogFileIO(PyArrowFileIO):
    """PyIceberg's PyArrowFileIO with S3 output streams opened lazily (``allow_delayed_open``).

    A small file (table metadata, a manifest) then goes up as one PutObject when it is closed
    instead of a three-request multipart upload; large files still stream in parts.
    """

    def _initialize_s3_fs(self, netloc: str | None) -> Any:
        filesystem = super()._initialize_s3_fs(netloc)
        rebuild, (options,) = filesystem.__reduce__()  # every option PyIceberg set, plus one
        return rebuild({**options, "allow_delayed_open": True})


class Storage:
    """FileIO per warehouse scheme, and the metadata cache."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._io_lock = threading.Lock()
        self._io: dict[str, FileIO] = {}
        self._cache: LruCache[str, CachedMetadata] = LruCache(settings.metadata_cache_entries)

    # --- FileIO -------------------------------------------------------------------------------

    def properties_for(self, location: str) -> dict[str, str]:
        """FileIO properties the catalog itself uses for a location."""
        props: dict[str, str] = {"py-io-impl": "catalog.storage.fileio.CatalogFileIO"}
        if location.startswith(("s3://", "s3a://", "s3n://")):
            props.update(self._settings.s3_properties())
            props.setdefault("s3.connect-timeout", "5")
            props.setdefault("s3.request-timeout", "30")
        return props

    def client_config(self, location: str) -> dict[str, str]:
        """Non-secret storage settings handed to clients with a table (endpoint, addressing, region)."""
        if not location.startswith(("s3://", "s3a://", "s3n://")):
            return {}
        config = {"s3.region": self._settings.s3_region, "client.region": self._settings.s3_region}
        if self._settings.client_s3_endpoint:
            config["s3.endpoint"] = self._settings.client_s3_endpoint
        if self._settings.s3_path_style_access:
            config["s3.path-style-access"] = "true"
        return config

    def io_for(self, location: str) -> FileIO:
        scheme = location.split("://", 1)[0] if "://" in location else "file"
        with self._io_lock:
            io = self._io.get(scheme)
            if io is None:
                io = load_file_io(self.properties_for(location), location)
                self._io[scheme] = io
            return io

    # --- metadata files -----------------------------------------------------------------------

    def read_metadata_json(self, location: str) -> bytes:
        """The JSON of a table or view metadata file, gunzipped when it is compressed."""
        raw = self.read_bytes(location)
        if location.endswith(".gz.metadata.json") or raw[:2] == b"\x1f\x8b":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error) as exc:
                raise MetadataFileInvalid(f"Not a valid gzip metadata file: {location}") from exc
        return raw

    def cached_table_metadata(self, location: str) -> CachedMetadata | None:
        """The parsed metadata file if it is in the cache (no I/O)."""
        return self._cache.get(location)

    def read_table_metadata(self, location: str) -> CachedMetadata:
        """Parse the metadata file at ``location`` (cached; files never change once written)."""
        entry = self._cache.get(location)
        if entry is not None:
            return entry
        raw = self.read_metadata_json(location)
        try:
            metadata = TableMetadataUtil.parse_raw(raw)  # type: ignore[arg-type]  # pydantic accepts bytes
        except (ValidationError, IcebergValidationError, ValueError) as exc:
            raise MetadataFileInvalid(f"Not a valid Iceberg table metadata file: {location}: {exc}") from exc
        entry = CachedMetadata(metadata, raw)
        self._cache.put(location, entry)
        return entry

    def read_bytes(self, location: str) -> bytes:
        try:
            with self.io_for(location).new_input(location).open() as stream:
                return stream.read()
        except FileNotFoundError as exc:
            raise MetadataFileMissing(location) from exc
        except Exception as exc:
            if isinstance(exc, IsADirectoryError) or "is a directory" in str(exc):  # PyArrow: a bare OSError
                raise MetadataFileMissing(location) from exc
            if _is_storage_failure(exc):
                raise errors.StorageUnavailable(f"Object store unavailable reading {location}: {exc}") from exc
            raise

    def write_table_metadata(self, metadata: TableMetadata, location: str) -> CachedMetadata:
        """Write a new metadata file (never overwriting one) and cache it."""
        try:
            raw = metadata.model_dump_json(exclude_none=True).encode(UTF8)
        except NotImplementedError as exc:  # PyIceberg 0.12 reads format v3 but cannot write it
            raise errors.NotImplementedByCatalog(f"Cannot write this table's metadata: {exc}") from exc
        self.write_new(location, raw, unique_name=True)
        entry = CachedMetadata(metadata, raw)
        self._cache.put(location, entry)
        return entry

    def write_new(self, location: str, payload: bytes, *, unique_name: bool = False) -> None:
        """Write a file that must not exist yet. ``unique_name``: the name carries a random UUID
        (``<version>-<uuid>.metadata.json``), so the existence check (two S3 requests) is skipped."""
        if unique_name and is_s3(location):
            access_for(self._settings).put_object(location, payload)
            return
        try:
            with self.io_for(location).new_output(location).create(overwrite=unique_name) as stream:
                stream.write(payload)
        except FileExistsError as exc:
            raise errors.CommitFailed(f"Metadata file already exists: {location}") from exc
        except Exception as exc:
            if _is_storage_failure(exc):
                raise errors.StorageUnavailable(f"Object store unavailable writing {location}: {exc}") from exc
            raise

    def delete_quietly(self, locations: Iterable[str]) -> None:
        """Best-effort removal (orphaned metadata of a failed commit, purged files)."""
        for location in locations:
            try:
                self.io_for(location).delete(location)
            except Exception:  # noqa: BLE001 - cleanup must never mask the real outcome
                pass
            self._cache.discard(location)

    def check_reachable(self, location: str) -> None:
        """Raise unless the store behind ``location`` answers (a missing object is fine)."""
        self.io_for(location).new_input(location.rstrip("/") + "/.datlake-readiness-probe").exists()

    def exists(self, location: str) -> bool:
        try:
            return self.io_for(location).new_input(location).exists()
        except Exception as exc:
            if _is_storage_failure(exc):
                raise errors.StorageUnavailable(f"Object store unavailable: {exc}") from exc
            raise
