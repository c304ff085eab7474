"""Callers kept between requests on PostgreSQL (catalog.persistence.caller_cache): every access
change made anywhere (another server process, plain SQL) reaches the cache through NOTIFY, and
nothing is kept while the listener is down."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from catalog.app import create_app
from catalog.persistence.access_store import AccessStore
from catalog.persistence.caller_cache import APPLICATION_NAME, CallerCache
from catalog.persistence.database import make_engine
from tests.conftest import Backend, authorized_client
from tests.integration.rbac_helpers import Caller, make_caller

NOTIFIED_WITHIN_SECONDS = 2.0
NAMESPACE = "kept"


@pytest.fixture
def app(pg_backend: Backend) -> FastAPI:
    return create_app(pg_backend.settings)


@pytest.fixture
def admin(app: FastAPI) -> Iterator[TestClient]:
    with authorized_client(app) as client:
        assert _store(app).callers.wait_until_live(10), "the access-change listener did not start"
        yield client


def _store(app: FastAPI) -> AccessStore:
    store: AccessStore = app.state.services.authenticator.store
    return store


def _kept_and_allowed(app: FastAPI, admin: TestClient, caller: Caller) -> None:
    """Two good requests: the second is answered from the kept caller."""
    for _ in range(2):
        assert admin.get("/v1/config", headers=caller.headers).status_code == 200
    assert _store(app).cached_caller(caller.key_id) is not None


def _status_within(admin: TestClient, caller: Caller, expected: int, seconds: float) -> None:
    """Wait until the caller's namespace load answers ``expected``; fail after ``seconds``."""
    prefix = admin.prefix  # type: ignore[attr-defined]
    namespace = f"{prefix}/namespaces/{NAMESPACE}"
    if admin.get(namespace).status_code == 404:
        assert admin.post(f"{prefix}/namespaces", json={"namespace": [NAMESPACE]}).status_code == 200
    started = time.monotonic()
    while (status := admin.get(namespace, headers=caller.headers).status_code) != expected:
        assert time.monotonic() - started < seconds, f"still {status} after {seconds} s, expected {expected}"
        time.sleep(0.005)


def test_a_key_revoked_with_plain_sql_fails_within_milliseconds(app: FastAPI, admin: TestClient, sql: Engine) -> None:
    caller = make_caller(admin, [("SELECT", "catalog", "")])
    _kept_and_allowed(app, admin, caller)
    with sql.connect() as conn:
        conn.execute(text("UPDATE credentials SET revoked_at = now() WHERE id = :id"), {"id": caller.key_id})
    _status_within(admin, caller, 401, NOTIFIED_WITHIN_SECONDS)


def test_a_grant_removed_with_plain_sql_is_denied_within_milliseconds(
    app: FastAPI, admin: TestClient, sql: Engine
) -> None:
    caller = make_caller(admin, [("SELECT", "catalog", "")])
    _kept_and_allowed(app, admin, caller)
    _status_within(admin, caller, 200, 0)
    with sql.connect() as conn:
        conn.execute(
            text("DELETE FROM grants WHERE role_id = (SELECT id FROM roles WHERE name = :role)"),
            {"role": f"role-{caller.name}"},
        )
    _status_within(admin, caller, 403, NOTIFIED_WITHIN_SECONDS)


def test_changes_through_the_api_apply_to_the_very_next_request(app: FastAPI, admin: TestClient) -> None:
    caller = make_caller(admin, [("SELECT", "catalog", "")])
    _kept_and_allowed(app, admin, caller)
    # no waiting: the process that made the change dropped its kept callers before answering
    assert admin.patch(f"/api/v1/admin/principals/{caller.name}", json={"enabled": False}).status_code == 200
    assert admin.get("/v1/config", headers=caller.headers).status_code == 401


def test_nothing_is_kept_while_the_listener_is_down(app: FastAPI, admin: TestClient, sql: Engine) -> None:
    caller = make_caller(admin, [("SELECT", "catalog", "")])
    _kept_and_allowed(app, admin, caller)
    callers = _store(app).callers
    with sql.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name AND datname = current_database()"  # not other runs' listeners
            ),
            {"name": APPLICATION_NAME},
        ).all()
        assert killed, "no listener connection found"
        # Wait for the listener to mark itself down (which drops what it kept): get() alone can
        # answer None earlier, while the dead connection's input is still unread.
        deadline = time.monotonic() + 5
        while callers.listening:
            assert time.monotonic() < deadline, "the listener did not notice that its connection was gone"
            time.sleep(0.01)
        assert callers.get(("credential", caller.key_id)) is None, (
            "the cache still serves callers with its listener gone"
        )
        # a change made while nobody listens (its notification is lost) still applies at once
        conn.execute(text("UPDATE credentials SET revoked_at = now() WHERE id = :id"), {"id": caller.key_id})
    assert admin.get("/v1/config", headers=caller.headers).status_code == 401
    # the listener comes back, and kept callers with it
    assert callers.wait_until_live(15)
    other = make_caller(admin, [("SELECT", "catalog", "")])
    _kept_and_allowed(app, admin, other)


def test_a_lookup_that_raced_a_change_is_not_kept(pg_backend: Backend) -> None:
    engine = make_engine(pg_backend.settings.resolved_database_url)
    cache: CallerCache[str] = CallerCache(engine, max_age_seconds=0.2)
    try:
        cache.put(("name", "a"), "before start", cache.generation())
        assert cache.get(("name", "a")) is None  # not listening yet: nothing is kept
        cache.start()
        assert cache.wait_until_live(10)
        generation = cache.generation()
        cache.put(("name", "a"), "fresh", generation)
        assert cache.get(("name", "a")) == "fresh"
        stale = cache.generation()
        cache.invalidate()  # a change committed while the lookup read the database
        cache.put(("name", "b"), "read before the change", stale)
        assert cache.get(("name", "a")) is None and cache.get(("name", "b")) is None
        cache.put(("name", "c"), "aging", cache.generation())
        time.sleep(0.3)
        assert cache.get(("name", "c")) is None  # older than max_age
    finally:
        cache.stop()
        engine.dispose()
    assert cache.get(("name", "a")) is None


def test_sqlite_keeps_nothing(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    cache: CallerCache[str] = CallerCache(engine)
    cache.start()
    assert not cache.wait_until_live(0.2)
    cache.put(("name", "a"), "x", cache.generation())
    assert cache.get(("name", "a")) is None
    engine.dispose()
