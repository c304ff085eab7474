"""`datlake serve` as a real process: SIGTERM during a commit, and the multi-process (`--workers`) path.

A commit is kept in flight by a TCP proxy in front of the S3 server that holds the PUT of the
new metadata file (tests/delay_proxy.py); nothing in the server is mocked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from catalog.app import create_app
from catalog.config import Settings
from tests.conftest import Backend, admin_credentials
from tests.delay_proxy import DelayProxy
from tests.detached_support import start_datlake
from tests.integration.helpers import SCHEMA
from tests.services import free_port


class Serve:
    """A ``datlake serve`` process with the settings of a test backend (plus overrides)."""

    def __init__(self, settings: Settings, log_path: Path, *args: str, **overrides: object) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process = start_datlake(
            ["serve", *args], settings, log_path, **{"log_format": "json", **overrides, "port": self.port}
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"datlake serve exited at start:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"datlake serve did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def json_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def serve_processes() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for process in started:
        process.stop()


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


@pytest.mark.postgres
@pytest.mark.s3
def test_sigterm_lets_the_commit_in_flight_finish_and_refuses_new_connections(
    backend_factory: Any, tmp_path: Path, serve_processes: list[Serve]
) -> None:
    backend: Backend = backend_factory("postgres-s3")
    assert backend.s3 is not None
    proxy = DelayProxy(backend.s3.endpoint).start()
    app = create_app(backend.settings)  # in-process, on the same database and bucket: the second opinion
    admin = admin_credentials(app)
    server = Serve(
        backend.settings, tmp_path / "serve.log", s3_endpoint=proxy.url, shutdown_timeout_seconds=30, workers=1
    )
    serve_processes.append(server)
    server.wait_ready()
    prefix = f"{server.url}/v1/{backend.settings.warehouse_name}"
    table = f"{prefix}/namespaces/ops/tables/t"
    with httpx.Client(headers=admin.headers, timeout=30) as http:
        assert http.post(f"{prefix}/namespaces", json={"namespace": ["ops"]}).status_code == 200
        created = http.post(f"{prefix}/namespaces/ops/tables", json={"name": "t", "schema": SCHEMA})
        assert created.status_code == 200, created.text

    proxy.hold(".metadata.json", seconds=1.5, method="PUT")  # the commit's new metadata file
    outcome: dict[str, Any] = {}

    def commit() -> None:
        body = {
            "requirements": [{"type": "assert-table-uuid", "uuid": created.json()["metadata"]["table-uuid"]}],
            "updates": [{"action": "set-properties", "updates": {"stage": "committed during shutdown"}}],
        }
        try:
            outcome["response"] = httpx.post(table, json=body, headers=admin.headers, timeout=30)
        except httpx.HTTPError as exc:  # pragma: no cover - the failure the assertions below report
            outcome["error"] = exc

    committing = threading.Thread(target=commit)
    committing.start()
    assert proxy.held.wait(10), "the commit never reached the object store"
    stopped_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)

    deadline = time.monotonic() + 5
    while not _refused(server.port):
        assert time.monotonic() < deadline, "the server still accepts connections after SIGTERM"
        time.sleep(0.02)
    assert committing.is_alive(), "the commit finished before the listener closed: nothing was in flight"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{table}", headers=admin.headers, timeout=5)

    committing.join(timeout=30)
    assert server.process.wait(timeout=30) == 0, server.log()
    took = time.monotonic() - stopped_at
    response = outcome.get("response")
    assert response is not None and response.status_code == 200, (outcome, server.log())
    assert response.json()["metadata"]["properties"]["stage"] == "committed during shutdown"
    assert 1.0 < took < 10, took  # waited for the held commit, and no longer than needed

    with TestClient(app, headers=admin.headers) as direct:
        loaded = direct.get(f"/v1/{backend.settings.warehouse_name}/namespaces/ops/tables/t")
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["metadata-location"] == response.json()["metadata-location"]
    assert loaded.json()["metadata"]["properties"]["stage"] == "committed during shutdown"

    access = [line for line in server.json_lines() if line.get("logger") == "datlake.access"]
    commit_lines = [line for line in access if line["method"] == "POST" and line["route"].endswith("/tables/{table}")]
    assert [line["status"] for line in commit_lines] == [200], access
    proxy.close()


@pytest.mark.postgres
def test_serve_with_two_workers_logs_json_access_lines_and_sums_metrics(
    backend_factory: Any, tmp_path: Path, serve_processes: list[Serve]
) -> None:
    backend: Backend = backend_factory("postgres-file")
    server = Serve(backend.settings, tmp_path / "serve.log", "--workers", "2")
    serve_processes.append(server)
    server.wait_ready()
    ids = [f"probe-{i}" for i in range(20)]
    for request_id in ids:  # a new connection each: both workers take some
        response = httpx.get(f"{server.url}/healthz", headers={"X-Request-Id": request_id}, timeout=10)
        assert response.headers["x-request-id"] == request_id
    deadline = time.monotonic() + 10
    while True:
        access = [line for line in server.json_lines() if line.get("logger") == "datlake.access"]
        logged = {line.get("request_id") for line in access if line.get("route") == "/healthz"}
        if set(ids) <= logged or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert set(ids) <= logged, server.log()
    probe = next(line for line in access if line.get("request_id") == ids[0])
    assert probe["status"] == 200 and probe["method"] == "GET" and probe["duration_ms"] >= 0

    # Every scrape, whichever worker answers it, counts the requests of both.
    pattern = re.compile(r'^datlake_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)$', re.M)
    for _ in range(6):
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        match = pattern.search(text)
        assert match is not None and float(match.group(1)) >= len(ids) + 1, text  # + wait_ready's probe(s)

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0, server.log()
