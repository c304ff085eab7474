"""Authentication of a request: API keys, the catalog's own JWTs, external OIDC tokens.

Accepted: ``Authorization: Bearer <api key | JWT>`` and ``X-API-Key: <api key>``. Every request
checks the credential and the principal (one indexed query that also returns the principal's
grants), so a revoked key, an expired key or a disabled principal fails on the next request. On
PostgreSQL the query's result is kept in memory until PostgreSQL notifies any access change
(:mod:`catalog.persistence.caller_cache`): a request whose caller is kept is authenticated
without a database round trip (``kept_only=True``, run on the event loop).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from catalog import audit, errors
from catalog.auth.keys import parse_api_key, secret_matches
from catalog.auth.principal import ANONYMOUS, Principal
from catalog.auth.tokens import IssuedToken, NotKept, TokenService
from catalog.persistence.access_store import API_KEY, CLIENT, AccessStore, CallerRecord

log = logging.getLogger(__name__)

INVALID = "Invalid or expired credentials"


@dataclass(frozen=True)
class Presented:
    """The credential a request carries."""

    token: str
    via: str  # "bearer" | "x-api-key"


def presented_credential(headers: Mapping[str, str]) -> Presented | None:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return Presented(value.strip(), "bearer")
        raise errors.NotAuthorized("Unsupported Authorization header: use Bearer <token or API key>")
    api_key = headers.get("x-api-key")
    if api_key and api_key.strip():
        return Presented(api_key.strip(), "x-api-key")
    return None


class Authenticator:
    """Turns request headers into a :class:`Principal` or raises :class:`errors.NotAuthorized` (401)."""

    def __init__(self, store: AccessStore, tokens: TokenService, allow_anonymous: bool) -> None:
        self.store = store
        self.tokens = tokens
        self.allow_anonymous = allow_anonymous

    @property
    def keeps_callers(self) -> bool:
        """Whether callers may be kept in memory now (PostgreSQL with its listener up)."""
        return self.store.callers.listening

    def authenticate(self, headers: Mapping[str, str], *, kept_only: bool = False) -> Principal:
        """``kept_only``: no blocking I/O (database, identity provider's keys); raise
        :class:`~catalog.auth.tokens.NotKept` where it would be needed."""
        presented = presented_credential(headers)
        if presented is None:
            if self.allow_anonymous:
                audit.set_principal(ANONYMOUS.name)
                return ANONYMOUS
            raise errors.NotAuthorized("Authentication required: send Authorization: Bearer <token or API key>")
        principal = self.principal_for_token(
            presented.token, api_key_only=presented.via == "x-api-key", kept_only=kept_only
        )
        audit.set_principal(principal.name)
        return principal

    def principal_for_token(self, token: str, *, api_key_only: bool = False, kept_only: bool = False) -> Principal:
        """The principal behind an API key or an access token (also used by the token exchange)."""
        parsed = parse_api_key(token)
        if parsed is not None:
            return self._api_key(*parsed, kept_only=kept_only)
        if api_key_only:
            raise errors.NotAuthorized(INVALID)
        claims = self.tokens.verify(token, kept_only=kept_only)
        if claims.external:
            record = self._caller(None, claims.principal_name, kept_only)
            if record is None:
                raise errors.NotAuthorized(f"No principal named by the token: {claims.principal_name}")
            return self._usable(record, check_credential=False)
        # A token exchanged from an external token has no credential of ours behind it.
        record = self._caller(claims.credential_id, claims.principal_name, kept_only)
        if record is None or record.principal_id != claims.principal_id:
            raise errors.NotAuthorized(INVALID)
        return self._usable(record, check_credential=claims.credential_id is not None)

    def _caller(self, credential_id: str | None, name: str, kept_only: bool) -> CallerRecord | None:
        """The caller of a credential, or of a principal name where there is no credential."""
        if "\x00" in name or (credential_id is not None and "\x00" in credential_id):
            return None  # no stored id or name holds a NUL (PostgreSQL text cannot): not a database error
        if kept_only:
            record = self.store.cached_caller(credential_id, name)
            if record is None:
                raise NotKept
            return record
        if credential_id is None:
            return self.store.caller_by_name(name)
        return self.store.caller_by_credential(credential_id)

    def _api_key(self, key_id: str, secret: str, *, kept_only: bool = False) -> Principal:
        record = self._caller(key_id, "", kept_only)
        if (
            record is None
            or record.credential_kind != API_KEY
            or record.secret_hash is None
            or not secret_matches(secret, record.secret_hash)
        ):
            raise errors.NotAuthorized(INVALID)
        return self._usable(record, check_credential=True)

    def client_credentials(self, client_id: str, client_secret: str, *, kept_only: bool = False) -> Principal:
        """The principal of an OAuth2 client whose secret matches; NotAuthorized otherwise."""
        record = self._caller(client_id, "", kept_only)
        if (
            record is None
            or record.credential_kind != CLIENT
            or record.secret_hash is None
            or not secret_matches(client_secret, record.secret_hash)
        ):
            raise errors.NotAuthorized("Invalid client credentials")
        return self._usable(record, check_credential=True)

    @staticmethod
    def _usable(record: CallerRecord, *, check_credential: bool) -> Principal:
        if check_credential and not record.credential_usable(datetime.now(UTC)):
            raise errors.NotAuthorized(INVALID)
        if not record.enabled:
            raise errors.NotAuthorized(f"Principal {record.name} is disabled")
        return Principal(record.principal_id, record.name, record.type, record.grants, record.credential_id)

    def issue_token(self, principal: Principal) -> IssuedToken:
        """A catalog access token for an authenticated principal, tied to its credential."""
        assert principal.id is not None
        return self.tokens.issue(principal.name, principal.id, principal.credential_id)
