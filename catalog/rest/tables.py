"""Iceberg REST: table routes, rename, register, metrics and multi-table transactions."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status
from pydantic_core import from_json
from starlette.concurrency import run_in_threadpool

from catalog import errors
from catalog.auth.deps import CurrentPrincipal
from catalog.auth.principal import Principal
from catalog.authz.commits import commit_privileges, creates_table
from catalog.authz.model import Action, Privilege, Securable, SecurableType
from catalog.persistence.store import Warehouse
from catalog.rest.api_docs import error_responses
from catalog.rest.credentials import DelegationDep
from catalog.rest.deps import (
    BodyDep,
    Services,
    ServicesDep,
    WarehouseDep,
    identifiers_page,
    metadata_result,
    parse_body,
)
from catalog.rest.models import (
    CommitTableRequest,
    CommitTransactionRequest,
    CreateTableRequest,
    RegisterTableRequest,
    RenameTableRequest,
)
from catalog.rest.namespaces import PageSize, PageToken
from catalog.service.commit import TableChange
from catalog.service.credentials import TableAccess
from catalog.service.identifiers import check_entity_name, check_namespace, parse_namespace_path
from catalog.service.tables import LoadedTable
from catalog.storage.fileio import CachedMetadata

router = APIRouter(prefix="/v1/{prefix}", tags=["Tables"])

SnapshotMode = Literal["all", "refs"]


def _etag(metadata_location: str | None, mode: str) -> str:
    return '"' + hashlib.sha256(f"{metadata_location}|{mode}".encode()).hexdigest()[:40] + '"'


def _metadata_json(entry: CachedMetadata, mode: SnapshotMode) -> bytes:
    if mode == "all" or not entry.metadata.snapshots:
        return entry.json_bytes
    referenced = {ref.snapshot_id for ref in entry.metadata.refs.values()}
    trimmed = entry.metadata.model_copy(
        update={"snapshots": [s for s in entry.metadata.snapshots if s.snapshot_id in referenced]}
    )
    try:
        return trimmed.model_dump_json(exclude_none=True).encode()
    except NotImplementedError:  # format v3 (PyIceberg cannot serialise it): all snapshots, a superset
        return entry.json_bytes


def table_response(
    services: Services,
    warehouse: Warehouse,
    loaded: LoadedTable,
    mode: SnapshotMode = "all",
    etag: str | None = None,
    access: TableAccess | None = None,
) -> Response:
    """The LoadTableResult, spliced from the cached metadata bytes (no re-serialisation on the hot path).

    ``access``: what the client's ``X-Iceberg-Access-Delegation`` earned it (vended credentials or
    remote signing); without it, the storage settings every client may know.
    """
    fields: dict[str, object] = {
        "config": services.storage.client_config(warehouse.location) if access is None else access.config
    }
    if access is not None and access.storage_credentials:
        fields["storage-credentials"] = access.storage_credentials
    headers = {"ETag": etag} if etag else None
    return metadata_result(loaded.metadata_location, _metadata_json(loaded.entry, mode), fields, headers)


def authorize_commit(
    services: Services,
    principal: Principal,
    warehouse: Warehouse,
    levels: tuple[str, ...],
    name: str,
    request: CommitTableRequest,
) -> None:
    """A create through a commit needs CREATE on the namespace; otherwise what the update list needs."""
    if creates_table(request.requirements):
        services.authorizer.require(principal, Action.CREATE_TABLE, Securable.of_namespace(warehouse.id, levels))
        return
    needs: frozenset[Privilege] = commit_privileges(request.updates)
    services.authorizer.require(principal, needs, Securable.table(warehouse.id, levels, name))


@router.get("/namespaces/{namespace}/tables", summary="List the tables of a namespace")
def list_tables(
    principal: CurrentPrincipal,
    services: ServicesDep,
    warehouse: WarehouseDep,
    namespace: str,
    page_token: PageToken = None,
    page_size: PageSize = None,
) -> dict[str, object]:
    levels = parse_namespace_path(namespace)
    visible = services.authorizer.visible_names(principal, SecurableType.TABLE, warehouse.id, levels)
    page = services.tables.list(warehouse, levels, page_token, page_size, visible)
    return identifiers_page(levels, page)


@router.post(
    "/namespaces/{namespace}/tables", summary="Create a table (or stage its creation)", responses=error_responses(409)
)
def create_table(
    principal: CurrentPrincipal,
    services: ServicesDep,
    warehouse: WarehouseDep,
    namespace: str,
    body: BodyDep,
    delegation: DelegationDep,
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.CREATE_TABLE, Securable.of_namespace(warehouse.id, levels))
    request = parse_body(CreateTableRequest, body)
    loaded = services.tables.create(
        warehouse,
        levels,
        request.name,
        request.table_schema,
        location=request.location,
        partition_spec=request.partition_spec,
        sort_order=request.write_order,
        properties=request.properties,
        stage_only=request.stage_create,
    )
    access = delegation.for_table(
        services, warehouse, levels, request.name, loaded.entry.metadata, loaded.metadata_location
    )
    return table_response(services, warehouse, loaded, access=access)


@router.post(
    "/namespaces/{namespace}/register",
    summary="Register an existing metadata file as a table",
    responses=error_responses(409),
)
def register_table(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, namespace: str, body: BodyDep
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.REGISTER_TABLE, Securable.of_namespace(warehouse.id, levels))
    request = parse_body(RegisterTableRequest, body)
    if request.overwrite:  # replacing an existing table's metadata is dropping it
        target = Securable.table(warehouse.id, levels, check_entity_name(request.name))
        services.authorizer.require(principal, Action.DROP_TABLE, target)
    loaded = services.tables.register(
        warehouse, levels, request.name, request.metadata_location, overwrite=request.overwrite
    )
    return table_response(services, warehouse, loaded)


def _none_match_fails(if_none_match: str, etag: str) -> bool:
    """RFC 9110 13.1.2 for GET: ``*`` matches any current representation; weak comparison."""
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


@router.get("/namespaces/{namespace}/tables/{table}", summary="Load a table")
async def load_table(
    principal: CurrentPrincipal,
    services: ServicesDep,
    warehouse: WarehouseDep,
    namespace: str,
    table: str,
    delegation: DelegationDep,
    snapshots: Annotated[SnapshotMode, Query()] = "all",
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.LOAD_TABLE, Securable.table(warehouse.id, levels, table))
    # On the event loop: engines load a table for nearly every query (see TableService.load_async).
    loaded = await services.tables.load_async(warehouse, levels, table)
    etag = _etag(loaded.metadata_location, snapshots)
    if if_none_match is not None and _none_match_fails(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    access = None
    if delegation.modes.requested:  # may ask STS for credentials: in the thread pool
        access = await run_in_threadpool(
            delegation.for_table, services, warehouse, levels, table, loaded.entry.metadata, loaded.metadata_location
        )
    return table_response(services, warehouse, loaded, snapshots, etag, access)


@router.head("/namespaces/{namespace}/tables/{table}", status_code=204, summary="Check that a table exists")
async def table_exists(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, namespace: str, table: str
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.LOAD_TABLE, Securable.table(warehouse.id, levels, table))
    await services.tables.get_async(warehouse, levels, table)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/namespaces/{namespace}/tables/{table}",
    summary="Commit updates to a table",
    operation_id="updateTable",
    responses=error_responses(409),
)
def commit_table(
    principal: CurrentPrincipal,
    services: ServicesDep,
    warehouse: WarehouseDep,
    namespace: str,
    table: str,
    body: BodyDep,
) -> Response:
    levels, name = parse_namespace_path(namespace), check_entity_name(table)
    request = parse_body(CommitTableRequest, body)
    authorize_commit(services, principal, warehouse, levels, name, request)
    if request.identifier is not None and (
        tuple(request.identifier.namespace) != levels or request.identifier.name != name
    ):
        raise errors.BadRequest("The identifier in the body does not match the table in the path")
    change = TableChange(levels, name, request.requirements, request.updates)
    committed = services.commits.commit_table(warehouse, change)
    return metadata_result(committed.metadata_location, committed.entry.json_bytes)


@router.delete("/namespaces/{namespace}/tables/{table}", status_code=204, summary="Drop a table")
def drop_table(
    principal: CurrentPrincipal,
    services: ServicesDep,
    warehouse: WarehouseDep,
    namespace: str,
    table: str,
    purge_requested: Annotated[bool, Query(alias="purgeRequested")] = False,
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.DROP_TABLE, Securable.table(warehouse.id, levels, table))
    services.tables.drop(warehouse, levels, table, purge=purge_requested)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/namespaces/{namespace}/tables/{table}/unregister",
    summary="Unregister a table, keeping its data and metadata files",
    operation_id="unregisterTable",
)
def unregister_table(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, namespace: str, table: str
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.DROP_TABLE, Securable.table(warehouse.id, levels, table))
    unregistered = services.tables.unregister(warehouse, levels, table)
    return metadata_result(unregistered.metadata_location, unregistered.entry.json_bytes)


@router.post(
    "/tables/rename",
    status_code=204,
    summary="Rename a table, also across namespaces",
    responses=error_responses(409),
)
def rename_table(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, body: BodyDep
) -> Response:
    request = parse_body(RenameTableRequest, body)
    source = Securable.table(warehouse.id, check_namespace(request.source.namespace), request.source.name)
    destination = Securable.of_namespace(warehouse.id, check_namespace(request.destination.namespace))
    services.authorizer.require(principal, Action.RENAME_FROM, source)
    services.authorizer.require(principal, Action.RENAME_TO, destination)
    services.tables.rename(
        warehouse,
        (tuple(request.source.namespace), request.source.name),
        (tuple(request.destination.namespace), request.destination.name),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/namespaces/{namespace}/tables/{table}/metrics", status_code=204, summary="Accept a scan or commit metrics report"
)
async def report_metrics(  # Spark sends one per query, while it plans: on the event loop
    principal: CurrentPrincipal,
    services: ServicesDep,
    warehouse: WarehouseDep,
    namespace: str,
    table: str,
    body: BodyDep,
) -> Response:
    levels = parse_namespace_path(namespace)
    services.authorizer.require(principal, Action.REPORT_METRICS, Securable.table(warehouse.id, levels, table))
    try:
        report = from_json(body or b"{}")  # jiter: too deep a nesting is a ValueError, not a RecursionError
    except ValueError as exc:
        raise errors.BadRequest(f"Invalid metrics report: {exc}") from exc
    if not isinstance(report, dict):
        raise errors.BadRequest("Invalid metrics report: expected a JSON object")
    await services.tables.get_async(warehouse, levels, table)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/transactions/commit",
    status_code=204,
    summary="Commit updates to several tables atomically",
    responses=error_responses(409),
)
def commit_transaction(
    principal: CurrentPrincipal, services: ServicesDep, warehouse: WarehouseDep, body: BodyDep
) -> Response:
    request = parse_body(CommitTransactionRequest, body)
    if not request.table_changes:
        raise errors.BadRequest("A transaction needs at least one table change")
    changes = []
    for item in request.table_changes:
        if item.identifier is None:
            raise errors.BadRequest("Every table change of a transaction needs an identifier")
        levels, name = check_namespace(item.identifier.namespace), check_entity_name(item.identifier.name)
        authorize_commit(services, principal, warehouse, levels, name, item)
        changes.append(TableChange(levels, name, item.requirements, item.updates))
    services.commits.commit_transaction(warehouse, changes)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
