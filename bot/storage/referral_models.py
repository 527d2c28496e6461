"""Referrals from regional attending doctors (the letter's third path): one row per patient of
an imported spreadsheet, with the hash of their personal deep-link code.

A referral is personal data: it goes with the patient once activated (ON DELETE CASCADE), and
PatientService.erase also removes any referral still waiting under the patient's phone and
birth date."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base


class Referral(Base):
    """A pre-registered patient. ``code_hash`` is the SHA-256 of the link's code (the code
    itself is never stored); it is cleared when the link is used. ``status``: "pending"
    (waiting for the patient) or "activated" (the patient confirmed their phone)."""

    __tablename__ = "referrals"
    __table_args__ = (UniqueConstraint("phone", "birth_date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date] = mapped_column(Date)
    phone: Mapped[str] = mapped_column(String(32))
    region_code: Mapped[int] = mapped_column(Integer)
    center_code: Mapped[str] = mapped_column(String(32))
    disease_group_code: Mapped[str] = mapped_column(String(32))
    diagnosis: Mapped[str] = mapped_column(Text)
    referring_organization: Mapped[str] = mapped_column(String(255))
    referring_doctor: Mapped[str] = mapped_column(String(200), default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    code_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True, default=None
    )
    imported_by: Mapped[int] = mapped_column(BigInteger)  # the coordinator's Telegram id
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    activated_at: Mapped[datetime | None] = mapped_column(default=None)
