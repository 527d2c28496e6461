"""identity per messenger: a patient is (messenger, user id); outbox rows name their messenger

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 14:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("messenger", sa.String(length=16), nullable=False, server_default="telegram")
        )
        # A MAX dialog's chat id is not its user's id; NULL on Telegram (the chat is the user).
        batch_op.add_column(sa.Column("chat_id", sa.BigInteger(), nullable=True))
        batch_op.drop_constraint("uq_patients_telegram_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_patients_messenger_telegram_id", ["messenger", "telegram_id"]
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("messenger", sa.String(length=16), nullable=False, server_default="telegram")
        )


def downgrade() -> None:
    # MAX patients cannot keep a Telegram-only schema (their ids could clash): they go first,
    # with their rows (cascades), as if MAX had never been enabled.
    op.execute("DELETE FROM outbox WHERE messenger <> 'telegram'")
    op.execute("DELETE FROM patients WHERE messenger <> 'telegram'")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("messenger")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_constraint("uq_patients_messenger_telegram_id", type_="unique")
        batch_op.create_unique_constraint("uq_patients_telegram_id", ["telegram_id"])
        batch_op.drop_column("chat_id")
        batch_op.drop_column("messenger")
