"""Iceberg REST views over HTTP, on every backend: create, load, list, replace, drop, rename, register."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import httpx
from fastapi.testclient import TestClient

from catalog.persistence.store import Warehouse
from catalog.rest.deps import Services
from catalog.service.views import AddViewVersionUpdate, AssertViewUUID, SetCurrentViewVersionUpdate

SCHEMA: dict[str, Any] = {
    "type": "struct",
    "schema-id": 0,
    "fields": [{"id": 1, "name": "id", "type": "long", "required": False}],
}
OTHER_SCHEMA: dict[str, Any] = {
    "type": "struct",
    "schema-id": 0,
    "fields": [
        {"id": 1, "name": "id", "type": "long", "required": False},
        {"id": 2, "name": "label", "type": "string", "required": False},
    ],
}
METADATA_FILE = re.compile(r"/metadata/(\d{5})-[0-9a-f-]{36}\.metadata\.json$")


def _prefix(client: TestClient) -> str:
    prefix: str = client.prefix  # type: ignore[attr-defined]
    return prefix


def _services(client: TestClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


def _version(sql: str, schema_id: int = 0, dialect: str = "spark", **extra: Any) -> dict[str, Any]:
    return {
        "version-id": 1,
        "schema-id": schema_id,
        "timestamp-ms": 1_700_000_000_000,
        "summary": {"engine-name": "test"},
        "representations": [{"type": "sql", "sql": sql, "dialect": dialect}],
        "default-namespace": ["ns"],
        **extra,
    }


def _ns(client: TestClient, *levels: str) -> None:
    response = client.post(f"{_prefix(client)}/namespaces", json={"namespace": list(levels)})
    assert response.status_code == 200, response.text


def _create(client: TestClient, name: str, ns: str = "ns", **body: Any) -> httpx.Response:
    payload: dict[str, Any] = {
        "name": name,
        "schema": SCHEMA,
        "view-version": _version(f"SELECT id FROM {ns}.t"),
        "properties": {"comment": "a view"},
        **body,
    }
    return client.post(f"{_prefix(client)}/namespaces/{ns}/views", json=payload)


def _replace(client: TestClient, name: str, updates: list[dict[str, Any]], uuid: str | None = None) -> httpx.Response:
    requirements = [{"type": "assert-view-uuid", "uuid": uuid}] if uuid else []
    return client.post(
        f"{_prefix(client)}/namespaces/ns/views/{name}", json={"requirements": requirements, "updates": updates}
    )


def _new_version(sql: str, schema: dict[str, Any] | None = None, dialect: str = "spark") -> list[dict[str, Any]]:
    """What the Java client sends to replace a view: add-schema?, add-view-version, set-current-view-version -1."""
    updates: list[dict[str, Any]] = []
    if schema is not None:
        updates.append({"action": "add-schema", "schema": schema, "last-column-id": len(schema["fields"])})
    updates.append({"action": "add-view-version", "view-version": _version(sql, -1 if schema else 0, dialect=dialect)})
    updates.append({"action": "set-current-view-version", "view-version-id": -1})
    return updates


def _error(response: httpx.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type, error
    assert error["code"] == status
    message: str = error["message"]
    return message


def _create_table(client: TestClient, name: str, ns: str = "ns") -> None:
    response = client.post(f"{_prefix(client)}/namespaces/{ns}/tables", json={"name": name, "schema": SCHEMA})
    assert response.status_code == 200, response.text


# --- create and load ----------------------------------------------------------------------------


def test_create_then_load_returns_the_written_metadata(client: TestClient) -> None:
    p = _prefix(client)
    _ns(client, "ns")
    created = _create(client, "v", **{"view-version": _version("SELECT 1", schema_id=7)})
    assert created.status_code == 200, created.text
    body = created.json()
    metadata = body["metadata"]
    warehouse = _services(client).settings.resolved_warehouse.rstrip("/")
    assert metadata["location"] == f"{warehouse}/ns/v"
    match = METADATA_FILE.search(body["metadata-location"])
    assert match is not None and match.group(1) == "00000", body["metadata-location"]
    assert body["metadata-location"].startswith(f"{warehouse}/ns/v/metadata/")
    assert metadata["format-version"] == 1
    assert metadata["current-version-id"] == 1
    assert [s["schema-id"] for s in metadata["schemas"]] == [0]
    (version,) = metadata["versions"]
    assert version["version-id"] == 1
    assert version["schema-id"] == 0  # the spec: replaced by the id assigned to the request's schema
    assert version["representations"] == [{"type": "sql", "sql": "SELECT 1", "dialect": "spark"}]
    assert metadata["version-log"] == [{"timestamp-ms": 1_700_000_000_000, "version-id": 1}]
    assert metadata["properties"] == {"comment": "a view"}
    assert body["config"] == {}
    assert _services(client).storage.exists(body["metadata-location"])

    loaded = client.get(f"{p}/namespaces/ns/views/v")
    assert loaded.status_code == 200, loaded.text
    assert loaded.json() == body
    assert client.head(f"{p}/namespaces/ns/views/v").status_code == 204


def test_create_in_nested_namespace_with_explicit_location(client: TestClient) -> None:
    p = _prefix(client)
    _ns(client, "a")
    _ns(client, "a", "b")
    warehouse = _services(client).settings.resolved_warehouse.rstrip("/")
    created = client.post(
        f"{p}/namespaces/a%1Fb/views",
        json={
            "name": "v",
            "location": f"{warehouse}/custom/place/",
            "schema": SCHEMA,
            "view-version": _version("SELECT 1"),
            "properties": {},
        },
    )
    assert created.status_code == 200, created.text
    assert created.json()["metadata"]["location"] == f"{warehouse}/custom/place"
    assert created.json()["metadata-location"].startswith(f"{warehouse}/custom/place/metadata/00000-")
    listed = client.get(f"{p}/namespaces/a%1Fb/views").json()
    assert listed == {"identifiers": [{"namespace": ["a", "b"], "name": "v"}]}


def test_create_refuses_a_location_outside_the_warehouse(client: TestClient) -> None:
    _ns(client, "ns")
    message = _error(_create(client, "v", location="file:///somewhere/else"), 400, "BadRequestException")
    assert "outside the warehouse" in message
    _error(client.get(f"{_prefix(client)}/namespaces/ns/views/v"), 404, "NoSuchViewException")


def test_create_rejects_invalid_bodies(client: TestClient) -> None:
    p = _prefix(client)
    _ns(client, "ns")
    no_version = client.post(f"{p}/namespaces/ns/views", json={"name": "v", "schema": SCHEMA})
    assert "view-version" in _error(no_version, 400, "BadRequestException")
    _error(client.post(f"{p}/namespaces/ns/views", content=b"{not json"), 400, "BadRequestException")
    bad_repr = _version("SELECT 1")
    bad_repr["representations"] = [{"type": "substrait", "plan": "..."}]
    _error(_create(client, "v", **{"view-version": bad_repr}), 400, "BadRequestException")
    two_spark = _version("SELECT 1")
    two_spark["representations"].append({"type": "sql", "sql": "SELECT 2", "dialect": "SPARK"})
    assert "dialect" in _error(_create(client, "v", **{"view-version": two_spark}), 400, "BadRequestException")
    _error(_create(client, "bad/name"), 400, "BadRequestException")
    assert client.get(f"{p}/namespaces/ns/views").json() == {"identifiers": []}


def test_missing_namespace(client: TestClient) -> None:
    p = _prefix(client)
    _error(_create(client, "v", ns="nope"), 404, "NoSuchNamespaceException")
    _error(client.get(f"{p}/namespaces/nope/views"), 404, "NoSuchNamespaceException")
    # A view in a missing namespace is simply a missing view (Spark probes `db.tbl.snapshots` this way).
    _error(client.get(f"{p}/namespaces/nope/views/v"), 404, "NoSuchViewException")
    _error(client.get(f"{p}/namespaces/db%1Ftbl/views/snapshots"), 404, "NoSuchViewException")
    assert client.head(f"{p}/namespaces/nope/views/v").status_code == 404
    _error(client.delete(f"{p}/namespaces/nope/views/v"), 404, "NoSuchViewException")
    replace = client.post(f"{p}/namespaces/nope/views/v", json={"updates": []})
    _error(replace, 404, "NoSuchViewException")


# --- list ---------------------------------------------------------------------------------------


def test_list_views_is_paginated_and_excludes_tables(client: TestClient) -> None:
    p = _prefix(client)
    _ns(client, "ns")
    for name in ("v3", "v1", "v2"):
        assert _create(client, name).status_code == 200
    _create_table(client, "t")

    first = client.get(f"{p}/namespaces/ns/views", params={"pageSize": 2}).json()
    assert [i["name"] for i in first["identifiers"]] == ["v1", "v2"]
    assert first["identifiers"][0]["namespace"] == ["ns"]
    second = client.get(f"{p}/namespaces/ns/views", params={"pageSize": 2, "pageToken": first["next-page-token"]})
    assert second.json() == {"identifiers": [{"namespace": ["ns"], "name": "v3"}]}
    everything = client.get(f"{p}/namespaces/ns/views").json()
    assert [i["name"] for i in everything["identifiers"]] == ["v1", "v2", "v3"]
    assert "next-page-token" not in everything
    tables = client.get(f"{p}/namespaces/ns/tables").json()
    assert [i["name"] for i in tables["identifiers"]] == ["t"]
    _error(client.get(f"{p}/namespaces/ns/views", params={"pageSize": 0}), 400, "BadRequestException")


# --- tables and views share one name space ------------------------------------------------------


def test_tables_and_views_share_names(client: TestClient) -> None:
    p = _prefix(client)
    _ns(client, "ns")
    _create_table(client, "t")
    assert _create(client, "v").status_code == 200

    assert "table" in _error(_create(client, "t"), 409, "AlreadyExistsException")
    assert "view" in _error(_create(client, "v"), 409, "AlreadyExistsException")
    table_over_view = client.post(f"{p}/namespaces/ns/tables", json={"name": "v", "schema": SCHEMA})
    _error(table_over_view, 409, "AlreadyExistsException")

    _error(client.get(f"{p}/namespaces/ns/views/t"), 404, "NoSuchViewException")
    assert client.head(f"{p}/namespaces/ns/views/t").status_code == 404
    _error(client.delete(f"{p}/namespaces/ns/views/t"), 404, "NoSuchViewException")
    _error(_replace(client, "t", [{"action": "set-properties", "updates": {"a": "b"}}]), 404, "NoSuchViewException")
    _error(client.get(f"{p}/namespaces/ns/tables/v"), 404, "NoSuchTableException")
    assert client.head(f"{p}/namespaces/ns/tables/v").status_code == 404
    _error(client.delete(f"{p}/namespaces/ns/tables/v"), 404, "NoSuchTableException")

    rename_onto_table = {
        "source": {"namespace": ["ns"], "name": "v"},
        "destination": {"namespace": ["ns"], "name": "t"},
    }
    _error(client.post(f"{p}/views/rename", json=rename_onto_table), 409, "AlreadyExistsException")
    rename_table_as_view = {
        "source": {"namespace": ["ns"], "name": "t"},
        "destination": {"namespace": ["ns"], "name": "x"},
    }
    _error(client.post(f"{p}/views/rename", json=rename_table_as_view), 404, "NoSuchViewException")

    # Both survive all of that.
    assert client.get(f"{p}/namespaces/ns/tables/t").status_code == 200
    assert client.get(f"{p}/namespaces/ns/views/v").status_code == 200
    _error(client.delete(f"{p}/namespaces/ns"), 409, "NamespaceNotEmptyException")


# --- replace ------------------------------------------------------------------------------------


def test_replace_adds_a_version_and_appends_the_log(client: TestClient) -> None:
    p = _prefix(client)
    _ns(client, "ns")
    created = _create(client, "v").json()
    uuid = created["metadata"]["view-uuid"]

    replaced = _replace(client, "v", _new_version("SELECT id, label FROM ns.t", OTHER_SCHEMA), uuid)
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    match = METADATA_FILE.search(body["metadata-location"])
    assert match is not None and match.group(1) == "00001"
    metadata = body["metadata"]
    assert metadata["view-uuid"] == uuid
    assert [s["schema-id"] for s in metadata["schemas"]] == [0, 1]  # the client's id 0 was taken
    assert metadata["current-version-id"] == 2
    assert [(v["version-id"], v["schema-id"]) for v in metadata["versions"]] == [(1, 0), (2, 1)]
    assert [e["version-id"] for e in metadata["version-log"]] == [1, 2]
    assert client.get(f"{p}/namespaces/ns/views/v").json() == body
    # The previous metadata file is untouched.
    assert _services(client).storage.exists(created["metadata-location"])

    # The same schema again is reused, not duplicated; a new query makes version 3.
    again = _replace(client, "v", _new_version("SELECT label FROM ns.t", OTHER_SCHEMA), uuid).json()["metadata"]
    assert [s["schema-id"] for s in again["schemas"]] == [0, 1]
    assert [(v["version-id"], v["schema-id"]) for v in again["versions"]][-1] == (3, 1)

    # Going back to version 1 re-uses it and logs the switch.
    back = _replace(client, "v", [{"action": "set-current-view-version", "view-version-id": 1}], uuid)
    back_metadata = back.json()["metadata"]
    assert back_metadata["current-version-id"] == 1
    assert len(back_metadata["versions"]) == 3
    assert [e["version-id"] for e in back_metadata["version-log"]] == [1, 2, 3, 1]
    assert METADATA_FILE.search(back.json()["metadata-location"]).group(1) == "00003"  # type: ignore[union-attr]


def test_replace_with_an_identical_version_reuses_it(client: TestClient) -> None:
    _ns(client, "ns")
    created = _create(client, "v").json()
    same = _replace(client, "v", _new_version("SELECT id FROM ns.t"))
    assert same.status_code == 200, same.text
    assert same.json()["metadata"]["versions"] == created["metadata"]["versions"]
    assert same.json()["metadata-location"] == created["metadata-location"]  # nothing changed, nothing written


def test_replace_properties_and_location(client: TestClient) -> None:
    _ns(client, "ns")
    uuid = _create(client, "v").json()["metadata"]["view-uuid"]
    warehouse = _services(client).settings.resolved_warehouse.rstrip("/")
    updates = [
        {"action": "assign-uuid", "uuid": uuid.upper()},
        {"action": "upgrade-format-version", "format-version": 1},
        {"action": "set-properties", "updates": {"owner": "ana", "n": 3}},
        {"action": "remove-properties", "removals": ["comment", "never-there"]},
        {"action": "set-location", "location": f"{warehouse}/moved"},
    ]
    response = _replace(client, "v", updates, uuid)
    assert response.status_code == 200, response.text
    metadata = response.json()["metadata"]
    assert metadata["properties"] == {"owner": "ana", "n": "3"}
    assert metadata["location"] == f"{warehouse}/moved"
    assert metadata["view-uuid"] == uuid
    assert response.json()["metadata-location"].startswith(f"{warehouse}/moved/metadata/00001-")
    assert [e["version-id"] for e in metadata["version-log"]] == [1]  # the current version did not change


def test_replace_with_a_stale_uuid_is_a_commit_failure(client: TestClient) -> None:
    p = _prefix(client)
    _ns(client, "ns")
    before = _create(client, "v").json()
    stale = "00000000-0000-0000-0000-000000000000"
    response = _replace(client, "v", _new_version("SELECT 2"), stale)
    assert "UUID" in _error(response, 409, "CommitFailedException")
    assert client.get(f"{p}/namespaces/ns/views/v").json() == before


def test_replace_rejects_invalid_updates(client: TestClient) -> None:
    p = _prefix(client)
    _ns(client, "ns")
    before = _create(client, "v").json()
    uuid = before["metadata"]["view-uuid"]
    bad: list[list[dict[str, Any]]] = [
        [{"action": "add-view-version", "view-version": _version("SELECT 2", schema_id=9)}],
        [{"action": "add-view-version", "view-version": _version("SELECT 2", schema_id=-1)}],
        [{"action": "set-current-view-version", "view-version-id": 42}],
        [{"action": "set-current-view-version", "view-version-id": -1}],
        [{"action": "upgrade-format-version", "format-version": 2}],
        [{"action": "assign-uuid", "uuid": "11111111-1111-1111-1111-111111111111"}],
        [{"action": "set-location", "location": "file:///outside/of/it"}],
        [{"action": "add-snapshot", "snapshot": {"snapshot-id": 1, "timestamp-ms": 1, "manifest-list": "x"}}],
        [{"action": "set-properties", "updates": {"version.history.num-entries": "0"}}],
        _new_version("SELECT 2", dialect="trino"),  # would drop the spark dialect
    ]
    for updates in bad:
        _error(_replace(client, "v", updates, uuid), 400, "BadRequestException")
    _error(client.post(f"{p}/namespaces/ns/views/v", json={"requirements": []}), 400, "BadRequestException")
    mismatch = {"identifier": {"namespace": ["ns"], "name": "other"}, "updates": []}
    _error(client.post(f"{p}/namespaces/ns/views/v", json=mismatch), 400, "BadRequestException")
    assert client.get(f"{p}/namespaces/ns/views/v").json() == before


def test_dropping_a_dialect_needs_the_property(client: TestClient) -> None:
    _ns(client, "ns")
    uuid = _create(client, "v").json()["metadata"]["view-uuid"]
    updates = [
        {"action": "set-properties", "updates": {"replace.drop-dialect.allowed": "true"}},
        *_new_version("SELECT 2", dialect="trino"),
    ]
    response = _replace(client, "v", updates, uuid)
    assert response.status_code == 200, response.text
    current = response.json()["metadata"]["versions"][-1]
    assert current["representations"][0]["dialect"] == "trino"


def test_old_versions_expire_past_the_history_size(client: TestClient) -> None:
    _ns(client, "ns")
    created = _create(client, "v", properties={"version.history.num-entries": "2"}).json()
    uuid = created["metadata"]["view-uuid"]
    for i in range(2, 5):
        assert _replace(client, "v", _new_version(f"SELECT {i}"), uuid).status_code == 200
    metadata = client.get(f"{_prefix(client)}/namespaces/ns/views/v").json()["metadata"]
    assert [v["version-id"] for v in metadata["versions"]] == [3, 4]
    assert metadata["current-version-id"] == 4
    assert [e["version-id"] for e in metadata["version-log"]] == [3, 4]


def test_concurrent_replaces_all_land(client: TestClient) -> None:
    """Racing commits retry on the new base (compare-and-swap on the pointer); none is lost."""
    _ns(client, "ns")
    uuid = _create(client, "v").json()["metadata"]["view-uuid"]
    services = _services(client)
    warehouse = services.store.get_warehouse(services.settings.warehouse_name)
    assert isinstance(warehouse, Warehouse)
    failures: list[BaseException] = []
    writers = 4

    def commit(i: int) -> None:
        version = AddViewVersionUpdate.model_validate({"view-version": _version(f"SELECT {i} AS writer")})
        try:
            services.views.replace(
                warehouse,
                ("ns",),
                "v",
                [AssertViewUUID(uuid=uuid)],
                [version, SetCurrentViewVersionUpdate(view_version_id=-1)],
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    body = client.get(f"{_prefix(client)}/namespaces/ns/views/v").json()
    metadata = body["metadata"]
    sqls = {v["representations"][0]["sql"] for v in metadata["versions"]}
    assert sqls == {"SELECT id FROM ns.t", *(f"SELECT {i} AS writer" for i in range(writers))}
    assert sorted(v["version-id"] for v in metadata["versions"]) == list(range(1, writers + 2))
    assert len(metadata["version-log"]) == writers + 1
    assert METADATA_FILE.search(body["metadata-location"]).group(1) == f"{writers:05d}"  # type: ignore[union-attr]


# --- drop, exists, rename, register -------------------------------------------------------------


def test_drop_and_exists(client: TestClient) -> None:
    p = _prefix(client)
    _ns(client, "ns")
    _create(client, "v")
    dropped = client.delete(f"{p}/namespaces/ns/views/v")
    assert dropped.status_code == 204 and dropped.content == b""
    assert client.head(f"{p}/namespaces/ns/views/v").status_code == 404
    _error(client.get(f"{p}/namespaces/ns/views/v"), 404, "NoSuchViewException")
    _error(client.delete(f"{p}/namespaces/ns/views/v"), 404, "NoSuchViewException")
    _error(_replace(client, "v", _new_version("SELECT 2")), 404, "NoSuchViewException")
    assert client.get(f"{p}/namespaces/ns/views").json() == {"identifiers": []}
    assert client.delete(f"{p}/namespaces/ns").status_code == 204


def test_rename_within_and_across_namespaces(client: TestClient) -> None:
    p = _prefix(client)
    _ns(client, "ns")
    _ns(client, "other")
    created = _create(client, "v").json()

    def rename(src: tuple[str, str], dst: tuple[str, str]) -> httpx.Response:
        body = {
            "source": {"namespace": [src[0]], "name": src[1]},
            "destination": {"namespace": [dst[0]], "name": dst[1]},
        }
        return client.post(f"{p}/views/rename", json=body)

    assert rename(("ns", "v"), ("ns", "w")).status_code == 204
    _error(client.get(f"{p}/namespaces/ns/views/v"), 404, "NoSuchViewException")
    assert client.get(f"{p}/namespaces/ns/views/w").json()["metadata"] == created["metadata"]

    assert rename(("ns", "w"), ("other", "w")).status_code == 204
    assert client.get(f"{p}/namespaces/other/views").json()["identifiers"] == [{"namespace": ["other"], "name": "w"}]
    assert client.get(f"{p}/namespaces/ns/views").json()["identifiers"] == []

    _error(rename(("ns", "missing"), ("ns", "x")), 404, "NoSuchViewException")
    _error(rename(("other", "w"), ("nowhere", "w")), 404, "NoSuchNamespaceException")
    _create(client, "taken", ns="other")
    _error(rename(("other", "w"), ("other", "taken")), 409, "AlreadyExistsException")
    assert client.head(f"{p}/namespaces/other/views/w").status_code == 204


def test_register_view_from_an_existing_metadata_file(client: TestClient) -> None:
    p = _prefix(client)
    _ns(client, "ns")
    _create_table(client, "t")
    created = _create(client, "v").json()
    location = created["metadata-location"]
    assert client.delete(f"{p}/namespaces/ns/views/v").status_code == 204

    registered = client.post(f"{p}/namespaces/ns/register-view", json={"name": "back", "metadata-location": location})
    assert registered.status_code == 200, registered.text
    assert registered.json() == {**created, "metadata-location": location}
    assert client.get(f"{p}/namespaces/ns/views/back").json()["metadata"] == created["metadata"]

    # A replace after registering continues the file numbering.
    uuid = created["metadata"]["view-uuid"]
    replaced = _replace(client, "back", _new_version("SELECT 2"), uuid).json()
    assert METADATA_FILE.search(replaced["metadata-location"]).group(1) == "00001"  # type: ignore[union-attr]

    def register(name: str, metadata_location: str) -> httpx.Response:
        return client.post(
            f"{p}/namespaces/ns/register-view", json={"name": name, "metadata-location": metadata_location}
        )

    _error(register("back", location), 409, "AlreadyExistsException")
    _error(register("t", location), 409, "AlreadyExistsException")
    _error(register("x", "file:///outside/00000-x.metadata.json"), 400, "BadRequestException")
    missing = location.rsplit("/", 1)[0] + "/99999-missing.metadata.json"
    _error(register("x", missing), 400, "BadRequestException")
    table_file = client.get(f"{p}/namespaces/ns/tables/t").json()["metadata-location"]
    assert "view metadata" in _error(register("x", table_file), 400, "BadRequestException")
    unparseable = json.loads(json.dumps(created["metadata"]))  # a type PyIceberg's own parser refuses
    unparseable["schemas"][0]["fields"][0]["type"] = "fixed[x]"
    bad_file = location.rsplit("/", 1)[0] + "/00009-bad.metadata.json"
    client.app.state.services.storage.write_new(bad_file, json.dumps(unparseable).encode())  # type: ignore[attr-defined]
    assert "view metadata" in _error(register("x", bad_file), 400, "BadRequestException")
    nowhere = client.post(f"{p}/namespaces/nope/register-view", json={"name": "x", "metadata-location": location})
    _error(nowhere, 404, "NoSuchNamespaceException")
    assert [i["name"] for i in client.get(f"{p}/namespaces/ns/views").json()["identifiers"]] == ["back"]


def test_view_routes_are_advertised_in_config(client: TestClient) -> None:
    endpoints = set(client.get("/v1/config").json()["endpoints"])
    assert {
        "GET /v1/{prefix}/namespaces/{namespace}/views",
        "POST /v1/{prefix}/namespaces/{namespace}/views",
        "GET /v1/{prefix}/namespaces/{namespace}/views/{view}",
        "HEAD /v1/{prefix}/namespaces/{namespace}/views/{view}",
        "POST /v1/{prefix}/namespaces/{namespace}/views/{view}",
        "DELETE /v1/{prefix}/namespaces/{namespace}/views/{view}",
        "POST /v1/{prefix}/views/rename",
        "POST /v1/{prefix}/namespaces/{namespace}/register-view",
    } <= endpoints
