"""chat with the duty doctors: patients' topics and relayed message pairs

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relay_threads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=True),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_relay_threads_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relay_threads")),
        sa.UniqueConstraint(
            "patient_id", "chat_id", name=op.f("uq_relay_threads_patient_id_chat_id")
        ),
    )
    with op.batch_alter_table("relay_threads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_relay_threads_chat_id_thread_id", ["chat_id", "thread_id"], unique=False
        )

    op.create_table(
        "relay_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("patient_message_id", sa.BigInteger(), nullable=False),
        sa.Column("staff_message_id", sa.BigInteger(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_relay_messages_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relay_messages")),
        sa.UniqueConstraint(
            "chat_id", "staff_message_id", name=op.f("uq_relay_messages_chat_id_staff_message_id")
        ),
    )
    with op.batch_alter_table("relay_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_relay_messages_patient_id_created_at", ["patient_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_relay_messages_patient_id_patient_message_id",
            ["patient_id", "patient_message_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("relay_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_relay_messages_patient_id_patient_message_id")
        batch_op.drop_index("ix_relay_messages_patient_id_created_at")
    op.drop_table("relay_messages")

    with op.batch_alter_table("relay_threads", schema=None) as batch_op:
        batch_op.drop_index("ix_relay_threads_chat_id_thread_id")
    op.drop_table("relay_threads")
