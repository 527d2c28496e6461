"""Tables of the chat with the duty doctors: each patient's topic in the duty chat and the pairs
of messages (the patient's side ↔ the doctors' side) that keep replies and edits in step.

Both go with the patient (ON DELETE CASCADE): no text is stored, only Telegram message ids."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base


class RelayThread(Base):
    """Where a patient's messages go in a duty chat: their forum topic (``thread_id``), or the
    chat itself when it has no topics (``thread_id`` NULL)."""

    __tablename__ = "relay_threads"
    __table_args__ = (
        UniqueConstraint("patient_id", "chat_id"),
        Index("ix_relay_threads_chat_id_thread_id", "chat_id", "thread_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RelayMessage(Base):
    """One relayed message: its id in the patient's private chat and its id in the duty chat.

    ``direction``: "in" (the patient wrote, the bot copied it to the doctors) or "out" (a doctor
    wrote, the bot sent it to the patient). ``kind``: "copy" (same content), "signed" (the
    doctor's name put before the text or caption), "header" (the line naming the patient before
    a copy in a chat without topics)."""

    __tablename__ = "relay_messages"
    __table_args__ = (
        UniqueConstraint("chat_id", "staff_message_id"),
        Index(
            "ix_relay_messages_patient_id_patient_message_id", "patient_id", "patient_message_id"
        ),
        Index("ix_relay_messages_patient_id_created_at", "patient_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    patient_message_id: Mapped[int] = mapped_column(BigInteger)
    staff_message_id: Mapped[int] = mapped_column(BigInteger)
    direction: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]
