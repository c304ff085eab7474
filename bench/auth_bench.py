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
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._common import Http, datlake_serve, lookup, oauth_token, percentile  # noqa: E402
from tests.services import PG_ADMIN_URL, PostgresServer, free_port  # noqa: E402

if TYPE_CHECKING:
    from catalog.config import Settings

WAREHOUSE = "lake"
NAMESPACE = "bench"
JWT_SECRET = "auth-bench-jwt-secret-" + "0" * 24
TARGETS = {"load_table.authz_added_p50_ms": ("<=", 1.0), "list_tables.visible_1pct.page_max_p50_ms": ("<=", 50.0)}


def log(message: str) -> None:
    print(f"[auth-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def summary(latencies: list[float]) -> dict[str, Any]:
    return {
        "count": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p90_ms": round(percentile(latencies, 90) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "max_ms": round(max(latencies) * 1000, 3) if latencies else None,
    }


def settings_of(env: dict[str, str]) -> Settings:
    """The settings a server started with ``env`` has."""
    from catalog.config import Settings

    return Settings(**{k.removeprefix("DATLAKE_").lower(): v for k, v in env.items() if k.startswith("DATLAKE_")})


@contextmanager
def serve(env: dict[str, str], workdir: Path, name: str) -> Iterator[int]:
    """``datlake serve`` on a free port, which it yields."""
    port = free_port()
    with datlake_serve({**env, "DATLAKE_PORT": str(port)}, workdir / f"{name}.log", cwd=workdir):
        log(f"{name} ready on port {port}")
        yield port


def prepare(env: dict[str, str], tables: int, visible: int) -> dict[str, Any]:
    """Schema, warehouse, ``tables`` tables (rows sharing one metadata file), an administrator and a
    reader holding SELECT on ``visible`` of them. Direct database work: setup, not measured."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField
    from sqlalchemy import insert, select

    from catalog.app import build_services
    from catalog.authz.model import Grant
    from catalog.persistence.database import make_engine, migrate
    from catalog.persistence.schema import NAMESPACE_SEPARATOR, entities, namespaces

    settings = settings_of(env)
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


def bench_load(anonymous: int, secured: int, setup: dict[str, Any], requests: int, warmup: int) -> dict[str, Any]:
    """``anonymous`` and ``secured``: the two servers' ports."""
    table = setup["visible"][1]
    path = f"/v1/{WAREHOUSE}/namespaces/{NAMESPACE}/tables/{table}"
    token = oauth_token(secured, setup["reader"].client_id, setup["reader"].client_secret)
    clients = {
        "anonymous_no_authz": Http(anonymous),
        "api_key": Http(secured, {"Authorization": f"Bearer {setup['reader_key']}"}),
        "jwt": Http(secured, {"Authorization": f"Bearer {token}"}),
        "x_api_key": Http(secured, {"X-API-Key": setup["reader_key"]}),
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

    settings = settings_of(env)
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


def bench_list(secured: int, setup: dict[str, Any], passes: int) -> dict[str, Any]:
    reader = Http(secured, {"Authorization": f"Bearer {setup['reader_key']}"})
    admin_token = oauth_token(secured, setup["admin"].client_id, setup["admin"].client_secret)
    admin = Http(secured, {"Authorization": f"Bearer {admin_token}"})
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
        value = lookup(results, dotted)
        passed = value is not None and (value <= limit if op == "<=" else value >= limit)
        checks.append({"figure": dotted, "value": value, "target": f"{op} {limit}", "passed": passed})
    results["targets"] = checks
    print(json.dumps(results, indent=2))
    return 0 if all(c["passed"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
