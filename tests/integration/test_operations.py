"""Operations endpoints: liveness, readiness, metrics and request ids."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text, update

from catalog.app import create_app
from catalog.persistence.jobs import COMPLETED, RUNNING, JobStore, now
from catalog.persistence.schema import jobs
from tests.conftest import Backend, authorized_client
from tests.detached_support import register, rows_table, wait_for_job, write_parquet
from tests.integration.helpers import commit, create_namespace, create_table, new_job, set_props


def test_liveness_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["database"] == "ok"
    assert ready.json()["object_store"] == "ok"


def test_readiness_reports_an_unreachable_object_store(backend_factory) -> None:  # type: ignore[no-untyped-def]
    backend: Backend = backend_factory("sqlite-s3", s3_endpoint="http://127.0.0.1:9", s3_region="us-east-1")
    with TestClient(create_app(backend.settings)) as broken:
        ready = broken.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["object_store"].startswith("unavailable")
    assert ready.json()["database"] == "ok"


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    given = client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32 and generated != "abc-123"


def test_metrics_count_requests_per_route_template_and_commits(client: TestClient) -> None:
    prefix = client.prefix  # type: ignore[attr-defined]
    client.post(f"{prefix}/namespaces", json={"namespace": ["ops"]})
    client.get(f"{prefix}/namespaces/ops")
    text = client.get("/metrics").text
    assert 'route="/v1/{prefix}/namespaces/{namespace}"' in text
    assert "datlake_http_request_duration_seconds_bucket" in text
    assert "datlake_commit_conflicts_total" in text


def metric(client: TestClient, name: str, **labels: str) -> float:
    """One sample of /metrics (0 when absent); the registry is the process's, so tests compare before/after."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


COMMIT_ROUTE = "/v1/{prefix}/namespaces/{namespace}/tables/{table}"


def test_metrics_count_a_rejected_commit_as_a_conflict(backend_factory: Any) -> None:
    backend: Backend = backend_factory("sqlite-file")
    with authorized_client(create_app(backend.settings)) as client:
        create_namespace(client, "ops")
        uuid = create_table(client, "ops", "t")["metadata"]["table-uuid"]

        def counts() -> dict[str, float]:
            return {
                "conflict": metric(client, "datlake_commits_total", outcome="conflict"),
                "committed": metric(client, "datlake_commits_total", outcome="committed"),
                "409": metric(client, "datlake_http_requests_total", method="POST", route=COMMIT_ROUTE, status="409"),
                "200": metric(client, "datlake_http_requests_total", method="POST", route=COMMIT_ROUTE, status="200"),
                "timed": metric(
                    client, "datlake_http_request_duration_seconds_count", method="POST", route=COMMIT_ROUTE
                ),
            }

        before = counts()
        stale = [{"type": "assert-table-uuid", "uuid": "00000000-0000-0000-0000-000000000000"}]
        assert commit(client, "ops", "t", [set_props(a="1")], stale).status_code == 409
        current = [{"type": "assert-table-uuid", "uuid": uuid}]
        assert commit(client, "ops", "t", [set_props(a="2")], current).status_code == 200
        after = counts()
    assert {key: after[key] - before[key] for key in before} == {
        "conflict": 1,
        "committed": 1,
        "409": 1,
        "200": 1,
        "timed": 2,
    }


def test_metrics_report_the_jobs_this_process_runs(backend_factory: Any) -> None:
    """Embedded mode runs jobs in the API process: their outcomes and durations are in its /metrics
    (a `datlake worker` serves its own, see test_detached_jobs.py)."""
    backend: Backend = backend_factory("sqlite-file")
    warehouse = Path(urlparse(backend.warehouse).path)
    good = write_parquet(warehouse / "landing" / "a.parquet", rows_table(0, 3))
    with authorized_client(create_app(backend.settings)) as client:

        def counts() -> dict[str, float]:
            return {
                "completed": metric(client, "datlake_jobs_total", outcome="completed"),
                "failed": metric(client, "datlake_jobs_total", outcome="failed"),
                "timed": metric(client, "datlake_job_duration_seconds_count", outcome="completed"),
            }

        before = counts()
        assert wait_for_job(client, register(client, "measured", good)["job_id"])["status"] == "completed"
        missing = f"{backend.warehouse}/landing/missing.parquet"
        assert wait_for_job(client, register(client, "measured", missing)["job_id"])["status"] == "failed"
        after = counts()
    assert {key: after[key] - before[key] for key in before} == {"completed": 1, "failed": 1, "timed": 1}


def test_metrics_report_the_job_backlog_from_the_database(backend_factory: Any) -> None:
    """Queued and running jobs are read from the jobs table at scrape time, whoever runs them."""
    # A long heartbeat keeps this process's job reaper away from the rows the test writes itself.
    backend: Backend = backend_factory("postgres-file", job_heartbeat_seconds=600, job_stale_seconds=3600)
    with authorized_client(create_app(backend.settings)) as client:
        assert metric(client, "datlake_jobs_queued") == 0
        assert metric(client, "datlake_jobs_running") == 0
        assert metric(client, "datlake_jobs_oldest_queued_age_seconds") == 0

        catalog = client.app.state.services.store  # type: ignore[attr-defined]
        warehouse = catalog.get_warehouse(backend.settings.warehouse_name)
        store = JobStore(catalog.engine)
        for index in range(4):
            store.create(new_job(f"backlog-{index}", warehouse.id))
        # One is running, one finished, the oldest waiting one was queued 100 s ago.
        with catalog.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == "backlog-0").values(status=RUNNING, heartbeat_at=now()))
            conn.execute(update(jobs).where(jobs.c.id == "backlog-1").values(status=COMPLETED))
            conn.execute(update(jobs).where(jobs.c.id == "backlog-2").values(created_at=now() - timedelta(seconds=100)))
        assert metric(client, "datlake_jobs_queued") == 2
        assert metric(client, "datlake_jobs_running") == 1
        assert 100 <= metric(client, "datlake_jobs_oldest_queued_age_seconds") < 160


def test_metrics_answer_without_the_backlog_when_the_database_cannot_give_it(pg_backend: Backend, sql: Engine) -> None:
    with authorized_client(create_app(pg_backend.settings)) as client:
        with sql.connect() as conn:  # the query fails as it would on a broken database
            conn.execute(text("ALTER TABLE jobs RENAME TO jobs_elsewhere"))
        response = client.get("/metrics")
        assert response.status_code == 200
        assert "datlake_http_requests_total" in response.text
        assert "datlake_jobs_queued" not in response.text
