"""update inbox: updates stored before Telegram is acknowledged, handled once

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-26 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("order_key", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_inbox")),
    )
    op.create_index("ix_inbox_status_claimed_at", "inbox", ["status", "claimed_at"])
    op.create_index(op.f("ix_inbox_finished_at"), "inbox", ["finished_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_inbox_finished_at"), table_name="inbox")
    op.drop_index("ix_inbox_status_claimed_at", table_name="inbox")
    op.drop_table("inbox")
