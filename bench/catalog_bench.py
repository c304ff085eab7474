#!/usr/bin/env python
"""Datlake Catalog benchmark: prints JSON figures for the performance targets of issue 2.

It starts everything it measures: a fresh PostgreSQL database (``datlake migrate`` first), a
SeaweedFS S3 warehouse, and a real ``datlake serve`` subprocess on loopback; the client runs in
this process. Phases (``--only`` picks some):

- ``load``: warm ``loadTable`` with one and four client threads (keep-alive ``http.client``)
- ``commit``: sequential metadata-only commits (``set-properties``)
- ``append``: PyIceberg 1-row appends, sequential and four writer threads on four tables
- ``list``: list 10,000 tables in pages of 100 (tables registered in parallel from one metadata file)

Run ``python bench/catalog_bench.py --help``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._common import (  # noqa: E402
    Http,
    Popen,
    bootstrap_admin,
    datlake_command,
    datlake_serve,
    emit_report,
    lookup,
    machine_info,
    oauth_token,
    percentile,
    summarize,
)
from tests.services import PG_ADMIN_URL, PostgresServer, S3Server, free_port, seaweedfs  # noqa: E402

WAREHOUSE_NAME = "lake"
PHASES = ("load", "commit", "append", "list")
SCHEMA = {
    "type": "struct",
    "schema-id": 0,
    "fields": [
        {"id": 1, "name": "id", "type": "long", "required": False},
        {"id": 2, "name": "v", "type": "string", "required": False},
    ],
}

# name -> (comparison, threshold, unit); evaluated on the figures below.
TARGETS: dict[str, tuple[str, float, str]] = {
    "load_table.threads_1.rps": (">=", 600, "requests/s"),
    "load_table.threads_1.p99_ms": ("<=", 10, "ms"),
    "load_table.threads_4.rps": (">=", 1000, "requests/s"),
    "load_table.threads_4.p99_ms": ("<=", 10, "ms"),
    "commit_set_properties.rps": (">=", 200, "commits/s"),
    "append.sequential.rps": (">=", 20, "appends/s"),
    "append.threads_4_tables_4.rps": (">=", 40, "appends/s"),
    "list_tables.pages.p99_ms": ("<=", 30, "ms"),
}


@dataclass
class Counts:
    load_seconds: float
    warmup_seconds: float
    commits: int
    appends_sequential: int
    appends_per_thread: int
    list_tables: int
    list_passes: int
    register_threads: int = 8
    repeat: int = 1


FULL = Counts(
    load_seconds=10,
    warmup_seconds=2,
    commits=500,
    appends_sequential=100,
    appends_per_thread=40,
    list_tables=10_000,
    list_passes=3,
)
QUICK = Counts(
    load_seconds=2,
    warmup_seconds=0.5,
    commits=30,
    appends_sequential=5,
    appends_per_thread=3,
    list_tables=300,
    list_passes=2,
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- statistics --------------------------------------------------------------------------------


def combine_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Repeated runs of one measurement: the median run by rate (typical) plus the best figures."""
    if len(runs) == 1:
        return runs[0]
    ordered = sorted(runs, key=lambda r: r["rps"])
    typical = dict(ordered[(len(ordered) - 1) // 2])
    typical["runs"] = len(runs)
    typical["runs_rps"] = [r["rps"] for r in runs]
    typical["best_rps"] = ordered[-1]["rps"]
    typical["best_p50_ms"] = min(r["p50_ms"] for r in runs)
    typical["best_p99_ms"] = min(r["p99_ms"] for r in runs)
    typical["best_server_cpu_ms_per_op"] = min(r["server_cpu_ms_per_op"] for r in runs)
    return typical


# --- CPU accounting (server processes from /proc, the client from os.times) --------------------


def _proc_children(pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(entry))
    return children


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(_proc_children(current))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


class CpuMeter:
    """Server and client CPU seconds spent during a phase (to tell who is the bottleneck)."""

    def __init__(self, server_pid: int) -> None:
        self.pids = process_tree(server_pid)
        self.server0 = cpu_seconds(self.pids)
        self.client0 = sum(os.times()[:2])
        self.wall0 = time.perf_counter()

    def result(self, operations: int) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall0
        server = cpu_seconds(self.pids) - self.server0
        client = sum(os.times()[:2]) - self.client0
        per_op = max(operations, 1)
        return {
            "server_cpu_ms_per_op": round(server / per_op * 1000, 3),
            "client_cpu_ms_per_op": round(client / per_op * 1000, 3),
            "server_cpu_utilization": round(server / wall, 2) if wall > 0 else None,
            "client_cpu_utilization": round(client / wall, 2) if wall > 0 else None,
        }


# --- the server under test ----------------------------------------------------------------------


@dataclass
class Server:
    process: Popen
    port: int
    log_path: Path
    token: str | None = None
    profiles: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Http:
        return Http(self.port, {"Authorization": f"Bearer {self.token}"} if self.token else None)


@contextmanager
def catalog_server(env: dict[str, str], workdir: Path) -> Iterator[Server]:
    """``datlake migrate`` (the server's own checkout migrates, see ``--server-src``) then ``datlake serve``."""
    migrated = subprocess.run([*datlake_command(env), "migrate"], env=env, capture_output=True, text=True, cwd=workdir)
    if migrated.returncode != 0:
        raise RuntimeError(f"datlake migrate failed: {migrated.stderr[-2000:]}")
    log(f"datlake migrate: {migrated.stdout.strip()}")
    log_path = workdir / "server.log"
    with datlake_serve(env, log_path, cwd=workdir) as process:
        server = Server(process, int(env["DATLAKE_PORT"]), log_path)
        workers = int(env.get("DATLAKE_WORKERS") or min(os.cpu_count() or 1, 4))  # the server's default
        if workers > 1:  # the uvicorn supervisor answers before every worker has started
            time.sleep(2)
        log(f"datlake serve ready on {server.url} (pid {process.pid}, {workers} worker(s))")
        yield server


@contextmanager
def profiled(server: Server, profile_dir: Path | None, phase: str) -> Iterator[None]:
    """Sample the server's Python stacks with py-spy during a phase (``--profile DIR``).

    ``BENCH_PROFILE_GIL=1`` samples only the thread holding the GIL (where the CPU goes).
    """
    if profile_dir is None:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = profile_dir / f"{phase}.txt"
    recorder = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(server.process.pid),
            "--subprocesses",
            "--nonblocking",
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(out),
            *(["--gil"] if os.environ.get("BENCH_PROFILE_GIL") == "1" else []),
            *(["--idle"] if os.environ.get("BENCH_PROFILE_IDLE") == "1" else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.5)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
        server.profiles.append(str(out))


# --- phases -------------------------------------------------------------------------------------


def table_path(namespace: str, table: str) -> str:
    return f"/v1/{WAREHOUSE_NAME}/namespaces/{namespace}/tables/{table}"


def create_table(client: Http, namespace: str, name: str) -> dict[str, Any]:
    body = {"name": name, "schema": SCHEMA}
    result: dict[str, Any] = client.json("POST", f"/v1/{WAREHOUSE_NAME}/namespaces/{namespace}/tables", body)
    return result


def run_threads(
    threads: int, work: Callable[[int, threading.Barrier], Any], on_start: Callable[[], None] | None = None
) -> tuple[list[Any], float]:
    """Run ``work(index, barrier)`` in threads; the clock starts when every thread reaches the barrier."""
    started: list[float] = []

    def action() -> None:
        if on_start is not None:
            on_start()
        started.append(time.perf_counter())

    barrier = threading.Barrier(threads, action=action)
    results: list[Any] = [None] * threads
    failures: list[BaseException] = []

    def target(index: int) -> None:
        try:
            results[index] = work(index, barrier)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            failures.append(exc)
            barrier.abort()

    workers = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]
    return results, time.perf_counter() - started[0]


def bench_load(server: Server, counts: Counts, profile_dir: Path | None) -> dict[str, Any]:
    setup = server.client()
    create_table(setup, "bench", "load_target")
    for i in range(3):  # a few metadata versions, like a table in use
        setup.json(
            "POST",
            table_path("bench", "load_target"),
            {
                "requirements": [],
                "updates": [{"action": "set-properties", "updates": {"owner": f"bench-{i}"}}],
            },
        )
    path = table_path("bench", "load_target")
    status, body = setup.request("GET", path)
    assert status == 200, body
    setup.close()
    result: dict[str, Any] = {"response_bytes": len(body)}

    def run(threads: int) -> dict[str, Any]:
        window: dict[str, Any] = {}

        def open_window() -> None:  # runs once every thread is warm, before any is released
            window["meter"] = CpuMeter(server.process.pid)
            window["deadline"] = time.perf_counter() + counts.load_seconds

        def work(_index: int, barrier: threading.Barrier) -> tuple[list[float], int]:
            client = server.client()
            request = client.request
            clock = time.perf_counter
            warm_end = clock() + counts.warmup_seconds
            while clock() < warm_end:
                request("GET", path)
            barrier.wait()
            deadline = window["deadline"]
            latencies: list[float] = []
            errors = 0
            while True:
                t0 = clock()
                if t0 >= deadline:
                    break
                status, _ = request("GET", path)
                if status == 200:
                    latencies.append(clock() - t0)
                else:
                    errors += 1
            client.close()
            return latencies, errors

        with profiled(server, profile_dir, f"load_{threads}"):
            outputs, wall = run_threads(threads, work, open_window)
        latencies = [lat for lats, _ in outputs for lat in lats]
        summary = summarize(latencies, wall, sum(err for _, err in outputs))
        summary.update(window["meter"].result(len(latencies)))
        return summary

    for threads in (1, 4):
        runs = []
        for _ in range(counts.repeat):
            log(f"load: {threads} client thread(s)")
            runs.append(run(threads))
            log(
                f"load: {threads} thread(s) -> {runs[-1]['rps']} req/s, p99 {runs[-1]['p99_ms']} ms, "
                f"server CPU {runs[-1]['server_cpu_ms_per_op']} ms/req"
            )
        result[f"threads_{threads}"] = combine_runs(runs)
    return result


def bench_commit(server: Server, counts: Counts, profile_dir: Path | None) -> dict[str, Any]:
    client = server.client()
    created = create_table(client, "bench", "commit_target")
    table_uuid = created["metadata"]["table-uuid"]
    path = table_path("bench", "commit_target")
    requirements = [{"type": "assert-table-uuid", "uuid": table_uuid}]

    def commit(i: int) -> None:
        body = {"requirements": requirements, "updates": [{"action": "set-properties", "updates": {"counter": str(i)}}]}
        status, data = client.request("POST", path, body)
        if status != 200:
            raise RuntimeError(f"commit {i} -> {status}: {data[:300]!r}")

    for i in range(min(20, counts.commits)):  # warm-up: connection, FileIO, caches
        commit(-i - 1)
    runs = []
    for repeat in range(counts.repeat):
        latencies = []
        with profiled(server, profile_dir, f"commit_{repeat}" if repeat else "commit"):
            meter = CpuMeter(server.process.pid)
            start = time.perf_counter()
            for i in range(counts.commits):
                t0 = time.perf_counter()
                commit(i)
                latencies.append(time.perf_counter() - t0)
            wall = time.perf_counter() - start
            cpu = meter.result(counts.commits)
        summary = summarize(latencies, wall)
        summary.update(cpu)
        runs.append(summary)
        log(
            f"commit: {summary['rps']} commits/s, p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, "
            f"server CPU {summary['server_cpu_ms_per_op']} ms/commit"
        )
    client.close()
    return combine_runs(runs)


def _pyiceberg_catalog(server: Server, s3: S3Server) -> Any:
    from pyiceberg.catalog import load_catalog

    extra = {"token": server.token} if server.token else {}
    return load_catalog(
        "bench", type="rest", uri=server.url, warehouse=WAREHOUSE_NAME, **s3.pyiceberg_properties(), **extra
    )


def _timed_commits(catalog: Any) -> list[float]:
    """Wrap the catalog's commit round trip to report how much of an append is the catalog."""
    timings: list[float] = []
    original = catalog.commit_table

    def commit_table(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            timings.append(time.perf_counter() - t0)

    catalog.commit_table = commit_table
    return timings


def _by_history(latencies: list[float], commits: list[float], snapshots_at_end: int) -> dict[str, Any]:
    """The first and the last ten appends: PyIceberg's own cost grows with the table's snapshot count
    (``Transaction.table_metadata`` deep-copies the whole metadata on every read), the catalog's does not."""
    window = min(10, len(latencies) // 2)
    if window == 0 or len(commits) != len(latencies):
        return {}
    first, last = slice(0, window), slice(-window, None)
    return {
        "snapshots_at_end": snapshots_at_end,
        f"first_{window}_append_p50_ms": round(percentile(latencies[first], 50) * 1000, 1),
        f"last_{window}_append_p50_ms": round(percentile(latencies[last], 50) * 1000, 1),
        f"first_{window}_catalog_commit_p50_ms": round(percentile(commits[first], 50) * 1000, 2),
        f"last_{window}_catalog_commit_p50_ms": round(percentile(commits[last], 50) * 1000, 2),
    }


def bench_append(server: Server, s3: S3Server, counts: Counts, profile_dir: Path | None) -> dict[str, Any]:
    import pyarrow as pa

    arrow_schema = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])

    def row(i: int) -> pa.Table:
        return pa.table({"id": [i], "v": [f"row-{i}"]}, schema=arrow_schema)

    result: dict[str, Any] = {}
    catalog = _pyiceberg_catalog(server, s3)
    table = catalog.create_table(("bench", "append_seq"), schema=arrow_schema)
    for i in range(3):  # warm-up (FileIO clients, first manifest list)
        table.append(row(-i - 1))
    commit_timings = _timed_commits(catalog)
    latencies = []
    with profiled(server, profile_dir, "append_sequential"):
        meter = CpuMeter(server.process.pid)
        start = time.perf_counter()
        for i in range(counts.appends_sequential):
            t0 = time.perf_counter()
            table.append(row(i))
            latencies.append(time.perf_counter() - t0)
        wall = time.perf_counter() - start
        cpu = meter.result(counts.appends_sequential)
    summary = summarize(latencies, wall)
    summary.update(cpu)
    summary["catalog_commit_p50_ms"] = round(percentile(commit_timings, 50) * 1000, 2)
    summary["catalog_commit_p99_ms"] = round(percentile(commit_timings, 99) * 1000, 2)
    summary["by_table_history"] = _by_history(latencies, commit_timings, len(table.metadata.snapshots))
    result["sequential"] = summary
    log(
        f"append: sequential {summary['rps']} appends/s (catalog commit p50 {summary['catalog_commit_p50_ms']} ms); "
        f"{summary['by_table_history']}"
    )

    threads = 4
    tables = []
    catalogs = []
    for t in range(threads):
        cat = _pyiceberg_catalog(server, s3)
        tbl = cat.create_table(("bench", f"append_par_{t}"), schema=arrow_schema)
        tbl.append(row(-1))
        catalogs.append(cat)
        tables.append(tbl)
    timings = [_timed_commits(cat) for cat in catalogs]

    def work(index: int, barrier: threading.Barrier) -> list[float]:
        tbl = tables[index]
        barrier.wait()
        lats = []
        for i in range(counts.appends_per_thread):
            t0 = time.perf_counter()
            tbl.append(row(i))
            lats.append(time.perf_counter() - t0)
        return lats

    with profiled(server, profile_dir, "append_threads"):
        meter = CpuMeter(server.process.pid)
        outputs, wall = run_threads(threads, work)
        total = threads * counts.appends_per_thread
        cpu = meter.result(total)
    summary = summarize([lat for lats in outputs for lat in lats], wall)
    summary.update(cpu)
    all_commits = [lat for ts in timings for lat in ts]
    summary["catalog_commit_p50_ms"] = round(percentile(all_commits, 50) * 1000, 2)
    summary["catalog_commit_p99_ms"] = round(percentile(all_commits, 99) * 1000, 2)
    result["threads_4_tables_4"] = summary
    log(f"append: 4 threads on 4 tables {summary['rps']} appends/s aggregate")
    return result


def bench_list(server: Server, counts: Counts, profile_dir: Path | None) -> dict[str, Any]:
    setup = server.client()
    setup.json("POST", f"/v1/{WAREHOUSE_NAME}/namespaces", {"namespace": ["listing"]})
    source = create_table(setup, "bench", "list_source")
    metadata_location = source["metadata-location"]
    setup.close()

    total = counts.list_tables
    per_thread = math.ceil(total / counts.register_threads)

    def register(index: int, barrier: threading.Barrier) -> list[float]:
        client = server.client()
        barrier.wait()
        lats = []
        for i in range(index * per_thread, min(total, (index + 1) * per_thread)):
            t0 = time.perf_counter()
            client.json(
                "POST",
                f"/v1/{WAREHOUSE_NAME}/namespaces/listing/register",
                {"name": f"t{i:05d}", "metadata-location": metadata_location},
            )
            lats.append(time.perf_counter() - t0)
        client.close()
        return lats

    log(f"list: registering {total} tables with {counts.register_threads} threads")
    outputs, wall = run_threads(counts.register_threads, register)
    created = summarize([lat for lats in outputs for lat in lats], wall)
    log(f"list: registered {created['count']} tables in {created['seconds']} s ({created['rps']}/s)")

    client = server.client()
    base = f"/v1/{WAREHOUSE_NAME}/namespaces/listing/tables?pageSize=100"
    client.json("GET", base)  # warm-up
    latencies = []
    with profiled(server, profile_dir, "list"):
        meter = CpuMeter(server.process.pid)
        start = time.perf_counter()
        for _ in range(counts.list_passes):
            token: str | None = None
            seen = 0
            while True:
                path = base if token is None else f"{base}&pageToken={token}"
                t0 = time.perf_counter()
                status, data = client.request("GET", path)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    raise RuntimeError(f"list page -> {status}: {data[:300]!r}")
                page = json.loads(data)
                seen += len(page["identifiers"])
                token = page.get("next-page-token")
                if not token:
                    break
            if seen != total:
                raise RuntimeError(f"listed {seen} tables, expected {total}")
        wall = time.perf_counter() - start
        cpu = meter.result(len(latencies))
    client.close()
    pages = summarize(latencies, wall)
    pages.update(cpu)
    log(f"list: page p50 {pages['p50_ms']} ms, p99 {pages['p99_ms']} ms over {pages['count']} pages")
    return {"tables": total, "page_size": 100, "passes": counts.list_passes, "register": created, "pages": pages}


# --- report -------------------------------------------------------------------------------------


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    verdicts = []
    for name, (op, threshold, unit) in TARGETS.items():
        value = lookup(results, name)
        if value is None:
            continue
        passed = value >= threshold if op == ">=" else value <= threshold
        verdicts.append({"figure": name, "value": value, "target": f"{op} {threshold:g} {unit}", "pass": passed})
    return verdicts


def server_env(args: argparse.Namespace, database_url: str, s3: S3Server, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATLAKE_")}
    env.update(s3.settings_env())
    env.update(
        {
            "DATLAKE_HOME": str(workdir / "home"),
            "DATLAKE_DATABASE_URL": database_url,
            "DATLAKE_WAREHOUSE": f"s3://{s3.bucket}/bench-{uuid.uuid4().hex[:8]}",
            "DATLAKE_WAREHOUSE_NAME": WAREHOUSE_NAME,
            "DATLAKE_HOST": "127.0.0.1",
            "DATLAKE_PORT": str(free_port()),
            **({"DATLAKE_WORKERS": str(args.workers)} if args.workers else {}),
            "DATLAKE_AUTH_JWT_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
            "DATLAKE_AUTH_ALLOW_ANONYMOUS": "true" if args.auth == "anonymous" else "false",
        }
    )
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    if args.server_src:
        env["BENCH_SERVER_SRC"] = str(args.server_src.resolve())
        env["PYTHONPATH"] = env["BENCH_SERVER_SRC"]
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run of every phase")
    parser.add_argument(
        "--workers", type=int, help="uvicorn workers (DATLAKE_WORKERS); default: the server's (one per core, up to 4)"
    )
    parser.add_argument("--output", type=Path, help="also write the JSON figures to this file")
    parser.add_argument("--only", default=",".join(PHASES), help=f"comma-separated phases of {', '.join(PHASES)}")
    parser.add_argument("--load-seconds", type=float, help="measured seconds per loadTable run")
    parser.add_argument("--commits", type=int, help="sequential set-properties commits")
    parser.add_argument("--tables", type=int, help="tables to create for the listing phase")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="repeat the loadTable runs and the commit sequence N times: the figure is the median run, "
        "best_* the best one (a shared machine is noisy)",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra server environment (repeatable)"
    )
    parser.add_argument(
        "--auth",
        choices=("admin", "anonymous"),
        default="admin",
        help="admin: bootstrap an administrator and send its bearer token (default); "
        "anonymous: DATLAKE_AUTH_ALLOW_ANONYMOUS=true, no credentials",
    )
    parser.add_argument(
        "--server-src",
        type=Path,
        metavar="DIR",
        help="run the server from another checkout (python -m catalog.cli with PYTHONPATH=DIR), for A/B runs",
    )
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy record the server per phase into DIR")
    parser.add_argument("--postgres-url", default=PG_ADMIN_URL, help="admin URL; a fresh database is created on it")
    args = parser.parse_args(argv)

    phases = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    counts = QUICK if args.quick else FULL
    if args.load_seconds:
        counts.load_seconds = args.load_seconds
    if args.commits:
        counts.commits = args.commits
    if args.tables:
        counts.list_tables = args.tables
    counts.repeat = max(1, args.repeat)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    report: dict[str, Any] = {
        "benchmark": "datlake-catalog",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "setup": {
            "server": "datlake serve (uvicorn subprocess)",
            "workers": args.workers or f"server default ({min(os.cpu_count() or 1, 4)})",
            "database": "PostgreSQL (fresh database, datlake migrate)",
            "storage": "SeaweedFS S3 (weed mini) on loopback",
            "client": "http.client keep-alive (loadTable, commits, listing); PyIceberg RestCatalog (appends)",
            "quick": args.quick,
            "phases": phases,
            "counts": counts.__dict__,
            "extra_env": args.env,
            "server_src": str(args.server_src) if args.server_src else str(REPO),
        },
        "results": {},
    }
    results: dict[str, Any] = report["results"]
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="datlake-bench-")))
        postgres = PostgresServer(args.postgres_url)
        postgres.check()
        stack.callback(postgres.close)
        database_url = postgres.new_database()
        log(f"database {database_url.rsplit('/', 1)[-1]}; starting SeaweedFS")
        s3 = stack.enter_context(seaweedfs())
        env = server_env(args, database_url, s3, workdir)
        server = stack.enter_context(catalog_server(env, workdir))
        report["setup"]["server_pid"] = server.process.pid
        if args.auth == "admin":
            admin = bootstrap_admin(database_url, WAREHOUSE_NAME)
            server.token = oauth_token(server.port, admin.client_id, admin.client_secret)
        report["setup"]["auth"] = (
            "bearer token of an administrator" if server.token else "anonymous (DATLAKE_AUTH_ALLOW_ANONYMOUS)"
        )
        log(f"auth: {report['setup']['auth']}")
        setup = server.client()
        setup.json("POST", f"/v1/{WAREHOUSE_NAME}/namespaces", {"namespace": ["bench"]})
        setup.close()
        try:
            if "load" in phases:
                results["load_table"] = bench_load(server, counts, args.profile)
            if "commit" in phases:
                results["commit_set_properties"] = bench_commit(server, counts, args.profile)
            if "append" in phases:
                results["append"] = bench_append(server, s3, counts, args.profile)
            if "list" in phases:
                results["list_tables"] = bench_list(server, counts, args.profile)
        finally:
            if server.process.poll() is not None:
                log(f"server exited early: {server.log_path.read_text()[-2000:]}")
        if server.profiles:
            report["profiles"] = server.profiles
    report["machine"]["loadavg_end"] = list(os.getloadavg())
    report["targets"] = evaluate(results)
    report["all_targets_pass"] = all(v["pass"] for v in report["targets"])
    emit_report(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
