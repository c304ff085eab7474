"""Engine creation and the schema-version gate.

SQLite (embedded mode) migrates itself at start. PostgreSQL is migrated by ``datlake migrate``
only: a server never changes a production schema on its own, and refuses to start on an
unmigrated or outdated one.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import QueuePool

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class SchemaOutdated(RuntimeError):
    """The database schema is not at the version this code needs."""


def make_engine(url: str, pool_size: int = 10) -> Engine:
    """Create the engine with the settings each backend needs for concurrent commits."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=2 * pool_size,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # Up to 2 x pool_size here and as many in the autocommit companion (read_engine): 4 x per process.
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size)
    _ping_idle_connections(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """``pool_pre_ping`` for connections that sat in the pool for a while, not for every checkout.

    A dead connection (database restart, idle timeout of a proxy) is found and replaced before
    use, as with ``pool_pre_ping``; under load, when connections go back and forth within
    milliseconds, the round trip per query is saved. A connection that dies while in use is
    invalidated by SQLAlchemy together with the rest of the pool.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("the pooled connection is dead") from exc  # the pool reconnects


def read_engine(engine: Engine) -> Engine:
    """The engine for single statements outside ``begin()``: on PostgreSQL a companion engine whose
    connections are in autocommit, elsewhere the engine itself.

    A statement in a transaction costs two extra round trips (BEGIN, and the ROLLBACK or COMMIT),
    and at PostgreSQL's READ COMMITTED each statement takes its own snapshot anyway, so a read
    sees exactly the same data and a single write is just as atomic. The companion has a pool of
    its own, as large as the engine's, rather than switching ``engine``'s connections to
    autocommit and back on every checkout: that switch cost about 0.13 ms of CPU per statement,
    40% of a row read, and a commit makes three such statements. It is made once per engine and
    disposed with it.
    """
    if engine.dialect.name != "postgresql":
        return engine
    with _companions_lock:
        companion = _autocommit_companions.get(engine)
        if companion is None:
            size = engine.pool.size() if isinstance(engine.pool, QueuePool) else 5  # make_engine's is a QueuePool
            companion = create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_size=size, max_overflow=size)
            _ping_idle_connections(companion)
            event.listen(engine, "engine_disposed", lambda _engine: companion.dispose())
            _autocommit_companions[engine] = companion
        return companion


_companions_lock = threading.Lock()
_autocommit_companions: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest version (idempotent)."""
    command.upgrade(_alembic_config(engine), "head")


def ensure_schema(engine: Engine) -> None:
    """Migrate SQLite; on other databases refuse to run unless the schema is current."""
    if engine.dialect.name == "sqlite":
        migrate(engine)
        return
    current, head = current_revision(engine), head_revision()
    if current != head:
        state = "not migrated" if current is None else f"at revision {current}, this version needs {head}"
        raise SchemaOutdated(
            f"The catalog database schema is {state}: run `datlake migrate` with the same DATLAKE_DATABASE_URL first."
        )
