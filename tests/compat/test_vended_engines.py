"""PyIceberg and DuckDB with nothing but what the catalog vends: no S3 keys on the client.

The catalog (postgres-s3, SeaweedFS STS) vends credentials limited to one table and to the caller's
privileges: ``reader`` (SELECT on ``d.t``) reads and cannot write; ``writer`` (SELECT, INSERT, CREATE
on namespace ``d``) reads, appends and creates tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from catalog.app import create_app
from tests.conftest import Backend, LiveServer
from tests.delegation import Caller, admin_catalog, make_caller, sts_backend
from tests.engines import duckdb_attach_catalog, duckdb_connection

pytestmark = [pytest.mark.engines, pytest.mark.s3, pytest.mark.postgres]

SCHEMA = Schema(NestedField(1, "id", LongType(), required=False), NestedField(2, "s", StringType(), required=False))


def batch(ids: list[int]) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64()), "s": [f"v{i}" for i in ids]})


@dataclass
class Vending:
    backend: Backend
    server: LiveServer
    admin: Catalog  # with the warehouse's own S3 keys, to check what others did
    reader: Caller
    writer: Caller

    def catalog(self, caller: Caller) -> Catalog:
        """A PyIceberg catalog with the caller's OAuth2 credential and no S3 settings at all."""
        properties = {
            "type": "rest",
            "uri": self.server.url,
            "warehouse": self.backend.settings.warehouse_name,
            "credential": caller.credential,
        }
        assert not any(key.startswith("s3.") for key in properties)
        return load_catalog(caller.name, **properties)


@pytest.fixture
def vending(backend_factory: Callable[..., Backend]) -> Iterator[Vending]:
    backend = sts_backend(backend_factory, "postgres-s3")
    app = create_app(backend.settings)
    server = LiveServer(app).start()
    try:
        admin = admin_catalog(app, server.url, backend)
        admin.create_table("d.t", SCHEMA).append(batch([1, 2, 3]))
        reader = make_caller(app, "reader", {"d.t": ["SELECT"]})
        writer = make_caller(app, "writer", {"d": ["SELECT", "INSERT", "CREATE"]})
        yield Vending(backend, server, admin, reader, writer)
    finally:
        server.stop()


def ids(table: Any) -> list[int]:
    return sorted(table.scan().to_arrow().column("id").to_pylist())


# --- PyIceberg --------------------------------------------------------------------------------------------


def test_pyiceberg_reader_reads_with_vended_credentials_and_cannot_write(vending: Vending) -> None:
    table = vending.catalog(vending.reader).load_table("d.t")
    assert table.io.properties["s3.session-token"], "the FileIO runs on vended STS credentials"
    assert ids(table) == [1, 2, 3]
    with pytest.raises(OSError, match="(?i)denied|403|forbidden"):
        table.append(batch([99]))
    assert ids(vending.admin.load_table("d.t")) == [1, 2, 3]


def test_pyiceberg_writer_appends_and_creates_with_vended_credentials(vending: Vending) -> None:
    catalog = vending.catalog(vending.writer)
    catalog.load_table("d.t").append(batch([4]))
    created = catalog.create_table("d.fresh", SCHEMA)
    created.append(batch([10, 11]))
    assert ids(vending.admin.load_table("d.t")) == [1, 2, 3, 4]
    assert ids(vending.admin.load_table("d.fresh")) == [10, 11]


# --- DuckDB -----------------------------------------------------------------------------------------------


def duckdb_for(vending: Vending, caller: Caller) -> Any:
    """DuckDB with no S3 secret, attached with the caller's OAuth2 credential and vended credentials."""
    con = duckdb_connection()
    assert con.execute("SELECT count(*) FROM duckdb_secrets() WHERE type = 's3'").fetchone() == (0,)
    duckdb_attach_catalog(
        con,
        vending.server.url,
        vending.backend.settings.warehouse_name,
        credential=caller.credential,
        vended_credentials=True,
    )
    return con


def test_duckdb_reader_reads_with_vended_credentials_and_cannot_write(vending: Vending) -> None:
    con = duckdb_for(vending, vending.reader)
    assert con.execute("SELECT id, s FROM lake.d.t ORDER BY id").fetchall() == [(1, "v1"), (2, "v2"), (3, "v3")]
    with pytest.raises(Exception, match="(?i)denied|403|forbidden"):
        con.execute("INSERT INTO lake.d.t VALUES (50, 'x')")
    assert ids(vending.admin.load_table("d.t")) == [1, 2, 3]


def test_duckdb_writer_creates_and_inserts_with_vended_credentials(vending: Vending) -> None:
    con = duckdb_for(vending, vending.writer)
    con.execute("INSERT INTO lake.d.t VALUES (7, 'v7')")
    con.execute("CREATE TABLE lake.d.duck (id BIGINT, s VARCHAR)")
    con.execute("INSERT INTO lake.d.duck VALUES (1, 'one'), (2, 'two')")
    assert ids(vending.admin.load_table("d.t")) == [1, 2, 3, 7]
    assert vending.admin.load_table("d.duck").scan().to_arrow().to_pylist() == [
        {"id": 1, "s": "one"},
        {"id": 2, "s": "two"},
    ]


# --- detached mode: presigned URLs ------------------------------------------------------------------------


def test_duckdb_reads_a_snapshot_through_presigned_urls(vending: Vending) -> None:
    vending.admin.load_table("d.t").append(batch([4, 5]))
    url = f"{vending.server.url}/api/v1/tables/d.t/snapshots/latest"
    response = httpx.get(url, params={"access": "presigned"}, headers=vending.reader.headers, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["presigned_urls"]) == body["data_files"] == 2
    assert all(u.startswith(vending.backend.s3.endpoint + "/") for u in body["presigned_urls"])  # type: ignore[union-attr]
    assert datetime.fromisoformat(body["presigned_urls_expire_at"]) > datetime.now(UTC)

    con = duckdb_connection(("httpfs",))  # no S3 secret, no catalog: the URLs are all it has
    got = con.execute("SELECT id, s FROM read_parquet(?) ORDER BY id", [body["presigned_urls"]]).fetchall()
    assert got == [(i, f"v{i}") for i in (1, 2, 3, 4, 5)]

    # without SELECT: nothing
    nobody = make_caller(vending.server.app, "nobody", {})
    denied = httpx.get(url, params={"access": "presigned"}, headers=nobody.headers, timeout=30)
    assert denied.status_code == 403 and "X-Amz" not in denied.text


def test_presigned_urls_expire(vending: Vending) -> None:
    url = f"{vending.server.url}/api/v1/tables/d.t/snapshots/latest"
    # 3 s, not 1: the signing time is rounded down to the second, so a 1 s URL may already be
    # stale when a busy machine fetches it.
    body = httpx.get(
        url, params={"access": "presigned", "expires_in": 3}, headers=vending.reader.headers, timeout=30
    ).json()
    [presigned] = body["presigned_urls"]
    assert httpx.get(presigned, timeout=10).status_code == 200
    time.sleep(4.5)
    expired = httpx.get(presigned, timeout=10)
    assert expired.status_code == 403 and b"expired" in expired.content.lower()
