"""Direct ingestion then direct querying, end to end: boto3 upload → register (Redis, a real
``datlake worker``) → ``/snapshots/latest`` → DuckDB ``SELECT * FROM '<uri>'``; PyIceberg and
DuckDB's iceberg ``ATTACH`` see the same snapshot and rows (postgres-s3, live HTTP server)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pyarrow as pa
import pytest
from fastapi import FastAPI
from pyiceberg.catalog import load_catalog

from catalog.app import create_app
from tests.conftest import Backend, LiveServer, admin_credentials
from tests.detached_support import (
    Workers,
    put_many,
    put_parquet,
    queue_name,
    redis_url,
    rows_table,
    workers,
)
from tests.engines import duckdb_attach_catalog, duckdb_connection, duckdb_s3_secret

__all__ = ["redis_url", "workers"]  # fixtures used below

pytestmark = [
    pytest.mark.engines,
    pytest.mark.postgres,
    pytest.mark.s3,
    pytest.mark.redis,
    pytest.mark.parametrize("backend", ["postgres-s3"], indirect=True),
]


@pytest.fixture
def app(backend: Backend, redis_url: str) -> FastAPI:
    """The catalog with jobs on Redis, on a queue of its own."""
    backend.settings = backend.settings.model_copy(update={"redis_url": redis_url, "job_queue": queue_name()})
    return create_app(backend.settings)


def _http(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=admin_credentials(server.app).headers, timeout=30)


def _register(http: httpx.Client, table_name: str, uri: str, **extra: Any) -> dict[str, Any]:
    response = http.post("/api/v1/jobs/register-snapshot", json={"table_name": table_name, "uri": uri, **extra})
    assert response.status_code == 202, response.text
    job_url = response.headers["location"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, Any] = http.get(job_url).json()
        if job["status"] in ("completed", "failed"):
            assert job["status"] == "completed", job
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_url} did not finish")


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted((r["id"], r["name"], r["amount"]) for r in table.to_pylist())


def test_upload_register_query(live_server: LiveServer, backend: Backend, workers: Workers) -> None:
    assert backend.s3 is not None
    workers.start(backend.settings)
    root = f"{backend.warehouse}/uploads/{uuid.uuid4().hex[:8]}/"
    first, second = rows_table(1, 10, tag="jan"), rows_table(11, 5, tag="feb")
    single = put_parquet(backend.s3, root + "2026-01/sales.parquet", first)

    with _http(live_server) as http:
        created = http.post(f"/v1/{backend.settings.warehouse_name}/namespaces", json={"namespace": ["finance"]})
        assert created.status_code == 200, created.text
        job = _register(http, "finance.sales_q1", single)
        latest = http.get("/api/v1/tables/finance.sales_q1/snapshots/latest").json()
        assert latest["snapshot_id"] == job["snapshot_id"]
        assert (latest["uri"], latest["format"]) == (single, "parquet")
        listed = http.get("/api/v1/tables").json()
        assert {"name": "finance.sales_q1", "latest_snapshot_id": job["snapshot_id"]} in listed

        # Direct querying: DuckDB reads the object the catalog resolved, with its own S3 secret.
        con = duckdb_connection()
        duckdb_s3_secret(con, backend.s3)
        assert sorted(con.execute(f"SELECT id, name, amount FROM '{latest['uri']}'").fetchall()) == _rows(first)

        # The same snapshot through the Iceberg REST API: PyIceberg and DuckDB's ATTACH.
        admin = admin_credentials(live_server.app)
        catalog = load_catalog(
            "lake",
            type="rest",
            uri=live_server.url,
            warehouse=backend.settings.warehouse_name,
            credential=admin.credential,
            **{"oauth2-server-uri": f"{live_server.url}/v1/oauth/tokens"},
            **backend.s3.pyiceberg_properties(),
        )
        table = catalog.load_table("finance.sales_q1")
        current = table.current_snapshot()
        assert current is not None and str(current.snapshot_id) == latest["snapshot_id"]
        assert table.metadata_location == latest["metadata_location"]
        assert _rows(table.scan().to_arrow()) == _rows(first)
        duckdb_attach_catalog(con, live_server.url, backend.settings.warehouse_name, credential=admin.credential)
        attached = con.execute("SELECT id, name, amount FROM lake.finance.sales_q1").fetchall()
        assert sorted(attached) == _rows(first)

        # Append a second upload: two registrations, so the URI becomes the metadata JSON (iceberg_scan).
        put_parquet(backend.s3, root + "2026-02/sales.parquet", second)
        appended = _register(http, "finance.sales_q1", root + "2026-02/sales.parquet", mode="append")
        latest = http.get("/api/v1/tables/finance.sales_q1/snapshots/latest").json()
        assert latest["snapshot_id"] == appended["snapshot_id"] and latest["format"] == "iceberg"
        scanned = con.execute(f"SELECT id, name, amount FROM iceberg_scan('{latest['uri']}')").fetchall()
        assert sorted(scanned) == _rows(first) + _rows(second)
        table = catalog.load_table("finance.sales_q1")
        assert str(table.current_snapshot().snapshot_id) == latest["snapshot_id"]  # type: ignore[union-attr]
        assert _rows(table.scan().to_arrow()) == _rows(first) + _rows(second)
        con.execute("DETACH lake")
        duckdb_attach_catalog(con, live_server.url, backend.settings.warehouse_name, credential=admin.credential)
        assert len(con.execute("SELECT * FROM lake.finance.sales_q1").fetchall()) == 15


def test_a_registered_prefix_reads_as_a_glob(live_server: LiveServer, backend: Backend, workers: Workers) -> None:
    assert backend.s3 is not None
    workers.start(backend.settings)
    prefix = f"{backend.warehouse}/exports/{uuid.uuid4().hex[:8]}/"
    put_many(backend.s3, prefix, 12, rows_per_file=4)  # ids 0..47
    with _http(live_server) as http:
        job = _register(http, "exports", prefix)
        latest = http.get("/api/v1/tables/exports/snapshots/latest").json()
    assert latest["snapshot_id"] == job["snapshot_id"]
    assert (latest["uri"], latest["data_files"], latest["record_count"]) == (prefix + "**/*.parquet", 12, 48)
    con = duckdb_connection()
    duckdb_s3_secret(con, backend.s3)
    assert con.execute(f"SELECT count(*), sum(id) FROM '{latest['uri']}'").fetchone() == (48, sum(range(48)))
