"""Object listing and tail reads for registering data files, through the FileIO's filesystem.

PyIceberg's FileIO reads and writes single objects but cannot list; the register-snapshot job
needs both listing (a prefix or a glob) and cheap footer reads (the last bytes of each object),
so this module reaches the PyArrow filesystem behind the catalog's ``PyArrowFileIO``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyarrow import fs as pafs
from pyiceberg.io.pyarrow import PyArrowFileIO

from catalog import errors
from catalog.storage.fileio import Storage

GLOB_CHARS = "*?["


@dataclass(frozen=True)
class ObjectInfo:
    location: str  # full URI, e.g. s3://bucket/key
    size: int


def has_glob(uri: str) -> bool:
    return any(ch in uri for ch in GLOB_CHARS)


def glob_root(pattern: str) -> str:
    """The directory part of a glob before its first wildcard, ending in '/'."""
    first = min(pattern.index(ch) for ch in GLOB_CHARS if ch in pattern)
    return pattern[: pattern.rindex("/", 0, first) + 1]


def _segment_regex(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        ch = segment[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "[":
            end = segment.find("]", i + 2)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = segment[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """DuckDB's glob semantics: ``*`` stays within one path segment, a ``**`` segment spans any
    number of directories (also none), ``[abc]``/``[!abc]`` are character classes."""
    segments = pattern.split("/")
    parts: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".+" if last else "(?:[^/]+/)*")
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    return re.compile("".join(parts) + r"\Z")


class ObjectStore:
    """Listing and ranged reads of data objects in the locations the catalog can reach."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _fs(self, location: str) -> tuple[pafs.FileSystem, str, str]:
        """(filesystem, path inside it, URI prefix that turns a path back into a location)."""
        io = self.storage.io_for(location)
        if not isinstance(io, PyArrowFileIO):  # pragma: no cover - the catalog always configures PyArrowFileIO
            raise errors.StorageUnavailable(f"Listing is not supported by {type(io).__name__}")
        scheme, netloc, path = io.parse_location(location, io.properties)
        filesystem = io.fs_by_scheme(scheme, netloc)
        if scheme == "file":
            return filesystem, path, "file://"
        return filesystem, path, f"{scheme}://"

    def info(self, location: str) -> ObjectInfo | None:
        """The object at ``location``; None when there is none. A directory raises BadRequest."""
        filesystem, path, _ = self._fs(location)
        try:
            found = filesystem.get_file_info(path)
        except OSError as exc:
            raise errors.StorageUnavailable(f"Object store unavailable reading {location}: {exc}") from exc
        if found.type == pafs.FileType.NotFound:
            return None
        if found.type == pafs.FileType.Directory:
            raise errors.BadRequest(f"{location} is a directory: end the URI with '/' to register every object in it")
        return ObjectInfo(location, found.size or 0)

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object under ``prefix`` (a directory URI ending in '/'), recursively, sorted by location."""
        filesystem, path, scheme_prefix = self._fs(prefix)
        selector = pafs.FileSelector(path.rstrip("/"), recursive=True, allow_not_found=True)
        try:
            found = filesystem.get_file_info(selector)
        except OSError as exc:
            raise errors.StorageUnavailable(f"Object store unavailable listing {prefix}: {exc}") from exc
        objects = [
            ObjectInfo(scheme_prefix + info.path, info.size or 0) for info in found if info.type == pafs.FileType.File
        ]
        return sorted(objects, key=lambda o: o.location)

    def read_tail(self, location: str, length: int) -> tuple[bytes, int]:
        """The last ``length`` bytes of an object (fewer when it is smaller) and its size.

        Raises FileNotFoundError when the object is gone.
        """
        filesystem, path, _ = self._fs(location)
        try:
            with filesystem.open_input_file(path) as stream:
                size = stream.size()
                count = min(size, length)
                data = stream.read_at(count, size - count) if count else b""
        except FileNotFoundError:
            raise
        except OSError as exc:
            if "does not exist" in str(exc) or "NoSuchKey" in str(exc) or "404" in str(exc):
                raise FileNotFoundError(location) from exc
            raise errors.StorageUnavailable(f"Object store unavailable reading {location}: {exc}") from exc
        return bytes(data), size
