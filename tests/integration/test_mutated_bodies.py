"""Valid request bodies, randomly mutated: every answer is a success or a 4xx in the spec's error
model, never a 5xx, and the table stays loadable after every accepted commit.

Structure-aware fuzzing with fixed seeds, so a failure reproduces. Mutations drop keys, replace
values with wrongly typed or extreme ones (NUL, 2**63, deep containers) and duplicate list items
in create-table, commit, multi-table transaction, create/replace view and register-snapshot
bodies. Fuzzing like this found three kinds of 500 (a create through a commit without a sort
order, PyIceberg's own ValidationError on ``bucket[x]``, a deeply nested metrics report); each
also has a targeted test (test_rest_tables.py, test_rest_errors.py).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from catalog.app import create_app
from tests.conftest import Backend, authorized_client
from tests.integration.helpers import staged_create_updates

REQUESTS = 600
WEIRD: list[Any] = [
    *(None, -1, 0, 2**63, -(2**63) - 1, 1.5, "", "x", "\x00", "é" * 300, [], {}, [1], {"a": 1}, True, "NaN"),
    *("bucket[x]", "truncate[-1]", "fixed[x]", "decimal(a,b)"),  # for PyIceberg's own type and transform parsers
]

SCHEMA: dict[str, Any] = {
    "type": "struct",
    "schema-id": 0,
    "identifier-field-ids": [],
    "fields": [
        {"id": 1, "name": "id", "type": "long", "required": True},
        {"id": 2, "name": "ts", "type": "timestamp", "required": False},
        {
            "id": 3,
            "name": "s",
            "type": {"type": "struct", "fields": [{"id": 4, "name": "x", "type": "decimal(10, 2)", "required": False}]},
            "required": False,
        },
        {
            "id": 5,
            "name": "l",
            "type": {"type": "list", "element-id": 6, "element": "string", "element-required": False},
            "required": False,
        },
    ],
}
SPEC = {
    "spec-id": 0,
    "fields": [
        {"source-id": 2, "field-id": 1000, "transform": "day", "name": "d"},
        {"source-id": 1, "field-id": 1001, "transform": "bucket[4]", "name": "b"},
    ],
}
ORDER = {
    "order-id": 1,
    "fields": [{"source-id": 1, "transform": "identity", "direction": "asc", "null-order": "nulls-first"}],
}
CREATE = {"name": "t", "schema": SCHEMA, "partition-spec": SPEC, "write-order": ORDER, "properties": {"a": "b"}}
# "UUID", "LOCATION" and "MANIFEST_LIST" are replaced by the live table's values.
UPDATES: list[dict[str, Any]] = [
    {"action": "set-properties", "updates": {"k": "v"}},
    {"action": "remove-properties", "removals": ["k"]},
    {
        "action": "add-schema",
        "schema": {**SCHEMA, "schema-id": 1, "fields": [*SCHEMA["fields"], {"id": 7, "name": "n", "type": "int"}]},
    },
    {"action": "set-current-schema", "schema-id": -1},
    {
        "action": "add-spec",
        "spec": {
            "spec-id": 1,
            "fields": [{"source-id": 1, "field-id": 1002, "transform": "truncate[10]", "name": "t"}],
        },
    },
    {"action": "set-default-spec", "spec-id": -1},
    {"action": "add-sort-order", "sort-order": {**ORDER, "order-id": 2}},
    {"action": "set-default-sort-order", "sort-order-id": -1},
    {
        "action": "add-snapshot",
        "snapshot": {
            "snapshot-id": 77,
            "sequence-number": 1,
            "timestamp-ms": 1700000000000,
            "manifest-list": "MANIFEST_LIST",
            "summary": {"operation": "append"},
            "schema-id": 0,
        },
    },
    {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": 77},
    {"action": "set-snapshot-ref", "ref-name": "tag1", "type": "tag", "snapshot-id": 77, "max-ref-age-ms": 5},
    {"action": "remove-snapshot-ref", "ref-name": "tag1"},
    {"action": "remove-snapshots", "snapshot-ids": [77]},
    {"action": "upgrade-format-version", "format-version": 2},
    {"action": "set-location", "location": "LOCATION"},
    {"action": "assign-uuid", "uuid": "UUID"},
    {"action": "remove-partition-specs", "spec-ids": [1]},
    {"action": "remove-schemas", "schema-ids": [1]},
]
REQUIREMENTS: list[dict[str, Any]] = [
    {"type": "assert-table-uuid", "uuid": "UUID"},
    {"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": None},
    {"type": "assert-current-schema-id", "current-schema-id": 0},
    {"type": "assert-last-assigned-field-id", "last-assigned-field-id": 6},
    {"type": "assert-default-spec-id", "default-spec-id": 0},
    {"type": "assert-default-sort-order-id", "default-sort-order-id": 1},
]
VIEW_VERSION = {
    "version-id": 1,
    "timestamp-ms": 1700000000000,
    "schema-id": 0,
    "summary": {"engine-name": "spark"},
    "representations": [{"type": "sql", "sql": "SELECT 1", "dialect": "spark"}],
    "default-namespace": ["ns"],
}
VIEW = {"name": "v", "schema": SCHEMA, "view-version": VIEW_VERSION, "properties": {}}


def mutate(rng: random.Random, value: Any) -> Any:
    """One random change somewhere inside ``value`` (a copy)."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        changed = dict(value)
        key = rng.choice(list(changed))
        roll = rng.random()
        if roll < 0.2:
            del changed[key]
        elif roll < 0.6:
            changed[key] = mutate(rng, changed[key])
        else:
            changed[key] = rng.choice(WEIRD)
        return changed
    if isinstance(value, list) and value and rng.random() < 0.8:
        items = list(value)
        index = rng.randrange(len(items))
        roll = rng.random()
        if roll < 0.2:
            del items[index]
        elif roll < 0.4:
            items.append(copy.deepcopy(items[index]))
        else:
            items[index] = mutate(rng, items[index])
        return items
    return rng.choice(WEIRD)


@pytest.fixture(params=["sqlite-file", "postgres-s3"])
def lake(request: pytest.FixtureRequest, backend_factory: Callable[..., Backend]) -> Iterator[TestClient]:
    with authorized_client(create_app(backend_factory(request.param).settings)) as client:
        yield client


def test_mutated_bodies_get_answers_in_the_error_model_and_never_break_the_table(lake: TestClient) -> None:
    client = lake
    p = client.prefix  # type: ignore[attr-defined]
    assert client.post(f"{p}/namespaces", json={"namespace": ["ns"]}).status_code == 200
    created = client.post(f"{p}/namespaces/ns/tables", json=CREATE)
    assert created.status_code == 200, created.text
    table = created.json()["metadata"]
    assert client.post(f"{p}/namespaces/ns/views", json=VIEW).status_code == 200
    live = {
        "UUID": table["table-uuid"],
        "LOCATION": table["location"],
        "MANIFEST_LIST": table["location"] + "/x.avro",
    }

    # What PyIceberg and Spark send to create a staged table through a commit with assert-create.
    create_updates = staged_create_updates({**table, "location": table["location"] + "_staged"})

    def fill(value: Any) -> Any:
        text = json.dumps(value)
        for placeholder, actual in live.items():
            text = text.replace(json.dumps(placeholder), json.dumps(actual))
        return json.loads(text)

    rng = random.Random(20261127)
    problems: list[str] = []
    accepted_commits = 0
    for i in range(REQUESTS):
        kind = rng.choice(["create", "staged", "commit", "commit", "transaction", "view", "view-replace", "register"])
        if kind == "create":
            url, body = f"{p}/namespaces/ns/tables", mutate(rng, {**CREATE, "name": f"c{i}"})
        elif kind == "staged":  # some updates left out, and half the time one mutated
            updates = [u for u in create_updates if rng.random() < 0.85]
            staged = {"requirements": [{"type": "assert-create"}], "updates": updates}
            url, body = f"{p}/namespaces/ns/tables/s{i}", mutate(rng, staged) if rng.random() < 0.5 else staged
        elif kind in ("commit", "transaction"):
            change = {
                "requirements": fill(rng.sample(REQUIREMENTS, rng.randint(0, 2))),
                "updates": fill(rng.sample(UPDATES, rng.randint(1, 4))),
            }
            if rng.random() < 0.7:
                change = mutate(rng, change)
            url, body = f"{p}/namespaces/ns/tables/t", change
            if kind == "transaction":
                identifier = {"identifier": {"namespace": ["ns"], "name": "t"}}
                url = f"{p}/transactions/commit"
                body = {"table-changes": [{**identifier, **change} if isinstance(change, dict) else change]}
        elif kind == "view":
            url, body = f"{p}/namespaces/ns/views", mutate(rng, {**VIEW, "name": f"v{i}"})
        elif kind == "view-replace":
            replace = {
                "requirements": [],
                "updates": [
                    {"action": "add-view-version", "view-version": {**VIEW_VERSION, "version-id": 2}},
                    {"action": "set-current-view-version", "view-version-id": -1},
                ],
            }
            url, body = f"{p}/namespaces/ns/views/v", mutate(rng, replace)
        else:
            job = {"table_name": f"ns.r{i}", "uri": table["location"] + "/data/", "mode": "append", "schema": SCHEMA}
            url, body = "/api/v1/jobs/register-snapshot", mutate(rng, job)
        response = client.post(url, content=json.dumps(body), headers={"Content-Type": "application/json"})
        problem = _problem(response)
        if problem:
            problems.append(f"{kind} {json.dumps(body)[:300]} -> {problem}")
        if kind in ("commit", "transaction", "staged") and response.status_code in (200, 204):
            accepted_commits += 1
            loaded = client.get(url if kind == "staged" else f"{p}/namespaces/ns/tables/t")
            if loaded.status_code != 200:
                problems.append(f"table unloadable after {json.dumps(body)[:300]}: {loaded.text[:200]}")
    assert problems == []
    assert accepted_commits > 10  # the mutations left enough valid commits to check the table after them


def _problem(response: httpx.Response) -> str | None:
    """What is wrong with an answer: a 5xx (503 aside: a store outage), or a 4xx outside the error model."""
    if response.status_code < 400 or response.status_code == 503:
        return None
    if response.status_code >= 500:
        return f"{response.status_code} {response.text[:200]}"
    try:
        error = response.json()["error"]
        assert {"message", "type", "code"} <= set(error) and error["code"] == response.status_code
    except (ValueError, KeyError, TypeError, AssertionError):
        return f"{response.status_code} outside the error model: {response.text[:200]}"
    return None
