"""``datlake worker``: an RQ worker for register-snapshot jobs, plus the reaper of dead jobs.

It runs jobs in its own process (RQ's ``SimpleWorker``, no fork per job): a job is mostly
network waits on the object store, the process keeps its database pool and FileIO warm, and
killing the worker kills its job with it; the job's heartbeat stops and the reaper (here, in
another worker, or on the next read of the job) requeues or fails it.

SIGTERM (or SIGINT) is a warm shutdown: the worker takes no new job, lets the current one finish
within ``DATLAKE_SHUTDOWN_TIMEOUT_SECONDS``, or else hands it back to the queue at its next
checkpoint, and exits 0. A second signal (after a second) stops it at once; the job is handed back
too. With ``DATLAKE_WORKER_METRICS_PORT`` the worker serves its job metrics on that port.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

from rq import SimpleWorker

from catalog.config import Settings
from catalog.persistence.database import SchemaOutdated
from worker.register_snapshot import RegisterSnapshot

log = logging.getLogger(__name__)


class DatlakeWorker(SimpleWorker):
    """RQ's worker, whose warm shutdown also gives the running job a deadline."""

    def __init__(self, *args: Any, runner: RegisterSnapshot, grace_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runner = runner
        self.grace_seconds = grace_seconds

    def handle_warm_shutdown_request(self) -> None:
        """RQ calls this on the first SIGTERM/SIGINT; it then waits for the current job to return."""
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]
        self.runner.request_stop(self.grace_seconds)


def run_worker(settings: Settings, *, burst: bool = False) -> int:
    from worker.queue import RedisQueue
    from worker.runtime import build_standalone_runtime, set_process_runtime

    if not settings.redis_url:
        print(
            "datlake worker: DATLAKE_REDIS_URL is not set; without Redis, jobs run inside `datlake serve`",
            file=sys.stderr,
        )
        return 2
    if settings.worker_metrics_port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(settings.worker_metrics_port, addr=settings.host)
        except OSError as exc:
            print(f"datlake worker: cannot serve metrics: {exc}", file=sys.stderr)
            return 1
        log.info("job metrics on http://%s:%d/metrics", settings.host, settings.worker_metrics_port)
    try:
        runtime = build_standalone_runtime(settings)
    except SchemaOutdated as exc:
        print(f"datlake worker: {exc}", file=sys.stderr)
        return 1
    set_process_runtime(runtime)
    assert isinstance(runtime.queue, RedisQueue)
    runtime.start_reaper()
    worker = DatlakeWorker(
        [runtime.queue.queue],
        connection=runtime.queue.connection,
        name=f"datlake-{socket.gethostname()}-{os.getpid()}",
        runner=runtime.runner,
        grace_seconds=settings.shutdown_timeout_seconds,
    )
    log.info("datlake worker listening on queue %r", settings.job_queue)
    print(f"datlake worker {worker.name} listening on queue {settings.job_queue!r}", file=sys.stderr, flush=True)
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
    finally:
        runtime.close()
        set_process_runtime(None)
    return 0
