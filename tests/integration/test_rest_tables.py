"""Tables over the Iceberg REST API: create/stage, list, load (ETag, snapshots), drop/purge, rename, register."""

from __future__ import annotations

import inspect
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog.app import create_app
from tests.conftest import Backend, authorized_client
from tests.integration.helpers import (
    SCHEMA,
    assert_error,
    commit,
    create_namespace,
    create_table,
    file_exists,
    list_files,
    load_table,
    ns_path,
    prefix,
    set_props,
    snapshot_updates,
    staged_create_updates,
    table_url,
)

METADATA_FILE = re.compile(r"/metadata/(\d{5})-[0-9a-f-]{36}\.metadata\.json$")


def outside_location(backend: Backend) -> str:
    return "file:///tmp/elsewhere/t" if backend.s3 is not None else "s3://elsewhere/t"


def test_create_with_default_location(client: TestClient, backend: Backend) -> None:
    create_namespace(client, "db")
    body = create_table(client, "db", "events", properties={"owner": "ana"})
    metadata = body["metadata"]
    assert metadata["location"] == f"{backend.warehouse}/db/events"
    assert metadata["format-version"] == 2
    assert metadata["properties"]["owner"] == "ana"
    assert [f["name"] for f in metadata["schemas"][0]["fields"]] == ["id", "name"]
    location = body["metadata-location"]
    assert location.startswith(f"{backend.warehouse}/db/events/metadata/")
    match = METADATA_FILE.search(location)
    assert match and match.group(1) == "00000", location
    assert file_exists(backend, location)
    assert isinstance(body["config"], dict)
    if backend.s3 is not None:
        assert body["config"]["s3.endpoint"] == backend.s3.endpoint

    loaded = load_table(client, "db", "events")
    assert loaded["metadata-location"] == location
    assert loaded["metadata"]["table-uuid"] == metadata["table-uuid"]


def test_create_in_nested_namespace_and_under_namespace_location(client: TestClient, backend: Backend) -> None:
    create_namespace(client, "a")
    create_namespace(client, "a", "b")
    nested = create_table(client, ("a", "b"), "t")
    assert nested["metadata"]["location"] == f"{backend.warehouse}/a/b/t"

    custom = f"{backend.warehouse}/custom/root"
    create_namespace(client, "placed", properties={"location": custom})
    placed = create_table(client, "placed", "t")
    assert placed["metadata"]["location"] == f"{custom}/t"
    assert placed["metadata-location"].startswith(f"{custom}/t/metadata/")
    assert file_exists(backend, placed["metadata-location"])


def test_create_with_requested_location(client: TestClient, backend: Backend) -> None:
    p = prefix(client)
    create_namespace(client, "db")
    wanted = f"{backend.warehouse}/somewhere/else/t1"
    body = create_table(client, "db", "t1", location=wanted + "/")
    assert body["metadata"]["location"] == wanted
    assert body["metadata-location"].startswith(wanted + "/metadata/")

    for bad in (outside_location(backend), backend.warehouse + "-sibling/t", f"{backend.warehouse}/../t"):
        response = client.post(f"{p}/namespaces/db/tables", json={"name": "t2", "schema": SCHEMA, "location": bad})
        assert_error(response, 400, "BadRequestException")
    assert client.head(table_url(client, "db", "t2")).status_code == 404


def test_create_with_partition_spec_and_sort_order(client: TestClient) -> None:
    create_namespace(client, "db")
    spec = {"spec-id": 0, "fields": [{"source-id": 1, "field-id": 1000, "name": "id_bucket", "transform": "bucket[4]"}]}
    order = {
        "order-id": 1,
        "fields": [{"source-id": 2, "transform": "identity", "direction": "asc", "null-order": "nulls-first"}],
    }
    metadata = create_table(client, "db", "t", **{"partition-spec": spec, "write-order": order})["metadata"]
    default_spec = next(s for s in metadata["partition-specs"] if s["spec-id"] == metadata["default-spec-id"])
    assert [(f["source-id"], f["transform"]) for f in default_spec["fields"]] == [(1, "bucket[4]")]
    default_order = next(o for o in metadata["sort-orders"] if o["order-id"] == metadata["default-sort-order-id"])
    assert [(f["source-id"], f["direction"]) for f in default_order["fields"]] == [(2, "asc")]


def test_create_refuses_invalid_definitions(client: TestClient) -> None:
    p = prefix(client)
    create_namespace(client, "db")
    invalid = [
        # `year` of a string column, `bucket` of nothing
        {"partition-spec": {"fields": [{"source-id": 2, "field-id": 1000, "name": "p", "transform": "year"}]}},
        {"partition-spec": {"fields": [{"source-id": 9, "field-id": 1000, "name": "p", "transform": "bucket[2]"}]}},
        {"write-order": {"order-id": 1, "fields": [{"source-id": 2, "transform": "day", "direction": "asc"}]}},
        {"properties": {"format-version": "3"}},  # PyIceberg 0.12 cannot write v3 metadata
        {"properties": {"format-version": "9"}},
        {"properties": {"format-version": "two"}},
    ]
    for extra in invalid:
        for stage in (False, True):
            body = {"name": "bad", "schema": SCHEMA, "stage-create": stage, **extra}
            assert_error(client.post(f"{p}/namespaces/db/tables", json=body), 400, "BadRequestException")
    assert client.get(f"{p}/namespaces/db/tables").json()["identifiers"] == []


def test_metadata_path_property_must_stay_inside_the_warehouse(client: TestClient, backend: Backend) -> None:
    p = prefix(client)
    create_namespace(client, "db")
    outside = outside_location(backend)
    before = list_files(backend, backend.warehouse)
    body = {"name": "t", "schema": SCHEMA, "properties": {"write.metadata.path": outside}}
    assert_error(client.post(f"{p}/namespaces/db/tables", json=body), 400, "BadRequestException")
    assert client.head(table_url(client, "db", "t")).status_code == 404
    assert list_files(backend, backend.warehouse) == before

    inside = f"{backend.warehouse}/db/t-meta"
    created = create_table(client, "db", "t", properties={"write.metadata.path": inside})
    assert created["metadata-location"].startswith(inside + "/")
    assert file_exists(backend, created["metadata-location"])


def test_create_in_missing_namespace_is_404(client: TestClient) -> None:
    response = client.post(f"{prefix(client)}/namespaces/nope/tables", json={"name": "t", "schema": SCHEMA})
    assert_error(response, 404, "NoSuchNamespaceException")


def test_create_twice_is_409(client: TestClient, backend: Backend) -> None:
    create_namespace(client, "db")
    first = create_table(client, "db", "t")
    files_before = list_files(backend, first["metadata"]["location"])
    again = client.post(f"{prefix(client)}/namespaces/db/tables", json={"name": "t", "schema": SCHEMA})
    assert_error(again, 409, "AlreadyExistsException")
    assert load_table(client, "db", "t")["metadata-location"] == first["metadata-location"]
    assert list_files(backend, first["metadata"]["location"]) == files_before


def test_stage_create_then_commit(client: TestClient, backend: Backend) -> None:
    p = prefix(client)
    create_namespace(client, "db")
    staged = client.post(
        f"{p}/namespaces/db/tables",
        json={"name": "ctas", "schema": SCHEMA, "stage-create": True, "properties": {"k": "v"}},
    )
    assert staged.status_code == 200, staged.text
    body = staged.json()
    assert body.get("metadata-location") is None
    metadata = body["metadata"]
    assert metadata["location"] == f"{backend.warehouse}/db/ctas"

    # nothing is persisted yet
    assert client.get(f"{p}/namespaces/db/tables").json()["identifiers"] == []
    assert_error(client.get(table_url(client, "db", "ctas")), 404, "NoSuchTableException")
    assert client.head(table_url(client, "db", "ctas")).status_code == 404
    assert list_files(backend, metadata["location"]) == set()

    # a plain commit does not create it
    plain = commit(client, "db", "ctas", staged_create_updates(metadata))
    assert_error(plain, 404, "NoSuchTableException")

    created = commit(client, "db", "ctas", staged_create_updates(metadata), requirements=[{"type": "assert-create"}])
    assert created.status_code == 200, created.text
    result = created.json()
    assert METADATA_FILE.search(result["metadata-location"]).group(1) == "00000"  # type: ignore[union-attr]
    loaded = load_table(client, "db", "ctas")
    assert loaded["metadata-location"] == result["metadata-location"]
    assert loaded["metadata"]["table-uuid"] == metadata["table-uuid"]
    assert loaded["metadata"]["location"] == metadata["location"]
    assert loaded["metadata"]["properties"]["k"] == "v"
    assert loaded["metadata"]["schemas"][0]["fields"] == SCHEMA["fields"]
    assert client.get(f"{p}/namespaces/db/tables").json()["identifiers"] == [{"namespace": ["db"], "name": "ctas"}]

    # creating it a second time is refused and changes nothing
    again = commit(client, "db", "ctas", staged_create_updates(metadata), requirements=[{"type": "assert-create"}])
    assert_error(again, 409, "CommitFailedException")
    assert load_table(client, "db", "ctas")["metadata-location"] == result["metadata-location"]


LEFT_OUT = {
    "everything": None,
    "schema": {"add-schema", "set-current-schema"},
    "spec": {"add-spec", "set-default-spec"},
    "sort order": {"add-sort-order", "set-default-sort-order"},
}


@pytest.mark.parametrize("left_out", list(LEFT_OUT))
def test_create_through_commit_without_a_schema_spec_or_order_is_400(
    client: TestClient, backend: Backend, left_out: str
) -> None:
    """An ``assert-create`` commit whose updates leave no current schema, partition spec or sort
    order is the client's mistake (it was a 500 once): 400, and nothing is created."""
    create_namespace(client, "db")
    staged = client.post(
        f"{prefix(client)}/namespaces/db/tables", json={"name": "half", "schema": SCHEMA, "stage-create": True}
    )
    metadata = staged.json()["metadata"]
    actions = LEFT_OUT[left_out]
    updates = [u for u in staged_create_updates(metadata) if actions is not None and u["action"] not in actions]
    response = commit(client, "db", "half", updates, requirements=[{"type": "assert-create"}])
    assert_error(response, 400, "BadRequestException")
    assert_error(client.get(table_url(client, "db", "half")), 404, "NoSuchTableException")
    assert list_files(backend, metadata["location"]) == set()


def test_stage_create_of_an_existing_table_is_409(client: TestClient) -> None:
    create_namespace(client, "db")
    create_table(client, "db", "t")
    response = client.post(
        f"{prefix(client)}/namespaces/db/tables", json={"name": "t", "schema": SCHEMA, "stage-create": True}
    )
    assert_error(response, 409, "AlreadyExistsException")


def test_list_tables_paginated(client: TestClient) -> None:
    p = prefix(client)
    create_namespace(client, "db")
    create_namespace(client, "other")
    names = ["t0", "t1", "t2", "t3", "t4"]
    for name in reversed(names):
        create_table(client, "db", name)
    create_table(client, "other", "x")

    everything = client.get(f"{p}/namespaces/db/tables").json()
    assert everything == {"identifiers": [{"namespace": ["db"], "name": n} for n in names]}

    seen, token, pages = [], None, 0
    while True:
        params: dict[str, str | int] = {"pageSize": 2}
        if token:
            params["pageToken"] = token
        body = client.get(f"{p}/namespaces/db/tables", params=params).json()
        seen += [ident["name"] for ident in body["identifiers"]]
        pages += 1
        token = body.get("next-page-token")
        if token is None:
            break
        assert pages < 10
    assert seen == names
    assert pages == 3

    assert client.get(f"{p}/namespaces/db/tables", params={"pageSize": 5}).json().get("next-page-token") is None
    assert_error(client.get(f"{p}/namespaces/nope/tables"), 404, "NoSuchNamespaceException")


def test_list_tables_of_nested_namespace(client: TestClient) -> None:
    create_namespace(client, "a")
    create_namespace(client, "a", "b")
    create_table(client, "a", "top")
    create_table(client, ("a", "b"), "inner")
    body = client.get(f"{prefix(client)}/namespaces/{ns_path('a', 'b')}/tables").json()
    assert body == {"identifiers": [{"namespace": ["a", "b"], "name": "inner"}]}


def test_load_snapshots_all_and_refs(client: TestClient) -> None:
    create_namespace(client, "db")
    location = create_table(client, "db", "t")["metadata"]["location"]
    assert commit(client, "db", "t", snapshot_updates(location, 101, None, 1)).status_code == 200
    assert commit(client, "db", "t", snapshot_updates(location, 102, 101, 2)).status_code == 200
    # snapshot 103 sits on a branch; 104 is only reachable from history
    assert commit(client, "db", "t", snapshot_updates(location, 103, 102, 3, ref="audit")).status_code == 200

    url = table_url(client, "db", "t")
    all_ids = {s["snapshot-id"] for s in client.get(url, params={"snapshots": "all"}).json()["metadata"]["snapshots"]}
    assert all_ids == {101, 102, 103}
    default_ids = {s["snapshot-id"] for s in client.get(url).json()["metadata"]["snapshots"]}
    assert default_ids == all_ids
    refs = client.get(url, params={"snapshots": "refs"}).json()["metadata"]
    assert {s["snapshot-id"] for s in refs["snapshots"]} == {102, 103}
    assert refs["refs"]["main"]["snapshot-id"] == 102
    assert refs["current-snapshot-id"] == 102
    assert_error(client.get(url, params={"snapshots": "some"}), 400)


def test_etag_and_if_none_match(client: TestClient) -> None:
    create_namespace(client, "db")
    create_table(client, "db", "t")
    url = table_url(client, "db", "t")
    first = client.get(url)
    etag = first.headers.get("etag")
    assert etag and etag.startswith('"') and etag.endswith('"')
    assert client.get(url).headers["etag"] == etag

    not_modified = client.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    listed = client.get(url, headers={"If-None-Match": f'"other", {etag}'})
    assert listed.status_code == 304
    # RFC 9110: "*" matches any current representation; If-None-Match compares weakly
    assert client.get(url, headers={"If-None-Match": "*"}).status_code == 304
    assert client.get(url, headers={"If-None-Match": f"W/{etag}"}).status_code == 304
    stale = client.get(url, headers={"If-None-Match": '"not-the-etag"'})
    assert stale.status_code == 200 and stale.json()["metadata-location"] == first.json()["metadata-location"]

    refs_etag = client.get(url, params={"snapshots": "refs"}).headers["etag"]
    assert refs_etag != etag

    assert commit(client, "db", "t", [set_props(k="v")]).status_code == 200
    after = client.get(url, headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["etag"] != etag
    assert after.json()["metadata"]["properties"]["k"] == "v"
    assert client.get(url, headers={"If-None-Match": after.headers["etag"]}).status_code == 304


def test_head_table(client: TestClient) -> None:
    create_namespace(client, "db")
    create_table(client, "db", "t")
    found = client.head(table_url(client, "db", "t"))
    assert found.status_code == 204
    assert found.content == b""
    assert client.head(table_url(client, "db", "nope")).status_code == 404
    assert client.head(table_url(client, "nope", "t")).status_code == 404


def test_load_missing_table_or_namespace(client: TestClient) -> None:
    create_namespace(client, "db")
    assert_error(client.get(table_url(client, "db", "nope")), 404, "NoSuchTableException")
    # NoSuchTable also when the namespace is missing: Spark resolves `db.tbl.snapshots` by that
    assert_error(client.get(table_url(client, "nope", "t")), 404, "NoSuchTableException")


def test_drop_keeps_files_without_purge(client: TestClient, backend: Backend) -> None:
    create_namespace(client, "db")
    body = create_table(client, "db", "t")
    response = client.delete(table_url(client, "db", "t"))
    assert response.status_code == 204
    assert response.content == b""
    assert client.head(table_url(client, "db", "t")).status_code == 404
    assert client.get(f"{prefix(client)}/namespaces/db/tables").json()["identifiers"] == []
    assert file_exists(backend, body["metadata-location"])
    assert_error(client.delete(table_url(client, "db", "t")), 404, "NoSuchTableException")
    # the name is free again
    assert create_table(client, "db", "t")["metadata"]["table-uuid"] != body["metadata"]["table-uuid"]


def test_unregister_keeps_every_file_and_returns_the_last_metadata(client: TestClient, backend: Backend) -> None:
    """unregisterTable: the table leaves the catalog, its files stay, and the answer names its last
    metadata, so registerTable (here or in another catalog) brings it back as it was."""
    create_namespace(client, "db")
    created = create_table(client, "db", "t")
    committed = commit(client, "db", "t", [set_props(stage="two")]).json()
    url = table_url(client, "db", "t")

    response = client.post(f"{url}/unregister")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["metadata-location"] == committed["metadata-location"]
    assert body["metadata"]["properties"]["stage"] == "two"
    assert body["metadata"]["table-uuid"] == created["metadata"]["table-uuid"]
    assert client.head(url).status_code == 404
    assert client.get(f"{prefix(client)}/namespaces/db/tables").json()["identifiers"] == []
    assert file_exists(backend, created["metadata-location"])
    assert file_exists(backend, committed["metadata-location"])

    # a commit after the unregister fails, and so does a second unregister
    assert_error(commit(client, "db", "t", [set_props(late="commit")]), 404, "NoSuchTableException")
    assert_error(client.post(f"{url}/unregister"), 404, "NoSuchTableException")
    assert_error(client.post(f"{table_url(client, 'nope', 't')}/unregister"), 404, "NoSuchTableException")

    registered = client.post(
        f"{prefix(client)}/namespaces/db/register", json={"name": "t", "metadata-location": body["metadata-location"]}
    )
    assert registered.status_code == 200, registered.text
    assert load_table(client, "db", "t")["metadata"]["table-uuid"] == created["metadata"]["table-uuid"]


def _after_first_call(target: object, names: tuple[str, ...], action: Callable[[], None]) -> None:
    """Make the first call of any of ``target``'s methods ``names`` return what it read, then run
    ``action`` (another replica's request): a race between a read and what follows it, made certain."""
    fired: list[bool] = []

    def fire() -> None:
        if not fired:
            fired.append(True)
            action()

    for name in names:
        original = getattr(target, name)
        if inspect.iscoroutinefunction(original):

            async def wrapper(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
                result = await __original(*args, **kwargs)
                fire()
                return result
        else:

            def wrapper(*args: Any, __original: Any = original, **kwargs: Any) -> Any:  # type: ignore[misc]
                result = __original(*args, **kwargs)
                fire()
                return result

        setattr(target, name, wrapper)


def _rename_after_first_read(replicas: tuple[TestClient, TestClient], kind: str, source: str, destination: str) -> None:
    """Make the second replica's next row read be followed by the first replica renaming
    ``db.<source>`` to ``db.<destination>`` (``kind``: ``tables`` or ``views``)."""
    one, other = replicas
    body = {"source": {"namespace": ["db"], "name": source}, "destination": {"namespace": ["db"], "name": destination}}
    _after_first_call(
        other.app.state.services.store,  # type: ignore[attr-defined]
        ("get_entity",),
        lambda: one.post(f"{prefix(one)}/{kind}/rename", json=body).raise_for_status(),
    )


@pytest.fixture
def replicas(backend: Backend) -> Iterator[tuple[TestClient, TestClient]]:
    """Two catalog replicas on the same database and warehouse, each with its own caches."""
    with authorized_client(create_app(backend.settings)) as one:
        with TestClient(create_app(backend.settings), headers=dict(one.headers)) as other:
            other.prefix = one.prefix  # type: ignore[attr-defined]
            create_namespace(one, "db")
            yield one, other


def test_a_table_dropped_with_purge_while_another_replica_reads_it_is_404(
    replicas: tuple[TestClient, TestClient],
) -> None:
    """A load or commit that read the table's row just before a drop with purge removed the row and
    its files finds the metadata file gone: that is a 404 (the table was dropped), not a 503
    (found by a chaos run of drops, renames, creates and commits on two server processes)."""
    one, other = replicas

    def purge() -> None:
        response = one.delete(table_url(one, "db", "t"), params={"purgeRequested": "true"})
        assert response.status_code == 204, response.text

    services = other.app.state.services  # type: ignore[attr-defined]
    create_table(one, "db", "t")
    _after_first_call(services.tables, ("get", "get_async"), purge)
    assert_error(other.get(table_url(other, "db", "t")), 404, "NoSuchTableException")

    create_table(one, "db", "t")
    _after_first_call(services.store, ("get_entity",), purge)
    assert_error(commit(other, "db", "t", [set_props(a="b")]), 404, "NoSuchTableException")


def test_a_drop_racing_a_rename_or_a_commit_drops_only_what_it_names(
    replicas: tuple[TestClient, TestClient], backend: Backend
) -> None:
    """The drop reads the row, then another replica renames the table or commits to it, then the
    drop deletes: a renamed table is not dropped under its old name (404, the table and its files
    stay); a table committed to is dropped in its new state, and the purge removes the new metadata
    file too (it used to be left behind)."""
    one, other = replicas
    services = other.app.state.services  # type: ignore[attr-defined]

    renamed = create_table(one, "db", "t")
    _rename_after_first_read(replicas, "tables", "t", "u")
    assert_error(other.delete(table_url(other, "db", "t"), params={"purgeRequested": "true"}), 404)
    assert load_table(one, "db", "u")["metadata-location"] == renamed["metadata-location"]
    assert file_exists(backend, renamed["metadata-location"])

    committed = create_table(one, "db", "c")
    location = committed["metadata"]["location"]
    _after_first_call(
        services.store,
        ("get_entity",),
        lambda: commit(one, "db", "c", [set_props(late="commit")]).raise_for_status(),
    )
    dropped = other.delete(table_url(other, "db", "c"), params={"purgeRequested": "true"})
    assert dropped.status_code == 204, dropped.text
    assert_error(one.get(table_url(one, "db", "c")), 404, "NoSuchTableException")
    assert list_files(backend, location) == set()


def test_an_unregister_racing_a_commit_returns_the_metadata_with_that_commit(
    replicas: tuple[TestClient, TestClient],
) -> None:
    """The unregister reads the row, then another replica commits: the answer still names the
    table's last metadata (the spec: it includes every commit made before the unregister)."""
    one, other = replicas
    create_table(one, "db", "t")
    late: list[str] = []

    def commit_from_the_other_replica() -> None:
        response = commit(one, "db", "t", [set_props(late="commit")])
        assert response.status_code == 200, response.text
        late.append(response.json()["metadata-location"])

    _after_first_call(other.app.state.services.store, ("get_entity",), commit_from_the_other_replica)  # type: ignore[attr-defined]
    response = other.post(f"{table_url(other, 'db', 't')}/unregister")
    assert response.status_code == 200, response.text
    assert late and response.json()["metadata-location"] == late[0]
    assert response.json()["metadata"]["properties"]["late"] == "commit"
    assert_error(one.get(table_url(one, "db", "t")), 404, "NoSuchTableException")


def test_a_commit_racing_a_rename_does_not_change_the_renamed_table(
    replicas: tuple[TestClient, TestClient], backend: Backend
) -> None:
    """The commit reads ``db.t``'s row, then another replica renames it to ``db.u``, then the commit
    swaps the pointer: the swap is refused (the row no longer has the name it was read with), and the
    retry finds no ``db.t``: 404, ``db.u`` unchanged, the commit's metadata file removed. The same for
    a view. (The swap used to match the row by id only, so the commit landed on ``db.u``.)"""
    one, other = replicas

    created = create_table(one, "db", "t")
    _rename_after_first_read(replicas, "tables", "t", "u")
    assert_error(commit(other, "db", "t", [set_props(late="commit")]), 404, "NoSuchTableException")
    renamed = load_table(one, "db", "u")
    assert renamed["metadata-location"] == created["metadata-location"]
    assert "late" not in renamed["metadata"]["properties"]
    assert {f for f in list_files(backend, renamed["metadata"]["location"]) if f.endswith(".metadata.json")} == {
        created["metadata-location"]
    }

    view = {
        "name": "v",
        "schema": {
            "type": "struct",
            "schema-id": 0,
            "fields": [{"id": 1, "name": "id", "type": "long", "required": False}],
        },
        "view-version": {
            "version-id": 1,
            "schema-id": 0,
            "timestamp-ms": 1,
            "summary": {},
            "representations": [{"type": "sql", "sql": "SELECT 1 AS id", "dialect": "spark"}],
            "default-namespace": ["db"],
        },
    }
    response = one.post(f"{prefix(one)}/namespaces/db/views", json=view)
    assert response.status_code == 200, response.text
    view_location = response.json()["metadata-location"]
    _rename_after_first_read(replicas, "views", "v", "w")
    replaced = other.post(
        f"{prefix(other)}/namespaces/db/views/v",
        json={"requirements": [], "updates": [{"action": "set-properties", "updates": {"late": "replace"}}]},
    )
    assert_error(replaced, 404, "NoSuchViewException")
    moved = one.get(f"{prefix(one)}/namespaces/db/views/w").json()
    assert moved["metadata-location"] == view_location
    assert "late" not in moved["metadata"].get("properties", {})


def test_purge_removes_the_tables_files(
    client: TestClient, backend: Backend, catalog_properties: dict[str, str]
) -> None:
    """Write real data with PyIceberg, then drop with purgeRequested=true: no file of the table is left."""
    import pyarrow as pa
    from pyiceberg.catalog import load_catalog

    catalog = load_catalog("purge", **catalog_properties)
    catalog.create_namespace("db")
    table = catalog.create_table("db.t", schema=pa.schema([pa.field("id", pa.int64())]))
    table.append(pa.table({"id": pa.array([1, 2, 3], pa.int64())}))
    table.append(pa.table({"id": pa.array([4], pa.int64())}))
    keep = catalog.create_table("db.keep", schema=pa.schema([pa.field("id", pa.int64())]))
    keep.append(pa.table({"id": pa.array([9], pa.int64())}))

    location = load_table(client, "db", "t")["metadata"]["location"]
    files = list_files(backend, location)
    assert any(f.endswith(".parquet") for f in files), files
    assert any(f.endswith(".avro") for f in files), files
    assert sum(f.endswith(".metadata.json") for f in files) >= 3, files
    kept = list_files(backend, keep.metadata.location)

    response = client.delete(table_url(client, "db", "t"), params={"purgeRequested": "true"})
    assert response.status_code == 204, response.text
    assert list_files(backend, location) == set()
    assert client.head(table_url(client, "db", "t")).status_code == 404
    assert list_files(backend, keep.metadata.location) == kept


def test_purge_of_a_table_without_snapshots(client: TestClient, backend: Backend) -> None:
    create_namespace(client, "db")
    body = create_table(client, "db", "t")
    assert commit(client, "db", "t", [set_props(a="1")]).status_code == 200
    location = body["metadata"]["location"]
    assert len(list_files(backend, location)) == 2
    assert client.delete(table_url(client, "db", "t"), params={"purgeRequested": True}).status_code == 204
    assert list_files(backend, location) == set()


def test_purge_never_deletes_outside_the_warehouse(client: TestClient, backend: Backend, tmp_path: Path) -> None:
    """Manifest lists (and the files manifests name) come from clients: a purge only deletes inside the warehouse."""
    create_namespace(client, "db")
    table = create_table(client, "db", "t")
    victim = tmp_path / "victim.avro"
    victim.write_bytes(b"not a manifest list, and not the catalog's to delete")
    victims = [victim.as_uri()]
    if backend.s3 is not None:
        key = f"victim-{uuid.uuid4().hex}.avro"
        backend.s3.client().put_object(Bucket=backend.s3.bucket, Key=key, Body=b"someone else's object")
        victims.append(f"s3://{backend.s3.bucket}/{key}")
    parent = None
    for i, victim_uri in enumerate(victims, start=1):
        updates = snapshot_updates(table["metadata"]["location"], i, parent, i)
        updates[0]["snapshot"]["manifest-list"] = victim_uri
        assert commit(client, "db", "t", updates).status_code == 200
        parent = i

    response = client.delete(table_url(client, "db", "t"), params={"purgeRequested": True})
    assert response.status_code == 204, response.text
    assert list_files(backend, table["metadata"]["location"]) == set()  # the table's own files are gone
    assert victim.exists()
    for victim_uri in victims[1:]:
        assert file_exists(backend, victim_uri)


def test_rename_within_and_across_namespaces(client: TestClient) -> None:
    p = prefix(client)
    create_namespace(client, "src")
    create_namespace(client, "dst")
    body = create_table(client, "src", "t")

    def rename(src: tuple[list[str], str], dst: tuple[list[str], str]) -> object:
        return client.post(
            f"{p}/tables/rename",
            json={
                "source": {"namespace": src[0], "name": src[1]},
                "destination": {"namespace": dst[0], "name": dst[1]},
            },
        )

    within = rename((["src"], "t"), (["src"], "t2"))
    assert within.status_code == 204, within.text  # type: ignore[attr-defined]
    assert client.head(table_url(client, "src", "t")).status_code == 404
    assert load_table(client, "src", "t2")["metadata-location"] == body["metadata-location"]

    across = rename((["src"], "t2"), (["dst"], "moved"))
    assert across.status_code == 204, across.text  # type: ignore[attr-defined]
    moved = load_table(client, "dst", "moved")
    assert moved["metadata"]["table-uuid"] == body["metadata"]["table-uuid"]
    assert client.get(f"{p}/namespaces/src/tables").json()["identifiers"] == []
    assert client.get(f"{p}/namespaces/dst/tables").json()["identifiers"] == [{"namespace": ["dst"], "name": "moved"}]
    # the renamed table still takes commits
    assert commit(client, "dst", "moved", [set_props(after="rename")]).status_code == 200

    assert_error(rename((["src"], "gone"), (["src"], "x")), 404, "NoSuchTableException")  # type: ignore[arg-type]
    create_table(client, "dst", "taken")
    assert_error(rename((["dst"], "moved"), (["dst"], "taken")), 409, "AlreadyExistsException")  # type: ignore[arg-type]
    assert_error(rename((["dst"], "moved"), (["nowhere"], "x")), 404, "NoSuchNamespaceException")  # type: ignore[arg-type]
    # failed renames changed nothing
    assert load_table(client, "dst", "moved")["metadata"]["table-uuid"] == body["metadata"]["table-uuid"]
    assert load_table(client, "dst", "taken")["metadata"]["table-uuid"] != body["metadata"]["table-uuid"]


def test_register_existing_metadata(client: TestClient, backend: Backend) -> None:
    p = prefix(client)
    create_namespace(client, "db")
    create_table(client, "db", "orig")
    committed = commit(client, "db", "orig", [set_props(stage="two")]).json()
    metadata_location = committed["metadata-location"]

    registered = client.post(
        f"{p}/namespaces/db/register", json={"name": "copy", "metadata-location": metadata_location}
    )
    assert registered.status_code == 200, registered.text
    assert registered.json()["metadata-location"] == metadata_location
    loaded = load_table(client, "db", "copy")
    assert loaded["metadata-location"] == metadata_location
    assert loaded["metadata"]["properties"]["stage"] == "two"
    assert loaded["metadata"]["table-uuid"] == committed["metadata"]["table-uuid"]

    # the name is taken (by a table): 409 without overwrite
    other = create_table(client, "db", "other")
    taken = client.post(f"{p}/namespaces/db/register", json={"name": "other", "metadata-location": metadata_location})
    assert_error(taken, 409, "AlreadyExistsException")
    assert load_table(client, "db", "other")["metadata-location"] == other["metadata-location"]

    overwritten = client.post(
        f"{p}/namespaces/db/register",
        json={"name": "other", "metadata-location": metadata_location, "overwrite": True},
    )
    assert overwritten.status_code == 200, overwritten.text
    assert load_table(client, "db", "other")["metadata-location"] == metadata_location


def test_register_refuses_bad_metadata_locations(client: TestClient, backend: Backend) -> None:
    p = prefix(client)
    create_namespace(client, "db")
    missing = client.post(
        f"{p}/namespaces/db/register",
        json={"name": "r", "metadata-location": f"{backend.warehouse}/db/r/metadata/00000-x.metadata.json"},
    )
    assert 400 <= missing.status_code < 500
    assert_error(missing, missing.status_code)
    outside = client.post(
        f"{p}/namespaces/db/register",
        json={"name": "r", "metadata-location": f"{outside_location(backend)}/metadata/v1.metadata.json"},
    )
    assert_error(outside, 400, "BadRequestException")
    existing = create_table(client, "db", "t")
    for directory in (backend.warehouse, existing["metadata"]["location"] + "/metadata"):
        response = client.post(f"{p}/namespaces/db/register", json={"name": "r", "metadata-location": directory})
        assert_error(response, 400, "BadRequestException")
    not_metadata = client.post(
        f"{p}/namespaces/db/register", json={"name": "r", "metadata-location": existing["metadata"]["location"]}
    )
    assert 400 <= not_metadata.status_code < 500, not_metadata.text
    assert client.head(table_url(client, "db", "r")).status_code == 404
    nowhere = existing["metadata-location"]
    no_ns = client.post(f"{p}/namespaces/nope/register", json={"name": "r", "metadata-location": nowhere})
    assert_error(no_ns, 404, "NoSuchNamespaceException")


def test_registered_format_v3_table_loads_and_refuses_commits(client: TestClient, backend: Backend) -> None:
    """Other engines write v3 metadata; PyIceberg 0.12 reads it but cannot write it: 406, never a 500."""
    from pyiceberg.io import load_file_io

    p = prefix(client)
    create_namespace(client, "db")
    base = create_table(client, "db", "v2")
    metadata = dict(base["metadata"])
    location = metadata["location"]
    snapshot = snapshot_updates(location, 5, None, 1)[0]["snapshot"]
    metadata.update(
        {
            "format-version": 3,
            "next-row-id": 0,
            "snapshots": [snapshot, {**snapshot, "snapshot-id": 4, "sequence-number": 0}],
            "current-snapshot-id": 5,
            "last-sequence-number": 1,
            "refs": {"main": {"snapshot-id": 5, "type": "branch"}},
        }
    )
    v3_location = f"{location}/metadata/00007-{uuid.uuid4()}.metadata.json"
    io = load_file_io(backend.storage_properties(), v3_location)
    with io.new_output(v3_location).create() as stream:
        stream.write(json.dumps(metadata).encode())

    registered = client.post(f"{p}/namespaces/db/register", json={"name": "v3", "metadata-location": v3_location})
    assert registered.status_code == 200, registered.text
    loaded = load_table(client, "db", "v3")
    assert loaded["metadata"]["format-version"] == 3
    refs = client.get(table_url(client, "db", "v3"), params={"snapshots": "refs"})
    assert refs.status_code == 200, refs.text
    assert 5 in {s["snapshot-id"] for s in refs.json()["metadata"]["snapshots"]}
    response = commit(client, "db", "v3", [set_props(a="1")])
    assert_error(response, 406, "UnsupportedOperationException")
    assert load_table(client, "db", "v3")["metadata-location"] == v3_location


def test_metrics_report(client: TestClient) -> None:
    create_namespace(client, "db")
    create_table(client, "db", "t")
    report = {
        "report-type": "scan-report",
        "table-name": "db.t",
        "snapshot-id": 1,
        "filter": True,
        "schema-id": 0,
        "projected-field-ids": [1],
        "projected-field-names": ["id"],
        "metrics": {},
    }
    response = client.post(f"{table_url(client, 'db', 't')}/metrics", json=report)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_error(client.post(f"{table_url(client, 'db', 'nope')}/metrics", json=report), 404, "NoSuchTableException")
