"""ASGI middlewares: request size limit and Idempotency-Key replay.

Both are plain ASGI (no BaseHTTPMiddleware) so that requests without a body or a key pay
almost nothing on the hot path.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from anyio import to_thread
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.errors import CatalogError, error_body
from catalog.persistence.store import CatalogStore

MUTATING = {"POST", "PUT", "DELETE", "PATCH"}
# Outcomes that are final and safe to replay; auth failures and throttling are not.
NOT_REPLAYED = {401, 403, 408, 419, 429}
MAX_KEY_LENGTH = 255  # idempotency_records.key
SELF_IDEMPOTENT = "/api/v1/jobs/"  # routes that implement Idempotency-Key themselves


async def _send_json(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Refuse request bodies above ``max_bytes`` with 413 in the spec's error model."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(send)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        message = f"Request body larger than {self.max_bytes} bytes"
        await _send_json(send, 413, json.dumps(error_body(413, "PayloadTooLargeException", message)).encode())


class _TooLarge(Exception):
    pass


async def _caller(scope: Scope) -> str | None:
    """Who sends the request, as the routes will authenticate it; None when the credentials fail."""
    services = getattr(getattr(scope.get("app"), "state", None), "services", None)
    authenticator = getattr(services, "authenticator", None)
    if authenticator is None:
        return ""
    try:
        principal = await to_thread.run_sync(authenticator.authenticate, Headers(scope=scope))
    except CatalogError:
        return None
    return f"{principal.id}:{principal.name}"


class IdempotencyKeys:
    """Replay the first outcome of a mutating request that carries the same ``Idempotency-Key``."""

    def __init__(self, app: ASGIApp, store: CatalogStore, lifetime_seconds: int) -> None:
        self.app = app
        self.store = store
        self.lifetime = lifetime_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = None
        if scope["type"] == "http" and scope["method"] in MUTATING:
            key = next((v.decode("latin-1") for n, v in scope["headers"] if n == b"idempotency-key"), None)
        # Register-snapshot jobs keep their Idempotency-Key per submitter, forever, on the job row itself.
        if not key or self.lifetime <= 0 or scope["path"].startswith(SELF_IDEMPOTENT):
            await self.app(scope, receive, send)
            return
        if len(key) > MAX_KEY_LENGTH:  # it could not be recorded; refuse it before anything happens
            message = f"Idempotency-Key longer than {MAX_KEY_LENGTH} characters (a UUID has 36)"
            await _send_json(send, 400, json.dumps(error_body(400, "BadRequestException", message)).encode())
            return
        caller = await _caller(scope)
        if caller is None:  # not authenticated: the route answers 401; nothing is replayed or recorded
            await self.app(scope, receive, send)
            return
        # An outcome belongs to the caller who caused it: nobody else gets it replayed by presenting the key.
        record_key = hashlib.sha256(f"{caller}\x00{key}".encode()).hexdigest()
        operation = f"{scope['method']} {scope['path']}"
        previous = await to_thread.run_sync(self.store.get_idempotent_outcome, record_key, self.lifetime)
        if previous is not None:
            prev_operation, status, body = previous
            if prev_operation != operation:
                message = f"Idempotency-Key {key!r} was already used for {prev_operation}"
                await _send_json(
                    send, 422, json.dumps(error_body(422, "UnprocessableEntityException", message)).encode()
                )
                return
            await _send_json(send, status, body.encode(), [(b"idempotent-replayed", b"true")])
            return

        status_holder: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capturing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capturing_send)
        status = status_holder.get("status", 500)
        if status < 500 and status not in NOT_REPLAYED:
            body = b"".join(chunks).decode()
            await to_thread.run_sync(
                self.store.save_idempotent_outcome, record_key, operation, status, body, self.lifetime
            )
