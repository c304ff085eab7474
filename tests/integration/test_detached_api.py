"""Detached mode over HTTP with jobs run in-process (no Redis): tables, snapshots, register-snapshot.

Runs on sqlite-file and postgres-s3 (real PostgreSQL and S3). The worker-process flavour of the
same jobs (Redis, a real ``datlake worker``, SIGKILL) is in ``test_detached_jobs.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from catalog.app import create_app
from catalog.authz.model import SEPARATOR, Grant, Privilege, SecurableType
from catalog.config import Settings
from tests.conftest import Backend, admin_credentials
from tests.detached_support import (
    latest,
    parquet_bytes,
    put_object,
    register,
    rows_table,
    run_job,
    wait_for_job,
    write_parquet,
)
from tests.engines import duckdb_connection, duckdb_s3_secret
from tests.integration.helpers import SCHEMA, assert_error, create_namespace, table_url

BACKENDS = ["sqlite-file", "postgres-s3"]


@dataclass
class Lake:
    """A catalog with in-process jobs, and a place to drop Parquet objects inside its warehouse."""

    client: TestClient
    backend: Backend
    root: str  # a URI prefix inside the warehouse, ending in '/'

    def put(self, relative: str, table: pa.Table) -> str:
        return self.put_bytes(relative, parquet_bytes(table))

    def put_bytes(self, relative: str, body: bytes) -> str:
        uri = self.root + relative
        if self.backend.s3 is not None:
            return put_object(self.backend.s3, uri, body)
        path = Path(uri.removeprefix("file://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return uri

    def read(self, uri: str, fmt: str = "parquet") -> list[tuple[Any, ...]]:
        """What DuckDB returns for ``SELECT * FROM '<uri>'`` (``iceberg_scan`` for iceberg)."""
        con = duckdb_connection(("httpfs", "avro", "iceberg") if fmt == "iceberg" else ("httpfs",))
        if self.backend.s3 is not None:
            duckdb_s3_secret(con, self.backend.s3)
        source = f"iceberg_scan('{uri}')" if fmt == "iceberg" else f"'{uri}'"
        return sorted(con.execute(f"SELECT id, name, amount FROM {source}").fetchall())


@pytest.fixture(params=BACKENDS)
def lake(request: pytest.FixtureRequest, backend_factory: Any) -> Iterator[Lake]:
    backend: Backend = backend_factory(request.param)
    app = create_app(backend.settings)
    with TestClient(app, headers=admin_credentials(app).headers) as client:
        client.prefix = f"/v1/{backend.settings.warehouse_name}"  # type: ignore[attr-defined]
        yield Lake(client, backend, f"{backend.warehouse}/landing/{uuid.uuid4().hex[:8]}/")


def expected(*tables: pa.Table) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for table in tables:
        rows += [(r["id"], r["name"], r["amount"]) for r in table.to_pylist()]
    return sorted(rows)


# --- the flow -----------------------------------------------------------------------------------


def test_overwrite_append_overwrite(lake: Lake) -> None:
    a, b, c = rows_table(0, 10, tag="a"), rows_table(100, 5, tag="b"), rows_table(200, 7, tag="c")
    lake.put("batch1/part-0.parquet", a.slice(0, 4))
    lake.put("batch1/part-1.parquet", a.slice(4, 6))
    lake.put_bytes("batch1/_SUCCESS", b"")  # a marker file of the writer: not data
    single_b = lake.put("batch2/b.parquet", b)
    single_c = lake.put("batch3/c.parquet", c)

    first = run_job(lake.client, "sales", lake.root + "batch1/")
    assert first["status"] == "completed", first
    assert first["error"] is None and first["attempts"] == 1
    assert first["started_at"] >= first["created_at"] and first["finished_at"] >= first["started_at"]
    snap1 = latest(lake.client, "sales")
    assert snap1["snapshot_id"] == first["snapshot_id"] and isinstance(snap1["snapshot_id"], str)
    assert snap1["format"] == "parquet" and snap1["uri"] == lake.root + "batch1/**/*.parquet"
    assert (snap1["data_files"], snap1["record_count"]) == (2, 10)
    assert [f["name"] for f in snap1["schema"]["fields"]] == ["id", "name", "amount"]
    assert lake.read(snap1["uri"]) == expected(a)

    second = run_job(lake.client, "sales", single_b, mode="append")
    assert second["status"] == "completed", second
    snap2 = latest(lake.client, "sales")
    assert snap2["snapshot_id"] == second["snapshot_id"] != snap1["snapshot_id"]
    assert snap2["parent_snapshot_id"] == snap1["snapshot_id"]
    # Two registrations in one snapshot: only Iceberg metadata describes it exactly.
    assert snap2["format"] == "iceberg" and snap2["uri"] == snap2["metadata_location"]
    assert (snap2["data_files"], snap2["record_count"]) == (3, 15)
    assert lake.read(snap2["uri"], "iceberg") == expected(a, b)

    third = run_job(lake.client, "sales", single_c, mode="overwrite")
    assert third["status"] == "completed", third
    snap3 = latest(lake.client, "sales")
    assert snap3["format"] == "parquet" and snap3["uri"] == single_c
    assert (snap3["data_files"], snap3["record_count"]) == (1, 7)
    assert lake.read(snap3["uri"]) == expected(c)

    history = lake.client.get("/api/v1/tables/sales/snapshots").json()
    assert [h["snapshot_id"] for h in history] == [snap3["snapshot_id"], snap2["snapshot_id"], snap1["snapshot_id"]]
    assert [h["record_count"] for h in history] == [7, 15, 10]
    old = lake.client.get(f"/api/v1/tables/sales/snapshots/{snap1['snapshot_id']}").json()
    assert old["uri"] == lake.root + "batch1/**/*.parquet" and old["record_count"] == 10


def test_files_already_in_the_table_are_not_added_twice(lake: Lake) -> None:
    a = rows_table(0, 5)
    one = lake.put("x/one.parquet", a)
    first = run_job(lake.client, "dedup", one)
    again = run_job(lake.client, "dedup", one, mode="append")
    assert again["status"] == "completed" and again["snapshot_id"] == first["snapshot_id"]
    two = lake.put("x/two.parquet", rows_table(5, 5))
    both = run_job(lake.client, "dedup", lake.root + "x/*.parquet", mode="append")
    snap = latest(lake.client, "dedup")
    assert both["status"] == "completed" and snap["snapshot_id"] == both["snapshot_id"]
    assert (snap["data_files"], snap["record_count"]) == (2, 10)
    assert two != one


def test_glob_registration_resolves_to_the_glob(lake: Lake) -> None:
    for day in ("2026-01-01", "2026-01-02", "2026-02-01"):
        lake.put(f"events/day={day}/part-0.parquet", rows_table(int(day[-2:]) * 100 + int(day[5:7]) * 1000, 2))
    glob = lake.root + "events/day=2026-01-*/*.parquet"
    job = run_job(lake.client, "events", glob)
    assert job["status"] == "completed", job
    snap = latest(lake.client, "events")
    assert (snap["uri"], snap["format"], snap["data_files"], snap["record_count"]) == (glob, "parquet", 2, 4)
    assert len(lake.read(snap["uri"])) == 4


# --- failures: the job fails with a clear message and the table is unchanged --------------------


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        pytest.param("missing", "Object not found", id="missing"),
        pytest.param("not-parquet", "is not a Parquet file", id="not-parquet"),
        pytest.param("type-mismatch", "column 'amount' is string in the file but double in the table", id="types"),
        pytest.param("extra-column", "column 'extra' is not in the table's schema", id="extra-column"),
        pytest.param("empty-prefix", "No objects under", id="empty-prefix"),
    ],
)
def test_failed_jobs_leave_the_table_unchanged(lake: Lake, case: str, fragment: str) -> None:
    base = lake.put("good/base.parquet", rows_table(0, 3))
    before = latest(lake.client, "orders") if run_job(lake.client, "orders", base)["status"] == "completed" else None
    assert before is not None
    if case == "missing":
        uri = lake.root + "nothing/here.parquet"
    elif case == "not-parquet":
        uri = lake.put_bytes("bad/data.csv", b"id,name,amount\n1,x,2.0\n")
    elif case == "type-mismatch":
        uri = lake.put("bad/types.parquet", pa.table({"id": [1], "name": ["x"], "amount": ["not a number"]}))
    elif case == "extra-column":
        uri = lake.put("bad/extra.parquet", rows_table(0, 1).append_column("extra", pa.array([1])))
    else:
        uri = lake.root + "empty/"
    job = run_job(lake.client, "orders", uri, mode="append")
    assert job["status"] == "failed" and job["snapshot_id"] is None
    assert fragment in job["error"], job["error"]
    if case in ("type-mismatch", "extra-column", "not-parquet"):
        assert uri in job["error"]  # the message names the file
    assert latest(lake.client, "orders") == before


def test_failure_on_a_new_table_creates_nothing(lake: Lake) -> None:
    lake.put("mixed/a.parquet", rows_table(0, 2))
    lake.put("mixed/b.parquet", pa.table({"id": ["text"], "name": ["x"], "amount": [1.0]}))
    job = run_job(lake.client, "never_created", lake.root + "mixed/")
    assert job["status"] == "failed"
    assert "b.parquet" in job["error"] and "'id'" in job["error"], job["error"]
    assert_error(lake.client.get("/api/v1/tables/never_created/snapshots/latest"), 404)
    assert all(t["name"] != "never_created" for t in lake.client.get("/api/v1/tables").json())


def test_given_schema_creates_the_table_and_is_checked_later(lake: Lake) -> None:
    fields: list[dict[str, Any]] = [
        {"id": 1, "name": "id", "type": "long", "required": False},
        {"id": 2, "name": "name", "type": "string", "required": False},
        {"id": 3, "name": "amount", "type": "double", "required": False},
        {"id": 4, "name": "note", "type": "string", "required": False},
    ]
    schema: dict[str, Any] = {"type": "struct", "schema-id": 0, "fields": fields}
    uri = lake.put("s/a.parquet", rows_table(0, 3))  # no `note` column: optional, so it fits
    job = run_job(lake.client, "typed", uri, schema=schema)
    assert job["status"] == "completed", job
    snap = latest(lake.client, "typed")
    assert [f["name"] for f in snap["schema"]["fields"]] == ["id", "name", "amount", "note"]
    wrong = {**schema, "fields": fields[:3]}
    other = lake.put("s/b.parquet", rows_table(3, 3))
    failed = run_job(lake.client, "typed", other, schema=wrong, mode="append")
    assert failed["status"] == "failed" and "given schema does not match" in failed["error"]
    assert "'note'" in failed["error"]
    assert latest(lake.client, "typed")["snapshot_id"] == snap["snapshot_id"]


# --- rejected at submission: no job exists ------------------------------------------------------


def test_rejections_at_submission(lake: Lake) -> None:
    good = lake.put("ok/a.parquet", rows_table(0, 1))
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"table_name": "t", "uri": good, "format": "csv"}, 422, "Unsupported format 'csv'"),
        ({"table_name": "t", "uri": good, "mode": "merge"}, 422, "mode"),
        ({"table_name": "t"}, 422, "uri"),
        ({"table_name": "", "uri": good}, 422, "table_name"),
        ({"table_name": "a..b", "uri": good}, 422, "Invalid table name"),
        ({"table_name": "t", "uri": "not-a-uri"}, 422, "Invalid uri"),
        ({"table_name": "t", "uri": good, "schema": {"type": "struct", "fields": [{"x": 1}]}}, 422, "schema"),
        (
            {
                "table_name": "t",
                "uri": good,
                "schema": {
                    "type": "struct",
                    "fields": [{"id": 1, "name": "d", "type": "decimal(a,b)", "required": False}],
                },
            },
            422,
            "Invalid schema",
        ),
        ({"table_name": "t", "uri": good, "unknown": 1}, 422, "unknown"),
        ({"table_name": "t", "uri": "s3://elsewhere/data/a.parquet"}, 403, "outside the locations allowed"),
        ({"table_name": "t", "uri": lake.backend.warehouse + "/../x/a.parquet"}, 422, "'..'"),
        ({"table_name": "missing_ns.t", "uri": good}, 404, "Namespace does not exist"),
    ]
    if lake.backend.s3 is None:
        cases.append(({"table_name": "t", "uri": "file:///etc/passwd"}, 403, "outside the locations allowed"))
    else:
        bucket = lake.backend.warehouse.removeprefix("s3://").split("/")[0]
        cases.append(({"table_name": "t", "uri": f"s3://{bucket}/*"}, 403, "outside the locations allowed"))
    for body, status, fragment in cases:
        response = lake.client.post("/api/v1/jobs/register-snapshot", json=body)
        error = assert_error(response, status)
        assert fragment in error["message"], (body, error)
    assert lake.client.get("/api/v1/jobs").json() == []


def test_idempotency_key_returns_the_same_job(lake: Lake) -> None:
    uri = lake.put("idem/a.parquet", rows_table(0, 2))
    headers = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    body = {"table_name": "idem", "uri": uri}
    first = lake.client.post("/api/v1/jobs/register-snapshot", json=body, headers=headers)
    again = lake.client.post("/api/v1/jobs/register-snapshot", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["job_id"] == again.json()["job_id"]
    assert again.headers["location"] == first.headers["location"]
    assert wait_for_job(lake.client, first.json()["job_id"])["status"] == "completed"
    after = lake.client.post("/api/v1/jobs/register-snapshot", json=body, headers=headers)
    assert after.json() == {"job_id": first.json()["job_id"], "status": "completed"}
    other = lake.client.post("/api/v1/jobs/register-snapshot", json={**body, "mode": "append"}, headers=headers)
    assert "already used" in assert_error(other, 422)["message"]
    assert len(lake.client.get("/api/v1/jobs").json()) == 1
    assert len(lake.client.get("/api/v1/tables/idem/snapshots").json()) == 1


# --- tables and snapshots -----------------------------------------------------------------------


def test_table_list_names_ids_and_pages(lake: Lake) -> None:
    create_namespace(lake.client, "finance")
    create_namespace(lake.client, "finance", "eu")
    created = lake.client.post(
        f"{lake.client.prefix}/namespaces/finance/tables",  # type: ignore[attr-defined]
        json={"name": "empty", "schema": SCHEMA},
    )
    assert created.status_code == 200, created.text
    uri = lake.put("l/a.parquet", rows_table(0, 2))
    jobs = [run_job(lake.client, name, uri) for name in ("sales_q1", "finance.eu.sales", "finance.q2")]
    assert all(job["status"] == "completed" for job in jobs), jobs
    listed = lake.client.get("/api/v1/tables").json()
    by_name = {t["name"]: t["latest_snapshot_id"] for t in listed}
    assert by_name == {
        "sales_q1": jobs[0]["snapshot_id"],
        "finance.eu.sales": jobs[1]["snapshot_id"],
        "finance.q2": jobs[2]["snapshot_id"],
        "finance.empty": None,
    }
    assert lake.client.get(table_url(lake.client, "finance", "q2")).status_code == 200  # the same table via /v1
    seen: list[str] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"page_size": 3} | ({"page_token": token} if token else {})
        page = lake.client.get("/api/v1/tables", params=params)
        assert len(page.json()) <= 3
        seen += [t["name"] for t in page.json()]
        token = page.headers.get("x-next-page-token")
        if not token:
            break
    assert sorted(seen) == sorted(by_name) and len(seen) == len(set(seen))
    assert_error(lake.client.get("/api/v1/tables", params={"page_token": "garbage!"}), 422)
    assert_error(lake.client.get("/api/v1/tables", params={"page_size": 0}), 422)


def test_snapshot_lookups(lake: Lake) -> None:
    assert_error(lake.client.get("/api/v1/tables/nope/snapshots/latest"), 404)
    assert_error(lake.client.get("/api/v1/tables/no_ns.nope/snapshots"), 404)
    assert_error(lake.client.get("/api/v1/tables/bad..name/snapshots/latest"), 422)
    job = run_job(lake.client, "lookups", lake.put("k/a.parquet", rows_table(0, 2)))
    assert_error(lake.client.get("/api/v1/tables/lookups/snapshots/12345"), 404)
    assert_error(lake.client.get("/api/v1/tables/lookups/snapshots/not-a-number"), 422)
    one = lake.client.get(f"/api/v1/tables/lookups/snapshots/{job['snapshot_id']}").json()
    assert one == latest(lake.client, "lookups")
    assert lake.client.get("/api/v1/tables/default.lookups/snapshots/latest").json() == one


def test_job_lookups(lake: Lake) -> None:
    assert_error(lake.client.get("/api/v1/jobs/does-not-exist"), 404)
    uri = lake.put("j/a.parquet", rows_table(0, 1))
    ids = [register(lake.client, f"jobs_{i}", uri)["job_id"] for i in range(3)]
    for job_id in ids:
        wait_for_job(lake.client, job_id)
    listed = lake.client.get("/api/v1/jobs").json()
    assert [j["job_id"] for j in listed] == ids[::-1]  # newest first
    page = lake.client.get("/api/v1/jobs", params={"page_size": 2})
    rest = lake.client.get("/api/v1/jobs", params={"page_token": page.headers["x-next-page-token"]})
    assert [j["job_id"] for j in page.json() + rest.json()] == ids[::-1]
    assert all(j["submitted_by"] == "test-admin" and j["format"] == "parquet" for j in listed)


# --- RBAC ---------------------------------------------------------------------------------------


def _principal(client: TestClient, name: str, grants: list[tuple[Privilege, SecurableType, str]]) -> dict[str, str]:
    """A principal with the given grants (namespace/table names dotted); returns its auth headers."""
    access = client.app.state.services.access  # type: ignore[attr-defined]
    warehouse = access.warehouse(None)
    created = access.create_principal(name, "service")
    role_id = access.access.create_role(f"role-{name}")
    for privilege, kind, securable in grants:
        key = securable.replace(".", SEPARATOR)
        access.access.add_grant(role_id, Grant(privilege.value, kind.value, warehouse.id, key))
    access.add_member(f"role-{name}", created.name)
    return {"Authorization": f"Bearer {access.create_api_key(created.name).api_key}"}


@pytest.mark.parametrize("lake", ["sqlite-file"], indirect=True)
def test_privileges(lake: Lake) -> None:
    client = lake.client
    uri = lake.put("r/a.parquet", rows_table(0, 2))
    more = lake.put("r/b.parquet", rows_table(2, 2))
    for name in ("visible", "hidden"):
        assert run_job(client, name, uri)["status"] == "completed"
    nobody = _principal(client, "nobody", [])
    reader = _principal(client, "reader", [(Privilege.SELECT, SecurableType.TABLE, "default.visible")])
    appender = _principal(client, "appender", [(Privilege.INSERT, SecurableType.TABLE, "default.visible")])
    creator = _principal(client, "creator", [(Privilege.CREATE, SecurableType.NAMESPACE, "default")])

    assert client.get("/api/v1/tables", headers=nobody).json() == []
    assert [t["name"] for t in client.get("/api/v1/tables", headers=reader).json()] == ["visible"]
    assert_error(client.get("/api/v1/tables/hidden/snapshots/latest", headers=reader), 403)
    assert_error(client.get("/api/v1/tables/hidden/snapshots", headers=reader), 403)
    assert client.get("/api/v1/tables/visible/snapshots/latest", headers=reader).status_code == 200
    assert_error(client.get("/api/v1/tables/visible/snapshots/latest", headers=nobody), 403)
    assert_error(TestClient(client.app).get("/api/v1/tables"), 401)

    submit = "/api/v1/jobs/register-snapshot"
    append_visible = {"table_name": "visible", "uri": more, "mode": "append"}
    assert_error(client.post(submit, json=append_visible, headers=reader), 403)
    assert_error(client.post(submit, json={"table_name": "visible", "uri": more}, headers=appender), 403)  # overwrite
    assert_error(client.post(submit, json={"table_name": "brand_new", "uri": more}, headers=appender), 403)
    assert client.get("/api/v1/jobs", params={"all": "true"}).json()[0]["submitted_by"] == "test-admin"
    assert len(client.get("/api/v1/jobs", params={"all": "true"}).json()) == 2  # the 403s made no job

    appended = client.post(submit, json={"table_name": "visible", "uri": more, "mode": "append"}, headers=appender)
    assert appended.status_code == 202, appended.text
    job_id = appended.json()["job_id"]
    done = wait_for_job(TestClient(client.app, headers=appender), job_id)
    assert done["status"] == "completed" and done["submitted_by"] == "appender"
    assert_error(client.get(f"/api/v1/jobs/{job_id}", headers=reader), 404)  # not the reader's job
    assert client.get(f"/api/v1/jobs/{job_id}").status_code == 200  # administrators see every job
    assert [j["job_id"] for j in client.get("/api/v1/jobs", headers=appender).json()] == [job_id]
    assert client.get("/api/v1/jobs", headers=reader).json() == []
    assert_error(client.get("/api/v1/jobs", params={"all": "true"}, headers=appender), 403)

    created = client.post(submit, json={"table_name": "brand_new", "uri": more}, headers=creator)
    assert created.status_code == 202, created.text
    assert wait_for_job(client, created.json()["job_id"])["status"] == "completed"
    assert_error(client.post(submit, json={"table_name": "visible", "uri": more}, headers=creator), 403)


# --- embedded default ---------------------------------------------------------------------------


def test_embedded_default_runs_jobs_in_process(tmp_path: Path) -> None:
    """No database URL, no warehouse, no Redis: SQLite under the home directory, jobs in-process."""
    settings = Settings(home=tmp_path / "home", auth_jwt_secret="embedded-test-secret-0123456789abcdef")
    assert settings.embedded and settings.redis_url is None
    app = create_app(settings)
    assert app.state.detached.runtime.inline
    landing = Path(settings.resolved_warehouse.removeprefix("file://")) / "landing"
    first = write_parquet(landing / "a.parquet", rows_table(0, 4))
    write_parquet(landing / "b.parquet", rows_table(4, 4))
    with TestClient(app, headers=admin_credentials(app).headers) as client:
        job = run_job(client, "local_sales", landing.as_uri() + "/")
        assert job["status"] == "completed", job
        snap = latest(client, "local_sales")
        assert snap["record_count"] == 8 and snap["uri"].startswith(landing.as_uri())
        assert snap["metadata_location"].startswith(settings.resolved_warehouse + "/default/local_sales/")
        again = run_job(client, "local_sales", first)
        assert again["status"] == "completed"
        assert latest(client, "local_sales")["uri"] == first
    assert (tmp_path / "home" / "catalog.db").exists()
