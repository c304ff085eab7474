"""Conformance with the Iceberg REST catalog spec (shared ``specs/iceberg-rest-catalog-open-api.yaml``).

* Every endpoint ``GET /v1/config`` advertises is a path and method of the spec, carries the spec's
  operationId in our OpenAPI document, and is routed by the app.
* A scripted flow drives the app through every advertised endpoint and the token endpoint, happy
  paths and errors (400, 401, 404 NoSuch*, 409 conflicts, 422), and validates each request it sends
  and each response it gets against the spec with openapi-core.

The spec's servers are ``{scheme}://{host}/{basePath}`` with an empty ``basePath`` by default, and
its paths begin with ``/v1``: requests are checked as sent to the app's root (``http://testserver``).
Without the spec (no shared directory) the tests skip, or fail under CI=true.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlparse

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from catalog.app import create_app
from tests.conftest import Backend, admin_credentials
from tests.integration.helpers import SCHEMA, SCHEMA_V2, snapshot_updates
from tests.services import shared_file

pytestmark = pytest.mark.filterwarnings(
    # openapi-core checks BearerAuth but cannot check the spec's alternative OAuth2 scheme
    "ignore:Unsupported scheme type:UserWarning"
)

SPEC_FILE = "specs/iceberg-rest-catalog-open-api.yaml"
HOST = "http://testserver"  # TestClient's base URL; the spec's default server has an empty basePath
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
# Endpoints the flow must exercise besides the advertised ones (the config and token endpoints are not
# advertised: the spec lists only /v1/{prefix}/... in `endpoints`).
ALWAYS = {"GET /v1/config", "POST /v1/oauth/tokens"}


@pytest.fixture(scope="module")
def spec_document() -> dict[str, Any]:
    import yaml

    path = shared_file(SPEC_FILE, "the Iceberg REST catalog spec")
    with path.open(encoding="utf-8") as handle:
        # JSON round trip: YAML reads the response codes (200:) as integers, OpenAPI wants strings.
        loaded: dict[str, Any] = json.loads(json.dumps(yaml.safe_load(handle)))
    return loaded


def wrap_bare_error_models(document: dict[str, Any]) -> list[str]:
    """The spec's view operations declare some error responses as a bare ``ErrorModel``, while
    their own examples, every other operation and the clients (Java's ErrorHandlers, PyIceberg)
    use the ``IcebergErrorResponse`` wrapper ``{"error": {...}}``, which the catalog sends. Check
    those responses against the wrapper; return which were changed."""
    bare, wrapper = "#/components/schemas/ErrorModel", "#/components/schemas/IcebergErrorResponse"
    changed = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation.get("responses", {}).items() if method in HTTP_METHODS else ():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if schema.get("$ref") == bare:
                    schema["$ref"] = wrapper
                    changed.append(f"{method.upper()} {path} {status}")
    return changed


@pytest.fixture(scope="module")
def spec(spec_document: dict[str, Any]) -> Any:
    from openapi_core import Config, OpenAPI

    document = json.loads(json.dumps(spec_document))
    changed = wrap_bare_error_models(document)
    assert all("/views" in where or "/register-view" in where for where in changed), changed
    # The upstream spec is taken as valid OpenAPI; checking it again would only cost a second per run.
    return OpenAPI.from_dict(document, config=Config(spec_validator_cls=None))


def spec_operations(spec_document: dict[str, Any]) -> dict[str, str]:
    """``"METHOD /path"`` -> operationId for every operation of the spec."""
    return {
        f"{method.upper()} {path}": operation["operationId"]
        for path, item in spec_document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def fill(template: str, **values: str | tuple[str, ...]) -> str:
    """The URL path of ``template`` (``/v1/{prefix}/namespaces/{namespace}``) for these values;
    a namespace is its levels joined with the unit separator, percent-encoded like clients do."""

    def encode(value: str | tuple[str, ...]) -> str:
        return quote("\x1f".join(value) if isinstance(value, tuple) else value, safe="")

    path = template
    for name, value in values.items():
        path = path.replace("{" + name + "}", encode(value))
    assert "{" not in path, f"unfilled placeholder in {path}"
    return path


def _explain(exc: BaseException) -> str:
    """An openapi-core validation error with the schema errors underneath it."""
    parts = [f"{type(exc).__name__}: {exc}"]
    cause: BaseException | None = exc
    while cause is not None:
        for error in getattr(cause, "schema_errors", None) or ():
            location = "/".join(str(p) for p in error.absolute_path) or "(body)"
            parts.append(f"  at {location}: {error.message[:300]}")
        cause = cause.__cause__
    return "\n".join(parts)


@dataclass
class SpecClient:
    """Sends requests to the app and checks each request and response against the spec."""

    client: TestClient  # without default headers: each call says whether it sends credentials
    credentials: dict[str, str]
    spec: Any
    spec_document: dict[str, Any]
    exercised: dict[str, set[int]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def call(
        self,
        method: str,
        template: str,
        expect: int,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        raw: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
        valid_request: bool = True,
        **path: str | tuple[str, ...],
    ) -> Any:
        """Send, assert the status, validate; return the parsed JSON body (None when empty).

        ``valid_request=False`` for requests the flow sends wrong on purpose: only their
        response is checked."""
        url = fill(template, **path)
        sent_headers = dict(headers or {})
        content_type = "application/json"
        body: bytes | None = raw
        if json_body is not None:
            body = json.dumps(json_body).encode()
        elif form is not None:
            body, content_type = urlencode(form).encode(), "application/x-www-form-urlencoded"
        if body is not None:
            sent_headers["Content-Type"] = content_type
        if authenticated:
            sent_headers = {**self.credentials, **sent_headers}
        response = self.client.request(method, url, content=body, params=params, headers=sent_headers)
        where = f"{method} {url}{'?' + urlencode(params) if params else ''}"
        assert response.status_code == expect, f"{where}: {response.status_code} != {expect}: {response.text}"
        self.exercised.setdefault(f"{method} {template}", set()).add(response.status_code)

        from openapi_core.testing import MockRequest, MockResponse

        request = MockRequest(
            HOST,
            method.lower(),
            url,
            args=params or {},
            headers=sent_headers,
            data=body,
            content_type=content_type,
        )
        if valid_request:
            try:
                self.spec.validate_request(request)
            except Exception as exc:  # noqa: BLE001 - every kind of violation is reported the same way
                self.violations.append(f"request {where}:\n{_explain(exc)}")
        if method == "HEAD":  # no body: only the status must be one the spec lists
            responses = self.spec_document["paths"][template][method.lower()]["responses"]
            status = str(response.status_code)
            if not {status, f"{status[0]}XX", "default"} & set(responses):
                self.violations.append(f"response {response.status_code} to {where}: not a status of the spec")
            return None
        reply = MockResponse(
            response.content,
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=response.headers.get("content-type", "application/json").split(";")[0],
        )
        try:
            self.spec.validate_response(request, reply)
        except Exception as exc:  # noqa: BLE001
            self.violations.append(f"response {response.status_code} to {where}:\n{_explain(exc)}")
        return response.json() if response.content else None

    def unchecked(self, method: str, template: str, **path: str | tuple[str, ...]) -> Any:
        """A request outside the checked flow (to read state); its response."""
        return self.client.request(method, fill(template, **path), headers=self.credentials)


@pytest.fixture
def spec_client(
    spec: Any, spec_document: dict[str, Any], backend_factory: Callable[..., Backend]
) -> Iterator[tuple[SpecClient, Backend]]:
    """The app on SQLite and S3 (remote signing and vended credentials need S3), administrator's key."""
    backend = backend_factory(
        "sqlite-s3",
        vending_static_credentials={
            "lake": {
                "read-access-key-id": "ro-key",
                "read-secret-access-key": "ro-secret",
                "write-access-key-id": "rw-key",
                "write-secret-access-key": "rw-secret",
            }
        },
    )
    app = create_app(backend.settings)
    with TestClient(app) as client:
        yield SpecClient(client, admin_credentials(app).headers, spec, spec_document), backend


def advertised(app: FastAPI, client: TestClient) -> list[str]:
    response = client.get("/v1/config", headers=admin_credentials(app).headers)
    assert response.status_code == 200, response.text
    endpoints: list[str] = response.json()["endpoints"]
    return endpoints


def test_advertised_endpoints_are_spec_operations_and_routed(
    spec_document: dict[str, Any], backend_factory: Callable[..., Backend]
) -> None:
    app = create_app(backend_factory("sqlite-file").settings)
    operations = spec_operations(spec_document)
    document = app.openapi()
    with TestClient(app, headers=admin_credentials(app).headers) as client:
        endpoints = advertised(app, client)
        assert endpoints, "the catalog advertises no endpoints"
        for endpoint in endpoints:
            assert endpoint in operations, f"{endpoint} is advertised but is not an operation of the spec"
            method, path = endpoint.split(" ", 1)
            ours = document["paths"][path][method.lower()]["operationId"]
            assert ours == operations[endpoint], f"{endpoint}: operationId {ours}, the spec's is {operations[endpoint]}"
            # Routed: a dummy call reaches the handler, never the router's Not Found/Method Not Allowed.
            url = fill(path, prefix="lake", namespace="nowhere", table="t", view="v")
            response = client.request(method, url, json={} if method == "POST" else None)
            assert response.status_code != 405, endpoint
            if response.status_code == 404 and method != "HEAD":
                assert response.json()["error"]["type"] != "NotFoundException", (endpoint, response.text)
    # the spec's own two unprefixed endpoints carry its operationIds too
    for endpoint in ALWAYS:
        method, path = endpoint.split(" ", 1)
        assert document["paths"][path][method.lower()]["operationId"] == operations[endpoint], endpoint


@pytest.mark.s3
def test_a_client_session_conforms_to_the_spec(spec_client: tuple[SpecClient, Backend]) -> None:
    api, backend = spec_client
    admin = admin_credentials(api.client.app)  # type: ignore[arg-type]
    ns, child = ("spec_db",), ("spec_db", "child")
    access = api.client.app.state.services.access  # type: ignore[attr-defined]
    access.create_principal("outsider", "service")  # no grants
    outsider = access.create_api_key("outsider").api_key
    P = {"prefix": "lake"}
    NS = "/v1/{prefix}/namespaces/{namespace}"
    TABLES, TABLE = NS + "/tables", NS + "/tables/{table}"
    VIEWS, VIEW = NS + "/views", NS + "/views/{view}"

    # --- tokens and configuration ------------------------------------------------------------------
    token = api.call(
        "POST",
        "/v1/oauth/tokens",
        200,
        form={"grant_type": "client_credentials", "client_id": admin.client_id, "client_secret": admin.client_secret},
        authenticated=False,
    )
    exchange = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": token["access_token"],
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
    }
    api.call("POST", "/v1/oauth/tokens", 200, form=exchange, authenticated=False)
    wrong = {"grant_type": "client_credentials", "client_id": admin.client_id, "client_secret": "wrong"}
    api.call("POST", "/v1/oauth/tokens", 401, form=wrong, authenticated=False)
    api.call("POST", "/v1/oauth/tokens", 400, form={"grant_type": "password"}, authenticated=False, valid_request=False)
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    config = api.call("GET", "/v1/config", 200, params={"warehouse": "lake"}, headers=bearer)
    endpoints = set(config["endpoints"])
    api.call("GET", "/v1/config", 404, params={"warehouse": "no-such-warehouse"})
    api.call("GET", "/v1/config", 401, authenticated=False, valid_request=False)

    # --- namespaces ------------------------------------------------------------------------------------
    api.call(
        "POST",
        "/v1/{prefix}/namespaces",
        200,
        json_body={"namespace": list(ns), "properties": {"owner": "spec"}},
        headers={"Idempotency-Key": str(uuid.uuid4())},
        **P,
    )
    api.call("POST", "/v1/{prefix}/namespaces", 200, json_body={"namespace": list(child)}, **P)
    api.call("POST", "/v1/{prefix}/namespaces", 409, json_body={"namespace": list(ns)}, **P)
    api.call("POST", "/v1/{prefix}/namespaces", 400, raw=b'{"namespace": "not-a-list"', valid_request=False, **P)
    api.call("GET", "/v1/{prefix}/namespaces", 200, **P)
    api.call("GET", "/v1/{prefix}/namespaces", 200, params={"parent": "spec_db", "pageSize": "1"}, **P)
    api.call("GET", NS, 200, namespace=ns, **P)
    api.call("GET", NS, 404, namespace=("missing",), **P)
    api.call("HEAD", NS, 204, namespace=child, **P)
    api.call("HEAD", NS, 404, namespace=("missing",), **P)
    properties = NS + "/properties"
    api.call(
        "POST", properties, 200, json_body={"updates": {"a": "1"}, "removals": ["owner", "gone"]}, namespace=ns, **P
    )
    api.call("POST", properties, 422, json_body={"updates": {"a": "2"}, "removals": ["a"]}, namespace=ns, **P)
    api.call("GET", "/v1/{prefix}/namespaces", 404, params={"parent": "missing"}, **P)
    api.call("GET", "/v1/{prefix}/namespaces", 404, prefix="no-such-warehouse")

    # --- tables ------------------------------------------------------------------------------------------
    create = {
        "name": "events",
        "schema": SCHEMA,
        "partition-spec": {
            "spec-id": 0,
            "fields": [{"source-id": 1, "field-id": 1000, "name": "id_bucket", "transform": "bucket[4]"}],
        },
        "write-order": {
            "order-id": 1,
            "fields": [{"source-id": 1, "transform": "identity", "direction": "asc", "null-order": "nulls-first"}],
        },
        "properties": {"format-version": "2", "owner": "spec"},
    }
    created = api.call("POST", TABLES, 200, json_body=create, namespace=ns, **P)
    table_uuid, location = created["metadata"]["table-uuid"], created["metadata"]["location"]
    api.call("POST", TABLES, 409, json_body=create, namespace=ns, **P)
    api.call("POST", TABLES, 404, json_body=create, namespace=("missing",), **P)
    api.call("POST", TABLES, 200, json_body={**create, "name": "staged", "stage-create": True}, namespace=ns, **P)
    api.call("GET", TABLES, 200, namespace=ns, **P)
    api.call("GET", TABLES, 200, params={"pageSize": "1"}, namespace=ns, **P)
    api.call("GET", TABLES, 404, namespace=("missing",), **P)
    tbl = {"namespace": ns, "table": "events", **P}
    api.call("GET", TABLE, 200, **tbl)
    api.call("GET", TABLE, 200, params={"snapshots": "refs"}, **tbl)
    loaded = api.unchecked("GET", TABLE, **tbl)
    api.call("GET", TABLE, 304, headers={"If-None-Match": loaded.headers["etag"]}, **tbl)
    vended = api.call("GET", TABLE, 200, headers={"X-Iceberg-Access-Delegation": "vended-credentials"}, **tbl)
    assert vended["storage-credentials"], "the static pair is vended"
    signing = api.call("GET", TABLE, 200, headers={"X-Iceberg-Access-Delegation": "remote-signing"}, **tbl)
    assert signing["config"]["s3.remote-signing-enabled"] == "true"
    api.call("GET", TABLE, 401, headers={"Authorization": "Bearer not-a-token"}, **tbl)
    api.call("GET", TABLE, 403, headers={"Authorization": f"Bearer {outsider}"}, **tbl)
    api.call("GET", TABLE, 404, namespace=ns, table="missing", **P)
    api.call("HEAD", TABLE, 204, **tbl)
    api.call("HEAD", TABLE, 404, namespace=ns, table="missing", **P)

    commit = {
        "requirements": [
            {"type": "assert-table-uuid", "uuid": table_uuid},
            {"type": "assert-current-schema-id", "current-schema-id": 0},
            {"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": None},
        ],
        "updates": [
            {"action": "set-properties", "updates": {"commit.retry.num-retries": "4"}},
            {"action": "remove-properties", "removals": ["owner"]},
            {"action": "add-schema", "schema": SCHEMA_V2},
            {"action": "set-current-schema", "schema-id": -1},
            *snapshot_updates(location, 101, None, 1),
        ],
    }
    api.call("POST", TABLE, 200, json_body=commit, **tbl)
    stale = {"requirements": [{"type": "assert-current-schema-id", "current-schema-id": 0}], "updates": []}
    api.call("POST", TABLE, 409, json_body=stale, **tbl)
    api.call("POST", TABLE, 404, json_body={"requirements": [], "updates": []}, namespace=ns, table="missing", **P)
    api.call("POST", TABLE, 400, json_body={"updates": [{"action": "no-such-action"}]}, valid_request=False, **tbl)

    api.call("GET", TABLE + "/credentials", 200, **tbl)
    api.call("GET", TABLE + "/credentials", 404, namespace=ns, table="missing", **P)
    assert backend.s3 is not None
    bucket, key = urlparse(location).netloc, urlparse(location).path.lstrip("/")
    sign = {
        "region": backend.s3.region,
        "method": "GET",
        "uri": f"{backend.s3.endpoint}/{bucket}/{key}/data/part-0.parquet",
        "headers": {"User-Agent": ["spec-test"]},
        "provider": "s3",
    }
    api.call("POST", TABLE + "/sign", 200, json_body=sign, **tbl)
    api.call(
        "POST", TABLE + "/sign", 403, json_body={**sign, "uri": f"{backend.s3.endpoint}/{bucket}/elsewhere"}, **tbl
    )

    report = {
        "report-type": "scan-report",
        "table-name": "spec_db.events",
        "snapshot-id": 101,
        "filter": True,
        "schema-id": 1,
        "projected-field-ids": [1],
        "projected-field-names": ["id"],
        "metrics": {"total-planning-duration": {"count": 1, "time-unit": "nanoseconds", "total-duration": 10}},
    }
    api.call("POST", TABLE + "/metrics", 204, json_body=report, **tbl)
    api.call("POST", TABLE + "/metrics", 404, json_body=report, namespace=ns, table="missing", **P)

    rename = "/v1/{prefix}/tables/rename"
    ident = {"namespace": list(ns), "name": "events"}
    moved = {"namespace": list(child), "name": "moved"}
    api.call("POST", rename, 204, json_body={"source": ident, "destination": moved}, **P)
    api.call("POST", rename, 404, json_body={"source": ident, "destination": moved}, **P)
    api.call("POST", TABLES, 200, json_body=create, namespace=ns, **P)
    api.call("POST", rename, 409, json_body={"source": moved, "destination": ident}, **P)

    current = api.unchecked("GET", TABLE, prefix="lake", namespace=child, table="moved").json()
    register = NS + "/register"
    registered = {"name": "registered", "metadata-location": current["metadata-location"]}
    api.call("POST", register, 200, json_body=registered, namespace=ns, **P)
    api.call("POST", register, 409, json_body=registered, namespace=ns, **P)
    api.call("POST", register, 404, json_body=registered, namespace=("missing",), **P)
    unregister = TABLE + "/unregister"
    handed_over = api.call("POST", unregister, 200, namespace=ns, table="registered", **P)
    assert handed_over["metadata-location"] == current["metadata-location"]
    api.call("POST", unregister, 404, namespace=ns, table="registered", **P)
    api.call("POST", register, 200, json_body=registered, namespace=ns, **P)  # and back again

    transaction = "/v1/{prefix}/transactions/commit"
    changes = {
        "table-changes": [
            {
                "identifier": {"namespace": list(ns), "name": name},
                "requirements": [],
                "updates": [{"action": "set-properties", "updates": {"txn": "1"}}],
            }
            for name in ("events", "registered")
        ]
    }
    api.call("POST", transaction, 204, json_body=changes, **P)
    conflict = json.loads(json.dumps(changes))
    conflict["table-changes"][1]["requirements"] = [{"type": "assert-table-uuid", "uuid": str(uuid.uuid4())}]
    api.call("POST", transaction, 409, json_body=conflict, **P)
    missing = json.loads(json.dumps(changes))
    missing["table-changes"][0]["identifier"]["name"] = "missing"
    api.call("POST", transaction, 404, json_body=missing, **P)

    # --- views -------------------------------------------------------------------------------------------
    version = {
        "version-id": 1,
        "schema-id": 0,
        "timestamp-ms": 1_700_000_000_000,
        "summary": {"engine-name": "spark", "engine-version": "3.5"},
        "representations": [{"type": "sql", "sql": "SELECT id FROM spec_db.events", "dialect": "spark"}],
        "default-namespace": list(ns),
    }
    view = {"name": "recent", "schema": SCHEMA, "view-version": version, "properties": {"comment": "spec"}}
    created_view = api.call("POST", VIEWS, 200, json_body=view, namespace=ns, **P)
    api.call("POST", VIEWS, 409, json_body=view, namespace=ns, **P)
    api.call("POST", VIEWS, 409, json_body={**view, "name": "events"}, namespace=ns, **P)
    api.call("GET", VIEWS, 200, namespace=ns, **P)
    vw = {"namespace": ns, "view": "recent", **P}
    api.call("GET", VIEW, 200, **vw)
    api.call("GET", VIEW, 404, namespace=ns, view="missing", **P)
    api.call("HEAD", VIEW, 204, **vw)
    api.call("HEAD", VIEW, 404, namespace=ns, view="missing", **P)
    replace = {
        "requirements": [{"type": "assert-view-uuid", "uuid": created_view["metadata"]["view-uuid"]}],
        "updates": [
            {"action": "add-view-version", "view-version": {**version, "version-id": 2}},
            {"action": "set-current-view-version", "view-version-id": -1},
            {"action": "set-properties", "updates": {"comment": "replaced"}},
        ],
    }
    replaced = api.call("POST", VIEW, 200, json_body=replace, **vw)
    api.call(
        "POST",
        VIEW,
        409,
        json_body={**replace, "requirements": [{"type": "assert-view-uuid", "uuid": str(uuid.uuid4())}]},
        **vw,
    )
    api.call("POST", VIEW, 404, json_body=replace, namespace=ns, view="missing", **P)
    view_rename = "/v1/{prefix}/views/rename"
    source, target = {"namespace": list(ns), "name": "recent"}, {"namespace": list(child), "name": "recent_v2"}
    api.call("POST", view_rename, 204, json_body={"source": source, "destination": target}, **P)
    api.call("POST", view_rename, 404, json_body={"source": source, "destination": target}, **P)
    api.call("POST", view_rename, 409, json_body={"source": target, "destination": {**source, "name": "events"}}, **P)
    register_view = NS + "/register-view"
    view_registered = {"name": "recent_copy", "metadata-location": replaced["metadata-location"]}
    api.call("POST", register_view, 200, json_body=view_registered, namespace=ns, **P)
    api.call("POST", register_view, 409, json_body=view_registered, namespace=ns, **P)
    api.call("DELETE", VIEW, 204, namespace=ns, view="recent_copy", **P)
    api.call("DELETE", VIEW, 404, namespace=ns, view="recent_copy", **P)

    # --- drops -----------------------------------------------------------------------------------------
    api.call("DELETE", NS, 409, namespace=ns, **P)
    api.call("DELETE", TABLE, 204, namespace=ns, table="registered", **P)
    api.call("DELETE", TABLE, 204, params={"purgeRequested": "true"}, namespace=ns, table="events", **P)
    api.call("DELETE", TABLE, 404, namespace=ns, table="events", **P)
    api.call("DELETE", TABLE, 204, namespace=child, table="moved", **P)
    api.call("DELETE", VIEW, 204, namespace=child, view="recent_v2", **P)
    api.call("DELETE", NS, 204, namespace=child, **P)
    api.call("DELETE", NS, 204, namespace=ns, **P)
    api.call("DELETE", NS, 404, namespace=ns, **P)

    # --- every advertised endpoint was exercised, and everything conformed -------------------------------
    unexercised = sorted((endpoints | ALWAYS) - set(api.exercised))
    assert not unexercised, f"advertised but not exercised by this test: {unexercised}"
    errors_only = sorted(e for e, statuses in api.exercised.items() if all(s >= 400 for s in statuses))
    assert not errors_only, f"only error responses seen for {errors_only}"
    assert not api.violations, f"{len(api.violations)} spec violation(s):\n\n" + "\n\n".join(api.violations)
