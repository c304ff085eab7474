"""Logs, request ids and Prometheus metrics.

One pure-ASGI middleware gives every request an id (the caller's ``X-Request-Id`` or a new one),
echoes it in the response, puts it on every log line emitted while the request runs, and records
request count and latency per route template. Only the method, route template, status and
duration are logged: never headers, query strings or bodies, so no secret reaches the logs.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from catalog.persistence.jobs import Backlog

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

access_log = logging.getLogger("datlake.access")

REQUESTS = Counter("datlake_http_requests_total", "HTTP requests served", ["method", "route", "status"])
LATENCY = Histogram(
    "datlake_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
COMMITS = Counter(
    "datlake_commits_total",
    "Commits (of a table, a multi-table transaction or a register-snapshot job) by outcome: committed, conflict "
    "(answered 409: a requirement does not hold on the committed state, or every retry lost its race), failed",
    ["outcome"],
)
COMMIT_CONFLICTS = Counter(
    "datlake_commit_conflicts_total", "Commit attempts that lost a compare-and-swap race (then retried on the new base)"
)
JOBS = Counter(
    "datlake_jobs_total",
    "Register-snapshot job attempts run by this process, by outcome: completed, failed, retried (transient "
    "failure, queued again), interrupted (the worker stopped; queued again), lost (presumed dead and replaced), "
    "error (the outcome could not be recorded)",
    ["outcome"],
)
JOB_DURATION = Histogram(
    "datlake_job_duration_seconds",
    "Run time of register-snapshot job attempts, by outcome",
    ["outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)


def metrics_payload(gauges: Sequence[GaugeMetricFamily] = ()) -> bytes:
    """The exposition text; aggregated over worker processes when PROMETHEUS_MULTIPROC_DIR is set.

    ``gauges``: values read at scrape time (not kept per process), appended as they are.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        payload = generate_latest(registry)
    else:
        payload = generate_latest()
    if gauges:
        scraped = CollectorRegistry(auto_describe=False)
        scraped.register(_Fixed(gauges))
        payload += generate_latest(scraped)
    return payload


class _Fixed(Collector):
    def __init__(self, families: Sequence[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def job_backlog_gauges(backlog: Backlog, at: datetime) -> list[GaugeMetricFamily]:
    """The register-snapshot jobs not finished yet (the same on every replica: read from the database)."""
    oldest = (at - backlog.oldest_queued_at).total_seconds() if backlog.oldest_queued_at else 0.0
    return [
        GaugeMetricFamily("datlake_jobs_queued", "Register-snapshot jobs waiting for a worker", value=backlog.queued),
        GaugeMetricFamily("datlake_jobs_running", "Register-snapshot jobs being run", value=backlog.running),
        GaugeMetricFamily(
            "datlake_jobs_oldest_queued_age_seconds",
            "How long the oldest waiting register-snapshot job has waited (0 when none waits)",
            value=max(0.0, oldest),
        ),
    ]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key in ("method", "route", "status", "duration_ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def make_formatter(kind: str = "json") -> logging.Formatter:
    """The formatter of every log line: ``json`` (:class:`JsonFormatter`) or ``text``."""
    return JsonFormatter() if kind == "json" else logging.Formatter("%(levelname)s %(name)s %(message)s")


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """One handler on the root logger, to stderr, in ``fmt`` (:func:`logging_config`)."""
    logging.config.dictConfig(logging_config(level, fmt))


def logging_config(level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """The logging setup as a :func:`logging.config.dictConfig` dictionary: one handler, to stderr.

    uvicorn applies it in every process it runs the app in: with ``--workers N`` those are
    fresh interpreters, which never ran the ``datlake serve`` command's own logging setup.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"datlake": {"()": f"{__name__}.make_formatter", "kind": fmt}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "datlake", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }


class RequestContext:
    """Request id, access log line and metrics for every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for n, v in scope["headers"] if n == b"x-request-id"), None)
        request_id = incoming if incoming and len(incoming) <= 64 else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_code = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "(unmatched)"
            method = scope["method"]
            REQUESTS.labels(method, template, str(status_code)).inc()
            LATENCY.labels(method, template).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d",
                    method,
                    template,
                    status_code,
                    extra={"method": method, "route": template, "status": status_code, "duration_ms": elapsed * 1000},
                )
            request_id_var.reset(token)
