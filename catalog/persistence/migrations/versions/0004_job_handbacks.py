"""job hand-backs

``jobs.handbacks`` counts the attempts of a job that a stopping worker (SIGTERM, e.g. during a
deployment) gave back to the queue unfinished. Those attempts do not count against
``DATLAKE_JOB_MAX_ATTEMPTS``: before this column, every deployment that interrupted a long job
used up one of its attempts. Existing rows start at 0.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("handbacks", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("handbacks")
