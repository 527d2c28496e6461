"""Applications to the federal centers: the patient's side (submit, withdraw, timeline,
confirm a time) and the staff's (review, request documents, assign a time, decline, invite,
conclude). Every change writes its notifications to the outbox in the same transaction."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.catalog import Catalog
from bot.services.audit import Action, Actor, record
from bot.services.clock import Clock
from bot.services.outbox import Outbox
from bot.services.reminder_plan import ReminderPlan
from bot.storage.db import SessionFactory
from bot.storage.models import (
    Application,
    ApplicationEvent,
    Conclusion,
    Consultation,
    Document,
    Patient,
)
from bot.storage.referral_models import Referral


class Status(StrEnum):
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    DOCUMENTS_REQUESTED = "documents_requested"
    TIME_ASSIGNED = "time_assigned"
    DECLINED = "declined"
    INVITED = "invited"
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"


OPEN = frozenset(
    {Status.SUBMITTED, Status.UNDER_REVIEW, Status.DOCUMENTS_REQUESTED, Status.TIME_ASSIGNED}
)
BEFORE_TIME = frozenset({Status.SUBMITTED, Status.UNDER_REVIEW, Status.DOCUMENTS_REQUESTED})
#: The soonest a doctor's calendar offers a consultation time today: the patient needs a moment
#: to read the notice and get ready.
OFFER_LEAD = timedelta(minutes=15)


def first_offered_minute(day: date, now_local: datetime) -> int | None:
    """The first minute of ``day`` (in the clock of ``now_local``) the calendar may offer:
    None for a day gone by, ``OFFER_LEAD`` from now for today, midnight for a later day."""
    if day < now_local.date():
        return None
    if day > now_local.date():
        return 0
    soonest = now_local + OFFER_LEAD
    return soonest.hour * 60 + soonest.minute if soonest.date() == day else 24 * 60


class StaffStep(StrEnum):
    """A doctor's action that takes more than one press (a calendar, a list, a typed reason)."""

    ASSIGN = "assign"
    REQUEST_DOCUMENTS = "request_documents"
    DECLINE = "decline"
    INVITE = "invite"
    CONCLUDE = "conclude"


#: The statuses each step may start from (assigning also from TIME_ASSIGNED when the patient
#: asked for another time). The step itself re-checks when it is done (the conditional UPDATE).
STEP_FROM: dict[StaffStep, frozenset[Status]] = {
    StaffStep.ASSIGN: BEFORE_TIME,
    StaffStep.REQUEST_DOCUMENTS: BEFORE_TIME,
    StaffStep.DECLINE: OPEN,
    StaffStep.INVITE: OPEN,
    StaffStep.CONCLUDE: frozenset({Status.TIME_ASSIGNED}),
}


class ConsultationStatus(StrEnum):
    SCHEDULED = "scheduled"
    CONFIRMED = "confirmed"
    RESCHEDULE_REQUESTED = "reschedule_requested"
    CANCELLED = "cancelled"
    DONE = "done"
    NO_SHOW = "no_show"  # the doctor marked that the patient did not attend


def new_video_url(video_base_url: str) -> str:
    """A fresh room on the video service for one consultation, on either path: the name is
    unguessable, so the link alone admits to it."""
    return f"{video_base_url.rstrip('/')}/oblako-{secrets.token_urlsafe(18)}"


class Refused(StrEnum):
    """Why an action was not done: shown to whoever tried."""

    NOT_FOUND = "not_found"
    ALREADY_OPEN = "already_open"
    WRONG_STATUS = "wrong_status"
    PAST_TIME = "past_time"


class ActionRefusedError(Exception):
    def __init__(self, reason: Refused, status: str | None = None, actor: str | None = None):
        super().__init__(reason.value)
        self.reason = reason
        self.status = status
        self.actor = actor


@dataclass(frozen=True, slots=True)
class Draft:
    center_code: str
    disease_group_code: str
    diagnosis: str
    complaints: str
    missing: tuple[str, ...]
    referral_id: int | None = None  # made from this referral (it must be the patient's)


@dataclass(frozen=True, slots=True)
class ApplicationDTO:
    id: int
    patient_id: int
    center_code: str
    disease_group_code: str
    diagnosis: str
    complaints: str
    missing_at_submit: tuple[str, ...]
    status: Status
    status_note: str | None
    acted_by: str | None
    staff_chat_id: int
    staff_thread_id: int | None
    card_message_id: int | None
    requested_documents: tuple[str, ...]
    created_at: datetime
    referral_id: int | None = None

    @property
    def may_withdraw(self) -> bool:
        """The patient may withdraw it until a time is assigned (``withdraw`` re-checks)."""
        return self.status in BEFORE_TIME


@dataclass(frozen=True, slots=True)
class EventDTO:
    status: Status
    note: str | None
    actor: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ConsultationDTO:
    id: int
    patient_id: int
    application_id: int | None
    starts_at: datetime
    video_url: str
    status: ConsultationStatus


@dataclass(frozen=True, slots=True)
class ConclusionDTO:
    id: int
    application_id: int | None
    text: str | None
    telegram_file_id: str | None
    author: str
    created_at: datetime


def _split(value: str) -> tuple[str, ...]:
    return tuple(v for v in value.split(",") if v)


def _app_dto(a: Application) -> ApplicationDTO:
    return ApplicationDTO(
        id=a.id,
        patient_id=a.patient_id,
        center_code=a.center_code,
        disease_group_code=a.disease_group_code,
        diagnosis=a.diagnosis,
        complaints=a.complaints,
        missing_at_submit=_split(a.missing_at_submit),
        status=Status(a.status),
        status_note=a.status_note,
        acted_by=a.acted_by,
        staff_chat_id=a.staff_chat_id,
        staff_thread_id=a.staff_thread_id,
        card_message_id=a.card_message_id,
        requested_documents=_split(a.requested_documents),
        created_at=a.created_at,
        referral_id=a.referral_id,
    )


def _consultation_dto(c: Consultation) -> ConsultationDTO:
    return ConsultationDTO(
        id=c.id,
        patient_id=c.patient_id,
        application_id=c.application_id,
        starts_at=c.starts_at,
        video_url=c.video_url,
        status=ConsultationStatus(c.status),
    )


# Outbox job kinds rendered and sent by bot.delivery.applications.
CARD = "application_card"
CARD_REFRESH = "application_card_refresh"
PATIENT_NOTICE = "application_patient_notice"
STAFF_NOTICE = "application_staff_notice"


class ApplicationService:
    MAX_DIAGNOSIS = 500
    MAX_COMPLAINTS = 1000

    def __init__(
        self,
        sessions: SessionFactory,
        catalog: Catalog,
        clock: Clock,
        video_base_url: str,
        reminders: ReminderPlan | None = None,
    ) -> None:
        self._sessions = sessions
        self._catalog = catalog
        self._clock = clock
        self._video_base_url = video_base_url
        self._reminders = reminders or ReminderPlan()

    # --- patient side ------------------------------------------------------------------------

    async def open_centers(self, patient_id: int) -> set[str]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Application.center_code).where(
                    Application.patient_id == patient_id, Application.open_center.is_not(None)
                )
            )
            return set(rows)

    async def missing_documents(self, patient_id: int, center_code: str, group: str) -> list[str]:
        center = self._catalog.center(center_code)
        if center is None:
            return []
        async with self._sessions() as session:
            present = set(
                await session.scalars(
                    select(Document.type_code).where(Document.patient_id == patient_id).distinct()
                )
            )
        return [code for code in center.required_documents_for(group) if code not in present]

    async def submit(self, patient_id: int, draft: Draft) -> ApplicationDTO:
        center = self._catalog.center(draft.center_code)
        if center is None or center.disease_group(draft.disease_group_code) is None:
            raise ActionRefusedError(Refused.NOT_FOUND)
        now = self._clock()
        try:
            async with self._sessions.begin() as session:
                referral_id = None
                if draft.referral_id is not None:
                    owner = await session.scalar(
                        select(Referral.patient_id).where(Referral.id == draft.referral_id)
                    )
                    referral_id = draft.referral_id if owner == patient_id else None
                application = Application(
                    referral_id=referral_id,
                    patient_id=patient_id,
                    center_code=center.code,
                    open_center=center.code,
                    disease_group_code=draft.disease_group_code,
                    diagnosis=draft.diagnosis[: self.MAX_DIAGNOSIS],
                    complaints=draft.complaints[: self.MAX_COMPLAINTS],
                    missing_at_submit=",".join(draft.missing),
                    status=Status.SUBMITTED,
                    staff_chat_id=center.staff_chat_id,
                    created_at=now,
                    updated_at=now,
                )
                session.add(application)
                await session.flush()
                session.add(
                    ApplicationEvent(application_id=application.id, status=Status.SUBMITTED, at=now)
                )
                Outbox.job(
                    session,
                    kind=CARD,
                    payload={"application_id": application.id},
                    chat_id=center.staff_chat_id,
                    dedup_key=f"card:{application.id}",
                    now=now,
                )
                return _app_dto(application)
        except IntegrityError:
            raise ActionRefusedError(Refused.ALREADY_OPEN) from None

    async def for_patient(self, patient_id: int) -> list[ApplicationDTO]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Application)
                .where(Application.patient_id == patient_id)
                .order_by(Application.created_at.desc(), Application.id.desc())
            )
            return [_app_dto(a) for a in rows]

    async def get(self, application_id: int, patient_id: int | None = None) -> ApplicationDTO:
        """The application; with ``patient_id``, only if it is that patient's."""
        async with self._sessions() as session:
            application = await session.get(Application, application_id)
            if application is None or (
                patient_id is not None and application.patient_id != patient_id
            ):
                raise ActionRefusedError(Refused.NOT_FOUND)
            return _app_dto(application)

    async def timeline(self, application_id: int) -> list[EventDTO]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ApplicationEvent)
                .where(ApplicationEvent.application_id == application_id)
                .order_by(ApplicationEvent.at, ApplicationEvent.id)
            )
            return [EventDTO(Status(e.status), e.note, e.actor, e.at) for e in rows]

    async def withdraw(self, patient_id: int, application_id: int) -> ApplicationDTO:
        return await self._transition(
            application_id,
            allowed=BEFORE_TIME,
            to=Status.WITHDRAWN,
            actor=None,
            note=None,
            patient_id=patient_id,
            notify_patient=False,
        )

    async def consultation_for(self, application_id: int) -> ConsultationDTO | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(Consultation)
                .where(
                    Consultation.application_id == application_id,
                    Consultation.status != ConsultationStatus.CANCELLED,
                )
                .order_by(Consultation.id.desc())
                .limit(1)
            )
            return _consultation_dto(row) if row else None

    async def answer_time(
        self, patient_id: int, consultation_id: int, confirm: bool
    ) -> ConsultationDTO:
        """The patient confirms the assigned time or asks for another one (also after
        confirming it: from a reminder); asking for another time cancels its reminders."""
        now = self._clock()
        target = (
            ConsultationStatus.CONFIRMED if confirm else ConsultationStatus.RESCHEDULE_REQUESTED
        )
        answerable = [ConsultationStatus.SCHEDULED]
        if not confirm:
            answerable.append(ConsultationStatus.CONFIRMED)
        async with self._sessions.begin() as session:
            consultation = await session.get(Consultation, consultation_id)
            if consultation is None or consultation.patient_id != patient_id:
                raise ActionRefusedError(Refused.NOT_FOUND)
            result = await session.execute(
                update(Consultation)
                .where(
                    Consultation.id == consultation_id,
                    Consultation.status.in_(answerable),
                    Consultation.starts_at > now,
                )
                .values(status=target)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise ActionRefusedError(Refused.WRONG_STATUS, consultation.status)
            if not confirm:
                await self._reminders.unschedule(session, consultation_id)
            await session.refresh(consultation)
            if consultation.application_id is not None:
                application = await session.get(Application, consultation.application_id)
                assert application is not None
                kind = "patient_confirmed" if confirm else "patient_wants_other_time"
                self._staff_notice(session, application, kind, now)
                self._refresh_card(session, application, now)
            return _consultation_dto(consultation)

    async def conclusions(self, patient_id: int) -> list[ConclusionDTO]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Conclusion)
                .where(Conclusion.patient_id == patient_id)
                .order_by(Conclusion.created_at.desc())
            )
            return [
                ConclusionDTO(
                    c.id, c.application_id, c.text, c.telegram_file_id, c.author, c.created_at
                )
                for c in rows
            ]

    async def conclusion(self, patient_id: int, conclusion_id: int) -> ConclusionDTO:
        async with self._sessions() as session:
            c = await session.get(Conclusion, conclusion_id)
            if c is None or c.patient_id != patient_id:
                raise ActionRefusedError(Refused.NOT_FOUND)
            return ConclusionDTO(
                c.id, c.application_id, c.text, c.telegram_file_id, c.author, c.created_at
            )

    # --- staff side --------------------------------------------------------------------------

    async def check_step(self, application_id: int, step: StaffStep) -> None:
        """Refuse a step the application's status no longer allows, at its first press (a card
        left in the chat keeps its buttons after the patient withdrew or a colleague declined),
        with the same refusal the step's last press would get."""
        async with self._sessions() as session:
            application = await session.get(Application, application_id)
            if application is None:
                raise ActionRefusedError(Refused.NOT_FOUND)
            if step is StaffStep.ASSIGN:
                allowed = await self._assign_allowed(session, application_id)
            else:
                allowed = set(STEP_FROM[step])
            if application.status not in allowed:
                raise ActionRefusedError(
                    Refused.WRONG_STATUS, application.status, application.acted_by
                )

    async def _assign_allowed(self, session: AsyncSession, application_id: int) -> set[Status]:
        allowed = set(STEP_FROM[StaffStep.ASSIGN])
        asked_another_time = await session.scalar(
            select(Consultation.id).where(
                Consultation.application_id == application_id,
                Consultation.status == ConsultationStatus.RESCHEDULE_REQUESTED,
            )
        )
        if asked_another_time is not None:
            allowed.add(Status.TIME_ASSIGNED)
        return allowed

    async def take(
        self, application_id: int, actor: str, *, by: Actor | None = None
    ) -> ApplicationDTO:
        return await self._transition(
            application_id,
            allowed={Status.SUBMITTED},
            to=Status.UNDER_REVIEW,
            actor=actor,
            audit=(Action.APPLICATION_TAKEN, by, None),
        )

    async def request_documents(
        self,
        application_id: int,
        actor: str,
        types: list[str],
        comment: str | None,
        *,
        by: Actor | None = None,
    ) -> ApplicationDTO:
        known = [t for t in types if self._catalog.document_type(t) is not None]
        return await self._transition(
            application_id,
            allowed=STEP_FROM[StaffStep.REQUEST_DOCUMENTS],
            to=Status.DOCUMENTS_REQUESTED,
            actor=actor,
            note=comment,
            extra={"requested_documents": ",".join(known)},
            audit=(Action.DOCUMENTS_REQUESTED, by, ",".join(known)),
        )

    async def decline(
        self, application_id: int, actor: str, reason: str, *, by: Actor | None = None
    ) -> ApplicationDTO:
        return await self._transition(
            application_id,
            allowed=STEP_FROM[StaffStep.DECLINE],
            to=Status.DECLINED,
            actor=actor,
            note=reason,
            audit=(Action.APPLICATION_DECLINED, by, None),
        )

    async def invite(
        self, application_id: int, actor: str, comment: str, *, by: Actor | None = None
    ) -> ApplicationDTO:
        return await self._transition(
            application_id,
            allowed=STEP_FROM[StaffStep.INVITE],
            to=Status.INVITED,
            actor=actor,
            note=comment,
            audit=(Action.PATIENT_INVITED, by, None),
        )

    async def resend_documents(self, application_id: int, by: Actor) -> int:
        """A doctor asked to see the patient's documents again: they are re-sent into the
        application's topic (an outbox job) and the viewing is audited, in one transaction.
        Returns how many documents will be sent."""
        now = self._clock()
        async with self._sessions.begin() as session:
            application = await session.get(Application, application_id)
            if application is None:
                raise ActionRefusedError(Refused.NOT_FOUND)
            count = len(
                list(
                    await session.scalars(
                        select(Document.id).where(Document.patient_id == application.patient_id)
                    )
                )
            )
            record(
                session,
                by,
                Action.DOCUMENTS_VIEWED,
                now,
                patient_id=application.patient_id,
                application_id=application_id,
                detail=count,
            )
            if count:
                self._staff_notice(session, application, "documents_resent", now)
            return count

    async def assign_time(
        self, application_id: int, actor: str, starts_at: datetime, *, by: Actor | None = None
    ) -> ConsultationDTO:
        """Create the consultation (with its own video room) — once: a second assignment, by
        the same or another doctor, is refused unless the patient asked for another time."""
        now = self._clock()
        if starts_at <= now:
            raise ActionRefusedError(Refused.PAST_TIME)
        async with self._sessions.begin() as session:
            application = await session.get(Application, application_id)
            if application is None:
                raise ActionRefusedError(Refused.NOT_FOUND)
            allowed = await self._assign_allowed(session, application_id)
            previous = await session.scalar(
                select(Consultation).where(
                    Consultation.application_id == application_id,
                    Consultation.status == ConsultationStatus.RESCHEDULE_REQUESTED,
                )
            )
            result = await session.execute(
                update(Application)
                .where(Application.id == application_id, Application.status.in_(allowed))
                .values(
                    status=Status.TIME_ASSIGNED, acted_by=actor, status_note=None, updated_at=now
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise ActionRefusedError(
                    Refused.WRONG_STATUS, application.status, application.acted_by
                )
            if previous is not None:
                previous.status = ConsultationStatus.CANCELLED
                await self._reminders.unschedule(session, previous.id)
            consultation = Consultation(
                patient_id=application.patient_id,
                application_id=application_id,
                starts_at=starts_at,
                video_url=new_video_url(self._video_base_url),
                status=ConsultationStatus.SCHEDULED,
                created_at=now,
            )
            session.add(consultation)
            await session.flush()
            session.add(
                ApplicationEvent(
                    application_id=application_id, status=Status.TIME_ASSIGNED, actor=actor, at=now
                )
            )
            record(
                session,
                by,
                Action.TIME_MOVED if previous is not None else Action.TIME_ASSIGNED,
                now,
                patient_id=application.patient_id,
                application_id=application_id,
                consultation_id=consultation.id,
                detail=starts_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ"),
            )
            await session.refresh(application)
            patient = await session.get(Patient, application.patient_id)
            assert patient is not None
            # The calendar file and the reminders; the notice with its buttons comes last.
            self._reminders.schedule(session, consultation, patient, application.staff_chat_id, now)
            await self._notify_patient(session, application, now, consultation.id)
            self._refresh_card(session, application, now)
            return _consultation_dto(consultation)

    async def conclude(
        self,
        application_id: int,
        actor: str,
        text: str | None,
        file_id: str | None,
        *,
        by: Actor | None = None,
    ) -> ConclusionDTO:
        now = self._clock()
        async with self._sessions.begin() as session:
            application = await session.get(Application, application_id)
            if application is None:
                raise ActionRefusedError(Refused.NOT_FOUND)
            result = await session.execute(
                update(Application)
                .where(
                    Application.id == application_id,
                    Application.status.in_(STEP_FROM[StaffStep.CONCLUDE]),
                )
                .values(status=Status.COMPLETED, open_center=None, acted_by=actor, updated_at=now)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise ActionRefusedError(
                    Refused.WRONG_STATUS, application.status, application.acted_by
                )
            for consultation_id in await session.scalars(
                select(Consultation.id).where(Consultation.application_id == application_id)
            ):
                await self._reminders.unschedule(session, consultation_id)
            await session.execute(
                update(Consultation)
                .where(
                    Consultation.application_id == application_id,
                    Consultation.status.in_(
                        [ConsultationStatus.SCHEDULED, ConsultationStatus.CONFIRMED]
                    ),
                )
                .values(status=ConsultationStatus.DONE)
            )
            conclusion = Conclusion(
                patient_id=application.patient_id,
                application_id=application_id,
                text=text,
                telegram_file_id=file_id,
                author=actor,
                created_at=now,
            )
            session.add(conclusion)
            await session.flush()
            session.add(
                ApplicationEvent(
                    application_id=application_id, status=Status.COMPLETED, actor=actor, at=now
                )
            )
            record(
                session,
                by,
                Action.CONCLUSION_SENT,
                now,
                patient_id=application.patient_id,
                application_id=application_id,
                object_id=conclusion.id,
                detail="text+pdf" if text and file_id else ("pdf" if file_id else "text"),
            )
            await session.refresh(application)
            await self._notify_patient(session, application, now, conclusion.id)
            self._refresh_card(session, application, now)
            return ConclusionDTO(conclusion.id, application_id, text, file_id, actor, now)

    async def documents_added(self, patient_id: int, document_id: int) -> int:
        """A patient uploaded a document: every open application's card shows it."""
        now = self._clock()
        async with self._sessions.begin() as session:
            rows = list(
                await session.scalars(
                    select(Application).where(
                        Application.patient_id == patient_id,
                        Application.open_center.is_not(None),
                    )
                )
            )
            for application in rows:
                Outbox.job(
                    session,
                    kind=STAFF_NOTICE,
                    payload={
                        "application_id": application.id,
                        "event": "documents_added",
                        "document_id": document_id,
                    },
                    chat_id=application.staff_chat_id,
                    now=now,
                )
                self._refresh_card(session, application, now)
            return len(rows)

    async def refresh_cards(self, patient_id: int | None, chat_id: int) -> int:
        """Re-render the cards of a patient's applications (e.g. after a 403: a doctor must see
        that a decision did not reach the patient)."""
        now = self._clock()
        async with self._sessions.begin() as session:
            query = select(Application).where(Application.card_message_id.is_not(None))
            if patient_id is not None:
                query = query.where(Application.patient_id == patient_id)
            else:
                query = query.join(Patient, Patient.id == Application.patient_id).where(
                    Patient.telegram_id == chat_id
                )
            rows = list(await session.scalars(query))
            for application in rows:
                self._refresh_card(session, application, now)
            return len(rows)

    async def set_card(self, application_id: int, thread_id: int | None, message_id: int) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(Application)
                .where(Application.id == application_id)
                .values(staff_thread_id=thread_id, card_message_id=message_id)
            )

    async def patient_of(self, application_id: int) -> Patient | None:
        async with self._sessions() as session:
            application = await session.get(Application, application_id)
            if application is None:
                return None
            return await session.get(Patient, application.patient_id)

    # --- internals ---------------------------------------------------------------------------

    async def _transition(
        self,
        application_id: int,
        *,
        allowed: set[Status] | frozenset[Status],
        to: Status,
        actor: str | None,
        note: str | None = None,
        patient_id: int | None = None,
        notify_patient: bool = True,
        extra: dict[str, object] | None = None,
        audit: tuple[Action, Actor | None, str | None] | None = None,
    ) -> ApplicationDTO:
        """One conditional UPDATE: of two people acting at once exactly one wins."""
        now = self._clock()
        values: dict[str, object] = {
            "status": to,
            "status_note": note,
            "updated_at": now,
            **(extra or {}),
        }
        if actor is not None:
            values["acted_by"] = actor
        if to not in OPEN:
            values["open_center"] = None
        async with self._sessions.begin() as session:
            application = await session.get(Application, application_id)
            if application is None or (
                patient_id is not None and application.patient_id != patient_id
            ):
                raise ActionRefusedError(Refused.NOT_FOUND)
            result = await session.execute(
                update(Application)
                .where(Application.id == application_id, Application.status.in_(allowed))
                .values(**values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise ActionRefusedError(
                    Refused.WRONG_STATUS, application.status, application.acted_by
                )
            session.add(
                ApplicationEvent(
                    application_id=application_id, status=to, note=note, actor=actor, at=now
                )
            )
            if audit is not None:
                record(
                    session,
                    audit[1],
                    audit[0],
                    now,
                    patient_id=application.patient_id,
                    application_id=application_id,
                    detail=audit[2],
                )
            if to not in OPEN:  # declined or invited after a time was set: no more reminders
                for consultation_id in await session.scalars(
                    select(Consultation.id).where(Consultation.application_id == application_id)
                ):
                    await self._reminders.unschedule(session, consultation_id)
            await session.refresh(application)
            if notify_patient:
                await self._notify_patient(session, application, now)
            self._refresh_card(session, application, now)
            return _app_dto(application)

    async def _notify_patient(
        self,
        session: AsyncSession,
        application: Application,
        now: datetime,
        object_id: int | None = None,
    ) -> None:
        patient = await session.get(Patient, application.patient_id)
        assert patient is not None
        Outbox.job(
            session,
            kind=PATIENT_NOTICE,
            payload={
                "application_id": application.id,
                "status": application.status,
                "object_id": object_id,
            },
            chat_id=patient.telegram_id,
            patient_id=patient.id,
            now=now,
        )

    def _staff_notice(
        self, session: AsyncSession, application: Application, event: str, now: datetime
    ) -> None:
        Outbox.job(
            session,
            kind=STAFF_NOTICE,
            payload={"application_id": application.id, "event": event},
            chat_id=application.staff_chat_id,
            now=now,
        )

    def _refresh_card(self, session: AsyncSession, application: Application, now: datetime) -> None:
        Outbox.job(
            session,
            kind=CARD_REFRESH,
            payload={"application_id": application.id},
            chat_id=application.staff_chat_id,
            now=now,
        )
