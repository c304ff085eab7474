"""Register-snapshot jobs: submission (validation, allowed locations, idempotency), state, reaping.

The database row is the source of truth; a queue (RQ on Redis, or an in-process runner in
embedded mode) only carries "run attempt N of job X". A worker claims the job for one attempt,
records a heartbeat while it works, and finishes it. A job whose worker stopped reporting is
requeued for another attempt, or failed once the attempts are used up (an attempt its stopping
worker handed back does not count); so no job stays
``running`` forever, and because the snapshot is committed atomically at the very end, a dead
worker never leaves a partial snapshot.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError
from pyiceberg.exceptions import ValidationError as IcebergValidationError
from pyiceberg.schema import Schema

from catalog import errors
from catalog.config import Settings
from catalog.persistence.jobs import COMPLETED, FAILED, QUEUED, RUNNING, JobRow, JobStore, NewJob, now
from catalog.persistence.store import CatalogStore, Warehouse
from catalog.service.detached import parse_table_name
from catalog.service.locations import is_inside, normalize
from catalog.storage.objects import glob_root, has_glob

log = logging.getLogger(__name__)

FORMATS = ("parquet",)
MODES = ("overwrite", "append")
SCHEMES = ("s3://", "s3a://", "s3n://", "file://")
MAX_PAGE = 1000


class JobQueue(Protocol):
    """Carries "run attempt N of job X" to a worker."""

    def enqueue(self, job_id: str, attempt: int) -> None: ...

    def is_pending(self, job_id: str, attempt: int) -> bool:
        """Whether that attempt is still waiting in (or being run from) the queue."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RegisterRequest:
    table_name: str
    uri: str
    format: str = "parquet"
    mode: str = "overwrite"
    schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class RegisterPlan:
    """A validated request: where the files are and which table they go to."""

    warehouse: Warehouse
    namespace: tuple[str, ...]
    table: str
    table_name: str
    uri: str
    format: str
    mode: str
    schema: dict[str, Any] | None


@dataclass(frozen=True)
class JobPage:
    jobs: list[JobRow]
    next_page_token: str | None


def allowed_locations(settings: Settings, warehouse: Warehouse) -> list[str]:
    """The warehouse, plus ``DATLAKE_REGISTER_ALLOWED_LOCATIONS``."""
    extra = [normalize(p) for p in settings.register_allowed_locations.split(",") if p.strip()]
    return [normalize(warehouse.location), *extra]


def check_register_uri(uri: str, settings: Settings, warehouse: Warehouse) -> str:
    """Return the normalized URI, or refuse it: 422 when malformed, 403 when outside the allowed locations."""
    uri = uri.strip()
    if not uri.startswith(SCHEMES):
        raise errors.Unprocessable(f"Invalid uri {uri!r}: expected s3://bucket/... or file:///... ")
    if "?" in uri or "#" in uri:
        raise errors.Unprocessable(f"Invalid uri {uri!r}: '?' and '#' are not supported (use * and [] globs)")
    scheme, rest = uri.split("://", 1)
    if scheme in ("s3a", "s3n"):
        uri = "s3://" + rest
    if ".." in uri.split("/") or "//" in uri.split("://", 1)[1].rstrip("/"):
        raise errors.Unprocessable(f"Invalid uri {uri!r}: empty or '..' path segments are not allowed")
    anchor = glob_root(uri) if has_glob(uri) else uri  # a glob is judged by the directory it starts from
    roots = allowed_locations(settings, warehouse)
    if anchor.rstrip("/") in {"s3:", "file:"} or not any(is_inside(anchor, root) for root in roots):
        raise errors.Forbidden(
            f"{uri} is outside the locations allowed for registration ({', '.join(roots)}); "
            "an administrator can add prefixes with DATLAKE_REGISTER_ALLOWED_LOCATIONS"
        )
    return uri


def parse_schema(schema: dict[str, Any]) -> Schema:
    try:
        return Schema.model_validate(schema)
    except (ValidationError, ValueError, TypeError, IcebergValidationError) as exc:  # the last: "fixed[x]"
        raise errors.Unprocessable(f"Invalid schema: {exc}") from exc


def _encode_token(job: JobRow) -> str:
    return base64.urlsafe_b64encode(f"{job.created_at.isoformat()}|{job.id}".encode()).decode()


def _decode_token(token: str) -> tuple[datetime, str]:
    try:
        created, job_id = base64.urlsafe_b64decode(token.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), job_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.Unprocessable(f"Invalid page_token: {token!r}") from exc


class JobService:
    def __init__(
        self,
        settings: Settings,
        store: CatalogStore,
        jobs: JobStore,
        queue: JobQueue | None = None,
        committed_snapshot: Callable[[JobRow], str | None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.jobs = jobs
        self.queue = queue
        # Looks for a snapshot this job already committed (a worker that died after its commit).
        self.committed_snapshot = committed_snapshot

    # --- submission -------------------------------------------------------------------------------

    def plan(self, warehouse: Warehouse, request: RegisterRequest) -> RegisterPlan:
        """Validate a request (422, or 403 outside the allowed locations) before anything is looked up."""
        fmt = request.format.lower()
        if fmt not in FORMATS:
            raise errors.Unprocessable(
                f"Unsupported format {request.format!r}: only {', '.join(FORMATS)} files can be registered"
            )
        if request.mode not in MODES:
            raise errors.Unprocessable(f"Invalid mode {request.mode!r}: expected one of {', '.join(MODES)}")
        namespace, table = parse_table_name(request.table_name, self.settings.default_namespace)
        uri = check_register_uri(request.uri, self.settings, warehouse)
        if request.schema is not None:
            parse_schema(request.schema)
        return RegisterPlan(warehouse, namespace, table, request.table_name, uri, fmt, request.mode, request.schema)

    def table_exists(self, plan: RegisterPlan) -> bool:
        return self.store.entity_kind(plan.warehouse.id, plan.namespace, plan.table) is not None

    def submit(self, plan: RegisterPlan, submitted_by: str | None, idempotency_key: str | None) -> JobRow:
        """Store the job and queue its first attempt; the same key from the same caller returns the same job.

        Call after authorizing: a namespace that does not exist is a 404 only now (the default
        namespace is created by the job on first use).
        """
        if plan.namespace != (self.settings.default_namespace,):
            self.store.get_namespace(plan.warehouse.id, plan.namespace)
        job, created = self.jobs.create(
            NewJob(
                id=str(uuid.uuid4()),
                warehouse_id=plan.warehouse.id,
                table_name=plan.table_name,
                namespace=plan.namespace,
                table=plan.table,
                uri=plan.uri,
                format=plan.format,
                mode=plan.mode,
                schema=plan.schema,
                submitted_by=submitted_by,
                idempotency_key=idempotency_key,
            )
        )
        if not created:
            if (job.table_name, job.uri, job.mode, job.format) != (plan.table_name, plan.uri, plan.mode, plan.format):
                raise errors.Unprocessable(
                    f"Idempotency-Key {idempotency_key!r} was already used for a different register-snapshot request"
                )
            return job
        self._enqueue(job.id, 1)
        return job

    def _enqueue(self, job_id: str, attempt: int) -> None:
        if self.queue is None:
            return
        try:
            self.queue.enqueue(job_id, attempt)
        except Exception:  # noqa: BLE001 - the row is durable; the reaper queues it again later
            log.warning("could not queue job %s (attempt %d); it will be queued again", job_id, attempt, exc_info=True)

    # --- reading ----------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRow:
        job = self.jobs.get(job_id)
        if job is None:
            raise errors.NotFound(f"Job does not exist: {job_id}")
        if job.status == RUNNING and self._is_stale(job):
            self._reap_running(job)
            job = self.jobs.get(job_id) or job
        return job

    def list_jobs(self, submitted_by: str | None, page_token: str | None, page_size: int | None) -> JobPage:
        """Jobs newest first; ``submitted_by=None`` is everyone's."""
        size = min(page_size or 100, MAX_PAGE)
        after = _decode_token(page_token) if page_token else None
        rows = self.jobs.page(submitted_by, size + 1, after)
        if len(rows) > size:
            return JobPage(rows[:size], _encode_token(rows[size - 1]))
        return JobPage(rows, None)

    # --- the worker's side ------------------------------------------------------------------------

    def claim(self, job_id: str) -> JobRow | None:
        return self.jobs.claim(job_id)

    def heartbeat(self, job: JobRow) -> bool:
        return self.jobs.heartbeat(job.id, job.attempts)

    def complete(self, job: JobRow, snapshot_id: int | str) -> bool:
        return self.jobs.finish(job.id, job.attempts, COMPLETED, snapshot_id=str(snapshot_id))

    def fail(self, job: JobRow, message: str) -> bool:
        return self.jobs.finish(job.id, job.attempts, FAILED, error=message)

    def retry_later(self, job: JobRow, reason: str) -> bool:
        """A transient failure: run the job again while attempts remain, else fail it with ``reason``."""
        if job.counted_attempts >= self.settings.job_max_attempts:
            return self.fail(job, f"{reason} (gave up after {job.counted_attempts} attempts)")
        if self.jobs.requeue(job.id, job.attempts, reason):
            self._enqueue(job.id, job.attempts + 1)
            return True
        return False

    def release(self, job: JobRow, reason: str) -> bool:
        """Give the job back to the queue now: its worker is stopping before the attempt could finish.

        Unlike :meth:`retry_later` this never fails the job and the attempt does not count against
        ``job_max_attempts`` (stopping a worker, e.g. for a deployment, is not the job's fault); the
        next attempt starts at once instead of after ``job_stale_seconds`` of silence.
        """
        if self.jobs.hand_back(job.id, job.attempts, reason):
            self._enqueue(job.id, job.attempts + 1)
            return True
        return False

    # --- reaping ----------------------------------------------------------------------------------

    def _is_stale(self, job: JobRow) -> bool:
        cutoff = now() - timedelta(seconds=self.settings.job_stale_seconds)
        return job.heartbeat_at is None or job.heartbeat_at < cutoff

    def _reap_running(self, job: JobRow) -> None:
        committed = self.committed_snapshot(job) if self.committed_snapshot is not None else None
        if committed is not None:
            self.jobs.finish(job.id, job.attempts, COMPLETED, snapshot_id=committed)
            return
        if job.counted_attempts < self.settings.job_max_attempts:
            reason = f"the worker of attempt {job.attempts} stopped responding; retrying"
            if self.jobs.requeue(job.id, job.attempts, reason):
                log.warning("job %s: %s", job.id, reason)
                self._enqueue(job.id, job.attempts + 1)
            return
        message = (
            f"The worker running this job stopped responding ({job.counted_attempts} of "
            f"{self.settings.job_max_attempts} attempts); the table was not changed"
        )
        if self.jobs.finish(job.id, job.attempts, FAILED, error=message):
            log.warning("job %s failed: %s", job.id, message)

    def reap(self) -> int:
        """Requeue or fail running jobs whose worker died; requeue queued jobs the queue lost.

        Returns how many jobs were touched. Safe to run from several processes at once: every
        change is conditional on the attempt it saw.
        """
        touched = 0
        cutoff = now() - timedelta(seconds=self.settings.job_stale_seconds)
        for job in self.jobs.stale_running(cutoff):
            self._reap_running(job)
            touched += 1
        if self.queue is not None:
            grace = now() - timedelta(seconds=max(2 * self.settings.job_heartbeat_seconds, 1.0))
            for job in self.jobs.queued(created_before=grace):
                attempt = job.attempts + 1
                if not self.queue.is_pending(job.id, attempt):
                    log.warning("job %s was queued but not in the queue; queueing attempt %d", job.id, attempt)
                    self._enqueue(job.id, attempt)
                    touched += 1
        return touched


__all__ = [
    "COMPLETED",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "JobPage",
    "JobQueue",
    "JobService",
    "RegisterPlan",
    "RegisterRequest",
    "allowed_locations",
    "check_register_uri",
    "parse_schema",
]
