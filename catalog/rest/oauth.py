"""``POST /v1/oauth/tokens``: the OAuth2 token endpoint Iceberg clients call.

* ``grant_type=client_credentials`` with ``client_id``/``client_secret`` in the form (PyIceberg
  ``credential="id:secret"``, DuckDB ``CLIENT_ID``/``CLIENT_SECRET``, Spark ``credential``) or in
  HTTP Basic auth (PyIceberg's OAuth2AuthManager, RFC 6749 2.3.1). ``scope`` is accepted and
  ignored: what a token may do is decided by grants, not scopes.
* ``grant_type=urn:ietf:params:oauth:grant-type:token-exchange`` with ``subject_token`` (a
  catalog token or an API key, or a trusted OIDC token): how the Java client refreshes; the new
  token is tied to the same credential.

Errors use the OAuth2 format ``{"error", "error_description"}`` (RFC 6749 5.2), not the catalog's.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from catalog import audit, errors
from catalog.auth.authenticator import Authenticator
from catalog.auth.deps import kept_or_looked_up
from catalog.auth.principal import Principal
from catalog.rest.api_docs import TOKEN_REQUEST_BODY, TOKEN_RESPONSES

router = APIRouter(prefix="/v1", tags=["OAuth2"])

CLIENT_CREDENTIALS = "client_credentials"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ACCEPTED_SUBJECT_TYPES = {
    ACCESS_TOKEN_TYPE,
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(status: int, error: str, description: str, basic: bool = False) -> JSONResponse:
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="datlake"' if basic else 'Bearer realm="datlake"'
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    # RFC 6749 2.3.1: both parts are form-urlencoded before base64.
    return unquote_plus(client_id), unquote_plus(secret)


@router.post(
    "/oauth/tokens",
    summary="Exchange client credentials or a token for an access token",
    operation_id="getToken",
    responses=TOKEN_RESPONSES,
    openapi_extra={"requestBody": TOKEN_REQUEST_BODY},
)
async def issue_token(request: Request) -> JSONResponse:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded") and not content_type.startswith(
        "multipart/form-data"
    ):
        return _oauth_error(400, "invalid_request", "The body must be form-encoded (application/x-www-form-urlencoded)")
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    authenticator: Authenticator = request.app.state.services.authenticator
    grant_type = fields.get("grant_type")
    if not grant_type:
        return _oauth_error(400, "invalid_request", "grant_type is required")

    if grant_type == CLIENT_CREDENTIALS:
        basic = _basic_credentials(request)
        client_id, client_secret = basic if basic else (fields.get("client_id"), fields.get("client_secret"))
        if not client_id or not client_secret:
            return _oauth_error(400, "invalid_request", "client_id and client_secret are required")
        audit.set_principal(f"client:{client_id[:64]}")
        try:
            principal: Principal = await kept_or_looked_up(
                authenticator, authenticator.client_credentials, client_id, client_secret
            )
        except errors.NotAuthorized as exc:
            return _oauth_error(401, "invalid_client", exc.message, basic=basic is not None)
    elif grant_type == TOKEN_EXCHANGE:
        subject_token = fields.get("subject_token")
        subject_type = fields.get("subject_token_type")
        if not subject_token or not subject_type:
            return _oauth_error(400, "invalid_request", "subject_token and subject_token_type are required")
        if subject_type not in ACCEPTED_SUBJECT_TYPES:
            return _oauth_error(400, "invalid_request", f"Unsupported subject_token_type: {subject_type}")
        try:
            principal = await kept_or_looked_up(authenticator, authenticator.principal_for_token, subject_token)
        except errors.NotAuthorized as exc:
            return _oauth_error(400, "invalid_request", f"Invalid subject_token: {exc.message}")
    else:
        return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type: {grant_type}")

    audit.set_principal(principal.name)
    issued = authenticator.issue_token(principal)
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "token_type": "bearer",
            "expires_in": issued.expires_in,
            "issued_token_type": ACCESS_TOKEN_TYPE,
        },
        headers=NO_STORE,
    )
