"""Iceberg REST access delegation: ``GET .../tables/{table}/credentials``, ``POST .../tables/{table}/sign``,
and the ``X-Iceberg-Access-Delegation`` handling that loadTable/createTable share.

The caller is authorized before anything is looked up or signed; what is vended or signed
follows from the caller's privileges on the table (see :mod:`catalog.service.credentials`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import Field
from pyiceberg.table.metadata import TableMetadata

from catalog import errors
from catalog.auth.deps import CurrentPrincipal
from catalog.auth.principal import Principal
from catalog.authz.model import Action, Securable
from catalog.persistence.store import Warehouse
from catalog.rest.api_docs import error_responses
from catalog.rest.deps import BodyDep, Services, ServicesDep, WarehouseDep, parse_body
from catalog.rest.models import _Body
from catalog.service.credentials import Delegation, SignedRequest, TableAccess, TableRoutes, access_level
from catalog.service.identifiers import check_entity_name, parse_namespace_path

router = APIRouter(prefix="/v1/{prefix}", tags=["Access delegation"])


@dataclass(frozen=True)
class DelegationRequest:
    """The delegation a client asked for, with the caller it is decided for."""

    modes: Delegation
    principal: Principal

    def for_table(
        self,
        services: Services,
        warehouse: Warehouse,
        namespace: tuple[str, ...],
        name: str,
        metadata: TableMetadata,
        metadata_location: str | None,
    ) -> TableAccess | None:
        """The ``config``/``storage-credentials`` of a LoadTableResult (None: no delegation asked for)."""
        if not self.modes.requested:
            return None
        securable = Securable.table(warehouse.id, namespace, name)
        level = access_level(services.authorizer, self.principal, securable)
        routes = TableRoutes.of(warehouse.name, namespace, name)
        return services.credentials.table_access(warehouse, metadata, metadata_location, level, self.modes, routes)


async def requested_delegation(  # async: parsing a header needs no thread-pool hop
    principal: CurrentPrincipal,
    x_iceberg_access_delegation: Annotated[str | None, Header()] = None,
) -> DelegationRequest:
    return DelegationRequest(Delegation.parse(x_iceberg_access_delegation), principal)


DelegationDep = Annotated[DelegationRequest, Depends(requested_delegation)]


class RemoteSignRequest(_Body):
    region: str
    uri: str
    method: str
    headers: dict[str, list[str]] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    provider: str | None = None


@router.get("/namespaces/{namespace}/tables/{table}/credentials", summary="Load vended credentials for a table")
def load_credentials(
    principal: CurrentPrincipal,
    services: ServicesDep,
    warehouse: WarehouseDep,
    namespace: str,
    table: str,
    plan_id: Annotated[str | None, Query(alias="planId")] = None,
) -> dict[str, object]:
    """Read-only credentials for SELECT, read-write for INSERT/UPDATE/DELETE; 403 for anyone else."""
    levels = parse_namespace_path(namespace)
    name = check_entity_name(table)
    securable = Securable.table(warehouse.id, levels, name)
    services.authorizer.require(principal, Action.LOAD_TABLE, securable)
    level = access_level(services.authorizer, principal, securable)
    loaded = services.tables.load(warehouse, levels, name)
    assert level is not None  # LOAD_TABLE is SELECT
    vended = services.credentials.storage_credentials(warehouse, loaded.entry.metadata, loaded.metadata_location, level)
    return {"storage-credentials": vended}


@router.post(
    "/namespaces/{namespace}/tables/{table}/sign",
    summary="Sign an S3 request for the table's own files",
    responses=error_responses(406),
)
def sign_request(
    principal: CurrentPrincipal,
    services: ServicesDep,
    warehouse: WarehouseDep,
    namespace: str,
    table: str,
    body: BodyDep,
) -> Response:
    levels = parse_namespace_path(namespace)
    name = check_entity_name(table)
    securable = Securable.table(warehouse.id, levels, name)
    services.authorizer.require(principal, Action.LOAD_TABLE, securable)  # nothing is signed without SELECT
    request = parse_body(RemoteSignRequest, body)
    if (request.provider or "s3").lower() != "s3":
        raise errors.BadRequest(f"Unsupported storage provider for signing: {request.provider}")
    if not services.credentials.signing_available(warehouse):
        raise errors.NotImplementedByCatalog(f"Remote signing is not available for warehouse {warehouse.name}")
    level = access_level(services.authorizer, principal, securable)
    loaded = services.tables.load(warehouse, levels, name)
    signed = SignedRequest(request.method, request.uri, request.headers, request.body)
    services.credentials.check_sign_request(warehouse, loaded.entry.metadata, loaded.metadata_location, level, signed)
    headers = services.credentials.sign(request.method, request.uri, request.headers, request.region)
    content = json.dumps({"uri": request.uri, "headers": headers}).encode()
    return Response(content=content, media_type="application/json", headers={"Cache-Control": "no-cache"})
