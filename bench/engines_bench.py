#!/usr/bin/env python
"""Engines through the catalog vs. the same table read directly: prints JSON figures (issue 6).

It starts what it measures: a fresh PostgreSQL database, a SeaweedFS S3 store, and a real
``datlake serve`` subprocess per warehouse (one on S3, one on local files), authenticated with
OAuth2 client credentials. One table of ``--rows`` rows in ``--files`` Parquet files per warehouse.

* ``duckdb``: a fresh DuckDB (extensions loaded beforehand) does ``CREATE SECRET`` (OAuth2) +
  ``ATTACH`` + the first ``SELECT count(*), sum(v)``; compared with a fresh DuckDB running
  ``iceberg_scan('<metadata location>')`` with the same query.
* ``spark``: in one warm SparkSession, ``SELECT count(*), sum(v)`` through a registered catalog
  (table caching off, so each query loads the table from the catalog) vs.
  ``spark.read.format("iceberg").load(<metadata location>)`` with the same aggregation; also the
  first query of a newly registered catalog (config, token, loadTable). Local-file warehouse:
  Spark's path loading needs a Hadoop file system, and this Spark has none for S3.

The catalog's share is ``(through catalog - direct) / through catalog`` of the medians (also: of
the minimums; the median of the per-repeat differences over the median through the catalog; and
the catalog server's own time per run over the run); the target is at most 10%.

``engine_floor``: the same runs through ``bench/replay_server.py``, a stand-in that replays the
catalog's recorded answers from memory at almost no cost, measure what any REST catalog costs
the engine at the least (its REST client, planning through a catalog, loopback round trips): the
part of the share by difference that no catalog can remove.

``python bench/engines_bench.py --help``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._common import bootstrap_admin, datlake_serve  # noqa: E402
from tests.services import PG_ADMIN_URL, PostgresServer, S3Server, free_port, seaweedfs  # noqa: E402

WAREHOUSE = "lake"
TARGET_SHARE = 0.10
QUERY = "SELECT count(*), sum(v) FROM {table}"


def log(message: str) -> None:
    print(f"[engines-bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Catalog:
    url: str
    client_id: str
    client_secret: str
    s3: S3Server | None
    metadata_location: str = ""

    @property
    def credential(self) -> str:
        return f"{self.client_id}:{self.client_secret}"


@contextmanager
def catalog_server(database_url: str, warehouse: str, s3: S3Server | None, workdir: Path) -> Iterator[Catalog]:
    """``datlake serve`` on a migrated database and a free loopback port, with an administrator."""
    port = free_port()
    env = {
        **os.environ,
        "DATLAKE_DATABASE_URL": database_url,
        "DATLAKE_WAREHOUSE": warehouse,
        "DATLAKE_AUTH_JWT_SECRET": "engines-bench-jwt-secret-0123456789abcdef",
        "DATLAKE_PORT": str(port),
        "DATLAKE_LOG_LEVEL": "WARNING",
        **(s3.settings_env() if s3 else {}),
    }
    with datlake_serve(env, workdir / f"server-{port}.log", cwd=workdir):
        admin = bootstrap_admin(database_url, WAREHOUSE)
        yield Catalog(f"http://127.0.0.1:{port}", admin.client_id, admin.client_secret, s3)


def write_table(catalog: Catalog, rows: int, files: int) -> None:
    """Table ``b.t`` (id bigint, v double) with ``rows`` rows in ``files`` appends, written by PyIceberg."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyiceberg.catalog import load_catalog

    props = {"type": "rest", "uri": catalog.url, "warehouse": WAREHOUSE, "credential": catalog.credential}
    client = load_catalog("bench", **props, **(catalog.s3.pyiceberg_properties() if catalog.s3 else {}))
    client.create_namespace("b")
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.float64())])
    table = client.create_table("b.t", schema)
    per_file = rows // files
    for part in range(files):
        start = part * per_file
        ids = pa.array(range(start, start + per_file), pa.int64())
        table.append(pa.table({"id": ids, "v": pc.multiply(ids.cast(pa.float64()), 0.5)}, schema=schema))
    catalog.metadata_location = client.load_table("b.t").metadata_location


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def server_seconds(catalog: Catalog) -> float:
    """Time the catalog spent serving /v1 requests so far (its request-duration histogram)."""
    import httpx

    total = 0.0
    for line in httpx.get(f"{catalog.url}/metrics", timeout=30).text.splitlines():
        if line.startswith("datlake_http_request_duration_seconds_sum{") and 'route="/v1' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def share(through: float, direct: float) -> float:
    return round(max(0.0, (through - direct) / through), 3) if through > 0 else 0.0


def compare(
    through: list[float], direct: list[float], served: list[float], floor: list[float] | None = None
) -> dict[str, Any]:
    """Medians and minimums (the least disturbed runs on a busy machine) of both ways, and the catalog's share:
    by difference (through - direct) / through, and by the server's own time per run / through; with
    ``floor`` (the runs through the replaying stand-in), the same share for a catalog that costs nothing."""
    t, d = statistics.median(through), statistics.median(direct)
    by_server = statistics.median(s / w for s, w in zip(served, through, strict=True))
    # Each repeat runs both ways back to back: the median of those pairs' differences is less
    # disturbed by the machine's load drifting during the run than the difference of medians.
    paired = statistics.median(a - b for a, b in zip(through, direct, strict=True))
    extra: dict[str, Any] = {}
    if floor is not None:
        f = statistics.median(floor)
        floor_paired = statistics.median(a - b for a, b in zip(floor, direct, strict=True))
        beyond = statistics.median(a - b for a, b in zip(through, floor, strict=True))
        extra["engine_floor"] = {
            "through_stand_in_ms": {"median": round(f * 1000, 1), "min": round(min(floor) * 1000, 1)},
            "share_by_difference_of_medians": share(f, d),
            "share_by_paired_difference": share(f, f - floor_paired),
            # what the real catalog costs beyond the stand-in: its own part of the share by difference
            "catalog_beyond_floor_by_difference_of_medians": share(t, f),
            "catalog_beyond_floor_by_paired_difference": share(t, t - beyond),
        }
    return {
        "through_catalog_ms": {"median": round(t * 1000, 1), "min": round(min(through) * 1000, 1)},
        "direct_ms": {"median": round(d * 1000, 1), "min": round(min(direct) * 1000, 1)},
        "catalog_server_ms_per_run": round(statistics.median(served) * 1000, 1),
        "catalog_share": {
            "by_difference_of_medians": share(t, d),
            "by_difference_of_minimums": share(min(through), min(direct)),
            "by_paired_difference": share(t, t - paired),
            "by_server_time": round(by_server, 3),
        },
        "target_share_max": TARGET_SHARE,
        **extra,
    }


@contextmanager
def replay_server(catalog: Catalog) -> Iterator[str]:
    """``bench/replay_server.py`` in front of ``catalog``; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("replay_server.py")), catalog.url],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield f"http://127.0.0.1:{int(process.stdout.readline())}"
    finally:
        process.kill()
        process.wait()


def measured(catalog: Catalog, action: Callable[[], tuple[float, Any]]) -> tuple[float, Any, float]:
    """Run a through-the-catalog action; also return the catalog's serving time during it."""
    before = server_seconds(catalog)
    seconds, result = action()
    return seconds, result, server_seconds(catalog) - before


# --- DuckDB ------------------------------------------------------------------------------------------


def bench_duckdb(catalog: Catalog, stand_in: str, repeats: int) -> dict[str, Any]:
    from tests.engines import duckdb_attach_catalog, duckdb_connection, duckdb_s3_secret

    def fresh() -> Any:
        con = duckdb_connection()
        if catalog.s3:
            duckdb_s3_secret(con, catalog.s3)
        return con

    def through(url: str = catalog.url) -> Any:
        con = fresh()  # extensions and the S3 secret are not the catalog's cost

        def run() -> Any:
            duckdb_attach_catalog(con, url, WAREHOUSE, credential=catalog.credential)
            return con.execute(QUERY.format(table="lake.b.t")).fetchone()

        seconds, result = timed(run)
        con.close()
        return seconds, result

    def direct() -> Any:
        con = fresh()
        scan = f"iceberg_scan('{catalog.metadata_location}')"
        seconds, result = timed(lambda: con.execute(QUERY.format(table=scan)).fetchone())
        con.close()
        return seconds, result

    through(), through(stand_in), direct()  # warm the OS caches and the S3 server; record the stand-in's answers
    a: list[float] = []
    b: list[float] = []
    floor: list[float] = []
    served: list[float] = []
    expected = None
    for _ in range(repeats):
        seconds, result, server = measured(catalog, through)
        a.append(seconds)
        served.append(server)
        expected = expected or result
        seconds, direct_result = direct()
        b.append(seconds)
        seconds, stand_in_result = through(stand_in)
        floor.append(seconds)
        assert result == expected == direct_result == stand_in_result, (
            expected,
            result,
            direct_result,
            stand_in_result,
        )
    return {"result": list(expected or ()), **compare(a, b, served, floor)}


# --- Spark -------------------------------------------------------------------------------------------


def bench_spark(catalog: Catalog, stand_in: str, repeats: int) -> dict[str, Any]:
    from tests.spark_engine import catalog_conf, new_spark_session, register_catalog

    spark = new_spark_session("datlake-engines-bench")
    counter = itertools.count(1)
    try:

        def new_catalog(url: str = catalog.url) -> str:
            name = f"bench{next(counter)}"
            register_catalog(spark, name, catalog_conf(url, WAREHOUSE, credential=catalog.credential))
            return name

        warm = new_catalog()  # table caching is off: every query loads the table from the catalog
        replayed = new_catalog(stand_in)

        def query(catalog_name: str) -> tuple[float, Any]:
            return timed(lambda: tuple(spark.sql(QUERY.format(table=f"{catalog_name}.b.t")).collect()[0]))

        def through_warm() -> tuple[float, Any]:
            return query(warm)

        def through_stand_in() -> tuple[float, Any]:
            return query(replayed)

        def through_cold() -> tuple[float, Any]:
            return query(new_catalog())  # first use of a catalog: config, token, then loadTable

        def direct() -> tuple[float, Any]:
            def run() -> Any:
                frame = spark.read.format("iceberg").load(catalog.metadata_location)
                return tuple(frame.selectExpr("count(*)", "sum(v)").collect()[0])

            return timed(run)

        actions = (through_warm, through_cold, direct, through_stand_in)
        for _ in range(2):  # JIT and class loading are nobody's share
            for action in actions:
                action()
        samples: dict[str, list[float]] = {action.__name__: [] for action in actions}
        served: dict[str, list[float]] = {action.__name__: [] for action in actions}
        results = set()
        for _ in range(repeats):
            for action in actions:
                seconds, result, server = measured(catalog, action)
                results.add(result)
                samples[action.__name__].append(seconds)
                served[action.__name__].append(server)
        assert len(results) == 1, results
        cold = compare(samples["through_cold"], samples["direct"], served["through_cold"])
        return {
            "result": list(results.pop()),
            **compare(samples["through_warm"], samples["direct"], served["through_warm"], samples["through_stand_in"]),
            "first_query_of_a_new_catalog": {
                k: cold[k] for k in ("through_catalog_ms", "catalog_server_ms_per_run", "catalog_share")
            },
        }
    finally:
        spark.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", choices=["duckdb", "spark"], action="append")
    args = parser.parse_args()
    only = set(args.only or ["duckdb", "spark"])

    figures: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg": os.getloadavg()},
        "table": {"rows": args.rows, "files": args.files},
        "repeats": args.repeats,
    }
    postgres = PostgresServer(PG_ADMIN_URL)
    workdir = Path(tempfile.mkdtemp(prefix="datlake-engines-bench-"))
    try:
        with ExitStack() as stack:
            s3 = stack.enter_context(seaweedfs())
            on_s3 = stack.enter_context(
                catalog_server(postgres.new_database(migrated=True), f"s3://{s3.bucket}/bench", s3, workdir)
            )
            on_files = stack.enter_context(
                catalog_server(postgres.new_database(migrated=True), (workdir / "warehouse").as_uri(), None, workdir)
            )
            for catalog in (on_s3, on_files):
                log(f"writing {args.rows} rows in {args.files} files to {catalog.url}")
                write_table(catalog, args.rows, args.files)
            if "duckdb" in only:
                log("DuckDB on S3")
                figures["duckdb_s3"] = bench_duckdb(on_s3, stack.enter_context(replay_server(on_s3)), args.repeats)
                log("DuckDB on local files")
                figures["duckdb_files"] = bench_duckdb(
                    on_files, stack.enter_context(replay_server(on_files)), args.repeats
                )
            if "spark" in only:
                log("Spark on local files")
                figures["spark_files"] = bench_spark(
                    on_files, stack.enter_context(replay_server(on_files)), args.repeats
                )
    finally:
        postgres.close()
        shutil.rmtree(workdir, ignore_errors=True)
    figures["machine"]["load_avg_after"] = os.getloadavg()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
