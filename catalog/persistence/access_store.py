"""All SQL of identity and access control: principals, credentials, roles, grants, the audit log.

The hot path is :meth:`AccessStore.caller_by_credential` / :meth:`AccessStore.caller_by_name`:
one indexed query returns the credential's state, the principal's state and every grant of every
role the principal holds, so authentication and authorization need no further round trip. On
PostgreSQL its result is kept between requests until any access change is notified
(:mod:`catalog.persistence.caller_cache`); every write here drops this process's kept callers
itself before it returns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from catalog import errors
from catalog.audit import AuditRow
from catalog.authz.model import Grant
from catalog.persistence.caller_cache import CacheKey, CallerCache
from catalog.persistence.database import read_engine
from catalog.persistence.schema import audit_log, credentials, grants, principals, role_members, roles

CLIENT = "client"
API_KEY = "api_key"


@dataclass(frozen=True)
class CallerRecord:
    """A principal as the authenticator needs it, with the credential it presented (if any)."""

    principal_id: int
    name: str
    type: str
    enabled: bool
    grants: frozenset[Grant]
    credential_id: str | None = None
    credential_kind: str | None = None
    secret_hash: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def credential_usable(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True)
class PrincipalRow:
    id: int
    name: str
    type: str
    enabled: bool
    created_at: datetime
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class CredentialRow:
    id: str
    principal_id: int
    kind: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class RoleRow:
    id: int
    name: str
    created_at: datetime
    members: tuple[str, ...]


@dataclass(frozen=True)
class GrantRow:
    role: str
    privilege: str
    securable_type: str
    warehouse_id: int
    securable_name: str
    created_at: datetime


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns; they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class AccessStore:
    """Repository over the RBAC tables of the catalog database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.callers: CallerCache[CallerRecord] = CallerCache(engine)
        self._reader = read_engine(engine)  # the per-request lookup: no BEGIN/ROLLBACK round trips
        # Built once: the hot path then skips statement construction and cache-key generation.
        self._by_credential = self._caller_query(credentials.c.id == bindparam("key"), True)
        self._by_name = self._caller_query(principals.c.name == bindparam("key"), False)

    # --- the per-request lookup ---------------------------------------------------------------

    def _caller_query(self, where: ColumnElement[bool], with_credential: bool) -> Select[Any]:
        columns: list[Any] = [  # the grant first: rows[i][:4] is a Grant without per-field lookups
            grants.c.privilege,
            grants.c.securable_type,
            grants.c.warehouse_id,
            grants.c.securable_name,
            principals.c.id,
            principals.c.name,
            principals.c.type,
            principals.c.enabled,
        ]
        source: Any = principals
        if with_credential:
            columns += [
                credentials.c.id.label("cred_id"),
                credentials.c.kind,
                credentials.c.secret_hash,
                credentials.c.expires_at,
                credentials.c.revoked_at,
            ]
            source = credentials.join(principals, principals.c.id == credentials.c.principal_id)
        source = source.outerjoin(role_members, role_members.c.principal_id == principals.c.id).outerjoin(
            grants, grants.c.role_id == role_members.c.role_id
        )
        return select(*columns).select_from(source).where(where)

    def _caller(self, query: Select[Any], key: str, with_credential: bool) -> CallerRecord | None:
        cache_key: CacheKey = ("credential" if with_credential else "name", key)
        cached = self.callers.get(cache_key)
        if cached is not None:
            return cached
        generation = self.callers.generation()
        record = self._read_caller(query, key, with_credential)
        if record is not None:
            self.callers.put(cache_key, record, generation)
        return record

    def cached_caller(self, credential_id: str | None, name: str | None = None) -> CallerRecord | None:
        """The kept caller of a credential (or of a principal name), without touching the database."""
        if credential_id is not None:
            return self.callers.get(("credential", credential_id))
        return self.callers.get(("name", name)) if name is not None else None

    @contextmanager
    def _changing(self) -> Iterator[Connection]:
        """A transaction on the access tables; afterwards this process keeps no caller that it may
        have changed (other processes hear of it from PostgreSQL)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        finally:
            self.callers.invalidate()

    def _read_caller(self, query: Select[Any], key: str, with_credential: bool) -> CallerRecord | None:
        with self._reader.connect() as conn:
            rows = conn.execute(query, {"key": key}).all()
        if not rows:
            return None
        first = rows[0]
        make = Grant._make
        found = frozenset(make(row[:4]) for row in rows if row[0] is not None)
        if not with_credential:
            return CallerRecord(first.id, first.name, first.type, bool(first.enabled), found)
        return CallerRecord(
            first.id,
            first.name,
            first.type,
            bool(first.enabled),
            found,
            first.cred_id,
            first.kind,
            first.secret_hash,
            utc(first.expires_at),
            utc(first.revoked_at),
        )

    def caller_by_credential(self, credential_id: str) -> CallerRecord | None:
        """The credential, its principal and the principal's grants, in one query."""
        return self._caller(self._by_credential, credential_id, True)

    def caller_by_name(self, name: str) -> CallerRecord | None:
        """A principal by name with its grants (external OIDC tokens carry no credential)."""
        return self._caller(self._by_name, name, False)

    # --- principals ---------------------------------------------------------------------------

    def create_principal(self, name: str, type_: str) -> int:
        try:
            with self._changing() as conn:
                result = conn.execute(insert(principals).values(name=name, type=type_, enabled=True, created_at=_now()))
                key = result.inserted_primary_key
                assert key is not None
                return int(key[0])
        except IntegrityError as exc:
            raise errors.AlreadyExists(f"Principal already exists: {name}") from exc

    def principal(self, name: str) -> PrincipalRow:
        with self.engine.connect() as conn:
            row = conn.execute(select(principals).where(principals.c.name == name)).first()
            if row is None:
                raise errors.NotFound(f"Principal does not exist: {name}")
            role_names = conn.execute(
                select(roles.c.name)
                .join(role_members, role_members.c.role_id == roles.c.id)
                .where(role_members.c.principal_id == row.id)
                .order_by(roles.c.name)
            ).scalars()
            return PrincipalRow(row.id, row.name, row.type, bool(row.enabled), utc(row.created_at), tuple(role_names))

    def list_principals(self) -> list[PrincipalRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(principals).order_by(principals.c.name)).all()
            memberships = conn.execute(
                select(role_members.c.principal_id, roles.c.name)
                .join(roles, roles.c.id == role_members.c.role_id)
                .order_by(roles.c.name)
            ).all()
        by_principal: dict[int, list[str]] = {}
        for principal_id, role_name in memberships:
            by_principal.setdefault(principal_id, []).append(role_name)
        return [
            PrincipalRow(r.id, r.name, r.type, bool(r.enabled), utc(r.created_at), tuple(by_principal.get(r.id, ())))
            for r in rows
        ]

    def set_enabled(self, name: str, enabled: bool) -> None:
        with self._changing() as conn:
            result = conn.execute(update(principals).where(principals.c.name == name).values(enabled=enabled))
        if result.rowcount != 1:
            raise errors.NotFound(f"Principal does not exist: {name}")

    def count_principals(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(principals)).scalar() or 0)

    def has_grant_holder(self, grant: Grant) -> bool:
        """Whether any principal holds ``grant`` through a role."""
        query = select(
            exists()
            .where(
                grants.c.privilege == grant.privilege,
                grants.c.securable_type == grant.securable_type,
                grants.c.warehouse_id == grant.warehouse_id,
                grants.c.securable_name == grant.securable_name,
                role_members.c.role_id == grants.c.role_id,
            )
            .select_from(grants.join(role_members, role_members.c.role_id == grants.c.role_id))
        )
        with self.engine.connect() as conn:
            return bool(conn.execute(query).scalar())

    # --- credentials --------------------------------------------------------------------------

    def add_credential(
        self,
        credential_id: str,
        principal_id: int,
        kind: str,
        secret_hash: str,
        prefix: str,
        expires_at: datetime | None = None,
    ) -> None:
        with self._changing() as conn:
            conn.execute(
                insert(credentials).values(
                    id=credential_id,
                    principal_id=principal_id,
                    kind=kind,
                    secret_hash=secret_hash,
                    prefix=prefix,
                    created_at=_now(),
                    expires_at=expires_at,
                    revoked_at=None,
                )
            )

    def list_credentials(self, principal_id: int, kind: str | None = None) -> list[CredentialRow]:
        query = select(credentials).where(credentials.c.principal_id == principal_id).order_by(credentials.c.created_at)
        if kind is not None:
            query = query.where(credentials.c.kind == kind)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            CredentialRow(
                r.id, r.principal_id, r.kind, r.prefix, utc(r.created_at), utc(r.expires_at), utc(r.revoked_at)
            )
            for r in rows
        ]

    def revoke_credential(self, principal_id: int, credential_id: str, kind: str) -> bool:
        """Mark a live credential revoked; False when there is no such live credential."""
        with self._changing() as conn:
            result = conn.execute(
                update(credentials)
                .where(
                    credentials.c.id == credential_id,
                    credentials.c.principal_id == principal_id,
                    credentials.c.kind == kind,
                    credentials.c.revoked_at.is_(None),
                )
                .values(revoked_at=_now())
            )
        return bool(result.rowcount == 1)

    # --- roles --------------------------------------------------------------------------------

    def create_role(self, name: str) -> int:
        try:
            with self._changing() as conn:
                result = conn.execute(insert(roles).values(name=name, created_at=_now()))
                key = result.inserted_primary_key
                assert key is not None
                return int(key[0])
        except IntegrityError as exc:
            raise errors.AlreadyExists(f"Role already exists: {name}") from exc

    def role_id(self, name: str) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(select(roles.c.id).where(roles.c.name == name)).scalar()
        if found is None:
            raise errors.NotFound(f"Role does not exist: {name}")
        return int(found)

    def list_roles(self) -> list[RoleRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(roles).order_by(roles.c.name)).all()
            members = conn.execute(
                select(role_members.c.role_id, principals.c.name)
                .join(principals, principals.c.id == role_members.c.principal_id)
                .order_by(principals.c.name)
            ).all()
        by_role: dict[int, list[str]] = {}
        for role_id, principal_name in members:
            by_role.setdefault(role_id, []).append(principal_name)
        return [RoleRow(r.id, r.name, utc(r.created_at), tuple(by_role.get(r.id, ()))) for r in rows]

    def add_member(self, role_id: int, principal_id: int) -> None:
        """Idempotent: holding a role twice is holding it once."""
        with self._changing() as conn:
            present = conn.execute(
                select(role_members.c.role_id).where(
                    role_members.c.role_id == role_id, role_members.c.principal_id == principal_id
                )
            ).first()
            if present is None:
                try:
                    conn.execute(insert(role_members).values(role_id=role_id, principal_id=principal_id))
                except IntegrityError:  # a concurrent request added it
                    pass

    def remove_member(self, role_id: int, principal_id: int) -> bool:
        with self._changing() as conn:
            result = conn.execute(
                delete(role_members).where(
                    role_members.c.role_id == role_id, role_members.c.principal_id == principal_id
                )
            )
        return bool(result.rowcount == 1)

    # --- grants -------------------------------------------------------------------------------

    def add_grant(self, role_id: int, grant: Grant) -> bool:
        """Add a grant; False when the role already holds it."""
        try:
            with self._changing() as conn:
                conn.execute(
                    insert(grants).values(
                        role_id=role_id,
                        privilege=grant.privilege,
                        securable_type=grant.securable_type,
                        warehouse_id=grant.warehouse_id,
                        securable_name=grant.securable_name,
                        created_at=_now(),
                    )
                )
        except IntegrityError:
            return False
        return True

    def remove_grant(self, role_id: int, grant: Grant) -> bool:
        with self._changing() as conn:
            result = conn.execute(
                delete(grants).where(
                    grants.c.role_id == role_id,
                    grants.c.privilege == grant.privilege,
                    grants.c.securable_type == grant.securable_type,
                    grants.c.warehouse_id == grant.warehouse_id,
                    grants.c.securable_name == grant.securable_name,
                )
            )
        return bool(result.rowcount == 1)

    def list_grants(self, role_id: int) -> list[Grant]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(grants.c.privilege, grants.c.securable_type, grants.c.warehouse_id, grants.c.securable_name)
                .where(grants.c.role_id == role_id)
                .order_by(grants.c.securable_type, grants.c.securable_name, grants.c.privilege)
            ).all()
        return [Grant(*row) for row in rows]

    # --- audit --------------------------------------------------------------------------------

    def write_audit(self, rows: list[AuditRow]) -> None:
        if not rows:
            return
        # A single row (most requests) is one atomic statement: on PostgreSQL it runs in autocommit,
        # without the BEGIN and COMMIT round trips. Several rows go in one transaction.
        single = len(rows) == 1 and self._reader is not self.engine
        with self._reader.connect() if single else self.engine.begin() as conn:
            conn.execute(
                insert(audit_log),
                [
                    {
                        "at": row.at,
                        "principal": _storable(row.principal)[:255] if row.principal else None,
                        "action": _storable(row.action)[:64],
                        "securable": _storable(row.securable),
                        "outcome": row.outcome,
                        "status_code": row.status_code,
                        "request_id": row.request_id,
                    }
                    for row in rows
                ],
            )

    def list_audit(self, limit: int = 100, principal: str | None = None, outcome: str | None = None) -> list[AuditRow]:
        """Newest first."""
        conditions: Sequence[ColumnElement[bool]] = [
            c
            for c in (
                audit_log.c.principal == principal if principal else None,
                audit_log.c.outcome == outcome if outcome else None,
            )
            if c is not None
        ]
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if conditions:
            query = query.where(and_(*conditions))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            AuditRow(utc(r.at), r.principal, r.action, r.securable, r.outcome, r.status_code, r.request_id)
            for r in rows
        ]


def _storable(text: str) -> str:
    """Audit text as PostgreSQL can store it: a NUL (a request path with ``%00``, a client id) is
    written as ``%00``. Otherwise the insert fails and the request, often a denied one, goes unaudited."""
    return text.replace("\x00", "%00")
