"""``datlake admin ...``: the admin API's operations, run locally against the catalog database.

The operator of the database is trusted (like ``datlake migrate``); each write is still recorded
in the audit log, as principal ``cli:<os user>``. Secrets are printed once, when created.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from catalog import errors
from catalog.audit import AuditRow
from catalog.config import Settings
from catalog.service.access import PRINCIPAL_TYPES, AccessService


def open_access(settings: Settings) -> AccessService:
    """The access service over the configured database (SQLite is migrated; PostgreSQL must be)."""
    from catalog.persistence.access_store import AccessStore
    from catalog.persistence.database import ensure_schema, make_engine
    from catalog.persistence.store import CatalogStore

    engine = make_engine(settings.resolved_database_url, 2)
    ensure_schema(engine)
    store = CatalogStore(engine)
    if store.get_warehouse(settings.warehouse_name) is None:  # never move an existing warehouse from here
        store.ensure_warehouse(settings.warehouse_name, settings.resolved_warehouse)
    return AccessService(AccessStore(engine), store, settings.warehouse_name)


def _audit(access: AccessService, action: str, securable: str) -> None:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    access.access.write_audit([AuditRow(datetime.now(UTC), f"cli:{user}", action, securable, "allowed", None, None)])


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if getattr(args, "json", False) else text)


def _bootstrap(access: AccessService, args: argparse.Namespace) -> None:
    created = access.bootstrap(args.name)
    _audit(access, "BOOTSTRAP", f"principal {created.name}")
    _out(
        args,
        created.credentials_json(),
        f"Created administrator {created.name!r} (the secret is shown only now):\n"
        f"  client_id:     {created.client_id}\n  client_secret: {created.client_secret}",
    )


def _principal_create(access: AccessService, args: argparse.Namespace) -> None:
    created = access.create_principal(args.name, args.type)
    _audit(access, "CREATE_PRINCIPAL", f"principal {created.name}")
    data = {"name": created.name, "type": created.type, **created.credentials_json()}
    _out(args, data, f"client_id:     {created.client_id}\nclient_secret: {created.client_secret}")


def _principal_list(access: AccessService, args: argparse.Namespace) -> None:
    rows = access.list_principals()
    data = [{"name": r.name, "type": r.type, "enabled": r.enabled, "roles": list(r.roles)} for r in rows]
    lines = [f"{r.name}\t{r.type}\t{'enabled' if r.enabled else 'disabled'}\t{','.join(r.roles)}" for r in rows]
    _out(args, data, "\n".join(lines))


def _principal_enabled(enabled: bool) -> Callable[[AccessService, argparse.Namespace], None]:
    def run(access: AccessService, args: argparse.Namespace) -> None:
        access.set_enabled(args.name, enabled)
        _audit(access, "ENABLE_PRINCIPAL" if enabled else "DISABLE_PRINCIPAL", f"principal {args.name}")
        print(f"{args.name} {'enabled' if enabled else 'disabled'}")

    return run


def _key_create(access: AccessService, args: argparse.Namespace) -> None:
    created = access.create_api_key(args.principal, args.expires_in)
    _audit(access, "CREATE_API_KEY", f"principal {args.principal}")
    _out(args, {"key_id": created.key_id, "api_key": created.api_key}, created.api_key)


def _key_list(access: AccessService, args: argparse.Namespace) -> None:
    rows = access.list_api_keys(args.principal)
    data = [
        {
            "key_id": r.id,
            "prefix": r.prefix,
            "created_at": r.created_at,
            "expires_at": r.expires_at,
            "revoked_at": r.revoked_at,
        }
        for r in rows
    ]
    lines = [f"{r.id}\t{r.prefix}...\t{'revoked' if r.revoked_at else 'live'}" for r in rows]
    _out(args, data, "\n".join(lines))


def _key_revoke(access: AccessService, args: argparse.Namespace) -> None:
    access.revoke_api_key(args.principal, args.key_id)
    _audit(access, "REVOKE_API_KEY", f"principal {args.principal} key {args.key_id}")
    print(f"revoked {args.key_id}")


def _role_create(access: AccessService, args: argparse.Namespace) -> None:
    access.create_role(args.name)
    _audit(access, "CREATE_ROLE", f"role {args.name}")
    print(f"created role {args.name}")


def _role_list(access: AccessService, args: argparse.Namespace) -> None:
    rows = access.list_roles()
    _out(
        args,
        [{"name": r.name, "members": list(r.members)} for r in rows],
        "\n".join(f"{r.name}\t{','.join(r.members)}" for r in rows),
    )


def _role_member(add: bool) -> Callable[[AccessService, argparse.Namespace], None]:
    def run(access: AccessService, args: argparse.Namespace) -> None:
        if add:
            access.add_member(args.role, args.principal)
        else:
            access.remove_member(args.role, args.principal)
        _audit(access, "GRANT_ROLE" if add else "REVOKE_ROLE", f"role {args.role} principal {args.principal}")
        print(f"{args.principal} {'now holds' if add else 'no longer holds'} {args.role}")

    return run


def _grant(add: bool) -> Callable[[AccessService, argparse.Namespace], None]:
    def run(access: AccessService, args: argparse.Namespace) -> None:
        securable = access.securable(args.type, args.name, args.warehouse)
        grant = access.grant_of(args.privilege, securable)
        if add:
            access.grant(args.role, grant, securable)
        else:
            access.revoke(args.role, grant)
        _audit(access, "GRANT" if add else "REVOKE", f"{grant.privilege} on {securable.describe()} role {args.role}")
        print(
            f"{'granted' if add else 'revoked'} {grant.privilege} on {securable.describe()} {'to' if add else 'from'} "
            f"{args.role}"
        )

    return run


def _grant_list(access: AccessService, args: argparse.Namespace) -> None:
    described = [access.describe_grant(g) for g in access.list_grants(args.role)]
    lines = [
        f"{d['privilege']}\t{d['securable']['type']}\t{d['securable']['name']}\t{d['warehouse']}" for d in described
    ]
    _out(args, described, "\n".join(lines))


def add_admin_parser(commands: Any) -> None:
    """Add ``admin`` and its subcommands to the ``datlake`` parser."""
    admin = commands.add_parser("admin", help="manage principals, API keys, roles and grants")
    groups = admin.add_subparsers(dest="admin_command", required=True)

    def command(parent: Any, name: str, run: Callable[[AccessService, argparse.Namespace], None], **kw: Any) -> Any:
        parser = parent.add_parser(name, **kw)
        parser.set_defaults(func=_run, admin_func=run)
        return parser

    boot = command(groups, "bootstrap", _bootstrap, help="create the first administrator (once)")
    boot.add_argument("--name", default="admin", help="principal name (default admin)")
    boot.add_argument("--json", action="store_true", help='print {"client_id", "client_secret"}')

    principals = groups.add_parser("principals", help="users and service accounts").add_subparsers(
        dest="sub", required=True
    )
    create = command(principals, "create", _principal_create, help="create a principal with client credentials")
    create.add_argument("name")
    create.add_argument("--type", choices=PRINCIPAL_TYPES, default="user")
    create.add_argument("--json", action="store_true")
    command(principals, "list", _principal_list, help="list principals").add_argument("--json", action="store_true")
    command(principals, "enable", _principal_enabled(True), help="enable a principal").add_argument("name")
    command(principals, "disable", _principal_enabled(False), help="disable a principal").add_argument("name")

    keys = groups.add_parser("api-keys", help="API keys of a principal").add_subparsers(dest="sub", required=True)
    key_create = command(keys, "create", _key_create, help="create an API key (printed once)")
    key_create.add_argument("principal")
    key_create.add_argument("--expires-in", type=int, default=None, metavar="SECONDS")
    key_create.add_argument("--json", action="store_true")
    key_list = command(keys, "list", _key_list, help="list API keys (ids and prefixes)")
    key_list.add_argument("principal")
    key_list.add_argument("--json", action="store_true")
    key_revoke = command(keys, "revoke", _key_revoke, help="revoke an API key")
    key_revoke.add_argument("principal")
    key_revoke.add_argument("key_id")

    roles = groups.add_parser("roles", help="roles and their members").add_subparsers(dest="sub", required=True)
    command(roles, "create", _role_create, help="create a role").add_argument("name")
    command(roles, "list", _role_list, help="list roles").add_argument("--json", action="store_true")
    for name, add in (("add-member", True), ("remove-member", False)):
        member = command(roles, name, _role_member(add), help=f"{name.split('-')[0]} a principal to/from a role")
        member.add_argument("role")
        member.add_argument("principal")

    grants = groups.add_parser("grants", help="privileges held by roles").add_subparsers(dest="sub", required=True)
    for name, add in (("add", True), ("revoke", False)):
        grant = command(grants, name, _grant(add), help=f"{'grant' if add else 'revoke'} a privilege")
        grant.add_argument("role")
        grant.add_argument(
            "privilege", help="SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, MANAGE_GRANTS, ADMIN"
        )
        grant.add_argument("type", choices=["catalog", "namespace", "table", "view"])
        grant.add_argument("name", nargs="?", default=None, help="ns.sub.table (omit for the catalog)")
        grant.add_argument("--warehouse", default=None, help="warehouse name (default: the default warehouse)")
    grant_list = command(grants, "list", _grant_list, help="list a role's grants")
    grant_list.add_argument("role")
    grant_list.add_argument("--json", action="store_true")


def _run(args: argparse.Namespace) -> int:
    try:
        access = open_access(Settings())
    except Exception as exc:  # noqa: BLE001 - one line for the operator, not a traceback
        print(f"datlake: cannot open the catalog database: {exc}", file=sys.stderr)
        return 1
    try:
        args.admin_func(access, args)
    except errors.CatalogError as exc:
        print(f"datlake: {exc.message}", file=sys.stderr)
        return 1
    finally:
        access.catalog.engine.dispose()
    return 0
