"""Iceberg REST: table routes, rename, register, metrics and multi-table transactions."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status

from catalog import errors
from catalog.persistence.store import Warehouse
from catalog.rest.deps import BodyDep, Services, ServicesDep, WarehouseDep, parse_body
from catalog.rest.models import (
    CommitTableRequest,
    CommitTransactionRequest,
    CreateTableRequest,
    RegisterTableRequest,
    RenameTableRequest,
)
from catalog.rest.namespaces import PageSize, PageToken
from catalog.service.commit import TableChange
from catalog.service.identifiers import check_entity_name, check_namespace, parse_namespace_path
from catalog.service.tables import LoadedTable
from catalog.storage.fileio import CachedMetadata

router = APIRouter(prefix="/v1/{prefix}", tags=["Catalog API: tables"])

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
    return trimmed.model_dump_json(exclude_none=True).encode()


def table_response(
    services: Services, warehouse: Warehouse, loaded: LoadedTable, mode: SnapshotMode = "all", etag: str | None = None
) -> Response:
    """The LoadTableResult, spliced from the cached metadata bytes (no re-serialisation on the hot path)."""
    config = json.dumps(services.storage.client_config(warehouse.location)).encode()
    location = json.dumps(loaded.metadata_location).encode()
    content = b'{"metadata-location":' + location + b',"metadata":' + _metadata_json(loaded.entry, mode)
    content += b',"config":' + config + b"}"
    headers = {"ETag": etag} if etag else None
    return Response(content=content, media_type="application/json", headers=headers)


@router.get("/namespaces/{namespace}/tables", summary="List the tables of a namespace")
def list_tables(
    services: ServicesDep,
    warehouse: WarehouseDep,
    namespace: str,
    page_token: PageToken = None,
    page_size: PageSize = None,
) -> dict[str, object]:
    levels = parse_namespace_path(namespace)
    page = services.tables.list(warehouse, levels, page_token, page_size)
    body: dict[str, object] = {"identifiers": [{"namespace": list(levels), "name": name} for name in page.items]}
    if page.next_token:
        body["next-page-token"] = page.next_token
    return body


@router.post("/namespaces/{namespace}/tables", summary="Create a table (or stage its creation)")
def create_table(services: ServicesDep, warehouse: WarehouseDep, namespace: str, body: BodyDep) -> Response:
    request = parse_body(CreateTableRequest, body)
    loaded = services.tables.create(
        warehouse,
        parse_namespace_path(namespace),
        request.name,
        request.table_schema,
        location=request.location,
        partition_spec=request.partition_spec,
        sort_order=request.write_order,
        properties=request.properties,
        stage_only=request.stage_create,
    )
    return table_response(services, warehouse, loaded)


@router.post("/namespaces/{namespace}/register", summary="Register an existing metadata file as a table")
def register_table(services: ServicesDep, warehouse: WarehouseDep, namespace: str, body: BodyDep) -> Response:
    request = parse_body(RegisterTableRequest, body)
    loaded = services.tables.register(
        warehouse, parse_namespace_path(namespace), request.name, request.metadata_location, overwrite=request.overwrite
    )
    return table_response(services, warehouse, loaded)


@router.get("/namespaces/{namespace}/tables/{table}", summary="Load a table")
def load_table(
    services: ServicesDep,
    warehouse: WarehouseDep,
    namespace: str,
    table: str,
    snapshots: Annotated[SnapshotMode, Query()] = "all",
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    loaded = services.tables.load(warehouse, parse_namespace_path(namespace), table)
    etag = _etag(loaded.metadata_location, snapshots)
    if if_none_match is not None and etag in {tag.strip() for tag in if_none_match.split(",")}:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    return table_response(services, warehouse, loaded, snapshots, etag)


@router.head("/namespaces/{namespace}/tables/{table}", status_code=204, summary="Check that a table exists")
def table_exists(services: ServicesDep, warehouse: WarehouseDep, namespace: str, table: str) -> Response:
    services.tables.get(warehouse, parse_namespace_path(namespace), table)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/namespaces/{namespace}/tables/{table}", summary="Commit updates to a table")
def commit_table(services: ServicesDep, warehouse: WarehouseDep, namespace: str, table: str, body: BodyDep) -> Response:
    request = parse_body(CommitTableRequest, body)
    levels = parse_namespace_path(namespace)
    if request.identifier is not None and (
        tuple(request.identifier.namespace) != levels or request.identifier.name != table
    ):
        raise errors.BadRequest("The identifier in the body does not match the table in the path")
    change = TableChange(levels, check_entity_name(table), request.requirements, request.updates)
    committed = services.commits.commit_table(warehouse, change)
    content = (
        b'{"metadata-location":'
        + json.dumps(committed.metadata_location).encode()
        + b',"metadata":'
        + committed.entry.json_bytes
        + b"}"
    )
    return Response(content=content, media_type="application/json")


@router.delete("/namespaces/{namespace}/tables/{table}", status_code=204, summary="Drop a table")
def drop_table(
    services: ServicesDep,
    warehouse: WarehouseDep,
    namespace: str,
    table: str,
    purge_requested: Annotated[bool, Query(alias="purgeRequested")] = False,
) -> Response:
    services.tables.drop(warehouse, parse_namespace_path(namespace), table, purge=purge_requested)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/tables/rename", status_code=204, summary="Rename a table, also across namespaces")
def rename_table(services: ServicesDep, warehouse: WarehouseDep, body: BodyDep) -> Response:
    request = parse_body(RenameTableRequest, body)
    services.tables.rename(
        warehouse,
        (tuple(request.source.namespace), request.source.name),
        (tuple(request.destination.namespace), request.destination.name),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/namespaces/{namespace}/tables/{table}/metrics", status_code=204, summary="Accept a scan or commit metrics report"
)
def report_metrics(
    services: ServicesDep, warehouse: WarehouseDep, namespace: str, table: str, body: BodyDep
) -> Response:
    try:
        report = json.loads(body or b"{}")
    except ValueError as exc:
        raise errors.BadRequest(f"Invalid metrics report: {exc}") from exc
    if not isinstance(report, dict):
        raise errors.BadRequest("Invalid metrics report: expected a JSON object")
    services.tables.get(warehouse, parse_namespace_path(namespace), table)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/transactions/commit", status_code=204, summary="Commit updates to several tables atomically")
def commit_transaction(services: ServicesDep, warehouse: WarehouseDep, body: BodyDep) -> Response:
    request = parse_body(CommitTransactionRequest, body)
    if not request.table_changes:
        raise errors.BadRequest("A transaction needs at least one table change")
    changes = []
    for item in request.table_changes:
        if item.identifier is None:
            raise errors.BadRequest("Every table change of a transaction needs an identifier")
        changes.append(
            TableChange(
                check_namespace(item.identifier.namespace),
                check_entity_name(item.identifier.name),
                item.requirements,
                item.updates,
            )
        )
    services.commits.commit_transaction(warehouse, changes)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
