"""The catalog database failing under the catalog, on real PostgreSQL: requests are answered in the
spec's error model (503 while it is unreachable, 500 ``CommitStateUnknownException`` when a
commit's swap may or may not have been applied), nothing a pointer may name is deleted, and
service resumes by itself when the database is back."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from catalog.app import create_app
from catalog.persistence.database import PING_AFTER_IDLE_SECONDS, make_engine
from catalog.persistence.entity_reader import APPLICATION_NAME
from tests.conftest import Backend, authorized_client
from tests.delay_proxy import DelayProxy
from tests.integration.helpers import commit, create_namespace, create_table, list_files, set_props, table_url
from tests.services import PG_ADMIN_URL

pytestmark = pytest.mark.postgres


@pytest.fixture
def server() -> Iterator[Engine]:
    """A connection to another database of the server: ALTER DATABASE and killing backends need it."""
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@contextmanager
def database_refusing_connections(server: Engine, database: str, *, only: str | None = None) -> Iterator[None]:
    """New connections to ``database`` are refused and its current ones (or only those whose
    ``application_name`` is ``only``) are terminated; everything is allowed again on exit."""
    with server.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :database AND (CAST(:only AS text) IS NULL OR application_name = :only)"
            ),
            {"database": database, "only": only},
        )
    try:
        yield
    finally:
        with server.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))


def _database(backend: Backend) -> str:
    name = make_engine(backend.settings.resolved_database_url).url.database
    assert name
    return name


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["type"] == "ServiceUnavailableException"


def test_a_database_refusing_connections_is_a_503_then_service_resumes(
    pg_admin: TestClient, pg_backend: Backend, server: Engine
) -> None:
    url = table_url(pg_admin, "db", "t")
    listing = f"{pg_admin.prefix}/namespaces/db/tables"  # type: ignore[attr-defined]
    assert pg_admin.get(url).status_code == 200
    database = _database(pg_backend)
    with database_refusing_connections(server, database, only=APPLICATION_NAME):
        assert_unavailable(pg_admin.get(url))  # loadTable's lookup on the event loop
    assert pg_admin.get(url).status_code == 200
    # Every connection (the synchronous pool, the access-change listener): what needs the
    # database through SQLAlchemy is a 503 as well, not a 500.
    with database_refusing_connections(server, database):
        for response in (pg_admin.get(listing), pg_admin.get(url), commit(pg_admin, "db", "t", [set_props(a="1")])):
            assert_unavailable(response)
    assert pg_admin.get(url).status_code == 200
    assert pg_admin.get(listing).status_code == 200
    assert commit(pg_admin, "db", "t", [set_props(a="2")]).status_code == 200


def _commit_while_the_database_goes(
    backend_factory: Callable[..., Backend], server: Engine, hold_seconds: float
) -> tuple[Any, str, str, set[str], set[str]]:
    """Commit with the new metadata file's PUT held ``hold_seconds`` by a proxy, during which the
    database starts refusing connections and loses its current ones. Returns the response, the
    pointer before, after, and the table's metadata files before and after."""
    backend = backend_factory("postgres-s3")
    assert backend.s3 is not None
    proxy = DelayProxy(backend.s3.endpoint).start()
    settings = backend.settings.model_copy(update={"s3_endpoint": proxy.url})
    try:
        with authorized_client(create_app(settings)) as admin:
            create_namespace(admin, "db")
            created = create_table(admin, "db", "t")
            metadata_dir = f"{created['metadata']['location']}/metadata"
            files_before = list_files(backend, metadata_dir)
            proxy.hold(".metadata.json", seconds=hold_seconds, method="PUT")
            outcome: dict[str, Any] = {}
            committing = threading.Thread(
                target=lambda: outcome.update(response=commit(admin, "db", "t", [set_props(stage="lost")]))
            )
            committing.start()
            assert proxy.held.wait(10), "the commit never reached the object store"
            with database_refusing_connections(server, _database(backend)):
                committing.join(timeout=30)
            proxy.clear()
            loaded = admin.get(table_url(admin, "db", "t"))
            assert loaded.status_code == 200, loaded.text
            assert commit(admin, "db", "t", [set_props(stage="after")]).status_code == 200
            return (
                outcome["response"],
                created["metadata-location"],
                loaded.json()["metadata-location"],
                files_before,
                list_files(backend, metadata_dir),
            )
    finally:
        proxy.close()


@pytest.mark.s3
def test_a_connection_lost_at_the_swap_is_commit_state_unknown_and_keeps_the_file(
    backend_factory: Callable[..., Backend], server: Engine
) -> None:
    """The pooled connection dies while the metadata file is written; the swap goes out on it (a
    connection idle for less than the ping interval is used without a ping) and fails: the catalog
    cannot tell whether it was applied, so it answers 500 CommitStateUnknownException and keeps the
    file a pointer may name."""
    hold = PING_AFTER_IDLE_SECONDS / 2
    response, before, after, files_before, files_after = _commit_while_the_database_goes(backend_factory, server, hold)
    assert response.status_code == 500, response.text
    assert response.json()["error"]["type"] == "CommitStateUnknownException"
    assert after == before  # in fact it never reached the database
    kept = files_after - files_before
    assert len(kept) == 2, kept  # the unknown commit's file, and the file of the commit made afterwards


@pytest.mark.s3
def test_a_database_unreachable_at_the_swap_is_a_503_and_removes_the_file(
    backend_factory: Callable[..., Backend], server: Engine
) -> None:
    """After a longer write the pooled connection is pinged, found dead, and no new one can be
    opened: nothing was sent, so the commit certainly did not apply and its file is removed."""
    hold = PING_AFTER_IDLE_SECONDS * 1.5
    response, before, after, files_before, files_after = _commit_while_the_database_goes(backend_factory, server, hold)
    assert_unavailable(response)
    assert after == before
    assert len(files_after - files_before) == 1  # only the file of the commit made afterwards
