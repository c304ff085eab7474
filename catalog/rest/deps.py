"""FastAPI dependencies shared by the REST routers: services, the warehouse of a prefix, bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, TypeVar, cast

import fastapi.routing
from fastapi import Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from pyiceberg.exceptions import ValidationError as IcebergValidationError
from starlette.concurrency import run_in_threadpool

from catalog import errors
from catalog.auth.authenticator import Authenticator
from catalog.authz.authorizer import Authorizer
from catalog.config import Settings
from catalog.persistence.store import CatalogStore, Page, Warehouse
from catalog.service.access import AccessService
from catalog.service.commit import CommitService
from catalog.service.credentials import CredentialService
from catalog.service.namespaces import NamespaceService
from catalog.service.tables import TableService
from catalog.service.views import ViewService
from catalog.storage.fileio import Storage

M = TypeVar("M", bound=BaseModel)


@dataclass
class Services:
    settings: Settings
    store: CatalogStore
    storage: Storage
    authenticator: Authenticator
    authorizer: Authorizer
    access: AccessService
    namespaces: NamespaceService
    tables: TableService
    commits: CommitService
    views: ViewService
    credentials: CredentialService


async def get_services(request: Request) -> Services:  # async: no thread-pool hop for an attribute read
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_warehouse(prefix: str, services: ServicesDep) -> Warehouse:
    # A known warehouse comes from the store's cache without a thread-pool hop; a lookup in the database runs in one.
    warehouse = services.store.cached_warehouse(prefix) or await run_in_threadpool(services.store.get_warehouse, prefix)
    if warehouse is None:
        raise errors.NoSuchWarehouse(f"Warehouse does not exist: {prefix}")
    return warehouse


WarehouseDep = Annotated[Warehouse, Depends(get_warehouse)]


async def raw_body(request: Request) -> bytes:
    return await request.body()


BodyDep = Annotated[bytes, Depends(raw_body)]


def parse_body(model: type[M], body: bytes) -> M:
    """Parse a JSON body into ``model``; any problem is a 400 in the spec's error model."""
    if not body:
        raise errors.BadRequest("Request body is required")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise errors.BadRequest(f"Invalid {model.__name__}: {problems}") from exc
    except (ValueError, TypeError, AttributeError, KeyError, IcebergValidationError) as exc:
        # PyIceberg's own "before" validators raise these raw on wrongly typed input, and its
        # transform parser its own ValidationError (e.g. "bucket[x]")
        raise errors.BadRequest(f"Invalid {model.__name__}: {exc}") from exc


def identifiers_page(levels: tuple[str, ...], page: Page) -> dict[str, object]:
    """A ListTablesResponse/ListViewsResponse body for one page of names in a namespace."""
    body: dict[str, object] = {"identifiers": [{"namespace": list(levels), "name": name} for name in page.items]}
    if page.next_token:
        body["next-page-token"] = page.next_token
    return body


def metadata_result(
    metadata_location: str | None,
    metadata_json: bytes,
    fields: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A LoadTableResult, LoadViewResult or CommitTableResponse spliced around the metadata file's
    own JSON bytes (cached by location), so no response re-serialises table or view metadata.
    A staged table has no metadata file yet: the spec's ``metadata-location`` is then left out
    (it is an optional string, not nullable)."""
    content = b"{"
    if metadata_location is not None:
        content += b'"metadata-location":' + json.dumps(metadata_location).encode() + b","
    content += b'"metadata":' + metadata_json
    for key, value in (fields or {}).items():
        content += b"," + json.dumps(key).encode() + b":" + json.dumps(value).encode()
    return Response(content=content + b"}", media_type="application/json", headers=headers)


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every API route of ``app`` as served: with the path and dependencies of its inclusion.

    FastAPI >= 0.16x keeps included routers lazily in ``app.routes``; ``iter_route_contexts``
    flattens them, and a route context answers for its route."""
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in flatten(app.routes) if flatten else app.routes:
        if isinstance(getattr(route, "original_route", route), APIRoute):
            yield cast(APIRoute, route)
