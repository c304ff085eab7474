"""A first end-to-end pass over every backend: namespace, table, commit, load."""

from __future__ import annotations

from fastapi.testclient import TestClient

SCHEMA = {
    "type": "struct",
    "schema-id": 0,
    "fields": [{"id": 1, "name": "id", "type": "long", "required": False}],
}


def test_create_and_commit_roundtrip(client: TestClient) -> None:
    p = client.prefix  # type: ignore[attr-defined]
    assert client.post(f"{p}/namespaces", json={"namespace": ["ns"]}).status_code == 200
    created = client.post(f"{p}/namespaces/ns/tables", json={"name": "t", "schema": SCHEMA})
    assert created.status_code == 200, created.text
    location = created.json()["metadata-location"]
    commit = client.post(
        f"{p}/namespaces/ns/tables/t",
        json={"requirements": [], "updates": [{"action": "set-properties", "updates": {"k": "v"}}]},
    )
    assert commit.status_code == 200, commit.text
    loaded = client.get(f"{p}/namespaces/ns/tables/t").json()
    assert loaded["metadata"]["properties"]["k"] == "v"
    assert loaded["metadata"]["metadata-log"][-1]["metadata-file"] == location
