"""Worker processes (``holdslayer serve --workers N``): ``calls.worker``, the index of the worker
process that runs the call (None: the one process of ``serve``), and ``calls.node``, the host
installation it runs on (``HOLDSLAYER_NODE``; None: the only one), so that any front can send a
live call's commands to its worker, and a front ends the calls of its own workers only.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("worker", sa.Integer(), nullable=True))
    op.add_column("calls", sa.Column("node", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("node")
        batch.drop_column("worker")
