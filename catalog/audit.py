"""The audit log: every write and every denied request, with who, what, on what, when and how it ended.

A plain ASGI middleware opens a :class:`RequestAudit` for each API request (a context variable,
so the authorizer can record its decisions without a reference to the request); when the
response has been sent it writes the rows: one per authorization decision of a writing request,
and one per denial. Secrets never reach the log: only principal names, action names, securable
names and the request path (without its query string) are stored.
"""

from __future__ import annotations

import logging
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from anyio import to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.observability import request_id_var

log = logging.getLogger(__name__)

MUTATING = {"POST", "PUT", "DELETE", "PATCH"}
# Reads that are not writes although they use POST: token requests, the metrics reports engines
# post after every scan and commit, and remote-signing requests (one per S3 request a client
# makes; the commit that publishes the files is audited). Auditing those would add a database
# write per query or per object read. Denied ones are still recorded.
READ_POSTS = ("/v1/oauth/tokens",)
READ_POST_SUFFIXES = ("/metrics", "/sign")


@dataclass
class AuditEvent:
    principal: str | None
    action: str
    securable: str
    allowed: bool


@dataclass
class RequestAudit:
    """What one request did, as seen by the authenticator and the authorizer."""

    method: str
    path: str
    request_id: str
    principal: str | None = None
    events: list[AuditEvent] = field(default_factory=list)
    subject: tuple[str, str] | None = None  # (action, securable) named by the route itself


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    principal: str | None
    action: str
    securable: str
    outcome: str  # allowed | denied | failed
    status_code: int | None
    request_id: str | None


class AuditSink(Protocol):
    def write_audit(self, rows: list[AuditRow]) -> None: ...


_current: ContextVar[RequestAudit | None] = ContextVar("datlake_request_audit", default=None)


def current() -> RequestAudit | None:
    return _current.get()


def set_principal(name: str | None) -> None:
    """Remember who the request was authenticated as (also when it is denied later)."""
    audit = _current.get()
    if audit is not None:
        audit.principal = name


def record_decision(principal: str | None, action: str, securable: str, allowed: bool) -> None:
    """Called by the authorizer for every decision."""
    audit = _current.get()
    if audit is not None:
        audit.events.append(AuditEvent(principal, action, securable, allowed))


def describe(action: str, securable: str) -> None:
    """Name what a writing request does more precisely than its authorization check (admin API)."""
    audit = _current.get()
    if audit is not None:
        audit.subject = (action, securable)


def rows_for(audit: RequestAudit, status: int, route: str | None, now: datetime | None = None) -> list[AuditRow]:
    """The audit rows of a finished request (none for an allowed read)."""
    at = now or datetime.now(UTC)
    denied = status in (401, 403)
    writes = (
        audit.method in MUTATING
        and not audit.path.startswith(READ_POSTS)
        and not audit.path.endswith(READ_POST_SUFFIXES)
    )
    if not denied and not writes:
        return []
    outcome = "denied" if denied else ("allowed" if status < 400 else "failed")
    events = audit.events
    if denied:
        events = [e for e in events if not e.allowed] or events
    elif audit.subject is not None:
        events = [AuditEvent(audit.principal, audit.subject[0], audit.subject[1], True)]
    if not events:
        action = f"{audit.method} {route or audit.path}"
        return [AuditRow(at, audit.principal, action, audit.path, outcome, status, audit.request_id)]
    return [
        AuditRow(
            at,
            event.principal or audit.principal,
            event.action,
            event.securable,
            "denied" if not event.allowed else outcome,
            status,
            audit.request_id,
        )
        for event in events
    ]


class AuditMiddleware:
    """Open the request's audit context and write its rows once the response is out."""

    def __init__(self, app: ASGIApp, sink: AuditSink, prefixes: tuple[str, ...] = ("/v1/", "/api/")) -> None:
        self.app = app
        self.sink = sink
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        request_id = request_id_var.get() or uuid.uuid4().hex
        audit = RequestAudit(scope["method"], scope["path"], request_id)
        token = _current.set(audit)
        status_holder: dict[str, int] = {}

        async def capturing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capturing_send)
        finally:
            _current.reset(token)
            route: Any = scope.get("route")
            rows = rows_for(audit, status_holder.get("status", 500), getattr(route, "path", None))
            if rows:
                try:
                    await to_thread.run_sync(self.sink.write_audit, rows)
                except Exception:  # noqa: BLE001 - auditing must not turn a response into an error
                    log.exception("could not write %d audit row(s)", len(rows))
