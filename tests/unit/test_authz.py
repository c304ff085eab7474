"""The authorizer's rules and the privileges a commit derives from its update list (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter
from pyiceberg.table.update import TableRequirement, TableUpdate

from catalog import errors
from catalog.audit import RequestAudit, _current, rows_for
from catalog.auth.principal import ANONYMOUS, Principal
from catalog.authz.authorizer import Authorizer
from catalog.authz.commits import commit_privileges, creates_table
from catalog.authz.model import SEPARATOR, Action, Grant, Privilege, Securable, SecurableType

WH, OTHER = 1, 2
UPDATES: TypeAdapter[list[TableUpdate]] = TypeAdapter(list[TableUpdate])
REQUIREMENTS: TypeAdapter[list[TableRequirement]] = TypeAdapter(list[TableRequirement])


def principal(*grants: tuple[str, str, str], warehouse: int = WH) -> Principal:
    return Principal(7, "p", "user", frozenset(Grant(p, t, warehouse, n.replace(".", SEPARATOR)) for p, t, n in grants))


def table(name: str = "a.b.t", warehouse: int = WH) -> Securable:
    *ns, leaf = name.split(".")
    return Securable.table(warehouse, ns, leaf)


def ns(name: str, warehouse: int = WH) -> Securable:
    return Securable.of_namespace(warehouse, name.split(".") if name else [])


AUTHZ = Authorizer(default_warehouse_id=WH, allow_anonymous=False)


def test_grants_cover_the_securable_and_everything_below() -> None:
    on_ns = principal(("SELECT", "namespace", "a"))
    assert AUTHZ.is_allowed(on_ns, Action.LOAD_TABLE, table("a.b.t"))
    assert AUTHZ.is_allowed(on_ns, Action.LOAD_TABLE, table("a.t"))
    assert not AUTHZ.is_allowed(on_ns, Action.LOAD_TABLE, table("ab.t"))  # a prefix of the name is not a parent
    assert not AUTHZ.is_allowed(on_ns, Action.COMMIT_APPEND, table("a.b.t"))
    assert not AUTHZ.is_allowed(on_ns, Action.LOAD_TABLE, table("a.b.t", warehouse=OTHER))
    on_table = principal(("SELECT", "table", "a.b.t"))
    assert AUTHZ.is_allowed(on_table, Action.LOAD_TABLE, table("a.b.t"))
    assert not AUTHZ.is_allowed(on_table, Action.LOAD_TABLE, table("a.b.u"))
    assert not AUTHZ.is_allowed(on_table, Action.LOAD_VIEW, Securable.view(WH, ["a", "b"], "t"))
    on_catalog = principal(("DROP", "catalog", ""))
    assert AUTHZ.is_allowed(on_catalog, Action.DROP_TABLE, table("x.y"))
    assert AUTHZ.is_allowed(on_catalog, Action.DROP_NAMESPACE, ns("x"))
    assert not AUTHZ.is_allowed(on_catalog, Action.DROP_TABLE, table("x.y", warehouse=OTHER))


def test_admin_covers_its_catalog_and_on_the_default_warehouse_everything() -> None:
    other_admin = principal(("ADMIN", "catalog", ""), warehouse=OTHER)
    assert AUTHZ.is_allowed(other_admin, Action.DROP_TABLE, table("x.y", warehouse=OTHER))
    assert not AUTHZ.is_allowed(other_admin, Action.DROP_TABLE, table("x.y"))
    assert not AUTHZ.is_allowed(other_admin, Action.ADMINISTER, ns(""))
    admin = principal(("ADMIN", "catalog", ""))
    for need in (Action.ADMINISTER, Action.MANAGE_GRANTS, Action.COMMIT_DELETE, Privilege.ALTER):
        assert AUTHZ.is_allowed(admin, need, table("x.y", warehouse=OTHER))


def test_create_namespace_needs_create_on_the_parent() -> None:
    creator = principal(("CREATE", "namespace", "a"))
    assert AUTHZ.is_allowed(creator, Action.CREATE_NAMESPACE, ns("a.new"))
    assert AUTHZ.is_allowed(creator, Action.CREATE_NAMESPACE, ns("a.b.new"))
    assert not AUTHZ.is_allowed(creator, Action.CREATE_NAMESPACE, ns("a"))  # that needs CREATE on the catalog
    assert AUTHZ.is_allowed(principal(("CREATE", "catalog", "")), Action.CREATE_NAMESPACE, ns("a"))


def test_seeing_a_namespace_takes_any_privilege_on_it_above_it_or_inside_it() -> None:
    inside = principal(("INSERT", "table", "a.b.t"))
    assert AUTHZ.is_allowed(inside, Action.LOAD_NAMESPACE, ns("a"))
    assert AUTHZ.is_allowed(inside, Action.LOAD_NAMESPACE, ns("a.b"))
    assert not AUTHZ.is_allowed(inside, Action.LOAD_NAMESPACE, ns("a.b.c"))
    assert not AUTHZ.is_allowed(inside, Action.LOAD_NAMESPACE, ns("ab"))
    assert AUTHZ.is_allowed(principal(("ALTER", "namespace", "a")), Action.LOAD_NAMESPACE, ns("a.b.c"))


def test_listings_are_filtered_to_what_the_caller_sees() -> None:
    caller = principal(("SELECT", "table", "a.b.t"), ("SELECT", "table", "a.b.u"), ("ALTER", "namespace", "a.c"))
    assert AUTHZ.visible_namespaces(caller, WH, ()) == frozenset({"a"})
    assert AUTHZ.visible_namespaces(caller, WH, ("a",)) == frozenset({f"a{SEPARATOR}b", f"a{SEPARATOR}c"})
    assert AUTHZ.visible_namespaces(caller, WH, ("a", "c")) is None  # covered: everything
    assert AUTHZ.visible_names(caller, SecurableType.TABLE, WH, ("a", "b")) == frozenset({"t", "u"})
    assert AUTHZ.visible_names(caller, SecurableType.VIEW, WH, ("a", "b")) == frozenset()
    assert AUTHZ.visible_names(caller, SecurableType.TABLE, WH, ("a", "c", "d")) is None
    assert AUTHZ.visible_names(caller, SecurableType.TABLE, WH, ("a",)) == frozenset()  # sees a, none of its tables
    with pytest.raises(errors.Forbidden):
        AUTHZ.visible_names(caller, SecurableType.TABLE, WH, ("z",))
    with pytest.raises(errors.Forbidden):
        AUTHZ.visible_namespaces(caller, WH, ("z",))
    assert principal() is not None and AUTHZ.visible_namespaces(principal(), WH, ()) == frozenset()
    visibility = AUTHZ.visibility(caller, SecurableType.TABLE, WH)
    assert visibility.allows(("a", "b"), "t") and not visibility.allows(("a", "b"), "v")
    assert visibility.allows(("a", "c", "deep"), "x") and not visibility.allows(("a",), "t")
    assert AUTHZ.visibility(principal(("SELECT", "catalog", "")), SecurableType.TABLE, WH).everything


def test_anonymous_has_full_access_only_when_allowed() -> None:
    assert not AUTHZ.is_allowed(ANONYMOUS, Action.LOAD_TABLE, table())
    open_authz = Authorizer(default_warehouse_id=WH, allow_anonymous=True)
    assert open_authz.is_allowed(ANONYMOUS, Action.ADMINISTER, ns(""))
    assert open_authz.visible_names(ANONYMOUS, SecurableType.TABLE, WH, ("a",)) is None
    assert not open_authz.is_allowed(principal(), Action.LOAD_TABLE, table())  # a named caller still needs grants


def test_require_raises_403_and_records_the_decision() -> None:
    audit = RequestAudit("POST", "/v1/lake/namespaces/a/tables/t", "rid")
    token = _current.set(audit)
    try:
        AUTHZ.require(principal(("INSERT", "table", "a.b.t")), Action.COMMIT_APPEND, table())
        with pytest.raises(errors.Forbidden, match="COMMIT_DELETE"):
            AUTHZ.require(principal(("INSERT", "table", "a.b.t")), Action.COMMIT_DELETE, table())
        with pytest.raises(errors.Forbidden, match="DELETE\\+INSERT"):
            AUTHZ.require(principal(("INSERT", "table", "a.b.t")), {Privilege.INSERT, Privilege.DELETE}, table())
    finally:
        _current.reset(token)
    assert [(e.action, e.allowed) for e in audit.events] == [
        ("COMMIT_APPEND", True),
        ("COMMIT_DELETE", False),
        ("DELETE+INSERT", False),
    ]
    rows = rows_for(audit, 403, "/v1/{prefix}/namespaces/{namespace}/tables/{table}")
    assert [(r.action, r.outcome, r.securable) for r in rows] == [
        ("COMMIT_DELETE", "denied", "table a.b.t"),
        ("DELETE+INSERT", "denied", "table a.b.t"),
    ]
    assert rows_for(RequestAudit("GET", "/v1/config", "r"), 200, "/v1/config") == []


@pytest.mark.parametrize("suffix", ["metrics", "sign"])
def test_metrics_reports_and_signing_are_reads_for_the_audit_log_unless_denied(suffix: str) -> None:
    path = f"/v1/lake/namespaces/db/tables/t/{suffix}"
    route = f"/v1/{{prefix}}/namespaces/{{namespace}}/tables/{{table}}/{suffix}"
    assert rows_for(RequestAudit("POST", path, "r"), 204, route) == []
    denied = rows_for(RequestAudit("POST", path, "r"), 403, route)
    assert [row.outcome for row in denied] == ["denied"]
    commit = "/v1/lake/namespaces/db/tables/t"
    assert [row.outcome for row in rows_for(RequestAudit("POST", commit, "r"), 200, route)] == ["allowed"]


def _snapshot(snapshot_id: int, operation: str | None) -> dict[str, Any]:
    snapshot: dict[str, Any] = {
        "snapshot-id": snapshot_id,
        "timestamp-ms": 1,
        "manifest-list": "s3://b/m.avro",
        "sequence-number": 1,
    }
    if operation is not None:
        snapshot["summary"] = {"operation": operation}
    return {"action": "add-snapshot", "snapshot": snapshot}


def _ref(snapshot_id: int) -> dict[str, Any]:
    return {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": snapshot_id}


@pytest.mark.parametrize(
    ("updates", "needs"),
    [
        ([_snapshot(1, "append"), _ref(1)], {"INSERT"}),
        ([_snapshot(1, "overwrite"), _ref(1)], {"UPDATE"}),
        ([_snapshot(1, "replace"), _ref(1)], {"UPDATE"}),
        ([_snapshot(1, "delete"), _ref(1)], {"DELETE"}),
        ([_snapshot(1, "append"), _snapshot(2, "delete"), _ref(2)], {"INSERT", "DELETE"}),
        ([_ref(5)], {"ALTER"}),  # moving a branch to an existing snapshot: a rollback
        ([_snapshot(1, "append"), _ref(5)], {"INSERT", "ALTER"}),
        ([{"action": "remove-snapshots", "snapshot-ids": [1]}], {"ALTER"}),
        ([{"action": "remove-snapshot-ref", "ref-name": "b"}], {"ALTER"}),
        ([{"action": "set-properties", "updates": {"k": "v"}}], {"ALTER"}),
        ([{"action": "remove-properties", "removals": ["k"]}], {"ALTER"}),
        ([{"action": "set-location", "location": "s3://b/t"}], {"ALTER"}),
        ([{"action": "upgrade-format-version", "format-version": 2}], {"ALTER"}),
        ([{"action": "set-current-schema", "schema-id": -1}], {"ALTER"}),
        ([{"action": "set-default-spec", "spec-id": 0}], {"ALTER"}),
        ([{"action": "set-default-sort-order", "sort-order-id": 0}], {"ALTER"}),
        (
            [
                _snapshot(1, "append"),
                {
                    "action": "set-statistics",
                    "statistics": {
                        "snapshot-id": 1,
                        "statistics-path": "s3://b/s.puffin",
                        "file-size-in-bytes": 1,
                        "file-footer-size-in-bytes": 1,
                        "blob-metadata": [],
                    },
                },
            ],
            {"INSERT"},
        ),
        ([{"action": "remove-statistics", "snapshot-id": 1}], {"ALTER"}),
        ([], {"SELECT"}),
    ],
)
def test_commit_privileges_follow_the_update_list(updates: list[dict[str, Any]], needs: set[str]) -> None:
    assert {p.value for p in commit_privileges(UPDATES.validate_python(updates))} == needs


def test_a_snapshot_without_summary_needs_every_write_privilege() -> None:
    parsed = UPDATES.validate_python([_snapshot(1, None), _ref(1)])
    assert parsed[0].snapshot.summary is None  # type: ignore[union-attr]
    assert commit_privileges(parsed) == {Privilege.INSERT, Privilege.UPDATE, Privilege.DELETE}


def test_assert_create_marks_a_create() -> None:
    assert creates_table(REQUIREMENTS.validate_python([{"type": "assert-create"}]))
    assert not creates_table(
        REQUIREMENTS.validate_python([{"type": "assert-table-uuid", "uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1"}])
    )
