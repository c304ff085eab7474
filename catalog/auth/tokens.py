"""Access tokens: the catalog's own HS256 JWTs, and trust of an external OIDC issuer.

A catalog token carries ``sub`` (principal name), ``pid`` (principal id), ``cid`` (the
credential it was issued for), ``iat``, ``exp`` and ``iss``. The signature and expiry are
checked here (the signature once per token: a verified token is remembered by its text, its
expiry checked on every use); whether the credential is still live and the principal still
enabled is checked on every request by the authenticator.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from catalog import errors
from catalog.config import Settings
from catalog.lru import LruCache

ALGORITHM = "HS256"
VERIFIED_TOKENS_KEPT = 10_000
LEEWAY_SECONDS = 10  # clock skew between replicas (iat) and clients (exp) tolerated on our own tokens
EXTERNAL_LEEWAY_SECONDS = 30  # and on an identity provider's tokens
EXTERNAL_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"]
JWT_SECRET_FILE = "jwt-secret"


class InsecureConfiguration(RuntimeError):
    """The server would run with an unsafe authentication setup; it refuses to start."""


def write_private(path: Path, content: str) -> bool:
    """Create ``path`` with mode 0600 holding ``content``; False when it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    return True


def resolve_jwt_secret(settings: Settings) -> str:
    """``DATLAKE_AUTH_JWT_SECRET``; in embedded mode a key generated once under the home directory."""
    if settings.auth_jwt_secret:
        if len(settings.auth_jwt_secret) < 32:
            raise InsecureConfiguration("DATLAKE_AUTH_JWT_SECRET must be at least 32 characters long")
        return settings.auth_jwt_secret
    if not settings.embedded:
        raise InsecureConfiguration(
            "DATLAKE_AUTH_JWT_SECRET is required with an external database "
            "(set it to a random string of 32+ characters)"
        )
    path = settings.home / JWT_SECRET_FILE
    write_private(path, secrets.token_urlsafe(48))
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise InsecureConfiguration(f"{path} holds a key shorter than 32 characters; delete it to generate a new one")
    return secret


class NotKept(Exception):
    """What was asked for ``kept_only`` needs blocking I/O (the database, the identity provider's
    keys): ask again off the event loop."""


@dataclass(frozen=True)
class TokenClaims:
    """The verified claims the authenticator acts on."""

    principal_name: str
    principal_id: int | None
    credential_id: str | None
    external: bool


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


class TokenService:
    """Issues and verifies access tokens."""

    def __init__(self, settings: Settings, secret: str) -> None:
        self.secret = secret
        self.issuer = settings.auth_jwt_issuer
        self.ttl = settings.auth_token_ttl_seconds
        self.oidc_issuer = settings.auth_oidc_issuer
        self.oidc_audience = settings.auth_oidc_audience
        self.oidc_claim = settings.auth_oidc_principal_claim
        self._jwks: jwt.PyJWKClient | None = None
        # Our own tokens, by their exact text, once their signature checked out: verifying one costs
        # ~50 us of the ~1 ms a warm request takes. Expiry is checked again on every use.
        self._verified: LruCache[str, tuple[TokenClaims, int]] = LruCache(VERIFIED_TOKENS_KEPT)
        if settings.auth_oidc_issuer:
            if not settings.auth_oidc_jwks_url:
                raise InsecureConfiguration("DATLAKE_AUTH_OIDC_ISSUER needs DATLAKE_AUTH_OIDC_JWKS_URL")
            self._jwks = jwt.PyJWKClient(settings.auth_oidc_jwks_url, cache_keys=True, lifespan=300, timeout=10)

    def issue(self, principal_name: str, principal_id: int, credential_id: str | None) -> IssuedToken:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": principal_name,
            "pid": principal_id,
            "iat": now,
            "exp": now + self.ttl,
            "iss": self.issuer,
        }
        if credential_id is not None:
            claims["cid"] = credential_id
        return IssuedToken(jwt.encode(claims, self.secret, algorithm=ALGORITHM), self.ttl)

    def verify(self, token: str, *, kept_only: bool = False) -> TokenClaims:
        """Verified claims of a catalog or trusted external token; :class:`errors.NotAuthorized` otherwise.

        ``kept_only``: raise :class:`NotKept` for an external token (verifying it may fetch the
        identity provider's keys); our own tokens are verified in memory."""
        kept = self._verified.get(token)
        if kept is not None:
            claims, expires = kept
            if time.time() < expires + LEEWAY_SECONDS:
                return claims
            self._verified.discard(token)
            raise errors.NotAuthorized("Access token expired")
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise errors.NotAuthorized("Malformed access token") from exc
        issuer = unverified.get("iss")
        if issuer == self.issuer:
            return self._verify_own(token)
        if self._jwks is not None and issuer == self.oidc_issuer:
            if kept_only:
                raise NotKept
            return self._verify_external(token)
        raise errors.NotAuthorized("Access token from an untrusted issuer")

    def _verify_own(self, token: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "sub", "pid"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise errors.NotAuthorized("Access token expired") from exc
        except jwt.PyJWTError as exc:
            raise errors.NotAuthorized("Invalid access token") from exc
        pid, cid = claims.get("pid"), claims.get("cid")
        if not isinstance(pid, int) or not isinstance(claims["sub"], str) or not (cid is None or isinstance(cid, str)):
            raise errors.NotAuthorized("Invalid access token")
        verified = TokenClaims(claims["sub"], pid, cid, external=False)
        if isinstance(claims["exp"], int):
            self._verified.put(token, (verified, claims["exp"]))
        return verified

    def _verify_external(self, token: str) -> TokenClaims:
        assert self._jwks is not None
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=EXTERNAL_ALGORITHMS,
                issuer=self.oidc_issuer,
                audience=self.oidc_audience,
                leeway=EXTERNAL_LEEWAY_SECONDS,
                options={"require": ["exp", "iss"], "verify_aud": self.oidc_audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise errors.NotAuthorized("Access token expired") from exc
        except jwt.PyJWKClientConnectionError as exc:
            raise errors.NotAuthorized("The identity provider's keys are unavailable") from exc
        except jwt.PyJWTError as exc:
            raise errors.NotAuthorized("Invalid access token") from exc
        name = claims.get(self.oidc_claim)
        if not isinstance(name, str) or not name:
            raise errors.NotAuthorized(f"Access token has no {self.oidc_claim!r} claim naming a principal")
        return TokenClaims(name, None, None, external=True)
