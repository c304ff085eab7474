"""Wiring of the job machinery, shared by the API process and ``datlake worker``.

:func:`build_runtime` connects the job service, the queue and the register-snapshot runner
over a catalog's store and storage. :func:`perform` is what RQ calls: it runs an attempt with
this process's runtime (set by ``datlake worker``, or built from the environment on first use).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from catalog.config import Settings
from catalog.persistence.database import ensure_schema, make_engine
from catalog.persistence.jobs import JobStore
from catalog.persistence.store import CatalogStore
from catalog.service.commit import CommitService
from catalog.service.jobs import JobQueue, JobService
from catalog.storage.fileio import Storage
from worker.queue import InlineQueue, Reaper, RedisQueue
from worker.register_snapshot import RegisterSnapshot

log = logging.getLogger(__name__)


@dataclass
class JobRuntime:
    settings: Settings
    jobs: JobService
    runner: RegisterSnapshot
    queue: JobQueue
    reaper: Reaper | None = None
    _closed: bool = field(default=False, repr=False)

    @property
    def inline(self) -> bool:
        return isinstance(self.queue, InlineQueue)

    def start_reaper(self) -> None:
        """Reap now, then periodically (in-process mode and ``datlake worker``)."""
        if self.reaper is None:
            interval = max(self.settings.job_heartbeat_seconds, min(self.settings.job_stale_seconds / 2, 30.0))
            self.reaper = Reaper(self.jobs.reap, interval).start()

    def close(self) -> None:
        """Stop the reaper and the queue; a job running in this process (embedded mode) gets
        ``shutdown_timeout_seconds`` to finish, then goes back to the queue."""
        if self._closed:
            return
        self._closed = True
        self.runner.request_stop(self.settings.shutdown_timeout_seconds)
        if self.reaper is not None:
            self.reaper.close()
        self.queue.close()


def build_runtime(
    settings: Settings, store: CatalogStore, storage: Storage, commits: CommitService, queue: JobQueue | None = None
) -> JobRuntime:
    """Jobs over an existing store and storage; the queue follows ``DATLAKE_REDIS_URL`` unless given."""
    if queue is None:
        queue = RedisQueue(settings) if settings.redis_url else InlineQueue()
    jobs = JobService(settings, store, JobStore(store.engine), queue)
    runner = RegisterSnapshot(settings, store, storage, commits, jobs)
    jobs.committed_snapshot = runner.committed_snapshot
    if isinstance(queue, InlineQueue):
        queue.bind(runner.run)
    return JobRuntime(settings, jobs, runner, queue)


def build_standalone_runtime(settings: Settings) -> JobRuntime:
    """A runtime with its own database engine and storage (a worker process)."""
    engine = make_engine(settings.resolved_database_url, settings.database_pool_size)
    ensure_schema(engine)
    store = CatalogStore(engine)
    store.ensure_warehouse(settings.warehouse_name, settings.resolved_warehouse)
    storage = Storage(settings)
    return build_runtime(settings, store, storage, CommitService(store, storage))


_process_runtime: JobRuntime | None = None
_process_lock = threading.Lock()


def set_process_runtime(runtime: JobRuntime | None) -> None:
    global _process_runtime
    with _process_lock:
        _process_runtime = runtime


def process_runtime() -> JobRuntime:
    global _process_runtime
    with _process_lock:
        if _process_runtime is None:
            _process_runtime = build_standalone_runtime(Settings())
        return _process_runtime


def perform(job_id: str) -> None:
    """The RQ job function: run the next attempt of a register-snapshot job."""
    process_runtime().runner.run(job_id)
