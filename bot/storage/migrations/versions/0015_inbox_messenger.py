"""inbox per messenger: MAX updates go through the inbox too; a row is (messenger, update_id)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 17:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every row stored so far is Telegram's (MAX updates bypassed the inbox before).
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("messenger", sa.String(length=16), nullable=False, server_default="telegram")
        )
        batch_op.drop_constraint("pk_inbox", type_="primary")
        batch_op.create_primary_key("pk_inbox", ["messenger", "update_id"])


def downgrade() -> None:
    # A Telegram-only inbox cannot keep MAX rows (their ids could clash with Telegram's): they go,
    # as when MAX's updates were handled without the inbox.
    op.execute("DELETE FROM inbox WHERE messenger <> 'telegram'")
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_constraint("pk_inbox", type_="primary")
        batch_op.create_primary_key("pk_inbox", ["update_id"])
        batch_op.drop_column("messenger")
