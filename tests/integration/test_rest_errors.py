"""Bad requests get a 4xx in the spec's error model, never a 500."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog.app import create_app
from tests.conftest import Backend, admin_credentials
from tests.integration.helpers import (
    SCHEMA,
    assert_error,
    create_namespace,
    create_table,
    load_table,
    prefix,
    set_props,
    table_url,
)


def assert_client_error(response: Any, status: int | None = None) -> dict[str, Any]:
    """A 4xx (``status`` when given) with the error model."""
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text}"
    return assert_error(response, status or response.status_code)


@pytest.fixture
def seeded(client: TestClient) -> TestClient:
    create_namespace(client, "db")
    create_table(client, "db", "t")
    return client


def post_routes(client: TestClient) -> list[str]:
    p = prefix(client)
    return [
        f"{p}/namespaces",
        f"{p}/namespaces/db/tables",
        f"{p}/namespaces/db/register",
        f"{p}/namespaces/db/properties",
        table_url(client, "db", "t"),
        f"{p}/tables/rename",
        f"{p}/transactions/commit",
    ]


def test_malformed_and_empty_bodies(seeded: TestClient) -> None:
    client = seeded
    bodies: list[bytes] = [
        b"",
        b"{",
        b'{"namespace": ["x"]',
        b"not json at all",
        b"null",
        b"[]",
        b'"a string"',
        b"42",
        b"\xff\xfe\x00garbage",
        b'{"namespace": ["x"], }',
    ]
    for url in post_routes(client):
        for body in bodies:
            response = client.post(url, content=body, headers={"content-type": "application/json"})
            assert_client_error(response, 400)
    # nothing was created or changed by any of them
    assert client.get(f"{prefix(client)}/namespaces").json() == {"namespaces": [["db"]]}
    assert load_table(client, "db", "t")["metadata"]["metadata-log"] == []


def test_deeply_nested_json_is_refused(seeded: TestClient) -> None:
    deep = b'{"namespace": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    # The metrics report is parsed by the route itself (an empty one is accepted, unlike other bodies).
    for url in [*post_routes(seeded), table_url(seeded, "db", "t") + "/metrics"]:
        assert_client_error(seeded.post(url, content=deep, headers={"content-type": "application/json"}), 400)


WRONG_TYPES: list[tuple[str, dict[str, Any]]] = [
    ("namespaces", {"namespace": "db2"}),
    ("namespaces", {"namespace": [1, 2]}),
    ("namespaces", {"namespace": ["db2"], "properties": ["a", "b"]}),
    ("namespaces", {"namespace": ["db2"], "properties": {"a": None}}),
    ("namespaces", {"namespace": None}),
    ("tables", {"name": 5, "schema": SCHEMA}),
    ("tables", {"name": "t2", "schema": "struct"}),
    ("tables", {"name": "t2", "schema": {"type": "struct", "fields": [{"id": "x", "name": "a", "type": "long"}]}}),
    ("tables", {"name": "t2", "schema": {"type": "struct", "fields": [{"id": 1, "name": "a", "type": "nope"}]}}),
    # PyIceberg's own ValidationError (not pydantic's) for parameterised types and transforms
    ("tables", {"name": "t2", "schema": {"type": "struct", "fields": [{"id": 1, "name": "a", "type": "fixed[x]"}]}}),
    (
        "tables",
        {
            "name": "t2",
            "schema": SCHEMA,
            "partition-spec": {
                "spec-id": 0,
                "fields": [{"source-id": 1, "field-id": 1000, "name": "p", "transform": "bucket[x]"}],
            },
        },
    ),
    (
        "commit",
        {
            "requirements": [],
            "updates": [
                {
                    "action": "add-spec",
                    "spec": {"fields": [{"source-id": 1, "field-id": 1000, "name": "p", "transform": "truncate[-1]"}]},
                }
            ],
        },
    ),
    ("tables", {"name": "t2", "schema": SCHEMA, "stage-create": "maybe"}),
    ("tables", {"name": "t2", "schema": SCHEMA, "properties": {"a": None}}),
    ("tables", {"name": "t2", "schema": SCHEMA, "location": 12}),
    (
        "tables",
        {
            "name": "t2",
            "schema": SCHEMA,
            "partition-spec": {
                "spec-id": 0,
                "fields": [{"source-id": 99, "field-id": 1000, "name": "p", "transform": "identity"}],
            },
        },
    ),
    (
        "tables",
        {
            "name": "t2",
            "schema": SCHEMA,
            "write-order": {
                "order-id": 1,
                "fields": [{"source-id": 99, "transform": "identity", "direction": "asc", "null-order": "nulls-first"}],
            },
        },
    ),
    ("properties", {"updates": ["a"]}),
    ("properties", {"removals": "a"}),
    ("properties", {"updates": {"a": None}}),
    ("commit", {"requirements": {}, "updates": []}),
    ("commit", {"requirements": [], "updates": {"action": "set-properties"}}),
    ("commit", {"requirements": [], "updates": [{"action": "set-properties", "updates": {"a": None}}]}),
    ("commit", {"requirements": [], "updates": [{"action": "set-properties", "updates": ["a"]}]}),
    ("commit", {"requirements": [], "updates": [{"action": "remove-properties", "removals": "a"}]}),
    ("commit", {"requirements": [], "updates": [{"action": "add-snapshot", "snapshot": []}]}),
    ("commit", {"requirements": [{"type": "assert-table-uuid", "uuid": "not-a-uuid"}], "updates": []}),
    ("commit", {"identifier": {"namespace": "db", "name": "t"}, "requirements": [], "updates": []}),
    ("rename", {"source": "db.t", "destination": "db.u"}),
    ("register", {"name": "r", "metadata-location": 5}),
]


def test_wrong_types(seeded: TestClient) -> None:
    client = seeded
    p = prefix(client)
    urls = {
        "namespaces": f"{p}/namespaces",
        "tables": f"{p}/namespaces/db/tables",
        "properties": f"{p}/namespaces/db/properties",
        "commit": table_url(client, "db", "t"),
        "rename": f"{p}/tables/rename",
        "register": f"{p}/namespaces/db/register",
    }
    for route, body in WRONG_TYPES:
        response = client.post(urls[route], json=body)
        assert_client_error(response, 400)
    assert client.get(f"{p}/namespaces").json() == {"namespaces": [["db"]]}
    assert client.get(f"{p}/namespaces/db/tables").json()["identifiers"] == [{"namespace": ["db"], "name": "t"}]
    assert client.get(f"{p}/namespaces/db").json()["properties"] == {}
    assert load_table(client, "db", "t")["metadata"]["metadata-log"] == []


def test_missing_fields(seeded: TestClient) -> None:
    client = seeded
    p = prefix(client)
    cases = [
        (f"{p}/namespaces", {"properties": {"a": "b"}}),
        (f"{p}/namespaces/db/tables", {"name": "t2"}),
        (f"{p}/namespaces/db/tables", {"schema": SCHEMA}),
        (f"{p}/namespaces/db/register", {"name": "r"}),
        (f"{p}/namespaces/db/register", {"metadata-location": "x"}),
        (f"{p}/tables/rename", {"source": {"namespace": ["db"], "name": "t"}}),
        (f"{p}/tables/rename", {"source": {"namespace": ["db"]}, "destination": {"namespace": ["db"], "name": "u"}}),
        (f"{p}/transactions/commit", {"changes": []}),
        (table_url(client, "db", "t"), {"requirements": [], "updates": [{"action": "set-location"}]}),
        (table_url(client, "db", "t"), {"requirements": [{"type": "assert-current-schema-id"}], "updates": []}),
    ]
    for url, body in cases:
        assert_client_error(client.post(url, json=body), 400)
    assert client.head(table_url(client, "db", "t2")).status_code == 404
    assert client.head(table_url(client, "db", "t")).status_code == 204


BAD_LEVELS: list[list[str]] = [
    [],
    [""],
    ["   "],
    ["db", ""],
    ["a\x00b"],
    ["a\x01"],
    ["line\nbreak"],
    ["tab\there"],
    ["unit\x1fsep"],
    ["slash/level"],
    ["x" * 300],
    [f"l{i}" for i in range(40)],
]


def test_invalid_namespace_identifiers_in_bodies(client: TestClient) -> None:
    p = prefix(client)
    for levels in BAD_LEVELS:
        assert_client_error(client.post(f"{p}/namespaces", json={"namespace": levels}), 400)
    assert client.get(f"{p}/namespaces").json() == {"namespaces": []}


def test_invalid_table_names_in_bodies(seeded: TestClient) -> None:
    client = seeded
    p = prefix(client)
    source = {"namespace": ["db"], "name": "t"}
    for name in ("", " ", "a\x00", "a\x07b", "a/b", "a\x1fb", "n" * 300):
        assert_client_error(client.post(f"{p}/namespaces/db/tables", json={"name": name, "schema": SCHEMA}), 400)
        rename = {"source": source, "destination": {"namespace": ["db"], "name": name}}
        assert_client_error(client.post(f"{p}/tables/rename", json=rename), 400)
        location = load_table(client, "db", "t")["metadata-location"]
        register = {"name": name, "metadata-location": location}
        assert_client_error(client.post(f"{p}/namespaces/db/register", json=register), 400)
    for levels in BAD_LEVELS:
        rename = {"source": source, "destination": {"namespace": levels, "name": "u"}}
        assert_client_error(client.post(f"{p}/tables/rename", json=rename), 400)
        commit = {"table-changes": [{"identifier": {"namespace": levels, "name": "t"}, "updates": []}]}
        assert_client_error(client.post(f"{p}/transactions/commit", json=commit), 400)
    assert client.get(f"{p}/namespaces/db/tables").json()["identifiers"] == [{"namespace": ["db"], "name": "t"}]


BAD_SEGMENTS = ["%00", "a%00b", "a%01", "%1F", "db%1F", "%1Fdb", "db%1F%1Fx", "%20", "a%0Ab"]


def test_invalid_identifiers_in_paths(seeded: TestClient) -> None:
    for segment in BAD_SEGMENTS:
        check_bad_segment(seeded, segment)
    assert seeded.get(f"{prefix(seeded)}/namespaces").json() == {"namespaces": [["db"]]}
    assert load_table(seeded, "db", "t")["metadata"]["metadata-log"] == []


def check_bad_segment(client: TestClient, segment: str) -> None:
    p = prefix(client)
    ns_urls = [f"{p}/namespaces/{segment}", f"{p}/namespaces/{segment}/tables"]
    for url in ns_urls:
        for method in ("GET", "DELETE"):
            assert_client_error(client.request(method, url))
        assert 400 <= client.head(url).status_code < 500
    assert_client_error(client.post(f"{p}/namespaces/{segment}/properties", json={"updates": {"a": "b"}}))
    assert_client_error(client.post(f"{p}/namespaces/{segment}/tables", json={"name": "x", "schema": SCHEMA}))
    assert_client_error(client.get(f"{p}/namespaces", params={"parent": segment.replace("%1F", "\x1f")}))
    # the same segment as a table name
    table = f"{p}/namespaces/db/tables/{segment}"
    for method in ("GET", "DELETE"):
        assert_client_error(client.request(method, table))
    assert 400 <= client.head(table).status_code < 500
    assert_client_error(client.post(table, json={"requirements": [], "updates": [set_props(a="1")]}))
    assert_client_error(client.post(f"{table}/metrics", json={"report-type": "scan-report"}))
    assert_client_error(client.get(f"/v1/{segment}/namespaces"))


def test_bad_page_tokens_never_fail_the_server(seeded: TestClient) -> None:
    client = seeded
    p = prefix(client)
    tokens = ["!!!!", "%%%", "AA==", "AB8=", "____", "not-a-token", "//8=", "=", "YQ", "\x00", "🙂", "a" * 5000]
    for token, url in itertools.product(tokens, (f"{p}/namespaces", f"{p}/namespaces/db/tables")):
        response = client.get(url, params={"pageToken": token, "pageSize": 2})
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert_client_error(response, 400)
        else:  # a token that decodes to a plausible name is a position in the listing
            assert isinstance(response.json(), dict)


def test_tokens_that_are_not_listing_positions_are_400(seeded: TestClient) -> None:
    client = seeded
    p = prefix(client)
    # "AA==" is a NUL byte, "//8=" is not UTF-8, "!!!!" has no base64 alphabet at all
    for token in ("AA==", "//8=", "!!!!", "YQ", "%%%"):
        for url in (f"{p}/namespaces", f"{p}/namespaces/db/tables"):
            assert_client_error(client.get(url, params={"pageToken": token}), 400)


def test_bad_page_sizes(seeded: TestClient) -> None:
    p = prefix(seeded)
    sizes = ["0", "-1", "abc", "1.5", ""]
    for size, url in itertools.product(sizes, (f"{p}/namespaces", f"{p}/namespaces/db/tables")):
        assert_client_error(seeded.get(url, params={"pageSize": size}), 400)


def test_bad_query_values(seeded: TestClient) -> None:
    url = table_url(seeded, "db", "t")
    assert_client_error(seeded.get(url, params={"snapshots": "none"}), 400)
    assert_client_error(seeded.delete(url, params={"purgeRequested": "perhaps"}), 400)
    assert seeded.head(url).status_code == 204


def test_metrics_report_must_be_a_json_object(seeded: TestClient) -> None:
    url = f"{table_url(seeded, 'db', 't')}/metrics"
    for body in (b"{", b"[]", b"42", b"\xff"):
        assert_client_error(seeded.post(url, content=body, headers={"content-type": "application/json"}), 400)


def test_unknown_routes_and_methods(client: TestClient) -> None:
    p = prefix(client)
    for url in ("/nothing", "/v1", "/v1/", f"{p}/nothing", f"{p}/namespaces/db/tables/t/nothing", "/v2/config"):
        assert_error(client.get(url), 404)
    create_namespace(client, "db")
    assert_error(client.put(f"{p}/namespaces/db", json={}), 405)
    assert_error(client.patch(f"{p}/namespaces", json={}), 405)
    assert_error(client.delete(f"{p}/namespaces"), 405)


def test_oversized_bodies_are_413(backend_factory: Callable[..., Backend]) -> None:
    backend = backend_factory("sqlite-file", max_request_bytes=600)
    app = create_app(backend.settings)
    with TestClient(app, headers=admin_credentials(app).headers) as client:
        p = f"/v1/{backend.settings.warehouse_name}"
        small = client.post(f"{p}/namespaces", json={"namespace": ["small"]})
        assert small.status_code == 200, small.text
        big = {"namespace": ["big"], "properties": {"blob": "x" * 2000}}
        assert_error(client.post(f"{p}/namespaces", json=big), 413, "PayloadTooLargeException")
        schema = {
            **SCHEMA,
            "fields": [{"id": i, "name": f"c{i}", "type": "long", "required": False} for i in range(1, 60)],
        }
        assert_error(
            client.post(f"{p}/namespaces/small/tables", json={"name": "wide", "schema": schema}),
            413,
            "PayloadTooLargeException",
        )

        # without a declared length (chunked transfer encoding) the limit holds too
        def chunks() -> Iterator[bytes]:
            yield b'{"namespace": ["streamed"], "properties": {"blob": "'
            for _ in range(20):
                yield b"y" * 100
            yield b'"}}'

        streamed = client.post(f"{p}/namespaces", content=chunks())
        assert_error(streamed, 413, "PayloadTooLargeException")
        assert client.get(f"{p}/namespaces").json() == {"namespaces": [["small"]]}
