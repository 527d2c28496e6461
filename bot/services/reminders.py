"""The consultation day: the calendar file, the patient's reminders, the doctors' heads-up, the
patient's answers to the reminders and the doctors' "did not attend" mark.

Every reminder is an outbox row with a due time, written in the transaction that books or
assigns the consultation and grouped by ``group_key(consultation_id)``: cancelling, moving or
closing the consultation cancels the group in the same transaction. Each row also carries an
``expires_at`` (the start for the questions, the end for the video link), so a reminder the bot
could not send in time (it was down) is recorded as missed instead of arriving late. The texts
are rendered at delivery (bot.delivery.consultation_day), in the recipient's language, from the
current state; a row whose consultation is no longer live by then is skipped."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.applications import CARD_REFRESH, ConsultationStatus
from bot.services.audit import Action, Actor, record
from bot.services.clock import Clock
from bot.services.outbox import Outbox
from bot.services.reminder_plan import (
    ANSWER_NOTICE,
    CONSULTATION_DOCUMENTS,
    NO_SHOW_ALERT,
    ReminderPlan,
    ends_at,
)
from bot.storage.db import SessionFactory
from bot.storage.models import Application, Consultation, Document, DutyDoctor, Patient
from bot.storage.outbox_models import OutboxMessage

log = logging.getLogger(__name__)

LIVE = (ConsultationStatus.SCHEDULED, ConsultationStatus.CONFIRMED)


class Answer(StrEnum):
    """The patient's answer to a reminder."""

    ATTEND = "yes"
    CANNOT = "no"


class Refusal(StrEnum):
    NOT_FOUND = "not_found"
    NOT_LIVE = "not_live"  # cancelled, moved, done, or not attended
    STARTED = "started"
    ALREADY = "already"  # a no-show already marked
    TOO_EARLY = "too_early"


class DayError(Exception):
    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DayConsultation:
    """A consultation with what the consultation-day messages show."""

    id: int
    starts_at: datetime
    ends_at: datetime
    status: ConsultationStatus
    video_url: str
    patient_id: int
    patient_telegram_id: int
    patient_name: str
    patient_birth_date: date
    patient_region: int
    patient_time_zone: str
    patient_locale: str | None
    doctor_name: str | None
    application_id: int | None
    center_code: str | None
    diagnosis: str | None
    staff_chat_id: int | None
    staff_thread_id: int | None

    @property
    def duty(self) -> bool:
        return self.application_id is None

    @property
    def live(self) -> bool:
        return self.status in LIVE

    def refusal_to_move(self, patient_id: int, now: datetime) -> Refusal | None:
        """Why this patient may not ask to move it now (None: they may; the cancel cutoff is
        BookingService's rule)."""
        if self.patient_id != patient_id:
            return Refusal.NOT_FOUND
        if not self.live:
            return Refusal.NOT_LIVE
        if self.starts_at <= now:
            return Refusal.STARTED
        return None


@dataclass(frozen=True, slots=True)
class AnswerResult:
    consultation: DayConsultation
    first: bool  # False: the same answer to the same reminder was already given


@dataclass(frozen=True, slots=True)
class NoShowResult:
    consultation: DayConsultation
    missed: int  # consultations this patient has not attended, this one included
    alerted: bool  # coordinators were alerted by this mark


@dataclass
class ReminderService:
    """The patient's answers, the doctors' no-show mark, and the data the messages show."""

    sessions: SessionFactory
    clock: Clock
    plan: ReminderPlan
    coordinator_ids: frozenset[int] = field(default_factory=frozenset)
    no_show_alert_after: int = 2

    async def get(self, consultation_id: int) -> DayConsultation | None:
        async with self.sessions() as session:
            return await self._load(session, consultation_id)

    async def _load(self, session: AsyncSession, consultation_id: int) -> DayConsultation | None:
        row = (
            await session.execute(
                select(Consultation, Patient, DutyDoctor.display_name, Application)
                .join(Patient, Patient.id == Consultation.patient_id)
                .outerjoin(DutyDoctor, DutyDoctor.id == Consultation.doctor_id)
                .outerjoin(Application, Application.id == Consultation.application_id)
                .where(Consultation.id == consultation_id)
            )
        ).first()
        if row is None:
            return None
        c, p, doctor, application = row
        if application is not None:
            chat_id: int | None = application.staff_chat_id
            thread_id = application.staff_thread_id
        else:
            chat_id, thread_id = self.plan.duty_chat_id, None
        return DayConsultation(
            id=c.id,
            starts_at=c.starts_at,
            ends_at=ends_at(c),
            status=ConsultationStatus(c.status),
            video_url=c.video_url,
            patient_id=p.id,
            patient_telegram_id=p.telegram_id,
            patient_name=p.full_name,
            patient_birth_date=p.birth_date,
            patient_region=p.region_code,
            patient_time_zone=p.time_zone,
            patient_locale=p.locale,
            doctor_name=doctor,
            application_id=c.application_id,
            center_code=application.center_code if application is not None else None,
            diagnosis=application.diagnosis if application is not None else None,
            staff_chat_id=chat_id,
            staff_thread_id=thread_id,
        )

    # --- the patient answers a reminder ------------------------------------------------------

    async def answer(
        self, patient_id: int, consultation_id: int, minutes: int, answer: Answer
    ) -> AnswerResult:
        """ "Буду" (a scheduled consultation becomes confirmed) or "Не смогу" (the cancel flow
        follows in the chat): the doctors' chat is told, once per reminder and answer."""
        now = self.clock()
        if minutes not in self.plan.minutes:
            minutes = 0  # a forged or outdated reminder: one notice per answer, not per number
        async with self.sessions.begin() as session:
            consultation = await session.get(Consultation, consultation_id)
            if consultation is None or consultation.patient_id != patient_id:
                raise DayError(Refusal.NOT_FOUND)
            if consultation.status not in LIVE:
                raise DayError(Refusal.NOT_LIVE)
            if consultation.starts_at <= now:
                raise DayError(Refusal.STARTED)
            if answer is Answer.ATTEND and consultation.status == ConsultationStatus.SCHEDULED:
                consultation.status = ConsultationStatus.CONFIRMED
            key = f"answer:{consultation_id}:{minutes}:{answer.value}"
            first = (
                await session.scalar(select(func.count()).where(OutboxMessage.dedup_key == key))
                or 0
            ) == 0
            day = await self._load(session, consultation_id)
            assert day is not None
            if first and day.staff_chat_id is not None:
                Outbox.job(
                    session,
                    kind=ANSWER_NOTICE,
                    payload={"consultation_id": consultation_id, "answer": answer.value},
                    chat_id=day.staff_chat_id,
                    dedup_key=key,
                    now=now,
                )
                if day.application_id is not None:
                    Outbox.job(
                        session,
                        kind=CARD_REFRESH,
                        payload={"application_id": day.application_id},
                        chat_id=day.staff_chat_id,
                        now=now,
                    )
            return AnswerResult(day, first)

    # --- the doctors mark a no-show ----------------------------------------------------------

    async def mark_no_show(
        self, consultation_id: int, chat_id: int, *, by: Actor | None = None
    ) -> NoShowResult:
        """The patient did not attend: only from the consultation's own staff chat (the
        caller checks the presser is a member), from its start on, once. After
        ``no_show_alert_after`` such consultations the coordinators are alerted, once."""
        now = self.clock()
        async with self.sessions.begin() as session:
            day = await self._load(session, consultation_id)
            if day is None or day.staff_chat_id != chat_id:
                raise DayError(Refusal.NOT_FOUND)
            if day.status == ConsultationStatus.NO_SHOW:
                raise DayError(Refusal.ALREADY)
            if not day.live:
                raise DayError(Refusal.NOT_LIVE)
            if now < day.starts_at:
                raise DayError(Refusal.TOO_EARLY)
            result = await session.execute(
                update(Consultation)
                .where(Consultation.id == consultation_id, Consultation.status.in_(LIVE))
                .values(status=ConsultationStatus.NO_SHOW)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise DayError(Refusal.ALREADY)
            await self.plan.unschedule(session, consultation_id)
            missed = (
                await session.scalar(
                    select(func.count()).where(
                        Consultation.patient_id == day.patient_id,
                        Consultation.status == ConsultationStatus.NO_SHOW,
                    )
                )
                or 0
            )
            alerted = False
            if missed >= self.no_show_alert_after:
                for coordinator in sorted(self.coordinator_ids):
                    key = f"noshow:{day.patient_id}:{coordinator}"
                    exists = await session.scalar(
                        select(func.count()).where(OutboxMessage.dedup_key == key)
                    )
                    if exists:
                        continue
                    Outbox.job(
                        session,
                        kind=NO_SHOW_ALERT,
                        payload={"patient_id": day.patient_id, "missed": missed},
                        chat_id=coordinator,
                        dedup_key=key,
                        now=now,
                    )
                    alerted = True
            if day.application_id is not None:
                Outbox.job(
                    session,
                    kind=CARD_REFRESH,
                    payload={"application_id": day.application_id},
                    chat_id=chat_id,
                    now=now,
                )
            record(
                session,
                by,
                Action.NO_SHOW_MARKED,
                now,
                patient_id=day.patient_id,
                application_id=day.application_id,
                consultation_id=consultation_id,
                detail=missed,
            )
            log.info(
                "consultation %s marked not attended (patient %s)", consultation_id, day.patient_id
            )
            marked = await self._load(session, consultation_id)
            assert marked is not None
            return NoShowResult(marked, missed, alerted)

    async def resend_documents(self, consultation_id: int, chat_id: int, by: Actor) -> int:
        """A doctor asked for the patient's documents on a consultation's heads-up: only from
        the consultation's own staff chat (the caller checks membership). The viewing is
        audited and the documents are queued for the chat in one transaction; returns how
        many documents the patient has."""
        now = self.clock()
        async with self.sessions.begin() as session:
            day = await self._load(session, consultation_id)
            if day is None or day.staff_chat_id != chat_id:
                raise DayError(Refusal.NOT_FOUND)
            count = int(
                await session.scalar(
                    select(func.count()).where(Document.patient_id == day.patient_id)
                )
                or 0
            )
            record(
                session,
                by,
                Action.DOCUMENTS_VIEWED,
                now,
                patient_id=day.patient_id,
                application_id=day.application_id,
                consultation_id=consultation_id,
                detail=count,
            )
            if count:
                Outbox.job(
                    session,
                    kind=CONSULTATION_DOCUMENTS,
                    payload={"consultation_id": consultation_id},
                    chat_id=chat_id,
                    now=now,
                )
            return count

    async def missed_count(self, patient_id: int) -> int:
        async with self.sessions() as session:
            return int(
                await session.scalar(
                    select(func.count()).where(
                        Consultation.patient_id == patient_id,
                        Consultation.status == ConsultationStatus.NO_SHOW,
                    )
                )
                or 0
            )

    async def patient(self, patient_id: int) -> tuple[str, str] | None:
        """The patient's name and phone (for the coordinators' alert), or None if erased."""
        async with self.sessions() as session:
            patient = await session.get(Patient, patient_id)
            return (patient.full_name, patient.phone) if patient is not None else None
