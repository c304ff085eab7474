"""The catalog's connections to PostgreSQL: transactions on the engine's pool, single statements
(row reads, a commit's pointer swap, audit rows) on an autocommit companion with a pool of its
own, closed together with the engine."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, text

from catalog.persistence.database import make_engine, read_engine
from catalog.persistence.store import CatalogStore
from tests.conftest import Backend

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(pg_backend: Backend) -> Iterator[Engine]:
    engine = make_engine(pg_backend.settings.resolved_database_url)
    yield engine
    engine.dispose()


def _sessions(sql: Engine, database: str) -> int:
    with sql.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = :database AND pid <> pg_backend_pid()"),
            {"database": database},
        ).scalar_one()
    return int(count)


def test_single_statements_commit_on_their_own_and_transactions_stay_transactions(engine: Engine) -> None:
    companion = read_engine(engine)
    assert companion is not engine
    assert read_engine(engine) is companion  # one companion (and pool) per engine, shared by the stores

    with companion.connect() as conn:
        conn.execute(text("SELECT 1"))
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        assert dbapi.info.transaction_status == TransactionStatus.IDLE  # no BEGIN was sent

    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        assert dbapi.info.transaction_status == TransactionStatus.INTRANS  # the engine's own keep transactions
        conn.rollback()

    # A transaction on the engine rolls back as a whole, even after the companion was used.
    store = CatalogStore(engine)
    warehouse = store.ensure_warehouse("pools", "file:///tmp/pools")
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(text("UPDATE warehouses SET location = 'file:///elsewhere' WHERE id = :id"), {"id": warehouse.id})
        raise RuntimeError("abort")
    with companion.connect() as conn:
        location = conn.execute(text("SELECT location FROM warehouses WHERE id = :id"), {"id": warehouse.id})
        assert location.scalar_one() == "file:///tmp/pools"


def _sessions_after_close(sql: Engine, database: str, timeout: float = 10.0) -> int:
    """The sessions still open once the server has caught up: a backend leaves pg_stat_activity
    a moment after its client closed the connection, not at once."""
    deadline = time.monotonic() + timeout
    while (count := _sessions(sql, database)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def test_disposing_the_engine_closes_the_companion_connections(engine: Engine, sql: Engine) -> None:
    database = engine.url.database
    assert database
    with engine.connect() as conn, read_engine(engine).connect() as other:
        conn.execute(text("SELECT 1"))
        other.execute(text("SELECT 1"))
        pooled = [conn.connection.dbapi_connection, other.connection.dbapi_connection]
    assert _sessions(sql, database) == 2  # one kept in each pool

    engine.dispose()
    assert all(dbapi is not None and dbapi.closed for dbapi in pooled)  # closed on our side at once
    assert _sessions_after_close(sql, database) == 0  # and the server has let them go
