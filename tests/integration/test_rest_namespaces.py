"""Namespaces over the Iceberg REST API: create, nest, list/paginate, load, exists, drop, properties."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Backend
from tests.integration.helpers import assert_error, create_namespace, create_table, ns_path, prefix


def test_create_load_and_exists(client: TestClient) -> None:
    p = prefix(client)
    created = create_namespace(client, "sales", properties={"owner": "ana", "comment": "raw"})
    assert created == {"namespace": ["sales"], "properties": {"owner": "ana", "comment": "raw"}}

    loaded = client.get(f"{p}/namespaces/sales")
    assert loaded.status_code == 200, loaded.text
    assert loaded.json() == {"namespace": ["sales"], "properties": {"owner": "ana", "comment": "raw"}}

    head = client.head(f"{p}/namespaces/sales")
    assert head.status_code == 204
    assert head.content == b""
    assert client.head(f"{p}/namespaces/nope").status_code == 404
    assert_error(client.get(f"{p}/namespaces/nope"), 404, "NoSuchNamespaceException")


def test_create_without_properties_has_empty_properties(client: TestClient) -> None:
    assert create_namespace(client, "bare") == {"namespace": ["bare"], "properties": {}}
    assert client.get(f"{prefix(client)}/namespaces/bare").json()["properties"] == {}


def test_create_twice_is_409(client: TestClient) -> None:
    create_namespace(client, "dup", properties={"a": "1"})
    again = client.post(f"{prefix(client)}/namespaces", json={"namespace": ["dup"], "properties": {"a": "2"}})
    assert_error(again, 409, "AlreadyExistsException")
    # the first namespace is untouched
    assert client.get(f"{prefix(client)}/namespaces/dup").json()["properties"] == {"a": "1"}


def test_nested_namespaces_need_their_parent(client: TestClient) -> None:
    p = prefix(client)
    orphan = client.post(f"{p}/namespaces", json={"namespace": ["a", "b"]})
    assert_error(orphan, 404, "NoSuchNamespaceException")
    assert client.head(f"{p}/namespaces/{ns_path('a', 'b')}").status_code == 404
    assert client.head(f"{p}/namespaces/a").status_code == 404

    create_namespace(client, "a")
    assert create_namespace(client, "a", "b")["namespace"] == ["a", "b"]
    assert create_namespace(client, "a", "b", "c")["namespace"] == ["a", "b", "c"]
    loaded = client.get(f"{p}/namespaces/{ns_path('a', 'b', 'c')}")
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["namespace"] == ["a", "b", "c"]
    assert client.head(f"{p}/namespaces/{ns_path('a', 'b')}").status_code == 204
    # a level is not a namespace of its own
    assert client.head(f"{p}/namespaces/b").status_code == 404


def test_list_top_level_and_children(client: TestClient) -> None:
    p = prefix(client)
    for levels in (["x"], ["y"], ["x", "one"], ["x", "two"], ["x", "one", "deep"], ["y", "other"]):
        create_namespace(client, *levels)

    top = client.get(f"{p}/namespaces")
    assert top.status_code == 200, top.text
    assert top.json() == {"namespaces": [["x"], ["y"]]}

    children = client.get(f"{p}/namespaces", params={"parent": "x"})
    assert children.json() == {"namespaces": [["x", "one"], ["x", "two"]]}

    # the parent as the spec encodes it (levels joined by %1F), here sent raw in the query string
    grandchildren = client.get(f"{p}/namespaces?parent={ns_path('x', 'one')}")
    assert grandchildren.status_code == 200, grandchildren.text
    assert grandchildren.json() == {"namespaces": [["x", "one", "deep"]]}

    leaf = client.get(f"{p}/namespaces", params={"parent": "x\x1fone\x1fdeep"})
    assert leaf.json() == {"namespaces": []}

    assert_error(client.get(f"{p}/namespaces", params={"parent": "missing"}), 404, "NoSuchNamespaceException")


def test_list_empty_catalog(client: TestClient) -> None:
    response = client.get(f"{prefix(client)}/namespaces")
    assert response.status_code == 200
    assert response.json() == {"namespaces": []}


def test_pagination_has_no_gaps_or_duplicates(client: TestClient) -> None:
    p = prefix(client)
    names = [f"ns{i:02d}" for i in range(7)]
    for name in reversed(names):
        create_namespace(client, name)
    create_namespace(client, "ns03", "child")  # children are not listed at the top level

    for page_size in (1, 3, 7, 10):
        seen: list[list[str]] = []
        token = None
        pages = 0
        while True:
            params: dict[str, str | int] = {"pageSize": page_size}
            if token is not None:
                params["pageToken"] = token
            response = client.get(f"{p}/namespaces", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["namespaces"]) <= page_size
            seen.extend(body["namespaces"])
            pages += 1
            token = body.get("next-page-token")
            if token is None:
                break
            assert isinstance(token, str) and token
            assert body["namespaces"], "a page with a next-page-token must not be empty"
            assert pages <= len(names), "pagination does not terminate"
        assert seen == [[n] for n in names], page_size
        assert pages == -(-len(names) // page_size), page_size


def test_pagination_of_children(client: TestClient) -> None:
    p = prefix(client)
    create_namespace(client, "parent")
    for i in range(5):
        create_namespace(client, "parent", f"c{i}")
    first = client.get(f"{p}/namespaces", params={"parent": "parent", "pageSize": 3}).json()
    assert first["namespaces"] == [["parent", "c0"], ["parent", "c1"], ["parent", "c2"]]
    second = client.get(
        f"{p}/namespaces", params={"parent": "parent", "pageSize": 3, "pageToken": first["next-page-token"]}
    ).json()
    assert second == {"namespaces": [["parent", "c3"], ["parent", "c4"]]}


def test_page_size_above_the_server_maximum_is_an_upper_bound(client: TestClient) -> None:
    """The spec sets no maximum on pageSize: a large one is served, not refused."""
    p = prefix(client)
    create_namespace(client, "a")
    create_namespace(client, "b")
    create_table(client, "a", "t")
    for size in (20_000, 10**20):
        assert client.get(f"{p}/namespaces", params={"pageSize": size}).json() == {"namespaces": [["a"], ["b"]]}
        tables = client.get(f"{p}/namespaces/a/tables", params={"pageSize": size}).json()
        assert tables == {"identifiers": [{"namespace": ["a"], "name": "t"}]}


def test_page_token_without_page_size_returns_the_rest(client: TestClient) -> None:
    p = prefix(client)
    for name in ("a", "b", "c"):
        create_namespace(client, name)
    first = client.get(f"{p}/namespaces", params={"pageSize": 1}).json()
    rest = client.get(f"{p}/namespaces", params={"pageToken": first["next-page-token"]}).json()
    assert rest == {"namespaces": [["b"], ["c"]]}


def test_drop(client: TestClient) -> None:
    p = prefix(client)
    create_namespace(client, "gone")
    response = client.delete(f"{p}/namespaces/gone")
    assert response.status_code == 204
    assert response.content == b""
    assert client.head(f"{p}/namespaces/gone").status_code == 404
    assert_error(client.delete(f"{p}/namespaces/gone"), 404, "NoSuchNamespaceException")
    # the name can be used again
    create_namespace(client, "gone")


def test_drop_refuses_a_namespace_with_a_table(client: TestClient) -> None:
    p = prefix(client)
    create_namespace(client, "full")
    create_table(client, "full", "t")
    assert_error(client.delete(f"{p}/namespaces/full"), 409, "NamespaceNotEmptyException")
    assert client.head(f"{p}/namespaces/full").status_code == 204
    assert client.delete(f"{p}/namespaces/full/tables/t").status_code == 204
    assert client.delete(f"{p}/namespaces/full").status_code == 204


def test_drop_refuses_a_namespace_with_a_child(client: TestClient) -> None:
    p = prefix(client)
    create_namespace(client, "up")
    create_namespace(client, "up", "down")
    assert_error(client.delete(f"{p}/namespaces/up"), 409, "NamespaceNotEmptyException")
    assert client.delete(f"{p}/namespaces/{ns_path('up', 'down')}").status_code == 204
    assert client.delete(f"{p}/namespaces/up").status_code == 204


def test_update_properties(client: TestClient) -> None:
    p = prefix(client)
    create_namespace(client, "props", properties={"keep": "1", "drop": "2", "change": "3"})
    response = client.post(
        f"{p}/namespaces/props/properties",
        json={"removals": ["drop", "never-set"], "updates": {"change": "33", "new": "4"}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(body["updated"]) == ["change", "new"]
    assert body["removed"] == ["drop"]
    assert body["missing"] == ["never-set"]
    assert client.get(f"{p}/namespaces/props").json()["properties"] == {"keep": "1", "change": "33", "new": "4"}


def test_update_properties_only_removals_or_only_updates(client: TestClient) -> None:
    p = prefix(client)
    create_namespace(client, "props", properties={"a": "1"})
    only_updates = client.post(f"{p}/namespaces/props/properties", json={"updates": {"b": "2"}})
    assert only_updates.json() == {"updated": ["b"], "removed": [], "missing": []}
    only_removals = client.post(f"{p}/namespaces/props/properties", json={"removals": ["a"]})
    assert only_removals.json() == {"updated": [], "removed": ["a"], "missing": []}
    assert client.get(f"{p}/namespaces/props").json()["properties"] == {"b": "2"}


def test_update_properties_with_a_key_removed_twice(client: TestClient) -> None:
    """Found by fuzzing: a set key named twice in removals was a 500 (KeyError on the second)."""
    p = prefix(client)
    create_namespace(client, "props", properties={"a": "1", "": "empty key"})
    response = client.post(f"{p}/namespaces/props/properties", json={"removals": ["a", "", "a", "", "x", "x"]})
    assert response.status_code == 200, response.text
    assert response.json() == {"updated": [], "removed": ["a", ""], "missing": ["x"]}
    assert client.get(f"{p}/namespaces/props").json()["properties"] == {}


def test_update_properties_overlap_is_422(client: TestClient) -> None:
    p = prefix(client)
    create_namespace(client, "props", properties={"a": "1"})
    response = client.post(f"{p}/namespaces/props/properties", json={"removals": ["a"], "updates": {"a": "2"}})
    assert_error(response, 422, "UnprocessableEntityException")
    assert client.get(f"{p}/namespaces/props").json()["properties"] == {"a": "1"}


def test_update_properties_of_missing_namespace_is_404(client: TestClient) -> None:
    response = client.post(f"{prefix(client)}/namespaces/nope/properties", json={"updates": {"a": "1"}})
    assert_error(response, 404, "NoSuchNamespaceException")


def test_location_property_must_stay_inside_the_warehouse(client: TestClient, backend: Backend) -> None:
    p = prefix(client)
    outside = "s3://elsewhere/data" if backend.s3 is None else "file:///tmp/elsewhere"
    for location in (outside, backend.warehouse + "-sibling/x", backend.warehouse + "/../escape"):
        response = client.post(f"{p}/namespaces", json={"namespace": ["bad"], "properties": {"location": location}})
        assert_error(response, 400, "BadRequestException")
    assert client.head(f"{p}/namespaces/bad").status_code == 404

    inside = backend.warehouse + "/custom/place"
    assert create_namespace(client, "good", properties={"location": inside})["properties"]["location"] == inside
    move_out = client.post(f"{p}/namespaces/good/properties", json={"updates": {"location": outside}})
    assert_error(move_out, 400, "BadRequestException")
    assert client.get(f"{p}/namespaces/good").json()["properties"]["location"] == inside
