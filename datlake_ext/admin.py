"""``/api/v1/admin``: principals, their credentials, roles and grants.

Everything needs ADMIN on the default warehouse's catalog, except grant management, which needs
MANAGE_GRANTS on the securable (ADMIN covers it). Secrets (client secret, API key) appear in a
response exactly once, when created. ``datlake admin ...`` does the same operations locally.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from catalog import audit, errors
from catalog.auth.deps import AuthorizerDep, CurrentPrincipal
from catalog.authz.model import Action, Privilege, Securable
from catalog.persistence.access_store import CredentialRow, PrincipalRow, RoleRow
from catalog.service.access import MAX_API_KEY_LIFETIME_SECONDS, AccessService

router = APIRouter(prefix="/api/v1/admin", tags=["Admin"])


def get_access(request: Request) -> AccessService:
    access: AccessService = request.app.state.services.access
    return access


AccessDep = Annotated[AccessService, Depends(get_access)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreatePrincipalRequest(_Body):
    name: str = Field(min_length=1, max_length=255)
    type: Literal["user", "service"] = "user"


class UpdatePrincipalRequest(_Body):
    enabled: bool


class CreateApiKeyRequest(_Body):
    expires_in_seconds: int | None = Field(
        default=None, gt=0, le=MAX_API_KEY_LIFETIME_SECONDS, description="Unset: the key does not expire."
    )


class CreateRoleRequest(_Body):
    name: str = Field(min_length=1, max_length=255)


class SecurableBody(_Body):
    type: Literal["catalog", "namespace", "table", "view"]
    name: str | list[str] | None = Field(
        default=None, description='Dotted ("ns.sub.table") or a list of parts; for a catalog, its warehouse.'
    )


class GrantRequest(_Body):
    privilege: str
    securable: SecurableBody
    warehouse: str | None = Field(default=None, description="Warehouse name; unset: the default warehouse.")


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _principal(row: PrincipalRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "type": row.type,
        "enabled": row.enabled,
        "roles": list(row.roles),
        "created_at": _time(row.created_at),
    }


def _key(row: CredentialRow) -> dict[str, Any]:
    return {
        "key_id": row.id,
        "prefix": row.prefix,
        "created_at": _time(row.created_at),
        "expires_at": _time(row.expires_at),
        "revoked_at": _time(row.revoked_at),
    }


def _role(row: RoleRow) -> dict[str, Any]:
    return {"name": row.name, "members": list(row.members), "created_at": _time(row.created_at)}


# --- principals -----------------------------------------------------------------------------------


@router.post("/principals", status_code=201, summary="Create a principal with OAuth2 client credentials")
def create_principal(
    principal: CurrentPrincipal, authorizer: AuthorizerDep, access: AccessDep, body: CreatePrincipalRequest
) -> dict[str, Any]:
    authorizer.require_admin(principal)
    audit.describe("CREATE_PRINCIPAL", f"principal {body.name}")
    created = access.create_principal(body.name, body.type)
    return {
        "name": created.name,
        "type": created.type,
        "client_id": created.client_id,
        "client_secret": created.client_secret,
    }


@router.get("/principals", summary="List principals")
def list_principals(principal: CurrentPrincipal, authorizer: AuthorizerDep, access: AccessDep) -> dict[str, Any]:
    authorizer.require_admin(principal)
    return {"principals": [_principal(row) for row in access.list_principals()]}


@router.get("/principals/{name}", summary="Show a principal")
def get_principal(
    name: str, principal: CurrentPrincipal, authorizer: AuthorizerDep, access: AccessDep
) -> dict[str, Any]:
    authorizer.require_admin(principal)
    return _principal(access.principal(name))


@router.patch("/principals/{name}", summary="Enable or disable a principal (takes effect on its next request)")
def update_principal(
    name: str, principal: CurrentPrincipal, authorizer: AuthorizerDep, access: AccessDep, body: UpdatePrincipalRequest
) -> dict[str, Any]:
    authorizer.require_admin(principal)
    audit.describe("ENABLE_PRINCIPAL" if body.enabled else "DISABLE_PRINCIPAL", f"principal {name}")
    if not body.enabled and name == principal.name:
        raise errors.BadRequest("A principal cannot disable itself")
    return _principal(access.set_enabled(name, body.enabled))


@router.post("/principals/{name}/api-keys", status_code=201, summary="Create an API key (shown once)")
def create_api_key(
    name: str,
    principal: CurrentPrincipal,
    authorizer: AuthorizerDep,
    access: AccessDep,
    body: CreateApiKeyRequest | None = None,
) -> dict[str, Any]:
    authorizer.require_admin(principal)
    audit.describe("CREATE_API_KEY", f"principal {name}")
    created = access.create_api_key(name, body.expires_in_seconds if body else None)
    return {"key_id": created.key_id, "api_key": created.api_key, "expires_at": _time(created.expires_at)}


@router.get("/principals/{name}/api-keys", summary="List a principal's API keys (ids and prefixes only)")
def list_api_keys(
    name: str, principal: CurrentPrincipal, authorizer: AuthorizerDep, access: AccessDep
) -> dict[str, Any]:
    authorizer.require_admin(principal)
    return {"api_keys": [_key(row) for row in access.list_api_keys(name)]}


@router.delete(
    "/principals/{name}/api-keys/{key_id}", status_code=204, summary="Revoke an API key (fails on its next use)"
)
def revoke_api_key(
    name: str, key_id: str, principal: CurrentPrincipal, authorizer: AuthorizerDep, access: AccessDep
) -> Response:
    authorizer.require_admin(principal)
    audit.describe("REVOKE_API_KEY", f"principal {name} key {key_id}")
    access.revoke_api_key(name, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- roles ----------------------------------------------------------------------------------------


@router.post("/roles", status_code=201, summary="Create a role")
def create_role(
    principal: CurrentPrincipal, authorizer: AuthorizerDep, access: AccessDep, body: CreateRoleRequest
) -> dict[str, Any]:
    authorizer.require_admin(principal)
    audit.describe("CREATE_ROLE", f"role {body.name}")
    return _role(access.create_role(body.name))


@router.get("/roles", summary="List roles and their members")
def list_roles(principal: CurrentPrincipal, authorizer: AuthorizerDep, access: AccessDep) -> dict[str, Any]:
    authorizer.require_admin(principal)
    return {"roles": [_role(row) for row in access.list_roles()]}


@router.put("/roles/{role}/principals/{name}", status_code=204, summary="Give a role to a principal")
def add_member(
    role: str, name: str, principal: CurrentPrincipal, authorizer: AuthorizerDep, access: AccessDep
) -> Response:
    authorizer.require_admin(principal)
    audit.describe("GRANT_ROLE", f"role {role} to principal {name}")
    access.add_member(role, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/roles/{role}/principals/{name}", status_code=204, summary="Take a role from a principal")
def remove_member(
    role: str, name: str, principal: CurrentPrincipal, authorizer: AuthorizerDep, access: AccessDep
) -> Response:
    authorizer.require_admin(principal)
    audit.describe("REVOKE_ROLE", f"role {role} from principal {name}")
    access.remove_member(role, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- grants ---------------------------------------------------------------------------------------


def _grant_target(access: AccessService, body: GrantRequest) -> tuple[Securable, Any]:
    securable = access.securable(body.securable.type, body.securable.name, body.warehouse)
    return securable, access.grant_of(body.privilege, securable)


@router.post("/roles/{role}/grants", status_code=201, summary="Grant a privilege on a securable to a role")
def add_grant(
    role: str, principal: CurrentPrincipal, authorizer: AuthorizerDep, access: AccessDep, body: GrantRequest
) -> dict[str, Any]:
    securable, grant = _grant_target(access, body)
    authorizer.require(principal, Action.MANAGE_GRANTS, securable)
    audit.describe("GRANT", f"{grant.privilege} on {securable.describe()} to role {role}")
    access.grant(role, grant, securable)
    return {"role": role, **access.describe_grant(grant)}


@router.delete("/roles/{role}/grants", status_code=204, summary="Revoke a privilege (same body as granting)")
def remove_grant(
    role: str, principal: CurrentPrincipal, authorizer: AuthorizerDep, access: AccessDep, body: GrantRequest
) -> Response:
    securable, grant = _grant_target(access, body)
    authorizer.require(principal, Action.MANAGE_GRANTS, securable)
    audit.describe("REVOKE", f"{grant.privilege} on {securable.describe()} from role {role}")
    access.revoke(role, grant)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/roles/{role}/grants", summary="List a role's grants (those the caller may manage)")
def list_grants(role: str, principal: CurrentPrincipal, authorizer: AuthorizerDep, access: AccessDep) -> dict[str, Any]:
    manages = [g for g in principal.grants if g.privilege == Privilege.MANAGE_GRANTS.value]
    if not manages and not authorizer.is_allowed(principal, Action.ADMINISTER, Securable.catalog(0)):
        authorizer.require_admin(principal)  # records the denial and raises 403
    grants = [
        grant
        for grant in access.list_grants(role)
        if authorizer.is_allowed(principal, Action.MANAGE_GRANTS, Securable.of_grant(grant))
    ]
    return {"role": role, "grants": [access.describe_grant(grant) for grant in grants]}


# --- audit ----------------------------------------------------------------------------------------


@router.get("/audit", summary="Recent audit log entries, newest first")
def list_audit(
    principal: CurrentPrincipal,
    authorizer: AuthorizerDep,
    access: AccessDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    who: Annotated[str | None, Query(alias="principal")] = None,
    outcome: Annotated[Literal["allowed", "denied", "failed"] | None, Query()] = None,
) -> dict[str, Any]:
    authorizer.require_admin(principal)
    rows = access.access.list_audit(limit, who, outcome)
    return {
        "events": [
            {
                "at": _time(row.at),
                "principal": row.principal,
                "action": row.action,
                "securable": row.securable,
                "outcome": row.outcome,
                "status": row.status_code,
                "request_id": row.request_id,
            }
            for row in rows
        ]
    }
