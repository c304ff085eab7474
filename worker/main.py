"""``datlake worker``: an RQ worker for register-snapshot jobs, plus the reaper of dead jobs.

It runs jobs in its own process (RQ's ``SimpleWorker``, no fork per job): a job is mostly
network waits on the object store, the process keeps its database pool and FileIO warm, and
killing the worker kills its job with it; the job's heartbeat stops and the reaper (here, in
another worker, or on the next read of the job) requeues or fails it.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

from catalog.config import Settings
from catalog.persistence.database import SchemaOutdated

log = logging.getLogger(__name__)


def run_worker(settings: Settings, *, burst: bool = False) -> int:
    from rq import SimpleWorker

    from worker.queue import RedisQueue
    from worker.runtime import build_standalone_runtime, set_process_runtime

    if not settings.redis_url:
        print(
            "datlake worker: DATLAKE_REDIS_URL is not set; without Redis, jobs run inside `datlake serve`",
            file=sys.stderr,
        )
        return 2
    try:
        runtime = build_standalone_runtime(settings)
    except SchemaOutdated as exc:
        print(f"datlake worker: {exc}", file=sys.stderr)
        return 1
    set_process_runtime(runtime)
    assert isinstance(runtime.queue, RedisQueue)
    runtime.start_reaper()
    worker = SimpleWorker(
        [runtime.queue.queue],
        connection=runtime.queue.connection,
        name=f"datlake-{socket.gethostname()}-{os.getpid()}",
    )
    log.info("datlake worker listening on queue %r", settings.job_queue)
    print(f"datlake worker {worker.name} listening on queue {settings.job_queue!r}", file=sys.stderr, flush=True)
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
    finally:
        runtime.close()
        set_process_runtime(None)
    return 0
