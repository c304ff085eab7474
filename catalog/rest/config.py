"""Iceberg REST: ``GET /v1/config``, the first call of every client."""

from __future__ import annotations

import fastapi.routing
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from catalog import errors
from catalog.persistence.store import Warehouse
from catalog.rest.deps import Services, ServicesDep

router = APIRouter(prefix="/v1", tags=["Configuration"])


def served_endpoints(request: Request) -> list[str]:
    """Every ``METHOD /v1/{prefix}/...`` route this app serves, as the spec's endpoint strings."""
    endpoints = []
    # FastAPI >= 0.16x keeps included routers lazily in app.routes; iter_route_contexts flattens them.
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in flatten(request.app.routes) if flatten else request.app.routes:
        original, path = getattr(route, "original_route", route), getattr(route, "path", None) or ""
        if isinstance(original, APIRoute) and path.startswith("/v1/{prefix}/"):
            for method in sorted(getattr(route, "methods", None) or ()):
                endpoints.append(f"{method} {path}")
    return endpoints


def _find_warehouse(services: Services, name: str) -> Warehouse | None:
    found = services.store.get_warehouse(name)
    if found is None:
        # Clients often pass the warehouse location rather than its name.
        found = next((w for w in services.store.list_warehouses() if w.location == name.rstrip("/")), None)
    return found


# async, and the database only on a cache miss: this is every client's first call, so it should not
# wait for a thread-pool hop.
@router.get("/config", summary="Catalog configuration for a warehouse")
async def get_config(request: Request, services: ServicesDep, warehouse: str | None = None) -> dict[str, object]:
    settings = services.settings
    name = warehouse or settings.warehouse_name
    if "\x00" in name:
        raise errors.BadRequest("Invalid warehouse name: it contains a NUL character")
    found = services.store.cached_warehouse(name) or await run_in_threadpool(_find_warehouse, services, name)
    if found is None:
        raise errors.NoSuchWarehouse(f"Warehouse does not exist: {name}")
    return {
        "defaults": services.storage.client_config(found.location),
        "overrides": {"prefix": found.name},
        "endpoints": served_endpoints(request),
        "idempotency-key-lifetime": f"PT{settings.idempotency_lifetime_seconds}S",
    }
