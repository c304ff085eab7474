"""Which attempts of a register-snapshot job count against ``DATLAKE_JOB_MAX_ATTEMPTS``.

A worker stopped with SIGTERM (a deployment) hands its unfinished attempt back; that must not use
up the job's attempts, while failures and dead workers do. Real SQLite and PostgreSQL databases;
the job service is driven directly, as a worker would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import update

from catalog.app import build_services
from catalog.persistence.jobs import FAILED, QUEUED, JobRow, JobStore, now
from catalog.persistence.schema import jobs as jobs_table
from catalog.service.jobs import JobService
from tests.conftest import Backend
from tests.integration.helpers import new_job


@dataclass
class Jobs:
    service: JobService
    first: JobRow

    def claim(self) -> JobRow:
        claimed = self.service.claim(self.first.id)
        assert claimed is not None, "the job was not queued"
        return claimed

    def status(self) -> JobRow:
        return self.service.get(self.first.id)

    def silence(self, attempt: JobRow) -> None:
        """The attempt's worker died two hours ago: its heartbeat stopped."""
        with self.service.jobs.engine.begin() as conn:
            conn.execute(
                update(jobs_table).where(jobs_table.c.id == attempt.id).values(heartbeat_at=now() - timedelta(hours=2))
            )


@pytest.fixture(params=["sqlite-file", "postgres-file"])
def two_attempt_jobs(request: pytest.FixtureRequest, backend_factory: Callable[..., Backend]) -> Iterator[Jobs]:
    """One queued job, at most two counted attempts, and no queue (nothing runs but the test)."""
    backend = backend_factory(request.param, job_max_attempts=2, job_stale_seconds=3600)
    services = build_services(backend.settings)
    warehouse = services.store.get_warehouse(backend.settings.warehouse_name)
    assert warehouse is not None
    store = JobStore(services.store.engine)
    job, _ = store.create(new_job("attempts-1", warehouse.id))
    yield Jobs(JobService(backend.settings, services.store, store), job)
    services.store.engine.dispose()


def test_handed_back_attempts_do_not_use_up_the_job(two_attempt_jobs: Jobs) -> None:
    jobs = two_attempt_jobs
    for _ in range(3):  # three deployments stop the job's worker mid-run
        assert jobs.service.release(jobs.claim(), "stopped with its worker")
        assert jobs.status().status == QUEUED

    running = jobs.claim()
    assert (running.attempts, running.handbacks, running.counted_attempts) == (4, 3, 1)
    assert jobs.service.retry_later(running, "S3 timed out")  # first counted failure: one attempt left
    assert jobs.status().status == QUEUED

    last = jobs.claim()
    jobs.service.retry_later(last, "S3 timed out")
    failed = jobs.status()
    assert failed.status == FAILED
    assert failed.error == "S3 timed out (gave up after 2 attempts)"
    assert failed.attempts == 5  # every run is still shown


def test_a_dead_worker_after_a_hand_back_is_retried(two_attempt_jobs: Jobs) -> None:
    jobs = two_attempt_jobs
    assert jobs.service.release(jobs.claim(), "stopped with its worker")
    jobs.silence(jobs.claim())
    assert jobs.service.reap() == 1
    retried = jobs.status()
    assert retried.status == QUEUED, retried  # before hand-backs were told apart: failed, 2 of 2 attempts
    assert "stopped responding; retrying" in (retried.error or "")

    jobs.silence(jobs.claim())
    assert jobs.service.reap() == 1
    failed = jobs.status()
    assert failed.status == FAILED
    assert "(2 of 2 attempts)" in (failed.error or "")
