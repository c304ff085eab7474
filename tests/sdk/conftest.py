"""A real catalog for the SDK and CLI tests: PostgreSQL, S3, Redis and a `datlake worker` process,
served over HTTP, with an administrator's API key and helpers to upload Parquet and make readers."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from catalog.app import create_app
from catalog.config import Settings
from datlake_sdk import DatalakeClient
from tests.conftest import AdminCredentials, Backend, LiveServer, admin_credentials
from tests.detached_support import queue_name
from tests.services import REDIS_URL, S3Server, unavailable

Row = tuple[int, str, float]
ROWS_A: list[Row] = [(i, f"a-{i}", i * 1.5) for i in range(1, 11)]
ROWS_B: list[Row] = [(i, f"b-{i}", i * 1.5) for i in range(11, 16)]
UPLOAD_BUCKET = "my-bucket"  # the seed example's `s3://my-bucket/uploads/new.parquet`


def rows_of(fetched: Sequence[Sequence[Any]]) -> list[Row]:
    return [(int(r[0]), str(r[1]), float(r[2])) for r in fetched]


def parquet_bytes(rows: Sequence[Row]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.int64()),
            "name": pa.array([r[1] for r in rows], pa.string()),
            "amount": pa.array([r[2] for r in rows], pa.float64()),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``DATLAKE_*`` variables that make another process (the worker) see ``settings``."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[f"DATLAKE_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


@dataclass
class Lake:
    """One catalog under test and what a user of the SDK has: its URL, a key, the object store."""

    url: str
    settings: Settings
    s3: S3Server
    admin: AdminCredentials
    tmp: Path
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def admin_key(self) -> str:
        return self.admin.api_key

    @property
    def admin_client_credentials(self) -> tuple[str, str]:
        return self.admin.client_id, self.admin.client_secret

    @property
    def namespace(self) -> str:
        return self.settings.default_namespace

    @property
    def config_file(self) -> Path:
        return self.tmp / "datlake" / "config.toml"

    @property
    def home(self) -> Path:
        """HOME of the processes a test starts (DuckDB keeps extensions and secrets under it)."""
        path = self.tmp / "home"
        path.mkdir(exist_ok=True)
        return path

    # --- objects ---------------------------------------------------------------------------

    def upload_to(self, bucket: str, key: str, rows: Sequence[Row]) -> str:
        return self.put_bytes(bucket, key, parquet_bytes(rows))

    def put_bytes(self, bucket: str, key: str, body: bytes) -> str:
        client = self.s3.client()
        try:
            client.head_bucket(Bucket=bucket)
        except Exception:  # noqa: BLE001 - absent: create it
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key=key, Body=body)
        return f"s3://{bucket}/{key}"

    def upload(self, key: str, rows: Sequence[Row]) -> str:
        """Parquet of ``rows`` in the warehouse's bucket (a location allowed for registration)."""
        return self.upload_bytes(key, parquet_bytes(rows))

    def upload_bytes(self, key: str, body: bytes) -> str:
        warehouse = self.settings.resolved_warehouse.removeprefix("s3://")
        bucket, _, base = warehouse.partition("/")
        return self.put_bytes(bucket, f"{base}/{self.prefix}/{key}".lstrip("/"), body)

    # --- clients ---------------------------------------------------------------------------

    def sdk_env(self, api_key: str | None = "admin") -> dict[str, str]:
        """What a user's environment holds: the catalog URL, a key, the S3 settings for DuckDB."""
        env = {
            "DATLAKE_URL": self.url,
            "DATLAKE_CONFIG_FILE": str(self.config_file),
            "DATLAKE_S3_ENDPOINT": self.s3.endpoint,
            "DATLAKE_S3_ACCESS_KEY_ID": self.s3.access_key,
            "DATLAKE_S3_SECRET_ACCESS_KEY": self.s3.secret_key,
            "DATLAKE_S3_REGION": self.s3.region,
        }
        if api_key is not None:
            env["DATLAKE_API_KEY"] = self.admin_key if api_key == "admin" else api_key
        return env

    def process_env(self, api_key: str | None = "admin") -> dict[str, str]:
        """A clean environment for a subprocess: no server settings, the venv's scripts first on PATH."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATLAKE_", "AWS_"))}
        env.update(self.sdk_env(api_key))
        env["HOME"] = str(self.home)
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        return env

    def client(self) -> DatalakeClient:
        return DatalakeClient(env=self.sdk_env())

    def admin_http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.admin.headers, timeout=30)

    def principal_with_grants(self, name: str, grants: Sequence[tuple[str, str, str]]) -> str:
        """A service principal holding ``(privilege, securable type, securable name)`` grants
        through its own role, made with the admin API; returns its API key."""
        with self.admin_http() as http:
            http.post("/api/v1/admin/principals", json={"name": name, "type": "service"}).raise_for_status()
            role = f"role_{name}"
            http.post("/api/v1/admin/roles", json={"name": role}).raise_for_status()
            http.put(f"/api/v1/admin/roles/{role}/principals/{name}").raise_for_status()
            for privilege, kind, securable in grants:
                body = {"privilege": privilege, "securable": {"type": kind, "name": securable}}
                http.post(f"/api/v1/admin/roles/{role}/grants", json=body).raise_for_status()
            created = http.post(f"/api/v1/admin/principals/{name}/api-keys", json={})
            created.raise_for_status()
            key: str = created.json()["api_key"]
            return key


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def redis_url() -> str:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        unavailable("Redis", f"{REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture
def app(backend: Backend, redis_url: str) -> FastAPI:
    """The catalog with jobs on Redis (a queue of its own) and the seed's upload bucket allowed."""
    backend.settings = backend.settings.model_copy(
        update={
            "redis_url": redis_url,
            "job_queue": queue_name("sdk-test"),
            "register_allowed_locations": f"s3://{UPLOAD_BUCKET}/",
        }
    )
    return create_app(backend.settings)


@pytest.fixture
def worker(app: FastAPI, backend: Backend, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real `datlake worker` process on the app's queue and database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATLAKE_")}
    env.update(settings_env(backend.settings))
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "catalog.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    time.sleep(0.5)
    if process.poll() is not None:
        raise RuntimeError(f"datlake worker exited at start:\n{log_path.read_text()}")
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def lake(live_server: LiveServer, backend: Backend, worker: subprocess.Popen[bytes], tmp_path: Path) -> Lake:
    assert backend.s3 is not None, "the SDK tests run on postgres-s3"
    return Lake(
        url=live_server.url,
        settings=backend.settings,
        s3=backend.s3,
        admin=admin_credentials(live_server.app),
        tmp=tmp_path,
    )
