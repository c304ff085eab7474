"""Engines authenticate the way they already know, and grants limit them (postgres-s3, real S3).

PyIceberg with ``credential`` (OAuth2 client credentials) and with ``token`` (an API key), DuckDB
with ``CLIENT_ID``/``CLIENT_SECRET``: a reader scans, its writes fail with 403 and leave the table
as it was; a writer's commits need exactly the privileges their update list implies; revoking a
grant or a key takes effect on the next request.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import ForbiddenError, OAuthError, UnauthorizedError
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from tests.conftest import Backend, LiveServer, admin_credentials
from tests.engines import duckdb_attach_catalog, duckdb_connection, duckdb_s3_secret
from tests.integration.rbac_helpers import ADMIN_API, Caller, grant, make_caller, ok, revoke

pytestmark = [
    pytest.mark.engines,
    pytest.mark.postgres,
    pytest.mark.s3,
    pytest.mark.parametrize("backend", ["postgres-s3"], indirect=True),
]

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "name", StringType(), required=False),
)


def _rows(start: int, count: int) -> pa.Table:
    ids = list(range(start, start + count))
    return pa.table({"id": pa.array(ids, pa.int64()), "name": pa.array([f"n{i}" for i in ids], pa.string())})


@pytest.fixture
def admin_http(live_server: LiveServer) -> Any:
    with TestClient(live_server.app, headers=admin_credentials(live_server.app).headers) as client:
        yield client


@pytest.fixture
def orders(catalog_properties: dict[str, str]) -> Catalog:
    """``sales.orders`` with 20 rows (two appends) and an empty ``hr`` namespace, made by the administrator."""
    catalog = load_catalog("admin", **catalog_properties)
    catalog.create_namespace("sales")
    catalog.create_namespace("hr")
    table = catalog.create_table("sales.orders", SCHEMA)
    table.append(_rows(0, 10))
    table.append(_rows(10, 10))
    return catalog


def _props(catalog_properties: dict[str, str], **auth: str) -> dict[str, str]:
    props = {k: v for k, v in catalog_properties.items() if k not in {"credential", "token"}}
    return {**props, **auth}


def _state(admin_catalog: Catalog) -> tuple[int | None, int]:
    table = admin_catalog.load_table("sales.orders")
    return table.metadata.current_snapshot_id, len(table.scan().to_arrow())


def test_pyiceberg_reader_with_credential_and_with_token(
    orders: Catalog, catalog_properties: dict[str, str], admin_http: TestClient
) -> None:
    reader = make_caller(admin_http, [("SELECT", "namespace", "sales")])
    before = _state(orders)
    with_credential = load_catalog(
        "reader", **_props(catalog_properties, credential=f"{reader.client_id}:{reader.client_secret}")
    )
    with_token = load_catalog("reader-key", **_props(catalog_properties, token=reader.api_key))
    for catalog in (with_credential, with_token):
        assert catalog.list_namespaces() == [("sales",)]  # hr is not visible
        assert catalog.list_tables("sales") == [("sales", "orders")]
        table = catalog.load_table("sales.orders")
        assert sorted(table.scan().to_arrow().column("id").to_pylist()) == list(range(20))
        with pytest.raises(ForbiddenError):
            table.append(_rows(100, 5))
        with pytest.raises(ForbiddenError):
            catalog.create_table("sales.mine", SCHEMA)
        with pytest.raises(ForbiddenError):
            catalog.load_table("hr.anything")  # 403 whether or not it exists
    assert _state(orders) == before  # the refused appends changed nothing

    # revoking the grant takes effect on the next request of the same clients
    revoke(admin_http, f"role-{reader.name}", "SELECT", "namespace", "sales")
    for catalog in (with_credential, with_token):
        with pytest.raises(ForbiddenError):
            catalog.load_table("sales.orders")
    grant(admin_http, f"role-{reader.name}", "SELECT", "namespace", "sales")
    assert with_token.load_table("sales.orders").metadata.current_snapshot_id == before[0]

    # revoking the key: the token= client is out on its next request, the credential= one is not
    ok(admin_http.delete(f"{ADMIN_API}/principals/{reader.name}/api-keys/{reader.key_id}"), 204)
    with pytest.raises(UnauthorizedError):
        with_token.load_table("sales.orders")
    assert with_credential.load_table("sales.orders").metadata.current_snapshot_id == before[0]
    # disabling the principal ends the OAuth2 session too
    ok(admin_http.patch(f"{ADMIN_API}/principals/{reader.name}", json={"enabled": False}), 200)
    with pytest.raises(OAuthError, match="invalid_client"):  # 401, then its token refresh is refused too
        with_credential.load_table("sales.orders")


def test_pyiceberg_commits_need_what_their_updates_imply(
    orders: Catalog, catalog_properties: dict[str, str], admin_http: TestClient
) -> None:
    writer = make_caller(admin_http, [("SELECT", "table", "sales.orders"), ("INSERT", "table", "sales.orders")])
    role = f"role-{writer.name}"
    catalog = load_catalog(
        "writer", **_props(catalog_properties, credential=f"{writer.client_id}:{writer.client_secret}")
    )
    table = catalog.load_table("sales.orders")
    table.append(_rows(20, 5))  # append → INSERT
    assert _state(orders)[1] == 25

    before = _state(orders)
    with pytest.raises(ForbiddenError):
        catalog.load_table("sales.orders").overwrite(_rows(0, 3))  # overwrite → UPDATE
    with pytest.raises(ForbiddenError):
        catalog.load_table("sales.orders").delete("id < 10")  # delete → DELETE
    with pytest.raises(ForbiddenError):
        with catalog.load_table("sales.orders").update_schema() as update:  # schema → ALTER
            update.add_column("extra", StringType())
    assert _state(orders) == before

    grant(admin_http, role, "DELETE", "table", "sales.orders")
    catalog.load_table("sales.orders").delete("id < 10")  # whole files: a delete snapshot
    assert _state(orders)[1] == 15
    grant(admin_http, role, "UPDATE", "table", "sales.orders")
    catalog.load_table("sales.orders").overwrite(_rows(0, 3))
    assert _state(orders)[1] == 3
    grant(admin_http, role, "ALTER", "table", "sales.orders")
    with catalog.load_table("sales.orders").update_schema() as update:
        update.add_column("extra", StringType())
    assert "extra" in orders.load_table("sales.orders").schema().column_names


def test_duckdb_reader_with_client_credentials(
    orders: Catalog, live_server: LiveServer, backend: Backend, admin_http: TestClient
) -> None:
    assert backend.s3 is not None
    reader: Caller = make_caller(admin_http, [("SELECT", "table", "sales.orders")])
    before = _state(orders)
    con = duckdb_connection()
    duckdb_s3_secret(con, backend.s3)
    duckdb_attach_catalog(
        con, live_server.url, backend.settings.warehouse_name, credential=f"{reader.client_id}:{reader.client_secret}"
    )
    assert con.execute("SELECT count(*), sum(id) FROM lake.sales.orders").fetchone() == (20, sum(range(20)))
    with pytest.raises(Exception, match="403|Forbidden|may not"):
        con.execute("INSERT INTO lake.sales.orders VALUES (999, 'duck')")
    assert _state(orders) == before

    # a writer's INSERT goes through
    writer = make_caller(admin_http, [("SELECT", "table", "sales.orders"), ("INSERT", "table", "sales.orders")])
    con_w = duckdb_connection()
    duckdb_s3_secret(con_w, backend.s3)
    duckdb_attach_catalog(
        con_w, live_server.url, backend.settings.warehouse_name, credential=f"{writer.client_id}:{writer.client_secret}"
    )
    con_w.execute("INSERT INTO lake.sales.orders VALUES (999, 'duck')")
    assert _state(orders)[1] == 21

    # revoking the reader's grant: its next query is refused
    revoke(admin_http, f"role-{reader.name}", "SELECT", "table", "sales.orders")
    fresh = duckdb_connection()
    duckdb_s3_secret(fresh, backend.s3)
    duckdb_attach_catalog(
        fresh, live_server.url, backend.settings.warehouse_name, credential=f"{reader.client_id}:{reader.client_secret}"
    )
    with pytest.raises(Exception, match="403|Forbidden|may not|does not exist"):
        fresh.execute("SELECT count(*) FROM lake.sales.orders").fetchone()
