"""Where tables live: default locations and the rule that keeps every table inside its warehouse."""

from __future__ import annotations

from catalog import errors
from catalog.persistence.store import Warehouse


def normalize(location: str) -> str:
    location = location.strip().rstrip("/")
    if location.startswith("s3a://") or location.startswith("s3n://"):
        location = "s3://" + location.split("://", 1)[1]
    return location


def is_inside(location: str, root: str) -> bool:
    location, root = normalize(location), normalize(root)
    if ".." in location.split("/"):
        return False
    return location == root or location.startswith(root + "/")


def check_inside_warehouse(location: str, warehouse: Warehouse) -> str:
    """Return the normalized location, or refuse one outside the warehouse."""
    if not is_inside(location, warehouse.location):
        raise errors.BadRequest(
            f"Location {location!r} is outside the warehouse {warehouse.name!r} ({warehouse.location})"
        )
    return normalize(location)


def default_table_location(
    warehouse: Warehouse, namespace: tuple[str, ...], ns_properties: dict[str, str], name: str
) -> str:
    """``<namespace location>/<name>`` when the namespace sets one, else ``<warehouse>/<ns>/<...>/<name>``."""
    if ns_location := ns_properties.get("location"):
        return f"{normalize(ns_location)}/{name}"
    return "/".join([normalize(warehouse.location), *namespace, name])
