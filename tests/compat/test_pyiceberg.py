"""PyIceberg end to end against the live catalog: every operation a client does, with real data.

Runs on ``sqlite-file`` (embedded) and ``postgres-s3`` (production shape, real S3).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchTableError,
    RESTError,
    TableAlreadyExistsError,
)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.sorting import NullOrder, SortDirection, SortField, SortOrder
from pyiceberg.transforms import BucketTransform, IdentityTransform, Transform, TruncateTransform
from pyiceberg.types import LongType, NestedField, StringType

from tests.conftest import Backend

pytestmark = [
    pytest.mark.engines,
    pytest.mark.parametrize("backend", ["sqlite-file", "postgres-s3"], indirect=True),
]

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "name", StringType(), required=False),
    NestedField(3, "category", StringType(), required=False),
)


def rows(ids: range | list[int], category: str = "a") -> pa.Table:
    ids = list(ids)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "name": pa.array([f"n{i}" for i in ids], pa.string()),
            "category": pa.array([category] * len(ids), pa.string()),
        }
    )


def ids_of(table: Table | pa.Table, **scan: object) -> list[int]:
    data = table.scan(**scan).to_arrow() if isinstance(table, Table) else table  # type: ignore[arg-type]
    return sorted(data.column("id").to_pylist())


def list_files(backend: Backend, location: str) -> list[str]:
    """Every object under a table location, straight from the storage (not through the catalog)."""
    parts = urlsplit(location)
    if parts.scheme == "s3":
        assert backend.s3 is not None
        client = backend.s3.client()
        prefix = parts.path.lstrip("/").rstrip("/") + "/"
        found: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=parts.netloc, Prefix=prefix):
            found.extend(f"s3://{parts.netloc}/{obj['Key']}" for obj in page.get("Contents", []))
        # SeaweedFS lists its (empty) directory entries as keys ending in "/": they are not files.
        return [f for f in found if not f.endswith("/")]
    root = parts.path
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]


@pytest.fixture
def catalog(catalog_properties: dict[str, str]) -> Iterator[Catalog]:
    yield load_catalog("test", **catalog_properties)


# --- namespaces ---------------------------------------------------------------------------------


def test_namespaces_nested_listing_and_properties(catalog: Catalog) -> None:
    catalog.create_namespace("analytics", {"owner": "alice", "comment": "top"})
    catalog.create_namespace(("analytics", "daily"))
    catalog.create_namespace(("analytics", "daily", "eu"), {"region": "eu"})
    catalog.create_namespace("other")

    assert sorted(catalog.list_namespaces()) == [("analytics",), ("other",)]
    assert catalog.list_namespaces("analytics") == [("analytics", "daily")]
    assert catalog.list_namespaces(("analytics", "daily")) == [("analytics", "daily", "eu")]
    assert catalog.list_namespaces("other") == []

    assert catalog.load_namespace_properties("analytics") == {"owner": "alice", "comment": "top"}
    assert catalog.load_namespace_properties(("analytics", "daily", "eu")) == {"region": "eu"}
    summary = catalog.update_namespace_properties(
        "analytics", removals={"comment", "missing"}, updates={"owner": "bob", "tier": "gold"}
    )
    assert sorted(summary.removed) == ["comment"]
    assert sorted(summary.updated) == ["owner", "tier"]
    assert summary.missing == ["missing"]
    assert catalog.load_namespace_properties("analytics") == {"owner": "bob", "tier": "gold"}

    with pytest.raises(NamespaceAlreadyExistsError):
        catalog.create_namespace(("analytics", "daily"))
    with pytest.raises(NoSuchNamespaceError):
        catalog.load_namespace_properties(("analytics", "weekly"))
    # The catalog keeps namespaces a tree: a child needs its parent (404 NoSuchNamespaceException).
    with pytest.raises(RESTError, match="NoSuchNamespaceException"):
        catalog.create_namespace(("nowhere", "child"))
    assert ("nowhere",) not in catalog.list_namespaces()

    catalog.create_table(("analytics", "daily", "eu", "t"), SCHEMA)
    with pytest.raises(NamespaceNotEmptyError):
        catalog.drop_namespace(("analytics", "daily", "eu"))
    catalog.drop_table(("analytics", "daily", "eu", "t"))
    catalog.drop_namespace(("analytics", "daily", "eu"))
    assert catalog.list_namespaces(("analytics", "daily")) == []
    assert catalog.list_tables(("analytics", "daily")) == []


# --- rows: append, overwrite, delete, upsert ------------------------------------------------------


def test_append_overwrite_delete(catalog: Catalog) -> None:
    catalog.create_namespace("db")
    table = catalog.create_table("db.events", SCHEMA)
    assert table.current_snapshot() is None
    assert ids_of(table) == []

    with pytest.raises(TableAlreadyExistsError):
        catalog.create_table("db.events", SCHEMA)
    assert catalog.list_tables("db") == [("db", "events")]
    assert catalog.table_exists("db.events")
    assert not catalog.table_exists("db.nothing")

    table.append(rows(range(0, 10)))
    table.append(rows(range(10, 20), "b"))
    assert ids_of(catalog.load_table("db.events")) == list(range(20))
    assert len(table.snapshots()) == 2

    table.delete("id < 5")
    assert ids_of(catalog.load_table("db.events")) == list(range(5, 20))

    table.overwrite(rows([100, 101], "c"), overwrite_filter="category = 'b'")
    fresh = catalog.load_table("db.events")
    assert ids_of(fresh) == [*range(5, 10), 100, 101]
    assert ids_of(fresh, row_filter="category = 'c'") == [100, 101]

    table.overwrite(rows([7]))
    fresh = catalog.load_table("db.events")
    assert ids_of(fresh) == [7]
    operations = [s.summary.operation.value for s in fresh.snapshots() if s.summary is not None]
    assert operations[:2] == ["append", "append"]
    assert "delete" in operations and "overwrite" in operations
    assert fresh.current_snapshot() is not None
    assert fresh.current_snapshot().summary["total-records"] == "1"  # type: ignore[union-attr,index]


def test_upsert(catalog: Catalog) -> None:
    catalog.create_namespace("db")
    table = catalog.create_table("db.people", SCHEMA)
    table.append(rows(range(0, 5)))
    changed = pa.table(
        {
            "id": pa.array([3, 4, 5, 6], pa.int64()),
            "name": pa.array(["three", "four", "five", "six"], pa.string()),
            "category": pa.array(["z"] * 4, pa.string()),
        }
    )
    result = table.upsert(changed, join_cols=["id"])
    assert (result.rows_updated, result.rows_inserted) == (2, 2)
    data = catalog.load_table("db.people").scan().to_arrow().sort_by("id").to_pylist()
    assert [(r["id"], r["name"]) for r in data] == [
        (0, "n0"),
        (1, "n1"),
        (2, "n2"),
        (3, "three"),
        (4, "four"),
        (5, "five"),
        (6, "six"),
    ]


# --- schema, partition and sort-order evolution ---------------------------------------------------


def test_schema_evolution_reads_old_and_new_data(catalog: Catalog) -> None:
    catalog.create_namespace("db")
    table = catalog.create_table("db.users", SCHEMA)
    table.append(rows([1, 2]))

    with table.update_schema() as update:
        update.add_column("email", StringType(), doc="contact")
    table.append(
        pa.table(
            {
                "id": pa.array([3], pa.int64()),
                "name": pa.array(["n3"], pa.string()),
                "category": pa.array(["a"], pa.string()),
                "email": pa.array(["c@x"], pa.string()),
            }
        )
    )
    fresh = catalog.load_table("db.users")
    assert fresh.schema().schema_id == 1
    assert [f.name for f in fresh.schema().fields] == ["id", "name", "category", "email"]
    data = fresh.scan().to_arrow().sort_by("id").to_pylist()
    assert [(r["id"], r["email"]) for r in data] == [(1, None), (2, None), (3, "c@x")]

    with fresh.update_schema() as update:
        update.rename_column("name", "full_name")
        update.delete_column("category")
    fresh = catalog.load_table("db.users")
    assert [f.name for f in fresh.schema().fields] == ["id", "full_name", "email"]
    assert fresh.schema().find_field("full_name").field_id == 2
    data = fresh.scan().to_arrow().sort_by("id").to_pylist()
    assert data == [
        {"id": 1, "full_name": "n1", "email": None},
        {"id": 2, "full_name": "n2", "email": None},
        {"id": 3, "full_name": "n3", "email": "c@x"},
    ]
    assert len(fresh.schemas()) == 3
    # The old schema is still known: a scan of the first snapshot reads with it.
    first = fresh.snapshots()[0]
    assert first.schema_id == 0
    old = fresh.scan(snapshot_id=first.snapshot_id).to_arrow()
    assert old.column_names == ["id", "name", "category"]
    assert sorted(old.column("id").to_pylist()) == [1, 2]


def _evolve_and_check(catalog: Catalog, extra: list[tuple[str, Transform[Any, Any], str, str]]) -> None:
    catalog.create_namespace("db")
    table = catalog.create_table("db.sales", SCHEMA)
    table.append(rows(range(0, 4), "a"))
    assert table.spec().is_unpartitioned()

    with table.update_spec() as update:
        update.add_identity("category")
        for source, transform, name, _ in extra:
            update.add_field(source, transform, name)
    fresh = catalog.load_table("db.sales")
    assert fresh.spec().spec_id == 1
    assert [(f.name, str(f.transform)) for f in fresh.spec().fields] == [
        ("category", "identity"),
        *((name, expected) for _, _, name, expected in extra),
    ]
    fresh.append(rows(range(10, 14), "a"))
    fresh.append(rows(range(20, 24), "b"))

    fresh = catalog.load_table("db.sales")
    assert ids_of(fresh) == [*range(0, 4), *range(10, 14), *range(20, 24)]
    assert ids_of(fresh, row_filter="category = 'b'") == list(range(20, 24))
    tasks = list(fresh.scan().plan_files())
    assert {t.file.spec_id for t in tasks} == {0, 1}
    partitioned = [t.file for t in tasks if t.file.spec_id == 1]
    assert {f.partition[0] for f in partitioned} == {"a", "b"}
    # Pruning on the identity field keeps only the new spec's category-b files (the old
    # unpartitioned file goes by its column statistics: it holds only "a").
    pruned = list(fresh.scan(row_filter="category = 'b'").plan_files())
    assert pruned and {(t.file.spec_id, t.file.partition[0]) for t in pruned} == {(1, "b")}
    assert len(pruned) < len(tasks)


def test_partition_evolution_identity(catalog: Catalog) -> None:
    _evolve_and_check(catalog, [])


def test_partition_evolution_bucket_and_truncate(catalog: Catalog) -> None:
    # PyIceberg computes bucket/truncate partition values with the optional pyiceberg-core package.
    pytest.importorskip("pyiceberg_core", reason="writing bucket/truncate partitions needs pyiceberg-core")
    _evolve_and_check(
        catalog,
        [
            ("id", BucketTransform(4), "id_bucket", "bucket[4]"),
            ("name", TruncateTransform(1), "name_trunc", "truncate[1]"),
        ],
    )


def test_create_partitioned_sorted_table_and_replace_sort_order(catalog: Catalog) -> None:
    catalog.create_namespace("db")
    spec = PartitionSpec(PartitionField(source_id=3, field_id=1000, transform=IdentityTransform(), name="category"))
    order = SortOrder(SortField(source_id=1, transform=IdentityTransform(), direction=SortDirection.DESC))
    table = catalog.create_table("db.sorted", SCHEMA, partition_spec=spec, sort_order=order)
    assert [f.name for f in table.spec().fields] == ["category"]
    assert table.sort_order().order_id == 1
    assert table.sort_order().fields[0].direction == SortDirection.DESC

    with table.update_sort_order() as update:
        update.asc("category", IdentityTransform(), NullOrder.NULLS_FIRST)
        update.desc("name", IdentityTransform())
    fresh = catalog.load_table("db.sorted")
    current = fresh.sort_order()
    assert current.order_id == 2
    assert [(fresh.schema().find_column_name(f.source_id), f.direction, f.null_order) for f in current.fields] == [
        ("category", SortDirection.ASC, NullOrder.NULLS_FIRST),
        ("name", SortDirection.DESC, NullOrder.NULLS_LAST),
    ]
    assert sorted(fresh.sort_orders()) == [1, 2]
    fresh.append(rows(range(3), "x"))
    assert ids_of(catalog.load_table("db.sorted")) == [0, 1, 2]


# --- branches, tags, time travel ------------------------------------------------------------------


def test_branches_tags_and_time_travel(catalog: Catalog) -> None:
    catalog.create_namespace("db")
    table = catalog.create_table("db.versions", SCHEMA)
    table.append(rows(range(0, 3)))
    first = table.current_snapshot()
    assert first is not None
    table.append(rows(range(3, 6)))
    second = table.current_snapshot()
    assert second is not None and second.snapshot_id != first.snapshot_id

    table.manage_snapshots().create_tag(first.snapshot_id, "v1").create_branch(first.snapshot_id, "dev").commit()
    fresh = catalog.load_table("db.versions")
    assert fresh.refs()["v1"].snapshot_ref_type == "tag"
    assert fresh.refs()["dev"].snapshot_ref_type == "branch"
    assert fresh.snapshot_by_name("v1").snapshot_id == first.snapshot_id  # type: ignore[union-attr]

    # Write to the branch only: main is untouched.
    fresh.append(rows([100]), branch="dev")
    fresh = catalog.load_table("db.versions")
    dev_head = fresh.snapshot_by_name("dev")
    assert dev_head is not None and dev_head.parent_snapshot_id == first.snapshot_id
    assert fresh.current_snapshot().snapshot_id == second.snapshot_id  # type: ignore[union-attr]

    assert ids_of(fresh) == list(range(6))
    assert ids_of(fresh, snapshot_id=first.snapshot_id) == [0, 1, 2]
    assert ids_of(fresh.scan().use_ref("v1").to_arrow()) == [0, 1, 2]
    assert ids_of(fresh.scan().use_ref("dev").to_arrow()) == [0, 1, 2, 100]

    # Roll main back to the tagged snapshot, then remove the refs.
    fresh.manage_snapshots().set_current_snapshot(ref_name="v1").commit()
    assert ids_of(catalog.load_table("db.versions")) == [0, 1, 2]
    fresh = catalog.load_table("db.versions")
    fresh.manage_snapshots().remove_tag("v1").remove_branch("dev").commit()
    assert set(catalog.load_table("db.versions").refs()) == {"main"}


def test_expire_snapshots(catalog: Catalog) -> None:
    """PyIceberg's snapshot expiry (a remove-snapshots commit): the history shrinks, the data stays."""
    catalog.create_namespace("db")
    table = catalog.create_table("db.expiring", SCHEMA)
    for start in range(0, 12, 3):
        table.append(rows(range(start, start + 3)))
    history = [s.snapshot_id for s in table.snapshots()]
    current = table.current_snapshot()
    assert len(history) == 4 and current is not None

    table.maintenance.expire_snapshots().older_than(datetime.fromtimestamp(current.timestamp_ms / 1000, UTC)).commit()
    fresh = catalog.load_table("db.expiring")
    assert [s.snapshot_id for s in fresh.snapshots()] == [current.snapshot_id]
    assert fresh.current_snapshot().snapshot_id == current.snapshot_id  # type: ignore[union-attr]
    assert ids_of(fresh) == list(range(12))
    assert {entry.snapshot_id for entry in fresh.metadata.snapshot_log} <= {current.snapshot_id}


# --- rename, drop, purge, register ----------------------------------------------------------------


def test_rename_across_namespaces(catalog: Catalog) -> None:
    catalog.create_namespace("src")
    catalog.create_namespace("dst")
    catalog.create_namespace(("dst", "inner"))
    table = catalog.create_table("src.t", SCHEMA)
    table.append(rows(range(4)))
    renamed = catalog.rename_table("src.t", ("dst", "inner", "t2"))
    assert renamed.name() == ("dst", "inner", "t2")
    assert ids_of(catalog.load_table(("dst", "inner", "t2"))) == [0, 1, 2, 3]
    with pytest.raises(NoSuchTableError):
        catalog.load_table("src.t")
    assert catalog.list_tables("src") == []
    assert catalog.list_tables(("dst", "inner")) == [("dst", "inner", "t2")]
    with pytest.raises(NoSuchTableError):
        catalog.rename_table("src.t", "src.t3")
    catalog.create_table("src.t", SCHEMA)
    with pytest.raises(TableAlreadyExistsError):
        catalog.rename_table("src.t", ("dst", "inner", "t2"))


def test_drop_then_register_under_new_name(catalog: Catalog, backend: Backend) -> None:
    catalog.create_namespace("db")
    table = catalog.create_table("db.old", SCHEMA)
    table.append(rows(range(5)))
    table.append(rows(range(5, 8)))
    metadata_location = catalog.load_table("db.old").metadata_location
    files_before = list_files(backend, table.location())

    catalog.drop_table("db.old")
    with pytest.raises(NoSuchTableError):
        catalog.load_table("db.old")
    assert sorted(list_files(backend, table.location())) == sorted(files_before)  # drop keeps the files

    registered = catalog.register_table("db.revived", metadata_location)
    assert registered.metadata_location == metadata_location
    assert ids_of(registered) == list(range(8))
    assert len(registered.snapshots()) == 2
    # The registered table is a normal table: it takes commits.
    registered.append(rows([42]))
    assert ids_of(catalog.load_table("db.revived")) == [*range(8), 42]
    with pytest.raises(TableAlreadyExistsError):
        catalog.register_table("db.revived", metadata_location)


def test_purge_removes_files(catalog: Catalog, backend: Backend) -> None:
    catalog.create_namespace("db")
    table = catalog.create_table("db.trash", SCHEMA)
    table.append(rows(range(5)))
    table.append(rows(range(5, 10)))
    table.delete("id = 3")
    location = table.location()
    files = list_files(backend, location)
    assert any(f.endswith(".parquet") for f in files)
    assert any(f.endswith(".avro") for f in files)
    assert sum(f.endswith(".metadata.json") for f in files) >= 4

    catalog.purge_table("db.trash")
    with pytest.raises(NoSuchTableError):
        catalog.load_table("db.trash")
    assert list_files(backend, location) == []


# --- transactions ---------------------------------------------------------------------------------


def test_create_table_transaction_with_append(catalog: Catalog) -> None:
    catalog.create_namespace("db")
    with catalog.create_table_transaction("db.staged", SCHEMA, properties={"k": "v"}) as txn:
        txn.append(rows(range(6)))
        txn.set_properties(stage="done")
    table = catalog.load_table("db.staged")
    assert ids_of(table) == list(range(6))
    assert table.properties["k"] == "v" and table.properties["stage"] == "done"
    assert len(table.snapshots()) == 1
    assert table.metadata_location.endswith(".metadata.json")

    with pytest.raises(TableAlreadyExistsError):
        catalog.create_table_transaction("db.staged", SCHEMA)
    assert ids_of(catalog.load_table("db.staged")) == list(range(6))


def test_concurrent_create_transactions_one_wins(catalog: Catalog) -> None:
    catalog.create_namespace("db")
    first = catalog.create_table_transaction("db.race", SCHEMA)
    second = catalog.create_table_transaction("db.race", SCHEMA)
    first.append(rows([1, 2]))
    second.append(rows([3]))
    first.commit_transaction()
    with pytest.raises(CommitFailedException):
        second.commit_transaction()
    assert ids_of(catalog.load_table("db.race")) == [1, 2]


def test_table_transaction_is_atomic(catalog: Catalog) -> None:
    catalog.create_namespace("db")
    table = catalog.create_table("db.atomic", SCHEMA)
    with table.transaction() as txn:
        txn.append(rows(range(3)))
        with txn.update_schema() as update:
            update.add_column("extra", LongType())
        txn.set_properties(owner="team")
    fresh = catalog.load_table("db.atomic")
    assert ids_of(fresh) == [0, 1, 2]
    assert "extra" in [f.name for f in fresh.schema().fields]
    assert fresh.properties["owner"] == "team"
