"""/api/v1 tables: list the tables a caller may see, and resolve snapshots to physical URIs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from catalog.auth.deps import AuthorizerDep, CurrentPrincipal
from catalog.auth.principal import Principal
from catalog.authz.authorizer import Authorizer
from catalog.authz.model import Action, Securable, SecurableType
from catalog.persistence.table_index import TableFilter
from catalog.rest.deps import ServicesDep
from catalog.service.detached import DetachedService
from datlake_ext.deps import NEXT_PAGE_HEADER, DetachedDep
from datlake_ext.schemas import SnapshotDetail, SnapshotItem, TableItem

router = APIRouter(prefix="/api/v1", tags=["Detached mode"])

PageToken = Annotated[str | None, Query(description="`X-Next-Page-Token` of the previous page.")]
PageSize = Annotated[int | None, Query(ge=1, le=10000, description="At most this many items (default: all).")]


def _require_select(principal: Principal, authorizer: Authorizer, detached: DetachedService, table_name: str) -> None:
    namespace, name = detached.resolve_name(table_name)
    authorizer.require(principal, Action.LOAD_TABLE, Securable.table(detached.warehouse().id, namespace, name))


@router.get(
    "/tables",
    summary="List the tables the caller may see, with their latest snapshot ids",
    operation_id="listDetachedTables",
)
def list_tables(
    principal: CurrentPrincipal,
    authorizer: AuthorizerDep,
    detached: DetachedDep,
    response: Response,
    page_token: PageToken = None,
    page_size: PageSize = None,
) -> list[TableItem]:
    visibility = authorizer.visibility(principal, SecurableType.TABLE, detached.warehouse().id)
    only = TableFilter(visibility.everything, visibility.namespaces, visibility.entities)
    page = detached.list_tables(only, page_token, page_size)
    if page.next_page_token:
        response.headers[NEXT_PAGE_HEADER] = page.next_page_token
    return [TableItem.of(table) for table in page.tables]


@router.get(
    "/tables/{table_name}/snapshots/latest",
    summary="The current snapshot of a table and the URI to read it directly",
    response_model_by_alias=True,
)
def latest_snapshot(
    table_name: str,
    principal: CurrentPrincipal,
    authorizer: AuthorizerDep,
    detached: DetachedDep,
    services: ServicesDep,
    access: Annotated[
        Literal["direct", "presigned"], Query(description="`presigned`: add expiring URLs of the data files.")
    ] = "direct",
    expires_in: Annotated[int | None, Query(ge=1, description="Lifetime of presigned URLs in seconds.")] = None,
) -> SnapshotDetail:
    _require_select(principal, authorizer, detached, table_name)
    detail = SnapshotDetail.of(detached.latest(table_name))
    if access == "presigned":
        snapshot_id = int(detail.snapshot_id)
        presigned = services.credentials.presign_snapshot(detail.metadata_location, snapshot_id, expires_in)
        detail.presigned_urls, detail.presigned_urls_expire_at = presigned.urls, presigned.expires_at
    return detail


@router.get("/tables/{table_name}/snapshots", summary="The snapshots of a table, newest first")
def list_snapshots(
    table_name: str,
    principal: CurrentPrincipal,
    authorizer: AuthorizerDep,
    detached: DetachedDep,
    response: Response,
    page_token: PageToken = None,
    page_size: PageSize = None,
) -> list[SnapshotItem]:
    _require_select(principal, authorizer, detached, table_name)
    history = detached.history(table_name)
    start = 0
    if page_token:
        start = next((i + 1 for i, s in enumerate(history) if str(s.snapshot_id) == page_token), len(history))
    page = history[start : start + page_size if page_size is not None else None]
    if page_size is not None and start + page_size < len(history):
        response.headers[NEXT_PAGE_HEADER] = str(page[-1].snapshot_id)
    return [SnapshotItem.of(entry) for entry in page]


@router.get(
    "/tables/{table_name}/snapshots/{snapshot_id}",
    summary="One snapshot of a table and the URI to read it directly",
    response_model_by_alias=True,
)
def get_snapshot(
    table_name: str,
    snapshot_id: int,
    principal: CurrentPrincipal,
    authorizer: AuthorizerDep,
    detached: DetachedDep,
) -> SnapshotDetail:
    _require_select(principal, authorizer, detached, table_name)
    return SnapshotDetail.of(detached.snapshot(table_name, snapshot_id))
