#!/usr/bin/env python
"""What a sequential metadata-only commit costs below the catalog's HTTP route, on this machine.

``catalog_bench.py --only commit`` times whole commits through ``datlake serve``. This script
takes the same commit apart, on the same kind of PostgreSQL database and SeaweedFS warehouse,
to show how much of it the catalog's own request handling is and what no route could avoid:

- ``object_store_put``: the catalog's PUT of one new metadata file (the table's real metadata
  JSON), as a commit writes it (``Storage.write_new``);
- ``database``: a commit's two statements, the row read (``get_entity``) and the pointer
  compare-and-swap (``swap_pointers``), on a table of their own;
- ``commit_service``: ``CommitService.commit_table`` with one ``set-properties`` update, in
  this process: everything a commit does (read, validate, apply, write, swap) except HTTP,
  authentication, authorization and the audit row;
- ``http_route``: an empty FastAPI app in a uvicorn subprocess answering the same request body
  with a fixed response, from an ``async`` route and from a plain ``def`` route (the thread-pool
  hop the catalog's commit route takes), with the client ``catalog_bench.py`` uses.

``ceiling_commits_per_s`` is 1000 / (``commit_service`` p50 + ``http_route.sync`` p50): the rate
sequential commits would reach if the catalog's route cost nothing beyond an empty route.

Run ``python bench/commit_floor.py --help``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fastapi import FastAPI, Request, Response  # noqa: E402  (module level: the routes' annotations resolve here)

from bench._common import (  # noqa: E402
    Http,
    answers_healthz,
    background,
    emit_report,
    machine_info,
    summarize,
    wait_until,
)
from tests.services import PG_ADMIN_URL, PostgresServer, S3Server, free_port, seaweedfs  # noqa: E402

COMMIT_BODY = {
    "requirements": [{"type": "assert-table-uuid", "uuid": "00000000-0000-0000-0000-000000000000"}],
    "updates": [{"action": "set-properties", "updates": {"counter": "0"}}],
}


def log(message: str) -> None:
    print(f"[floor {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(operation: Callable[[int], Any], count: int, repeat: int) -> dict[str, Any]:
    """``operation(i)`` ``count`` times per run after a warm-up; the median run's figures by p50."""
    for i in range(min(50, count)):
        operation(-i - 1)
    runs = []
    for _ in range(repeat):
        latencies = []
        cpu0, start = time.process_time(), time.perf_counter()
        for i in range(count):
            t0 = time.perf_counter()
            operation(i)
            latencies.append(time.perf_counter() - t0)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
        runs.append({**summarize(latencies, wall), "this_process_cpu_ms": round(cpu / count * 1000, 3)})
    median = sorted(runs, key=lambda run: run["p50_ms"])[len(runs) // 2]
    return {**median, "runs_p50_ms": [run["p50_ms"] for run in runs]}


# --- the empty route -----------------------------------------------------------------------------


def serve_empty_app(port: int) -> None:
    """``--serve-empty PORT``: the empty FastAPI app (run in a subprocess, as ``datlake serve`` is)."""
    import uvicorn

    app = FastAPI()
    answer = b'{"metadata-location":"s3://bucket/t/metadata/00001-x.metadata.json","metadata":{}}'

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(status_code=200)

    @app.post("/async/v1/{prefix}/namespaces/{namespace}/tables/{table}")
    async def commit_async(prefix: str, namespace: str, table: str, request: Request) -> Response:
        await request.body()
        return Response(content=answer, media_type="application/json")

    @app.post("/sync/v1/{prefix}/namespaces/{namespace}/tables/{table}")
    def commit_sync(prefix: str, namespace: str, table: str) -> Response:
        return Response(content=answer, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def http_route(count: int, repeat: int, workdir: Path) -> dict[str, Any]:
    port = free_port()
    log_path = workdir / "empty-app.log"
    command = [sys.executable, __file__, "--serve-empty", str(port)]
    with background(command, dict(os.environ), log_path) as process:
        wait_until(lambda: answers_healthz(port), "the empty FastAPI app", process, log_path)
        client = Http(port)
        result = {}
        for kind in ("async", "sync"):
            path = f"/{kind}/v1/lake/namespaces/bench/tables/t"

            def post(_i: int, path: str = path) -> None:
                status, data = client.request("POST", path, COMMIT_BODY)
                if status != 200:
                    raise RuntimeError(f"empty app -> {status}: {data[:200]!r}")

            result[kind] = measure(post, count, repeat)
            log(f"empty FastAPI route ({kind}): p50 {result[kind]['p50_ms']} ms")
        client.close()
        return result


# --- the catalog's pieces, in this process -------------------------------------------------------


def catalog_pieces(database_url: str, s3: S3Server, count: int, repeat: int) -> dict[str, Any]:
    from pyiceberg.schema import Schema
    from pyiceberg.table.update import AssertTableUUID, SetPropertiesUpdate
    from pyiceberg.types import LongType, NestedField, StringType

    from catalog.config import Settings
    from catalog.persistence.database import make_engine
    from catalog.persistence.store import TABLE, CatalogStore, PointerSwap
    from catalog.service.commit import CommitService, TableChange
    from catalog.service.tables import TableService
    from catalog.storage.fileio import Storage

    warehouse_location = f"s3://{s3.bucket}/floor-{uuid.uuid4().hex[:8]}"
    settings = Settings(database_url=database_url, warehouse=warehouse_location, **s3.settings_fields())
    engine = make_engine(settings.resolved_database_url)
    store = CatalogStore(engine)
    warehouse = store.ensure_warehouse(settings.warehouse_name, settings.resolved_warehouse)
    storage = Storage(settings)
    tables, commits = TableService(store, storage), CommitService(store, storage)
    namespace = ("bench",)
    store.create_namespace(warehouse.id, namespace, {})
    schema = Schema(NestedField(1, "id", LongType()), NestedField(2, "v", StringType()))
    result: dict[str, Any] = {}
    try:
        target = tables.create(warehouse, namespace, "commit_target", schema)
        requirement = AssertTableUUID(uuid=target.entry.metadata.table_uuid)

        def commit(i: int) -> None:
            update = SetPropertiesUpdate(updates={"counter": str(i)})
            commits.commit_table(warehouse, TableChange(namespace, "commit_target", [requirement], [update]))

        result["commit_service"] = measure(commit, count, repeat)
        log(f"commit service (no HTTP): p50 {result['commit_service']['p50_ms']} ms")

        # The metadata file as the commits left it (its metadata log full), written once more.
        current = tables.load(warehouse, namespace, "commit_target").entry
        prefix = current.metadata.location.rstrip("/") + "/metadata/"
        result["metadata_file_bytes"] = len(current.json_bytes)

        def put(_i: int) -> None:
            storage.write_new(f"{prefix}{uuid.uuid4()}.metadata.json", current.json_bytes, unique_name=True)

        result["object_store_put"] = measure(put, count, repeat)
        log(f"object-store PUT of {len(current.json_bytes)} bytes: p50 {result['object_store_put']['p50_ms']} ms")

        tables.create(warehouse, namespace, "swap_target", schema)

        def read_and_swap(i: int) -> None:
            entity = store.get_entity(warehouse.id, namespace, "swap_target", TABLE)
            assert entity is not None
            swap = PointerSwap(
                entity_id=entity.id,
                expected=entity.metadata_location,
                new=f"{prefix}swap-{i}-{uuid.uuid4()}.metadata.json",  # never read: only the pointer moves
                namespace_id=entity.namespace_id,
                name="swap_target",
                kind=TABLE,
            )
            store.swap_pointers(warehouse.id, [swap])

        result["database"] = measure(read_and_swap, count, repeat)
        log(f"database row read + swap: p50 {result['database']['p50_ms']} ms")
    finally:
        engine.dispose()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=500, help="operations per run (default 500)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median run is reported")
    parser.add_argument("--output", type=Path, help="also write the JSON figures to this file")
    parser.add_argument("--postgres-url", default=PG_ADMIN_URL, help="admin URL; a fresh database is created on it")
    parser.add_argument("--serve-empty", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_empty:
        serve_empty_app(args.serve_empty)
        return 0

    report: dict[str, Any] = {
        "benchmark": "datlake-commit-floor",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "setup": {"count": args.count, "repeat": args.repeat, "figures": "median run by p50, milliseconds"},
    }
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="datlake-floor-")))
        postgres = PostgresServer(args.postgres_url)
        postgres.check()
        stack.callback(postgres.close)
        database_url = postgres.new_database(migrated=True)
        s3 = stack.enter_context(seaweedfs())
        results = catalog_pieces(database_url, s3, args.count, args.repeat)
        results["http_route"] = http_route(args.count, args.repeat, workdir)
    below_route = results["commit_service"]["p50_ms"] + results["http_route"]["sync"]["p50_ms"]
    results["ceiling_commits_per_s"] = round(1000 / below_route, 1)
    report["results"] = results
    report["machine"]["loadavg_end"] = list(os.getloadavg())
    emit_report(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
