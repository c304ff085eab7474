"""Authentication: OAuth2 tokens, API keys, revocation and disabling on the next request, expired
and tampered tokens, external OIDC, bootstrap (CLI and embedded first start), anonymous access."""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import select

from catalog.app import build_services, create_app
from catalog.auth.tokens import InsecureConfiguration
from catalog.config import Settings
from catalog.persistence.schema import audit_log, credentials
from tests.conftest import TEST_JWT_SECRET, Backend, admin_credentials
from tests.integration.rbac_helpers import (
    ADMIN_API,
    bearer,
    client_token,
    forge,
    grant,
    make_caller,
    ok,
    principal_id,
    tamper,
)

TOKEN_URL = "/v1/oauth/tokens"
SQLITE_AND_POSTGRES = pytest.mark.parametrize("backend", ["sqlite-file", "postgres-file"], indirect=True)
SQLITE = pytest.mark.parametrize("backend", ["sqlite-file"], indirect=True)  # storage plays no part here


@pytest.fixture
def anon(app: FastAPI) -> Iterator[TestClient]:
    """A client that sends no credentials."""
    with TestClient(app) as test_client:
        yield test_client


def _assert_401(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["type"] == "NotAuthorizedException" and error["code"] == 401


# --- secure by default ------------------------------------------------------------------------------


@SQLITE_AND_POSTGRES
def test_every_catalog_route_needs_credentials(anon: TestClient) -> None:
    for method, url in [
        ("GET", "/v1/config"),
        ("GET", "/v1/lake/namespaces"),
        ("POST", "/v1/lake/namespaces"),
        ("GET", "/v1/lake/namespaces/ns/tables/t"),
        ("GET", f"{ADMIN_API}/principals"),
    ]:
        _assert_401(anon.request(method, url, json={"namespace": ["x"]}))
    # the token endpoint itself is reachable without a token
    assert anon.post(TOKEN_URL, data={"grant_type": "client_credentials"}).status_code == 400


@SQLITE
def test_malformed_authorization_headers_are_401(anon: TestClient) -> None:
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Token abc", "Bearer not-a-jwt", "Bearer dlk_", "Bearer dlk_abc"]:
        _assert_401(anon.get("/v1/config", headers={"Authorization": header}))
    _assert_401(anon.get("/v1/config", headers={"X-API-Key": "dlk_0011223344556677_wrong"}))
    _assert_401(anon.get("/v1/config", headers={"X-API-Key": "not-an-api-key"}))


# --- OAuth2 token endpoint --------------------------------------------------------------------------


@SQLITE_AND_POSTGRES
def test_client_credentials_in_form_and_basic_auth(client: TestClient, anon: TestClient) -> None:
    caller = make_caller(client, [("SELECT", "catalog", "")])
    form = {"grant_type": "client_credentials", "client_id": caller.client_id, "client_secret": caller.client_secret}
    issued = ok(anon.post(TOKEN_URL, data={**form, "scope": "catalog"}), 200)
    assert issued["token_type"] == "bearer"
    assert issued["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert issued["expires_in"] == 3600
    claims = jwt.decode(issued["access_token"], options={"verify_signature": False})
    assert claims["sub"] == caller.name and claims["cid"] == caller.client_id and claims["iss"] == "datlake-catalog"
    assert claims["exp"] - claims["iat"] == 3600
    assert anon.get("/v1/config", headers=bearer(issued["access_token"])).status_code == 200

    basic = base64.b64encode(f"{caller.client_id}:{caller.client_secret}".encode()).decode()
    response = anon.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert response.headers["cache-control"] == "no-store"
    assert anon.get("/v1/config", headers=bearer(ok(response, 200)["access_token"])).status_code == 200


@SQLITE
def test_token_endpoint_errors_use_the_oauth_format(client: TestClient, anon: TestClient) -> None:
    caller = make_caller(client)
    cases = [
        (
            {"grant_type": "client_credentials", "client_id": caller.client_id, "client_secret": "wrong"},
            401,
            "invalid_client",
        ),
        ({"grant_type": "client_credentials", "client_id": "dlc_nobody", "client_secret": "x"}, 401, "invalid_client"),
        # an API key is not a client secret
        ({"grant_type": "client_credentials", "client_id": caller.key_id, "client_secret": "x"}, 401, "invalid_client"),
        ({"grant_type": "client_credentials", "client_id": caller.client_id}, 400, "invalid_request"),
        ({"client_id": caller.client_id, "client_secret": caller.client_secret}, 400, "invalid_request"),
        ({"grant_type": "password", "username": "u", "password": "p"}, 400, "unsupported_grant_type"),
        (
            {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": "x"},
            400,
            "invalid_request",
        ),
    ]
    for form, status, error in cases:
        response = anon.post(TOKEN_URL, data=form)
        assert response.status_code == status, (form, response.text)
        body = response.json()
        assert body["error"] == error and body["error_description"], body
        assert caller.client_secret not in response.text
    wrong_basic = base64.b64encode(f"{caller.client_id}:nope".encode()).decode()
    response = anon.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {wrong_basic}"}
    )
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Basic")
    assert anon.post(TOKEN_URL, json={"grant_type": "client_credentials"}).json()["error"] == "invalid_request"


@SQLITE
def test_token_exchange_refreshes_catalog_tokens_and_api_keys(client: TestClient, anon: TestClient) -> None:
    caller = make_caller(client, [("SELECT", "catalog", "")])
    exchange = "urn:ietf:params:oauth:grant-type:token-exchange"
    access_type = "urn:ietf:params:oauth:token-type:access_token"
    first = client_token(anon, caller)
    refreshed = ok(
        anon.post(
            TOKEN_URL,
            data={
                "grant_type": exchange,
                "subject_token": first,
                "subject_token_type": access_type,
                "scope": "catalog",
            },
            headers=bearer(first),  # what the Java client sends along
        ),
        200,
    )["access_token"]
    claims = jwt.decode(refreshed, options={"verify_signature": False})
    assert claims["sub"] == caller.name and claims["cid"] == caller.client_id
    assert anon.get("/v1/config", headers=bearer(refreshed)).status_code == 200
    from_key = ok(
        anon.post(
            TOKEN_URL, data={"grant_type": exchange, "subject_token": caller.api_key, "subject_token_type": access_type}
        ),
        200,
    )["access_token"]
    assert jwt.decode(from_key, options={"verify_signature": False})["cid"] == caller.key_id
    bad = anon.post(
        TOKEN_URL, data={"grant_type": exchange, "subject_token": tamper(first), "subject_token_type": access_type}
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"


# --- API keys, revocation, disabling ----------------------------------------------------------------


@SQLITE_AND_POSTGRES
def test_api_key_as_bearer_and_x_api_key(client: TestClient, anon: TestClient) -> None:
    caller = make_caller(client, [("SELECT", "catalog", "")])
    assert anon.get("/v1/config", headers=caller.headers).status_code == 200
    assert anon.get("/v1/config", headers={"X-API-Key": caller.api_key}).status_code == 200
    # right key id, wrong secret
    key_id = caller.api_key.split("_")[1]
    _assert_401(anon.get("/v1/config", headers=bearer(f"dlk_{key_id}_{'x' * 43}")))
    # keys are listed by id and prefix only, and stored hashed
    listed = ok(client.get(f"{ADMIN_API}/principals/{caller.name}/api-keys"), 200)["api_keys"]
    assert [k["key_id"] for k in listed] == [caller.key_id]
    assert caller.api_key.split("_", 2)[2].startswith(listed[0]["prefix"]) and len(listed[0]["prefix"]) < 10
    assert caller.api_key not in json.dumps(listed)
    engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        stored = {row.id: row.secret_hash for row in conn.execute(select(credentials.c.id, credentials.c.secret_hash))}
    secret = caller.api_key.split("_", 2)[2]
    assert stored[caller.key_id] != secret and len(stored[caller.key_id]) == 64
    assert caller.client_secret not in stored.values()


@SQLITE_AND_POSTGRES
def test_revoked_key_fails_on_the_next_request(client: TestClient, anon: TestClient) -> None:
    caller = make_caller(client, [("SELECT", "catalog", "")])
    token_from_key = ok(
        anon.post(
            TOKEN_URL,
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": caller.api_key,
                "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            },
        ),
        200,
    )["access_token"]
    assert anon.get("/v1/config", headers=caller.headers).status_code == 200
    assert anon.get("/v1/config", headers=bearer(token_from_key)).status_code == 200
    ok(client.delete(f"{ADMIN_API}/principals/{caller.name}/api-keys/{caller.key_id}"), 204)
    _assert_401(anon.get("/v1/config", headers=caller.headers))
    _assert_401(anon.get("/v1/config", headers=bearer(token_from_key)))  # tokens die with their credential
    listed = ok(client.get(f"{ADMIN_API}/principals/{caller.name}/api-keys"), 200)["api_keys"]
    assert listed[0]["revoked_at"] is not None
    assert client.delete(f"{ADMIN_API}/principals/{caller.name}/api-keys/{caller.key_id}").status_code == 404
    # the client credentials are unaffected
    assert anon.get("/v1/config", headers=bearer(client_token(anon, caller))).status_code == 200


@SQLITE_AND_POSTGRES
def test_disabled_principal_fails_on_the_next_request(client: TestClient, anon: TestClient) -> None:
    caller = make_caller(client, [("SELECT", "catalog", "")])
    token = client_token(anon, caller)
    assert anon.get("/v1/config", headers=bearer(token)).status_code == 200
    disabled = ok(client.patch(f"{ADMIN_API}/principals/{caller.name}", json={"enabled": False}), 200)
    assert disabled["enabled"] is False
    _assert_401(anon.get("/v1/config", headers=bearer(token)))
    _assert_401(anon.get("/v1/config", headers=caller.headers))
    refused = anon.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "client_id": caller.client_id, "client_secret": caller.client_secret},
    )
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    ok(client.patch(f"{ADMIN_API}/principals/{caller.name}", json={"enabled": True}), 200)
    assert anon.get("/v1/config", headers=bearer(token)).status_code == 200


@SQLITE
def test_expired_api_key_fails(client: TestClient, anon: TestClient) -> None:
    caller = make_caller(client, [("SELECT", "catalog", "")])
    short = ok(client.post(f"{ADMIN_API}/principals/{caller.name}/api-keys", json={"expires_in_seconds": 2}), 201)
    assert short["expires_at"] is not None
    assert anon.get("/v1/config", headers=bearer(short["api_key"])).status_code == 200
    expires_at = datetime.fromisoformat(short["expires_at"]).timestamp()
    time.sleep(max(0.0, expires_at - time.time()) + 0.2)
    _assert_401(anon.get("/v1/config", headers=bearer(short["api_key"])))
    assert anon.get("/v1/config", headers=caller.headers).status_code == 200


# --- expired and tampered tokens ------------------------------------------------------------------


@SQLITE
def test_expired_and_tampered_tokens_are_401(app: FastAPI, client: TestClient, anon: TestClient) -> None:
    caller = make_caller(client, [("ADMIN", "catalog", "")])
    pid = principal_id(app, caller.name)
    good = forge(app, caller.name, pid, caller.client_id)
    assert anon.get("/v1/config", headers=bearer(good)).status_code == 200

    now = int(time.time())
    expired = forge(app, caller.name, pid, caller.client_id, iat=now - 7200, exp=now - 60)
    response = anon.get("/v1/config", headers=bearer(expired))
    _assert_401(response)
    assert "expired" in response.json()["error"]["message"]

    # a few seconds of clock skew between replicas is tolerated, more is not
    skewed = forge(app, caller.name, pid, caller.client_id, iat=now + 5)
    assert anon.get("/v1/config", headers=bearer(skewed)).status_code == 200
    _assert_401(anon.get("/v1/config", headers=bearer(forge(app, caller.name, pid, caller.client_id, iat=now + 300))))

    _assert_401(anon.get("/v1/config", headers=bearer(tamper(good))))
    # a valid signature over claims for someone else's credential
    other = make_caller(client)
    _assert_401(anon.get("/v1/config", headers=bearer(forge(app, caller.name, pid, other.client_id))))
    # payload swapped under the original signature
    head, _, signature = good.split(".")
    admin_pid = principal_id(app, admin_credentials(app).name)
    claims = jwt.decode(good, options={"verify_signature": False}) | {"pid": admin_pid}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _assert_401(anon.get("/v1/config", headers=bearer(f"{head}.{payload}.{signature}")))
    # signed with another key, or not signed at all
    foreign = jwt.encode(claims | {"pid": pid}, "another-secret-that-is-long-enough-000", algorithm="HS256")
    _assert_401(anon.get("/v1/config", headers=bearer(foreign)))
    unsigned = jwt.encode(claims | {"pid": pid}, None, algorithm="none")  # type: ignore[arg-type]
    _assert_401(anon.get("/v1/config", headers=bearer(unsigned)))
    # a token from an issuer the catalog does not trust
    untrusted = forge(app, caller.name, pid, caller.client_id, iss="https://elsewhere.example")
    _assert_401(anon.get("/v1/config", headers=bearer(untrusted)))
    # required claims
    _assert_401(anon.get("/v1/config", headers=bearer(forge(app, caller.name, pid, caller.client_id, exp=None))))


@SQLITE
def test_a_remembered_token_still_expires(app: FastAPI, client: TestClient, anon: TestClient) -> None:
    """A verified token is remembered by its text (no second signature check), but its expiry is
    checked on every use: valid now within the 10 s leeway, expired a second or two later."""
    caller = make_caller(client, [("SELECT", "catalog", "")])
    # Rounded up, so the token stays valid for 1-2 s from here whatever the fraction of the second.
    now = math.ceil(time.time())
    token = forge(app, caller.name, principal_id(app, caller.name), caller.client_id, iat=now - 100, exp=now - 9)
    assert anon.get("/v1/config", headers=bearer(token)).status_code == 200
    assert anon.get("/v1/config", headers=bearer(token)).status_code == 200  # the remembered one
    time.sleep(max(0.0, now + 1 - time.time()) + 0.2)  # past exp + leeway
    response = anon.get("/v1/config", headers=bearer(token))
    _assert_401(response)
    assert "expired" in response.json()["error"]["message"]


# --- external OIDC ----------------------------------------------------------------------------------


class _Jwks:
    """An RSA signing key and a JWKS document served on loopback."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": "test-key", "use": "sig", "alg": "RS256"})
        document = json.dumps({"keys": [jwk]}).encode()
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": "https://idp.test", "aud": "datlake", "iat": now, "exp": now + 300, **claims}
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": "test-key"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks() -> Iterator[_Jwks]:
    server = _Jwks()
    yield server
    server.close()


def test_external_oidc_tokens_name_existing_principals(backend_factory: Any, jwks: _Jwks) -> None:
    backend: Backend = backend_factory(
        "sqlite-file",
        auth_oidc_issuer="https://idp.test",
        auth_oidc_jwks_url=jwks.url,
        auth_oidc_audience="datlake",
        auth_oidc_principal_claim="preferred_username",
    )
    app = create_app(backend.settings)
    with TestClient(app, headers=admin_credentials(app).headers) as admin, TestClient(app) as anon:
        ok(admin.post("/v1/lake/namespaces", json={"namespace": ["sales"]}), 200)
        ok(admin.post("/v1/lake/namespaces", json={"namespace": ["hr"]}), 200)
        alice = make_caller(admin, [("SELECT", "namespace", "sales")], name="alice")
        token = jwks.token(sub="ignored", preferred_username=alice.name)
        assert anon.get("/v1/lake/namespaces/sales", headers=bearer(token)).status_code == 200
        assert anon.get("/v1/lake/namespaces/hr", headers=bearer(token)).status_code == 403  # grants apply
        assert jwks.requests >= 1
        # the token exchange turns it into a catalog token for the same principal
        exchanged = ok(
            anon.post(
                TOKEN_URL,
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "subject_token": token,
                    "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                },
            ),
            200,
        )["access_token"]
        assert anon.get("/v1/lake/namespaces/sales", headers=bearer(exchanged)).status_code == 200

        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for bad in [
            jwks.token(preferred_username="nobody"),  # no such principal
            jwks.token(preferred_username=alice.name, aud="someone-else"),
            jwks.token(preferred_username=alice.name, exp=int(time.time()) - 120),
            jwks.token(key=other_key, preferred_username=alice.name),  # not the issuer's key
            jwks.token(sub=alice.name),  # the configured claim is missing
        ]:
            _assert_401(anon.get("/v1/lake/namespaces/sales", headers=bearer(bad)))
        ok(admin.patch(f"{ADMIN_API}/principals/alice", json={"enabled": False}), 200)
        _assert_401(anon.get("/v1/lake/namespaces/sales", headers=bearer(token)))
        _assert_401(anon.get("/v1/lake/namespaces/sales", headers=bearer(exchanged)))


# --- bootstrap --------------------------------------------------------------------------------------


def _datlake(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "catalog.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@SQLITE_AND_POSTGRES
def test_bootstrap_cli_prints_credentials_once(backend: Backend) -> None:
    env = {
        "DATLAKE_HOME": str(backend.settings.home),
        "DATLAKE_DATABASE_URL": backend.settings.resolved_database_url,
        "DATLAKE_WAREHOUSE": backend.settings.resolved_warehouse,
    }
    first = _datlake(env, "admin", "bootstrap", "--json")
    assert first.returncode == 0, first.stderr
    printed = json.loads(first.stdout)
    assert set(printed) == {"client_id", "client_secret"}
    second = _datlake(env, "admin", "bootstrap", "--json")
    assert second.returncode == 1 and "already exists" in second.stderr and second.stdout == ""

    settings = backend.settings.model_copy(update={"auth_jwt_secret": TEST_JWT_SECRET})
    app = create_app(settings)
    with TestClient(app) as anon:
        form = {"grant_type": "client_credentials", **printed}
        token = ok(anon.post(TOKEN_URL, data=form), 200)["access_token"]
        admin = {"Authorization": f"Bearer {token}"}
        names = [p["name"] for p in ok(anon.get(f"{ADMIN_API}/principals", headers=admin), 200)["principals"]]
        assert names == ["admin"]
        grants = ok(anon.get(f"{ADMIN_API}/roles/admin/grants", headers=admin), 200)["grants"]
        assert grants == [{"privilege": "ADMIN", "securable": {"type": "catalog", "name": "lake"}, "warehouse": "lake"}]
    # the CLI's writes are audited too
    with app.state.services.store.engine.connect() as conn:
        actions = [row.action for row in conn.execute(select(audit_log.c.action, audit_log.c.principal))]
    assert "BOOTSTRAP" in actions


@SQLITE
def test_admin_cli_manages_principals_keys_roles_and_grants(backend: Backend) -> None:
    env = {
        "DATLAKE_HOME": str(backend.settings.home),
        "DATLAKE_DATABASE_URL": backend.settings.resolved_database_url,
        "DATLAKE_WAREHOUSE": backend.settings.resolved_warehouse,
    }
    created = json.loads(_datlake(env, "admin", "principals", "create", "etl", "--type", "service", "--json").stdout)
    assert created["name"] == "etl" and created["client_id"].startswith("dlc_")
    key = json.loads(_datlake(env, "admin", "api-keys", "create", "etl", "--json").stdout)
    assert key["api_key"].startswith(f"dlk_{key['key_id']}_")
    assert _datlake(env, "admin", "roles", "create", "writers").returncode == 0
    assert _datlake(env, "admin", "roles", "add-member", "writers", "etl").returncode == 0
    missing = _datlake(env, "admin", "grants", "add", "writers", "INSERT", "namespace", "sales")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert _datlake(env, "admin", "grants", "add", "writers", "CREATE", "catalog").returncode == 0
    bad = _datlake(env, "admin", "grants", "add", "writers", "CREATE", "table", "a.t")
    assert bad.returncode == 1 and "cannot be granted" in bad.stderr
    listed = json.loads(_datlake(env, "admin", "grants", "list", "writers", "--json").stdout)
    assert listed == [{"privilege": "CREATE", "securable": {"type": "catalog", "name": "lake"}, "warehouse": "lake"}]
    principals = json.loads(_datlake(env, "admin", "principals", "list", "--json").stdout)
    assert {"name": "etl", "type": "service", "enabled": True, "roles": ["writers"]} in principals
    app = create_app(backend.settings)
    with TestClient(app) as anon:
        headers = bearer(key["api_key"])
        assert anon.post("/v1/lake/namespaces", json={"namespace": ["sales"]}, headers=headers).status_code == 200
        assert _datlake(env, "admin", "principals", "disable", "etl").returncode == 0
        _assert_401(anon.get("/v1/config", headers=headers))
        assert _datlake(env, "admin", "principals", "enable", "etl").returncode == 0
        assert anon.get("/v1/config", headers=headers).status_code == 200
        assert _datlake(env, "admin", "api-keys", "revoke", "etl", key["key_id"]).returncode == 0
        _assert_401(anon.get("/v1/config", headers=headers))
        revoked = json.loads(_datlake(env, "admin", "api-keys", "list", "etl", "--json").stdout)
        assert revoked[0]["revoked_at"] is not None and key["api_key"] not in json.dumps(revoked)
        assert _datlake(env, "admin", "grants", "revoke", "writers", "CREATE", "catalog").returncode == 0
        assert _datlake(env, "admin", "roles", "remove-member", "writers", "etl").returncode == 0
        roles = json.loads(_datlake(env, "admin", "roles", "list", "--json").stdout)
        assert {"name": "writers", "members": []} in roles


def test_embedded_first_start_bootstraps_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "embedded"
    settings = Settings(home=home)  # nothing else: the embedded default
    assert settings.embedded and settings.database_url is None
    app = create_app(settings)
    printed = capsys.readouterr().err
    path = home / "admin-credentials.json"
    saved = json.loads(path.read_text())
    assert set(saved) == {"client_id", "client_secret"}
    assert saved["client_secret"] in printed and saved["client_id"] in printed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "jwt-secret").stat().st_mode) == 0o600
    with TestClient(app) as anon:
        token = ok(anon.post(TOKEN_URL, data={"grant_type": "client_credentials", **saved}), 200)["access_token"]
        assert anon.post("/v1/lake/namespaces", json={"namespace": ["n"]}, headers=bearer(token)).status_code == 200
    app.state.services.store.engine.dispose()

    again = create_app(Settings(home=home))
    assert capsys.readouterr().err == ""  # no second admin, nothing printed
    assert json.loads(path.read_text()) == saved
    names = [p.name for p in again.state.services.access.list_principals()]
    assert names == ["admin"]
    # the same signing key survives restarts: the earlier token is still valid
    with TestClient(again) as anon:
        assert anon.get("/v1/config", headers=bearer(token)).status_code == 200
    again.state.services.store.engine.dispose()


def test_external_database_without_jwt_secret_refuses_to_start(backend_factory: Any) -> None:
    backend: Backend = backend_factory("postgres-file", auth_jwt_secret=None)
    with pytest.raises(InsecureConfiguration, match="DATLAKE_AUTH_JWT_SECRET"):
        build_services(backend.settings)
    env = {
        "DATLAKE_DATABASE_URL": backend.settings.resolved_database_url,
        "DATLAKE_HOME": str(backend.settings.home),
        "DATLAKE_PORT": "1",
        "DATLAKE_AUTH_JWT_SECRET": "",
    }
    result = _datlake(env, "serve")
    assert result.returncode == 1
    messages = [line for line in result.stderr.splitlines() if line.startswith("datlake:")]
    assert len(messages) == 1 and "DATLAKE_AUTH_JWT_SECRET" in messages[0]
    assert "Traceback" not in result.stderr
    with pytest.raises(InsecureConfiguration, match="32"):
        build_services(backend.settings.model_copy(update={"auth_jwt_secret": "short"}))


# --- anonymous access -------------------------------------------------------------------------------


def test_anonymous_access_only_when_enabled(backend_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    backend: Backend = backend_factory("sqlite-file", auth_allow_anonymous=True)
    with caplog.at_level(logging.WARNING, logger="catalog.auth.setup"):
        app = create_app(backend.settings)
    assert any("ALLOW_ANONYMOUS" in record.getMessage() for record in caplog.records)
    with TestClient(app) as anon:
        assert anon.get("/v1/config").status_code == 200
        assert anon.post("/v1/lake/namespaces", json={"namespace": ["free"]}).status_code == 200
        assert anon.get(f"{ADMIN_API}/principals").status_code == 200  # full access, administration included
        # presented credentials are still checked: a bad one is not downgraded to anonymous
        _assert_401(anon.get("/v1/config", headers=bearer("dlk_0011223344556677_wrong")))
    with app.state.services.store.engine.connect() as conn:
        who = {row.principal for row in conn.execute(select(audit_log.c.principal))}
    assert "anonymous" in who


# --- audit and secrets ------------------------------------------------------------------------------


@SQLITE_AND_POSTGRES
def test_writes_and_denials_are_audited_without_secrets(
    app: FastAPI, client: TestClient, anon: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reader = make_caller(client, [("SELECT", "catalog", "")])
    token = client_token(anon, reader)
    ok(client.post("/v1/lake/namespaces", json={"namespace": ["audited"]}), 200)
    assert anon.post("/v1/lake/namespaces", json={"namespace": ["nope"]}, headers=bearer(token)).status_code == 403
    assert anon.get("/v1/config").status_code == 401
    assert anon.get("/v1/lake/namespaces/audited", headers=bearer(token)).status_code == 200  # an allowed read
    events = ok(client.get(f"{ADMIN_API}/audit", params={"limit": 1000}), 200)["events"]
    created = [e for e in events if e["action"] == "CREATE_NAMESPACE" and e["outcome"] == "allowed"]
    assert created and created[0]["principal"] == "test-admin" and created[0]["status"] == 200
    assert created[0]["securable"] == "namespace audited"
    denied = [e for e in events if e["outcome"] == "denied" and e["principal"] == reader.name]
    assert [(e["action"], e["securable"], e["status"]) for e in denied] == [("CREATE_NAMESPACE", "namespace nope", 403)]
    unauthenticated = [e for e in events if e["status"] == 401]
    assert unauthenticated and unauthenticated[0]["action"] == "GET /v1/config"
    assert not any(e["action"] == "LOAD_NAMESPACE" for e in events)  # allowed reads are not audited
    assert any(e["action"] == "CREATE_API_KEY" and e["securable"] == f"principal {reader.name}" for e in events)
    everything = json.dumps(events) + caplog.text
    for secret in (reader.api_key, reader.client_secret, token, admin_credentials(app).api_key):
        assert secret not in everything
    assert all(e["at"] and e["request_id"] for e in events)


@SQLITE_AND_POSTGRES
def test_denials_with_nul_bytes_in_the_path_or_client_id_are_audited(
    client: TestClient, anon: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL text cannot hold NUL: such a request was denied but its audit row was lost."""
    assert anon.get("/v1/lake/namespaces/a%00b").status_code == 401
    form = {"grant_type": "client_credentials", "client_id": "dlc_\x00x", "client_secret": "wrong"}
    assert anon.post("/v1/oauth/tokens", data=form).status_code == 401
    events = ok(client.get(f"{ADMIN_API}/audit", params={"limit": 1000}), 200)["events"]
    denied = {(e["securable"], e["principal"]) for e in events if e["outcome"] == "denied"}
    assert ("/v1/lake/namespaces/a%00b", None) in denied, denied
    assert ("/v1/oauth/tokens", "client:dlc_%00x") in denied, denied
    assert "could not write" not in caplog.text


@SQLITE
def test_grant_on_parent_namespace_covers_children_and_lists_filter(client: TestClient, anon: TestClient) -> None:
    for ns in (["a"], ["a", "b"], ["a", "b", "c"], ["z"]):
        ok(client.post("/v1/lake/namespaces", json={"namespace": ns}), 200)
    caller = make_caller(client, [("SELECT", "namespace", "a.b")])
    h = caller.headers
    assert ok(anon.get("/v1/lake/namespaces", headers=h), 200)["namespaces"] == [["a"]]
    assert ok(anon.get("/v1/lake/namespaces", params={"parent": "a"}, headers=h), 200)["namespaces"] == [["a", "b"]]
    children = ok(anon.get("/v1/lake/namespaces", params={"parent": "a\x1fb"}, headers=h), 200)["namespaces"]
    assert children == [["a", "b", "c"]]
    assert anon.get("/v1/lake/namespaces/a%1Fb%1Fc", headers=h).status_code == 200
    assert anon.get("/v1/lake/namespaces/a", headers=h).status_code == 200  # something inside is visible
    assert anon.get("/v1/lake/namespaces/z", headers=h).status_code == 403
    assert anon.get("/v1/lake/namespaces", params={"parent": "z"}, headers=h).status_code == 403
    # 404 only with a covering grant; 403 whether or not the object exists otherwise
    assert anon.get("/v1/lake/namespaces/a%1Fb%1Fmissing", headers=h).status_code == 404
    assert anon.get("/v1/lake/namespaces/missing", headers=h).status_code == 403
    assert anon.get("/v1/lake/namespaces/a%1Fb/tables/missing", headers=h).status_code == 404
    assert anon.get("/v1/lake/namespaces/z/tables/missing", headers=h).status_code == 403
    grant(client, f"role-{caller.name}", "CREATE", "namespace", "z")
    assert anon.post("/v1/lake/namespaces", json={"namespace": ["z", "new"]}, headers=h).status_code == 200
