"""Shared fixtures: real services, catalog configurations over every backend, clients, live servers.

Backends are named ``<database>-<storage>``: ``sqlite-file``, ``sqlite-s3``, ``postgres-file``,
``postgres-s3``. Tests that take ``backend`` run once per backend; each run gets its own fresh
database (a new PostgreSQL database or SQLite file) and its own warehouse prefix.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine

from catalog.app import create_app
from catalog.config import Settings
from tests.detached_support import forget_queues
from tests.services import PG_ADMIN_URL, PostgresServer, S3Server, free_port, s3_server, unavailable

ALL_BACKENDS = ["sqlite-file", "sqlite-s3", "postgres-file", "postgres-s3"]
TEST_JWT_SECRET = "datlake-test-jwt-secret-0123456789abcdef"  # the server refuses to start with PostgreSQL and none


@dataclass(frozen=True)
class AdminCredentials:
    """An administrator (ADMIN on the default warehouse's catalog) of one app, made for the tests."""

    name: str
    client_id: str
    client_secret: str
    api_key: str

    @property
    def credential(self) -> str:
        """PyIceberg's ``credential`` property."""
        return f"{self.client_id}:{self.client_secret}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def admin_credentials(app: FastAPI) -> AdminCredentials:
    """The test administrator of ``app`` (created on first use, then remembered on the app)."""
    existing: AdminCredentials | None = getattr(app.state, "test_admin", None)
    if existing is not None:
        return existing
    from catalog.authz.model import Grant, Privilege, SecurableType

    access = app.state.services.access
    created = access.create_principal("test-admin", "service")
    role_id = access.access.create_role("test-admins")
    default = access.warehouse(None)
    access.access.add_grant(role_id, Grant(Privilege.ADMIN.value, SecurableType.CATALOG.value, default.id, ""))
    access.add_member("test-admins", created.name)
    key = access.create_api_key(created.name)
    admin = AdminCredentials(created.name, created.client_id, created.client_secret, key.api_key)
    app.state.test_admin = admin
    return admin


def authorized_client(app: FastAPI, **kwargs: object) -> TestClient:
    """A TestClient that sends the test administrator's API key (use as a context manager)."""
    client = TestClient(app, headers=admin_credentials(app).headers, **kwargs)  # type: ignore[arg-type]
    client.prefix = f"/v1/{app.state.services.settings.warehouse_name}"  # type: ignore[attr-defined]
    return client


@pytest.fixture(scope="session", autouse=True)
def _forget_job_queues() -> Iterator[None]:
    yield
    forget_queues()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer(PG_ADMIN_URL)
    try:
        server.check()
    except Exception as exc:  # noqa: BLE001
        unavailable("PostgreSQL", f"{PG_ADMIN_URL}: {exc}")
    yield server
    server.close()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    try:
        manager = s3_server()
        server = manager.__enter__()
    except Exception as exc:  # noqa: BLE001
        unavailable("S3 server", str(exc))
    try:
        yield server
    finally:
        manager.__exit__(None, None, None)


@dataclass
class Backend:
    """One catalog configuration (database + warehouse) and how to reach its storage."""

    name: str
    settings: Settings
    s3: S3Server | None

    @property
    def warehouse(self) -> str:
        return self.settings.resolved_warehouse

    def storage_properties(self) -> dict[str, str]:
        """What a client (PyIceberg) needs to read and write this backend's data files."""
        return self.s3.pyiceberg_properties() if self.s3 else {}


def make_settings(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, **overrides: object
) -> tuple[Settings, S3Server | None]:
    database, storage = name.split("-")
    if database == "postgres":
        database_url = request.getfixturevalue("postgres").new_database(migrated=True)
    else:
        database_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    s3: S3Server | None = None
    if storage == "s3":
        s3 = request.getfixturevalue("s3")
        warehouse = f"s3://{s3.bucket}/{uuid.uuid4().hex[:10]}"
        s3_settings: dict[str, object] = s3.settings_fields()
    else:
        warehouse = (tmp_path / "warehouse").as_uri()
        s3_settings = {}
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        warehouse=warehouse,
        **{"auth_jwt_secret": TEST_JWT_SECRET, **s3_settings, **overrides},  # type: ignore[arg-type]
    )
    return settings, s3


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    settings, s3 = make_settings(request, tmp_path, request.param)
    return Backend(request.param, settings, s3)


@pytest.fixture
def backend_factory(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Backend]:
    """Build a backend by name with extra settings, e.g. ``backend_factory("postgres-s3", max_request_bytes=1000)``."""

    def build(name: str, **overrides: object) -> Backend:
        settings, s3 = make_settings(request, tmp_path_factory.mktemp(name), name, **overrides)
        return Backend(name, settings, s3)

    return build


@pytest.fixture
def pg_backend(backend_factory: Callable[..., Backend]) -> Backend:
    """PostgreSQL (a fresh database) with a local-file warehouse."""
    return backend_factory("postgres-file")


@pytest.fixture
def sql(pg_backend: Backend) -> Iterator[Engine]:
    """A connection of its own to ``pg_backend``'s database, as another server process or an
    operator's psql would have (autocommit)."""
    engine = create_engine(pg_backend.settings.resolved_database_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture
def app(backend: Backend) -> FastAPI:
    return create_app(backend.settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """An HTTP client on the app in-process, authenticated as an administrator (its API key);
    ``client.prefix`` is the warehouse's URL prefix."""
    with TestClient(app, headers=admin_credentials(app).headers) as test_client:
        test_client.prefix = f"/v1/{app.state.services.settings.warehouse_name}"  # type: ignore[attr-defined]
        yield test_client


class LiveServer:
    """The catalog served by uvicorn on a loopback port in a background thread."""

    def __init__(self, app: FastAPI) -> None:
        import uvicorn

        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", timeout_keep_alive=75
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("catalog server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def catalog_properties(live_server: LiveServer, backend: Backend) -> dict[str, str]:
    """Properties for ``pyiceberg.catalog.load_catalog(type="rest", **props)`` against the live server.

    Includes the storage keys a client needs for the backend's data files and, once RBAC is on,
    the credentials of an administrator.
    """
    admin = admin_credentials(live_server.app)
    return {
        "type": "rest",
        "uri": live_server.url,
        "warehouse": backend.settings.warehouse_name,
        "credential": admin.credential,
        "oauth2-server-uri": f"{live_server.url}/v1/oauth/tokens",
        **backend.storage_properties(),
    }
