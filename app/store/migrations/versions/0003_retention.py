"""Retention (``app.retention``): ``calls.recordings_removed_at``, when the call's recording files
were deleted (its record stays, and the API says the recordings are gone rather than missing),
and an index on ``calls.ended_at``, the age a sweep selects by.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("recordings_removed_at", sa.DateTime(), nullable=True))
    op.create_index("ix_calls_ended_at", "calls", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_ended_at", table_name="calls")
    with op.batch_alter_table("calls") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("recordings_removed_at")
