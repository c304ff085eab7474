"""GET /v1/config: defaults, overrides.prefix, the advertised endpoints, warehouse resolution."""

from __future__ import annotations

import re

import fastapi.routing
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.conftest import Backend
from tests.integration.helpers import assert_error, create_namespace, create_table

# The spec's default endpoint set; a catalog advertising `endpoints` must still serve all of these.
SPEC_DEFAULT_ENDPOINTS = {
    "GET /v1/{prefix}/namespaces",
    "POST /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}",
    "DELETE /v1/{prefix}/namespaces/{namespace}",
    "POST /v1/{prefix}/namespaces/{namespace}/properties",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "POST /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/register",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
    "POST /v1/{prefix}/tables/rename",
    "POST /v1/{prefix}/transactions/commit",
}


def served_under_prefix(client: TestClient) -> set[str]:
    """The app's API routes under /v1/{prefix}; newer FastAPI keeps included routers nested in app.routes."""
    routes = list(client.app.routes)  # type: ignore[attr-defined]
    if hasattr(fastapi.routing, "iter_route_contexts"):
        routes = list(fastapi.routing.iter_route_contexts(routes))
    served = set()
    for route in routes:
        if isinstance(getattr(route, "original_route", route), APIRoute) and route.path.startswith("/v1/{prefix}/"):
            served.update(f"{method} {route.path}" for method in route.methods)
    assert len(served) >= len(SPEC_DEFAULT_ENDPOINTS), served
    return served


def test_config_defaults_and_prefix(client: TestClient, backend: Backend) -> None:
    response = client.get("/v1/config")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["overrides"] == {"prefix": backend.settings.warehouse_name}
    assert isinstance(body["defaults"], dict)
    assert all(isinstance(v, str) for v in body["defaults"].values())
    if backend.s3 is not None:
        assert body["defaults"]["s3.endpoint"] == backend.s3.endpoint
        assert body["defaults"]["s3.path-style-access"] == "true"
        # the catalog's own credentials are never handed out
        assert not any("secret" in key or "access-key" in key for key in body["defaults"])
    else:
        assert body["defaults"] == {}
    assert re.fullmatch(r"PT\d+S", body["idempotency-key-lifetime"])
    assert body["idempotency-key-lifetime"] == f"PT{backend.settings.idempotency_lifetime_seconds}S"


def test_config_by_warehouse_name_and_location(client: TestClient, backend: Backend) -> None:
    by_name = client.get("/v1/config", params={"warehouse": backend.settings.warehouse_name})
    assert by_name.status_code == 200, by_name.text
    by_location = client.get("/v1/config", params={"warehouse": backend.warehouse})
    assert by_location.status_code == 200, by_location.text
    with_slash = client.get("/v1/config", params={"warehouse": backend.warehouse + "/"})
    assert with_slash.status_code == 200, with_slash.text
    assert by_name.json() == by_location.json() == with_slash.json() == client.get("/v1/config").json()


def test_config_unknown_warehouse_is_404(client: TestClient, backend: Backend) -> None:
    # The spec: 404 NoSuchWarehouseException for a `warehouse` that is not found.
    assert_error(client.get("/v1/config", params={"warehouse": "no-such-warehouse"}), 404, "NoSuchWarehouseException")
    assert_error(client.get("/v1/config", params={"warehouse": backend.warehouse + "-other"}), 404)
    assert_error(client.get("/v1/config", params={"warehouse": "bad\x00name"}), 400)


def test_endpoints_are_exactly_the_served_routes(client: TestClient) -> None:
    endpoints = client.get("/v1/config").json()["endpoints"]
    assert len(endpoints) == len(set(endpoints)), "duplicate endpoints"
    assert set(endpoints) == served_under_prefix(client)
    assert SPEC_DEFAULT_ENDPOINTS <= set(endpoints)
    assert "HEAD /v1/{prefix}/namespaces/{namespace}" in endpoints
    assert "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}" in endpoints
    for endpoint in endpoints:
        method, path = endpoint.split(" ", 1)
        assert method in {"GET", "HEAD", "POST", "PUT", "DELETE"}, endpoint
        assert path.startswith("/v1/{prefix}/"), endpoint


def test_every_advertised_endpoint_is_routed(client: TestClient) -> None:
    """Each advertised endpoint reaches a handler: no route-level 404 or 405 for it."""
    create_namespace(client, "ns")
    create_table(client, "ns", "t")
    values = {
        "{prefix}": client.prefix,  # type: ignore[attr-defined]
        "{namespace}": "ns",
        "{table}": "t",
        "{view}": "v",
    }
    for endpoint in client.get("/v1/config").json()["endpoints"]:
        method, path = endpoint.split(" ", 1)
        url = path.replace("/v1/{prefix}", values["{prefix}"])
        for placeholder, value in values.items():
            url = url.replace(placeholder, value)
        assert "{" not in url, f"unfilled placeholder in {endpoint}"
        # An empty JSON object is a wrong body for every POST: the handler answers with a domain
        # error (400/404/...), never the router's "Not Found"/"Method Not Allowed".
        response = client.request(method, url, json={} if method in {"POST", "PUT"} else None)
        assert response.status_code != 405, endpoint
        if response.status_code == 404 and method != "HEAD":
            assert response.json()["error"]["type"] != "NotFoundException", (endpoint, response.text)
        assert response.status_code < 500, (endpoint, response.text)


def test_unknown_prefix_is_404_no_such_warehouse(client: TestClient) -> None:
    assert_error(client.get("/v1/nowhere/namespaces"), 404, "NoSuchWarehouseException")
