"""Principals, credentials, roles and grants: what the admin API and ``datlake admin`` do.

Plain Python (no FastAPI): the HTTP layer authorizes the caller first, the CLI acts as the
operator. Secrets are returned exactly once, when created.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from catalog import errors
from catalog.auth.keys import hash_secret, new_api_key, new_client
from catalog.auth.tokens import write_private
from catalog.authz.model import GRANTABLE, SEPARATOR, Grant, Privilege, Securable, SecurableType
from catalog.persistence.access_store import API_KEY, CLIENT, AccessStore, CredentialRow, PrincipalRow, RoleRow
from catalog.persistence.store import TABLE, VIEW, CatalogStore, Warehouse, namespace_levels
from catalog.service.identifiers import check_entity_name, check_namespace

log = logging.getLogger(__name__)

PRINCIPAL_TYPES = ("user", "service")
ADMIN_ROLE = "admin"
CREDENTIALS_FILE = "admin-credentials.json"

# A century: beyond that a key is as good as one that never expires (no expiry at all), and
# far beyond it the expiry date is not representable.
MAX_API_KEY_LIFETIME_SECONDS = 100 * 366 * 24 * 3600


@dataclass(frozen=True)
class CreatedPrincipal:
    name: str
    type: str
    client_id: str
    client_secret: str

    def credentials_json(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret}


@dataclass(frozen=True)
class CreatedKey:
    key_id: str
    api_key: str
    expires_at: datetime | None


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise errors.BadRequest(f"Invalid {what} name: 1 to 255 characters")
    if any(ord(ch) < 0x20 for ch in value) or "/" in value:
        raise errors.BadRequest(f"Invalid {what} name {value!r}: control characters and '/' are not allowed")
    return value


class AccessService:
    def __init__(self, access: AccessStore, catalog: CatalogStore, default_warehouse: str) -> None:
        self.access = access
        self.catalog = catalog
        self.default_warehouse = default_warehouse

    # --- principals and their credentials -----------------------------------------------------

    def create_principal(self, name: str, type_: str = "user") -> CreatedPrincipal:
        """A principal with one set of OAuth2 client credentials."""
        _check_name(name, "principal")
        if type_ not in PRINCIPAL_TYPES:
            raise errors.BadRequest(f"Invalid principal type {type_!r}: one of {', '.join(PRINCIPAL_TYPES)}")
        principal_id = self.access.create_principal(name, type_)
        client = new_client()
        self.access.add_credential(client.id, principal_id, CLIENT, hash_secret(client.secret), client.prefix)
        return CreatedPrincipal(name, type_, client.id, client.secret)

    def principal(self, name: str) -> PrincipalRow:
        return self.access.principal(name)

    def list_principals(self) -> list[PrincipalRow]:
        return self.access.list_principals()

    def set_enabled(self, name: str, enabled: bool) -> PrincipalRow:
        self.access.set_enabled(name, enabled)
        return self.access.principal(name)

    def create_api_key(self, principal: str, expires_in_seconds: int | None = None) -> CreatedKey:
        row = self.access.principal(principal)
        if expires_in_seconds is not None and not 0 < expires_in_seconds <= MAX_API_KEY_LIFETIME_SECONDS:
            raise errors.BadRequest(f"expires_in_seconds must be between 1 and {MAX_API_KEY_LIFETIME_SECONDS}")
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_in_seconds) if expires_in_seconds else None
        key = new_api_key()
        self.access.add_credential(key.id, row.id, API_KEY, hash_secret(key.secret), key.prefix, expires_at)
        return CreatedKey(key.id, key.token, expires_at)

    def list_api_keys(self, principal: str) -> list[CredentialRow]:
        return self.access.list_credentials(self.access.principal(principal).id, API_KEY)

    def revoke_api_key(self, principal: str, key_id: str) -> None:
        if not self.access.revoke_credential(self.access.principal(principal).id, key_id, API_KEY):
            raise errors.NotFound(f"No live API key {key_id} of {principal}")

    def list_clients(self, principal: str) -> list[CredentialRow]:
        return self.access.list_credentials(self.access.principal(principal).id, CLIENT)

    def revoke_client(self, principal: str, client_id: str) -> None:
        if not self.access.revoke_credential(self.access.principal(principal).id, client_id, CLIENT):
            raise errors.NotFound(f"No live client {client_id} of {principal}")

    # --- roles --------------------------------------------------------------------------------

    def create_role(self, name: str) -> RoleRow:
        _check_name(name, "role")
        self.access.create_role(name)
        return next(r for r in self.access.list_roles() if r.name == name)

    def list_roles(self) -> list[RoleRow]:
        return self.access.list_roles()

    def add_member(self, role: str, principal: str) -> None:
        role_id = self.access.role_id(role)
        self.access.add_member(role_id, self.access.principal(principal).id)

    def remove_member(self, role: str, principal: str) -> None:
        role_id = self.access.role_id(role)
        if not self.access.remove_member(role_id, self.access.principal(principal).id):
            raise errors.NotFound(f"{principal} does not hold role {role}")

    # --- grants -------------------------------------------------------------------------------

    def warehouse(self, name: str | None) -> Warehouse:
        found = self.catalog.get_warehouse(name or self.default_warehouse)
        if found is None:
            raise errors.NoSuchWarehouse(f"Warehouse does not exist: {name}")
        return found

    def securable(self, type_: str, name: str | list[str] | None, warehouse: str | None) -> Securable:
        """Parse a securable of the admin API: ``name`` is dotted ("ns.sub.table") or a list of parts."""
        try:
            kind = SecurableType(type_)
        except ValueError as exc:
            choices = ", ".join(t.value for t in SecurableType)
            raise errors.BadRequest(f"Invalid securable type {type_!r}: one of {choices}") from exc
        if kind == SecurableType.CATALOG:
            if isinstance(name, str) and name and not warehouse:
                warehouse = name  # a catalog is named by its warehouse
            return Securable.catalog(self.warehouse(warehouse).id)
        wh = self.warehouse(warehouse)
        parts = list(name) if isinstance(name, list) else (name.split(".") if name else [])
        if kind == SecurableType.NAMESPACE:
            return Securable.of_namespace(wh.id, check_namespace(parts))
        if len(parts) < 2:
            raise errors.BadRequest(f"A {kind.value} is named namespace.name, got {name!r}")
        return Securable(kind, wh.id, check_namespace(parts[:-1]), check_entity_name(parts[-1]))

    def check_exists(self, securable: Securable) -> None:
        """404 when a namespace, table or view that a grant names does not exist."""
        if securable.type == SecurableType.NAMESPACE:
            self.catalog.get_namespace(securable.warehouse_id, securable.namespace)
        elif securable.type in (SecurableType.TABLE, SecurableType.VIEW):
            assert securable.name is not None
            kind = TABLE if securable.type == SecurableType.TABLE else VIEW
            if self.catalog.get_entity(securable.warehouse_id, securable.namespace, securable.name, kind) is None:
                missing = errors.NoSuchTable if kind == TABLE else errors.NoSuchView
                raise missing(f"{kind.capitalize()} does not exist: {'.'.join((*securable.namespace, securable.name))}")

    @staticmethod
    def grant_of(privilege: str, securable: Securable) -> Grant:
        try:
            priv = Privilege(privilege.upper() if isinstance(privilege, str) else privilege)
        except ValueError as exc:
            raise errors.BadRequest(
                f"Invalid privilege {privilege!r}: one of {', '.join(p.value for p in Privilege)}"
            ) from exc
        if priv not in GRANTABLE[securable.type]:
            raise errors.BadRequest(f"{priv.value} cannot be granted on a {securable.type.value}")
        return Grant(priv.value, securable.type.value, securable.warehouse_id, securable.key)

    def grant(self, role: str, grant: Grant, securable: Securable) -> bool:
        """Add ``grant`` to ``role``; False when the role already held it."""
        role_id = self.access.role_id(role)
        self.check_exists(securable)
        return self.access.add_grant(role_id, grant)

    def revoke(self, role: str, grant: Grant) -> None:
        if not self.access.remove_grant(self.access.role_id(role), grant):
            raise errors.NotFound(f"Role {role} does not hold that grant")

    def list_grants(self, role: str) -> list[Grant]:
        return self.access.list_grants(self.access.role_id(role))

    def describe_grant(self, grant: Grant) -> dict[str, Any]:
        """A grant as the admin API shows it: the securable named with dots, like in requests."""
        warehouse = next((w.name for w in self.catalog.list_warehouses() if w.id == grant.warehouse_id), None)
        if grant.securable_type == SecurableType.CATALOG.value:
            name = warehouse or ""
        elif grant.securable_type == SecurableType.NAMESPACE.value:
            name = ".".join(namespace_levels(grant.securable_name))
        else:
            name = ".".join(grant.securable_name.split(SEPARATOR))
        return {
            "privilege": grant.privilege,
            "securable": {"type": grant.securable_type, "name": name},
            "warehouse": warehouse,
        }

    # --- the first administrator --------------------------------------------------------------

    def admin_grant(self) -> Grant:
        return Grant(Privilege.ADMIN.value, SecurableType.CATALOG.value, self.warehouse(None).id, "")

    def has_admin(self) -> bool:
        return self.access.has_grant_holder(self.admin_grant())

    def bootstrap(self, name: str = "admin") -> CreatedPrincipal:
        """Create the first administrator: role ``admin`` holding ADMIN on the default warehouse's catalog."""
        if self.has_admin():
            raise errors.AlreadyExists("An administrator already exists; bootstrap runs only once")
        created = self.create_principal(name, "user")
        try:
            role_id = self.access.role_id(ADMIN_ROLE)
        except errors.NotFound:
            try:
                role_id = self.access.create_role(ADMIN_ROLE)
            except errors.AlreadyExists:
                role_id = self.access.role_id(ADMIN_ROLE)
        self.access.add_grant(role_id, self.admin_grant())
        self.access.add_member(role_id, self.access.principal(name).id)
        return created

    def auto_bootstrap(self, home: Path) -> CreatedPrincipal | None:
        """Embedded first start: bootstrap, print the credentials once, keep them in a 0600 file."""
        if self.access.count_principals() > 0:
            return None
        try:
            created = self.bootstrap()
        except errors.AlreadyExists:  # another process of the same server won the race
            return None
        path = home / CREDENTIALS_FILE
        payload = json.dumps(created.credentials_json(), indent=2) + "\n"
        if not write_private(path, payload):
            path.unlink()
            write_private(path, payload)
        print(
            "Datlake Catalog: created the first administrator (shown once, also saved to "
            f"{path}, mode 0600):\n  client_id:     {created.client_id}\n  client_secret: {created.client_secret}",
            file=sys.stderr,
        )
        return created
