"""Authentication of a request: API keys, the catalog's own JWTs, external OIDC tokens."""

from __future__ import annotations

from collections.abc import Mapping

from catalog import errors
from catalog.auth.principal import Principal


class Authenticator:
    """Turns request headers into a :class:`Principal` or raises :class:`errors.NotAuthorized` (401)."""

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        raise errors.NotAuthorized("Authentication is not configured")
