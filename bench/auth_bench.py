#!/usr/bin/env python
"""Authorization benchmark: prints JSON figures for the RBAC targets of issue 3.

It starts what it measures: a fresh PostgreSQL database (or SQLite with ``--database sqlite``),
a ``file://`` warehouse, and two real ``datlake serve`` processes on that same database and
warehouse: one with ``DATLAKE_AUTH_ALLOW_ANONYMOUS=true`` (no credentials sent: no
authentication query, no grant evaluation) and one with access control as in production.

- ``load``: warm ``loadTable`` p50 without authorization (anonymous server) and with it (an API
  key, a JWT from ``/v1/oauth/tokens``; the caller holds 100 table grants, one of them SELECT on
  the loaded table), requests interleaved round-robin in the same run so that drift hits all alike.
  Target: authorization adds ≤ 1 ms at p50.
- ``list``: a namespace of 10,000 tables of which the caller may see 1% (100 table grants);
  every page of ``GET .../tables`` (page sizes 10 and 100) timed. Target: ≤ 50 ms a page.

Run ``python bench/auth_bench.py --help``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.services import PG_ADMIN_URL, PostgresServer, free_port  # noqa: E402

WAREHOUSE = "lake"
NAMESPACE = "bench"
JWT_SECRET = "auth-bench-jwt-secret-" + "0" * 24
SCHEMA = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}
TARGETS = {"load_table.authz_added_p50_ms": ("<=", 1.0), "list_tables.visible_1pct.page_max_p50_ms": ("<=", 50.0)}


def log(message: str) -> None:
    print(f"[auth-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)] if ordered else float("nan")


def summary(latencies: list[float]) -> dict[str, Any]:
    return {
        "count": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p90_ms": round(percentile(latencies, 90) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "max_ms": round(max(latencies) * 1000, 3) if latencies else None,
    }


class Http:
    """One keep-alive connection (``http.client``), optionally with default headers."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.headers = headers or {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
        response = self.conn.getresponse()
        return response.status, response.read()

    def json(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        payload = json.dumps(body).encode() if body is not None else None
        status, data = self.request(method, path, payload, {"Content-Type": "application/json"} if payload else None)
        if status != expect:
            raise RuntimeError(f"{method} {path} -> {status}: {data[:300]!r}")
        return json.loads(data) if data else None

    def close(self) -> None:
        self.conn.close()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path


@contextmanager
def serve(env: dict[str, str], workdir: Path, name: str) -> Iterator[Server]:
    port = free_port()
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "catalog.cli", "serve"],
            env={**env, "DATLAKE_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=workdir,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {log_path.read_text()[-2000:]}")
            try:
                client = Http(port)
                status, _ = client.request("GET", "/healthz")
                client.close()
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        log(f"{name} ready on port {port}")
        yield Server(process, port, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def prepare(env: dict[str, str], tables: int, visible: int) -> dict[str, Any]:
    """Schema, warehouse, ``tables`` tables (rows sharing one metadata file), an administrator and a
    reader holding SELECT on ``visible`` of them. Direct database work: setup, not measured."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField
    from sqlalchemy import insert, select

    from catalog.app import build_services
    from catalog.authz.model import Grant
    from catalog.config import Settings
    from catalog.persistence.database import make_engine, migrate
    from catalog.persistence.schema import NAMESPACE_SEPARATOR, entities, namespaces

    settings = Settings(**{k.removeprefix("DATLAKE_").lower(): v for k, v in env.items() if k.startswith("DATLAKE_")})
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    engine.dispose()
    services = build_services(settings)
    warehouse = services.store.get_warehouse(WAREHOUSE)
    assert warehouse is not None
    services.namespaces.create(warehouse, (NAMESPACE,), {})
    first = services.tables.create(warehouse, (NAMESPACE,), "t00000", Schema(NestedField(1, "id", LongType())))
    assert first.metadata_location is not None
    stamp = datetime.now(UTC)
    with services.store.engine.begin() as conn:
        ns_id = conn.execute(
            select(namespaces.c.id).where(namespaces.c.warehouse_id == warehouse.id, namespaces.c.name == NAMESPACE)
        ).scalar_one()
        rows = [
            {
                "warehouse_id": warehouse.id,
                "namespace_id": ns_id,
                "name": f"t{i:05d}",
                "kind": "table",
                "metadata_location": first.metadata_location,
                "created_at": stamp,
                "updated_at": stamp,
            }
            for i in range(1, tables)
        ]
        for start in range(0, len(rows), 2000):
            conn.execute(insert(entities), rows[start : start + 2000])
    if services.store.engine.dialect.name == "postgresql":
        # Planner statistics as autovacuum keeps them on a live catalog (a bulk load has none yet).
        with services.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    access = services.access
    admin = access.bootstrap("bench-admin")
    reader = access.create_principal("bench-reader", "service")
    role = access.access.create_role("bench-readers")
    step = tables // visible
    seen = [f"t{i:05d}" for i in range(0, tables, step)][:visible]
    for name in seen:
        access.access.add_grant(role, Grant("SELECT", "table", warehouse.id, f"{NAMESPACE}{NAMESPACE_SEPARATOR}{name}"))
    access.add_member("bench-readers", "bench-reader")
    key = access.create_api_key("bench-reader")
    services.store.engine.dispose()
    return {"admin": admin, "reader": reader, "reader_key": key.api_key, "visible": seen}


def oauth_token(port: int, client_id: str, secret: str) -> str:
    client = Http(port)
    body = urlencode({"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}).encode()
    status, data = client.request(
        "POST", "/v1/oauth/tokens", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    client.close()
    if status != 200:
        raise RuntimeError(f"token: {status} {data[:300]!r}")
    token: str = json.loads(data)["access_token"]
    return token


def bench_load(anonymous: Server, secured: Server, setup: dict[str, Any], requests: int, warmup: int) -> dict[str, Any]:
    table = setup["visible"][1]
    path = f"/v1/{WAREHOUSE}/namespaces/{NAMESPACE}/tables/{table}"
    token = oauth_token(secured.port, setup["reader"].client_id, setup["reader"].client_secret)
    clients = {
        "anonymous_no_authz": Http(anonymous.port),
        "api_key": Http(secured.port, {"Authorization": f"Bearer {setup['reader_key']}"}),
        "jwt": Http(secured.port, {"Authorization": f"Bearer {token}"}),
        "x_api_key": Http(secured.port, {"X-API-Key": setup["reader_key"]}),
    }
    latencies: dict[str, list[float]] = {name: [] for name in clients}
    for i in range(warmup + requests):
        for name, client in clients.items():  # round-robin: drift and noise hit every variant alike
            started = time.perf_counter()
            status, _ = client.request("GET", path)
            elapsed = time.perf_counter() - started
            if status != 200:
                raise RuntimeError(f"{name}: loadTable -> {status}")
            if i >= warmup:
                latencies[name].append(elapsed)
    for client in clients.values():
        client.close()
    result: dict[str, Any] = {name: summary(values) for name, values in latencies.items()}
    base = latencies["anonymous_no_authz"]
    # Paired differences (same round, so the same machine state), then their median per variant.
    added = {
        name: round(percentile([a - b for a, b in zip(latencies[name], base, strict=True)], 50) * 1000, 3)
        for name in ("api_key", "jwt", "x_api_key")
    }
    result["authz_added_p50_ms_by_variant"] = added
    result["authz_added_p50_ms"] = max(added.values())
    return result


def bench_auth_path(env: dict[str, str], setup: dict[str, Any], requests: int, warmup: int) -> dict[str, Any]:
    """The same decision in-process, without HTTP: authenticate the request and authorize loadTable.

    Isolates what access control itself costs per request (mostly the one database round trip)."""
    from catalog.app import build_services
    from catalog.authz.model import Action, Securable
    from catalog.config import Settings

    settings = Settings(**{k.removeprefix("DATLAKE_").lower(): v for k, v in env.items() if k.startswith("DATLAKE_")})
    services = build_services(settings)
    open_services = build_services(settings.model_copy(update={"auth_allow_anonymous": True}))
    open_services.authenticator.allow_anonymous = True
    warehouse = services.store.get_warehouse(WAREHOUSE)
    assert warehouse is not None
    table = Securable.table(warehouse.id, (NAMESPACE,), setup["visible"][1])
    token = services.authenticator.issue_token(
        services.authenticator.client_credentials(setup["reader"].client_id, setup["reader"].client_secret)
    ).access_token
    variants = {
        "anonymous_no_authz": (open_services, {}),
        "api_key": (services, {"authorization": f"Bearer {setup['reader_key']}"}),
        "jwt": (services, {"authorization": f"Bearer {token}"}),
    }
    latencies: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(warmup + requests):
        for name, (svc, headers) in variants.items():
            started = time.perf_counter()
            principal = svc.authenticator.authenticate(headers)
            svc.authorizer.require(principal, Action.LOAD_TABLE, table)
            if i >= warmup:
                latencies[name].append(time.perf_counter() - started)
    services.store.engine.dispose()
    open_services.store.engine.dispose()
    result: dict[str, Any] = {name: summary(values) for name, values in latencies.items()}
    base = result["anonymous_no_authz"]["p50_ms"]
    result["authz_added_p50_ms"] = round(max(result[n]["p50_ms"] for n in ("api_key", "jwt")) - base, 3)
    return result


def bench_list(secured: Server, setup: dict[str, Any], passes: int) -> dict[str, Any]:
    reader = Http(secured.port, {"Authorization": f"Bearer {setup['reader_key']}"})
    admin_token = oauth_token(secured.port, setup["admin"].client_id, setup["admin"].client_secret)
    admin = Http(secured.port, {"Authorization": f"Bearer {admin_token}"})
    base = f"/v1/{WAREHOUSE}/namespaces/{NAMESPACE}/tables"
    results: dict[str, Any] = {}
    for label, client, size, expected in [
        ("visible_1pct.page_size_10", reader, 10, len(setup["visible"])),
        ("visible_1pct.page_size_100", reader, 100, len(setup["visible"])),
        ("admin_all.page_size_100", admin, 100, None),
    ]:
        pages: list[float] = []
        worst: list[float] = []
        for _ in range(passes):
            seen, token, slowest = 0, None, 0.0
            while True:
                query = {"pageSize": size, **({"pageToken": token} if token else {})}
                started = time.perf_counter()
                body = client.json("GET", f"{base}?{urlencode(query)}")
                elapsed = time.perf_counter() - started
                pages.append(elapsed)
                slowest = max(slowest, elapsed)
                seen += len(body["identifiers"])
                token = body.get("next-page-token")
                if not token:
                    break
            worst.append(slowest)
            if expected is not None and seen != expected:
                raise RuntimeError(f"{label}: listed {seen}, expected {expected}")
        results[label] = {**summary(pages), "items": seen, "pages_per_pass": len(pages) // passes}
        results[label]["page_max_p50_ms"] = round(percentile(worst, 50) * 1000, 3)
    reader.close()
    admin.close()
    results["visible_1pct"] = {
        "page_max_p50_ms": max(
            results["visible_1pct.page_size_10"]["page_max_p50_ms"],
            results["visible_1pct.page_size_100"]["page_max_p50_ms"],
        )
    }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--postgres-url", default=PG_ADMIN_URL, help="admin URL; a fresh database is created on it")
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--visible-percent", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=2000, help="measured loadTable requests per variant")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--list-passes", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.tables, args.requests, args.warmup, args.list_passes = 1000, 200, 50, 2
    visible = max(1, int(args.tables * args.visible_percent / 100))

    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="datlake-auth-bench-"))
        stack.callback(shutil.rmtree, workdir, True)
        if args.database == "postgres":
            postgres = PostgresServer(args.postgres_url)
            postgres.check()
            stack.callback(postgres.close)
            database_url = postgres.new_database()
        else:
            database_url = f"sqlite:///{workdir / 'catalog.db'}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DATLAKE_")},
            "DATLAKE_HOME": str(workdir / "home"),
            "DATLAKE_DATABASE_URL": database_url,
            "DATLAKE_WAREHOUSE": (workdir / "warehouse").as_uri(),
            "DATLAKE_WAREHOUSE_NAME": WAREHOUSE,
            "DATLAKE_AUTH_JWT_SECRET": JWT_SECRET,
            "DATLAKE_LOG_LEVEL": "WARNING",
        }
        log(f"preparing {args.tables} tables, {visible} visible to the reader ({args.database})")
        setup = prepare(env, args.tables, visible)
        anonymous = stack.enter_context(serve({**env, "DATLAKE_AUTH_ALLOW_ANONYMOUS": "true"}, workdir, "anonymous"))
        secured = stack.enter_context(serve(env, workdir, "secured"))
        log("loadTable with and without authorization, interleaved")
        load = bench_load(anonymous, secured, setup, args.requests, args.warmup)
        log("listing")
        listing = bench_list(secured, setup, args.list_passes)
        log("the authentication and authorization path in-process")
        auth_path = bench_auth_path(env, setup, args.requests, args.warmup)

    results = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "database": args.database,
        "tables": args.tables,
        "visible_tables": visible,
        "load_table": load,
        "list_tables": listing,
        "auth_path_in_process": auth_path,
    }
    checks = []
    for dotted, (op, limit) in TARGETS.items():
        value = _lookup(results, dotted)
        passed = value is not None and (value <= limit if op == "<=" else value >= limit)
        checks.append({"figure": dotted, "value": value, "target": f"{op} {limit}", "passed": passed})
    results["targets"] = checks
    print(json.dumps(results, indent=2))
    return 0 if all(c["passed"] for c in checks) else 1


def _lookup(results: dict[str, Any], dotted: str) -> Any:
    """Follow ``dotted`` through nested dicts whose keys may contain dots themselves."""
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


if __name__ == "__main__":
    sys.exit(main())
