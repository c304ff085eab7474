"""The table lookup of every ``loadTable`` on the event loop (PostgreSQL only).

Engines load a table for nearly every query, and the lookup of its pointer is the only database
work in that request. Through the synchronous engine it costs a thread-pool hop and SQLAlchemy's
per-statement work, about 40% of a warm ``loadTable``'s CPU; here it is one statement on a
pooled asyncio psycopg connection in autocommit, the same query text (compiled once from
:data:`catalog.persistence.store.ENTITY_BY_NAME`) and the same read-committed snapshot as the
synchronous reader. Connections are opened on demand up to ``size`` and live on the event loop
of the app's lifespan; a connection that fails is dropped and the read is tried once more on a
new one, so a database restart costs no request that can be served.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from sqlalchemy import Engine

from catalog import errors
from catalog.persistence.store import ENTITY_BY_NAME, EntityRow, Namespace, namespace_key

log = logging.getLogger(__name__)

APPLICATION_NAME = "datlake-entity-reader"


class AsyncEntityReader:
    def __init__(self, engine: Engine, size: int, connect_timeout_seconds: int = 5) -> None:
        url = engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._sql = str(ENTITY_BY_NAME.compile(dialect=engine.dialect))
        self._size = size
        self._connect_timeout = connect_timeout_seconds
        self._idle: asyncio.LifoQueue[psycopg.AsyncConnection[Any]] | None = None
        self._slots: asyncio.Semaphore | None = None

    @property
    def is_open(self) -> bool:
        return self._idle is not None

    async def open(self) -> None:
        """Start serving on the running event loop (connections are opened when first needed)."""
        self._idle = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(self._size)

    async def close(self) -> None:
        idle, self._idle = self._idle, None
        while idle is not None and not idle.empty():
            await idle.get_nowait().close()

    async def entity(self, warehouse_id: int, levels: Namespace, name: str, kind: str) -> EntityRow | None:
        """The live row of a table or view, or None (also when the name belongs to the other kind)."""
        params = {"warehouse_id": warehouse_id, "namespace": namespace_key(levels), "name": name}
        idle, slots = self._idle, self._slots
        if idle is None or slots is None:
            raise RuntimeError("AsyncEntityReader used before open()")
        async with slots:  # at most `size` connections, idle ones included
            for attempt in (1, 2):
                connection = idle.get_nowait() if not idle.empty() else await self._connect()
                try:
                    cursor = await connection.execute(self._sql, params)
                    row = await cursor.fetchone()
                except psycopg.OperationalError as exc:
                    await connection.close()
                    if attempt == 2:
                        raise errors.DatabaseUnavailable("The catalog database is unavailable") from exc
                    log.info("entity reader: connection failed (%s); retrying on a new one", type(exc).__name__)
                    continue
                except psycopg.DataError as exc:  # a value PostgreSQL cannot hold (NUL bytes): the connection is fine
                    await self._give_back(connection, idle)
                    raise errors.BadRequest(f"Invalid value in request: {exc}") from exc
                except BaseException:
                    await connection.close()
                    raise
                await self._give_back(connection, idle)
                if row is None or row[1] != kind:
                    return None
                return EntityRow(row[0], levels, name, row[1], row[2], row[3])
        raise AssertionError("unreachable")

    async def _give_back(
        self, connection: psycopg.AsyncConnection[Any], idle: asyncio.LifoQueue[psycopg.AsyncConnection[Any]]
    ) -> None:
        if self._idle is idle:
            idle.put_nowait(connection)
        else:  # the reader was closed meanwhile
            await connection.close()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            return await psycopg.AsyncConnection.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=self._connect_timeout,
                application_name=APPLICATION_NAME,
            )
        except psycopg.OperationalError as exc:
            raise errors.DatabaseUnavailable("The catalog database is unreachable") from exc
