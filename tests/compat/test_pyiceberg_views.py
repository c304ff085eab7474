"""PyIceberg's view API against the live catalog: create, list, load, exists, replace, register, drop."""

from __future__ import annotations

import httpx
import pytest
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchViewError, ViewAlreadyExistsError
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType
from pyiceberg.view.metadata import SQLViewRepresentation, ViewRepresentation, ViewVersion

from tests.conftest import Backend, LiveServer, admin_credentials

pytestmark = pytest.mark.engines

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "name", StringType(), required=False),
)


def _version(sql: str, dialect: str = "spark") -> ViewVersion:
    return ViewVersion(
        version_id=1,
        schema_id=0,
        timestamp_ms=1_700_000_000_000,
        summary={"engine-name": "pyiceberg"},
        representations=[ViewRepresentation(SQLViewRepresentation(type="sql", sql=sql, dialect=dialect))],
        default_namespace=("shop",),
    )


@pytest.fixture
def catalog(catalog_properties: dict[str, str]) -> Catalog:
    catalog = load_catalog("views", **catalog_properties)
    catalog.create_namespace("shop")
    return catalog


def test_pyiceberg_view_lifecycle(catalog: Catalog, live_server: LiveServer, backend: Backend) -> None:
    view = catalog.create_view(
        "shop.recent", SCHEMA, _version("SELECT id, name FROM shop.orders"), properties={"owner": "ana"}
    )
    assert view.name() == ("shop", "recent")
    assert view.current_version().version_id == 1
    assert view.schema() == SCHEMA
    assert view.properties == {"owner": "ana"}
    assert view.location() == f"{backend.warehouse.rstrip('/')}/shop/recent"

    assert catalog.list_views("shop") == [("shop", "recent")]
    assert catalog.view_exists("shop.recent")
    assert not catalog.view_exists("shop.missing")

    loaded = catalog.load_view("shop.recent")
    assert loaded.metadata == view.metadata
    spark = loaded.sql_for("SPARK")
    assert spark is not None and spark.sql == "SELECT id, name FROM shop.orders"
    assert [entry.version_id for entry in loaded.history()] == [1]

    # Replace the way the Java client (Spark) does: add-schema, add-view-version, set-current -1.
    new_schema = {
        "type": "struct",
        "schema-id": 0,
        "fields": [{"id": 1, "name": "id", "type": "long", "required": False}],
    }
    new_version = _version("SELECT id FROM shop.orders").model_dump(mode="json")
    new_version["schema-id"] = -1
    body = {
        "identifier": {"namespace": ["shop"], "name": "recent"},
        "requirements": [{"type": "assert-view-uuid", "uuid": str(view.uuid())}],
        "updates": [
            {"action": "add-schema", "schema": new_schema, "last-column-id": 1},
            {"action": "add-view-version", "view-version": new_version},
            {"action": "set-current-view-version", "view-version-id": -1},
        ],
    }
    prefix = backend.settings.warehouse_name
    url = f"{live_server.url}/v1/{prefix}/namespaces/shop/views/recent"
    anonymous = httpx.post(url, json=body, timeout=30)
    assert anonymous.status_code == 401, anonymous.text
    headers = admin_credentials(live_server.app).headers
    response = httpx.post(url, json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text

    replaced = catalog.load_view("shop.recent")
    assert replaced.current_version().version_id == 2
    assert replaced.schema().schema_id == 1
    assert [f.name for f in replaced.schema().fields] == ["id"]
    assert [entry.version_id for entry in replaced.history()] == [1, 2]
    assert replaced.uuid() == view.uuid()
    representation = replaced.sql_for("spark")
    assert representation is not None and representation.sql == "SELECT id FROM shop.orders"

    # Register the current metadata file under a second name.
    location = response.json()["metadata-location"]
    registered = catalog.register_view("shop.copy", location)
    assert registered.metadata == replaced.metadata
    assert sorted(catalog.list_views("shop")) == [("shop", "copy"), ("shop", "recent")]

    catalog.drop_view("shop.recent")
    assert not catalog.view_exists("shop.recent")
    assert catalog.list_views("shop") == [("shop", "copy")]
    with pytest.raises(NoSuchViewError):
        catalog.load_view("shop.recent")
    with pytest.raises(NoSuchViewError):
        catalog.drop_view("shop.recent")


def test_pyiceberg_views_and_tables_share_names(catalog: Catalog) -> None:
    catalog.create_table("shop.orders", SCHEMA)
    with pytest.raises(ViewAlreadyExistsError):
        catalog.create_view("shop.orders", SCHEMA, _version("SELECT 1"))
    catalog.create_view("shop.v", SCHEMA, _version("SELECT 1"))
    with pytest.raises(ViewAlreadyExistsError):
        catalog.create_view("shop.v", SCHEMA, _version("SELECT 2"))
    with pytest.raises(NoSuchViewError):
        catalog.load_view("shop.orders")
    assert not catalog.view_exists("shop.orders")
    assert catalog.list_views("shop") == [("shop", "v")]
    assert catalog.list_tables("shop") == [("shop", "orders")]
    with pytest.raises(NoSuchNamespaceError):
        catalog.list_views("nowhere")
