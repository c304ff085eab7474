"""Request bodies and small helpers shared by the REST behaviour suite."""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlparse

import httpx
from fastapi.testclient import TestClient

from catalog.persistence.jobs import NewJob
from tests.conftest import Backend

SEP = "%1F"  # how the spec encodes multi-level namespaces in a URL path

SCHEMA: dict[str, Any] = {
    "type": "struct",
    "schema-id": 0,
    "fields": [
        {"id": 1, "name": "id", "type": "long", "required": False},
        {"id": 2, "name": "name", "type": "string", "required": False},
    ],
}

SCHEMA_V2: dict[str, Any] = {
    "type": "struct",
    "schema-id": 1,
    "fields": [
        {"id": 1, "name": "id", "type": "long", "required": False},
        {"id": 2, "name": "name", "type": "string", "required": False},
        {"id": 3, "name": "added", "type": "int", "required": False},
    ],
}


def prefix(client: TestClient) -> str:
    p: str = client.prefix  # type: ignore[attr-defined]
    return p


def ns_path(*levels: str) -> str:
    return SEP.join(levels)


def table_url(client: TestClient, namespace: tuple[str, ...] | str, name: str) -> str:
    levels = (namespace,) if isinstance(namespace, str) else namespace
    return f"{prefix(client)}/namespaces/{ns_path(*levels)}/tables/{name}"


def assert_error(response: httpx.Response, status: int, error_type: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with the spec's error model; return the inner error object."""
    assert response.status_code == status, f"{response.status_code} != {status}: {response.text}"
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    assert error["code"] == status, error
    if error_type is not None:
        assert error["type"] == error_type, error
    return error  # type: ignore[no-any-return]


def create_namespace(client: TestClient, *levels: str, properties: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"namespace": list(levels)}
    if properties is not None:
        body["properties"] = properties
    response = client.post(f"{prefix(client)}/namespaces", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def create_table(client: TestClient, namespace: tuple[str, ...] | str, name: str, **extra: Any) -> dict[str, Any]:
    levels = (namespace,) if isinstance(namespace, str) else namespace
    response = client.post(
        f"{prefix(client)}/namespaces/{ns_path(*levels)}/tables", json={"name": name, "schema": SCHEMA, **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def load_table(client: TestClient, namespace: tuple[str, ...] | str, name: str) -> dict[str, Any]:
    response = client.get(table_url(client, namespace, name))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def commit(
    client: TestClient,
    namespace: tuple[str, ...] | str,
    name: str,
    updates: list[dict[str, Any]],
    requirements: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> httpx.Response:
    body = {"requirements": requirements or [], "updates": updates, **extra}
    return client.post(table_url(client, namespace, name), json=body)


def set_props(**props: str) -> dict[str, Any]:
    return {"action": "set-properties", "updates": props}


def snapshot_updates(
    table_location: str, snapshot_id: int, parent: int | None, sequence_number: int, ref: str = "main"
) -> list[dict[str, Any]]:
    """Add a snapshot (its manifest list need not exist: the catalog never reads it on commit) and point a ref at it."""
    snapshot: dict[str, Any] = {
        "snapshot-id": snapshot_id,
        "sequence-number": sequence_number,
        "timestamp-ms": int(time.time() * 1000),
        "manifest-list": f"{table_location}/metadata/snap-{snapshot_id}.avro",
        "summary": {"operation": "append"},
        "schema-id": 0,
    }
    if parent is not None:
        snapshot["parent-snapshot-id"] = parent
    return [
        {"action": "add-snapshot", "snapshot": snapshot},
        {"action": "set-snapshot-ref", "ref-name": ref, "type": "branch", "snapshot-id": snapshot_id},
    ]


def staged_create_updates(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """The update list a client (PyIceberg, Spark) sends to create a staged table with ``assert-create``."""
    schema = next(s for s in metadata["schemas"] if s["schema-id"] == metadata["current-schema-id"])
    spec = next(s for s in metadata["partition-specs"] if s["spec-id"] == metadata["default-spec-id"])
    order = next(o for o in metadata["sort-orders"] if o["order-id"] == metadata["default-sort-order-id"])
    return [
        {"action": "assign-uuid", "uuid": metadata["table-uuid"]},
        {"action": "upgrade-format-version", "format-version": metadata["format-version"]},
        {"action": "add-schema", "schema": schema},
        {"action": "set-current-schema", "schema-id": -1},
        {"action": "add-spec", "spec": spec},
        {"action": "set-default-spec", "spec-id": -1},
        {"action": "add-sort-order", "sort-order": order},
        {"action": "set-default-sort-order", "sort-order-id": -1},
        {"action": "set-location", "location": metadata["location"]},
        {"action": "set-properties", "updates": metadata.get("properties", {})},
    ]


def list_files(backend: Backend, location: str) -> set[str]:
    """Every file (object) under ``location`` in the backend's storage, as full URIs."""
    location = location.rstrip("/")
    parsed = urlparse(location)
    if parsed.scheme == "file":
        root = parsed.path
        found = set()
        for directory, _dirs, files in os.walk(root):
            found.update(f"file://{os.path.join(directory, f)}" for f in files)
        return found
    assert parsed.scheme == "s3" and backend.s3 is not None, location
    client = backend.s3.client()
    found = set()
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=parsed.netloc, Prefix=parsed.path.lstrip("/") + "/"):
        # (SeaweedFS lists leftover directories as "<dir>/" keys: those are not files)
        found.update(f"s3://{parsed.netloc}/{obj['Key']}" for obj in page.get("Contents", []) if obj["Key"][-1] != "/")
    return found


def file_exists(backend: Backend, location: str) -> bool:
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return os.path.isfile(parsed.path)
    assert backend.s3 is not None
    response = backend.s3.client().list_objects_v2(Bucket=parsed.netloc, Prefix=parsed.path.lstrip("/"))
    return any(obj["Key"] == parsed.path.lstrip("/") for obj in response.get("Contents", []))


def new_job(job_id: str, warehouse_id: int, submitted_by: str = "tester") -> NewJob:
    """A register-snapshot job row for tests that drive the job tables directly (into table ``ops.t``)."""
    return NewJob(
        job_id, warehouse_id, "ops.t", ("ops",), "t", "file:///x.parquet", "parquet", "append", None, submitted_by, None
    )
