"""Callers (credential, principal, grants) kept between requests while PostgreSQL says that
nothing about access has changed.

Every change to the access tables sends ``NOTIFY datlake_access`` when it commits (triggers of
migration 0003, so ``datlake admin`` and plain SQL are covered too). Each server process holds
one listening connection in a background thread; every notification drops everything kept, in
every process and on every replica, within milliseconds of the commit. The process that made a
change drops its own callers before it answers (:meth:`CallerCache.invalidate`).

A kept caller is not used while the listening connection has unread input either: a
notification PostgreSQL already sent (for a change committed before this request came in) may be
waiting there for the listener thread to get the GIL, so the request reads the database instead.

Nothing is kept unless the listener is known to be alive: it pings PostgreSQL every second, and
when its connection breaks or stops answering, the cache turns itself off (every request reads
the database again, as with SQLite, which has no notifications) until it is listening again.
Entries also age out after ``max_age_seconds`` as a last line of defence.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from typing import Final, Generic, TypeVar

import psycopg
from sqlalchemy import Engine

from catalog.lru import LruCache

log = logging.getLogger(__name__)

CHANNEL: Final = "datlake_access"
POLL_SECONDS: Final = 1.0  # how often the listener proves it is alive
LIVE_GRACE_SECONDS: Final = 5.0  # a listener silent for longer is presumed stuck: keep nothing
RECONNECT_MAX_SECONDS: Final = 10.0
APPLICATION_NAME: Final = "datlake-access-listener"  # how the connection shows in pg_stat_activity

CacheKey = tuple[str, str]  # ("credential", id) | ("name", principal name)
V = TypeVar("V")


class CallerCache(Generic[V]):
    """Thread-safe; :meth:`start` begins listening (PostgreSQL only, otherwise nothing is kept)."""

    def __init__(self, engine: Engine, capacity: int = 10_000, max_age_seconds: float = 60.0) -> None:
        self._engine = engine
        self._entries: LruCache[CacheKey, tuple[float, V]] = LruCache(capacity)
        self._max_age = max_age_seconds
        self._lock = threading.Lock()
        self._generation = 0
        self._heartbeat = -LIVE_GRACE_SECONDS  # monotonic time the listener last proved alive
        self._listening = False
        self._socket = -1  # the listening connection's file descriptor while listening
        self._stop: threading.Event | None = None  # the running listener's; each start() has its own

    # --- use ----------------------------------------------------------------------------------

    def get(self, key: CacheKey) -> V | None:
        """The kept value, or None (not kept, too old, or the listener is not known to be alive)."""
        if not self._live():
            return None
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def generation(self) -> int:
        """Read before the database lookup whose result is then offered to :meth:`put`."""
        return self._generation

    def put(self, key: CacheKey, value: V, generation: int) -> None:
        """Keep ``value`` unless access changed since ``generation`` was read (it may be stale)."""
        with self._lock:
            if generation == self._generation and self._live():
                self._entries.put(key, (time.monotonic() + self._max_age, value))

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    @property
    def listening(self) -> bool:
        """Whether a listener is up (kept callers may be served); cheap, no I/O."""
        return self._listening

    def _live(self) -> bool:
        return self._listening and time.monotonic() - self._heartbeat < LIVE_GRACE_SECONDS and not self._unread()

    def _unread(self) -> bool:
        """Whether the listening connection has input its thread has not processed yet."""
        try:
            readable, _, _ = select.select([self._socket], [], [], 0)
        except (OSError, ValueError):  # closed meanwhile: the listener is going down
            return True
        return bool(readable)

    # --- the listener ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._engine.dialect.name != "postgresql" or self._stop is not None:
            return
        self._stop = stop = threading.Event()
        threading.Thread(target=self._listen, args=(stop,), name="datlake-access-listener", daemon=True).start()

    def stop(self) -> None:
        """Keep nothing from now on; the listener thread ends within :data:`POLL_SECONDS` (not waited for)."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop.set()
            self._set_listening(False, stop)

    def wait_until_live(self, timeout: float) -> bool:
        """For tests and benchmarks: whether the listener is up within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self._live():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _set_listening(self, listening: bool, stop: threading.Event, socket: int = -1) -> None:
        with self._lock:
            if stop.is_set() and listening:
                return  # a stopped listener's late news
            self._listening = listening
            self._socket = socket
            self._generation += 1  # changes may have been missed while not listening
            self._entries.clear()

    def _listen(self, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                self._listen_once(stop)  # marks itself not listening before it returns or raises
                backoff = 0.5
            except psycopg.Error as exc:
                if not stop.is_set():
                    log.warning("Access-change listener lost its PostgreSQL connection (%s); callers are re-read", exc)
            stop.wait(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX_SECONDS)

    def _listen_once(self, stop: threading.Event) -> None:
        args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        kwargs.update(
            autocommit=True, connect_timeout=5, keepalives=1, keepalives_idle=10, application_name=APPLICATION_NAME
        )
        with psycopg.connect(*args, **kwargs) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self._heartbeat = time.monotonic()
            self._set_listening(True, stop, conn.pgconn.socket)
            try:
                while not stop.is_set():
                    for _notification in conn.notifies(timeout=POLL_SECONDS):
                        self.invalidate()
                    conn.execute("SELECT 1")  # proves the connection (and so the notifications) still work
                    self._heartbeat = time.monotonic()
            finally:
                if stop is self._stop:
                    self._set_listening(False, stop)  # before the connection (its socket) is closed
