"""DatalakeClient against a real catalog (PostgreSQL, S3, Redis and a worker): every method, the
failure paths, and the seed's Python example run verbatim."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from datlake_sdk import (
    AuthenticationError,
    DatalakeClient,
    ForbiddenError,
    InvalidRequestError,
    Job,
    JobFailedError,
    NotFoundError,
    Snapshot,
    TableInfo,
)
from tests.sdk.conftest import ROWS_A, ROWS_B, Lake, rows_of

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.s3,
    pytest.mark.redis,
    pytest.mark.parametrize("backend", ["postgres-s3"], indirect=True),
]


def test_register_wait_then_resolve_and_read(lake: Lake) -> None:
    table = f"sdk_{uuid.uuid4().hex[:8]}"
    first = lake.upload(f"uploads/{table}/a.parquet", ROWS_A)
    seen: list[str] = []
    with lake.client() as client:
        job = client.register_snapshot(table, first, wait=True, timeout=60, on_progress=lambda j: seen.append(j.status))
        assert isinstance(job, Job)
        assert job.status == "completed" and job.succeeded and job.done
        assert job.snapshot_id is not None and job.error is None
        assert job.table_name == table and job.uri == first and job.mode == "overwrite"
        assert job.finished_at is not None and job.created_at is not None
        assert seen[-1] == "completed" and len(seen) == len(set(seen))

        listed = {t.name: t for t in client.list_tables()}
        assert isinstance(listed[table], TableInfo)
        assert listed[table].latest_snapshot_id == job.snapshot_id

        latest = client.latest_snapshot(table)
        assert isinstance(latest, Snapshot)
        assert latest.snapshot_id == job.snapshot_id
        assert latest.record_count == len(ROWS_A)
        assert latest.uri == first and latest.format == "parquet"
        assert latest.schema is not None and [f["name"] for f in latest.schema["fields"]] == ["id", "name", "amount"]
        assert latest.metadata_location and latest.metadata_location.endswith(".metadata.json")
        assert latest.created_at is not None
        assert client.get_table_uri(table) == first

        # the client's DuckDB reads exactly the snapshot's rows from S3
        assert rows_of(client.query(f"SELECT * FROM '{first}' ORDER BY id").fetchall()) == ROWS_A
        assert rows_of(client.read_table(table).order("id").fetchall()) == ROWS_A
        con = client.duckdb()
        try:
            assert con.execute(f"SELECT count(*) FROM '{client.get_table_uri(table)}'").fetchone() == (len(ROWS_A),)
        finally:
            con.close()

        # append a second file: a new snapshot, history newest first
        second = lake.upload(f"uploads/{table}/b.parquet", ROWS_B)
        queued = client.register_snapshot(table, second, mode="append")
        assert queued.status in {"queued", "running", "completed"}
        done = client.wait_for_job(queued.job_id, timeout=60)
        assert done.status == "completed" and done.snapshot_id not in (None, job.snapshot_id)
        assert client.get_job(queued.job_id).snapshot_id == done.snapshot_id

        history = client.snapshots(table)
        assert [s.snapshot_id for s in history][:2] == [done.snapshot_id, job.snapshot_id]
        assert client.latest_snapshot(table).record_count == len(ROWS_A) + len(ROWS_B)
        assert rows_of(client.read_table(table).order("id").fetchall()) == sorted(ROWS_A + ROWS_B)
        older = client.get_snapshot(table, job.snapshot_id)
        assert older.snapshot_id == job.snapshot_id and older.record_count == len(ROWS_A)

        mine = {j.job_id for j in client.list_jobs()}
        assert {job.job_id, queued.job_id} <= mine


def test_failed_job_raises_job_failed_error_with_server_message(lake: Lake) -> None:
    table = f"sdk_{uuid.uuid4().hex[:8]}"
    bad = lake.upload_bytes(f"uploads/{table}/not-parquet.parquet", b"this is not parquet at all")
    with lake.client() as client:
        with pytest.raises(JobFailedError) as info:
            client.register_snapshot(table, bad, wait=True, timeout=60)
        failed = info.value.job
        assert failed.status == "failed" and not failed.succeeded
        server_error = client.get_job(failed.job_id).error
        assert server_error and info.value.message == server_error
        assert "not-parquet.parquet" in server_error
        with pytest.raises(JobFailedError):
            client.wait_for_job(failed.job_id)
        # nothing was committed
        with pytest.raises(NotFoundError):
            client.latest_snapshot(table)


def test_wrong_api_key_is_authentication_error(lake: Lake) -> None:
    with DatalakeClient(lake.url, "dlk_wrong_key", env=lake.sdk_env()) as client:
        with pytest.raises(AuthenticationError) as info:
            client.list_tables()
    assert info.value.status_code == 401 and info.value.message


def test_no_credentials_says_so(lake: Lake) -> None:
    with DatalakeClient(lake.url, env=lake.sdk_env(api_key=None)) as client, pytest.raises(AuthenticationError) as info:
        client.list_tables()
    assert "no credentials configured" in info.value.message


def test_unknown_table_and_job_are_not_found(lake: Lake) -> None:
    with lake.client() as client:
        with pytest.raises(NotFoundError) as info:
            client.latest_snapshot("no_such_table_here")
        assert info.value.status_code == 404 and info.value.message
        with pytest.raises(NotFoundError):
            client.get_table_uri("no_such_table_here")
        with pytest.raises(NotFoundError):
            client.snapshots("no_such_table_here")
        with pytest.raises(NotFoundError):
            client.get_job(str(uuid.uuid4()))


def test_reader_is_forbidden_to_register(lake: Lake) -> None:
    table = f"sdk_{uuid.uuid4().hex[:8]}"
    uri = lake.upload(f"uploads/{table}/a.parquet", ROWS_A)
    with lake.client() as admin:
        admin.register_snapshot(table, uri, wait=True, timeout=60)
    reader_key = lake.principal_with_grants(f"reader_{table}", [("SELECT", "table", f"{lake.namespace}.{table}")])
    with DatalakeClient(lake.url, reader_key, env=lake.sdk_env()) as reader:
        assert reader.get_table_uri(table) == uri
        assert [t.name for t in reader.list_tables()] == [table]
        with pytest.raises(ForbiddenError) as info:
            reader.register_snapshot(table, uri, mode="append")
        assert info.value.status_code == 403 and info.value.message


def test_unsupported_format_is_invalid_request(lake: Lake) -> None:
    with lake.client() as client, pytest.raises(InvalidRequestError) as info:
        client.register_snapshot("whatever", lake.upload("uploads/fmt/a.parquet", ROWS_A), format="csv")
    assert info.value.status_code in (400, 422) and "csv" in info.value.message


def test_oauth_client_credentials_token_and_renewal(lake: Lake) -> None:
    client_id, client_secret = lake.admin_client_credentials
    with DatalakeClient(
        lake.url, client_id=client_id, client_secret=client_secret, env=lake.sdk_env(api_key=None)
    ) as c:
        assert c.list_tables() is not None
        first = c._token
        assert first
        # the token is renewed before it expires: move the renewal time to now (a second later, so
        # that the server's new token differs in its issue time)
        time.sleep(1.1)
        c._token_renew_at = time.monotonic()
        c.list_tables()
        assert c._token and c._token != first
        assert c._token_renew_at > time.monotonic() + 60
        # a token the server rejects (revoked, expired early) is replaced once, transparently
        c._token = "not-a-token"
        c.list_tables()
        assert c._token not in (None, "not-a-token")
    with DatalakeClient(lake.url, client_id=client_id, client_secret="wrong", env=lake.sdk_env(api_key=None)) as bad:
        with pytest.raises(AuthenticationError):
            bad.list_tables()


def test_environment_and_profile_configuration(lake: Lake) -> None:
    # DATLAKE_URL + DATLAKE_API_KEY alone
    with DatalakeClient(env=lake.sdk_env()) as client:
        assert isinstance(client.list_tables(), list)
    # a profile file selected by DATLAKE_PROFILE
    from datlake_sdk import write_profile

    write_profile("lake", {"url": lake.url, "api_key": lake.admin_key}, lake.config_file)
    env = {"DATLAKE_CONFIG_FILE": str(lake.config_file), "DATLAKE_PROFILE": "lake"}
    with DatalakeClient(env=env) as client:
        assert client.config.profile == "lake"
        assert isinstance(client.list_tables(), list)


SEED_PYTHON = """\
import duckdb
from datlake_sdk import DatalakeClient
client = DatalakeClient()
uri = client.get_table_uri("sales_q1")
results = duckdb.query(f"SELECT * FROM '{uri}'").to_df()
print(results.head())
"""


def test_seed_python_example_verbatim(lake: Lake) -> None:
    """The seed's example, unchanged, with DuckDB's S3 settings as a persistent DuckDB secret."""
    assert SEED_PYTHON in (Path(__file__).parents[2] / "docs" / "sdk.md").read_text(), "docs/sdk.md shows it as is"
    uri = lake.upload("uploads/sales_q1/q1.parquet", ROWS_A)
    with lake.client() as client:
        client.register_snapshot("sales_q1", uri, wait=True, timeout=60)
    env = lake.process_env()
    setup = subprocess.run(
        [sys.executable, "-c", "from datlake_sdk import DatalakeClient; DatalakeClient().setup_duckdb()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert setup.returncode == 0, setup.stderr
    result = subprocess.run([sys.executable, "-c", SEED_PYTHON], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["id", "name", "amount"]
    assert len(lines) == 1 + 5  # head(): the first five rows
    for line, (row_id, name, amount) in zip(lines[1:], ROWS_A[:5], strict=True):
        assert line.split()[1:] == [str(row_id), name, f"{amount}"]
