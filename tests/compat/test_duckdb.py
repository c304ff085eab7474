"""DuckDB 1.5 reads tables that PyIceberg wrote through the catalog (postgres-s3, real S3), authenticated
with OAuth2 client credentials."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyiceberg.catalog import load_catalog
from pyiceberg.schema import Schema
from pyiceberg.types import DoubleType, LongType, NestedField, StringType

from tests.conftest import Backend, LiveServer, admin_credentials
from tests.engines import duckdb_attach_catalog, duckdb_connection, duckdb_s3_secret

pytestmark = [
    pytest.mark.engines,
    pytest.mark.postgres,
    pytest.mark.s3,
    pytest.mark.parametrize("backend", ["postgres-s3"], indirect=True),
]

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "name", StringType(), required=False),
    NestedField(3, "score", DoubleType(), required=False),
)

ROWS = [(i, f"name-{i}", i * 1.5) for i in range(1, 51)]


def _arrow(rows: list[tuple[int, str, float]]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.int64()),
            "name": pa.array([r[1] for r in rows], pa.string()),
            "score": pa.array([r[2] for r in rows], pa.float64()),
        }
    )


@pytest.fixture
def written(catalog_properties: dict[str, str]) -> str:
    """A table ``sales.orders`` with two appended batches; returns its metadata location."""
    catalog = load_catalog("test", **catalog_properties)
    catalog.create_namespace("sales")
    table = catalog.create_table("sales.orders", SCHEMA)
    table.append(_arrow(ROWS[:20]))
    table.append(_arrow(ROWS[20:]))
    return catalog.load_table("sales.orders").metadata_location


def test_duckdb_attach_reads_pyiceberg_table(written: str, live_server: LiveServer, backend: Backend) -> None:
    assert backend.s3 is not None
    con = duckdb_connection()
    duckdb_s3_secret(con, backend.s3)
    duckdb_attach_catalog(
        con, live_server.url, backend.settings.warehouse_name, credential=admin_credentials(live_server.app).credential
    )

    schemas = {
        row[0]
        for row in con.execute("SELECT schema_name FROM duckdb_schemas() WHERE database_name = 'lake'").fetchall()
    }
    assert "sales" in schemas
    tables = con.execute("SHOW ALL TABLES").fetchall()
    assert any(row[0] == "lake" and row[1] == "sales" and row[2] == "orders" for row in tables), tables

    rows = con.execute("SELECT id, name, score FROM lake.sales.orders ORDER BY id").fetchall()
    assert rows == ROWS
    total = con.execute("SELECT count(*), sum(id), max(name) FROM lake.sales.orders WHERE score > 30").fetchone()
    expected = [r for r in ROWS if r[2] > 30]
    assert total == (len(expected), sum(r[0] for r in expected), max(r[1] for r in expected))


def test_duckdb_sees_new_snapshot_after_reattach(
    written: str, live_server: LiveServer, backend: Backend, catalog_properties: dict[str, str]
) -> None:
    assert backend.s3 is not None
    catalog = load_catalog("test", **catalog_properties)
    catalog.load_table("sales.orders").delete("id <= 10")

    con = duckdb_connection()
    duckdb_s3_secret(con, backend.s3)
    duckdb_attach_catalog(
        con, live_server.url, backend.settings.warehouse_name, credential=admin_credentials(live_server.app).credential
    )
    rows = con.execute("SELECT id FROM lake.sales.orders ORDER BY id").fetchall()
    assert [r[0] for r in rows] == list(range(11, 51))


def test_duckdb_iceberg_scan_metadata_file(written: str, backend: Backend) -> None:
    assert backend.s3 is not None
    assert written.startswith("s3://")
    con = duckdb_connection()
    duckdb_s3_secret(con, backend.s3)
    rows = con.execute("SELECT id, name, score FROM iceberg_scan(?) ORDER BY id", [written]).fetchall()
    assert rows == ROWS
    snapshots = con.execute("SELECT count(*) FROM iceberg_snapshots(?)", [written]).fetchone()
    assert snapshots == (2,)


def test_duckdb_writes_are_visible_to_pyiceberg(
    written: str, live_server: LiveServer, backend: Backend, catalog_properties: dict[str, str]
) -> None:
    """DuckDB's own commits (staged create + transactions/commit, appends) go through the catalog."""
    assert backend.s3 is not None
    con = duckdb_connection()
    duckdb_s3_secret(con, backend.s3)
    duckdb_attach_catalog(
        con, live_server.url, backend.settings.warehouse_name, credential=admin_credentials(live_server.app).credential
    )
    con.execute("INSERT INTO lake.sales.orders VALUES (1000, 'duck', 0.5)")
    con.execute("CREATE TABLE lake.sales.totals AS SELECT 7::BIGINT AS n, 'seven' AS label")

    catalog = load_catalog("test", **catalog_properties)
    orders = catalog.load_table("sales.orders")
    assert orders.metadata_location != written
    assert sorted(orders.scan().to_arrow().column("id").to_pylist()) == [r[0] for r in ROWS] + [1000]
    totals = catalog.load_table("sales.totals").scan().to_arrow().to_pylist()
    assert totals == [{"n": 7, "label": "seven"}]
