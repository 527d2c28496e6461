"""audit trail: who did what to which objects, when, from which chat

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


# True when an UPDATE changes anything but the pseudonymisation of actor, chat or patient.
CHANGED = (
    "NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.role IS NOT OLD.role"
    " OR NEW.action IS NOT OLD.action OR NEW.application_id IS NOT OLD.application_id"
    " OR NEW.consultation_id IS NOT OLD.consultation_id OR NEW.object_id IS NOT OLD.object_id"
    " OR NEW.detail IS NOT OLD.detail"
    " OR (NEW.actor IS NOT OLD.actor AND NEW.actor NOT LIKE 'erased:%')"
    " OR (NEW.chat IS NOT OLD.chat AND NEW.chat NOT LIKE 'erased:%')"
    " OR (NEW.patient IS NOT OLD.patient AND NEW.patient NOT LIKE 'erased:%')"
)
PG_FUNCTION = f"""
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF {CHANGED.replace(" IS NOT ", " IS DISTINCT FROM ")} THEN
        RAISE EXCEPTION 'audit_log is append-only';
    END IF;
    RETURN NEW;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("chat", sa.String(length=64), nullable=True),
        sa.Column("patient", sa.String(length=64), nullable=True),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("consultation_id", sa.Integer(), nullable=True),
        sa.Column("object_id", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_actor"), "audit_log", ["actor"])
    op.create_index(op.f("ix_audit_log_patient"), "audit_log", ["patient"])
    # Append-only in the database too: a row may only have its ids replaced by an erased
    # patient's pseudonym (and be deleted by the retention purge); any other change fails.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log "
            f"WHEN {CHANGED} BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only")
    op.drop_index(op.f("ix_audit_log_patient"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_actor"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
