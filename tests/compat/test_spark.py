"""Spark 3.5 with Iceberg 1.10's REST client against the live catalog, end to end.

One SparkSession for the module (starting one costs seconds); each test registers its own Spark
catalog (``spark.sql.catalog.<name>``) on its own catalog server, authenticated with OAuth2 client
credentials. Runs on ``sqlite-file`` (embedded) and ``postgres-s3`` (Iceberg's ``S3FileIO`` on the
real S3 server); the delegation tests run on S3 with STS only, with no S3 keys given to Spark.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pyarrow as pa
import pytest
from pyiceberg.catalog import load_catalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from catalog.app import create_app
from tests.conftest import Backend, LiveServer, admin_credentials
from tests.delegation import make_caller, sts_backend
from tests.engines import duckdb_attach_catalog, duckdb_connection, duckdb_s3_secret
from tests.spark_engine import auth_from_properties, catalog_conf, new_spark_session, register_catalog

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.engines]
BACKENDS = pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True)
_names = itertools.count(1)


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    session = new_spark_session("datlake-compat-spark")
    yield session
    session.stop()


@pytest.fixture
def lake(spark: SparkSession, live_server: LiveServer, backend: Backend, catalog_properties: dict[str, str]) -> str:
    """A Spark catalog on this test's catalog server, as its administrator; returns the catalog's name."""
    name = f"lake{next(_names)}"
    conf = catalog_conf(
        live_server.url, backend.settings.warehouse_name, s3=backend.s3, **auth_from_properties(catalog_properties)
    )
    register_catalog(spark, name, conf)
    return name


def rows(spark: SparkSession, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in spark.sql(sql).collect()]


# --- DML ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "mode"),
    [("sqlite-file", "copy-on-write"), ("postgres-s3", "merge-on-read")],
    indirect=["backend"],
)
def test_dml_in_both_write_modes(
    spark: SparkSession, lake: str, mode: str, catalog_properties: dict[str, str], live_server: LiveServer
) -> None:
    spark.sql(f"CREATE NAMESPACE {lake}.shop")
    assert ("shop",) in rows(spark, f"SHOW NAMESPACES IN {lake}")
    spark.sql(
        f"CREATE TABLE {lake}.shop.orders (id bigint, region string, amount double) USING iceberg "
        "PARTITIONED BY (region) TBLPROPERTIES ('format-version'='2', "
        f"'write.delete.mode'='{mode}', 'write.update.mode'='{mode}', 'write.merge.mode'='{mode}')"
    )
    spark.sql(
        f"INSERT INTO {lake}.shop.orders VALUES (1, 'eu', 10.0), (2, 'us', 20.0), (3, 'eu', 30.0), (4, 'ap', 4.0)"
    )
    spark.sql(f"UPDATE {lake}.shop.orders SET amount = amount * 10 WHERE id = 1")
    spark.sql(f"DELETE FROM {lake}.shop.orders WHERE id = 2")
    spark.createDataFrame(
        [(3, "eu", 33.0), (5, "us", 50.0)], "id bigint, region string, amount double"
    ).createOrReplaceTempView("changes")
    spark.sql(
        f"MERGE INTO {lake}.shop.orders t USING changes c ON t.id = c.id "
        "WHEN MATCHED THEN UPDATE SET amount = c.amount WHEN NOT MATCHED THEN INSERT *"
    )
    expected = [(1, "eu", 100.0), (3, "eu", 33.0), (4, "ap", 4.0), (5, "us", 50.0)]
    assert rows(spark, f"SELECT id, region, amount FROM {lake}.shop.orders ORDER BY id") == expected

    delete_files = rows(spark, f"SELECT count(*) FROM {lake}.shop.orders.delete_files")[0][0]
    operations = [
        r[0] for r in rows(spark, f"SELECT operation FROM {lake}.shop.orders.snapshots ORDER BY committed_at")
    ]
    assert operations[0] == "append" and len(operations) == 4
    if mode == "merge-on-read":
        assert delete_files > 0, "merge-on-read writes delete files"
        # detached mode cannot hand such a snapshot out as plain Parquet URLs
        presigned = httpx.get(
            f"{live_server.url}/api/v1/tables/shop.orders/snapshots/latest",
            params={"access": "presigned"},
            headers=admin_credentials(live_server.app).headers,
            timeout=30,
        )
        assert presigned.status_code == 422 and "delete files" in presigned.json()["error"]["message"]
    else:
        assert delete_files == 0, "copy-on-write rewrites data files"

    # every commit went through the catalog: a fresh PyIceberg client sees the same state
    table = load_catalog("check", **catalog_properties).load_table("shop.orders")
    assert len(table.snapshots()) == 4
    seen = sorted(table.scan().to_arrow().select(["id", "region", "amount"]).to_pylist(), key=lambda r: r["id"])
    assert [(r["id"], r["region"], r["amount"]) for r in seen] == expected


# --- schema and partition evolution, views ----------------------------------------------------------


@BACKENDS
def test_schema_and_partition_evolution_and_views(spark: SparkSession, lake: str) -> None:
    spark.sql(f"CREATE NAMESPACE {lake}.db")
    spark.sql(f"CREATE TABLE {lake}.db.events (id bigint, kind string, v double) USING iceberg PARTITIONED BY (kind)")
    spark.sql(f"INSERT INTO {lake}.db.events VALUES (1, 'a', 1.0), (2, 'b', 2.0)")
    spark.sql(f"ALTER TABLE {lake}.db.events ADD COLUMN note string")
    spark.sql(f"ALTER TABLE {lake}.db.events RENAME COLUMN v TO value")
    spark.sql(f"ALTER TABLE {lake}.db.events ADD PARTITION FIELD bucket(4, id)")
    spark.sql(f"INSERT INTO {lake}.db.events VALUES (3, 'a', 3.0, 'after')")

    columns = [r[0] for r in rows(spark, f"DESCRIBE TABLE {lake}.db.events") if r[0] and not r[0].startswith("#")]
    assert columns[:4] == ["id", "kind", "value", "note"]
    assert rows(spark, f"SELECT id, value, note FROM {lake}.db.events ORDER BY id") == [
        (1, 1.0, None),
        (2, 2.0, None),
        (3, 3.0, "after"),
    ]
    specs = rows(spark, f"SELECT DISTINCT spec_id FROM {lake}.db.events.files ORDER BY spec_id")
    assert specs == [(0,), (1,)], "files written before and after the partition evolution"

    spark.sql(f"CREATE VIEW {lake}.db.big AS SELECT id, value FROM {lake}.db.events WHERE value >= 2")
    assert ("big",) in [(r[1],) for r in rows(spark, f"SHOW VIEWS IN {lake}.db")]
    assert rows(spark, f"SELECT id, value FROM {lake}.db.big ORDER BY id") == [(2, 2.0), (3, 3.0)]

    # table properties through Spark's DDL (a key never set is one Spark or the catalog ignores)
    spark.sql(f"ALTER TABLE {lake}.db.events SET TBLPROPERTIES ('team'='ana', 'tier'='gold')")
    spark.sql(f"ALTER TABLE {lake}.db.events UNSET TBLPROPERTIES IF EXISTS ('tier', 'never-set')")
    properties = dict(rows(spark, f"SHOW TBLPROPERTIES {lake}.db.events"))
    assert properties["team"] == "ana" and "tier" not in properties and "never-set" not in properties


# --- time travel, branches, tags, snapshot expiry ----------------------------------------------------


@BACKENDS
def test_time_travel_branches_tags_and_expiry(spark: SparkSession, lake: str) -> None:
    spark.sql(f"CREATE NAMESPACE {lake}.tt")
    spark.sql(f"CREATE TABLE {lake}.tt.t (id bigint) USING iceberg")
    for batch in ((1, 2), (3,), (4, 5)):
        spark.sql(f"INSERT INTO {lake}.tt.t VALUES " + ", ".join(f"({i})" for i in batch))
    snapshots = [r[0] for r in rows(spark, f"SELECT snapshot_id FROM {lake}.tt.t.snapshots ORDER BY committed_at")]
    assert len(snapshots) == 3
    assert rows(spark, f"SELECT count(*) FROM {lake}.tt.t VERSION AS OF {snapshots[0]}") == [(2,)]
    assert rows(spark, f"SELECT count(*) FROM {lake}.tt.t VERSION AS OF {snapshots[1]}") == [(3,)]

    spark.sql(f"ALTER TABLE {lake}.tt.t CREATE TAG first AS OF VERSION {snapshots[0]}")
    spark.sql(f"ALTER TABLE {lake}.tt.t CREATE BRANCH dev")
    spark.sql(f"INSERT INTO {lake}.tt.t.branch_dev VALUES (100)")
    assert rows(spark, f"SELECT count(*) FROM {lake}.tt.t VERSION AS OF 'first'") == [(2,)]
    assert rows(spark, f"SELECT max(id) FROM {lake}.tt.t.branch_dev") == [(100,)]
    assert rows(spark, f"SELECT max(id) FROM {lake}.tt.t") == [(5,)], "main is untouched by the branch"
    refs = dict(rows(spark, f"SELECT name, type FROM {lake}.tt.t.refs"))
    assert refs == {"main": "BRANCH", "dev": "BRANCH", "first": "TAG"}

    result = spark.sql(
        f"CALL {lake}.system.expire_snapshots(table => 'tt.t', "
        "older_than => TIMESTAMP '2999-01-01 00:00:00', retain_last => 1)"
    ).collect()[0]
    assert result["deleted_manifest_lists_count"] >= 1
    left = {r[0] for r in rows(spark, f"SELECT snapshot_id FROM {lake}.tt.t.snapshots")}
    referenced = {r[0] for r in rows(spark, f"SELECT snapshot_id FROM {lake}.tt.t.refs")}
    assert left == referenced and snapshots[1] not in left
    assert rows(spark, f"SELECT count(*) FROM {lake}.tt.t") == [(5,)]


# --- across engines ---------------------------------------------------------------------------------

TYPED_ROWS = [
    (1, "alpha", 1.5, Decimal("10.25"), date(2024, 1, 31), datetime(2024, 1, 31, 12, 30, 5), True),
    (2, "beta", -2.0, Decimal("0.01"), date(1999, 12, 31), datetime(1999, 12, 31, 23, 59, 59), False),
    (3, None, None, None, None, None, None),
]
TYPED_COLUMNS = "id, name, score, price, day, ts, ok"


def duckdb_rows(backend: Backend, live_server: LiveServer, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb_connection()
    if backend.s3 is not None:
        duckdb_s3_secret(con, backend.s3)
    duckdb_attach_catalog(
        con, live_server.url, backend.settings.warehouse_name, credential=admin_credentials(live_server.app).credential
    )
    return [tuple(r) for r in con.execute(sql).fetchall()]


@BACKENDS
def test_spark_table_read_by_pyiceberg_and_duckdb(
    spark: SparkSession, lake: str, backend: Backend, live_server: LiveServer, catalog_properties: dict[str, str]
) -> None:
    spark.sql(f"CREATE NAMESPACE {lake}.x")
    spark.sql(
        f"CREATE TABLE {lake}.x.typed (id bigint, name string, score double, price decimal(10,2), day date, "
        "ts timestamp_ntz, ok boolean) USING iceberg PARTITIONED BY (days(ts))"
    )
    schema = "id bigint, name string, score double, price decimal(10,2), day date, ts timestamp_ntz, ok boolean"
    spark.createDataFrame(TYPED_ROWS[:2], schema).writeTo(f"{lake}.x.typed").append()
    spark.createDataFrame(TYPED_ROWS[2:], schema).writeTo(f"{lake}.x.typed").append()

    table = load_catalog("reader", **catalog_properties).load_table("x.typed")
    got = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["id"])
    assert [tuple(r[c.strip()] for c in TYPED_COLUMNS.split(",")) for r in got] == TYPED_ROWS

    duck = duckdb_rows(backend, live_server, f"SELECT {TYPED_COLUMNS} FROM lake.x.typed ORDER BY id")
    assert duck == TYPED_ROWS


@BACKENDS
def test_pyiceberg_table_read_and_extended_by_spark(
    spark: SparkSession, lake: str, catalog_properties: dict[str, str]
) -> None:
    catalog = load_catalog("writer", **catalog_properties)
    catalog.create_namespace("py")
    schema = Schema(NestedField(1, "id", LongType(), required=False), NestedField(2, "s", StringType(), required=False))
    table = catalog.create_table("py.made", schema)
    table.append(pa.table({"id": pa.array([1, 2, 3], pa.int64()), "s": ["a", "b", "c"]}))

    assert rows(spark, f"SELECT id, s FROM {lake}.py.made ORDER BY id") == [(1, "a"), (2, "b"), (3, "c")]
    spark.sql(f"INSERT INTO {lake}.py.made VALUES (4, 'd')")
    spark.sql(f"DELETE FROM {lake}.py.made WHERE id = 1")
    assert sorted(catalog.load_table("py.made").scan().to_arrow().column("id").to_pylist()) == [2, 3, 4]


# --- delegated access: no S3 keys in Spark ------------------------------------------------------------


@dataclass
class Delegated:
    """An STS-vending catalog with table ``d.t`` (3 rows, written by the admin with its own keys) and
    Spark catalogs without S3 keys: ``admin`` (OAuth2 credential, vended), ``reader`` (an API key as
    ``token``, SELECT only, vended), ``signed`` (admin, remote signing). ``signed_methods``: the
    methods of the S3 requests the catalog signed."""

    names: dict[str, str]
    signed_methods: list[str]


@pytest.fixture
def delegated(spark: SparkSession, backend_factory: Callable[..., Backend]) -> Iterator[Delegated]:
    backend = sts_backend(backend_factory, "postgres-s3")
    app = create_app(backend.settings)
    signed_methods: list[str] = []
    credentials = app.state.services.credentials
    really_sign = credentials.sign

    def sign_and_count(method: str, *args: Any) -> Any:  # counts, then signs for real
        signed_methods.append(method)
        return really_sign(method, *args)

    credentials.sign = sign_and_count
    server = LiveServer(app).start()
    try:
        admin = admin_credentials(app)
        catalog = load_catalog(
            "admin",
            type="rest",
            uri=server.url,
            warehouse=backend.settings.warehouse_name,
            credential=admin.credential,
            **backend.storage_properties(),
        )
        catalog.create_namespace("d")
        catalog.create_table("d.t", Schema(NestedField(1, "id", LongType(), required=False))).append(
            pa.table({"id": pa.array([1, 2, 3], pa.int64())})
        )
        reader = make_caller(app, "spark-reader", {"d.t": ["SELECT"]})
        names = {}
        for role, auth, mode in (
            ("admin", {"credential": admin.credential}, "vended-credentials"),
            ("reader", {"token": reader.api_key}, "vended-credentials"),
            ("signed", {"credential": admin.credential}, "remote-signing"),
        ):
            names[role] = f"{role}{next(_names)}"
            conf = catalog_conf(
                server.url,
                backend.settings.warehouse_name,
                s3=backend.s3,
                s3_keys=False,
                extra={"header.X-Iceberg-Access-Delegation": mode},
                **auth,
            )
            register_catalog(spark, names[role], conf)
        yield Delegated(names, signed_methods)
    finally:
        server.stop()


@pytest.mark.s3
@pytest.mark.postgres
def test_spark_reads_and_writes_with_vended_credentials_only(spark: SparkSession, delegated: Delegated) -> None:
    admin, reader = delegated.names["admin"], delegated.names["reader"]
    spark.sql(f"INSERT INTO {admin}.d.t VALUES (4)")
    spark.sql(f"CREATE TABLE {admin}.d.made USING iceberg AS SELECT id * 10 AS id FROM {admin}.d.t")
    assert rows(spark, f"SELECT sum(id) FROM {admin}.d.made") == [(100,)]

    assert rows(spark, f"SELECT count(*), sum(id) FROM {reader}.d.t") == [(4, 10)]
    with pytest.raises(Exception) as failure:  # read-only credentials: the data file upload is refused
        spark.sql(f"INSERT INTO {reader}.d.t VALUES (5)")
    assert "403" in str(failure.value) or "Forbidden" in str(failure.value) or "AccessDenied" in str(failure.value)
    assert rows(spark, f"SELECT count(*) FROM {admin}.d.t") == [(4,)]
    assert delegated.signed_methods == [], "vended credentials need no signatures"


@pytest.mark.s3
@pytest.mark.postgres
def test_spark_with_remote_signing(spark: SparkSession, delegated: Delegated) -> None:
    signed = delegated.names["signed"]
    assert rows(spark, f"SELECT count(*) FROM {signed}.d.t") == [(3,)]
    spark.sql(f"INSERT INTO {signed}.d.t VALUES (40)")
    spark.sql(f"DELETE FROM {signed}.d.t WHERE id = 1")
    assert rows(spark, f"SELECT sum(id) FROM {signed}.d.t") == [(45,)]
    # every S3 request of the engine went through the catalog's signer: reads and writes
    assert {"GET", "PUT"} <= set(delegated.signed_methods), delegated.signed_methods
