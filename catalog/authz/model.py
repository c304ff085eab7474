"""Privileges, securables and intent-level actions: the vocabulary of the authorizer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

SEPARATOR = "\x1f"  # namespace levels (and a table's name) are joined by the unit separator, as in the schema


class Privilege(StrEnum):
    SELECT = "SELECT"
    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    CREATE = "CREATE"  # namespaces, tables and views inside the securable
    DROP = "DROP"
    ALTER = "ALTER"
    MANAGE_GRANTS = "MANAGE_GRANTS"
    ADMIN = "ADMIN"  # catalog-wide (or global when granted on the default warehouse): covers everything


class SecurableType(StrEnum):
    CATALOG = "catalog"
    NAMESPACE = "namespace"
    TABLE = "table"
    VIEW = "view"


# Which privileges may be granted on which kind of securable (a CREATE on a table means nothing).
GRANTABLE: dict[SecurableType, frozenset[Privilege]] = {
    SecurableType.CATALOG: frozenset(Privilege),
    SecurableType.NAMESPACE: frozenset(Privilege) - {Privilege.ADMIN},
    SecurableType.TABLE: frozenset(Privilege) - {Privilege.ADMIN, Privilege.CREATE},
    SecurableType.VIEW: frozenset({Privilege.SELECT, Privilege.DROP, Privilege.ALTER, Privilege.MANAGE_GRANTS}),
}


class Action(StrEnum):
    """Intent-level operations. Each maps to the privilege it needs (see :data:`ACTION_PRIVILEGES`).

    ``SEE`` is the visibility rule used by loading/listing a namespace: any privilege on the
    securable, on a namespace or catalog above it, or on anything inside it.
    """

    SEE = "SEE"
    LIST_NAMESPACES = "LIST_NAMESPACES"
    CREATE_NAMESPACE = "CREATE_NAMESPACE"  # checked as CREATE on the parent of the securable
    LOAD_NAMESPACE = "LOAD_NAMESPACE"
    ALTER_NAMESPACE = "ALTER_NAMESPACE"
    DROP_NAMESPACE = "DROP_NAMESPACE"
    LIST_TABLES = "LIST_TABLES"
    CREATE_TABLE = "CREATE_TABLE"  # securable: the namespace
    REGISTER_TABLE = "REGISTER_TABLE"  # securable: the namespace
    LOAD_TABLE = "LOAD_TABLE"
    DROP_TABLE = "DROP_TABLE"
    ALTER_TABLE = "ALTER_TABLE"
    COMMIT_APPEND = "COMMIT_APPEND"
    COMMIT_OVERWRITE = "COMMIT_OVERWRITE"
    COMMIT_DELETE = "COMMIT_DELETE"
    RENAME_FROM = "RENAME_FROM"  # securable: the source table/view
    RENAME_TO = "RENAME_TO"  # securable: the destination namespace
    REPORT_METRICS = "REPORT_METRICS"
    LIST_VIEWS = "LIST_VIEWS"
    CREATE_VIEW = "CREATE_VIEW"  # securable: the namespace
    LOAD_VIEW = "LOAD_VIEW"
    REPLACE_VIEW = "REPLACE_VIEW"
    DROP_VIEW = "DROP_VIEW"
    REGISTER_SNAPSHOT_APPEND = "REGISTER_SNAPSHOT_APPEND"
    REGISTER_SNAPSHOT_OVERWRITE = "REGISTER_SNAPSHOT_OVERWRITE"
    MANAGE_GRANTS = "MANAGE_GRANTS"
    ADMINISTER = "ADMINISTER"  # principals, keys, roles: ADMIN on the default warehouse's catalog


ACTION_PRIVILEGES: dict[Action, Privilege | None] = {
    Action.SEE: None,
    Action.LIST_NAMESPACES: None,
    Action.CREATE_NAMESPACE: Privilege.CREATE,
    Action.LOAD_NAMESPACE: None,
    Action.ALTER_NAMESPACE: Privilege.ALTER,
    Action.DROP_NAMESPACE: Privilege.DROP,
    Action.LIST_TABLES: None,
    Action.CREATE_TABLE: Privilege.CREATE,
    Action.REGISTER_TABLE: Privilege.CREATE,
    Action.LOAD_TABLE: Privilege.SELECT,
    Action.DROP_TABLE: Privilege.DROP,
    Action.ALTER_TABLE: Privilege.ALTER,
    Action.COMMIT_APPEND: Privilege.INSERT,
    Action.COMMIT_OVERWRITE: Privilege.UPDATE,
    Action.COMMIT_DELETE: Privilege.DELETE,
    Action.RENAME_FROM: Privilege.DROP,
    Action.RENAME_TO: Privilege.CREATE,
    Action.REPORT_METRICS: Privilege.SELECT,
    Action.LIST_VIEWS: None,
    Action.CREATE_VIEW: Privilege.CREATE,
    Action.LOAD_VIEW: Privilege.SELECT,
    Action.REPLACE_VIEW: Privilege.ALTER,
    Action.DROP_VIEW: Privilege.DROP,
    Action.REGISTER_SNAPSHOT_APPEND: Privilege.INSERT,
    Action.REGISTER_SNAPSHOT_OVERWRITE: Privilege.UPDATE,
    Action.MANAGE_GRANTS: Privilege.MANAGE_GRANTS,
    Action.ADMINISTER: Privilege.ADMIN,
}


class Grant(NamedTuple):
    """One privilege on one securable, as stored in the ``grants`` table (hashable, compared as a tuple)."""

    privilege: str
    securable_type: str
    warehouse_id: int
    securable_name: str  # '' (catalog), namespace key, or namespace key + SEPARATOR + name


@dataclass(frozen=True)
class Securable:
    """What an action touches. ``namespace`` is () for the catalog itself; ``name`` is set for tables/views."""

    type: SecurableType
    warehouse_id: int
    namespace: tuple[str, ...] = ()
    name: str | None = None

    @classmethod
    def catalog(cls, warehouse_id: int) -> Securable:
        return cls(SecurableType.CATALOG, warehouse_id)

    @classmethod
    def of_namespace(cls, warehouse_id: int, namespace: tuple[str, ...] | list[str]) -> Securable:
        levels = tuple(namespace)
        return cls(SecurableType.NAMESPACE, warehouse_id, levels) if levels else cls.catalog(warehouse_id)

    @classmethod
    def table(cls, warehouse_id: int, namespace: tuple[str, ...] | list[str], name: str) -> Securable:
        return cls(SecurableType.TABLE, warehouse_id, tuple(namespace), name)

    @classmethod
    def view(cls, warehouse_id: int, namespace: tuple[str, ...] | list[str], name: str) -> Securable:
        return cls(SecurableType.VIEW, warehouse_id, tuple(namespace), name)

    @classmethod
    def of_grant(cls, grant: Grant) -> Securable:
        """The securable a stored grant names."""
        kind = SecurableType(grant.securable_type)
        if kind == SecurableType.CATALOG:
            return cls.catalog(grant.warehouse_id)
        if kind == SecurableType.NAMESPACE:
            return cls(kind, grant.warehouse_id, tuple(grant.securable_name.split(SEPARATOR)))
        namespace, _, name = grant.securable_name.rpartition(SEPARATOR)
        return cls(kind, grant.warehouse_id, tuple(namespace.split(SEPARATOR)), name)

    @property
    def key(self) -> str:
        """The ``grants.securable_name`` of this securable."""
        if self.type == SecurableType.CATALOG:
            return ""
        ns = SEPARATOR.join(self.namespace)
        return ns if self.name is None else f"{ns}{SEPARATOR}{self.name}"

    @property
    def parent(self) -> Securable:
        """The namespace (or catalog) that contains this securable."""
        if self.type in (SecurableType.TABLE, SecurableType.VIEW):
            return Securable.of_namespace(self.warehouse_id, self.namespace)
        return Securable.of_namespace(self.warehouse_id, self.namespace[:-1])

    def describe(self) -> str:
        parts = [*self.namespace, self.name] if self.name else list(self.namespace)
        return f"{self.type.value} {'.'.join(p for p in parts if p) or '(catalog)'}"
