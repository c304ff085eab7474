"""Pydantic models of every /api/v1 request and response body (detached mode).

Snapshot ids are strings: JavaScript clients lose precision on 64-bit integers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from catalog.persistence.jobs import JobRow
from catalog.service.detached import ListedTable, ResolvedSnapshot, SnapshotEntry


def _id(value: int | None) -> str | None:
    return str(value) if value is not None else None


class TableItem(BaseModel):
    name: str = Field(description="`table` in the default namespace, `namespace.table` elsewhere.")
    latest_snapshot_id: str | None = Field(description="Id of the current snapshot; null before the first one.")

    @classmethod
    def of(cls, table: ListedTable) -> TableItem:
        return cls(name=table.name, latest_snapshot_id=_id(table.latest_snapshot_id))


class SnapshotItem(BaseModel):
    """One snapshot of a table's history."""

    snapshot_id: str
    parent_snapshot_id: str | None
    created_at: datetime
    operation: str | None
    data_files: int | None
    record_count: int | None

    @classmethod
    def of(cls, entry: SnapshotEntry) -> SnapshotItem:
        return cls(
            snapshot_id=str(entry.snapshot_id),
            parent_snapshot_id=_id(entry.parent_snapshot_id),
            created_at=entry.created_at,
            operation=entry.operation,
            data_files=entry.data_files,
            record_count=entry.record_count,
        )


class SnapshotDetail(BaseModel):
    """A snapshot and where to read it directly."""

    model_config = ConfigDict(populate_by_name=True)

    table_name: str
    snapshot_id: str
    parent_snapshot_id: str | None
    created_at: datetime
    operation: str | None
    uri: str = Field(
        description="`SELECT * FROM '<uri>'` in DuckDB reads exactly this snapshot's rows when `format` is "
        "`parquet` (one file, or the glob of one registration); with `format` `iceberg` it is the metadata "
        "JSON, for `iceberg_scan`."
    )
    format: Literal["parquet", "iceberg"]
    table_schema: dict[str, Any] = Field(alias="schema", description="The Iceberg schema (JSON) of the snapshot.")
    metadata_location: str
    data_files: int
    record_count: int
    presigned_urls: list[str] | None = Field(
        default=None,
        description="With `access=presigned`: expiring HTTPS GET URLs of the snapshot's data files, for readers "
        "without S3 keys (DuckDB: `SELECT * FROM read_parquet([...])`).",
    )
    presigned_urls_expire_at: datetime | None = Field(default=None, description="When the presigned URLs stop working.")

    @classmethod
    def of(cls, snapshot: ResolvedSnapshot) -> SnapshotDetail:
        return cls(
            table_name=snapshot.table_name,
            snapshot_id=str(snapshot.snapshot_id),
            parent_snapshot_id=_id(snapshot.parent_snapshot_id),
            created_at=snapshot.created_at,
            operation=snapshot.operation,
            uri=snapshot.uri,
            format=snapshot.format,
            table_schema=snapshot.schema,
            metadata_location=snapshot.metadata_location,
            data_files=snapshot.data_files,
            record_count=snapshot.record_count,
        )


class RegisterSnapshotRequest(BaseModel):
    """Wrap Parquet objects already in the object store into a new snapshot of a table."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    table_name: str = Field(min_length=1, max_length=1024, description="`table` or `namespace.table`.")
    uri: str = Field(
        min_length=1,
        max_length=4096,
        description="One Parquet object, a prefix ending in `/`, or a glob (`*`, `**`, `[...]`).",
    )
    format: str = Field(default="parquet", description="Only `parquet`.")
    table_schema: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="Iceberg schema JSON. Used to create a new table (else inferred from the first file); "
        "for an existing table it must match the table's schema.",
    )
    mode: Literal["overwrite", "append"] = Field(
        default="overwrite",
        description="`overwrite`: the files become the table's whole new snapshot; `append`: they are added.",
    )


class JobAccepted(BaseModel):
    job_id: str
    status: Literal["queued", "running", "completed", "failed"]


class JobDetail(BaseModel):
    job_id: str
    status: Literal["queued", "running", "completed", "failed"]
    table_name: str
    uri: str
    format: str
    mode: str
    snapshot_id: str | None
    error: str | None
    attempts: int = Field(description="Runs of the job so far (the running one included).")
    handed_back: int = Field(
        description="Runs a stopping worker gave back unfinished; they do not count against the attempt limit."
    )
    submitted_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: JobRow) -> JobDetail:
        return cls(
            job_id=job.id,
            status=job.status,
            table_name=job.table_name,
            uri=job.uri,
            format=job.format,
            mode=job.mode,
            snapshot_id=job.snapshot_id,
            error=job.error,
            attempts=job.attempts,
            handed_back=job.handbacks,
            submitted_by=job.submitted_by,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )
