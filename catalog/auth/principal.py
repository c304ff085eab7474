"""The authenticated caller, as every route and service sees it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """An authenticated principal. ``id`` is None only for the anonymous caller (when allowed)."""

    id: int | None
    name: str
    type: str  # "user" | "service" | "anonymous"

    @property
    def is_anonymous(self) -> bool:
        return self.id is None


ANONYMOUS = Principal(id=None, name="anonymous", type="anonymous")
