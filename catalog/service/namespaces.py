"""Namespaces: create, load, list, drop, update properties."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Sequence

from catalog import errors
from catalog.persistence.store import CatalogStore, Namespace, NamespaceRow, Page, Warehouse
from catalog.service.identifiers import check_namespace
from catalog.service.locations import check_inside_warehouse


class NamespaceService:
    def __init__(self, store: CatalogStore) -> None:
        self.store = store

    def create(self, warehouse: Warehouse, namespace: Sequence[str], properties: dict[str, str]) -> NamespaceRow:
        levels = check_namespace(tuple(namespace))
        if location := properties.get("location"):
            properties = {**properties, "location": check_inside_warehouse(location, warehouse)}
        self.store.create_namespace(warehouse.id, levels, properties)
        return NamespaceRow(0, levels, properties)

    def load(self, warehouse: Warehouse, levels: Namespace) -> NamespaceRow:
        return self.store.get_namespace(warehouse.id, levels)

    def list(
        self,
        warehouse: Warehouse,
        parent: Namespace,
        page_token: str | None,
        page_size: int | None,
        only: Collection[str] | None = None,
    ) -> Page:
        """Child namespaces; ``only`` (namespace keys) keeps those the caller may see."""
        return self.store.list_namespaces(warehouse.id, parent, page_token, page_size, only)

    def drop(self, warehouse: Warehouse, levels: Namespace) -> None:
        self.store.drop_namespace(warehouse.id, levels)

    def update_properties(
        self, warehouse: Warehouse, levels: Namespace, removals: Sequence[str], updates: dict[str, str]
    ) -> tuple[builtins.list[str], builtins.list[str], builtins.list[str]]:
        overlap = set(removals) & set(updates)
        if overlap:
            raise errors.Unprocessable(f"Properties both updated and removed: {sorted(overlap)}")
        if location := updates.get("location"):
            updates = {**updates, "location": check_inside_warehouse(location, warehouse)}
        return self.store.update_namespace_properties(warehouse.id, levels, removals, updates)
