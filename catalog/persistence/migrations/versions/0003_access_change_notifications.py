"""access change notifications

Every change to the tables that decide who a caller is and what it may do (principals,
credentials, roles, role_members, grants) sends a PostgreSQL ``NOTIFY datlake_access`` when its
transaction commits, whoever made it (a server, ``datlake admin``, plain SQL). Each server
process listens and drops the callers it keeps between requests
(:mod:`catalog.persistence.caller_cache`). SQLite has no notifications: nothing to do.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 13:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CHANNEL = "datlake_access"
ACCESS_TABLES = ("principals", "credentials", "roles", "role_members", "grants")
FUNCTION = "datlake_notify_access_change"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
            RETURN NULL;
        END;
        $$
        """
    )
    for table in ACCESS_TABLES:
        # FOR EACH STATEMENT: one notification per statement; PostgreSQL also folds identical
        # notifications of one transaction into one, delivered only if it commits.
        op.execute(
            f"CREATE TRIGGER {table}_notify_access_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in ACCESS_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify_access_change ON {table}")
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
