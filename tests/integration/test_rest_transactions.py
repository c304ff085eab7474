"""Multi-table transactions: POST /v1/{prefix}/transactions/commit is all or nothing."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Backend
from tests.integration.helpers import (
    SCHEMA,
    assert_error,
    create_namespace,
    create_table,
    list_files,
    load_table,
    prefix,
    set_props,
    snapshot_updates,
    staged_create_updates,
)


def change(
    namespace: list[str], name: str, updates: list[dict[str, Any]], requirements: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "identifier": {"namespace": namespace, "name": name},
        "requirements": requirements or [],
        "updates": updates,
    }


def transact(client: TestClient, *changes: dict[str, Any]) -> Any:
    return client.post(f"{prefix(client)}/transactions/commit", json={"table-changes": list(changes)})


def two_tables(client: TestClient) -> tuple[dict[str, Any], dict[str, Any]]:
    create_namespace(client, "db")
    create_namespace(client, "db", "inner")
    return create_table(client, "db", "a"), create_table(client, ("db", "inner"), "b")


def test_both_tables_change(client: TestClient, backend: Backend) -> None:
    a, b = two_tables(client)
    response = transact(
        client,
        change(
            ["db"],
            "a",
            [set_props(batch="1")],
            [{"type": "assert-table-uuid", "uuid": a["metadata"]["table-uuid"]}],
        ),
        change(
            ["db", "inner"],
            "b",
            snapshot_updates(b["metadata"]["location"], 7, None, 1),
            [{"type": "assert-ref-snapshot-id", "ref": "main"}],
        ),
    )
    assert response.status_code == 204, response.text
    assert response.content == b""
    new_a, new_b = load_table(client, "db", "a"), load_table(client, ("db", "inner"), "b")
    assert new_a["metadata"]["properties"]["batch"] == "1"
    assert new_b["metadata"]["current-snapshot-id"] == 7
    assert new_a["metadata-location"] != a["metadata-location"]
    assert new_b["metadata-location"] != b["metadata-location"]
    assert new_a["metadata"]["metadata-log"][-1]["metadata-file"] == a["metadata-location"]
    assert new_b["metadata"]["metadata-log"][-1]["metadata-file"] == b["metadata-location"]
    assert len(list_files(backend, a["metadata"]["location"])) == 2
    assert len(list_files(backend, b["metadata"]["location"])) == 2


def test_one_failing_requirement_changes_neither_table(client: TestClient, backend: Backend) -> None:
    a, b = two_tables(client)
    files_before = list_files(backend, backend.warehouse)
    for failing_first in (False, True):
        good = change(
            ["db"], "a", [set_props(batch="2")], [{"type": "assert-current-schema-id", "current-schema-id": 0}]
        )
        bad = change(
            ["db", "inner"],
            "b",
            [set_props(batch="2")],
            [{"type": "assert-table-uuid", "uuid": "00000000-0000-0000-0000-000000000000"}],
        )
        response = transact(client, *((bad, good) if failing_first else (good, bad)))
        assert_error(response, 409, "CommitFailedException")
        assert load_table(client, "db", "a")["metadata-location"] == a["metadata-location"]
        assert load_table(client, ("db", "inner"), "b")["metadata-location"] == b["metadata-location"]
        assert "batch" not in load_table(client, "db", "a")["metadata"]["properties"]
    assert list_files(backend, backend.warehouse) == files_before


def test_an_invalid_update_in_one_table_changes_neither(client: TestClient, backend: Backend) -> None:
    a, b = two_tables(client)
    files_before = list_files(backend, backend.warehouse)
    response = transact(
        client,
        change(["db"], "a", [set_props(batch="3")]),
        change(["db", "inner"], "b", [{"action": "set-current-schema", "schema-id": 99}]),
    )
    assert_error(response, 400, "BadRequestException")
    assert load_table(client, "db", "a")["metadata-location"] == a["metadata-location"]
    assert load_table(client, ("db", "inner"), "b")["metadata-location"] == b["metadata-location"]
    outside = "file:///tmp/elsewhere" if backend.s3 is not None else "s3://elsewhere/x"
    response = transact(
        client,
        change(["db"], "a", [set_props(batch="3")]),
        change(["db", "inner"], "b", [{"action": "set-location", "location": outside}]),
    )
    assert_error(response, 400, "BadRequestException")
    assert load_table(client, "db", "a")["metadata-location"] == a["metadata-location"]
    assert list_files(backend, backend.warehouse) == files_before


def test_a_missing_table_fails_the_whole_transaction(client: TestClient) -> None:
    a, _ = two_tables(client)
    response = transact(client, change(["db"], "a", [set_props(x="1")]), change(["db"], "ghost", [set_props(x="1")]))
    assert_error(response, 404, "NoSuchTableException")
    assert load_table(client, "db", "a")["metadata-location"] == a["metadata-location"]


def test_transaction_can_create_a_staged_table_next_to_a_change(client: TestClient) -> None:
    a, _ = two_tables(client)
    staged = client.post(
        f"{prefix(client)}/namespaces/db/tables", json={"name": "new", "schema": SCHEMA, "stage-create": True}
    ).json()
    response = transact(
        client,
        change(["db"], "a", [set_props(linked="new")]),
        change(["db"], "new", staged_create_updates(staged["metadata"]), [{"type": "assert-create"}]),
    )
    assert response.status_code == 204, response.text
    assert load_table(client, "db", "new")["metadata"]["table-uuid"] == staged["metadata"]["table-uuid"]
    assert load_table(client, "db", "a")["metadata"]["properties"]["linked"] == "new"


def test_malformed_transactions_are_400(client: TestClient) -> None:
    a, _ = two_tables(client)
    p = prefix(client)
    for body in (
        {},
        {"table-changes": []},
        {"table-changes": [{"requirements": [], "updates": [set_props(x="1")]}]},  # no identifier
        {"table-changes": [change(["db"], "a", [set_props(x="1")]), change(["db"], "a", [set_props(y="1")])]},
        {"table-changes": [change([], "a", [set_props(x="1")])]},
        {"table-changes": [change(["db"], "", [set_props(x="1")])]},
        {"table-changes": "nope"},
    ):
        response = client.post(f"{p}/transactions/commit", json=body)
        assert_error(response, 400, "BadRequestException")
    assert load_table(client, "db", "a")["metadata-location"] == a["metadata-location"]
