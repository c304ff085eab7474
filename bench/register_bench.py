#!/usr/bin/env python
"""Register-snapshot benchmark: prints JSON figures for the detached-mode targets of issue 4.

It starts everything it measures: a fresh PostgreSQL database (migrated), a SeaweedFS S3
warehouse (or the one at ``DATLAKE_TEST_S3_ENDPOINT``), Redis (``DATLAKE_TEST_REDIS_URL``), a real
``datlake serve`` and ONE ``datlake worker`` process. The client runs in this process over HTTP.

- ``register``: for each size (default 100, 1,000, 5,000), upload that many small Parquet files
  under a fresh prefix (not timed), then time POST /api/v1/jobs/register-snapshot → job
  ``completed`` (polled every 10 ms). One snapshot per job. Files/s and seconds per 1,000 files
  show whether cost grows linearly.
- ``latency``: submit → running with RQ and an idle worker, from the job rows' ``created_at`` and
  ``started_at`` (server clock), over single-file jobs submitted one after another.

Targets: ≥ 200 files/s at 1,000 files; submit → running p50 ≤ 100 ms.
Run ``python bench/register_bench.py --help``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench._common import bootstrap_admin, datlake, datlake_serve, lookup, wait_until  # noqa: E402
from tests.services import PG_ADMIN_URL, REDIS_URL, PostgresServer, S3Server, free_port, s3_server  # noqa: E402

JWT_SECRET = "datlake-bench-jwt-secret-0123456789abcdef"
TARGETS = {
    "register.files_1000.files_per_second": (">=", 200.0),
    "latency.submit_to_running.p50_ms": ("<=", 100.0),
}


def parquet_file(start: int, rows: int) -> bytes:
    table = pa.table(
        {
            "id": pa.array(range(start, start + rows), pa.int64()),
            "name": pa.array([f"n{i}" for i in range(start, start + rows)], pa.string()),
            "amount": pa.array([i * 0.5 for i in range(start, start + rows)], pa.float64()),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def upload(s3: S3Server, prefix: str, count: int, rows: int) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name=s3.region,
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=32),
    )
    bucket, _, base = prefix.removeprefix("s3://").partition("/")
    with ThreadPoolExecutor(32) as pool:
        list(
            pool.map(
                lambda i: client.put_object(
                    Bucket=bucket, Key=f"{base}part-{i:05d}.parquet", Body=parquet_file(i * rows, rows)
                ),
                range(count),
            )
        )


def submit_and_wait(http: httpx.Client, table: str, uri: str, timeout: float = 900) -> tuple[float, dict[str, Any]]:
    """Submit, poll until done; return (submit → completed seconds, job).

    The duration is the POST's round trip plus the job row's ``created_at`` → ``finished_at``
    (server clock), so that the polling interval neither adds to it nor (by polling hard on two
    cores) slows the worker down; polls back off from 10 ms to 250 ms.
    """
    started = time.perf_counter()
    response = http.post("/api/v1/jobs/register-snapshot", json={"table_name": table, "uri": uri})
    response.raise_for_status()
    post_seconds = time.perf_counter() - started
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        job: dict[str, Any] = http.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("completed", "failed"):
            if job["status"] == "failed":
                raise RuntimeError(f"job failed: {job['error']}")
            return post_seconds + seconds_between(job["created_at"], job["finished_at"]), job
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} still {job['status']} after {timeout}s")
        time.sleep(pause)
        pause = min(0.25, pause * 1.5)


def seconds_between(earlier: str, later: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,5000", help="files per registration (comma-separated)")
    parser.add_argument("--rows-per-file", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="registrations per size; the median is reported")
    parser.add_argument("--latency-samples", type=int, default=40)
    parser.add_argument("--register-threads", type=int, default=16, help="DATLAKE_REGISTER_THREADS of the worker")
    parser.add_argument("--postgres-url", default=PG_ADMIN_URL)
    parser.add_argument("--redis-url", default=REDIS_URL)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    figures: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_1m_at_start": round(os.getloadavg()[0], 2),  # a shared machine skews every figure
        },
        "setup": {
            "workers": 1,
            "register_threads": args.register_threads,
            "rows_per_file": args.rows_per_file,
            "repeat": args.repeat,
            "database": "postgresql",
            "object_store": "seaweedfs (loopback)",
        },
    }
    tmp = Path(tempfile.mkdtemp(prefix="datlake-register-bench-"))
    postgres = PostgresServer(args.postgres_url)
    try:
        with ExitStack() as stack:
            s3 = stack.enter_context(s3_server())
            database_url = postgres.new_database(migrated=True)
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("DATLAKE_")}
            env.update(
                {
                    "DATLAKE_DATABASE_URL": database_url,
                    "DATLAKE_WAREHOUSE": f"s3://{s3.bucket}/bench-{uuid.uuid4().hex[:8]}",
                    "DATLAKE_REDIS_URL": args.redis_url,
                    "DATLAKE_JOB_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
                    "DATLAKE_AUTH_JWT_SECRET": JWT_SECRET,
                    "DATLAKE_REGISTER_THREADS": str(args.register_threads),
                    "DATLAKE_LOG_LEVEL": "INFO",
                    "DATLAKE_LOG_FORMAT": "text",
                    "DATLAKE_PORT": str(port),
                    **s3.settings_env(),
                }
            )
            worker_log = tmp / "worker.log"
            worker = stack.enter_context(datlake("worker", env, worker_log))
            stack.enter_context(datlake_serve(env, tmp / "serve.log"))
            wait_until(lambda: "listening on queue" in worker_log.read_text(), "datlake worker", worker, worker_log)
            key = bootstrap_admin(database_url, "lake").api_key
            url = f"http://127.0.0.1:{port}"
            http = stack.enter_context(
                httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
            )
            warehouse = env["DATLAKE_WAREHOUSE"]

            # Warm-up: first job pays imports, connection pools, FileIO creation.
            upload(s3, f"{warehouse}/landing/warmup/", 20, args.rows_per_file)
            submit_and_wait(http, "warmup", f"{warehouse}/landing/warmup/")

            register: dict[str, Any] = {}
            for size in sizes:
                prefix = f"{warehouse}/landing/n{size}/"
                upload(s3, prefix, size, args.rows_per_file)
                runs = []
                for repeat in range(args.repeat):
                    table = f"bench_{size}_{repeat}"  # a new table each time: one snapshot of `size` files
                    elapsed, job = submit_and_wait(http, table, prefix)
                    snapshot = http.get(f"/api/v1/tables/{table}/snapshots/latest").json()
                    assert snapshot["data_files"] == size, snapshot
                    assert snapshot["record_count"] == size * args.rows_per_file, snapshot
                    assert len(http.get(f"/api/v1/tables/{table}/snapshots").json()) == 1
                    runs.append((elapsed, job))
                elapsed, job = sorted(runs, key=lambda run: run[0])[len(runs) // 2]  # the median run
                register[f"files_{size}"] = {
                    "seconds_end_to_end": round(elapsed, 3),
                    "files_per_second": round(size / elapsed, 1),
                    "seconds_per_1000_files": round(elapsed / size * 1000, 3),
                    "queue_wait_ms": round(seconds_between(job["created_at"], job["started_at"]) * 1000, 1),
                    "run_seconds": round(seconds_between(job["started_at"], job["finished_at"]), 3),
                    "all_runs_seconds": [round(run[0], 3) for run in runs],
                    "snapshots_per_job": 1,
                }
            figures["register"] = register
            per_1000 = [v["seconds_per_1000_files"] for v in register.values()]
            figures["register_linearity"] = {
                "seconds_per_1000_files": per_1000,
                "max_over_min": round(max(per_1000) / min(per_1000), 2) if per_1000 else None,
            }

            upload(s3, f"{warehouse}/landing/one/", 1, args.rows_per_file)
            single = f"{warehouse}/landing/one/part-00000.parquet"
            waits: list[float] = []
            for i in range(args.latency_samples):
                time.sleep(0.05)  # the worker is idle, blocked on the queue, as in production
                _, job = submit_and_wait(http, f"latency_{i}", single)
                waits.append(seconds_between(job["created_at"], job["started_at"]) * 1000)
            figures["latency"] = {
                "submit_to_running": {
                    "samples": len(waits),
                    "p50_ms": round(statistics.median(waits), 1),
                    "p90_ms": round(percentile(waits, 0.9), 1),
                    "max_ms": round(max(waits), 1),
                }
            }
    finally:
        postgres.close()
        if os.environ.get("BENCH_KEEP_LOGS"):
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    verdicts = {}
    for name, (op, threshold) in TARGETS.items():
        value = lookup(figures, name)
        if value is None:
            continue
        ok = value >= threshold if op == ">=" else value <= threshold
        verdicts[name] = {"value": value, "target": f"{op} {threshold}", "met": ok}
    figures["targets"] = verdicts
    figures["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
