"""The one authorizer: may PRINCIPAL do ACTION on SECURABLE?

Grants are evaluated in memory against the principal's grants (loaded with the credential check,
one query per request). The rules:

* a grant on the catalog covers everything in that warehouse; a grant on a namespace covers the
  namespace, its child namespaces and everything in them; a grant on a table or view covers it;
* ``ADMIN`` on a catalog covers every privilege there; ``ADMIN`` on the default warehouse's
  catalog is server administration and covers every warehouse;
* decisions are made on names only, before anything is looked up, so a caller without a
  covering grant gets 403 whether or not the object exists (existence never leaks);
* the anonymous caller (only when ``DATLAKE_AUTH_ALLOW_ANONYMOUS=true``) may do everything.

Every decision is recorded in the request's audit context (denials always reach the audit log,
allowed decisions when the request writes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from catalog import errors
from catalog.audit import record_decision
from catalog.auth.principal import Principal
from catalog.authz.model import (
    ACTION_PRIVILEGES,
    SEPARATOR,
    Action,
    Grant,
    Privilege,
    Securable,
    SecurableType,
)

Need = Privilege | Action | Iterable[Privilege]

_CATALOG = SecurableType.CATALOG.value
_NAMESPACE = SecurableType.NAMESPACE.value
_ADMIN = Privilege.ADMIN.value
_VISIBILITY_ACTIONS = {Action.SEE, Action.LOAD_NAMESPACE, Action.LIST_NAMESPACES, Action.LIST_TABLES, Action.LIST_VIEWS}


@dataclass(frozen=True)
class Visibility:
    """What a caller may see of one kind of entity (tables or views) across a warehouse.

    ``everything``: no filter. Otherwise an entity is visible when its namespace key is one of
    ``namespaces`` or below one of them, or when ``(namespace key, name)`` is in ``entities``.
    Persistence turns this into a WHERE clause so pagination stays correct after filtering.
    """

    everything: bool
    namespaces: frozenset[str] = frozenset()
    entities: frozenset[tuple[str, str]] = frozenset()

    def allows(self, namespace: tuple[str, ...], name: str) -> bool:
        if self.everything:
            return True
        key = SEPARATOR.join(namespace)
        if (key, name) in self.entities:
            return True
        return any(key == ns or key.startswith(ns + SEPARATOR) for ns in self.namespaces)


def _covering_keys(securable: Securable) -> Iterator[tuple[str, int, str]]:
    """(securable_type, warehouse_id, securable_name) of every grant target that covers ``securable``."""
    wh = securable.warehouse_id
    yield (_CATALOG, wh, "")
    levels = securable.namespace
    for depth in range(1, len(levels) + 1):
        yield (_NAMESPACE, wh, SEPARATOR.join(levels[:depth]))
    if securable.name is not None:
        yield (securable.type.value, wh, securable.key)


def _split_entity_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.rpartition(SEPARATOR)
    return namespace, name


def _is_under(key: str, prefix: str) -> bool:
    """True when namespace ``key`` is ``prefix`` or below it ('' is the catalog, above everything)."""
    return not prefix or key == prefix or key.startswith(prefix + SEPARATOR)


class Authorizer:
    """Answers every authorization question of both APIs."""

    def __init__(self, default_warehouse_id: int, allow_anonymous: bool) -> None:
        self.default_warehouse_id = default_warehouse_id
        self.allow_anonymous = allow_anonymous

    # --- the core question ------------------------------------------------------------------------

    def _unrestricted(self, principal: Principal) -> bool:
        if principal.is_anonymous:
            return self.allow_anonymous
        return Grant(_ADMIN, _CATALOG, self.default_warehouse_id, "") in principal.grants

    def _has(self, principal: Principal, privilege: Privilege, securable: Securable) -> bool:
        grants = principal.grants
        if not grants:
            return False
        if Grant(_ADMIN, _CATALOG, securable.warehouse_id, "") in grants:
            return True
        wanted = privilege.value
        return any(Grant(wanted, *key) in grants for key in _covering_keys(securable))

    def _sees(self, principal: Principal, securable: Securable) -> bool:
        """Any privilege on the securable, above it, or (for a namespace or the catalog) inside it."""
        covering = set(_covering_keys(securable))
        prefix = securable.key if securable.type in (SecurableType.CATALOG, SecurableType.NAMESPACE) else None
        for grant in principal.grants:
            if grant.warehouse_id != securable.warehouse_id:
                continue
            if (grant.securable_type, grant.warehouse_id, grant.securable_name) in covering:
                return True
            if prefix is not None:
                if grant.securable_type == _NAMESPACE and _is_under(grant.securable_name, prefix):
                    return True
                if grant.securable_type in ("table", "view"):
                    if _is_under(_split_entity_key(grant.securable_name)[0], prefix):
                        return True
        return False

    def is_allowed(self, principal: Principal, need: Need, securable: Securable) -> bool:
        """Whether ``principal`` may do ``need`` (a privilege, an action, or several privileges) on ``securable``."""
        if self._unrestricted(principal):
            return True
        if isinstance(need, Action):
            if need in _VISIBILITY_ACTIONS:
                return self._sees(principal, securable)
            privilege = ACTION_PRIVILEGES[need]
            assert privilege is not None
            if need is Action.CREATE_NAMESPACE:
                securable = securable.parent
            elif need is Action.ADMINISTER:
                securable = Securable.catalog(self.default_warehouse_id)
            return self._has(principal, privilege, securable)
        if isinstance(need, Privilege):
            return self._has(principal, need, securable)
        return all(self._has(principal, privilege, securable) for privilege in need)

    def require(self, principal: Principal, need: Need, securable: Securable) -> None:
        """Raise :class:`errors.Forbidden` (403) unless allowed; record the decision for the audit log."""
        allowed = self.is_allowed(principal, need, securable)
        label = _label(need)
        record_decision(principal.name, label, securable.describe(), allowed)
        if not allowed:
            raise errors.Forbidden(f"{principal.name} may not {label} on {securable.describe()}")

    def require_admin(self, principal: Principal) -> None:
        """Server administration (principals, keys, roles): ADMIN on the default warehouse's catalog."""
        self.require(principal, Action.ADMINISTER, Securable.catalog(self.default_warehouse_id))

    # --- lists --------------------------------------------------------------------------------------

    def visible_namespaces(
        self, principal: Principal, warehouse_id: int, parent: tuple[str, ...]
    ) -> frozenset[str] | None:
        """Keys of the child namespaces of ``parent`` the caller may see; None means all of them.

        Listing the top level is always allowed (possibly empty); listing under a namespace the
        caller cannot see at all is a 403.
        """
        parent_securable = Securable.of_namespace(warehouse_id, parent)
        if parent:
            self.require(principal, Action.LIST_NAMESPACES, parent_securable)
        if self._unrestricted(principal) or self._covered_by_any(principal, parent_securable):
            return None
        prefix = SEPARATOR.join(parent)
        depth = len(parent) + 1
        children: set[str] = set()
        for grant in principal.grants:
            if grant.warehouse_id != warehouse_id or grant.securable_type == _CATALOG:
                continue
            key = grant.securable_name
            if grant.securable_type != _NAMESPACE:
                key = _split_entity_key(key)[0]
            levels = key.split(SEPARATOR)
            if len(levels) >= depth and _is_under(key, prefix) and key != prefix:
                children.add(SEPARATOR.join(levels[:depth]))
        return frozenset(children)

    def visible_names(
        self, principal: Principal, kind: SecurableType, warehouse_id: int, namespace: tuple[str, ...]
    ) -> frozenset[str] | None:
        """Names of the tables (or views) of ``namespace`` the caller may see; None means all of them.

        403 when the caller can see nothing at all in or above the namespace.
        """
        securable = Securable.of_namespace(warehouse_id, namespace)
        action = Action.LIST_VIEWS if kind == SecurableType.VIEW else Action.LIST_TABLES
        self.require(principal, action, securable)
        if self._unrestricted(principal) or self._covered_by_any(principal, securable):
            return None
        key = SEPARATOR.join(namespace)
        names = set()
        for grant in principal.grants:
            if grant.warehouse_id == warehouse_id and grant.securable_type == kind.value:
                ns, name = _split_entity_key(grant.securable_name)
                if ns == key:
                    names.add(name)
        return frozenset(names)

    def visibility(self, principal: Principal, kind: SecurableType, warehouse_id: int) -> Visibility:
        """What the caller may see of ``kind`` across a warehouse (for listings that span namespaces)."""
        if self._unrestricted(principal) or self._has_catalog_grant(principal, warehouse_id):
            return Visibility(everything=True)
        namespaces = set()
        entities = set()
        for grant in principal.grants:
            if grant.warehouse_id != warehouse_id:
                continue
            if grant.securable_type == _NAMESPACE:
                namespaces.add(grant.securable_name)
            elif grant.securable_type == kind.value:
                entities.add(_split_entity_key(grant.securable_name))
        return Visibility(False, frozenset(namespaces), frozenset(entities))

    @staticmethod
    def _has_catalog_grant(principal: Principal, warehouse_id: int) -> bool:
        """Any privilege on the catalog of ``warehouse_id`` (which covers everything in it)."""
        return any(g.warehouse_id == warehouse_id and g.securable_type == _CATALOG for g in principal.grants)

    def _covered_by_any(self, principal: Principal, securable: Securable) -> bool:
        """Any privilege on ``securable`` itself or on a namespace/catalog above it."""
        covering = set(_covering_keys(securable))
        return any((g.securable_type, g.warehouse_id, g.securable_name) in covering for g in principal.grants)


def _label(need: Need) -> str:
    if isinstance(need, Action | Privilege):
        return need.value
    return "+".join(sorted(p.value for p in need))
