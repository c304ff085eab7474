"""What the HTTP API says about itself: tags, documented error responses, security schemes,
and the Swagger UI and ReDoc pages.

The pages load their JavaScript and CSS from the ``fastapi-offline`` package, served by the app
under ``/docs/static``: they work where no CDN is reachable. ``/openapi.json``, ``/docs`` and
``/redoc`` need no authentication (they describe the API and expose no catalog data);
``DATLAKE_API_DOCS_ENABLED=false`` turns all three off. The checked-in document
``openapi/datlake-catalog.json`` is rendered from the same app by ``datlake openapi``.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from catalog.auth.deps import get_principal
from catalog.rest.deps import api_routes

SWAGGER_UI_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"  # Swagger UI's page for OAuth2 flows that redirect
REDOC_URL = "/redoc"
STATIC_URL = "/docs/static"
ASSETS = files("fastapi_offline") / "static"  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png

ICEBERG_SPEC_URL = "https://github.com/apache/iceberg/blob/main/open-api/rest-catalog-open-api.yaml"

DESCRIPTION = f"""\
Apache Iceberg REST catalog (`/v1`) with the Datlake detached-mode and administration API (`/api/v1`).

The `/v1` routes implement the [Iceberg REST catalog specification]({ICEBERG_SPEC_URL}): their
request and response bodies are the specification's, and its `operationId`s are used here.
Every route except `/v1/oauth/tokens` and the operations endpoints needs credentials: an API
key or an access token as `Authorization: Bearer ...` (get a token from `/v1/oauth/tokens`
with OAuth2 client credentials), or an API key as `X-API-Key`. Errors are `{{"error": {{"message", "type", "code"}}}}`,
except on `/v1/oauth/tokens`, which answers in the OAuth2 error format.
"""

OPENAPI_TAGS: list[dict[str, Any]] = [
    {"name": "Configuration", "description": "Iceberg REST (`/v1`): the configuration a client loads first."},
    {
        "name": "OAuth2",
        "description": "Iceberg REST: access tokens for client credentials or token exchange "
        "(form-encoded; errors in the OAuth2 format).",
    },
    {"name": "Namespaces", "description": "Iceberg REST: create, list, load, drop namespaces and their properties."},
    {
        "name": "Tables",
        "description": "Iceberg REST: create, load, commit, rename, register and drop tables; "
        "multi-table transactions; metrics reports.",
    },
    {
        "name": "Access delegation",
        "description": "Iceberg REST: vended storage credentials and remote signing of a table's S3 requests.",
    },
    {"name": "Views", "description": "Iceberg REST: create, load, replace, rename, register and drop views."},
    {
        "name": "Detached mode",
        "description": "Datlake (`/api/v1`): the tables a caller may see, their snapshots, and the URIs "
        "(or presigned URLs) to read them directly.",
    },
    {"name": "Jobs", "description": "Datlake: register Parquet objects as a table snapshot, asynchronously."},
    {"name": "Admin", "description": "Datlake: principals, API keys, roles, grants and the audit log."},
    {"name": "Operations", "description": "Liveness, readiness and Prometheus metrics (no authentication)."},
]


class ErrorModel(BaseModel):
    """The error inside every error response (non-2xx) of the catalog."""

    message: str = Field(description="Human-readable error message.")
    type: str = Field(description="Error type Iceberg clients map to exceptions.", examples=["NoSuchTableException"])
    code: int = Field(ge=400, le=600, description="The HTTP status code.", examples=[404])


class IcebergErrorResponse(BaseModel):
    """JSON wrapper of every error response (non-2xx), the Iceberg REST spec's error model."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorModel


class OAuthError(BaseModel):
    """An error of the token endpoint (RFC 6749 section 5.2)."""

    error: Literal["invalid_request", "invalid_client", "unsupported_grant_type"]
    error_description: str | None = None


ERROR_DESCRIPTIONS = {
    400: "Malformed or invalid request (BadRequestException).",
    401: "Missing, expired or unknown credentials (NotAuthorizedException).",
    403: "The caller lacks a privilege this request needs (ForbiddenException).",
    404: "No such warehouse (prefix), namespace, table, view or job.",
    406: "The catalog does not support this operation here (UnsupportedOperationException).",
    409: "Conflict: it already exists, the namespace is not empty, or a commit requirement "
    "no longer holds (CommitFailedException).",
    413: "The request body is larger than DATLAKE_MAX_REQUEST_BYTES.",
    422: "Invalid request parameters or body.",
    503: "The database or the object store is unavailable (ServiceUnavailableException).",
}
DEFAULT_ERROR = {"model": IcebergErrorResponse, "description": "Any other error, in the same error model."}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these status codes, each with the error model."""
    return {code: {"model": IcebergErrorResponse, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


# Every authenticated route can fail these ways. ``default`` also keeps FastAPI from describing
# its own validation error body, which the app never sends (see catalog.app.install_error_handlers).
ICEBERG_ERRORS = {**error_responses(400, 401, 403, 404, 503), "default": DEFAULT_ERROR}
DATLAKE_ERRORS = {**error_responses(401, 403, 404, 422, 503), "default": DEFAULT_ERROR}

TOKEN_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["grant_type"],
                "properties": {
                    "grant_type": {
                        "type": "string",
                        "enum": ["client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"],
                    },
                    "client_id": {"type": "string", "description": "client_credentials (or use HTTP Basic)."},
                    "client_secret": {"type": "string", "description": "client_credentials (or use HTTP Basic)."},
                    "scope": {"type": "string", "description": "Accepted and ignored: grants decide access."},
                    "subject_token": {"type": "string", "description": "token-exchange: the token to exchange."},
                    "subject_token_type": {"type": "string", "description": "token-exchange: its type URN."},
                },
            }
        }
    },
}


class TokenResponse(BaseModel):
    """An issued access token."""

    access_token: str
    token_type: Literal["bearer"]
    expires_in: int = Field(description="Lifetime in seconds.")
    issued_token_type: str


TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": TokenResponse, "description": "The access token."},
    400: {"model": OAuthError, "description": "Invalid request or unsupported grant type."},
    401: {"model": OAuthError, "description": "Unknown client or wrong secret."},
}

SECURITY_SCHEMES = {
    "BearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key, an access token from /v1/oauth/tokens, or a token of the trusted OIDC issuer.",
    },
    "ApiKeyAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key (the alternative to sending it as a bearer token).",
    },
    "OAuth2": {
        "type": "oauth2",
        "description": "OAuth2 client credentials, exchanged for an access token at /v1/oauth/tokens.",
        "flows": {"clientCredentials": {"tokenUrl": "/v1/oauth/tokens", "scopes": {}}},
    },
}
SECURITY: list[dict[str, list[str]]] = [{"BearerAuth": []}, {"ApiKeyAuth": []}, {"OAuth2": []}]


def _authenticates(dependant: Dependant) -> bool:
    return any(dep.call is get_principal or _authenticates(dep) for dep in dependant.dependencies)


def install_openapi_security(app: FastAPI) -> None:
    """Document how to authenticate (Swagger UI's "Authorize" then works), on exactly the
    operations that depend on :func:`catalog.auth.deps.get_principal`."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            for route in api_routes(app):
                if _authenticates(route.dependant):
                    for method in route.methods or ():
                        operation = document["paths"].get(route.path, {}).get(method.lower())
                        if operation is not None:
                            operation["security"] = SECURITY
        return app.openapi_schema  # type: ignore[return-value]  # set by generate()

    app.openapi = openapi  # type: ignore[method-assign]


def install_doc_pages(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` and ReDoc at ``/redoc``, with their assets from this package."""
    assert app.openapi_url is not None, "the pages render /openapi.json"
    openapi_url = app.openapi_url
    app.mount(STATIC_URL, StaticFiles(directory=str(ASSETS)), name="api-docs-static")

    # GET and HEAD, like FastAPI's own pages
    @app.api_route(SWAGGER_UI_URL, methods=["GET", "HEAD"], include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            # no badge image from the public validator service
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.api_route(OAUTH2_REDIRECT_URL, methods=["GET", "HEAD"], include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.api_route(REDOC_URL, methods=["GET", "HEAD"], include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
