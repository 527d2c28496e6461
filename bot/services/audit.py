"""The audit trail: ``record`` adds one row inside the caller's transaction (so an action that
fails leaves none, and one that commits always has its row); the service reads a period for
coordinators' /audit, pseudonymises an erased patient's ids and purges rows past retention.

A row holds ids and codes only: who (Telegram id and role), what, which objects, when, from
which chat. Never a name, a phone, a diagnosis or a message text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pseudonyms import ERASED_DOMAIN, Pseudonymizer
from bot.services.clock import Clock
from bot.storage.audit_models import AuditEvent
from bot.storage.db import SessionFactory


class Role(StrEnum):
    PATIENT = "patient"
    DOCTOR = "doctor"  # a member of a center's or the duty doctors' staff chat
    COORDINATOR = "coordinator"
    SYSTEM = "system"  # the scheduler, a maintenance call without a person behind it


class Action(StrEnum):
    # staff (doctors)
    APPLICATION_TAKEN = "application_taken"
    TIME_ASSIGNED = "time_assigned"
    TIME_MOVED = "time_moved"  # a new time after the patient asked for another one
    DOCUMENTS_REQUESTED = "documents_requested"
    APPLICATION_DECLINED = "application_declined"
    PATIENT_INVITED = "patient_invited"
    CONCLUSION_SENT = "conclusion_sent"
    NO_SHOW_MARKED = "no_show_marked"
    # viewing: the bot re-sent a patient's documents on a doctor's press
    DOCUMENTS_VIEWED = "documents_viewed"
    # coordinators
    REFERRALS_IMPORTED = "referrals_imported"
    REFERRAL_RELINKED = "referral_relinked"
    BROADCAST_STARTED = "broadcast_started"
    APPLICATIONS_EXPORTED = "applications_exported"
    AUDIT_EXPORTED = "audit_exported"
    DUTY_DOCTOR_ADDED = "duty_doctor_added"
    DUTY_DOCTOR_ACTIVE = "duty_doctor_active"
    DUTY_SLOTS_CREATED = "duty_slots_created"
    DUTY_SLOTS_IMPORTED = "duty_slots_imported"
    DUTY_SLOT_REMOVED = "duty_slot_removed"
    # patients
    CONSENT_GIVEN = "consent_given"
    DATA_EXPORTED = "data_exported"  # «Мои данные»
    PATIENT_ERASED = "patient_erased"
    MESSENGER_CHANGED = "messenger_changed"  # moved to their other messenger (services.links)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, from which chat. ``name`` is for what staff see on cards (a doctor's own
    Telegram name); it is never written to the audit trail."""

    telegram_id: int
    role: Role
    chat_id: int | None = None
    name: str = ""


SYSTEM = Actor(telegram_id=0, role=Role.SYSTEM)


def record(
    session: AsyncSession,
    actor: Actor | None,
    action: Action,
    at: datetime,
    *,
    patient_id: int | None = None,
    application_id: int | None = None,
    consultation_id: int | None = None,
    object_id: int | None = None,
    detail: str | int | None = None,
) -> None:
    """Add the row to the caller's transaction (committed with the action, or not at all)."""
    who = actor or SYSTEM
    session.add(
        AuditEvent(
            at=at,
            actor=str(who.telegram_id),
            role=who.role,
            action=action,
            chat=None if who.chat_id is None else str(who.chat_id),
            patient=None if patient_id is None else str(patient_id),
            application_id=application_id,
            consultation_id=consultation_id,
            object_id=object_id,
            detail=None if detail is None else str(detail)[:64],
        )
    )


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    chat: str | None
    patient: str | None
    application_id: int | None
    consultation_id: int | None
    object_id: int | None
    detail: str | None


MAX_AUDIT_ROWS = 100_000  # one .xlsx; a longer period is asked in parts


class AuditService:
    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        pseudonyms: Pseudonymizer,
        *,
        retention_days: int,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._pseudonyms = pseudonyms
        self.keep = timedelta(days=retention_days)

    async def export(self, start: datetime, end: datetime, by: Actor) -> list[AuditRow]:
        """Rows from ``start`` (included) to ``end`` (excluded); the export is itself audited,
        in the same transaction as the read."""
        async with self._sessions.begin() as session:
            found = await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.at >= start, AuditEvent.at < end)
                .order_by(AuditEvent.at, AuditEvent.id)
                .limit(MAX_AUDIT_ROWS)
            )
            rows = [_row(e) for e in found]
            record(session, by, Action.AUDIT_EXPORTED, self._clock(), detail=len(rows))
        return rows

    def erased_pseudonym(self, patient_id: int) -> str:
        return "erased:" + self._pseudonyms.of(ERASED_DOMAIN, patient_id)

    async def pseudonymise_patient(
        self, session: AsyncSession, patient_id: int, telegram_id: int
    ) -> None:
        """At erasure: the patient's ids (internal id, Telegram id as actor and as chat) in
        every row become one keyed pseudonym; what others did stays attributed to them."""
        alias = self.erased_pseudonym(patient_id)
        m = AuditEvent
        await session.execute(update(m).where(m.patient == str(patient_id)).values(patient=alias))
        await session.execute(
            update(m).where(m.actor == str(telegram_id), m.role == Role.PATIENT).values(actor=alias)
        )
        await session.execute(update(m).where(m.chat == str(telegram_id)).values(chat=alias))

    async def purge(self) -> int:
        """Delete rows older than AUDIT_RETENTION_DAYS (called by the daily retention job)."""
        cutoff = self._clock() - self.keep
        async with self._sessions.begin() as session:
            result = await session.execute(delete(AuditEvent).where(AuditEvent.at < cutoff))
        return int(cast(CursorResult[Any], result).rowcount or 0)


def _row(e: AuditEvent) -> AuditRow:
    return AuditRow(
        e.id,
        e.at,
        e.actor,
        e.role,
        e.action,
        e.chat,
        e.patient,
        e.application_id,
        e.consultation_id,
        e.object_id,
        e.detail,
    )


def day_range(first: date, last: date, zone: Any) -> tuple[datetime, datetime]:
    """From the start of ``first`` to the end of ``last`` in ``zone``."""
    start = datetime.combine(first, datetime.min.time(), zone)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone)
    return start, end
