"""Operations endpoints: liveness, readiness, metrics and request ids."""

from __future__ import annotations

from fastapi.testclient import TestClient

from catalog.app import create_app
from tests.conftest import Backend


def test_liveness_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["database"] == "ok"
    assert ready.json()["object_store"] == "ok"


def test_readiness_reports_an_unreachable_object_store(backend_factory) -> None:  # type: ignore[no-untyped-def]
    backend: Backend = backend_factory("sqlite-s3", s3_endpoint="http://127.0.0.1:9", s3_region="us-east-1")
    with TestClient(create_app(backend.settings)) as broken:
        ready = broken.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["object_store"].startswith("unavailable")
    assert ready.json()["database"] == "ok"


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    given = client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32 and generated != "abc-123"


def test_metrics_count_requests_per_route_template_and_commits(client: TestClient) -> None:
    prefix = client.prefix  # type: ignore[attr-defined]
    client.post(f"{prefix}/namespaces", json={"namespace": ["ops"]})
    client.get(f"{prefix}/namespaces/ops")
    text = client.get("/metrics").text
    assert 'route="/v1/{prefix}/namespaces/{namespace}"' in text
    assert "datlake_http_request_duration_seconds_bucket" in text
    assert "datlake_commit_conflicts_total" in text
