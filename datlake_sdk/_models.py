"""Typed results of the ``/api/v1`` endpoints.

Each result keeps the server's JSON in ``raw``, so fields the server adds later stay reachable
without an SDK release.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

JobStatus = Literal["queued", "running", "completed", "failed"]
JOB_FINAL_STATES: frozenset[str] = frozenset({"completed", "failed"})


def _timestamp(value: Any) -> datetime | None:
    """ISO-8601 text or epoch milliseconds → an aware datetime (UTC when no zone is given)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _id(value: Any) -> str | None:
    """Snapshot ids travel as strings (JavaScript loses int64 precision); accept numbers too."""
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class TableInfo:
    """A table the caller may see, as listed by ``GET /api/v1/tables``."""

    name: str
    latest_snapshot_id: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableInfo:
        return cls(name=str(data["name"]), latest_snapshot_id=_id(data.get("latest_snapshot_id")), raw=data)


@dataclass(frozen=True)
class Snapshot:
    """One snapshot of a table, with the URI a reader (DuckDB) uses to read exactly its rows.

    Entries of a table's history (``DatalakeClient.snapshots``) carry no ``uri``, ``format`` or
    ``schema``; ``DatalakeClient.get_snapshot`` returns them in full.

    ``format`` tells how to read ``uri``: ``parquet`` (one file, a prefix or a glob:
    ``SELECT * FROM '<uri>'``) or ``iceberg`` (the table's metadata JSON: ``iceberg_scan('<uri>')``).
    """

    table_name: str
    snapshot_id: str | None
    uri: str | None
    format: str | None
    created_at: datetime | None
    schema: dict[str, Any] | None
    metadata_location: str | None
    data_files: int | None
    record_count: int | None
    parent_snapshot_id: str | None = None
    operation: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], table_name: str | None = None) -> Snapshot:
        data_files = data.get("data_files")
        if isinstance(data_files, list):
            data_files = len(data_files)
        return cls(
            table_name=str(data.get("table_name") or table_name or ""),
            snapshot_id=_id(data.get("snapshot_id")),
            uri=data.get("uri"),
            format=data.get("format"),
            created_at=_timestamp(data.get("created_at")),
            schema=data.get("schema"),
            metadata_location=data.get("metadata_location"),
            data_files=_int(data_files),
            record_count=_int(data.get("record_count")),
            parent_snapshot_id=_id(data.get("parent_snapshot_id")),
            operation=data.get("operation"),
            raw=data,
        )


@dataclass(frozen=True)
class Job:
    """A register-snapshot job: ``queued`` → ``running`` → ``completed`` or ``failed``."""

    job_id: str
    status: str
    table_name: str | None = None
    uri: str | None = None
    mode: str | None = None
    format: str | None = None
    snapshot_id: str | None = None
    error: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int | None = None
    handed_back: int | None = None
    submitted_by: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """True once the job reached ``completed`` or ``failed``."""
        return self.status in JOB_FINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        return cls(
            job_id=str(data["job_id"]),
            status=str(data["status"]),
            table_name=data.get("table_name"),
            uri=data.get("uri"),
            mode=data.get("mode"),
            format=data.get("format"),
            snapshot_id=_id(data.get("snapshot_id")),
            error=data.get("error"),
            created_at=_timestamp(data.get("created_at")),
            started_at=_timestamp(data.get("started_at")),
            finished_at=_timestamp(data.get("finished_at")),
            attempts=_int(data.get("attempts")),
            handed_back=_int(data.get("handed_back")),
            submitted_by=data.get("submitted_by"),
            raw=data,
        )
