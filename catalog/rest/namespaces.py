"""Iceberg REST: namespace routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import AfterValidator

from catalog.auth.deps import CurrentPrincipal
from catalog.authz.model import Action, Securable
from catalog.rest.api_docs import error_responses
from catalog.rest.deps import BodyDep, ServicesDep, WarehouseDep, parse_body
from catalog.rest.models import CreateNamespaceRequest, UpdateNamespacePropertiesRequest
from catalog.service.identifiers import check_namespace, parse_namespace_path

router = APIRouter(prefix="/v1/{prefix}", tags=["Namespaces"])

MAX_PAGE_SIZE = 10_000
# The spec sets no maximum: pageSize is an upper bound, so a larger one is served as MAX_PAGE_SIZE.
PageSize = Annotated[
    int | None,
    Query(alias="pageSize", ge=1),
    AfterValidator(lambda size: min(size, MAX_PAGE_SIZE) if size is not None else None),
]
PageToken = Annotated[str | None, Query(alias="pageToken")]


@router.get("/namespaces", summary="List namespaces, optionally under a parent")
def list_namespaces(
    principal: CurrentPrincipal,
    services: ServicesDep,
    warehouse: WarehouseDep,
    parent: str | None = None,
    page_token: PageToken = None,
    page_size: PageSize = None,
) -> dict[str, object]:
    levels = parse_namespace_path(parent) if parent else ()
    visible = services.authorizer.visible_namespaces(principal, warehouse.id, levels)
    page = services.namespaces.list(warehouse, levels, page_token, page_size, visible)
    body: dict[str, object] = {"namespaces": [list(ns) for ns in page.items]}
    if page.next_token:
        body["next-page-token"] = page.next_token
    return body


@router.post("/namespaces", summary="Create a namespace", responses=error_responses(409))
def create_namespace(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, body: BodyDep
) -> dict[str, object]:
    request = parse_body(CreateNamespaceRequest, body)
    levels = check_namespace(request.namespace)
    services.authorizer.require(principal, Action.CREATE_NAMESPACE, Securable.of_namespace(warehouse.id, levels))
    created = services.namespaces.create(warehouse, request.namespace, request.properties)
    return {"namespace": list(created.levels), "properties": created.properties}


@router.get("/namespaces/{namespace}", summary="Load a namespace's properties", operation_id="loadNamespaceMetadata")
def load_namespace(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, namespace: str
) -> dict[str, object]:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.LOAD_NAMESPACE, Securable.of_namespace(warehouse.id, levels))
    row = services.namespaces.load(warehouse, levels)
    return {"namespace": list(row.levels), "properties": row.properties}


@router.head("/namespaces/{namespace}", status_code=204, summary="Check that a namespace exists")
def namespace_exists(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, namespace: str
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.LOAD_NAMESPACE, Securable.of_namespace(warehouse.id, levels))
    services.namespaces.load(warehouse, levels)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/namespaces/{namespace}", status_code=204, summary="Drop an empty namespace", responses=error_responses(409)
)
def drop_namespace(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, namespace: str
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.DROP_NAMESPACE, Securable.of_namespace(warehouse.id, levels))
    services.namespaces.drop(warehouse, levels)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/namespaces/{namespace}/properties",
    summary="Set or remove namespace properties",
    operation_id="updateProperties",
    responses=error_responses(422),
)
def update_namespace_properties(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, namespace: str, body: BodyDep
) -> dict[str, list[str]]:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.ALTER_NAMESPACE, Securable.of_namespace(warehouse.id, levels))
    request = parse_body(UpdateNamespacePropertiesRequest, body)
    updated, removed, missing = services.namespaces.update_properties(
        warehouse, levels, request.removals, request.updates
    )
    return {"updated": updated, "removed": removed, "missing": missing}
