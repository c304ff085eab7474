"""Generation, parsing and verification of API keys and OAuth2 client secrets.

Secrets are 256-bit random strings shown once; only their SHA-256 is stored (a slow password
hash would add latency to every request without adding safety to random secrets) and they are
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

API_KEY_PREFIX = "dlk_"
CLIENT_ID_PREFIX = "dlc_"
PREFIX_CHARS = 6  # characters of a secret kept in clear for listing


@dataclass(frozen=True)
class NewSecret:
    """A freshly generated credential: ``token`` is what the caller presents, shown exactly once."""

    id: str
    secret: str
    token: str

    @property
    def prefix(self) -> str:
        return self.secret[:PREFIX_CHARS]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret).encode(), stored_hash.encode())


def new_api_key() -> NewSecret:
    """``dlk_<key_id>_<secret>``: the key id is hex (no underscore), so the first ``_`` after it splits."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewSecret(key_id, secret, f"{API_KEY_PREFIX}{key_id}_{secret}")


def parse_api_key(token: str) -> tuple[str, str] | None:
    """(key_id, secret) of an API key, or None when ``token`` does not have the API key format."""
    if not token.startswith(API_KEY_PREFIX):
        return None
    key_id, sep, secret = token[len(API_KEY_PREFIX) :].partition("_")
    if not sep or not key_id or not secret or len(key_id) > 64:
        return None
    return key_id, secret


def new_client() -> NewSecret:
    """OAuth2 client credentials: ``token`` is ``client_id:client_secret`` (PyIceberg's ``credential``)."""
    client_id = CLIENT_ID_PREFIX + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewSecret(client_id, secret, f"{client_id}:{secret}")
