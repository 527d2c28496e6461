"""Tables of the scheduler: the lease that lets one scheduler run at a time, the last run of
daily jobs, and the last SLA escalation of each application (so a restart never repeats one)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base


class Lease(Base):
    """A named lease: ``holder`` runs the thing named until ``expires_at`` unless it renews."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class JobRun(Base):
    """The last period (e.g. a local date) a periodic job ran for: claimed with a conditional
    UPDATE, so a job runs once per period however many schedulers or restarts there are."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(32))
    ran_at: Mapped[datetime]


class SlaEscalation(Base):
    """The last time an application waiting for a decision was escalated, and how often."""

    __tablename__ = "sla_escalations"

    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    escalations: Mapped[int] = mapped_column(Integer)
    last_escalated_at: Mapped[datetime]
