"""Register-snapshot jobs on Redis run by real `datlake worker` processes (PostgreSQL, S3, RQ).

Covers what only a separate worker can show: a 100-file prefix becoming one snapshot, workers
killed with SIGKILL in the middle of a job (retried to completion, or failed once the attempts
are used up; never stuck ``running``, never a partial snapshot), workers stopped with SIGTERM
(the job finishes, or goes back to the queue when the grace period ends), concurrent jobs racing
on one table (each commit lands exactly once), and the worker's own metrics endpoint.

Jobs are made slow, where a test needs them in flight, by a TCP proxy in front of the S3 server
that holds the requests for the data files (tests/delay_proxy.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from catalog.app import create_app
from tests.conftest import Backend, admin_credentials
from tests.delay_proxy import DelayProxy
from tests.detached_support import (
    Workers,
    latest,
    put_many,
    put_object,
    put_parquet,
    queue_name,
    redis_url,
    register,
    rows_table,
    run_job,
    wait_for_job,
    workers,
)
from tests.engines import duckdb_connection, duckdb_s3_secret
from tests.integration.helpers import assert_error
from tests.services import free_port

__all__ = ["redis_url", "workers"]  # fixtures used by the tests below

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.redis]

FAST_RECOVERY = {"job_heartbeat_seconds": 0.5, "job_stale_seconds": 3.0}


@dataclass
class RqLake:
    client: TestClient
    backend: Backend
    root: str

    @property
    def s3(self) -> Any:
        assert self.backend.s3 is not None
        return self.backend.s3

    def count(self, uri: str) -> tuple[int, int]:
        con = duckdb_connection(("httpfs",))
        duckdb_s3_secret(con, self.s3)
        row = con.execute(f"SELECT count(*), sum(id) FROM '{uri}'").fetchone()
        assert row is not None
        return int(row[0]), int(row[1] or 0)


@pytest.fixture
def make_lake(backend_factory: Any, redis_url: str) -> Iterator[Callable[..., RqLake]]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> RqLake:
        settings = {"redis_url": redis_url, "job_queue": queue_name(), **FAST_RECOVERY, **overrides}
        backend: Backend = backend_factory("postgres-s3", **settings)
        app = create_app(backend.settings)
        assert not app.state.detached.runtime.inline
        client = TestClient(app, headers=admin_credentials(app).headers)
        client.__enter__()
        clients.append(client)
        return RqLake(client, backend, f"{backend.warehouse}/landing/{uuid.uuid4().hex[:8]}/")

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _wait_for_status(lake: RqLake, job_id: str, status: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = lake.client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] == status:
            return job
        assert job["status"] not in {"completed", "failed"} or status in {"completed", "failed"}, job
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} never reached {status}")


def test_a_prefix_of_100_files_becomes_one_snapshot(make_lake: Callable[..., RqLake], workers: Workers) -> None:
    lake = make_lake()
    put_many(lake.s3, lake.root + "hundred/", 100, rows_per_file=3)
    accepted = register(lake.client, "hundred", lake.root + "hundred/")
    assert accepted["status"] == "queued"  # nothing runs it until a worker starts
    time.sleep(0.3)
    assert lake.client.get(f"/api/v1/jobs/{accepted['job_id']}").json()["status"] == "queued"
    workers.start(lake.backend.settings)
    job = wait_for_job(lake.client, accepted["job_id"], timeout=120)
    assert job["status"] == "completed", (job, workers.logs())
    snap = latest(lake.client, "hundred")
    assert (snap["data_files"], snap["record_count"]) == (100, 300)
    assert snap["uri"] == lake.root + "hundred/**/*.parquet" and snap["format"] == "parquet"
    assert len(lake.client.get("/api/v1/tables/hundred/snapshots").json()) == 1
    assert lake.count(snap["uri"]) == (300, sum(range(300)))


def test_overwrite_append_overwrite_and_failures_through_the_worker(
    make_lake: Callable[..., RqLake], workers: Workers
) -> None:
    lake = make_lake()
    workers.start(lake.backend.settings)
    put_many(lake.s3, lake.root + "first/", 3, rows_per_file=2)  # ids 0..5
    second = put_parquet(lake.s3, lake.root + "second/b.parquet", rows_table(100, 4))
    third = put_parquet(lake.s3, lake.root + "third/c.parquet", rows_table(200, 5))

    assert run_job(lake.client, "orders", lake.root + "first/")["status"] == "completed"
    snap = latest(lake.client, "orders")
    assert lake.count(snap["uri"]) == (6, sum(range(6)))
    assert run_job(lake.client, "orders", second, mode="append")["status"] == "completed"
    snap = latest(lake.client, "orders")
    assert (snap["format"], snap["record_count"], snap["data_files"]) == ("iceberg", 10, 4)
    assert run_job(lake.client, "orders", third, mode="overwrite")["status"] == "completed"
    final = latest(lake.client, "orders")
    assert (final["uri"], final["record_count"]) == (third, 5)
    assert lake.count(final["uri"]) == (5, sum(range(200, 205)))

    put_object(lake.s3, lake.root + "bad/notes.txt", b"hello, not parquet")
    put_parquet(lake.s3, lake.root + "bad-schema/x.parquet", rows_table(0, 1).rename_columns(["id", "nom", "amount"]))
    failing = {
        lake.root + "missing.parquet": "Object not found",
        lake.root + "bad/notes.txt": "is not a Parquet file",
        lake.root + "bad-schema/x.parquet": "column 'nom' is not in the table's schema",
        lake.root + "nothing-here/": "No objects under",
    }
    ids = {register(lake.client, "orders", uri, mode="append")["job_id"]: why for uri, why in failing.items()}
    for job_id, why in ids.items():
        job = wait_for_job(lake.client, job_id)
        assert job["status"] == "failed" and why in job["error"], job
    assert latest(lake.client, "orders") == final


def test_worker_killed_mid_job_is_retried_to_completion(make_lake: Callable[..., RqLake], workers: Workers) -> None:
    lake = make_lake()
    put_many(lake.s3, lake.root + "big/", 400, rows_per_file=1)
    first = workers.start(lake.backend.settings, register_threads="1")  # slow on purpose: time to kill it
    job_id = register(lake.client, "survivor", lake.root + "big/")["job_id"]
    running = _wait_for_status(lake, job_id, "running")
    assert running["attempts"] == 1
    first.kill()
    time.sleep(0.5)
    assert lake.client.get(f"/api/v1/jobs/{job_id}").json()["status"] == "running"  # not finished by the dead one
    assert_error(lake.client.get("/api/v1/tables/survivor/snapshots/latest"), 404)  # no partial table

    workers.start(lake.backend.settings)  # its reaper finds the silent job and queues attempt 2
    job = wait_for_job(lake.client, job_id, timeout=90)
    assert job["status"] == "completed" and job["attempts"] == 2, (job, workers.logs())
    snap = latest(lake.client, "survivor")
    assert (snap["data_files"], snap["record_count"]) == (400, 400)
    assert len(lake.client.get("/api/v1/tables/survivor/snapshots").json()) == 1


def test_worker_killed_on_the_last_attempt_fails_the_job(make_lake: Callable[..., RqLake], workers: Workers) -> None:
    lake = make_lake(job_max_attempts=1)
    put_many(lake.s3, lake.root + "big/", 300, rows_per_file=1)
    worker = workers.start(lake.backend.settings, register_threads="1")
    job_id = register(lake.client, "doomed", lake.root + "big/")["job_id"]
    _wait_for_status(lake, job_id, "running")
    worker.kill()
    # No worker is left: reading the job notices its silence and ends it.
    job = wait_for_job(lake.client, job_id, timeout=30)
    assert job["status"] == "failed" and "stopped responding" in job["error"], job
    assert job["finished_at"] is not None and job["snapshot_id"] is None
    assert_error(lake.client.get("/api/v1/tables/doomed/snapshots/latest"), 404)


@pytest.fixture
def slow_s3(make_lake: Callable[..., RqLake]) -> Iterator[Callable[[RqLake], DelayProxy]]:
    """A delay proxy in front of a lake's S3 server (no rules until a test adds some)."""
    proxies: list[DelayProxy] = []

    def make(lake: RqLake) -> DelayProxy:
        proxies.append(DelayProxy(lake.s3.endpoint).start())
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.close()


def _one_snapshot_of(lake: RqLake, table: str, files: int) -> None:
    snap = latest(lake.client, table)
    assert (snap["data_files"], snap["record_count"]) == (files, files)
    assert len(lake.client.get(f"/api/v1/tables/{table}/snapshots").json()) == 1
    assert lake.count(snap["uri"]) == (files, sum(range(files)))


def test_worker_stopped_with_sigterm_finishes_its_job_first(
    make_lake: Callable[..., RqLake], workers: Workers, slow_s3: Callable[[RqLake], DelayProxy]
) -> None:
    lake = make_lake()
    put_many(lake.s3, lake.root + "landing/", 40, rows_per_file=1)
    proxy = slow_s3(lake)
    proxy.hold("/landing/part-", seconds=0.05)  # every request for a data file: ~4 s of footer reads
    worker = workers.start(lake.backend.settings, register_threads="1", s3_endpoint=proxy.url)
    job_id = register(lake.client, "finished", lake.root + "landing/")["job_id"]
    _wait_for_status(lake, job_id, "running")
    assert proxy.held.wait(10)
    code, took = worker.terminate()
    assert code == 0, workers.logs()
    job = lake.client.get(f"/api/v1/jobs/{job_id}").json()
    assert job["status"] == "completed" and job["attempts"] == 1, (job, workers.logs())
    assert took > 1.0, took  # it waited for the job (no new job was taken: the queue was empty anyway)
    _one_snapshot_of(lake, "finished", 40)


def test_worker_stopped_with_sigterm_hands_a_long_job_back_after_the_grace_period(
    make_lake: Callable[..., RqLake], workers: Workers, slow_s3: Callable[[RqLake], DelayProxy]
) -> None:
    lake = make_lake(job_stale_seconds=600.0)  # nothing but the stopping worker may requeue the job
    put_many(lake.s3, lake.root + "landing/", 40, rows_per_file=1)
    proxy = slow_s3(lake)
    proxy.hold("/landing/part-", seconds=0.5)  # > 20 s of footer reads
    slow = workers.start(
        lake.backend.settings, register_threads="1", s3_endpoint=proxy.url, shutdown_timeout_seconds="2"
    )
    job_id = register(lake.client, "handed-back", lake.root + "landing/")["job_id"]
    _wait_for_status(lake, job_id, "running")
    assert proxy.held.wait(10)
    code, took = slow.terminate()
    assert code == 0, workers.logs()
    assert 2.0 <= took < 8.0, took  # the grace period, then the next checkpoint (one held footer read)
    job = lake.client.get(f"/api/v1/jobs/{job_id}").json()
    assert job["status"] == "queued" and (job["attempts"], job["handed_back"]) == (1, 1), (job, workers.logs())
    assert "stopped with its worker" in job["error"]
    assert_error(lake.client.get("/api/v1/tables/handed-back/snapshots/latest"), 404)  # nothing half-committed

    workers.start(lake.backend.settings)  # straight to S3: takes the queued attempt 2 at once
    job = wait_for_job(lake.client, job_id, timeout=60)
    assert job["status"] == "completed" and (job["attempts"], job["handed_back"]) == (2, 1), (job, workers.logs())
    _one_snapshot_of(lake, "handed-back", 40)


def test_worker_serves_job_outcomes_and_durations(make_lake: Callable[..., RqLake], workers: Workers) -> None:
    lake = make_lake()
    port = free_port()
    workers.start(lake.backend.settings, worker_metrics_port=str(port))
    good = put_parquet(lake.s3, lake.root + "good.parquet", rows_table(0, 3))
    assert run_job(lake.client, "measured", good)["status"] == "completed"
    assert run_job(lake.client, "measured", lake.root + "missing.parquet")["status"] == "failed"
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'datlake_jobs_total{outcome="completed"} 1.0' in text, text
    assert 'datlake_jobs_total{outcome="failed"} 1.0' in text
    assert 'datlake_job_duration_seconds_count{outcome="completed"} 1.0' in text
    assert 'datlake_job_duration_seconds_bucket{le="600.0",outcome="completed"} 1.0' in text


def test_concurrent_jobs_on_one_table_all_land_once(make_lake: Callable[..., RqLake], workers: Workers) -> None:
    lake = make_lake()
    for _ in range(2):
        workers.start(lake.backend.settings)
    base = put_parquet(lake.s3, lake.root + "base.parquet", rows_table(0, 1))
    assert run_job(lake.client, "busy", base)["status"] == "completed"
    uris = [put_parquet(lake.s3, lake.root + f"more/{i}.parquet", rows_table(10 + i, 1)) for i in range(8)]
    ids = [register(lake.client, "busy", uri, mode="append")["job_id"] for uri in uris]
    jobs = [wait_for_job(lake.client, job_id, timeout=90) for job_id in ids]
    assert all(job["status"] == "completed" for job in jobs), (jobs, workers.logs())
    assert len({job["snapshot_id"] for job in jobs}) == len(jobs)
    snap = latest(lake.client, "busy")
    assert (snap["data_files"], snap["record_count"]) == (9, 9)
    assert len(lake.client.get("/api/v1/tables/busy/snapshots").json()) == 9


def test_worker_refuses_to_start_without_redis() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "catalog.cli", "worker"],
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2 and b"DATLAKE_REDIS_URL is not set" in result.stderr
