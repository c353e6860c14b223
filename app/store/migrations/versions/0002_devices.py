"""The user's devices (``devices``), one of them the default, and ``applied_settings``: what the
settings said when last applied, so that a start applies only what changed there since.

The devices themselves come from the settings at the next start (``Store.apply_device_settings``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("dial_string", sa.String(200), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        "uq_devices_one_default",
        "devices",
        ["is_default"],
        unique=True,
        sqlite_where=sa.text("is_default = 1"),
        postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "applied_settings",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("applied_settings")
    op.drop_index("uq_devices_one_default", table_name="devices")
    op.drop_table("devices")
