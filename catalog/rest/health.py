"""Operations endpoints: liveness, readiness and Prometheus metrics (no authentication)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from catalog.observability import job_backlog_gauges, metrics_payload
from catalog.persistence.jobs import JobStore
from catalog.rest.deps import ServicesDep

log = logging.getLogger(__name__)

router = APIRouter(tags=["Operations"])


@router.get("/healthz", summary="Liveness: the process serves requests")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database, Redis and the object store are reachable")
def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        services.store.ping()
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - report, never raise, from a probe
        checks["database"] = f"unavailable: {type(exc).__name__}"
    if services.settings.redis_url:
        try:
            import redis

            redis.Redis.from_url(services.settings.redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"unavailable: {type(exc).__name__}"
    try:
        services.storage.check_reachable(services.settings.resolved_warehouse)
        checks["object_store"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["object_store"] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        status_code=200 if ready else 503, content={"status": "ok" if ready else "unavailable", **checks}
    )


@router.get("/metrics", summary="Prometheus metrics")
def metrics(services: ServicesDep) -> Response:
    try:
        gauges = job_backlog_gauges(JobStore(services.store.engine).backlog(), datetime.now(UTC))
    except SQLAlchemyError as exc:  # the process's own series still tell what happened
        log.warning("metrics: job backlog unavailable: %s", type(exc).__name__)
        gauges = []
    return Response(content=metrics_payload(gauges), media_type="text/plain; version=0.0.4; charset=utf-8")
