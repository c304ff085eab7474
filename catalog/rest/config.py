"""Iceberg REST: ``GET /v1/config``, the first call of every client."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute

from catalog import errors
from catalog.rest.deps import ServicesDep

router = APIRouter(prefix="/v1", tags=["Configuration API"])


def served_endpoints(request: Request) -> list[str]:
    """Every ``METHOD /v1/{prefix}/...`` route this app serves, as the spec's endpoint strings."""
    endpoints = []
    for route in request.app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/v1/{prefix}/"):
            for method in sorted(route.methods or ()):
                endpoints.append(f"{method} {route.path}")
    return endpoints


@router.get("/config", summary="Catalog configuration for a warehouse")
def get_config(request: Request, services: ServicesDep, warehouse: str | None = None) -> dict[str, object]:
    settings = services.settings
    name = warehouse or settings.warehouse_name
    found = services.store.get_warehouse(name)
    if found is None:
        # Clients often pass the warehouse location rather than its name.
        found = next((w for w in services.store.list_warehouses() if w.location == name.rstrip("/")), None)
    if found is None:
        raise errors.BadRequest(f"Unknown warehouse: {name}")
    return {
        "defaults": services.storage.client_config(found.location),
        "overrides": {"prefix": found.name},
        "endpoints": served_endpoints(request),
        "idempotency-key-lifetime": f"PT{settings.idempotency_lifetime_seconds}S",
    }
