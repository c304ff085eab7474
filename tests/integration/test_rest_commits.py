"""Table commits: requirements, metadata files and log, validation of the request."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Backend
from tests.integration.helpers import (
    SCHEMA,
    SCHEMA_V2,
    assert_error,
    commit,
    create_namespace,
    create_table,
    list_files,
    load_table,
    set_props,
    snapshot_updates,
    table_url,
)

METADATA_FILE = re.compile(r"/(\d{5})-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.metadata\.json$")


def version_of(metadata_location: str) -> int:
    match = METADATA_FILE.search(metadata_location)
    assert match, metadata_location
    return int(match.group(1))


@pytest.fixture
def table(client: TestClient) -> dict[str, Any]:
    """Table db.t with one snapshot on main; returns its LoadTableResult."""
    create_namespace(client, "db")
    created = create_table(client, "db", "t")
    response = commit(client, "db", "t", snapshot_updates(created["metadata"]["location"], 11, None, 1))
    assert response.status_code == 200, response.text
    return load_table(client, "db", "t")


def test_commit_applies_updates_and_writes_a_new_metadata_file(
    client: TestClient, backend: Backend, table: dict[str, Any]
) -> None:
    base = table["metadata"]
    response = commit(
        client,
        "db",
        "t",
        [set_props(owner="ana", tier="gold"), {"action": "remove-properties", "removals": ["tier"]}],
        requirements=[
            {"type": "assert-table-uuid", "uuid": base["table-uuid"]},
            {"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": 11},
            {"type": "assert-current-schema-id", "current-schema-id": 0},
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {"metadata-location", "metadata"}
    assert body["metadata"]["properties"]["owner"] == "ana"
    assert "tier" not in body["metadata"]["properties"]
    assert body["metadata-location"] != table["metadata-location"]
    assert version_of(body["metadata-location"]) == version_of(table["metadata-location"]) + 1
    loaded = load_table(client, "db", "t")
    assert loaded["metadata-location"] == body["metadata-location"]
    assert loaded["metadata"] == body["metadata"]
    files = list_files(backend, base["location"])
    assert body["metadata-location"] in files and table["metadata-location"] in files


def test_schema_evolution_with_requirements(client: TestClient, table: dict[str, Any]) -> None:
    response = commit(
        client,
        "db",
        "t",
        [{"action": "add-schema", "schema": SCHEMA_V2}, {"action": "set-current-schema", "schema-id": -1}],
        requirements=[
            {"type": "assert-current-schema-id", "current-schema-id": 0},
            {"type": "assert-last-assigned-field-id", "last-assigned-field-id": 2},
        ],
    )
    assert response.status_code == 200, response.text
    metadata = load_table(client, "db", "t")["metadata"]
    assert metadata["current-schema-id"] == 1
    assert metadata["last-column-id"] == 3
    assert [s["schema-id"] for s in metadata["schemas"]] == [0, 1]

    # the same change again, based on the old schema, is refused
    stale = commit(
        client,
        "db",
        "t",
        [{"action": "add-schema", "schema": SCHEMA_V2}, {"action": "set-current-schema", "schema-id": -1}],
        requirements=[{"type": "assert-current-schema-id", "current-schema-id": 0}],
    )
    assert_error(stale, 409, "CommitFailedException")


FAILING_REQUIREMENTS = [
    {"type": "assert-table-uuid", "uuid": "00000000-0000-0000-0000-000000000000"},
    {"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": 999},
    {"type": "assert-ref-snapshot-id", "ref": "main"},  # "main must not exist"
    {"type": "assert-ref-snapshot-id", "ref": "audit", "snapshot-id": 11},  # ref missing
    {"type": "assert-current-schema-id", "current-schema-id": 5},
    {"type": "assert-last-assigned-field-id", "last-assigned-field-id": 7},
    {"type": "assert-last-assigned-partition-id", "last-assigned-partition-id": 1500},
    {"type": "assert-default-spec-id", "default-spec-id": 3},
    {"type": "assert-default-sort-order-id", "default-sort-order-id": 4},
    {"type": "assert-create"},
]


def test_failing_requirements_are_409_and_change_nothing(
    client: TestClient, backend: Backend, table: dict[str, Any]
) -> None:
    files_before = list_files(backend, table["metadata"]["location"])
    for requirement in FAILING_REQUIREMENTS:
        response = commit(client, "db", "t", [set_props(should="not-happen")], requirements=[requirement])
        assert_error(response, 409, "CommitFailedException")
        loaded = load_table(client, "db", "t")
        assert loaded["metadata-location"] == table["metadata-location"], requirement
        assert loaded["metadata"] == table["metadata"], requirement
    assert list_files(backend, table["metadata"]["location"]) == files_before


def test_one_failing_requirement_among_passing_ones_fails_the_commit(client: TestClient, table: dict[str, Any]) -> None:
    response = commit(
        client,
        "db",
        "t",
        [set_props(x="1")],
        requirements=[
            {"type": "assert-table-uuid", "uuid": table["metadata"]["table-uuid"]},
            {"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": 11},
            {"type": "assert-default-spec-id", "default-spec-id": 9},
        ],
    )
    assert_error(response, 409, "CommitFailedException")
    assert load_table(client, "db", "t")["metadata-location"] == table["metadata-location"]


def test_stale_ref_requirement_after_a_concurrent_commit(client: TestClient, table: dict[str, Any]) -> None:
    location = table["metadata"]["location"]
    requirement = [{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": 11}]
    winner = commit(client, "db", "t", snapshot_updates(location, 12, 11, 2), requirements=requirement)
    assert winner.status_code == 200, winner.text
    loser = commit(client, "db", "t", snapshot_updates(location, 13, 11, 2), requirements=requirement)
    assert_error(loser, 409, "CommitFailedException")
    metadata = load_table(client, "db", "t")["metadata"]
    assert metadata["current-snapshot-id"] == 12
    assert {s["snapshot-id"] for s in metadata["snapshots"]} == {11, 12}


def test_metadata_log_file_names_and_timestamps(client: TestClient, backend: Backend) -> None:
    create_namespace(client, "db")
    created = create_table(client, "db", "t")
    states = [(created["metadata-location"], created["metadata"])]
    for i in range(4):
        response = commit(client, "db", "t", [set_props(step=str(i))])
        assert response.status_code == 200, response.text
        states.append((response.json()["metadata-location"], response.json()["metadata"]))

    assert [version_of(location) for location, _ in states] == [0, 1, 2, 3, 4]
    assert len({location for location, _ in states}) == 5
    stamps = [metadata["last-updated-ms"] for _, metadata in states]
    assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False)), stamps

    final = load_table(client, "db", "t")["metadata"]
    assert final["metadata-log"] == [
        {"metadata-file": location, "timestamp-ms": metadata["last-updated-ms"]} for location, metadata in states[:-1]
    ]
    files = list_files(backend, final["location"])
    assert {location for location, _ in states} == files


def test_commit_without_updates_writes_nothing(client: TestClient, backend: Backend, table: dict[str, Any]) -> None:
    files_before = list_files(backend, table["metadata"]["location"])
    response = commit(
        client, "db", "t", [], requirements=[{"type": "assert-table-uuid", "uuid": table["metadata"]["table-uuid"]}]
    )
    assert response.status_code == 200, response.text
    assert response.json()["metadata-location"] == table["metadata-location"]
    assert list_files(backend, table["metadata"]["location"]) == files_before

    # Updates that change nothing write nothing either (a new file would be a copy of the current
    # one missing from its own metadata-log): Java's catalogs skip such commits too.
    no_ops = [
        {"action": "set-properties", "updates": {}},
        {"action": "remove-properties", "removals": []},
        {"action": "set-current-schema", "schema-id": table["metadata"]["current-schema-id"]},
        {"action": "upgrade-format-version", "format-version": table["metadata"]["format-version"]},
        {"action": "set-default-spec", "spec-id": table["metadata"]["default-spec-id"]},
    ]
    response = commit(client, "db", "t", no_ops)
    assert response.status_code == 200, response.text
    assert response.json()["metadata-location"] == table["metadata-location"]
    assert list_files(backend, table["metadata"]["location"]) == files_before


def test_removing_properties_that_are_not_set_is_not_an_error(client: TestClient, table: dict[str, Any]) -> None:
    """Java's catalogs ignore removals of keys that are not set (PyIceberg's own handler would
    raise a KeyError, which used to be a 400 saying only "Invalid table update: 'never-set'")."""
    commit(client, "db", "t", [set_props(a="1", b="2")]).raise_for_status()
    response = commit(client, "db", "t", [{"action": "remove-properties", "removals": ["a", "never-set", "a"]}])
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["properties"] == {"b": "2"}
    # only keys that are not set: nothing changes, and nothing is written
    again = commit(client, "db", "t", [{"action": "remove-properties", "removals": ["never-set"]}])
    assert again.status_code == 200, again.text
    assert again.json()["metadata-location"] == response.json()["metadata-location"]


def test_identifier_in_body_must_match_the_path(client: TestClient, table: dict[str, Any]) -> None:
    matching = commit(client, "db", "t", [set_props(a="1")], identifier={"namespace": ["db"], "name": "t"})
    assert matching.status_code == 200, matching.text
    location = matching.json()["metadata-location"]
    for identifier in ({"namespace": ["db"], "name": "other"}, {"namespace": ["other"], "name": "t"}):
        response = commit(client, "db", "t", [set_props(a="2")], identifier=identifier)
        assert_error(response, 400, "BadRequestException")
    assert load_table(client, "db", "t")["metadata-location"] == location


def test_commit_to_a_missing_table_is_404(client: TestClient) -> None:
    create_namespace(client, "db")
    assert_error(commit(client, "db", "nope", [set_props(a="1")]), 404, "NoSuchTableException")
    assert_error(commit(client, "nons", "nope", [set_props(a="1")]), 404, "NoSuchTableException")
    assert client.head(table_url(client, "db", "nope")).status_code == 404


def test_unknown_or_malformed_updates_are_400(client: TestClient, backend: Backend, table: dict[str, Any]) -> None:
    files_before = list_files(backend, table["metadata"]["location"])
    bad_updates: list[list[dict[str, Any]]] = [
        [{"action": "make-it-fast"}],
        [{"action": "set-properties"}],
        [{"action": "set-properties", "updates": ["not", "a", "map"]}],
        [{"updates": {"a": "1"}}],
        [{"action": "set-current-schema", "schema-id": 42}],
        [{"action": "set-default-spec", "spec-id": 42}],
        [{"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": 404}],
        [{"action": "upgrade-format-version", "format-version": 1}],
    ]
    for updates in bad_updates:
        response = commit(client, "db", "t", updates)
        assert_error(response, 400, "BadRequestException")
    bad_requirement = commit(client, "db", "t", [set_props(a="1")], requirements=[{"type": "assert-nothing"}])
    assert_error(bad_requirement, 400, "BadRequestException")
    assert load_table(client, "db", "t")["metadata-location"] == table["metadata-location"]
    assert list_files(backend, table["metadata"]["location"]) == files_before


def test_set_location(client: TestClient, backend: Backend, table: dict[str, Any]) -> None:
    inside = f"{backend.warehouse}/relocated/t"
    moved = commit(client, "db", "t", [{"action": "set-location", "location": inside}])
    assert moved.status_code == 200, moved.text
    assert load_table(client, "db", "t")["metadata"]["location"] == inside
    after_move = load_table(client, "db", "t")["metadata-location"]
    files_before = list_files(backend, backend.warehouse)

    outside = "file:///tmp/elsewhere" if backend.s3 is not None else "s3://elsewhere/t"
    for location in (outside, backend.warehouse + "-sibling/t", f"{backend.warehouse}/../t"):
        response = commit(client, "db", "t", [{"action": "set-location", "location": location}])
        assert_error(response, 400, "BadRequestException")
    assert load_table(client, "db", "t")["metadata-location"] == after_move
    assert list_files(backend, backend.warehouse) == files_before


def test_metadata_path_property_cannot_move_metadata_out_of_the_warehouse(
    client: TestClient, backend: Backend, table: dict[str, Any]
) -> None:
    outside = "file:///tmp/elsewhere" if backend.s3 is not None else "s3://elsewhere/meta"
    files_before = list_files(backend, backend.warehouse)
    response = commit(client, "db", "t", [set_props(**{"write.metadata.path": outside})])
    assert_error(response, 400, "BadRequestException")
    assert load_table(client, "db", "t")["metadata-location"] == table["metadata-location"]
    assert list_files(backend, backend.warehouse) == files_before

    inside = f"{backend.warehouse}/db/t-metadata"
    moved = commit(client, "db", "t", [set_props(**{"write.metadata.path": inside})])
    assert moved.status_code == 200, moved.text
    assert moved.json()["metadata-location"].startswith(inside + "/")
    assert version_of(moved.json()["metadata-location"]) == version_of(table["metadata-location"]) + 1


def test_requirements_on_a_fresh_table(client: TestClient) -> None:
    create_namespace(client, "db")
    created = create_table(client, "db", "fresh")["metadata"]
    # no snapshot yet: "main must not exist" holds
    response = commit(
        client,
        "db",
        "fresh",
        snapshot_updates(created["location"], 1, None, 1),
        requirements=[
            {"type": "assert-ref-snapshot-id", "ref": "main"},
            {"type": "assert-last-assigned-partition-id", "last-assigned-partition-id": 999},
            {"type": "assert-default-spec-id", "default-spec-id": 0},
            {"type": "assert-default-sort-order-id", "default-sort-order-id": 0},
            {"type": "assert-last-assigned-field-id", "last-assigned-field-id": len(SCHEMA["fields"])},
        ],
    )
    assert response.status_code == 200, response.text
    assert load_table(client, "db", "fresh")["metadata"]["current-snapshot-id"] == 1
