"""Iceberg REST: view routes (list, create, load, replace, drop, exists, rename, register)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pyiceberg.schema import Schema
from pyiceberg.view.metadata import ViewVersion

from catalog import errors
from catalog.auth.deps import CurrentPrincipal
from catalog.authz.model import Action, Securable, SecurableType
from catalog.rest.api_docs import error_responses
from catalog.rest.deps import BodyDep, ServicesDep, WarehouseDep, identifiers_page, metadata_result, parse_body
from catalog.rest.models import RenameTableRequest, TableIdentifierBody
from catalog.rest.namespaces import PageSize, PageToken
from catalog.service.identifiers import check_entity_name, check_namespace, parse_namespace_path
from catalog.service.views import AssertViewUUID, LoadedView, ViewUpdate

router = APIRouter(prefix="/v1/{prefix}", tags=["Views"])


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


def _properties_to_str(value: object) -> object:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items()}
    return value


class CreateViewRequest(_Body):
    name: str
    location: str | None = None
    view_schema: Schema = Field(alias="schema")
    view_version: ViewVersion = Field(alias="view-version")
    properties: dict[str, str] = Field(default_factory=dict)

    _props = field_validator("properties", mode="before")(lambda cls, v: _properties_to_str(v))


class CommitViewRequest(_Body):
    identifier: TableIdentifierBody | None = None
    requirements: list[AssertViewUUID] = Field(default_factory=list)
    updates: list[ViewUpdate]


class RegisterViewRequest(_Body):
    name: str
    metadata_location: str = Field(alias="metadata-location")


def view_response(loaded: LoadedView) -> Response:
    """The LoadViewResult, spliced from the metadata file's JSON (no re-serialisation)."""
    return metadata_result(loaded.metadata_location, loaded.json_bytes, {"config": {}})


@router.get("/namespaces/{namespace}/views", summary="List the views of a namespace")
def list_views(
    principal: CurrentPrincipal,
    services: ServicesDep,
    warehouse: WarehouseDep,
    namespace: str,
    page_token: PageToken = None,
    page_size: PageSize = None,
) -> dict[str, object]:
    levels = parse_namespace_path(namespace)
    visible = services.authorizer.visible_names(principal, SecurableType.VIEW, warehouse.id, levels)
    page = services.views.list(warehouse, levels, page_token, page_size, visible)
    return identifiers_page(levels, page)


@router.post("/namespaces/{namespace}/views", summary="Create a view", responses=error_responses(409))
def create_view(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, namespace: str, body: BodyDep
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.CREATE_VIEW, Securable.of_namespace(warehouse.id, levels))
    request = parse_body(CreateViewRequest, body)
    loaded = services.views.create(
        warehouse,
        levels,
        request.name,
        request.view_schema,
        request.view_version,
        location=request.location,
        properties=request.properties,
    )
    return view_response(loaded)


@router.post(
    "/namespaces/{namespace}/register-view",
    summary="Register an existing metadata file as a view",
    responses=error_responses(409),
)
def register_view(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, namespace: str, body: BodyDep
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.CREATE_VIEW, Securable.of_namespace(warehouse.id, levels))
    request = parse_body(RegisterViewRequest, body)
    loaded = services.views.register(warehouse, levels, request.name, request.metadata_location)
    return view_response(loaded)


@router.get("/namespaces/{namespace}/views/{view}", summary="Load a view")
def load_view(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, namespace: str, view: str
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.LOAD_VIEW, Securable.view(warehouse.id, levels, view))
    return view_response(services.views.load(warehouse, levels, view))


@router.head("/namespaces/{namespace}/views/{view}", status_code=204, summary="Check that a view exists")
def view_exists(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, namespace: str, view: str
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.LOAD_VIEW, Securable.view(warehouse.id, levels, view))
    services.views.get(warehouse, levels, view)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/namespaces/{namespace}/views/{view}",
    summary="Replace a view (commit view updates)",
    responses=error_responses(409),
)
def replace_view(
    principal: CurrentPrincipal,
    services: ServicesDep,
    warehouse: WarehouseDep,
    namespace: str,
    view: str,
    body: BodyDep,
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.REPLACE_VIEW, Securable.view(warehouse.id, levels, view))
    request = parse_body(CommitViewRequest, body)
    if request.identifier is not None and (
        tuple(request.identifier.namespace) != levels or request.identifier.name != view
    ):
        raise errors.BadRequest("The identifier in the body does not match the view in the path")
    loaded = services.views.replace(warehouse, levels, check_entity_name(view), request.requirements, request.updates)
    return view_response(loaded)


@router.delete("/namespaces/{namespace}/views/{view}", status_code=204, summary="Drop a view")
def drop_view(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, namespace: str, view: str
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.DROP_VIEW, Securable.view(warehouse.id, levels, view))
    services.views.drop(warehouse, levels, view)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/views/rename", status_code=204, summary="Rename a view, also across namespaces", responses=error_responses(409)
)
def rename_view(principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, body: BodyDep) -> Response:
    request = parse_body(RenameTableRequest, body)
    source = Securable.view(warehouse.id, check_namespace(request.source.namespace), request.source.name)
    destination = Securable.of_namespace(warehouse.id, check_namespace(request.destination.namespace))
    services.authorizer.require(principal, Action.RENAME_FROM, source)
    services.authorizer.require(principal, Action.RENAME_TO, destination)
    services.views.rename(
        warehouse,
        (tuple(request.source.namespace), request.source.name),
        (tuple(request.destination.namespace), request.destination.name),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
