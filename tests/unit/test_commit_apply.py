"""The commit path's copy-free ``apply_updates`` must give what PyIceberg's ``update_table_metadata`` gives."""

from __future__ import annotations

from typing import Any

import pytest
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.metadata import TableMetadata, new_table_metadata
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, Summary
from pyiceberg.table.sorting import SortField, SortOrder
from pyiceberg.table.update import (
    AddPartitionSpecUpdate,
    AddSchemaUpdate,
    AddSnapshotUpdate,
    AddSortOrderUpdate,
    AssignUUIDUpdate,
    RemovePropertiesUpdate,
    RemoveSnapshotRefUpdate,
    RemoveSnapshotsUpdate,
    SetCurrentSchemaUpdate,
    SetDefaultSortOrderUpdate,
    SetDefaultSpecUpdate,
    SetLocationUpdate,
    SetPropertiesUpdate,
    SetSnapshotRefUpdate,
    TableUpdate,
    UpgradeFormatVersionUpdate,
    update_table_metadata,
)
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import LongType, NestedField, StringType

from catalog.service.commit import apply_updates

LOCATION = "file:///warehouse/db/t"
BASE_FILE = f"{LOCATION}/metadata/00003-abc.metadata.json"
SCHEMA = Schema(NestedField(1, "id", LongType(), required=False), NestedField(2, "name", StringType(), required=False))
WIDER = Schema(*SCHEMA.fields, NestedField(3, "extra", StringType(), required=False), schema_id=1)


def _snapshot(snapshot_id: int, parent: int | None, sequence: int) -> Snapshot:
    return Snapshot(
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent,
        sequence_number=sequence,
        timestamp_ms=1_700_000_000_000 + sequence,
        manifest_list=f"{LOCATION}/metadata/snap-{snapshot_id}.avro",
        summary=Summary(Operation.APPEND),
        schema_id=0,
    )


def _base(format_version: int = 2) -> TableMetadata:
    properties = {"owner": "a", "keep": "b", "format-version": str(format_version)}
    metadata = new_table_metadata(SCHEMA, PartitionSpec(), SortOrder(), LOCATION, properties)
    updates: tuple[TableUpdate, ...] = (
        AddSnapshotUpdate(snapshot=_snapshot(1, None, 1)),
        SetSnapshotRefUpdate(ref_name="main", type=SnapshotRefType.BRANCH, snapshot_id=1),
        AddSnapshotUpdate(snapshot=_snapshot(2, 1, 2)),
        SetSnapshotRefUpdate(ref_name="main", type=SnapshotRefType.BRANCH, snapshot_id=2),
        SetSnapshotRefUpdate(ref_name="audit", type=SnapshotRefType.TAG, snapshot_id=1),
    )
    return update_table_metadata(metadata, updates, metadata_location=f"{LOCATION}/metadata/00002-x.metadata.json")


CASES: dict[str, tuple[TableUpdate, ...]] = {
    "set-properties": (SetPropertiesUpdate(updates={"owner": "z", "new": "1"}),),
    "remove-properties": (RemovePropertiesUpdate(removals=["keep"]),),
    "schema evolution": (AddSchemaUpdate(schema=WIDER), SetCurrentSchemaUpdate(schema_id=-1)),
    "partition evolution": (
        AddPartitionSpecUpdate(
            spec=PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "name"), spec_id=1)  # type: ignore[call-arg]
        ),
        SetDefaultSpecUpdate(spec_id=-1),
    ),
    "sort order": (
        AddSortOrderUpdate(sort_order=SortOrder(SortField(source_id=1, transform=IdentityTransform()), order_id=1)),
        SetDefaultSortOrderUpdate(sort_order_id=-1),
    ),
    "append": (
        AddSnapshotUpdate(snapshot=_snapshot(3, 2, 3)),
        SetSnapshotRefUpdate(ref_name="main", type=SnapshotRefType.BRANCH, snapshot_id=3),
    ),
    "branch": (SetSnapshotRefUpdate(ref_name="dev", type=SnapshotRefType.BRANCH, snapshot_id=1),),
    "remove ref": (RemoveSnapshotRefUpdate(ref_name="audit"),),
    "expire snapshots": (RemoveSnapshotRefUpdate(ref_name="audit"), RemoveSnapshotsUpdate(snapshot_ids=[1])),
    "set location": (SetLocationUpdate(location=f"{LOCATION}-moved"),),
    "assign uuid": (AssignUUIDUpdate(uuid="9c12d441-03fe-4693-9a96-a0705ddf69c1"),),
    "no change": (SetPropertiesUpdate(updates={}),),
}


def _comparable(metadata: TableMetadata) -> dict[str, Any]:
    dumped = metadata.model_dump()
    dumped.pop("last-updated-ms")  # both stamp "now" when no update sets it; checked separately
    return dumped


@pytest.mark.parametrize("name", sorted(CASES))
def test_apply_updates_matches_pyiceberg(name: str) -> None:
    base = _base()
    before = base.model_dump()
    updates = CASES[name]

    ours = apply_updates(base, updates, BASE_FILE)
    theirs = update_table_metadata(base, updates, metadata_location=BASE_FILE)

    assert _comparable(ours) == _comparable(theirs)
    assert base.model_dump() == before, "the base metadata (shared with the cache) must not change"
    if name != "no change":
        assert ours.metadata_log[-1].metadata_file == BASE_FILE
        assert ours.last_updated_ms >= base.last_updated_ms


def test_format_upgrade_matches_pyiceberg() -> None:
    base = _base(format_version=1)
    updates = (UpgradeFormatVersionUpdate(format_version=2), SetPropertiesUpdate(updates={"a": "b"}))
    ours = apply_updates(base, updates, BASE_FILE)
    assert ours.format_version == 2
    assert _comparable(ours) == _comparable(update_table_metadata(base, updates, metadata_location=BASE_FILE))


def test_invalid_updates_are_refused_like_pyiceberg() -> None:
    base = _base()
    with pytest.raises(ValueError):
        apply_updates(base, (SetSnapshotRefUpdate(ref_name="x", type=SnapshotRefType.TAG, snapshot_id=99),), BASE_FILE)


def test_removing_a_property_that_is_not_set_is_ignored() -> None:
    base = _base()
    assert "never-set" not in base.properties
    assert apply_updates(base, (RemovePropertiesUpdate(removals=["never-set"]),), BASE_FILE) is base
    removed = apply_updates(base, (RemovePropertiesUpdate(removals=["keep", "never-set"]),), BASE_FILE)
    assert "keep" not in removed.properties
    assert removed.metadata_log[-1].metadata_file == BASE_FILE
