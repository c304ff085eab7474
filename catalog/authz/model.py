"""Privileges, securables and intent-level actions: the vocabulary of the authorizer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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


@dataclass(frozen=True)
class Securable:
    """What an action touches. ``namespace`` is () for the catalog itself; ``name`` is set for tables/views."""

    type: SecurableType
    warehouse_id: int
    namespace: tuple[str, ...] = ()
    name: str | None = None

    def describe(self) -> str:
        parts = [*self.namespace, self.name] if self.name else list(self.namespace)
        return f"{self.type.value} {'.'.join(p for p in parts if p) or '(catalog)'}"
