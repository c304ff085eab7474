"""Helpers for the detached-mode tests: Parquet uploads, real `datlake worker` processes, job polling.

Import the fixtures into a test module (``from tests.detached_support import redis_url, workers``).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from catalog.config import Settings
from tests.services import REDIS_URL, S3Server, unavailable

FINAL = {"completed", "failed"}


def rows_table(start: int, count: int, *, tag: str = "r") -> pa.Table:
    """``count`` rows: id ``start..``, a name and an amount (the schema most tests register)."""
    ids = list(range(start, start + count))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "name": pa.array([f"{tag}-{i}" for i in ids], pa.string()),
            "amount": pa.array([i * 1.5 for i in ids], pa.float64()),
        }
    )


def parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def put_object(s3: S3Server, uri: str, body: bytes) -> str:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3.client().put_object(Bucket=bucket, Key=key, Body=body)
    return uri


def put_parquet(s3: S3Server, uri: str, table: pa.Table) -> str:
    return put_object(s3, uri, parquet_bytes(table))


def put_many(s3: S3Server, prefix: str, count: int, rows_per_file: int = 3, threads: int = 16) -> list[str]:
    """``count`` small Parquet files under ``prefix`` (ids 0.. across files), uploaded in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name=s3.region,
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=threads),
    )
    bucket, _, base = prefix.removeprefix("s3://").partition("/")

    def upload(i: int) -> str:
        key = f"{base}part-{i:05d}.parquet"
        client.put_object(Bucket=bucket, Key=key, Body=parquet_bytes(rows_table(i * rows_per_file, rows_per_file)))
        return f"s3://{bucket}/{key}"

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(upload, range(count)))


def write_parquet(path: Path, table: pa.Table) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path.as_uri()


def register(client: TestClient, table_name: str, uri: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/api/v1/jobs/register-snapshot", json={"table_name": table_name, "uri": uri, **extra})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/api/v1/jobs/{body['job_id']}"
    return body


def wait_for_job(client: TestClient, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in FINAL:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s: {job}")
        time.sleep(0.05)


def run_job(client: TestClient, table_name: str, uri: str, timeout: float = 60.0, **extra: Any) -> dict[str, Any]:
    return wait_for_job(client, register(client, table_name, uri, **extra)["job_id"], timeout)


def latest(client: TestClient, table_name: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/tables/{table_name}/snapshots/latest")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``DATLAKE_*`` variables that make another process see ``settings``."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, dict):
            import json

            value = json.dumps(value)
        env[f"DATLAKE_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def start_datlake(args: list[str], settings: Settings, log_path: Path, **overrides: object) -> subprocess.Popen[bytes]:
    """``datlake <args>`` with the settings of a test backend (``overrides`` as ``DATLAKE_*``), in a
    session of its own (a kill takes all of it), its output appended to ``log_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATLAKE_", "PROMETHEUS_"))}
    env.update(settings_env(settings))
    env.update({f"DATLAKE_{k.upper()}": str(v) for k, v in overrides.items()})
    datlake = os.path.join(os.path.dirname(sys.executable), "datlake")
    command = [datlake] if os.path.exists(datlake) else [sys.executable, "-m", "catalog.cli"]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [*command, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


class Worker:
    """A real ``datlake worker`` process (its own session, so a kill takes all of it)."""

    def __init__(self, settings: Settings, log_path: Path, **overrides: str) -> None:
        self.log_path = log_path
        self.process = start_datlake(["worker"], settings, log_path, log_format="text", **overrides)
        self._wait_listening()

    def _wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"datlake worker exited at start:\n{self.log_path.read_text()}")
            if "listening on queue" in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.05)
        raise RuntimeError(f"datlake worker did not start:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as when a machine dies."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 60.0) -> tuple[int, float]:
        """SIGTERM, as an orchestrator stops a worker; its exit code and how long it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def redis_url() -> str:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        unavailable("Redis", f"{REDIS_URL}: {exc}")
    return REDIS_URL


class Workers:
    """Starts workers for a test and stops them all at its end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Worker] = []

    def start(self, settings: Settings, **overrides: str) -> Worker:
        worker = Worker(settings, self.tmp_path / f"worker-{len(self.started)}.log", **overrides)
        self.started.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(w.log_path.read_text(errors="replace") for w in self.started)

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()


_USED_QUEUES: set[str] = set()


def queue_name(stem: str = "datlake-test") -> str:
    """A job queue of the test's own, remembered so that :func:`forget_queues` can remove it."""
    name = f"{stem}-{uuid.uuid4().hex[:10]}"
    _USED_QUEUES.add(name)
    return name


def forget_queues() -> None:
    """Remove what RQ keeps in Redis for the queues this process used: its registries (finished,
    wip, workers, ...) have no expiry, and Redis is the machine's, shared by every test run."""
    if not _USED_QUEUES:
        return
    import redis

    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        for name in _USED_QUEUES:
            keys = list(connection.scan_iter(match=f"rq:*:{name}", count=1000))
            if keys:
                connection.delete(*keys)
            connection.srem("rq:queues", f"rq:queue:{name}")
        _USED_QUEUES.clear()
    finally:
        connection.close()


def data_files_of(table: Any) -> Sequence[str]:
    """Paths of the live data files of a PyIceberg table's current snapshot."""
    return sorted(task.file.file_path for task in table.scan().plan_files())
