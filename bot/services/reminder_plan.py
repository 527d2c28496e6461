"""What is scheduled for every consultation when it is booked or assigned: the calendar file,
the patient's reminders and the doctors' heads-up, as outbox rows of one group per consultation
(see bot.services.reminders for the whole consultation day)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.outbox import Outbox
from bot.storage.models import Consultation, Patient

# Outbox job kinds, delivered by bot.delivery.consultation_day.
CALENDAR = "consultation_calendar"
REMINDER = "consultation_reminder"
HEADSUP = "consultation_headsup"
ANSWER_NOTICE = "consultation_answer_notice"
NO_SHOW_ALERT = "no_show_alert"
# a doctor pressed «📎 Документы пациента» on a heads-up: the documents go into its topic
CONSULTATION_DOCUMENTS = "consultation_documents"


def group_key(consultation_id: int) -> str:
    """The outbox group of everything scheduled for one consultation."""
    return f"consultation:{consultation_id}"


def ends_at(consultation: Consultation) -> datetime:
    return consultation.starts_at + timedelta(minutes=consultation.duration_minutes or 30)


@dataclass(frozen=True, slots=True)
class ReminderPlan:
    """What is scheduled for every consultation (from the settings)."""

    offsets: tuple[timedelta, ...] = (
        timedelta(hours=24),
        timedelta(hours=2),
        timedelta(minutes=15),
    )
    headsup: timedelta | None = timedelta(minutes=10)
    duty_chat_id: int | None = None

    @classmethod
    def from_minutes(
        cls, offsets: tuple[int, ...], headsup: int, duty_chat_id: int | None
    ) -> ReminderPlan:
        return cls(
            offsets=tuple(timedelta(minutes=m) for m in sorted(set(offsets), reverse=True)),
            headsup=timedelta(minutes=headsup) if headsup > 0 else None,
            duty_chat_id=duty_chat_id,
        )

    @property
    def minutes(self) -> frozenset[int]:
        return frozenset(int(offset.total_seconds() // 60) for offset in self.offsets)

    @property
    def link_offset(self) -> timedelta | None:
        """The smallest offset: its reminder brings the video link."""
        return min(self.offsets) if self.offsets else None

    def schedule(
        self,
        session: AsyncSession,
        consultation: Consultation,
        patient: Patient,
        staff_chat_id: int | None,
        now: datetime,
    ) -> int:
        """Write the calendar file, the reminders and the heads-up of a consultation just
        booked or assigned (in the caller's transaction); returns how many rows. Questions
        whose time has passed are skipped; the link and the heads-up, when their time has
        passed but the consultation has not begun, go at once."""
        cid = consultation.id
        start, end = consultation.starts_at, ends_at(consultation)

        def add(
            kind: str,
            payload: dict[str, Any],
            chat_id: int,
            due: datetime,
            key: str,
            until: datetime,
        ) -> None:
            # The patient's rows are erased with the patient. The doctors' heads-up is not in
            # the patient's chat (a 403 there must not mark the patient unreachable): it holds
            # the consultation id only and is skipped at delivery once the consultation is gone.
            Outbox.job(
                session,
                kind=kind,
                payload={"consultation_id": cid, **payload},
                chat_id=chat_id,
                patient_id=patient.id if chat_id == patient.telegram_id else None,
                due_at=due,
                dedup_key=key,
                group_key=group_key(cid),
                expires_at=until,
                now=now,
            )

        add(CALENDAR, {}, patient.telegram_id, now, f"ics:{cid}", end)
        written = 1
        for offset in self.offsets:
            minutes = int(offset.total_seconds() // 60)
            link = offset == self.link_offset
            due = start - offset
            if due <= now and not (link and now < start):
                continue
            add(
                REMINDER,
                {"minutes": minutes, "link": link},
                patient.telegram_id,
                max(due, now),
                f"remind:{cid}:{minutes}",
                end if link else start,
            )
            written += 1
        if self.headsup is not None and staff_chat_id is not None and now < start:
            add(HEADSUP, {}, staff_chat_id, max(start - self.headsup, now), f"headsup:{cid}", end)
            written += 1
        return written

    @staticmethod
    async def unschedule(session: AsyncSession, consultation_id: int) -> int:
        """Cancel what is still pending for the consultation (in the caller's transaction)."""
        return await Outbox.cancel_group(session, group_key(consultation_id))
