"""``datalake-cli``: the Datlake detached-mode API from a shell, built on the SDK only.

Exit codes: 0 success, 1 any other error, 2 usage or configuration, 3 not found,
4 authentication or permission, 5 job failed. Expected errors print one line on stderr.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from datlake_sdk._client import DatalakeClient
from datlake_sdk._config import DEFAULT_PROFILE, config_path, write_profile
from datlake_sdk._errors import (
    AuthenticationError,
    ConfigurationError,
    DatlakeError,
    ForbiddenError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
)
from datlake_sdk._models import Job, Snapshot, TableInfo

PROG = "datalake-cli"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_AUTH, EXIT_JOB_FAILED = 0, 1, 2, 3, 4, 5


class UsageError(Exception):
    """A command-line mistake found after parsing (unreadable schema file, nothing to configure)."""


# --- output ----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _print_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, default=str) + "\n")


def _print_rows(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO) -> None:
    cells = [[_text(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _print_record(pairs: Sequence[tuple[str, Any]], out: TextIO) -> None:
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        out.write(f"{key.ljust(width)}  {_text(value)}\n")


def _snapshot_pairs(s: Snapshot) -> list[tuple[str, Any]]:
    return [
        ("table_name", s.table_name),
        ("snapshot_id", s.snapshot_id),
        ("parent_snapshot_id", s.parent_snapshot_id),
        ("operation", s.operation),
        ("uri", s.uri),
        ("format", s.format),
        ("created_at", s.created_at),
        ("record_count", s.record_count),
        ("data_files", s.data_files),
        ("metadata_location", s.metadata_location),
    ]


def _job_pairs(job: Job) -> list[tuple[str, Any]]:
    return [
        ("job_id", job.job_id),
        ("status", job.status),
        ("table_name", job.table_name),
        ("uri", job.uri),
        ("mode", job.mode),
        ("format", job.format),
        ("snapshot_id", job.snapshot_id),
        ("error", job.error),
        ("created_at", job.created_at),
        ("started_at", job.started_at),
        ("finished_at", job.finished_at),
        ("attempts", job.attempts),
        ("handed_back", job.handed_back),
    ]


# --- commands --------------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> DatalakeClient:
    return DatalakeClient(url=args.url, api_key=args.api_key, profile=args.profile)


def _get_uri(args: argparse.Namespace, out: TextIO) -> int:
    with _client(args) as client:
        uri = client.get_table_uri(args.table)
    if args.output == "json":
        _print_json({"table_name": args.table, "uri": uri}, out)
    else:
        out.write(uri + "\n")
    return EXIT_OK


def _list_tables(args: argparse.Namespace, out: TextIO) -> int:
    with _client(args) as client:
        tables: list[TableInfo] = client.list_tables()
    if args.output == "json":
        _print_json([t.raw for t in tables], out)
    else:
        _print_rows(["name", "latest_snapshot_id"], [(t.name, t.latest_snapshot_id) for t in tables], out)
    return EXIT_OK


def _latest(args: argparse.Namespace, out: TextIO) -> int:
    with _client(args) as client:
        snapshot = client.latest_snapshot(args.table)
    if args.output == "json":
        _print_json(snapshot.raw, out)
    else:
        _print_record(_snapshot_pairs(snapshot), out)
    return EXIT_OK


def _snapshots(args: argparse.Namespace, out: TextIO) -> int:
    with _client(args) as client:
        history = client.snapshots(args.table)
    if args.output == "json":
        _print_json([s.raw for s in history], out)
    else:
        _print_rows(
            ["snapshot_id", "created_at", "operation", "record_count", "data_files"],
            [(s.snapshot_id, s.created_at, s.operation, s.record_count, s.data_files) for s in history],
            out,
        )
    return EXIT_OK


def _progress(err: TextIO) -> Callable[[Job], None]:
    def report(job: Job) -> None:
        detail = f" (snapshot {job.snapshot_id})" if job.status == "completed" and job.snapshot_id else ""
        err.write(f"job {job.job_id}: {job.status}{detail}\n")
        err.flush()

    return report


def _print_job(job: Job, args: argparse.Namespace, out: TextIO) -> None:
    if args.output == "json":
        _print_json(job.raw, out)
    else:
        _print_record(_job_pairs(job), out)


def _register_snapshot(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    schema = None
    if args.schema_file is not None:
        try:
            schema = json.loads(Path(args.schema_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read schema file {args.schema_file}: {exc}") from exc
        if not isinstance(schema, dict):
            raise UsageError(f"schema file {args.schema_file} must hold an Iceberg schema JSON object")
    with _client(args) as client:
        job = client.register_snapshot(args.table_name, args.uri, format=args.format, schema=schema, mode=args.mode)
        if args.wait:
            job = client.wait_for_job(job, timeout=args.timeout, on_progress=_progress(err))
    if args.output == "json":
        _print_json(job.raw, out)
    else:
        out.write(job.job_id + "\n")
    return EXIT_OK


def _job(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _client(args) as client:
        if args.wait:
            try:
                job = client.wait_for_job(args.job_id, timeout=args.timeout, on_progress=_progress(err))
            except JobFailedError as exc:
                _print_job(exc.job, args, out)
                raise
        else:
            job = client.get_job(args.job_id)
    _print_job(job, args, out)
    return EXIT_OK


def _jobs(args: argparse.Namespace, out: TextIO) -> int:
    with _client(args) as client:
        jobs = client.list_jobs()
    if args.output == "json":
        _print_json([j.raw for j in jobs], out)
    else:
        _print_rows(
            ["job_id", "status", "table_name", "snapshot_id", "created_at"],
            [(j.job_id, j.status, j.table_name, j.snapshot_id, j.created_at) for j in jobs],
            out,
        )
    return EXIT_OK


def _configure(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    profile = args.profile or os.environ.get("DATLAKE_PROFILE") or DEFAULT_PROFILE
    values: dict[str, Any] = {
        "url": args.url,
        "api_key": args.api_key,
        "client_id": args.client_id,
        "client_secret": args.client_secret,
        "s3_endpoint": args.s3_endpoint,
        "s3_access_key_id": args.s3_access_key_id,
        "s3_secret_access_key": args.s3_secret_access_key,
        "s3_region": args.s3_region,
        "s3_path_style_access": args.s3_path_style_access,
    }
    if all(v is None for v in values.values()):
        if not sys.stdin.isatty():
            raise UsageError(
                "nothing to configure: give --url and --api-key (or --client-id/--client-secret, --s3-...)"
            )
        values["url"] = input("Catalog URL (e.g. http://127.0.0.1:8181): ").strip() or None
        values["api_key"] = getpass.getpass("API key (dlk_..., empty to skip): ").strip() or None
    path = write_profile(profile, values)
    written = ", ".join(k for k, v in values.items() if v is not None)
    err.write(f"profile '{profile}' written to {path} ({written})\n")
    return EXIT_OK


def _setup_duckdb(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _client(args) as client:
        done = client.setup_duckdb()
        if not client.config.s3.configured:
            err.write("no S3 settings configured (DATLAKE_S3_ENDPOINT, ... or s3_* in the profile): no secret stored\n")
    for line in done:
        err.write(line + "\n")
    return EXIT_OK


# --- parser ----------------------------------------------------------------------------------


def _global_options(parser: argparse.ArgumentParser, *, in_subcommand: bool) -> None:
    """The global options, accepted before and after the command name."""
    default = argparse.SUPPRESS if in_subcommand else None
    parser.add_argument("--url", default=default, help="catalog URL (DATLAKE_URL)")
    parser.add_argument("--api-key", default=default, help="API key, dlk_... (DATLAKE_API_KEY; prefer it or a profile)")
    parser.add_argument("--profile", default=default, help="profile in the profile file (DATLAKE_PROFILE)")
    parser.add_argument(
        "--output",
        choices=["table", "json"],
        default=argparse.SUPPRESS if in_subcommand else "table",
        help="output format (default: table)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Datlake detached mode: resolve tables to URIs, register Parquet as snapshots, follow jobs.",
        epilog="Exit codes: 1 error, 2 usage/configuration, 3 not found, 4 authentication/permission, 5 job failed.",
    )
    _global_options(parser, in_subcommand=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, in_subcommand=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help, parents=[common])

    p = command("get-uri", "print the URI that reads the table's latest snapshot")
    p.add_argument("table", metavar="TABLE")
    p.set_defaults(run=_get_uri, streams=1)

    p = command("list-tables", "list the tables you may see")
    p.set_defaults(run=_list_tables, streams=1)

    p = command("latest", "show the table's latest snapshot")
    p.add_argument("table", metavar="TABLE")
    p.set_defaults(run=_latest, streams=1)

    p = command("snapshots", "show the table's snapshot history, newest first")
    p.add_argument("table", metavar="TABLE")
    p.set_defaults(run=_snapshots, streams=1)

    p = command("register-snapshot", "register Parquet already in the object store as a new snapshot")
    p.add_argument("--table-name", required=True, help="table to create or update, e.g. sales_q1 or finance.sales_q1")
    p.add_argument("--uri", required=True, help="one Parquet object, a prefix ending in /, or a glob")
    p.add_argument("--format", default="parquet", help="file format (default: parquet)")
    p.add_argument("--schema-file", help="Iceberg schema JSON to check the files against (default: inferred)")
    p.add_argument("--mode", choices=["overwrite", "append"], default="overwrite", help="default: overwrite")
    p.add_argument("--wait", action="store_true", help="wait for the job; progress on stderr, exit 5 if it fails")
    p.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds (exit 1)")
    p.set_defaults(run=_register_snapshot, streams=2)

    p = command("job", "show a job (with --wait: wait until it finishes)")
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("--wait", action="store_true", help="wait for the job; progress on stderr, exit 5 if it failed")
    p.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds (exit 1)")
    p.set_defaults(run=_job, streams=2)

    p = command("jobs", "list your jobs")
    p.set_defaults(run=_jobs, streams=1)

    p = command("configure", f"write a profile to the profile file ({config_path()})")
    p.add_argument("--client-id", help="OAuth2 client id (instead of an API key)")
    p.add_argument("--client-secret", help="OAuth2 client secret")
    p.add_argument("--s3-endpoint", help="S3 endpoint for local readers, e.g. http://127.0.0.1:9000")
    p.add_argument("--s3-access-key-id", help="S3 access key id for local readers")
    p.add_argument("--s3-secret-access-key", help="S3 secret access key for local readers")
    p.add_argument("--s3-region", help="S3 region (default us-east-1)")
    p.add_argument(
        "--s3-path-style-access",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="path-style S3 addressing (MinIO, SeaweedFS; the default)",
    )
    p.set_defaults(run=_configure, streams=2)

    p = command("setup-duckdb", "install DuckDB's extensions offline and store the S3 settings as a DuckDB secret")
    p.set_defaults(run=_setup_duckdb, streams=2)
    return parser


def _fail(err: TextIO, message: str, code: int) -> int:
    err.write(f"{PROG}: {message}\n")
    return code


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    args = build_parser().parse_args(argv)
    try:
        if args.streams == 2:
            code: int = args.run(args, out, err)
        else:
            code = args.run(args, out)
        return code
    except JobFailedError as exc:
        return _fail(err, f"job {exc.job.job_id} failed: {exc.message}", EXIT_JOB_FAILED)
    except JobTimeoutError as exc:
        return _fail(err, exc.message, EXIT_ERROR)
    except NotFoundError as exc:
        return _fail(err, f"not found: {exc.message}", EXIT_NOT_FOUND)
    except AuthenticationError as exc:
        return _fail(err, f"authentication failed: {exc.message}", EXIT_AUTH)
    except ForbiddenError as exc:
        return _fail(err, f"forbidden: {exc.message}", EXIT_AUTH)
    except (ConfigurationError, UsageError) as exc:
        return _fail(err, str(exc), EXIT_USAGE)
    except DatlakeError as exc:
        return _fail(err, exc.message, EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail(err, "interrupted", 130)
    except BrokenPipeError:
        # The reader went away (`datalake-cli list-tables | head -1`): stop quietly, and keep
        # Python from complaining when it flushes stdout at exit.
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
