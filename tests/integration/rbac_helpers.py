"""Principals, roles, grants and tokens for the authentication and authorization tests.

Everything goes through the admin API of the app under test (as the test administrator), so the
helpers exercise the same paths an operator uses.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import FastAPI
from fastapi.testclient import TestClient

ADMIN_API = "/api/v1/admin"

GrantSpec = tuple[str, str, str]  # (privilege, securable type, dotted name)


@dataclass(frozen=True)
class Caller:
    name: str
    client_id: str
    client_secret: str
    api_key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def ok(response: Any, status: int) -> Any:
    assert response.status_code == status, f"{response.status_code} != {status}: {response.text}"
    return response.json() if response.content else None


def make_caller(admin: TestClient, grants: list[GrantSpec] = (), name: str | None = None) -> Caller:  # type: ignore[assignment]
    """A new principal holding a new role with ``grants``, with client credentials and an API key."""
    name = name or f"p-{uuid.uuid4().hex[:10]}"
    created = ok(admin.post(f"{ADMIN_API}/principals", json={"name": name, "type": "service"}), 201)
    role = f"role-{name}"
    ok(admin.post(f"{ADMIN_API}/roles", json={"name": role}), 201)
    ok(admin.put(f"{ADMIN_API}/roles/{role}/principals/{name}"), 204)
    for privilege, kind, securable in grants:
        grant(admin, role, privilege, kind, securable)
    key = ok(admin.post(f"{ADMIN_API}/principals/{name}/api-keys"), 201)
    return Caller(name, created["client_id"], created["client_secret"], key["api_key"], key["key_id"])


def grant(admin: TestClient, role: str, privilege: str, kind: str, name: str = "") -> None:
    body = {"privilege": privilege, "securable": {"type": kind, "name": name}}
    ok(admin.post(f"{ADMIN_API}/roles/{role}/grants", json=body), 201)


def revoke(admin: TestClient, role: str, privilege: str, kind: str, name: str = "") -> None:
    body = {"privilege": privilege, "securable": {"type": kind, "name": name}}
    ok(admin.request("DELETE", f"{ADMIN_API}/roles/{role}/grants", json=body), 204)


def client_token(client: TestClient, caller: Caller) -> str:
    body = ok(
        client.post(
            "/v1/oauth/tokens",
            data={
                "grant_type": "client_credentials",
                "client_id": caller.client_id,
                "client_secret": caller.client_secret,
            },
            headers={"Authorization": ""},
        ),
        200,
    )
    token: str = body["access_token"]
    return token


def jwt_secret(app: FastAPI) -> str:
    secret: str = app.state.services.authenticator.tokens.secret
    return secret


def forge(app: FastAPI, caller_name: str, principal_id: int, credential_id: str | None, **claims: Any) -> str:
    """A token signed with the app's real key, with chosen claims (expired ones, other principals...)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": caller_name,
        "pid": principal_id,
        "iat": now,
        "exp": now + 600,
        "iss": app.state.services.settings.auth_jwt_issuer,
    }
    if credential_id is not None:
        payload["cid"] = credential_id
    payload.update(claims)
    payload = {key: value for key, value in payload.items() if value is not None}  # None: leave the claim out
    return jwt.encode(payload, jwt_secret(app), algorithm="HS256")


def principal_id(app: FastAPI, name: str) -> int:
    row = app.state.services.access.principal(name)
    return int(row.id)


def tamper(token: str) -> str:
    """Change one character of the signature (keeping it valid base64url)."""
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[5] != "A" else "B").join((signature[:5], signature[6:]))
    return ".".join((head, payload, flipped))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
