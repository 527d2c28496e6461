"""The outbox table: every message that is not the direct answer to an update, written in the
transaction of the change that caused it and delivered later by ``OutboxSender``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from bot.storage.models import Base, Patient


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for its due time (or for a retry)
    SENDING = "sending"  # claimed by a sender; the HTTP call is in flight
    SENT = "sent"
    FAILED = "failed"  # last_error says why
    CANCELLED = "cancelled"  # by cancel_group, or because the chat blocked the bot
    MISSED = "missed"  # its ``expires_at`` passed before it could be sent: not sent late


class OutboxMessage(Base):
    """One Bot API call (kind "api") or one registered job to deliver at ``due_at``.

    ``payload`` holds personal data (message texts): it is never logged; ``last_error`` is a
    short code, never a Telegram description. Rows of an erased patient go with the patient.
    """

    __tablename__ = "outbox"
    # The sender's question is "pending rows due by now, oldest first".
    __table_args__ = (Index("ix_outbox_status_due_at", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    method: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    chat_id: Mapped[int] = mapped_column(BigInteger, index=True)
    #: Which bot delivers it: "telegram" or "max" (the chat id is that messenger's).
    messenger: Mapped[str] = mapped_column(
        String(16), default="telegram", server_default="telegram"
    )
    patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    due_at: Mapped[datetime]
    # After this moment the row is no longer worth sending (a reminder of a consultation that
    # has begun): the sender marks it missed instead. None: worth sending whenever it can.
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    result_message_id: Mapped[int | None] = mapped_column(BigInteger)
    dedup_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    group_key: Mapped[str | None] = mapped_column(String(128), index=True)


@event.listens_for(OutboxMessage, "init")
def _telegram_unless_told(target: OutboxMessage, _args: Any, kwargs: dict[str, Any]) -> None:
    """A row made without a messenger is Telegram's (the writers predate MAX, and the keyed
    insert copies every attribute, so the column default would not apply)."""
    kwargs.setdefault("messenger", "telegram")


def _address_by_messenger(session: Session, _context: Any, _instances: Any) -> None:
    """A patient is (messenger, user id): a row written to a MAX patient's user id (the writers
    speak of patients by ``telegram_id``) goes to their MAX dialog, delivered by the MAX bot.
    One query per flush (a broadcast writes thousands of rows in one)."""
    rows = [
        row
        for row in session.new
        if isinstance(row, OutboxMessage)
        and row.patient_id is not None
        and row.messenger in (None, "telegram")
    ]
    if not rows:
        return
    ids = {row.patient_id for row in rows}
    elsewhere = {
        patient_id: (messenger, user_id, chat_id)
        for patient_id, messenger, user_id, chat_id in session.execute(
            select(Patient.id, Patient.messenger, Patient.telegram_id, Patient.chat_id).where(
                Patient.id.in_(ids), Patient.messenger != "telegram"
            )
        )
    }
    for row in rows:
        found = elsewhere.get(row.patient_id) if row.patient_id is not None else None
        if found is not None and row.chat_id == found[1] and found[2] is not None:
            row.messenger, row.chat_id = found[0], found[2]


# Before the outbox's own before_flush (bot.services.outbox), which inserts keyed rows itself.
event.listen(Session, "before_flush", _address_by_messenger, insert=True)
