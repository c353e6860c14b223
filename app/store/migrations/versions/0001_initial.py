"""The schema before migrations: calls, their events and classification segments, call flows,
and the recordings heard on a company's line.

A database made by an earlier Hold Slayer (``create_all``, no ``alembic_version``) already has
these tables: only the missing ones are created, no row is touched, and the database is
versioned from here on.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _missing(table: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if _missing("calls"):
        op.create_table(
            "calls",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("number", sa.String(40), nullable=False),
            sa.Column("intent", sa.Text(), nullable=False),
            sa.Column("device", sa.String(100), nullable=False),
            sa.Column("flow_id", sa.String(100), nullable=True),
            sa.Column("company", sa.String(200), nullable=True),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("reason", sa.String(30), nullable=True),
            sa.Column("detail", sa.Text(), nullable=True),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("answered_at", sa.DateTime(), nullable=True),
            sa.Column("hold_started_at", sa.DateTime(), nullable=True),
            sa.Column("human_detected_at", sa.DateTime(), nullable=True),
            sa.Column("connected_at", sa.DateTime(), nullable=True),
            sa.Column("ended_at", sa.DateTime(), nullable=True),
            sa.Column("recording_path", sa.Text(), nullable=True),
            sa.Column("hold_seconds", sa.Float(), nullable=True),
        )
        op.create_index("ix_calls_status", "calls", ["status"])
        op.create_index("ix_calls_created_at", "calls", ["created_at"])

    if _missing("call_events"):
        op.create_table(
            "call_events",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.id"), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("type", sa.String(40), nullable=False),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.Column("data", sa.JSON(), nullable=False),
        )
        op.create_index("ix_call_events_call_id", "call_events", ["call_id"])

    if _missing("classifications"):
        op.create_table(
            "classifications",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.id"), nullable=False),
            sa.Column("t_start", sa.Float(), nullable=False),
            sa.Column("t_end", sa.Float(), nullable=False),
            sa.Column("audio_class", sa.String(30), nullable=False),
            sa.Column("confidence", sa.Float(), nullable=False),
            sa.Column("features", sa.JSON(), nullable=True),
        )
        op.create_index("ix_classifications_call_id", "classifications", ["call_id"])

    if _missing("call_flows"):
        op.create_table(
            "call_flows",
            sa.Column("id", sa.String(100), primary_key=True),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("company", sa.String(200), nullable=False),
            sa.Column("phone_number", sa.String(40), nullable=False),
            sa.Column("description", sa.Text(), nullable=False),
            sa.Column("steps", sa.JSON(), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("tags", sa.JSON(), nullable=False),
            sa.Column("success_count", sa.Integer(), nullable=False),
            sa.Column("fail_count", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.Column("stale", sa.Boolean(), nullable=False),
        )
        op.create_index("ix_call_flows_company", "call_flows", ["company"])
        op.create_index("ix_call_flows_phone_number", "call_flows", ["phone_number"])

    if _missing("line_recordings"):
        op.create_table(
            "line_recordings",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("phone_number", sa.String(40), nullable=False),
            sa.Column("position", sa.Integer(), nullable=False),
            sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
        )
        op.create_index("ix_line_recordings_phone_number", "line_recordings", ["phone_number"])


def downgrade() -> None:
    for table in ("line_recordings", "call_flows", "classifications", "call_events", "calls"):
        op.drop_table(table)
