"""One-time codes that move a patient to their other messenger (Telegram ↔ MAX): asked for on
one side, entered on the other. Only the SHA-256 of a code is kept; a code goes with the
patient (ON DELETE CASCADE)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base


class LinkCode(Base):
    """A code issued to the patient on ``messenger`` as ``user_id`` (who they were when they
    asked): it moves them only while they still are, once, before ``expires_at``."""

    __tablename__ = "link_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    messenger: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
