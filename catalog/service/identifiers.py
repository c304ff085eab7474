"""Validation of namespace and table/view names coming from clients."""

from __future__ import annotations

from catalog import errors
from catalog.persistence.schema import NAMESPACE_SEPARATOR

MAX_NAME_LENGTH = 255
MAX_NAMESPACE_DEPTH = 16


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise errors.BadRequest(f"Invalid {what}: the name must be a non-empty string")
    if len(value) > MAX_NAME_LENGTH:
        raise errors.BadRequest(f"Invalid {what}: longer than {MAX_NAME_LENGTH} characters")
    if NAMESPACE_SEPARATOR in value or "/" in value or any(ord(ch) < 0x20 for ch in value):
        raise errors.BadRequest(f"Invalid {what} {value!r}: control characters and '/' are not allowed")
    return value


def check_namespace(levels: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Return the namespace as a tuple, or raise BadRequest."""
    if not levels:
        raise errors.BadRequest("Invalid namespace: it must have at least one level")
    if len(levels) > MAX_NAMESPACE_DEPTH:
        raise errors.BadRequest(f"Invalid namespace: deeper than {MAX_NAMESPACE_DEPTH} levels")
    return tuple(_check_name(level, "namespace level") for level in levels)


def check_entity_name(name: str) -> str:
    return _check_name(name, "table or view name")


def parse_namespace_path(encoded: str) -> tuple[str, ...]:
    """A namespace from a URL path segment (levels separated by the unit separator, %1F)."""
    return check_namespace(tuple(encoded.split(NAMESPACE_SEPARATOR)))
