"""The SLA of applications and the coordinators' daily digest.

An application still waiting for a decision (``BEFORE_TIME``) ``sla_days`` after it was
submitted is escalated to its center's chat (its topic, if it has one) and to every
coordinator, at most once a day until it is handled. The last escalation is kept in the
database and claimed with a conditional write in the same transaction as the outbox rows, so a
restart or a second scheduler never repeats one. The digest goes to coordinators once a day at
a local time: new applications, overdue ones, today's consultations — ids, counts, centers and
regions only, never diagnoses or names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.applications import BEFORE_TIME, ConsultationStatus
from bot.services.clock import Clock
from bot.services.outbox import Outbox
from bot.storage.db import SessionFactory
from bot.storage.models import Application, Consultation, Patient
from bot.storage.runs import claim_period
from bot.storage.scheduler_models import SlaEscalation

log = logging.getLogger(__name__)

#: Outbox job kinds (rendered at delivery by ``bot.delivery.sla.SlaNotifier``).
SLA_ESCALATION = "sla_escalation"
DIGEST = "coordinator_digest"

DIGEST_JOB = "coordinator-digest"
STAFF = "staff"
COORDINATOR = "coordinator"
ESCALATION_INTERVAL = timedelta(days=1)
UPCOMING = (
    ConsultationStatus.SCHEDULED,
    ConsultationStatus.CONFIRMED,
    ConsultationStatus.RESCHEDULE_REQUESTED,
)


@dataclass(frozen=True, slots=True)
class ApplicationBrief:
    """What coordinators may see of an application: no diagnosis, no name."""

    id: int
    center_code: str
    region_code: int | None
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConsultationBrief:
    id: int
    starts_at: datetime
    center_code: str | None  # None: a duty doctor's consultation
    region_code: int | None


@dataclass(frozen=True, slots=True)
class Digest:
    at: datetime
    new: list[ApplicationBrief]
    overdue: list[ApplicationBrief]
    consultations: list[ConsultationBrief]


class SlaService:
    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        *,
        sla_days: int,
        coordinator_ids: frozenset[int],
        digest_time: time,
        digest_zone: ZoneInfo,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.sla = timedelta(days=sla_days)
        self._coordinators = sorted(coordinator_ids)
        self._digest_time = digest_time
        self.zone = digest_zone

    # --- escalations -------------------------------------------------------------------------

    async def escalate_overdue(self) -> int:
        """Escalate every overdue application not escalated in the last day; returns how many."""
        now = self._clock()
        async with self._sessions() as session:
            due = list(
                await session.scalars(
                    select(Application.id)
                    .outerjoin(SlaEscalation, SlaEscalation.application_id == Application.id)
                    .where(
                        Application.status.in_(BEFORE_TIME),
                        Application.created_at <= now - self.sla,
                        or_(
                            SlaEscalation.application_id.is_(None),
                            SlaEscalation.last_escalated_at <= now - ESCALATION_INTERVAL,
                        ),
                    )
                    .order_by(Application.id)
                )
            )
        escalated = 0
        for application_id in due:
            if await self._escalate(application_id, now):
                escalated += 1
        return escalated

    async def _escalate(self, application_id: int, now: datetime) -> bool:
        async with self._sessions.begin() as session:
            application = await session.get(Application, application_id)
            if application is None or application.status not in BEFORE_TIME:
                return False
            count = await _claim_escalation(session, application_id, now)
            if count is None:
                return False  # escalated meanwhile (another scheduler)
            recipients = [(application.staff_chat_id, STAFF)]
            recipients += [(chat_id, COORDINATOR) for chat_id in self._coordinators]
            for chat_id, audience in recipients:
                Outbox.job(
                    session,
                    kind=SLA_ESCALATION,
                    payload={"application_id": application_id, "escalation": count, "to": audience},
                    chat_id=chat_id,
                    dedup_key=f"sla:{application_id}:{count}:{chat_id}",
                    now=now,
                )
            log.info("application %s escalated (escalation %s)", application_id, count)
            return True

    async def is_waiting(self, application_id: int) -> ApplicationBrief | None:
        """The application if it still waits for a decision (escalations of handled ones are
        dropped at delivery)."""
        async with self._sessions() as session:
            found = await session.execute(
                _briefs().where(
                    Application.id == application_id, Application.status.in_(BEFORE_TIME)
                )
            )
            row = found.first()
            return None if row is None else _brief(row)

    async def thread_of(self, application_id: int) -> int | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(Application.staff_thread_id).where(Application.id == application_id)
            )

    # --- the digest --------------------------------------------------------------------------

    async def queue_digest(self) -> bool:
        """At or after the digest time (local), once per local day: a digest job for each
        coordinator. Returns whether it was queued now."""
        now = self._clock()
        local = now.astimezone(self.zone)
        if not self._coordinators or local.time() < self._digest_time:
            return False
        day = local.date()
        at = datetime.combine(day, self._digest_time, tzinfo=self.zone)
        async with self._sessions.begin() as session:
            if not await claim_period(session, DIGEST_JOB, day.isoformat(), now):
                return False
            for chat_id in self._coordinators:
                Outbox.job(
                    session,
                    kind=DIGEST,
                    payload={"at": at.isoformat()},
                    chat_id=chat_id,
                    dedup_key=f"digest:{day.isoformat()}:{chat_id}",
                    now=now,
                )
        log.info("digest of %s queued for %s coordinators", day, len(self._coordinators))
        return True

    async def digest(self, at: datetime) -> Digest:
        """The digest as of ``at``: applications of the 24 hours before, those overdue then,
        and the consultations of ``at``'s local day."""
        day: date = at.astimezone(self.zone).date()
        day_start = datetime.combine(day, time(0), tzinfo=self.zone)
        day_end = day_start + timedelta(days=1)
        async with self._sessions() as session:
            new = await session.execute(
                _briefs()
                .where(
                    Application.created_at > at - timedelta(days=1), Application.created_at <= at
                )
                .order_by(Application.id)
            )
            overdue = await session.execute(
                _briefs()
                .where(
                    Application.status.in_(BEFORE_TIME),
                    Application.created_at <= at - self.sla,
                )
                .order_by(Application.created_at, Application.id)
            )
            consultations = await session.execute(
                select(
                    Consultation.id,
                    Consultation.starts_at,
                    Application.center_code,
                    Patient.region_code,
                )
                .join(Patient, Patient.id == Consultation.patient_id)
                .outerjoin(Application, Application.id == Consultation.application_id)
                .where(
                    Consultation.status.in_(UPCOMING),
                    Consultation.starts_at >= day_start,
                    Consultation.starts_at < day_end,
                )
                .order_by(Consultation.starts_at, Consultation.id)
            )
            return Digest(
                at=at,
                new=[_brief(row) for row in new],
                overdue=[_brief(row) for row in overdue],
                consultations=[
                    ConsultationBrief(id=r[0], starts_at=r[1], center_code=r[2], region_code=r[3])
                    for r in consultations
                ],
            )


def _briefs() -> Any:
    return select(
        Application.id,
        Application.center_code,
        Patient.region_code,
        Application.status,
        Application.created_at,
    ).join(Patient, Patient.id == Application.patient_id)


def _brief(row: Any) -> ApplicationBrief:
    return ApplicationBrief(
        id=row[0], center_code=row[1], region_code=row[2], status=row[3], created_at=row[4]
    )


async def _claim_escalation(
    session: AsyncSession, application_id: int, now: datetime
) -> int | None:
    """The number of this escalation if this caller may send it, else None: a conditional
    UPDATE (the last one is a day old) or the first INSERT; exactly one of two racers wins."""
    result = await session.execute(
        update(SlaEscalation)
        .where(
            SlaEscalation.application_id == application_id,
            SlaEscalation.last_escalated_at <= now - ESCALATION_INTERVAL,
        )
        .values(escalations=SlaEscalation.escalations + 1, last_escalated_at=now)
        .returning(SlaEscalation.escalations)
        .execution_options(synchronize_session=False)
    )
    count = result.scalar_one_or_none()
    if count is not None:
        return int(count)
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = await session.execute(
        module.insert(SlaEscalation)
        .values(application_id=application_id, escalations=1, last_escalated_at=now)
        .on_conflict_do_nothing(index_elements=[SlaEscalation.application_id])
        .returning(SlaEscalation.escalations)
    )
    return None if inserted.scalar_one_or_none() is None else 1
