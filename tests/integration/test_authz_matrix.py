"""The authorization matrix: every route of both APIs × who is calling → the expected status.

The routes are enumerated from the app itself, so a route added without an entry here fails
``test_every_route_has_an_entry``. For each route, ``test_route`` runs these callers:

* no credentials → 401; a revoked API key, an expired token, a tampered token → 401
  (each for a principal that would otherwise be allowed);
* an authenticated principal with no grant → 403 (or the route's documented answer);
* the exact privilege on the object, a broader one (ADMIN on the catalog) and the privilege on a
  parent namespace → the route's success status.

Objects are created fresh (by the administrator) for every caller that may change them. The
matrix runs on SQLite with an S3 warehouse, so credential vending and remote signing answer too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from catalog.app import create_app
from catalog.config import Settings
from tests.conftest import TEST_JWT_SECRET, admin_credentials
from tests.detached_support import put_parquet, rows_table
from tests.integration.rbac_helpers import (
    ADMIN_API,
    Caller,
    GrantSpec,
    bearer,
    client_token,
    forge,
    make_caller,
    ok,
    principal_id,
    tamper,
)
from tests.services import S3Server

pytestmark = [pytest.mark.s3]

P = "/v1/lake"
SCHEMA = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}
VIEW_VERSION = {
    "version-id": 1,
    "schema-id": 0,
    "timestamp-ms": 1700000000000,
    "summary": {"engine-name": "test"},
    "representations": [{"type": "sql", "sql": "SELECT 1 AS id", "dialect": "spark"}],
    "default-namespace": [],
}
ADMIN: list[GrantSpec] = [("ADMIN", "catalog", "")]


# --- the environment: one app, its administrator, fresh objects on demand --------------------------


@dataclass
class Env:
    app: FastAPI
    admin: TestClient
    anon: TestClient
    s3: S3Server
    counter: int = 0

    def unique(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"


@pytest.fixture(scope="module")
def env(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("matrix")
    settings = Settings(
        home=root / "home",
        database_url=f"sqlite:///{root / 'catalog.db'}",
        warehouse=f"s3://{s3.bucket}/matrix-{uuid.uuid4().hex[:8]}",
        auth_jwt_secret=TEST_JWT_SECRET,
        **s3.settings_fields(),
    )
    app = create_app(settings)
    with TestClient(app, headers=admin_credentials(app).headers) as admin, TestClient(app) as anon:
        ok(admin.post(f"{P}/namespaces", json={"namespace": ["m"]}), 200)
        yield Env(app, admin, anon, s3)


# Context builders (run as the administrator). Every object lives under namespace ``m`` so that a
# grant on ``m`` is "the privilege on a parent namespace".


def ns_ctx(env: Env) -> dict[str, Any]:
    name = env.unique("c")
    ok(env.admin.post(f"{P}/namespaces", json={"namespace": ["m", name]}), 200)
    return {"ns": ["m", name], "ns_path": f"m%1F{name}", "ns_dotted": f"m.{name}"}


def table_ctx(env: Env) -> dict[str, Any]:
    ctx = ns_ctx(env)
    created = ok(env.admin.post(f"{P}/namespaces/{ctx['ns_path']}/tables", json={"name": "t", "schema": SCHEMA}), 200)
    ctx.update(
        table="t",
        table_dotted=f"{ctx['ns_dotted']}.t",
        metadata_location=created["metadata-location"],
        location=created["metadata"]["location"],
    )
    return ctx


def view_ctx(env: Env) -> dict[str, Any]:
    ctx = ns_ctx(env)
    body = {"name": "v", "schema": SCHEMA, "view-version": VIEW_VERSION, "properties": {}}
    created = ok(env.admin.post(f"{P}/namespaces/{ctx['ns_path']}/views", json=body), 200)
    ctx.update(view="v", view_dotted=f"{ctx['ns_dotted']}.v", view_metadata_location=created["metadata-location"])
    return ctx


def snapshot_ctx(env: Env) -> dict[str, Any]:
    """A table made by a completed register-snapshot job (detached mode)."""
    ctx = ns_ctx(env)
    warehouse = env.app.state.services.settings.resolved_warehouse
    uri = put_parquet(env.s3, f"{warehouse}/landing/{ctx['ns'][1]}/a.parquet", rows_table(0, 3))
    accepted = ok(
        env.admin.post("/api/v1/jobs/register-snapshot", json={"table_name": f"{ctx['ns_dotted']}.t", "uri": uri}), 202
    )
    job = wait_for_job(env.admin, accepted["job_id"])
    assert job["status"] == "completed", job
    latest = ok(env.admin.get(f"/api/v1/tables/{ctx['ns_dotted']}.t/snapshots/latest"), 200)
    ctx.update(table="t", table_dotted=f"{ctx['ns_dotted']}.t", uri=uri, snapshot_id=latest["snapshot_id"])
    return ctx


def wait_for_job(client: TestClient, job_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        job: dict[str, Any] = ok(client.get(f"/api/v1/jobs/{job_id}", headers=headers), 200)
        if job["status"] in {"completed", "failed"} or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def member_ctx(env: Env) -> dict[str, Any]:
    ctx = table_ctx(env)
    holder = make_caller(env.admin, name=env.unique("member"))
    role = env.unique("role")
    ok(env.admin.post(f"{ADMIN_API}/roles", json={"name": role}), 201)
    ok(env.admin.put(f"{ADMIN_API}/roles/{role}/principals/{holder.name}"), 204)
    grant = {"privilege": "SELECT", "securable": {"type": "table", "name": ctx["table_dotted"]}}
    ok(env.admin.post(f"{ADMIN_API}/roles/{role}/grants", json=grant), 201)
    ctx.update(role=role, member=holder.name, key_id=holder.key_id, grant=grant)
    return ctx


# --- the route table -----------------------------------------------------------------------------------

Request = tuple[str, dict[str, Any]]  # (url, httpx keyword arguments)


@dataclass
class Route:
    method: str
    path: str
    success: int
    prepare: Callable[[Env], dict[str, Any]] | None
    request: Callable[[Env, dict[str, Any], Caller | None], Request]
    exact: Callable[[dict[str, Any]], list[GrantSpec]] | None = None  # None: any authenticated caller
    parent: Callable[[dict[str, Any]], list[GrantSpec]] | None = None  # None: not applicable
    broader: list[GrantSpec] | None = field(default_factory=lambda: list(ADMIN))
    no_grant: int = 403
    public: bool = False


def on_ns(privilege: str) -> Callable[[dict[str, Any]], list[GrantSpec]]:
    return lambda ctx: [(privilege, "namespace", ctx["ns_dotted"])]


def on_table(privilege: str) -> Callable[[dict[str, Any]], list[GrantSpec]]:
    return lambda ctx: [(privilege, "table", ctx["table_dotted"])]


def on_view(privilege: str) -> Callable[[dict[str, Any]], list[GrantSpec]]:
    return lambda ctx: [(privilege, "view", ctx["view_dotted"])]


def on_parent(*privileges: str) -> Callable[[dict[str, Any]], list[GrantSpec]]:
    return lambda ctx: [(privilege, "namespace", "m") for privilege in privileges]


def url(template: str) -> Callable[[Env, dict[str, Any], Caller | None], Request]:
    return lambda env, ctx, caller: (template.format(**ctx), {})


def with_json(
    template: str, body: Callable[[dict[str, Any]], Any]
) -> Callable[[Env, dict[str, Any], Caller | None], Request]:
    return lambda env, ctx, caller: (template.format(**ctx), {"json": body(ctx)})


def sign_body(env: Env) -> Callable[[dict[str, Any]], Any]:
    def body(ctx: dict[str, Any]) -> dict[str, Any]:
        key = ctx["location"].removeprefix("s3://")
        return {
            "region": env.s3.region,
            "uri": f"{env.s3.endpoint}/{key}/data/x.parquet",
            "method": "GET",
            "headers": {},
        }

    return body


def own_job(env: Env, ctx: dict[str, Any], caller: Caller | None) -> Request:
    """The caller's own job when it may submit one; otherwise the administrator's job."""
    body = {"table_name": ctx["table_dotted"], "uri": ctx["uri"], "mode": "append"}
    if caller is not None:
        submitted = env.anon.post("/api/v1/jobs/register-snapshot", json=body, headers=caller.headers)
        if submitted.status_code == 202:
            return f"/api/v1/jobs/{submitted.json()['job_id']}", {}
    job = ok(env.admin.post("/api/v1/jobs/register-snapshot", json=body), 202)
    return f"/api/v1/jobs/{job['job_id']}", {}


def routes(env: Env) -> list[Route]:
    ns_item = f"{P}/namespaces/{{ns_path}}"
    table_item = f"{ns_item}/tables/{{table}}"
    view_item = f"{ns_item}/views/{{view}}"
    set_props = {"requirements": [], "updates": [{"action": "set-properties", "updates": {"k": "v"}}]}
    return [
        # public: documentation, probes, metrics
        *[
            Route(method, path, 200, None, url(path), public=True)
            for path in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
            for method in ("GET", "HEAD")
        ],
        Route("GET", "/healthz", 200, None, url("/healthz"), public=True),
        Route("GET", "/readyz", 200, None, url("/readyz"), public=True),
        Route("GET", "/metrics", 200, None, url("/metrics"), public=True),
        # the token endpoint authenticates by itself (see token_endpoint_matrix)
        Route("POST", "/v1/oauth/tokens", 200, None, url("/v1/oauth/tokens"), public=True),
        # configuration: any authenticated caller
        Route("GET", "/v1/config", 200, None, url("/v1/config"), broader=None, no_grant=200),
        # namespaces
        Route(
            "GET",
            "/v1/{prefix}/namespaces",
            200,
            ns_ctx,
            lambda env, ctx, caller: (f"{P}/namespaces", {"params": {"parent": "\x1f".join(ctx["ns"])}}),
            on_ns("SELECT"),
            on_parent("SELECT"),
        ),
        Route(
            "POST",
            "/v1/{prefix}/namespaces",
            200,
            ns_ctx,
            with_json(f"{P}/namespaces", lambda ctx: {"namespace": [*ctx["ns"], "new"]}),
            on_ns("CREATE"),
            on_parent("CREATE"),
        ),
        Route(
            "GET",
            "/v1/{prefix}/namespaces/{namespace}",
            200,
            ns_ctx,
            url(ns_item),
            on_ns("SELECT"),
            on_parent("SELECT"),
        ),
        Route(
            "HEAD", "/v1/{prefix}/namespaces/{namespace}", 204, ns_ctx, url(ns_item), on_ns("ALTER"), on_parent("ALTER")
        ),
        Route(
            "DELETE", "/v1/{prefix}/namespaces/{namespace}", 204, ns_ctx, url(ns_item), on_ns("DROP"), on_parent("DROP")
        ),
        Route(
            "POST",
            "/v1/{prefix}/namespaces/{namespace}/properties",
            200,
            ns_ctx,
            with_json(f"{ns_item}/properties", lambda ctx: {"updates": {"owner": "x"}}),
            on_ns("ALTER"),
            on_parent("ALTER"),
        ),
        # tables
        Route(
            "GET",
            "/v1/{prefix}/namespaces/{namespace}/tables",
            200,
            table_ctx,
            url(f"{ns_item}/tables"),
            on_table("SELECT"),
            on_parent("SELECT"),
        ),
        Route(
            "POST",
            "/v1/{prefix}/namespaces/{namespace}/tables",
            200,
            ns_ctx,
            with_json(f"{ns_item}/tables", lambda ctx: {"name": "created", "schema": SCHEMA}),
            on_ns("CREATE"),
            on_parent("CREATE"),
        ),
        Route(
            "POST",
            "/v1/{prefix}/namespaces/{namespace}/register",
            200,
            table_ctx,
            with_json(
                f"{ns_item}/register", lambda ctx: {"name": "again", "metadata-location": ctx["metadata_location"]}
            ),
            on_ns("CREATE"),
            on_parent("CREATE"),
        ),
        Route(
            "GET",
            "/v1/{prefix}/namespaces/{namespace}/tables/{table}",
            200,
            table_ctx,
            url(table_item),
            on_table("SELECT"),
            on_parent("SELECT"),
        ),
        Route(
            "HEAD",
            "/v1/{prefix}/namespaces/{namespace}/tables/{table}",
            204,
            table_ctx,
            url(table_item),
            on_table("SELECT"),
            on_parent("SELECT"),
        ),
        Route(
            "POST",
            "/v1/{prefix}/namespaces/{namespace}/tables/{table}",
            200,
            table_ctx,
            with_json(table_item, lambda ctx: set_props),
            on_table("ALTER"),
            on_parent("ALTER"),
        ),
        Route(
            "DELETE",
            "/v1/{prefix}/namespaces/{namespace}/tables/{table}",
            204,
            table_ctx,
            url(table_item),
            on_table("DROP"),
            on_parent("DROP"),
        ),
        Route(
            "POST",
            "/v1/{prefix}/namespaces/{namespace}/tables/{table}/unregister",
            200,
            table_ctx,
            url(f"{table_item}/unregister"),
            on_table("DROP"),
            on_parent("DROP"),
        ),
        Route(
            "POST",
            "/v1/{prefix}/tables/rename",
            204,
            table_ctx,
            with_json(
                f"{P}/tables/rename",
                lambda ctx: {
                    "source": {"namespace": ctx["ns"], "name": "t"},
                    "destination": {"namespace": ctx["ns"], "name": "renamed"},
                },
            ),
            lambda ctx: [("DROP", "table", ctx["table_dotted"]), ("CREATE", "namespace", ctx["ns_dotted"])],
            on_parent("DROP", "CREATE"),
        ),
        Route(
            "POST",
            "/v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
            204,
            table_ctx,
            with_json(f"{table_item}/metrics", lambda ctx: {"report-type": "scan-report", "table-name": "t"}),
            on_table("SELECT"),
            on_parent("SELECT"),
        ),
        Route(
            "POST",
            "/v1/{prefix}/transactions/commit",
            204,
            table_ctx,
            with_json(
                f"{P}/transactions/commit",
                lambda ctx: {"table-changes": [{"identifier": {"namespace": ctx["ns"], "name": "t"}, **set_props}]},
            ),
            on_table("ALTER"),
            on_parent("ALTER"),
        ),
        Route(
            "GET",
            "/v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials",
            200,
            table_ctx,
            url(f"{table_item}/credentials"),
            on_table("SELECT"),
            on_parent("SELECT"),
        ),
        Route(
            "POST",
            "/v1/{prefix}/namespaces/{namespace}/tables/{table}/sign",
            200,
            table_ctx,
            with_json(f"{table_item}/sign", sign_body(env)),
            on_table("SELECT"),
            on_parent("SELECT"),
        ),
        # views
        Route(
            "GET",
            "/v1/{prefix}/namespaces/{namespace}/views",
            200,
            view_ctx,
            url(f"{ns_item}/views"),
            on_view("SELECT"),
            on_parent("SELECT"),
        ),
        Route(
            "POST",
            "/v1/{prefix}/namespaces/{namespace}/views",
            200,
            ns_ctx,
            with_json(f"{ns_item}/views", lambda ctx: {"name": "w", "schema": SCHEMA, "view-version": VIEW_VERSION}),
            on_ns("CREATE"),
            on_parent("CREATE"),
        ),
        Route(
            "POST",
            "/v1/{prefix}/namespaces/{namespace}/register-view",
            200,
            view_ctx,
            with_json(
                f"{ns_item}/register-view",
                lambda ctx: {"name": "w", "metadata-location": ctx["view_metadata_location"]},
            ),
            on_ns("CREATE"),
            on_parent("CREATE"),
        ),
        Route(
            "GET",
            "/v1/{prefix}/namespaces/{namespace}/views/{view}",
            200,
            view_ctx,
            url(view_item),
            on_view("SELECT"),
            on_parent("SELECT"),
        ),
        Route(
            "HEAD",
            "/v1/{prefix}/namespaces/{namespace}/views/{view}",
            204,
            view_ctx,
            url(view_item),
            on_view("SELECT"),
            on_parent("SELECT"),
        ),
        Route(
            "POST",
            "/v1/{prefix}/namespaces/{namespace}/views/{view}",
            200,
            view_ctx,
            with_json(view_item, lambda ctx: {"updates": [{"action": "set-properties", "updates": {"k": "v"}}]}),
            on_view("ALTER"),
            on_parent("ALTER"),
        ),
        Route(
            "DELETE",
            "/v1/{prefix}/namespaces/{namespace}/views/{view}",
            204,
            view_ctx,
            url(view_item),
            on_view("DROP"),
            on_parent("DROP"),
        ),
        Route(
            "POST",
            "/v1/{prefix}/views/rename",
            204,
            view_ctx,
            with_json(
                f"{P}/views/rename",
                lambda ctx: {
                    "source": {"namespace": ctx["ns"], "name": "v"},
                    "destination": {"namespace": ctx["ns"], "name": "renamed"},
                },
            ),
            lambda ctx: [("DROP", "view", ctx["view_dotted"]), ("CREATE", "namespace", ctx["ns_dotted"])],
            on_parent("DROP", "CREATE"),
        ),
        # administration: ADMIN on the default warehouse's catalog is exactly what these need
        Route(
            "POST",
            "/api/v1/admin/principals",
            201,
            None,
            lambda env, ctx, caller: (f"{ADMIN_API}/principals", {"json": {"name": env.unique("new"), "type": "user"}}),
            lambda ctx: ADMIN,
            broader=None,
        ),
        Route(
            "GET",
            "/api/v1/admin/principals",
            200,
            None,
            url(f"{ADMIN_API}/principals"),
            lambda ctx: ADMIN,
            broader=None,
        ),
        Route(
            "GET",
            "/api/v1/admin/principals/{name}",
            200,
            member_ctx,
            url(f"{ADMIN_API}/principals/{{member}}"),
            lambda ctx: ADMIN,
            broader=None,
        ),
        Route(
            "PATCH",
            "/api/v1/admin/principals/{name}",
            200,
            member_ctx,
            with_json(f"{ADMIN_API}/principals/{{member}}", lambda ctx: {"enabled": False}),
            lambda ctx: ADMIN,
            broader=None,
        ),
        Route(
            "POST",
            "/api/v1/admin/principals/{name}/api-keys",
            201,
            member_ctx,
            url(f"{ADMIN_API}/principals/{{member}}/api-keys"),
            lambda ctx: ADMIN,
            broader=None,
        ),
        Route(
            "GET",
            "/api/v1/admin/principals/{name}/api-keys",
            200,
            member_ctx,
            url(f"{ADMIN_API}/principals/{{member}}/api-keys"),
            lambda ctx: ADMIN,
            broader=None,
        ),
        Route(
            "DELETE",
            "/api/v1/admin/principals/{name}/api-keys/{key_id}",
            204,
            member_ctx,
            url(f"{ADMIN_API}/principals/{{member}}/api-keys/{{key_id}}"),
            lambda ctx: ADMIN,
            broader=None,
        ),
        Route(
            "POST",
            "/api/v1/admin/roles",
            201,
            None,
            lambda env, ctx, caller: (f"{ADMIN_API}/roles", {"json": {"name": env.unique("r")}}),
            lambda ctx: ADMIN,
            broader=None,
        ),
        Route("GET", "/api/v1/admin/roles", 200, None, url(f"{ADMIN_API}/roles"), lambda ctx: ADMIN, broader=None),
        Route(
            "PUT",
            "/api/v1/admin/roles/{role}/principals/{name}",
            204,
            member_ctx,
            url(f"{ADMIN_API}/roles/{{role}}/principals/{{member}}"),
            lambda ctx: ADMIN,
            broader=None,
        ),
        Route(
            "DELETE",
            "/api/v1/admin/roles/{role}/principals/{name}",
            204,
            member_ctx,
            url(f"{ADMIN_API}/roles/{{role}}/principals/{{member}}"),
            lambda ctx: ADMIN,
            broader=None,
        ),
        Route("GET", "/api/v1/admin/audit", 200, None, url(f"{ADMIN_API}/audit"), lambda ctx: ADMIN, broader=None),
        # grants: MANAGE_GRANTS on the securable
        Route(
            "POST",
            "/api/v1/admin/roles/{role}/grants",
            201,
            member_ctx,
            lambda env, ctx, caller: (
                f"{ADMIN_API}/roles/{ctx['role']}/grants",
                {"json": {**ctx["grant"], "privilege": "INSERT"}},
            ),
            on_table("MANAGE_GRANTS"),
            on_parent("MANAGE_GRANTS"),
        ),
        Route(
            "DELETE",
            "/api/v1/admin/roles/{role}/grants",
            204,
            member_ctx,
            lambda env, ctx, caller: (f"{ADMIN_API}/roles/{ctx['role']}/grants", {"json": ctx["grant"]}),
            on_table("MANAGE_GRANTS"),
            on_parent("MANAGE_GRANTS"),
        ),
        Route(
            "GET",
            "/api/v1/admin/roles/{role}/grants",
            200,
            member_ctx,
            url(f"{ADMIN_API}/roles/{{role}}/grants"),
            on_table("MANAGE_GRANTS"),
            on_parent("MANAGE_GRANTS"),
        ),
        # detached mode
        Route(
            "GET",
            "/api/v1/tables",
            200,
            snapshot_ctx,
            url("/api/v1/tables"),
            on_table("SELECT"),
            on_parent("SELECT"),
            no_grant=200,
        ),
        Route(
            "GET",
            "/api/v1/tables/{table_name}/snapshots/latest",
            200,
            snapshot_ctx,
            url("/api/v1/tables/{table_dotted}/snapshots/latest"),
            on_table("SELECT"),
            on_parent("SELECT"),
        ),
        Route(
            "GET",
            "/api/v1/tables/{table_name}/snapshots",
            200,
            snapshot_ctx,
            url("/api/v1/tables/{table_dotted}/snapshots"),
            on_table("SELECT"),
            on_parent("SELECT"),
        ),
        Route(
            "GET",
            "/api/v1/tables/{table_name}/snapshots/{snapshot_id}",
            200,
            snapshot_ctx,
            url("/api/v1/tables/{table_dotted}/snapshots/{snapshot_id}"),
            on_table("SELECT"),
            on_parent("SELECT"),
        ),
        Route(
            "POST",
            "/api/v1/jobs/register-snapshot",
            202,
            snapshot_ctx,
            with_json(
                "/api/v1/jobs/register-snapshot",
                lambda ctx: {"table_name": ctx["table_dotted"], "uri": ctx["uri"], "mode": "append"},
            ),
            on_table("INSERT"),
            on_parent("INSERT"),
        ),
        # jobs belong to their submitter: someone else's job is 404 (its existence is not revealed)
        Route(
            "GET",
            "/api/v1/jobs/{job_id}",
            200,
            snapshot_ctx,
            own_job,
            on_table("INSERT"),
            on_parent("INSERT"),
            no_grant=404,
        ),
        Route("GET", "/api/v1/jobs", 200, None, url("/api/v1/jobs"), no_grant=200, broader=None),
    ]


def _route_keys(app: FastAPI) -> set[tuple[str, str]]:
    keys = set()
    for context in fastapi.routing.iter_route_contexts(app.routes):
        path = str(getattr(context, "path", ""))
        for method in getattr(context, "methods", None) or ():
            keys.add((method, path))
    return keys


def test_every_route_has_an_entry(env: Env) -> None:
    served = _route_keys(env.app)
    covered = {(route.method, route.path) for route in routes(env)}
    assert served - covered == set(), "routes without an authorization matrix entry"
    assert covered - served == set(), "matrix entries for routes the app does not serve"


ROUTE_IDS = [f"{r.method} {r.path}" for r in routes(Env(None, None, None, None))]  # type: ignore[arg-type]


# --- running one route ---------------------------------------------------------------------------------


def _call(env: Env, route: Route, ctx: dict[str, Any], caller: Caller | None, headers: dict[str, str]) -> Any:
    target, kwargs = route.request(env, ctx, caller)
    return env.anon.request(route.method, target, headers=headers, **kwargs)


def _expect(response: Any, status: int, who: str) -> None:
    assert response.status_code == status, f"{who}: {response.status_code} != {status}: {response.text[:300]}"
    if status in (401, 403) and response.request.method != "HEAD":
        error = response.json()["error"]
        assert error["code"] == status and error["type"] in {"NotAuthorizedException", "ForbiddenException"}


@pytest.mark.parametrize("route_id", ROUTE_IDS)
def test_route(env: Env, route_id: str) -> None:
    route = next(r for r in routes(env) if f"{r.method} {r.path}" == route_id)
    app = env.app
    shared = route.prepare(env) if route.prepare else {}
    exact = route.exact(shared) if route.exact else []

    if route.path == "/v1/oauth/tokens":
        token_endpoint_matrix(env)
        return
    if route.public:
        _expect(_call(env, route, shared, None, {}), route.success, "no credentials")
        _expect(_call(env, route, shared, None, bearer("dlk_0011223344556677_bogus")), route.success, "bad key")
        return

    _expect(_call(env, route, shared, None, {}), 401, "no credentials")

    revoked = make_caller(env.admin, exact)
    ok(env.admin.delete(f"{ADMIN_API}/principals/{revoked.name}/api-keys/{revoked.key_id}"), 204)
    _expect(_call(env, route, shared, None, revoked.headers), 401, "revoked key")

    now = int(time.time())
    pid = principal_id(app, revoked.name)
    expired = forge(app, revoked.name, pid, revoked.client_id, iat=now - 7200, exp=now - 60)
    _expect(_call(env, route, shared, None, bearer(expired)), 401, "expired token")
    _expect(_call(env, route, shared, None, bearer(tamper(client_token(env.anon, revoked)))), 401, "tampered token")

    nobody = make_caller(env.admin)
    _expect(_call(env, route, shared, nobody, nobody.headers), route.no_grant, "no grant")

    scenarios: list[tuple[str, Callable[[dict[str, Any]], list[GrantSpec]] | None]] = [("exact privilege", route.exact)]
    if route.exact is not None:
        if route.broader is not None:
            broader = route.broader
            scenarios.append(("broader privilege", lambda ctx: broader))
        if route.parent is not None:
            scenarios.append(("grant on the parent namespace", route.parent))
    for who, grants in scenarios:
        ctx = route.prepare(env) if route.prepare else {}
        caller = make_caller(env.admin, grants(ctx) if grants else [])
        _expect(_call(env, route, ctx, caller, caller.headers), route.success, who)
        # the same caller through an OAuth2 token
        if route.method == "GET":
            token = client_token(env.anon, caller)
            _expect(_call(env, route, ctx, caller, bearer(token)), route.success, f"{who} (token)")


def token_endpoint_matrix(env: Env) -> None:
    """The matrix of ``POST /v1/oauth/tokens``, which is where credentials are checked."""
    exchange = "urn:ietf:params:oauth:grant-type:token-exchange"
    access = "urn:ietf:params:oauth:token-type:access_token"

    def post(**form: str) -> Any:
        return env.anon.post("/v1/oauth/tokens", data=form)

    caller = make_caller(env.admin, [("SELECT", "catalog", "")])
    creds = {"grant_type": "client_credentials", "client_id": caller.client_id, "client_secret": caller.client_secret}
    assert post().status_code == 400  # nothing presented
    assert post(**creds).status_code == 200
    assert post(**{**creds, "client_secret": "wrong"}).status_code == 401
    token = post(**creds).json()["access_token"]
    assert post(grant_type=exchange, subject_token=token, subject_token_type=access).status_code == 200
    assert post(grant_type=exchange, subject_token=tamper(token), subject_token_type=access).status_code == 400
    now = int(time.time())
    expired = forge(env.app, caller.name, principal_id(env.app, caller.name), caller.client_id, exp=now - 60)
    assert post(grant_type=exchange, subject_token=expired, subject_token_type=access).status_code == 400
    ok(env.admin.delete(f"{ADMIN_API}/principals/{caller.name}/api-keys/{caller.key_id}"), 204)
    assert post(grant_type=exchange, subject_token=caller.api_key, subject_token_type=access).status_code == 400
    ok(env.admin.patch(f"{ADMIN_API}/principals/{caller.name}", json={"enabled": False}), 200)
    assert post(**creds).status_code == 401
    assert post(grant_type=exchange, subject_token=token, subject_token_type=access).status_code == 400
