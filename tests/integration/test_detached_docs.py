"""The detached-mode tutorials' Python code blocks run, in order, against a real catalog.

PostgreSQL, S3, Redis, a live HTTP server and a real `datlake worker`; the environment holds what
the tutorials read (``DATLAKE_URL``, ``DATLAKE_API_KEY``, ``DATLAKE_S3_*``, ``DATLAKE_LANDING``).
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import httpx
import pytest
from fastapi import FastAPI

from catalog.app import create_app
from tests.conftest import Backend, LiveServer, admin_credentials
from tests.detached_support import Workers, queue_name, redis_url, workers

__all__ = ["redis_url", "workers"]  # fixtures used below

DOCS = Path(__file__).resolve().parents[2] / "docs" / "detached-mode"
TUTORIALS = ["tutorial-direct-ingestion.md", "tutorial-direct-querying.md"]

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.s3,
    pytest.mark.redis,
    pytest.mark.engines,
    pytest.mark.parametrize("backend", ["postgres-s3"], indirect=True),
]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


@pytest.fixture
def app(backend: Backend, redis_url: str) -> FastAPI:
    backend.settings = backend.settings.model_copy(update={"redis_url": redis_url, "job_queue": queue_name()})
    return create_app(backend.settings)


def test_tutorial_code_blocks_run(
    live_server: LiveServer, backend: Backend, workers: Workers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert backend.s3 is not None
    workers.start(backend.settings)
    environment = {
        "DATLAKE_URL": live_server.url,
        "DATLAKE_API_KEY": admin_credentials(live_server.app).api_key,
        "DATLAKE_S3_ENDPOINT": backend.s3.endpoint,
        "DATLAKE_S3_ACCESS_KEY_ID": backend.s3.access_key,
        "DATLAKE_S3_SECRET_ACCESS_KEY": backend.s3.secret_key,
        "DATLAKE_S3_REGION": backend.s3.region,
        "DATLAKE_LANDING": f"{backend.warehouse}/landing/",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "user-home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))  # DuckDB keeps extensions and secrets there
    for tutorial in TUTORIALS:
        blocks = python_blocks(DOCS / tutorial)
        assert len(blocks) >= 4, tutorial
        namespace: dict[str, object] = {"__name__": f"tutorial_{tutorial}"}
        for index, block in enumerate(blocks):
            try:
                exec(compile(block, f"{tutorial}[block {index}]", "exec"), namespace)  # noqa: S102
            except Exception as exc:
                raise AssertionError(f"{tutorial}, block {index} failed:\n{block}\n{workers.logs()[-3000:]}") from exc
        for value in namespace.values():  # the tutorials' clients and connections
            if isinstance(value, httpx.Client | duckdb.DuckDBPyConnection):
                value.close()
