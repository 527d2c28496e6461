"""The audit trail: one append-only row per action of staff, coordinators and patients, written
in the transaction of the action. Ids only: never a name, a diagnosis or a message text."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base


class AuditEvent(Base):
    """Who (Telegram id and role), did what, to which objects, when, from which chat.

    ``actor``, ``chat`` and ``patient`` are text: a Telegram id / internal patient id as
    digits, or, once the patient was erased, ``erased:<keyed hash>`` (the same for all rows of
    that patient, joinable by nobody without the key)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    chat: Mapped[str | None] = mapped_column(String(64))
    patient: Mapped[str | None] = mapped_column(String(64), index=True)
    application_id: Mapped[int | None] = mapped_column(Integer)
    consultation_id: Mapped[int | None] = mapped_column(Integer)
    object_id: Mapped[int | None] = mapped_column(BigInteger)
    # A code, never free text: a consent version, a count, a status, a slot's time.
    detail: Mapped[str | None] = mapped_column(String(64))
