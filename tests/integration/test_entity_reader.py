"""loadTable's table lookup on the event loop (catalog.persistence.entity_reader), on real
PostgreSQL: it is what serves loads, it sees every commit at once, it survives its connections
being killed, and an unreachable database is reported as such (see also test_database_faults.py)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from catalog import errors
from catalog.persistence.database import make_engine
from catalog.persistence.entity_reader import APPLICATION_NAME, AsyncEntityReader
from catalog.persistence.store import TABLE
from tests.conftest import Backend
from tests.integration.helpers import commit, set_props, table_url


def _reader_connections(sql: Engine) -> int:
    with sql.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": APPLICATION_NAME},
            ).scalar_one()
        )


def _kill_reader_connections(engine: Engine, database: str | None = None) -> None:
    """Terminate the reader's connections to ``database`` (default: the one ``engine`` is on)."""
    with engine.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name AND datname = coalesce(:database, current_database())"
            ),
            {"name": APPLICATION_NAME, "database": database},
        )


def test_loads_go_through_the_reader_and_see_each_commit_at_once(pg_admin: TestClient, sql: Engine) -> None:
    url = table_url(pg_admin, "db", "t")
    assert _reader_connections(sql) == 0
    for value in ("1", "2", "3"):
        committed = commit(pg_admin, "db", "t", [set_props(step=value)])
        assert committed.status_code == 200, committed.text
        loaded = pg_admin.get(url)
        assert loaded.status_code == 200
        assert loaded.json()["metadata-location"] == committed.json()["metadata-location"]
        assert loaded.json()["metadata"]["properties"]["step"] == value
    assert 1 <= _reader_connections(sql) <= pg_admin.app.state.services.settings.database_read_pool_size  # type: ignore[attr-defined]
    assert pg_admin.head(url).status_code == 204
    assert pg_admin.get(table_url(pg_admin, "db", "missing")).json()["error"]["type"] == "NoSuchTableException"
    assert pg_admin.head(table_url(pg_admin, "db", "missing")).status_code == 404


def test_loads_survive_killed_reader_connections(pg_admin: TestClient, sql: Engine) -> None:
    url = table_url(pg_admin, "db", "t")
    assert pg_admin.get(url).status_code == 200
    assert _reader_connections(sql) >= 1
    _kill_reader_connections(sql)
    for _ in range(3):
        response = pg_admin.get(url)
        assert response.status_code == 200, response.text


def test_the_reader_reports_an_unreachable_database(pg_backend: Backend) -> None:
    engine = make_engine(pg_backend.settings.resolved_database_url)
    dead = make_engine(engine.url.set(host="127.0.0.1", port=9).render_as_string(hide_password=False))

    async def lookup() -> None:
        reader = AsyncEntityReader(dead, size=2, connect_timeout_seconds=2)
        await reader.open()
        try:
            await reader.entity(1, ("db",), "t", TABLE)
        finally:
            await reader.close()

    with pytest.raises(errors.DatabaseUnavailable):
        asyncio.run(lookup())
    engine.dispose()
    dead.dispose()
