"""Faults: stale commits, an unreachable object store, missing or unreadable metadata files.

The catalog must answer with the spec's error model (409 for a lost race, 503
``ServiceUnavailableException`` for storage trouble), promptly, and leave the table's pointer
exactly where it was.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pyiceberg.catalog import load_catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from catalog.app import create_app
from catalog.persistence.store import TABLE
from tests.conftest import Backend, admin_credentials
from tests.services import free_port, seaweedfs

SCHEMA_JSON = {
    "type": "struct",
    "schema-id": 0,
    "fields": [{"id": 1, "name": "id", "type": "long", "required": False}],
}

# A failed commit must come back quickly: the catalog's S3 client has short timeouts.
PROMPT_SECONDS = 30


def set_props(**props: str) -> dict[str, Any]:
    return {"requirements": [], "updates": [{"action": "set-properties", "updates": props}]}


def client_for(app: FastAPI, admin_of: FastAPI | None = None) -> TestClient:
    """A TestClient authenticated as the test administrator (of ``admin_of`` when the apps share a database)."""
    client = TestClient(app, headers=admin_credentials(admin_of or app).headers)
    client.prefix = f"/v1/{app.state.services.settings.warehouse_name}"  # type: ignore[attr-defined]
    return client


def make_table(client: TestClient, name: str = "t") -> dict[str, Any]:
    p = client.prefix  # type: ignore[attr-defined]
    created = client.post(f"{p}/namespaces", json={"namespace": ["faults"]})
    assert created.status_code in (200, 409), created.text
    response = client.post(f"{p}/namespaces/faults/tables", json={"name": name, "schema": SCHEMA_JSON})
    assert response.status_code == 200, response.text
    committed = client.post(f"{p}/namespaces/faults/tables/{name}", json=set_props(stage="one"))
    assert committed.status_code == 200, committed.text
    body: dict[str, Any] = committed.json()
    return body


def pointer(app: FastAPI, name: str = "t") -> str:
    """The table's metadata location straight from the catalog database."""
    services = app.state.services
    warehouse = services.store.get_warehouse(services.settings.warehouse_name)
    entity = services.store.get_entity(warehouse.id, ("faults",), name, TABLE)
    assert entity is not None
    location: str = entity.metadata_location
    return location


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "ServiceUnavailableException"
    assert error["code"] == 503


def remove_file(backend: Backend, location: str) -> None:
    parts = urlsplit(location)
    if parts.scheme == "s3":
        assert backend.s3 is not None
        backend.s3.client().delete_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))
    else:
        os.remove(parts.path)


def overwrite_file(backend: Backend, location: str, payload: bytes) -> None:
    parts = urlsplit(location)
    if parts.scheme == "s3":
        assert backend.s3 is not None
        backend.s3.client().put_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"), Body=payload)
    else:
        with open(parts.path, "wb") as stream:
            stream.write(payload)


# --- stale commits ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)
def test_stale_commits_are_409_and_change_nothing(catalog_properties: dict[str, str], app: FastAPI) -> None:
    """Two PyIceberg clients hold the same version; the slower one's schema change and append both lose."""
    first = load_catalog("first", **catalog_properties)
    second = load_catalog("second", **catalog_properties)
    first.create_namespace("faults")
    schema = Schema(NestedField(1, "id", LongType(), required=False))
    first.create_table("faults.t", schema, properties={"commit.retry.num-retries": "0"})
    mine, theirs = first.load_table("faults.t"), second.load_table("faults.t")

    with mine.update_schema() as update:
        update.add_column("winner", StringType())
    mine.append(pa.table({"id": pa.array([7], pa.int64()), "winner": pa.array(["yes"], pa.string())}))
    after_winner = pointer(app)
    assert after_winner == first.load_table("faults.t").metadata_location

    with pytest.raises(CommitFailedException):
        with theirs.update_schema() as update:  # requires the schema it was built on: stale
            update.add_column("loser", StringType())
    with pytest.raises(CommitFailedException):
        theirs.append(pa.table({"id": pa.array([1, 2], pa.int64())}))  # requires main's old head (none)

    assert pointer(app) == after_winner
    table = first.load_table("faults.t")
    assert table.metadata_location == after_winner
    assert [f.name for f in table.schema().fields] == ["id", "winner"]
    assert table.scan().to_arrow().to_pylist() == [{"id": 7, "winner": "yes"}]
    assert set(table.refs()) == {"main"}
    assert len(table.metadata.metadata_log) == 2  # only the winner's two commits followed the create


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres-file"], indirect=True)
def test_stale_requirement_over_http(client: TestClient, app: FastAPI) -> None:
    base = make_table(client)
    p = client.prefix  # type: ignore[attr-defined]
    moved = client.post(f"{p}/namespaces/faults/tables/t", json=set_props(stage="two"))
    assert moved.status_code == 200
    stale = client.post(
        f"{p}/namespaces/faults/tables/t",
        json={
            "requirements": [
                {"type": "assert-table-uuid", "uuid": base["metadata"]["table-uuid"]},
                {"type": "assert-last-assigned-field-id", "last-assigned-field-id": 0},
            ],
            "updates": [{"action": "set-properties", "updates": {"stage": "stale"}}],
        },
    )
    assert stale.status_code == 409, stale.text
    assert stale.json()["error"]["type"] == "CommitFailedException"
    assert pointer(app) == moved.json()["metadata-location"]
    assert client.get(f"{p}/namespaces/faults/tables/t").json()["metadata"]["properties"]["stage"] == "two"


# --- the object store goes away -----------------------------------------------------------------


@pytest.fixture
def dedicated_s3() -> Iterator[Callable[[], None]]:
    """A SeaweedFS of this test's own, and a function that stops it."""
    manager = seaweedfs()
    try:
        server = manager.__enter__()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"SeaweedFS is not available: {exc}")
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            manager.__exit__(None, None, None)

    stop.server = server  # type: ignore[attr-defined]
    try:
        yield stop
    finally:
        stop()


@pytest.mark.postgres
@pytest.mark.s3
def test_object_store_down_during_commit_is_503_and_pointer_stays(
    backend_factory: Callable[..., Backend], dedicated_s3: Callable[[], None]
) -> None:
    s3 = dedicated_s3.server  # type: ignore[attr-defined]
    # Its own endpoint and keys: the shared test server may use other keys (CI sets its own).
    backend = backend_factory("postgres-s3", **s3.settings_fields())
    assert backend.warehouse.startswith("s3://")
    app = create_app(backend.settings)
    with client_for(app) as client:
        p = client.prefix  # type: ignore[attr-defined]
        make_table(client)
        before = pointer(app)
        loaded = client.get(f"{p}/namespaces/faults/tables/t")  # the current metadata is now cached
        assert loaded.status_code == 200 and loaded.json()["metadata-location"] == before

        dedicated_s3()  # the object store is gone

        started = time.monotonic()
        failed = client.post(f"{p}/namespaces/faults/tables/t", json=set_props(stage="lost"))
        elapsed = time.monotonic() - started
        assert_unavailable(failed)
        assert "unavailable" in failed.json()["error"]["message"].lower()
        assert elapsed < PROMPT_SECONDS, f"the failed commit took {elapsed:.1f}s"

        assert pointer(app) == before
        again = client.get(f"{p}/namespaces/faults/tables/t")  # served from the cache
        assert again.status_code == 200
        assert again.json()["metadata-location"] == before
        assert again.json()["metadata"]["properties"]["stage"] == "one"


@pytest.mark.postgres
@pytest.mark.s3
def test_app_on_a_dead_s3_endpoint_is_503_and_healthy_app_sees_no_change(
    backend_factory: Callable[..., Backend],
) -> None:
    backend = backend_factory("postgres-s3")
    healthy = create_app(backend.settings)
    dead_settings = backend.settings.model_copy(update={"s3_endpoint": f"http://127.0.0.1:{free_port()}"})
    broken = create_app(dead_settings)
    with client_for(healthy) as good:
        p = good.prefix  # type: ignore[attr-defined]
        make_table(good)
        before = pointer(healthy)
        with client_for(broken, admin_of=healthy) as bad:
            started = time.monotonic()
            assert_unavailable(bad.post(f"{p}/namespaces/faults/tables/t", json=set_props(stage="lost")))
            assert_unavailable(bad.get(f"{p}/namespaces/faults/tables/t"))
            created = bad.post(f"{p}/namespaces/faults/tables", json={"name": "other", "schema": SCHEMA_JSON})
            assert_unavailable(created)
            elapsed = time.monotonic() - started
            assert elapsed < 3 * PROMPT_SECONDS, f"three failing requests took {elapsed:.1f}s"
            # Database-only operations still work while the store is down.
            assert bad.get(f"{p}/namespaces/faults/tables").status_code == 200
        assert pointer(healthy) == before
        loaded = good.get(f"{p}/namespaces/faults/tables/t").json()
        assert loaded["metadata-location"] == before
        assert loaded["metadata"]["properties"]["stage"] == "one"
        tables = good.get(f"{p}/namespaces/faults/tables").json()["identifiers"]
        assert [t["name"] for t in tables] == ["t"]


# --- the current metadata file is missing or unreadable -----------------------------------------


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)
def test_missing_current_metadata_file_is_503(backend: Backend, app: FastAPI) -> None:
    with client_for(app) as client:
        before = make_table(client)["metadata-location"]
    remove_file(backend, before)
    fresh = create_app(backend.settings)  # nothing cached
    with client_for(fresh, admin_of=app) as client:
        p = client.prefix  # type: ignore[attr-defined]
        load = client.get(f"{p}/namespaces/faults/tables/t")
        assert_unavailable(load)
        assert before in load.json()["error"]["message"]
        assert_unavailable(client.post(f"{p}/namespaces/faults/tables/t", json=set_props(stage="two")))
        assert pointer(fresh) == before
        # The table can still be dropped (without purge) so that an operator can re-register it.
        assert client.delete(f"{p}/namespaces/faults/tables/t").status_code == 204


@pytest.mark.parametrize(
    "payload",
    [b'{"format-version": 2, "truncated', b"\x1f\x8b\x08 not really gzip"],
    ids=["truncated-json", "corrupt-gzip"],
)
@pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)
def test_unreadable_current_metadata_file_is_503(backend: Backend, app: FastAPI, payload: bytes) -> None:
    with client_for(app) as client:
        before = make_table(client)["metadata-location"]
    overwrite_file(backend, before, payload)
    fresh = create_app(backend.settings)
    with client_for(fresh, admin_of=app) as client:
        p = client.prefix  # type: ignore[attr-defined]
        assert_unavailable(client.get(f"{p}/namespaces/faults/tables/t"))
        assert_unavailable(client.post(f"{p}/namespaces/faults/tables/t", json=set_props(stage="two")))
        assert pointer(fresh) == before
