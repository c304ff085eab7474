"""Idempotency-Key: a retried mutation returns its first outcome and has no further effect."""

from __future__ import annotations

import uuid
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
    table_url,
)
from tests.integration.rbac_helpers import make_caller


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def test_create_namespace_replay(client: TestClient) -> None:
    p = prefix(client)
    headers = key()
    body = {"namespace": ["once"], "properties": {"a": "1"}}
    first = client.post(f"{p}/namespaces", json=body, headers=headers)
    assert first.status_code == 200, first.text
    # the retry carries a different body on purpose: the key alone decides
    replay = client.post(f"{p}/namespaces", json={"namespace": ["once"], "properties": {"a": "2"}}, headers=headers)
    assert replay.status_code == 200, replay.text
    assert replay.json() == first.json()
    assert client.get(f"{p}/namespaces/once").json()["properties"] == {"a": "1"}
    # without the key the same request is a new one, and fails as a duplicate would
    assert_error(client.post(f"{p}/namespaces", json=body), 409, "AlreadyExistsException")


def test_create_table_replay(client: TestClient, backend: Backend) -> None:
    p = prefix(client)
    create_namespace(client, "db")
    headers = key()
    first = client.post(f"{p}/namespaces/db/tables", json={"name": "t", "schema": SCHEMA}, headers=headers)
    assert first.status_code == 200, first.text
    replay = client.post(f"{p}/namespaces/db/tables", json={"name": "t", "schema": SCHEMA}, headers=headers)
    assert replay.status_code == 200, replay.text
    assert replay.json() == first.json()
    assert replay.json()["metadata-location"] == load_table(client, "db", "t")["metadata-location"]
    assert len(list_files(backend, first.json()["metadata"]["location"])) == 1
    assert client.get(f"{p}/namespaces/db/tables").json()["identifiers"] == [{"namespace": ["db"], "name": "t"}]


def test_commit_replay_applies_once(client: TestClient, backend: Backend) -> None:
    create_namespace(client, "db")
    created = create_table(client, "db", "t")
    headers = key()
    body = {"requirements": [], "updates": [set_props(n="1")]}
    first = client.post(table_url(client, "db", "t"), json=body, headers=headers)
    assert first.status_code == 200, first.text
    for _ in range(2):
        replay = client.post(table_url(client, "db", "t"), json=body, headers=headers)
        assert replay.status_code == 200, replay.text
        assert replay.json() == first.json()
    loaded = load_table(client, "db", "t")
    assert loaded["metadata-location"] == first.json()["metadata-location"]
    assert [e["metadata-file"] for e in loaded["metadata"]["metadata-log"]] == [created["metadata-location"]]
    assert len(list_files(backend, created["metadata"]["location"])) == 2


def test_failed_outcomes_are_replayed_too(client: TestClient) -> None:
    create_namespace(client, "db")
    table = create_table(client, "db", "t")
    headers = key()
    wrong = {"requirements": [{"type": "assert-table-uuid", "uuid": str(uuid.uuid4())}], "updates": [set_props(a="1")]}
    first = client.post(table_url(client, "db", "t"), json=wrong, headers=headers)
    assert_error(first, 409, "CommitFailedException")
    # a corrected request under the same key still gets the recorded outcome
    fixed = {"requirements": [{"type": "assert-table-uuid", "uuid": table["metadata"]["table-uuid"]}], "updates": []}
    replay = client.post(table_url(client, "db", "t"), json=fixed, headers=headers)
    assert replay.status_code == 409
    assert replay.json() == first.json()
    assert load_table(client, "db", "t")["metadata-location"] == table["metadata-location"]


def test_replay_of_an_empty_204(client: TestClient) -> None:
    p = prefix(client)
    create_namespace(client, "db")
    create_table(client, "db", "t")
    headers = key()
    first = client.delete(table_url(client, "db", "t"), headers=headers)
    assert first.status_code == 204
    replay = client.delete(table_url(client, "db", "t"), headers=headers)
    assert replay.status_code == 204, replay.text
    assert replay.content == b""
    # a fresh key sees the real state
    assert_error(client.delete(table_url(client, "db", "t"), headers=key()), 404, "NoSuchTableException")
    rename = {"source": {"namespace": ["db"], "name": "x"}, "destination": {"namespace": ["db"], "name": "y"}}
    assert_error(client.post(f"{p}/tables/rename", json=rename, headers=headers), 422)


def test_same_key_on_a_different_route_is_422(client: TestClient) -> None:
    p = prefix(client)
    headers = key()
    assert client.post(f"{p}/namespaces", json={"namespace": ["a"]}, headers=headers).status_code == 200
    other_route = client.post(f"{p}/namespaces/a/tables", json={"name": "t", "schema": SCHEMA}, headers=headers)
    assert_error(other_route, 422, "UnprocessableEntityException")
    assert client.get(f"{p}/namespaces/a/tables").json()["identifiers"] == []
    other_method = client.delete(f"{p}/namespaces/a", headers=headers)
    assert_error(other_method, 422)
    assert client.head(f"{p}/namespaces/a").status_code == 204
    # the key keeps its first outcome for its own route
    assert client.post(f"{p}/namespaces", json={"namespace": ["a"]}, headers=headers).status_code == 200


def test_different_keys_act_independently(client: TestClient) -> None:
    p = prefix(client)
    one = client.post(f"{p}/namespaces", json={"namespace": ["one"]}, headers=key())
    two = client.post(f"{p}/namespaces", json={"namespace": ["two"]}, headers=key())
    assert one.status_code == two.status_code == 200
    again = client.post(f"{p}/namespaces", json={"namespace": ["one"]}, headers=key())
    assert_error(again, 409, "AlreadyExistsException")
    assert client.get(f"{p}/namespaces").json() == {"namespaces": [["one"], ["two"]]}


def test_outcomes_are_replayed_only_to_their_caller(client: TestClient) -> None:
    """Presenting someone else's key (without credentials, or as another principal) replays nothing."""
    p = prefix(client)
    create_namespace(client, "db")
    headers = key()
    body = {"name": "t", "schema": SCHEMA}
    first = client.post(f"{p}/namespaces/db/tables", json=body, headers=headers)
    assert first.status_code == 200, first.text

    anonymous = TestClient(client.app)
    assert_error(anonymous.post(f"{p}/namespaces/db/tables", json=body, headers=headers), 401)
    stranger = make_caller(client)  # a principal without any grant
    response = client.post(f"{p}/namespaces/db/tables", json=body, headers={**headers, **stranger.headers})
    assert_error(response, 403)
    # the owner still gets the replay
    replay = client.post(f"{p}/namespaces/db/tables", json=body, headers=headers)
    assert replay.status_code == 200 and replay.json() == first.json()


def test_reads_ignore_the_key(client: TestClient) -> None:
    p = prefix(client)
    headers = key()
    assert client.get(f"{p}/namespaces", headers=headers).json() == {"namespaces": []}
    create_namespace(client, "later")
    assert client.get(f"{p}/namespaces", headers=headers).json() == {"namespaces": [["later"]]}
    # a key seen only on reads is still free for a mutation
    assert client.post(f"{p}/namespaces", json={"namespace": ["n"]}, headers=headers).status_code == 200


def test_unusable_keys_are_refused_before_anything_happens(client: TestClient) -> None:
    p = prefix(client)
    for bad in ("k" * 300, ""):
        response = client.post(f"{p}/namespaces", json={"namespace": ["x"]}, headers={"Idempotency-Key": bad})
        if bad:
            assert_error(response, 400)
        else:  # an empty header is the same as none
            assert response.status_code in (200, 409), response.text
    namespaces: list[Any] = client.get(f"{p}/namespaces").json()["namespaces"]
    assert namespaces in ([], [["x"]])
