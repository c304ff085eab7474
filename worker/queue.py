"""The job queue: RQ on Redis, or an in-process runner when ``DATLAKE_REDIS_URL`` is unset.

Both carry the same message, "run attempt N of job X", to the same function
(:meth:`worker.register_snapshot.RegisterSnapshot.run`). RQ job ids are deterministic
(``register-snapshot-<job id>-<attempt>``) and enqueued with ``unique=True``, so the same
attempt is never queued twice; an exception escaping the job (the database unreachable while
recording the outcome) is retried by RQ, and the database row stays the source of truth.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from catalog.config import Settings

log = logging.getLogger(__name__)

JOB_FUNCTION = "worker.runtime.perform"
RESULT_TTL = 24 * 3600  # RQ's copy of a finished job; the database keeps the real record
FAILURE_TTL = 7 * 24 * 3600
PENDING_STATUSES = {"queued", "started", "deferred", "scheduled"}

Runner = Callable[[str], None]


def rq_job_id(job_id: str, attempt: int) -> str:
    return f"register-snapshot-{job_id}-{attempt}"


def redis_connection(url: str) -> Any:
    from redis import Redis

    return Redis.from_url(url, health_check_interval=30, socket_connect_timeout=5)


class RedisQueue:
    """Enqueues attempts on an RQ queue; ``datlake worker`` processes run them."""

    def __init__(self, settings: Settings, connection: Any | None = None) -> None:
        from rq import Queue

        assert settings.redis_url, "RedisQueue needs DATLAKE_REDIS_URL"
        self.settings = settings
        self.connection = connection or redis_connection(settings.redis_url)
        self.queue = Queue(settings.job_queue, connection=self.connection)

    def enqueue(self, job_id: str, attempt: int) -> None:
        from rq import Retry
        from rq.exceptions import DuplicateJobError

        try:
            self.queue.enqueue_call(
                JOB_FUNCTION,
                args=(job_id,),
                job_id=rq_job_id(job_id, attempt),
                timeout=self.settings.job_timeout_seconds,
                result_ttl=RESULT_TTL,
                failure_ttl=FAILURE_TTL,
                retry=Retry(max=2, interval=[2, 10]),
                description=f"register-snapshot {job_id} (attempt {attempt})",
                unique=True,
            )
        except DuplicateJobError:
            log.debug("attempt %d of job %s is already queued", attempt, job_id)

    def is_pending(self, job_id: str, attempt: int) -> bool:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            job = Job.fetch(rq_job_id(job_id, attempt), connection=self.connection)
        except NoSuchJobError:
            return False
        status = job.get_status(refresh=False)
        return status is not None and str(getattr(status, "value", status)) in PENDING_STATUSES

    def close(self) -> None:
        self.connection.close()


class InlineQueue:
    """Embedded mode: runs attempts on a background thread of the serving process."""

    def __init__(self, threads: int = 1) -> None:
        self._runner: Runner | None = None
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="datlake-job")
        self._pending: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self._closed = False

    def bind(self, runner: Runner) -> None:
        self._runner = runner

    def enqueue(self, job_id: str, attempt: int) -> None:
        with self._lock:
            if self._closed or (job_id, attempt) in self._pending:
                return
            self._pending.add((job_id, attempt))
        self._pool.submit(self._run, job_id, attempt)

    def _run(self, job_id: str, attempt: int) -> None:
        try:
            assert self._runner is not None, "InlineQueue.bind() was not called"
            self._runner(job_id)
        except Exception:  # noqa: BLE001 - the job row records failures; never kill the pool thread
            log.exception("in-process job %s (attempt %d) raised", job_id, attempt)
        finally:
            with self._lock:
                self._pending.discard((job_id, attempt))

    def is_pending(self, job_id: str, attempt: int) -> bool:
        with self._lock:
            return (job_id, attempt) in self._pending

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)


class Reaper:
    """Runs ``reap`` now and then every ``interval`` seconds on a daemon thread, until closed."""

    def __init__(self, reap: Callable[[], int], interval: float) -> None:
        self._reap = reap
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="datlake-job-reaper", daemon=True)

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while True:
            try:
                touched = self._reap()
                if touched:
                    log.info("job reaper: %d job(s) requeued or failed", touched)
            except Exception:  # noqa: BLE001 - database or Redis briefly away; try again next round
                log.warning("job reaper round failed", exc_info=True)
            if self._stop.wait(self._interval):
                return

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
