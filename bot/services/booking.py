"""Booking duty doctors by their schedule, and the patient's consultations from both paths:
list, cancel (until a cutoff), reschedule (the old slot freed in the same transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.applications import ConsultationStatus, Status, new_video_url
from bot.services.clock import Clock
from bot.services.outbox import Outbox
from bot.services.reminder_plan import ReminderPlan
from bot.storage.db import SessionFactory
from bot.storage.models import (
    Application,
    ApplicationEvent,
    Consultation,
    DutyDoctor,
    DutySlot,
    Patient,
)

SPECIALTIES = ("cardiology", "obgyn", "general")
LIVE = (ConsultationStatus.SCHEDULED, ConsultationStatus.CONFIRMED)
BOOKING_NOTICE = "duty_booking_notice"
CONSULTATION_NOTICE = "consultation_staff_notice"


class BookingRefused(StrEnum):
    TAKEN = "taken"
    GONE = "gone"
    LIMIT = "limit"
    NOT_FOUND = "not_found"
    TOO_LATE = "too_late"
    NOT_LIVE = "not_live"


class BookingError(Exception):
    def __init__(self, reason: BookingRefused, nearest: list[SlotDTO] | None = None) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.nearest = nearest or []


@dataclass(frozen=True, slots=True)
class DoctorDTO:
    id: int
    name: str
    specialty: str
    about: str
    next_free: datetime | None


@dataclass(frozen=True, slots=True)
class SlotDTO:
    id: int
    doctor_id: int
    doctor_name: str
    starts_at: datetime
    duration_minutes: int


#: The video link is shown from a little before the start, through the consultation (a
#: consultation that has begun keeps its link), and not past this long after the start.
LINK_OPENS_BEFORE = timedelta(minutes=15)
LINK_CLOSES_AFTER_START = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class MyConsultation:
    id: int
    starts_at: datetime
    status: ConsultationStatus
    video_url: str
    doctor_id: int | None
    doctor_name: str | None
    center_code: str | None
    application_id: int | None
    cancel_until: datetime  # the last moment the patient may still cancel or move it
    duration_minutes: int = 30

    @property
    def duty(self) -> bool:
        return self.application_id is None

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)

    def current(self, now: datetime) -> bool:
        """Still ahead or under way: a consultation that has begun stays the patient's current
        one (with its join button) until its end."""
        return self.status in LIVE and now < self.ends_at

    def started(self, now: datetime) -> bool:
        return self.starts_at <= now

    def upcoming(self, now: datetime) -> bool:
        """Current and not begun: what the patient may still try to cancel or move (the
        service refuses past ``cancel_until`` and says why)."""
        return self.current(now) and not self.started(now)

    def may_cancel(self, now: datetime) -> bool:
        """Cancelling (or moving) is still allowed: the cutoff before the start is not reached."""
        return now <= self.cancel_until

    def link_open(self, now: datetime) -> bool:
        """The video link is given: from ``LINK_OPENS_BEFORE`` the start, through the
        consultation itself, while it is neither cancelled nor over."""
        opens, closes = self.starts_at - LINK_OPENS_BEFORE, self.starts_at + LINK_CLOSES_AFTER_START
        return self.current(now) and opens <= now < closes


class BookingService:
    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        *,
        video_base_url: str,
        max_future_bookings: int,
        cancel_cutoff: timedelta,
        duty_chat_id: int | None,
        horizon: timedelta = timedelta(days=30),
        reminders: ReminderPlan | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._video_base_url = video_base_url
        self.max_future_bookings = max_future_bookings
        self.cancel_cutoff = cancel_cutoff
        self._duty_chat_id = duty_chat_id
        self._horizon = horizon
        self._reminders = reminders or ReminderPlan(duty_chat_id=duty_chat_id)

    def cancel_until(self, starts_at: datetime) -> datetime:
        """The rule of the cutoff: a consultation may be cancelled or moved by the patient
        until ``cancel_cutoff`` before its start, not later."""
        return starts_at - self.cancel_cutoff

    # --- free slots --------------------------------------------------------------------------

    def _free_slots_query(self, specialty: str, doctor_id: int, now: datetime):  # type: ignore[no-untyped-def]
        booked = select(Consultation.slot_id).where(Consultation.slot_id.is_not(None))
        query = (
            select(DutySlot, DutyDoctor.display_name)
            .join(DutyDoctor, DutyDoctor.id == DutySlot.doctor_id)
            .where(
                DutyDoctor.active.is_(True),
                DutyDoctor.specialty == specialty,
                DutySlot.starts_at > now,
                DutySlot.starts_at < now + self._horizon,
                DutySlot.id.not_in(booked),
            )
            .order_by(DutySlot.starts_at, DutySlot.id)
        )
        if doctor_id:
            query = query.where(DutyDoctor.id == doctor_id)
        return query

    async def doctors(self, specialty: str) -> list[DoctorDTO]:
        now = self._clock()
        async with self._sessions() as session:
            doctors = list(
                await session.scalars(
                    select(DutyDoctor)
                    .where(DutyDoctor.active.is_(True), DutyDoctor.specialty == specialty)
                    .order_by(DutyDoctor.display_name)
                )
            )
            result = []
            for doctor in doctors:
                first = (
                    await session.execute(
                        self._free_slots_query(specialty, doctor.id, now).limit(1)
                    )
                ).first()
                result.append(
                    DoctorDTO(
                        doctor.id,
                        doctor.display_name,
                        doctor.specialty,
                        doctor.about,
                        first[0].starts_at if first else None,
                    )
                )
            return result

    async def free_slots(self, specialty: str, doctor_id: int, limit: int = 500) -> list[SlotDTO]:
        now = self._clock()
        async with self._sessions() as session:
            rows = await session.execute(
                self._free_slots_query(specialty, doctor_id, now).limit(limit)
            )
            return [
                SlotDTO(slot.id, slot.doctor_id, name, slot.starts_at, slot.duration_minutes)
                for slot, name in rows
            ]

    async def free_days(self, specialty: str, doctor_id: int, tz: str) -> list[date]:
        zone = ZoneInfo(tz)
        days = {
            slot.starts_at.astimezone(zone).date()
            for slot in await self.free_slots(specialty, doctor_id)
        }
        return sorted(days)

    async def slots_on(self, specialty: str, doctor_id: int, day: date, tz: str) -> list[SlotDTO]:
        zone = ZoneInfo(tz)
        return [
            s
            for s in await self.free_slots(specialty, doctor_id)
            if s.starts_at.astimezone(zone).date() == day
        ]

    async def doctors_specialty(self, doctor_id: int) -> str | None:
        async with self._sessions() as session:
            doctor = await session.get(DutyDoctor, doctor_id)
            return doctor.specialty if doctor is not None and doctor.active else None

    async def slot(self, slot_id: int) -> tuple[SlotDTO, str] | None:
        """A slot with its doctor's specialty, or None if it does not exist."""
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(DutySlot, DutyDoctor)
                    .join(DutyDoctor, DutyDoctor.id == DutySlot.doctor_id)
                    .where(DutySlot.id == slot_id)
                )
            ).first()
            if row is None:
                return None
            slot, doctor = row
            return (
                SlotDTO(
                    slot.id,
                    slot.doctor_id,
                    doctor.display_name,
                    slot.starts_at,
                    slot.duration_minutes,
                ),
                doctor.specialty,
            )

    # --- booking -----------------------------------------------------------------------------

    async def book(self, patient_id: int, slot_id: int) -> MyConsultation:
        """Exactly one of two patients confirming the same slot gets it: the database refuses
        the second (consultations.slot_id is unique); the loser gets the nearest free slots."""
        now = self._clock()
        found = await self.slot(slot_id)
        if found is None or found[0].starts_at <= now:
            raise BookingError(BookingRefused.GONE)
        slot, specialty = found
        try:
            async with self._sessions.begin() as session:
                await self._check_limit(session, patient_id, now, ignore=None)
                consultation = self._new_consultation(patient_id, slot, now)
                session.add(consultation)
                await session.flush()
                await self._schedule_reminders(session, consultation, now)
                self._notify_duty_chat(session, consultation.id, "booked", now)
                return self._mine(consultation, slot.doctor_name)
        except IntegrityError:
            nearest = await self.free_slots(specialty, 0, limit=3)
            raise BookingError(BookingRefused.TAKEN, nearest) from None

    async def reschedule(
        self, patient_id: int, consultation_id: int, new_slot_id: int
    ) -> MyConsultation:
        """Move a duty booking to another free slot; the old slot is freed in the same
        transaction (nothing changes if the new one was just taken)."""
        now = self._clock()
        found = await self.slot(new_slot_id)
        if found is None or found[0].starts_at <= now:
            raise BookingError(BookingRefused.GONE)
        slot, specialty = found
        try:
            async with self._sessions.begin() as session:
                old = await self._own_live(session, patient_id, consultation_id, now)
                if old.application_id is not None:
                    raise BookingError(BookingRefused.NOT_FOUND)
                old.status = ConsultationStatus.CANCELLED
                old.cancel_reason = "rescheduled"
                old.cancelled_at = now
                old.slot_id = None
                await self._reminders.unschedule(session, old.id)
                await session.flush()
                consultation = self._new_consultation(patient_id, slot, now)
                session.add(consultation)
                await session.flush()
                await self._schedule_reminders(session, consultation, now)
                self._notify_duty_chat(session, consultation.id, "rescheduled", now)
                return self._mine(consultation, slot.doctor_name)
        except IntegrityError:
            nearest = await self.free_slots(specialty, 0, limit=3)
            raise BookingError(BookingRefused.TAKEN, nearest) from None

    async def cancel(self, patient_id: int, consultation_id: int, reason: str) -> MyConsultation:
        now = self._clock()
        async with self._sessions.begin() as session:
            consultation = await self._own_live(session, patient_id, consultation_id, now)
            consultation.status = ConsultationStatus.CANCELLED
            consultation.cancel_reason = reason[:64]
            consultation.cancelled_at = now
            consultation.slot_id = None
            await self._reminders.unschedule(session, consultation.id)
            if consultation.application_id is not None:
                await self._reopen_application(session, consultation.application_id, reason, now)
            else:
                self._notify_duty_chat(session, consultation.id, "cancelled", now)
            name = await self._doctor_name(session, consultation.doctor_id)
            return self._mine(consultation, name)

    async def _own_live(
        self, session: AsyncSession, patient_id: int, consultation_id: int, now: datetime
    ) -> Consultation:
        consultation = await session.get(Consultation, consultation_id)
        if consultation is None or consultation.patient_id != patient_id:
            raise BookingError(BookingRefused.NOT_FOUND)
        if consultation.status not in LIVE or consultation.starts_at <= now:
            raise BookingError(BookingRefused.NOT_LIVE)
        if now > self.cancel_until(consultation.starts_at):
            raise BookingError(BookingRefused.TOO_LATE)
        return consultation

    async def _schedule_reminders(
        self, session: AsyncSession, consultation: Consultation, now: datetime
    ) -> None:
        patient = await session.get(Patient, consultation.patient_id)
        assert patient is not None
        self._reminders.schedule(session, consultation, patient, self._duty_chat_id, now)

    async def _check_limit(
        self, session: AsyncSession, patient_id: int, now: datetime, ignore: int | None
    ) -> None:
        query = select(func.count()).where(
            Consultation.patient_id == patient_id,
            Consultation.application_id.is_(None),
            Consultation.status.in_(LIVE),
            Consultation.starts_at > now,
        )
        if ignore is not None:
            query = query.where(Consultation.id != ignore)
        if (await session.scalar(query) or 0) >= self.max_future_bookings:
            raise BookingError(BookingRefused.LIMIT)

    def _new_consultation(self, patient_id: int, slot: SlotDTO, now: datetime) -> Consultation:
        return Consultation(
            patient_id=patient_id,
            application_id=None,
            doctor_id=slot.doctor_id,
            slot_id=slot.id,
            starts_at=slot.starts_at,
            duration_minutes=slot.duration_minutes,
            video_url=new_video_url(self._video_base_url),
            status=ConsultationStatus.SCHEDULED,
            created_at=now,
        )

    async def _reopen_application(
        self, session: AsyncSession, application_id: int, reason: str, now: datetime
    ) -> None:
        """A center consultation cancelled by the patient: the application goes back to the
        doctors (under review) with the reason on its timeline and card."""
        application = await session.get(Application, application_id)
        if application is None:
            return
        await session.execute(
            update(Application)
            .where(Application.id == application_id, Application.status == Status.TIME_ASSIGNED)
            .values(status=Status.UNDER_REVIEW, status_note=reason, updated_at=now)
        )
        session.add(
            ApplicationEvent(
                application_id=application_id, status=Status.UNDER_REVIEW, note=reason, at=now
            )
        )
        Outbox.job(
            session,
            kind="application_staff_notice",
            payload={"application_id": application_id, "event": "patient_cancelled"},
            chat_id=application.staff_chat_id,
            now=now,
        )
        Outbox.job(
            session,
            kind="application_card_refresh",
            payload={"application_id": application_id},
            chat_id=application.staff_chat_id,
            now=now,
        )

    def _notify_duty_chat(
        self, session: AsyncSession, consultation_id: int, event: str, now: datetime
    ) -> None:
        if self._duty_chat_id is None:
            return
        Outbox.job(
            session,
            kind=BOOKING_NOTICE,
            payload={"consultation_id": consultation_id, "event": event},
            chat_id=self._duty_chat_id,
            now=now,
        )

    async def _doctor_name(self, session: AsyncSession, doctor_id: int | None) -> str | None:
        if doctor_id is None:
            return None
        doctor = await session.get(DutyDoctor, doctor_id)
        return doctor.display_name if doctor else None

    def _mine(
        self, c: Consultation, doctor_name: str | None, center: str | None = None
    ) -> MyConsultation:
        return MyConsultation(
            id=c.id,
            starts_at=c.starts_at,
            status=ConsultationStatus(c.status),
            video_url=c.video_url,
            doctor_id=c.doctor_id,
            doctor_name=doctor_name,
            center_code=center,
            application_id=c.application_id,
            cancel_until=self.cancel_until(c.starts_at),
            duration_minutes=c.duration_minutes or 30,
        )

    # --- the patient's consultations ---------------------------------------------------------

    async def mine(self, patient_id: int) -> list[MyConsultation]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(Consultation, DutyDoctor.display_name, Application.center_code)
                .outerjoin(DutyDoctor, DutyDoctor.id == Consultation.doctor_id)
                .outerjoin(Application, Application.id == Consultation.application_id)
                .where(Consultation.patient_id == patient_id)
                .order_by(Consultation.starts_at.desc())
            )
            return [self._mine(c, name, center) for c, name, center in rows]

    async def get_mine(self, patient_id: int, consultation_id: int) -> MyConsultation:
        for item in await self.mine(patient_id):
            if item.id == consultation_id:
                return item
        raise BookingError(BookingRefused.NOT_FOUND)

    async def booking_notice_data(
        self, consultation_id: int
    ) -> tuple[MyConsultation, Patient] | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(Consultation, Patient, DutyDoctor.display_name)
                    .join(Patient, Patient.id == Consultation.patient_id)
                    .outerjoin(DutyDoctor, DutyDoctor.id == Consultation.doctor_id)
                    .where(Consultation.id == consultation_id)
                )
            ).first()
            if row is None:
                return None
            consultation, patient, name = row
            return self._mine(consultation, name), patient

    def before_cancel_cutoff(self, starts_at: datetime, now: datetime) -> bool:
        """The consultation starting at ``starts_at`` may still be cancelled or moved by the
        patient (the reminders' buttons ask this; «Мои консультации» asks its DTO)."""
        return now <= self.cancel_until(starts_at)
