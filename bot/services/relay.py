"""The chat with the duty doctors: who may write and how often, each patient's topic in the
duty chat, the pairs of relayed messages (for replies and edits) and the patient's card."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.applications import ConsultationStatus
from bot.services.clock import Clock
from bot.services.reminder_plan import ends_at
from bot.storage.db import SessionFactory
from bot.storage.models import Application, Consultation, Document, DutyDoctor, Patient
from bot.storage.relay_models import RelayMessage, RelayThread

#: A patient may send this many messages to the doctors per window; the next one is refused
#: with an answer saying which message was not delivered (never dropped silently).
RATE_LIMIT = 20
RATE_WINDOW = timedelta(minutes=1)
UPCOMING = (ConsultationStatus.SCHEDULED, ConsultationStatus.CONFIRMED)
#: Longer than any consultation: those that began earlier have certainly ended.
LONGEST_CONSULTATION = timedelta(days=1)
FORUM_CACHE_SECONDS = 300.0


class Direction(StrEnum):
    IN = "in"  # the patient wrote; the copy is in the duty chat
    OUT = "out"  # a doctor wrote; the bot's message is in the patient's chat


class PairKind(StrEnum):
    COPY = "copy"  # the same content on both sides
    SIGNED = "signed"  # the doctor's name put before the text or caption
    HEADER = "header"  # the line naming the patient before a copy (chat without topics)


@dataclass(frozen=True, slots=True)
class ThreadDTO:
    chat_id: int
    thread_id: int | None
    closed: bool


@dataclass(frozen=True, slots=True)
class PatientRef:
    """Who is on the other end of a duty-chat message."""

    id: int
    telegram_id: int
    full_name: str
    locale: str | None
    messenger: str = "telegram"  # "max": telegram_id is their MAX user id
    chat_id: int | None = None  # their MAX dialog (None on Telegram: the user id)


@dataclass(frozen=True, slots=True)
class Counterpart:
    """The other side of a relayed message."""

    patient: PatientRef
    chat_id: int
    patient_message_id: int
    staff_message_id: int
    direction: Direction
    kind: PairKind


@dataclass(frozen=True, slots=True)
class Upcoming:
    starts_at: datetime
    status: ConsultationStatus
    doctor_name: str | None
    center_code: str | None


@dataclass(frozen=True, slots=True)
class PatientCard:
    id: int
    full_name: str
    birth_date: date
    region_code: int
    time_zone: str
    unreachable: bool
    documents: int
    upcoming: tuple[Upcoming, ...]


@dataclass(frozen=True, slots=True)
class Inbound:
    """What is decided about a patient's message to the doctors before anything is sent."""

    chat_id: int  # the duty chat
    allowed: bool  # within the patient's rate limit; else refused, with an answer
    reply_to: int | None  # the duty-chat message it answers (a reply to a relayed message)
    thread: ThreadDTO | None  # the patient's topic there, as last recorded


@dataclass(frozen=True, slots=True)
class Addressee:
    """The patient a duty-chat message is for, and which of their messages it answers."""

    patient: PatientRef
    reply_to: int | None


@dataclass(frozen=True, slots=True)
class NewPair:
    patient_message_id: int
    staff_message_id: int
    kind: PairKind = PairKind.COPY


class RelayService:
    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        duty_chat_id: int | None,
        *,
        rate_limit: int = RATE_LIMIT,
        rate_window: timedelta = RATE_WINDOW,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.duty_chat_id = duty_chat_id
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self._forum: dict[int, tuple[bool, float]] = {}

    # --- limits ------------------------------------------------------------------------------

    async def _within_rate(self, session: AsyncSession, patient_id: int) -> bool:
        """Whether one more message fits the patient's limit (delivered messages count)."""
        since = self._clock() - self.rate_window
        sent = await session.scalar(
            select(func.count(RelayMessage.id)).where(
                RelayMessage.patient_id == patient_id,
                RelayMessage.direction == Direction.IN,
                RelayMessage.kind != PairKind.HEADER,
                RelayMessage.created_at > since,
            )
        )
        return (sent or 0) < self.rate_limit

    # --- one decision per message ------------------------------------------------------------

    async def inbound(self, patient_id: int, reply_to_message_id: int | None) -> Inbound | None:
        """Whether and where a patient's message goes (None: there is no duty chat), read at
        once: the rate limit, the duty-chat message it answers, the patient's topic."""
        chat_id = self.duty_chat_id
        if chat_id is None:
            return None
        async with self._sessions() as session:
            if not await self._within_rate(session, patient_id):
                return Inbound(chat_id, allowed=False, reply_to=None, thread=None)
            reply_to = None
            if reply_to_message_id is not None:
                pairs = await self._by_patient_message(
                    session, patient_id, reply_to_message_id, chat_id
                )
                reply_to = pairs[0].staff_message_id if pairs else None
            thread = await self._thread(session, patient_id, chat_id)
        return Inbound(chat_id, allowed=True, reply_to=reply_to, thread=thread)

    async def addressee(
        self, chat_id: int, reply_to_message_id: int | None, thread_id: int | None
    ) -> Addressee | None:
        """The patient a message in the duty chat is for: the one of the relayed message it
        replies to (either direction, or a header), else the one whose topic it is in. None:
        doctors talking among themselves."""
        async with self._sessions() as session:
            if reply_to_message_id is not None:
                pair = await self._by_staff_message(session, chat_id, reply_to_message_id)
                if pair is not None:
                    return Addressee(pair.patient, pair.patient_message_id)
            if thread_id is not None:
                patient = await self._patient_of_thread(session, chat_id, thread_id)
                if patient is not None:
                    return Addressee(patient, None)
        return None

    async def topic_of(self, patient_id: int) -> tuple[PatientRef, ThreadDTO | None] | None:
        """The patient and their topic in the duty chat (None: no duty chat, or no patient)."""
        chat_id = self.duty_chat_id
        if chat_id is None:
            return None
        async with self._sessions() as session:
            patient = await session.get(Patient, patient_id)
            if patient is None:
                return None
            return _ref(patient), await self._thread(session, patient_id, chat_id)

    # --- is the duty chat a forum (asked of Telegram, remembered a few minutes) ----------------

    def known_forum(self, chat_id: int) -> bool | None:
        cached = self._forum.get(chat_id)
        if cached is None or cached[1] < time.monotonic():
            return None
        return cached[0]

    def remember_forum(self, chat_id: int, is_forum: bool) -> None:
        self._forum[chat_id] = (is_forum, time.monotonic() + FORUM_CACHE_SECONDS)

    # --- the patient's topic -----------------------------------------------------------------

    async def thread(self, patient_id: int, chat_id: int) -> ThreadDTO | None:
        async with self._sessions() as session:
            return await self._thread(session, patient_id, chat_id)

    async def _thread(
        self, session: AsyncSession, patient_id: int, chat_id: int
    ) -> ThreadDTO | None:
        row = await session.scalar(
            select(RelayThread).where(
                RelayThread.patient_id == patient_id, RelayThread.chat_id == chat_id
            )
        )
        return _thread_dto(row) if row else None

    async def attach_thread(
        self, patient_id: int, chat_id: int, thread_id: int | None, *, replaces: int | None
    ) -> ThreadDTO:
        """Make ``thread_id`` the patient's open topic, in place of ``replaces`` (the topic it
        was, None for the first). If another worker attached a different topic meanwhile, that
        one wins and is returned (the caller posts there)."""
        now = self._clock()
        try:
            async with self._sessions.begin() as session:
                row = await session.scalar(
                    select(RelayThread).where(
                        RelayThread.patient_id == patient_id, RelayThread.chat_id == chat_id
                    )
                )
                if row is None:
                    row = RelayThread(
                        patient_id=patient_id,
                        chat_id=chat_id,
                        thread_id=thread_id,
                        closed=False,
                        created_at=now,
                        updated_at=now,
                    )
                    session.add(row)
                elif row.thread_id in (replaces, None):
                    row.thread_id = thread_id
                    row.closed = False
                    row.updated_at = now
                return _thread_dto(row)
        except IntegrityError:  # the first topic was attached by a concurrent update
            found = await self.thread(patient_id, chat_id)
            assert found is not None
            return found

    async def set_closed(self, patient_id: int, chat_id: int, closed: bool) -> None:
        async with self._sessions.begin() as session:
            row = await session.scalar(
                select(RelayThread).where(
                    RelayThread.patient_id == patient_id, RelayThread.chat_id == chat_id
                )
            )
            if row is not None and row.closed != closed:
                row.closed = closed
                row.updated_at = self._clock()

    async def _patient_of_thread(
        self, session: AsyncSession, chat_id: int, thread_id: int
    ) -> PatientRef | None:
        patient = await session.scalar(
            select(Patient)
            .join(RelayThread, RelayThread.patient_id == Patient.id)
            .where(RelayThread.chat_id == chat_id, RelayThread.thread_id == thread_id)
        )
        return _ref(patient) if patient else None

    # --- message pairs -----------------------------------------------------------------------

    async def record(
        self, patient_id: int, chat_id: int, direction: Direction, pairs: list[NewPair]
    ) -> None:
        now = self._clock()
        async with self._sessions.begin() as session:
            session.add_all(
                RelayMessage(
                    patient_id=patient_id,
                    chat_id=chat_id,
                    patient_message_id=pair.patient_message_id,
                    staff_message_id=pair.staff_message_id,
                    direction=direction,
                    kind=pair.kind,
                    created_at=now,
                )
                for pair in pairs
            )

    async def by_staff_message(self, chat_id: int, staff_message_id: int) -> Counterpart | None:
        """The patient's side of a message in the duty chat."""
        async with self._sessions() as session:
            return await self._by_staff_message(session, chat_id, staff_message_id)

    async def _by_staff_message(
        self, session: AsyncSession, chat_id: int, staff_message_id: int
    ) -> Counterpart | None:
        row = (
            await session.execute(
                select(RelayMessage, Patient)
                .join(Patient, Patient.id == RelayMessage.patient_id)
                .where(
                    RelayMessage.chat_id == chat_id,
                    RelayMessage.staff_message_id == staff_message_id,
                )
            )
        ).first()
        return _counterpart(*row) if row else None

    async def by_patient_message(
        self, patient_id: int, patient_message_id: int, chat_id: int | None = None
    ) -> list[Counterpart]:
        """The duty-chat side of a message in the patient's chat (headers left out), newest
        first; in ``chat_id`` only when given."""
        async with self._sessions() as session:
            return await self._by_patient_message(session, patient_id, patient_message_id, chat_id)

    async def _by_patient_message(
        self,
        session: AsyncSession,
        patient_id: int,
        patient_message_id: int,
        chat_id: int | None = None,
    ) -> list[Counterpart]:
        query = (
            select(RelayMessage, Patient)
            .join(Patient, Patient.id == RelayMessage.patient_id)
            .where(
                RelayMessage.patient_id == patient_id,
                RelayMessage.patient_message_id == patient_message_id,
                RelayMessage.kind != PairKind.HEADER,
            )
            .order_by(RelayMessage.id.desc())
        )
        if chat_id is not None:
            query = query.where(RelayMessage.chat_id == chat_id)
        return [_counterpart(*row) for row in (await session.execute(query)).all()]

    # --- what the doctors see ----------------------------------------------------------------

    async def upcoming(self, patient_id: int) -> tuple[Upcoming, ...]:
        """The patient's consultations still ahead or under way (scheduled or confirmed, not
        yet ended), soonest first."""
        now = self._clock()
        async with self._sessions() as session:
            rows = await session.execute(
                select(Consultation, DutyDoctor.display_name, Application.center_code)
                .outerjoin(DutyDoctor, DutyDoctor.id == Consultation.doctor_id)
                .outerjoin(Application, Application.id == Consultation.application_id)
                .where(
                    Consultation.patient_id == patient_id,
                    Consultation.starts_at > now - LONGEST_CONSULTATION,
                    Consultation.status.in_(UPCOMING),
                )
                .order_by(Consultation.starts_at, Consultation.id)
            )
            return tuple(
                Upcoming(
                    starts_at=c.starts_at,
                    status=ConsultationStatus(c.status),
                    doctor_name=name,
                    center_code=center,
                )
                for c, name, center in rows
                if now < ends_at(c)
            )

    async def card(self, patient_id: int) -> PatientCard | None:
        async with self._sessions() as session:
            patient = await session.get(Patient, patient_id)
            if patient is None:
                return None
            documents = await session.scalar(
                select(func.count(Document.id)).where(Document.patient_id == patient_id)
            )
        return PatientCard(
            id=patient.id,
            full_name=patient.full_name,
            birth_date=patient.birth_date,
            region_code=patient.region_code,
            time_zone=patient.time_zone,
            unreachable=patient.unreachable_at is not None,
            documents=documents or 0,
            upcoming=await self.upcoming(patient_id),
        )


def _thread_dto(row: RelayThread) -> ThreadDTO:
    return ThreadDTO(chat_id=row.chat_id, thread_id=row.thread_id, closed=row.closed)


def _ref(patient: Patient) -> PatientRef:
    return PatientRef(
        id=patient.id,
        telegram_id=patient.telegram_id,
        full_name=patient.full_name,
        locale=patient.locale,
        messenger=patient.messenger,
        chat_id=patient.chat_id,
    )


def _counterpart(row: RelayMessage, patient: Patient) -> Counterpart:
    return Counterpart(
        patient=_ref(patient),
        chat_id=row.chat_id,
        patient_message_id=row.patient_message_id,
        staff_message_id=row.staff_message_id,
        direction=Direction(row.direction),
        kind=PairKind(row.kind),
    )
