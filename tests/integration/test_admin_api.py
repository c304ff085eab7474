"""The admin API contract (/api/v1/admin), delegation of grant management, and how grants follow
tables through rename and drop; filtered listings keep pagination right."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.integration.rbac_helpers import ADMIN_API, grant, make_caller, ok

pytestmark = pytest.mark.parametrize("backend", ["sqlite-file", "postgres-file"], indirect=True)

P = "/v1/lake"
SCHEMA = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}


@pytest.fixture
def anon(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status
    message: str = error["message"]
    return message


def _namespace(client: TestClient, *levels: str) -> None:
    ok(client.post(f"{P}/namespaces", json={"namespace": list(levels)}), 200)


def _table(client: TestClient, namespace: str, name: str) -> None:
    ok(client.post(f"{P}/namespaces/{namespace}/tables", json={"name": name, "schema": SCHEMA}), 200)


def test_principals_and_api_keys(client: TestClient, anon: TestClient) -> None:
    created = ok(client.post(f"{ADMIN_API}/principals", json={"name": "ana", "type": "user"}), 201)
    assert set(created) == {"name", "type", "client_id", "client_secret"}
    assert created["name"] == "ana" and created["type"] == "user" and len(created["client_secret"]) >= 40
    assert ok(client.post(f"{ADMIN_API}/principals", json={"name": "etl", "type": "service"}), 201)["type"] == "service"
    _error(client.post(f"{ADMIN_API}/principals", json={"name": "ana", "type": "user"}), 409)
    assert client.post(f"{ADMIN_API}/principals", json={"name": "x", "type": "robot"}).status_code == 422
    _error(client.post(f"{ADMIN_API}/principals", json={"name": "a/b", "type": "user"}), 400)

    listed = ok(client.get(f"{ADMIN_API}/principals"), 200)["principals"]
    by_name = {p["name"]: p for p in listed}
    assert by_name["ana"] == {**by_name["ana"], "type": "user", "enabled": True, "roles": []}
    assert "client_secret" not in str(listed) and created["client_secret"] not in str(listed)
    assert ok(client.get(f"{ADMIN_API}/principals/etl"), 200)["type"] == "service"
    _error(client.get(f"{ADMIN_API}/principals/nobody"), 404)

    key = ok(client.post(f"{ADMIN_API}/principals/ana/api-keys"), 201)
    assert key["api_key"].startswith(f"dlk_{key['key_id']}_") and key["expires_at"] is None
    second = ok(client.post(f"{ADMIN_API}/principals/ana/api-keys", json={"expires_in_seconds": 3600}), 201)
    assert second["expires_at"] is not None
    keys = ok(client.get(f"{ADMIN_API}/principals/ana/api-keys"), 200)["api_keys"]
    assert [k["key_id"] for k in keys] == [key["key_id"], second["key_id"]]
    assert all(set(k) == {"key_id", "prefix", "created_at", "expires_at", "revoked_at"} for k in keys)
    assert key["api_key"] not in str(keys) and second["api_key"] not in str(keys)
    _error(client.post(f"{ADMIN_API}/principals/nobody/api-keys"), 404)
    assert client.post(f"{ADMIN_API}/principals/ana/api-keys", json={"expires_in_seconds": 0}).status_code == 422
    # found by fuzzing: a lifetime past any representable date was a 500 (OverflowError)
    too_long = client.post(f"{ADMIN_API}/principals/ana/api-keys", json={"expires_in_seconds": 2**60})
    _error(too_long, 422)
    assert len(ok(client.get(f"{ADMIN_API}/principals/ana/api-keys"), 200)["api_keys"]) == 2  # none was made

    assert anon.get("/v1/config", headers={"X-API-Key": key["api_key"]}).status_code == 200
    revoked = client.delete(f"{ADMIN_API}/principals/ana/api-keys/{key['key_id']}")
    assert revoked.status_code == 204 and revoked.content == b""
    assert anon.get("/v1/config", headers={"X-API-Key": key["api_key"]}).status_code == 401
    _error(client.delete(f"{ADMIN_API}/principals/ana/api-keys/{key['key_id']}"), 404)
    _error(client.delete(f"{ADMIN_API}/principals/etl/api-keys/{second['key_id']}"), 404)  # not etl's key

    disabled = ok(client.patch(f"{ADMIN_API}/principals/ana", json={"enabled": False}), 200)
    assert disabled["enabled"] is False
    assert anon.get("/v1/config", headers={"X-API-Key": second["api_key"]}).status_code == 401
    assert ok(client.patch(f"{ADMIN_API}/principals/ana", json={"enabled": True}), 200)["enabled"] is True
    assert anon.get("/v1/config", headers={"X-API-Key": second["api_key"]}).status_code == 200
    _error(client.patch(f"{ADMIN_API}/principals/test-admin", json={"enabled": False}), 400)  # not yourself
    _error(client.patch(f"{ADMIN_API}/principals/nobody", json={"enabled": False}), 404)
    assert client.patch(f"{ADMIN_API}/principals/ana", json={"enabled": "maybe"}).status_code == 422


def test_roles_and_membership(client: TestClient) -> None:
    ok(client.post(f"{ADMIN_API}/principals", json={"name": "ana", "type": "user"}), 201)
    role = ok(client.post(f"{ADMIN_API}/roles", json={"name": "analysts"}), 201)
    assert role["name"] == "analysts" and role["members"] == []
    _error(client.post(f"{ADMIN_API}/roles", json={"name": "analysts"}), 409)
    assert client.put(f"{ADMIN_API}/roles/analysts/principals/ana").status_code == 204
    assert client.put(f"{ADMIN_API}/roles/analysts/principals/ana").status_code == 204  # idempotent
    roles = {r["name"]: r for r in ok(client.get(f"{ADMIN_API}/roles"), 200)["roles"]}
    assert roles["analysts"]["members"] == ["ana"]
    assert "analysts" in ok(client.get(f"{ADMIN_API}/principals/ana"), 200)["roles"]
    _error(client.put(f"{ADMIN_API}/roles/nope/principals/ana"), 404)
    _error(client.put(f"{ADMIN_API}/roles/analysts/principals/nobody"), 404)
    assert client.delete(f"{ADMIN_API}/roles/analysts/principals/ana").status_code == 204
    _error(client.delete(f"{ADMIN_API}/roles/analysts/principals/ana"), 404)
    roles = {r["name"]: r for r in ok(client.get(f"{ADMIN_API}/roles"), 200)["roles"]}
    assert roles["analysts"]["members"] == []


def test_grants_on_every_securable_type(client: TestClient) -> None:
    _namespace(client, "sales")
    _namespace(client, "sales", "eu")
    _table(client, "sales%1Feu", "orders")
    view = {
        "name": "recent",
        "schema": SCHEMA,
        "view-version": {
            "version-id": 1,
            "schema-id": 0,
            "timestamp-ms": 1700000000000,
            "summary": {},
            "representations": [{"type": "sql", "sql": "SELECT 1", "dialect": "spark"}],
            "default-namespace": [],
        },
    }
    ok(client.post(f"{P}/namespaces/sales/views", json=view), 200)
    ok(client.post(f"{ADMIN_API}/roles", json={"name": "r"}), 201)
    bodies = [
        {"privilege": "CREATE", "securable": {"type": "catalog"}},
        {"privilege": "ALTER", "securable": {"type": "namespace", "name": "sales.eu"}},
        {"privilege": "SELECT", "securable": {"type": "table", "name": "sales.eu.orders"}},
        {"privilege": "insert", "securable": {"type": "table", "name": ["sales", "eu", "orders"]}},
        {"privilege": "SELECT", "securable": {"type": "view", "name": "sales.recent"}},
    ]
    for body in bodies:
        created = ok(client.post(f"{ADMIN_API}/roles/r/grants", json=body), 201)
        assert created["role"] == "r" and created["warehouse"] == "lake"
    listed = ok(client.get(f"{ADMIN_API}/roles/r/grants"), 200)
    assert listed["role"] == "r"
    assert sorted((g["privilege"], g["securable"]["type"], g["securable"]["name"]) for g in listed["grants"]) == [
        ("ALTER", "namespace", "sales.eu"),
        ("CREATE", "catalog", "lake"),
        ("INSERT", "table", "sales.eu.orders"),
        ("SELECT", "table", "sales.eu.orders"),
        ("SELECT", "view", "sales.recent"),
    ]
    for body, status in [
        ({"privilege": "READ", "securable": {"type": "table", "name": "sales.eu.orders"}}, 400),
        ({"privilege": "ADMIN", "securable": {"type": "namespace", "name": "sales"}}, 400),
        ({"privilege": "CREATE", "securable": {"type": "table", "name": "sales.eu.orders"}}, 400),
        ({"privilege": "SELECT", "securable": {"type": "table", "name": "orders"}}, 400),
        ({"privilege": "SELECT", "securable": {"type": "table", "name": "sales.eu.missing"}}, 404),
        ({"privilege": "SELECT", "securable": {"type": "view", "name": "sales.eu.orders"}}, 404),  # a table
        ({"privilege": "SELECT", "securable": {"type": "namespace", "name": "nowhere"}}, 404),
        ({"privilege": "SELECT", "securable": {"type": "catalog"}, "warehouse": "other"}, 404),
    ]:
        _error(client.post(f"{ADMIN_API}/roles/r/grants", json=body), status)
    assert client.post(f"{ADMIN_API}/roles/r/grants", json={"privilege": "SELECT"}).status_code == 422
    _error(client.post(f"{ADMIN_API}/roles/nope/grants", json=bodies[1]), 404)
    deleted = client.request("DELETE", f"{ADMIN_API}/roles/r/grants", json=bodies[2])
    assert deleted.status_code == 204 and deleted.content == b""
    _error(client.request("DELETE", f"{ADMIN_API}/roles/r/grants", json=bodies[2]), 404)
    remaining = ok(client.get(f"{ADMIN_API}/roles/r/grants"), 200)["grants"]
    assert ("SELECT", "table") not in {(g["privilege"], g["securable"]["type"]) for g in remaining}


def test_non_admins_cannot_administer(client: TestClient, anon: TestClient) -> None:
    caller = make_caller(client, [("SELECT", "catalog", ""), ("CREATE", "catalog", "")])
    for method, url, body in [
        ("GET", f"{ADMIN_API}/principals", None),
        ("POST", f"{ADMIN_API}/principals", {"name": "x", "type": "user"}),
        ("POST", f"{ADMIN_API}/roles", {"name": "x"}),
        ("PUT", f"{ADMIN_API}/roles/role-{caller.name}/principals/{caller.name}", None),
        ("GET", f"{ADMIN_API}/roles/role-{caller.name}/grants", None),
        ("POST", f"{ADMIN_API}/principals/{caller.name}/api-keys", None),  # not even for itself
        ("GET", f"{ADMIN_API}/audit", None),
    ]:
        response = anon.request(method, url, json=body, headers=caller.headers)
        assert response.status_code == 403, (method, url, response.text)


def test_manage_grants_is_delegated_per_securable(client: TestClient, anon: TestClient) -> None:
    _namespace(client, "sales")
    _namespace(client, "hr")
    _table(client, "sales", "orders")
    _table(client, "hr", "salaries")
    steward = make_caller(client, [("MANAGE_GRANTS", "namespace", "sales")])
    reader = make_caller(client)
    role = f"role-{reader.name}"
    h = steward.headers
    on_orders = {"privilege": "SELECT", "securable": {"type": "table", "name": "sales.orders"}}
    on_salaries = {"privilege": "SELECT", "securable": {"type": "table", "name": "hr.salaries"}}
    assert anon.get(f"{P}/namespaces/sales/tables/orders", headers=reader.headers).status_code == 403
    ok(anon.post(f"{ADMIN_API}/roles/{role}/grants", json=on_orders, headers=h), 201)
    assert anon.get(f"{P}/namespaces/sales/tables/orders", headers=reader.headers).status_code == 200
    _error(anon.post(f"{ADMIN_API}/roles/{role}/grants", json=on_salaries, headers=h), 403)
    _error(
        anon.post(f"{ADMIN_API}/roles/{role}/grants", json={**on_orders, "securable": {"type": "catalog"}}, headers=h),
        403,
    )
    _error(anon.post(f"{ADMIN_API}/roles", json={"name": "mine"}, headers=h), 403)
    grant(client, role, "SELECT", "table", "hr.salaries")
    visible = ok(anon.get(f"{ADMIN_API}/roles/{role}/grants", headers=h), 200)["grants"]
    assert [g["securable"]["name"] for g in visible] == ["sales.orders"]  # only what the steward manages
    everything = ok(client.get(f"{ADMIN_API}/roles/{role}/grants"), 200)["grants"]
    assert sorted(g["securable"]["name"] for g in everything) == ["hr.salaries", "sales.orders"]
    assert anon.request("DELETE", f"{ADMIN_API}/roles/{role}/grants", json=on_orders, headers=h).status_code == 204
    assert anon.get(f"{P}/namespaces/sales/tables/orders", headers=reader.headers).status_code == 403  # next request


def test_grants_follow_a_renamed_table_and_die_with_a_dropped_one(client: TestClient, anon: TestClient) -> None:
    _namespace(client, "a")
    _namespace(client, "b")
    _table(client, "a", "t")
    caller = make_caller(client, [("SELECT", "table", "a.t")])
    h = caller.headers
    assert anon.get(f"{P}/namespaces/a/tables/t", headers=h).status_code == 200
    rename = {"source": {"namespace": ["a"], "name": "t"}, "destination": {"namespace": ["b"], "name": "u"}}
    assert client.post(f"{P}/tables/rename", json=rename).status_code == 204
    assert anon.get(f"{P}/namespaces/b/tables/u", headers=h).status_code == 200
    assert anon.get(f"{P}/namespaces/a/tables/t", headers=h).status_code == 403
    names = [
        g["securable"]["name"] for g in ok(client.get(f"{ADMIN_API}/roles/role-{caller.name}/grants"), 200)["grants"]
    ]
    assert names == ["b.u"]
    assert client.delete(f"{P}/namespaces/b/tables/u").status_code == 204
    assert ok(client.get(f"{ADMIN_API}/roles/role-{caller.name}/grants"), 200)["grants"] == []
    _table(client, "b", "u")  # a new table of the same name starts without the old grants
    assert anon.get(f"{P}/namespaces/b/tables/u", headers=h).status_code == 403
    # a caller may not rename into a namespace it cannot create in
    mover = make_caller(client, [("DROP", "table", "b.u")])
    back = {"source": {"namespace": ["b"], "name": "u"}, "destination": {"namespace": ["a"], "name": "t"}}
    assert anon.post(f"{P}/tables/rename", json=back, headers=mover.headers).status_code == 403
    grant(client, f"role-{mover.name}", "CREATE", "namespace", "a")
    assert anon.post(f"{P}/tables/rename", json=back, headers=mover.headers).status_code == 204


def test_filtered_listings_paginate_correctly(client: TestClient, anon: TestClient) -> None:
    _namespace(client, "big")
    names = [f"t{i:02d}" for i in range(25)]
    for name in names:
        _table(client, "big", name)
    visible = names[1::4]  # t01 t05 ... t21: 6 tables
    caller = make_caller(client, [("SELECT", "table", f"big.{name}") for name in visible])
    for name in ("n1", "n2", "n3", "n4", "n5"):
        _namespace(client, "big", name)
    grant(client, f"role-{caller.name}", "SELECT", "namespace", "big.n2")
    grant(client, f"role-{caller.name}", "CREATE", "namespace", "big.n4")

    def pages(url: str, key: str, **params: Any) -> list[list[Any]]:
        out, token = [], None
        while True:
            query = {"pageSize": 4, **params, **({"pageToken": token} if token else {})}
            body = ok(anon.get(url, params=query, headers=caller.headers), 200)
            out.append(body[key])
            token = body.get("next-page-token")
            if not token:
                return out

    table_pages = pages(f"{P}/namespaces/big/tables", "identifiers")
    assert [[i["name"] for i in page] for page in table_pages] == [visible[:4], visible[4:]]
    ns_pages = pages(f"{P}/namespaces", "namespaces", parent="big")
    assert ns_pages == [[["big", "n2"], ["big", "n4"]]]
    assert ok(anon.get(f"{P}/namespaces", headers=caller.headers), 200)["namespaces"] == [["big"]]
    everything = [i["name"] for i in ok(client.get(f"{P}/namespaces/big/tables"), 200)["identifiers"]]
    assert everything == names
