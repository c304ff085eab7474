"""What the benchmarks share: ``datlake`` processes (start, wait until ready, stop), an administrator
made directly in the database with a token for it, a keep-alive HTTP client, and figure helpers.

The backing services (PostgreSQL databases, SeaweedFS, free ports) come from ``tests/services.py``.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

Popen = subprocess.Popen[bytes]

# --- datlake processes ---------------------------------------------------------------------------


def datlake_command(env: dict[str, str]) -> list[str]:
    """The ``datlake`` command: the venv's script, or ``python -m catalog.cli`` for ``BENCH_SERVER_SRC``
    (another checkout of the catalog on ``PYTHONPATH``, for A/B comparisons)."""
    if env.get("BENCH_SERVER_SRC"):
        return [sys.executable, "-m", "catalog.cli"]
    script = Path(sys.executable).parent / "datlake"
    if script.exists():
        return [str(script)]
    found = shutil.which("datlake")
    return [found] if found else [sys.executable, "-m", "catalog.cli"]


def log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:]


@contextmanager
def background(command: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None) -> Iterator[Popen]:
    """``command`` in its own session, output to ``log_path``; on exit SIGTERM (as an orchestrator
    stops it), then SIGKILL to its whole process group after 30 s."""
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def datlake(
    subcommand: str, env: dict[str, str], log_path: Path, cwd: Path | None = None
) -> AbstractContextManager[Popen]:
    """``datlake <subcommand>`` in the background (see :func:`background`)."""
    return background([*datlake_command(env), subcommand], env, log_path, cwd)


def wait_until(ready: Callable[[], bool], what: str, process: Popen, log_path: Path, timeout: float = 90) -> None:
    """Poll ``ready`` until it holds; fail with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}): {log_tail(log_path)}")
        try:
            if ready():
                return
        except (OSError, http.client.HTTPException):
            pass  # not listening yet
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:g} s: {log_tail(log_path)}")
        time.sleep(0.1)


def answers_healthz(port: int) -> bool:
    """Whether the server on a loopback ``port`` answers ``GET /healthz`` with 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    finally:
        conn.close()


@contextmanager
def datlake_serve(env: dict[str, str], log_path: Path, cwd: Path | None = None) -> Iterator[Popen]:
    """``datlake serve`` on ``DATLAKE_PORT``, once ``/healthz`` answers 200."""
    port = int(env["DATLAKE_PORT"])
    with datlake("serve", env, log_path, cwd) as process:
        wait_until(lambda: answers_healthz(port), "datlake serve", process, log_path)
        yield process


# --- an administrator ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Admin:
    client_id: str
    client_secret: str
    api_key: str


def bootstrap_admin(database_url: str, warehouse: str) -> Admin:
    """Bootstrap the administrator ``bench-admin`` (and an API key) directly in the database of a
    running server, which has created ``warehouse`` at startup."""
    from catalog.persistence.access_store import AccessStore
    from catalog.persistence.database import make_engine
    from catalog.persistence.store import CatalogStore
    from catalog.service.access import AccessService

    engine = make_engine(database_url)
    try:
        access = AccessService(AccessStore(engine), CatalogStore(engine), warehouse)
        created = access.bootstrap("bench-admin")
        return Admin(created.client_id, created.client_secret, access.create_api_key(created.name).api_key)
    finally:
        engine.dispose()


def oauth_token(port: int, client_id: str, client_secret: str) -> str:
    """An access token from ``/v1/oauth/tokens`` (client credentials)."""
    form = urlencode({"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(
            "POST", "/v1/oauth/tokens", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"token request failed: {response.status} {data[:300]!r}")
    token: str = json.loads(data)["access_token"]
    return token


# --- a lean keep-alive HTTP client -----------------------------------------------------------------


class Http:
    """One keep-alive connection through ``http.client`` to a loopback port: the least client CPU
    per request. ``headers`` go with every request (credentials)."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.headers = headers or {}
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """``body`` is sent as JSON."""
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", **self.headers} if payload is not None else self.headers
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.close()
                return response.status, data
            except (http.client.HTTPException, ConnectionError):
                self.close()
                # A keep-alive connection the server closed while idle: retry reads only.
                if attempt == 2 or method not in ("GET", "HEAD"):
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        status, data = self.request(method, path, body)
        if status != expect:
            raise RuntimeError(f"{method} {path} -> {status}: {data[:500]!r}")
        return json.loads(data) if data else None


# --- figures ---------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """The machine a report was taken on (CPU model, cores, Python, load at the start)."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": list(os.getloadavg()),
    }


def summarize(latencies: list[float], wall: float, errors: int = 0) -> dict[str, Any]:
    """Latencies in seconds -> count, rate and percentiles in ms."""
    values = sorted(latencies)
    return {
        "count": len(values),
        "errors": errors,
        "seconds": round(wall, 3),
        "rps": round(len(values) / wall, 1) if wall > 0 else None,
        "p50_ms": round(percentile(values, 50) * 1000, 2),
        "p90_ms": round(percentile(values, 90) * 1000, 2),
        "p99_ms": round(percentile(values, 99) * 1000, 2),
        "max_ms": round(values[-1] * 1000, 2) if values else None,
        "mean_ms": round(sum(values) / len(values) * 1000, 2) if values else None,
    }


def emit_report(report: dict[str, Any], output: Path | None) -> None:
    """Print the JSON report to stdout and, with ``--output FILE``, write it there too."""
    text = json.dumps(report, indent=2)
    print(text)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0-100); NaN for no values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)] if ordered else float("nan")


def lookup(results: dict[str, Any], dotted: str) -> Any:
    """Follow ``dotted`` through nested dicts whose keys may contain dots themselves; None if absent."""
    node: Any = results
    rest = dotted
    while rest:
        if not isinstance(node, dict):
            return None
        for key in sorted(node, key=len, reverse=True):
            if rest == key or rest.startswith(key + "."):
                node, rest = node[key], rest[len(key) + 1 :]
                break
        else:
            return None
    return node
