"""The application factory: wires settings, database, storage and services into one FastAPI app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog import errors
from catalog.audit import AuditMiddleware
from catalog.auth.deps import get_principal
from catalog.auth.setup import announce, build_access_control
from catalog.config import Settings
from catalog.observability import RequestContext
from catalog.persistence.database import ensure_schema, make_engine
from catalog.persistence.entity_reader import AsyncEntityReader
from catalog.persistence.store import CatalogStore
from catalog.rest import config as config_routes
from catalog.rest import credentials as credential_routes
from catalog.rest import health as health_routes
from catalog.rest import namespaces as namespace_routes
from catalog.rest import oauth as oauth_routes
from catalog.rest import tables as table_routes
from catalog.rest import views as view_routes
from catalog.rest.api_docs import (
    DATLAKE_ERRORS,
    DESCRIPTION,
    ICEBERG_ERRORS,
    OPENAPI_TAGS,
    install_doc_pages,
    install_openapi_security,
)
from catalog.rest.deps import Services
from catalog.rest.middleware import BodySizeLimit, IdempotencyKeys
from catalog.service.commit import CommitService
from catalog.service.credentials import CredentialService
from catalog.service.namespaces import NamespaceService
from catalog.service.tables import TableService
from catalog.service.views import ViewService
from catalog.storage.fileio import Storage
from catalog.storage.s3 import access_for
from datlake_ext import admin as admin_routes
from datlake_ext.detached import install as install_detached_mode

log = logging.getLogger(__name__)

AUTHENTICATED = [Depends(get_principal)]

HTTP_ERROR_TYPES = {
    400: "BadRequestException",
    401: "NotAuthorizedException",
    403: "ForbiddenException",
    404: "NotFoundException",
    405: "MethodNotAllowedException",
    406: "UnsupportedOperationException",
    409: "AlreadyExistsException",
    413: "PayloadTooLargeException",
    415: "UnsupportedMediaTypeException",
    422: "UnprocessableEntityException",
}


def build_services(settings: Settings) -> Services:
    """Open the database (migrating SQLite, checking PostgreSQL) and make sure the warehouse exists."""
    engine = make_engine(settings.resolved_database_url, settings.database_pool_size)
    ensure_schema(engine)
    store = CatalogStore(engine)
    store.ensure_warehouse(settings.warehouse_name, settings.resolved_warehouse)
    storage = Storage(settings)
    access_control = build_access_control(settings, store)
    entity_reader = (
        AsyncEntityReader(engine, settings.database_read_pool_size) if engine.dialect.name == "postgresql" else None
    )
    return Services(
        settings=settings,
        store=store,
        storage=storage,
        authenticator=access_control.authenticator,
        authorizer=access_control.authorizer,
        access=access_control.access,
        namespaces=NamespaceService(store),
        tables=TableService(store, storage, entity_reader),
        commits=CommitService(store, storage),
        views=ViewService(store, storage),
        credentials=CredentialService(settings, store, storage, access_for(settings)),
    )


def _error_response(status_code: int, error_type: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status_code, content=errors.error_body(status_code, error_type, message))


def install_error_handlers(app: FastAPI) -> None:
    """Every failure leaves as ``{"error": {"message", "type", "code"}}``."""

    @app.exception_handler(errors.CatalogError)
    async def _catalog_error(_request: Request, exc: errors.CatalogError) -> JSONResponse:
        response = _error_response(exc.status_code, exc.error_type, exc.message)
        if exc.status_code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="datlake"'
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}" for err in exc.errors()[:5]
        )
        status = 400 if request.url.path.startswith("/v1/") else 422
        return _error_response(status, HTTP_ERROR_TYPES[status], f"Invalid request: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_type = HTTP_ERROR_TYPES.get(exc.status_code, "RESTException")
        return _error_response(exc.status_code, error_type, str(exc.detail))

    @app.exception_handler(DataError)
    async def _invalid_data(_request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value from the request (PostgreSQL: NUL bytes in text, overlong keys).
        return _error_response(400, "BadRequestException", f"Invalid value in request: {exc.orig}")

    @app.exception_handler(OperationalError)
    async def _database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # The database went away during the request (restart, network, failover): the client may retry.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc.orig).__name__)
        return _error_response(503, "ServiceUnavailableException", "The catalog database is unavailable")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error_response(500, "InternalServerError", f"Internal error: {type(exc).__name__}")


def operation_id(route: APIRoute) -> str:
    """OpenAPI operationId of a route without one: its function's name in camelCase (the Iceberg
    spec's own ids, e.g. ``listNamespaces``; routes whose name differs set theirs)."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the catalog app. Services are created eagerly so a misconfigured server fails at start."""
    settings = settings or Settings()
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config_routes.served_endpoints(app)
        callers = services.authenticator.store.callers
        callers.start()
        reader = services.tables.entity_reader
        if reader is not None:
            await reader.open()  # its connections belong to this event loop
        yield
        if reader is not None:
            await reader.close()
        callers.stop()
        detached.close()
        services.store.engine.dispose()

    app = FastAPI(
        title="Datlake Catalog",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        openapi_url="/openapi.json" if settings.api_docs_enabled else None,
        docs_url=None,  # served from local assets by install_doc_pages, not from a CDN
        redoc_url=None,
        generate_unique_id_function=operation_id,
        lifespan=lifespan,
    )
    app.state.services = services
    announce(settings, services.access)
    install_error_handlers(app)
    app.include_router(health_routes.router)
    app.include_router(oauth_routes.router)
    # Every catalog route authenticates first (401 before anything else); routes then authorize.
    for routes in (config_routes, namespace_routes, table_routes, credential_routes, view_routes):
        app.include_router(routes.router, dependencies=AUTHENTICATED, responses=ICEBERG_ERRORS)
    app.include_router(admin_routes.router, dependencies=AUTHENTICATED, responses=DATLAKE_ERRORS)
    detached = install_detached_mode(app, services)  # /api/v1 tables and register-snapshot jobs
    install_openapi_security(app)
    if settings.api_docs_enabled:
        install_doc_pages(app)
    app.add_middleware(IdempotencyKeys, store=services.store, lifetime_seconds=settings.idempotency_lifetime_seconds)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(AuditMiddleware, sink=services.access.access)
    app.add_middleware(RequestContext)  # outermost: every response carries a request id
    return app
