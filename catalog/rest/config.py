"""Iceberg REST: ``GET /v1/config``, the first call of every client."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from catalog import errors
from catalog.persistence.store import Warehouse
from catalog.rest.deps import Services, ServicesDep, api_routes

router = APIRouter(prefix="/v1", tags=["Configuration"])


def served_endpoints(app: FastAPI) -> list[str]:
    """Every ``METHOD /v1/{prefix}/...`` route this app serves, as the spec's endpoint strings.

    Worked out once (the routes do not change once the app serves) and at start by the app's
    lifespan: flattening FastAPI's routes takes tens of milliseconds, too long for a client's
    first call to wait."""
    state = app.state
    if getattr(state, "served_endpoints", None) is None:
        state.served_endpoints = [
            f"{method} {route.path}"
            for route in api_routes(app)
            if route.path.startswith("/v1/{prefix}/")
            for method in sorted(route.methods or ())
        ]
    endpoints: list[str] = state.served_endpoints
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
        "endpoints": served_endpoints(request.app),
        "idempotency-key-lifetime": f"PT{settings.idempotency_lifetime_seconds}S",
    }
