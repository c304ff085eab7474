"""The ``datlake`` command: serve, migrate, worker, admin, openapi."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from catalog.config import Settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings()
    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "workers": args.workers}.items() if v}
    settings = settings.model_copy(update=overrides)
    from catalog.observability import configure_logging, logging_config

    configure_logging(settings.log_level, settings.log_format)
    # Fail fast (unmigrated database, bad URL) before uvicorn forks workers.
    from catalog.app import build_services
    from catalog.auth.tokens import InsecureConfiguration
    from catalog.persistence.database import SchemaOutdated

    try:
        build_services(settings).store.engine.dispose()
    except (SchemaOutdated, InsecureConfiguration) as exc:
        print(f"datlake: {exc}", file=sys.stderr)
        return 1
    print(
        f"Datlake Catalog on http://{settings.host}:{settings.port} "
        f"(warehouse {settings.warehouse_name!r} at {settings.resolved_warehouse}, "
        f"database {'SQLite (embedded)' if settings.embedded else 'external'})",
        file=sys.stderr,
    )
    metrics_dir = _shared_metrics_dir(settings.serve_workers)
    # On SIGTERM uvicorn stops accepting connections, lets the requests in flight finish (at most
    # DATLAKE_SHUTDOWN_TIMEOUT_SECONDS), runs the app's shutdown, then raises the signal again for
    # the handler that was there before it. Python's default one would end a cleanly stopped
    # server with "killed by SIGTERM"; this one lets the command return 0.
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        uvicorn.run(
            "catalog.asgi:app",
            host=settings.host,
            port=settings.port,
            workers=settings.serve_workers,
            log_level=settings.log_level.lower(),
            # Applied in every process that serves: worker processes (--workers N) are fresh interpreters.
            log_config=logging_config(settings.log_level, settings.log_format),
            access_log=False,  # catalog.observability logs each request with its id
            env_file=None,
            # uvicorn's 5 s default closes idle keep-alive connections while clients (PyIceberg's
            # requests session) still reuse them: a request sent as the close lands is reset.
            # Stay above common client and load-balancer idle timeouts (ALB: 60 s).
            timeout_keep_alive=75,
            timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        if metrics_dir is not None:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _shared_metrics_dir(workers: int) -> str | None:
    """A fresh directory where several worker processes keep their metrics, so /metrics reports the
    sum over all of them whichever process answers (prometheus_client's multiprocess mode).

    Set before uvicorn starts the processes, which inherit it; an operator's own
    PROMETHEUS_MULTIPROC_DIR is left as it is.
    """
    if workers < 2 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    path = tempfile.mkdtemp(prefix="datlake-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def _migrate(_args: argparse.Namespace) -> int:
    from catalog.persistence.database import current_revision, make_engine, migrate

    settings = Settings()
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    print(f"database schema at revision {current_revision(engine)}")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from catalog.observability import configure_logging
    from worker.main import run_worker

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return run_worker(settings, burst=args.burst)


def _openapi(args: argparse.Namespace) -> int:
    from catalog.openapi_doc import render

    document = render()
    if args.output == "-":
        sys.stdout.write(document)
        return 0
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(document, encoding="utf-8")
    print(f"wrote {output}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datlake", description="Datlake Catalog server and administration")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the catalog HTTP server")
    serve.add_argument("--host", help="bind address (DATLAKE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (DATLAKE_PORT, default 8181)")
    serve.add_argument(
        "--workers", type=int, help="worker processes (DATLAKE_WORKERS; default: 1 on SQLite, else 1 per core, max 4)"
    )
    serve.set_defaults(func=_serve)
    migrate = commands.add_parser("migrate", help="upgrade the catalog database schema")
    migrate.set_defaults(func=_migrate)
    worker = commands.add_parser("worker", help="run register-snapshot jobs from the Redis queue (RQ)")
    worker.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    worker.set_defaults(func=_worker)
    openapi = commands.add_parser(
        "openapi", help="write the OpenAPI document of the catalog's HTTP API (no services needed)"
    )
    openapi.add_argument(
        "--output",
        default="openapi/datlake-catalog.json",
        help="file to write, or - for standard output (default: openapi/datlake-catalog.json)",
    )
    openapi.set_defaults(func=_openapi)
    from catalog.admin_cli import add_admin_parser

    add_admin_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
