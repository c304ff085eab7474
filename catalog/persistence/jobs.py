"""All SQL of register-snapshot jobs: the ``jobs`` table is the source of truth for their state.

Every state change is a conditional UPDATE on ``(id, status, attempts)``: a worker owns a job
for exactly one attempt, so a late heartbeat or a late outcome from a worker that was presumed
dead (and whose job was requeued) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, RowMapping, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from catalog.persistence.schema import jobs
from catalog.persistence.store import namespace_key, namespace_levels

QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"


@dataclass(frozen=True)
class JobRow:
    id: str
    warehouse_id: int
    table_name: str
    namespace: tuple[str, ...]
    table: str
    uri: str
    format: str
    mode: str
    schema: dict[str, Any] | None
    status: str
    snapshot_id: str | None
    error: str | None
    submitted_by: str | None
    idempotency_key: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    handbacks: int = 0

    @property
    def counted_attempts(self) -> int:
        """Attempts that count against ``DATLAKE_JOB_MAX_ATTEMPTS``: all but those handed back by a stopping worker."""
        return self.attempts - self.handbacks


@dataclass(frozen=True)
class NewJob:
    id: str
    warehouse_id: int
    table_name: str
    namespace: tuple[str, ...]
    table: str
    uri: str
    format: str
    mode: str
    schema: dict[str, Any] | None
    submitted_by: str | None
    idempotency_key: str | None


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; every stored time is UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


def _row(r: RowMapping) -> JobRow:
    created = utc(r["created_at"])
    assert created is not None
    return JobRow(
        id=r["id"],
        warehouse_id=r["warehouse_id"],
        table_name=r["table_name"],
        namespace=namespace_levels(r["namespace"]),
        table=r["table"],
        uri=r["uri"],
        format=r["format"],
        mode=r["mode"],
        schema=r["schema"],
        status=r["status"],
        snapshot_id=r["snapshot_id"],
        error=r["error"],
        submitted_by=r["submitted_by"],
        idempotency_key=r["idempotency_key"],
        attempts=r["attempts"] or 0,
        created_at=created,
        started_at=utc(r["started_at"]),
        finished_at=utc(r["finished_at"]),
        heartbeat_at=utc(r["heartbeat_at"]),
        handbacks=r["handbacks"] or 0,
    )


@dataclass(frozen=True)
class Backlog:
    """Jobs not finished yet, across every process that shares the database."""

    queued: int
    running: int
    oldest_queued_at: datetime | None


class JobStore:
    """Repository over the ``jobs`` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, job: NewJob) -> tuple[JobRow, bool]:
        """Insert a queued job; with an idempotency key already used by the same submitter return
        that job instead. The flag says whether the job is new."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(jobs).values(
                        id=job.id,
                        warehouse_id=job.warehouse_id,
                        table_name=job.table_name,
                        namespace=namespace_key(job.namespace),
                        table=job.table,
                        uri=job.uri,
                        format=job.format,
                        mode=job.mode,
                        schema=job.schema,
                        status=QUEUED,
                        submitted_by=job.submitted_by,
                        idempotency_key=job.idempotency_key,
                        attempts=0,
                        created_at=now(),
                    )
                )
        except IntegrityError:
            if job.idempotency_key is None:
                raise
            existing = self.by_idempotency_key(job.submitted_by, job.idempotency_key)
            if existing is None:
                raise
            return existing, False
        created = self.get(job.id)
        assert created is not None
        return created, True

    def by_idempotency_key(self, submitted_by: str | None, key: str) -> JobRow | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(jobs).where(
                        jobs.c.idempotency_key == key,
                        jobs.c.submitted_by.is_(None) if submitted_by is None else jobs.c.submitted_by == submitted_by,
                    )
                )
                .mappings()
                .first()
            )
        return _row(row) if row is not None else None

    def get(self, job_id: str) -> JobRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return _row(row) if row is not None else None

    def page(self, submitted_by: str | None, limit: int, after: tuple[datetime, str] | None = None) -> list[JobRow]:
        """Jobs newest first; ``submitted_by=None`` lists everyone's. ``after`` is the last (created_at, id) seen."""
        query = select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        if submitted_by is not None:
            query = query.where(jobs.c.submitted_by == submitted_by)
        if after is not None:
            created, job_id = after
            query = query.where(
                or_(jobs.c.created_at < created, and_(jobs.c.created_at == created, jobs.c.id < job_id))
            )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_row(r) for r in rows]

    def claim(self, job_id: str) -> JobRow | None:
        """queued → running for one more attempt; None when the job is not queued (any more)."""
        at = now()
        with self.engine.begin() as conn:
            result = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == QUEUED)
                .values(status=RUNNING, attempts=jobs.c.attempts + 1, started_at=at, heartbeat_at=at, error=None)
            )
            if result.rowcount != 1:
                return None
        return self.get(job_id)

    def heartbeat(self, job_id: str, attempt: int) -> bool:
        """Record that the attempt's worker is alive; False when the attempt no longer owns the job."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == RUNNING, jobs.c.attempts == attempt)
                .values(heartbeat_at=now())
            )
        return result.rowcount == 1

    def finish(
        self, job_id: str, attempt: int, status: str, *, snapshot_id: str | None = None, error: str | None = None
    ) -> bool:
        """running → completed/failed, only for the attempt that owns the job."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == RUNNING, jobs.c.attempts == attempt)
                .values(status=status, snapshot_id=snapshot_id, error=error, finished_at=now())
            )
        return result.rowcount == 1

    def requeue(self, job_id: str, attempt: int, reason: str | None = None) -> bool:
        """running → queued for another attempt (transient failure, or its worker died)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == RUNNING, jobs.c.attempts == attempt)
                .values(status=QUEUED, error=reason, heartbeat_at=None)
            )
        return result.rowcount == 1

    def hand_back(self, job_id: str, attempt: int, reason: str) -> bool:
        """running → queued because the attempt's worker is stopping: like :meth:`requeue`, and the
        attempt is recorded as handed back, so it does not count against the job's limit."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == RUNNING, jobs.c.attempts == attempt)
                .values(status=QUEUED, error=reason, heartbeat_at=None, handbacks=jobs.c.handbacks + 1)
            )
        return result.rowcount == 1

    def stale_running(self, heartbeat_before: datetime) -> list[JobRow]:
        """Running jobs whose worker has not reported since ``heartbeat_before``."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(jobs).where(
                        jobs.c.status == RUNNING,
                        or_(jobs.c.heartbeat_at.is_(None), jobs.c.heartbeat_at < heartbeat_before),
                    )
                )
                .mappings()
                .all()
            )
        return [_row(r) for r in rows]

    def backlog(self) -> Backlog:
        """How many jobs wait and run, and since when the oldest waits (one query on ``ix_jobs_status``)."""
        query = (
            select(jobs.c.status, func.count(), func.min(jobs.c.created_at))
            .where(jobs.c.status.in_((QUEUED, RUNNING)))
            .group_by(jobs.c.status)
        )
        with self.engine.connect() as conn:
            found = {status: (count, oldest) for status, count, oldest in conn.execute(query).all()}
        queued, oldest = found.get(QUEUED, (0, None))
        return Backlog(queued=queued, running=found.get(RUNNING, (0, None))[0], oldest_queued_at=utc(oldest))

    def queued(self, created_before: datetime | None = None) -> list[JobRow]:
        query = select(jobs).where(jobs.c.status == QUEUED).order_by(jobs.c.created_at)
        if created_before is not None:
            query = query.where(jobs.c.created_at < created_before)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_row(r) for r in rows]
