"""Patients: registration, profile changes, language and erasure of all personal data."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.fsm.unit import current_unit
from bot.messengers.identity import current_messenger, new_patient_identity
from bot.services.audit import Action, Actor, AuditService, Role, record
from bot.services.clock import Clock, local_date, utc_now
from bot.services.validation import age_on
from bot.storage.db import SessionFactory
from bot.storage.inbox_models import InboxStatus, InboxUpdate
from bot.storage.models import Patient
from bot.storage.referral_models import Referral
from bot.storage.repositories import DialogueRepository, PatientRepository
from bot.storage.scrub import scrub


@dataclass(frozen=True, slots=True)
class PatientDTO:
    id: int
    telegram_id: int
    full_name: str
    birth_date: date
    phone: str
    phone_verified: bool
    region_code: int
    time_zone: str
    locale: str | None
    consent_version: str
    consent_at: datetime
    registered_at: datetime
    unreachable: bool = False

    def age(self, now: datetime) -> int:
        """Full years on the patient's own calendar day."""
        return age_on(self.birth_date, local_date(now, self.time_zone))


@dataclass(frozen=True, slots=True)
class NewPatient:
    full_name: str
    birth_date: date
    phone: str
    phone_verified: bool
    region_code: int
    time_zone: str
    consent_version: str
    consent_at: datetime
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What was erased, shown to the patient."""

    patient_id: int
    dialogues: int
    files: int


class AlreadyRegisteredError(Exception):
    pass


class NotRegisteredError(Exception):
    pass


PROFILE_FIELDS = frozenset(
    {"full_name", "birth_date", "phone", "phone_verified", "region_code", "time_zone"}
)


#: The columns a patient is read by on every update (into a PatientDTO), and whose they are: the
#: sender's (``tid``) on the messenger serving them. Also read along with the dialogue
#: (bot.fsm.storage), so an update reads both in one statement.
PATIENT_COLUMNS = (
    Patient.id,
    Patient.telegram_id,
    Patient.full_name,
    Patient.birth_date,
    Patient.phone,
    Patient.phone_verified,
    Patient.region_code,
    Patient.time_zone,
    Patient.locale,
    Patient.consent_version,
    Patient.consent_at,
    Patient.registered_at,
    Patient.unreachable_at,
)
SENDERS_PATIENT = and_(
    Patient.telegram_id == bindparam("tid"), Patient.messenger == bindparam("messenger")
)
_PATIENT_BY_TELEGRAM_ID = select(*PATIENT_COLUMNS).where(SENDERS_PATIENT)


def patient_from_columns(fields: dict[str, Any]) -> PatientDTO | None:
    """The DTO of PATIENT_COLUMNS' values (None: no such patient, an outer join's nulls)."""
    if fields["id"] is None:
        return None
    unreachable = fields.pop("unreachable_at") is not None
    return PatientDTO(**fields, unreachable=unreachable)


def sender_key(messenger: str, telegram_id: int) -> tuple[str, str, int]:
    """Where the dialogue's read leaves the sender's patient in the update's unit."""
    return ("patient", messenger, telegram_id)


def patient_dto(p: Patient) -> PatientDTO:
    return PatientDTO(
        id=p.id,
        telegram_id=p.telegram_id,
        full_name=p.full_name,
        birth_date=p.birth_date,
        phone=p.phone,
        phone_verified=p.phone_verified,
        region_code=p.region_code,
        time_zone=p.time_zone,
        locale=p.locale,
        consent_version=p.consent_version,
        consent_at=p.consent_at,
        registered_at=p.registered_at,
        unreachable=p.unreachable_at is not None,
    )


def patient_actor(telegram_id: int) -> Actor:
    """A patient acting in their private chat (its id is their Telegram id)."""
    return Actor(telegram_id=telegram_id, role=Role.PATIENT, chat_id=telegram_id)


async def create_patient(
    session: AsyncSession,
    telegram_id: int,
    new: NewPatient,
    now: datetime,
    *,
    referral_id: int | None = None,
) -> Patient:
    """The one place a patient is made, inside the caller's transaction: refused when this
    user is registered already; their consent goes to the audit trail with them (and the
    referral they came by, if any)."""
    patients = PatientRepository(session)
    if await patients.by_telegram_id(telegram_id):
        raise AlreadyRegisteredError
    patient = await patients.add(
        Patient(
            **new_patient_identity(),
            telegram_id=telegram_id,
            full_name=new.full_name,
            birth_date=new.birth_date,
            phone=new.phone,
            phone_verified=new.phone_verified,
            region_code=new.region_code,
            time_zone=new.time_zone,
            locale=new.locale,
            consent_version=new.consent_version,
            consent_at=new.consent_at,
            registered_at=now,
            updated_at=now,
        )
    )
    record(
        session,
        patient_actor(telegram_id),
        Action.CONSENT_GIVEN,
        new.consent_at,
        patient_id=patient.id,
        object_id=referral_id,
        detail=new.consent_version,
    )
    return patient


_NOT_READ = object()


class PatientService:
    def __init__(
        self, sessions: SessionFactory, files_dir: Path, clock: Clock, audit: AuditService
    ) -> None:
        self._sessions = sessions
        self._files_dir = files_dir
        self._clock = clock
        self._audit = audit

    def patient_files_dir(self, patient_id: int) -> Path:
        return self._files_dir / "patients" / str(patient_id)

    async def sender(self, telegram_id: int) -> PatientDTO | None:
        """Who sent the update being handled, asked before its handler (the patient
        middleware): what the first read of the dialogue brought along, else ``get``."""
        unit = current_unit()
        if unit is not None:
            key = sender_key(current_messenger().value, telegram_id)
            known = unit.read_along.pop(key, _NOT_READ)
            if known is not _NOT_READ:
                return known  # type: ignore[no-any-return]
        return await self.get(telegram_id)

    async def get(self, telegram_id: int) -> PatientDTO | None:
        """Who writes (every update asks): the columns alone, by a statement built once."""
        async with self._sessions.read() as connection:
            params = {"tid": telegram_id, "messenger": current_messenger().value}
            row = (await connection.execute(_PATIENT_BY_TELEGRAM_ID, params)).first()
        if row is None:
            return None
        return patient_from_columns(dict(row._mapping))

    async def register(self, telegram_id: int, new: NewPatient) -> PatientDTO:
        now = self._clock()
        try:
            async with self._sessions.begin() as session:
                patient = await create_patient(session, telegram_id, new, now)
                return patient_dto(patient)
        except IntegrityError:
            # A concurrent confirmation (double click) registered this user first.
            raise AlreadyRegisteredError from None

    async def update_profile(self, telegram_id: int, **changes: object) -> PatientDTO:
        unknown = set(changes) - PROFILE_FIELDS
        if unknown:
            raise ValueError(f"not profile fields: {sorted(unknown)}")
        async with self._sessions.begin() as session:
            patient = await PatientRepository(session).by_telegram_id(telegram_id)
            if patient is None:
                raise NotRegisteredError
            for name, value in changes.items():
                setattr(patient, name, value)
            patient.updated_at = self._clock()
            return patient_dto(patient)

    async def set_locale(self, telegram_id: int, locale: str) -> None:
        async with self._sessions.begin() as session:
            patient = await PatientRepository(session).by_telegram_id(telegram_id)
            if patient is None:
                raise NotRegisteredError
            patient.locale = locale
            patient.updated_at = self._clock()

    async def mark_unreachable(self, patient_id: int | None, chat_id: int) -> None:
        """The patient blocked the bot (a 403 on delivery): cards show it."""
        async with self._sessions.begin() as session:
            patient = (
                await session.get(Patient, patient_id)
                if patient_id is not None
                else await PatientRepository(session).by_telegram_id(chat_id)
            )
            if patient is not None and patient.unreachable_at is None:
                patient.unreachable_at = self._clock()

    async def mark_reachable(self, telegram_id: int) -> None:
        async with self._sessions.begin() as session:
            patient = await PatientRepository(session).by_telegram_id(telegram_id)
            if patient is not None and patient.unreachable_at is not None:
                patient.unreachable_at = None

    async def erase(self, telegram_id: int, *, update_id: int | None = None) -> ErasureReport:
        """Erase the patient, every row that belongs to them, their dialogues and files; their
        ids in the audit trail become a pseudonym. ``update_id``: the update that asked for it,
        finished (its raw content dropped) in the same transaction, so that no copy of it is
        left behind in the database files either. Then the files are scrubbed (``scrub``)."""
        now = self._clock()
        async with self._sessions.begin() as session:
            patients = PatientRepository(session)
            patient = await patients.by_telegram_id(telegram_id)
            if patient is None:
                raise NotRegisteredError
            patient_id = patient.id
            dialogues = await DialogueRepository(session).erase_user(telegram_id)
            # A referral still waiting under this person's phone and birth date is theirs too
            # (activated ones go with the patient row).
            await session.execute(
                delete(Referral).where(
                    Referral.phone == patient.phone, Referral.birth_date == patient.birth_date
                )
            )
            await patients.erase(patient, now)
            record(
                session,
                patient_actor(telegram_id),
                Action.PATIENT_ERASED,
                now,
                patient_id=patient_id,
            )
            await session.flush()
            await self._audit.pseudonymise_patient(session, patient_id, telegram_id)
            if update_id is not None:
                await session.execute(
                    update(InboxUpdate)
                    .where(
                        InboxUpdate.messenger == current_messenger().value,
                        InboxUpdate.update_id == update_id,
                    )
                    .values(
                        status=InboxStatus.DONE,
                        payload=None,
                        order_key=0,
                        claimed_by=None,
                        finished_at=utc_now(),  # the inbox keeps wall-clock times
                    )
                )
        files = await asyncio.to_thread(_remove_tree, self.patient_files_dir(patient_id))
        engine = self._sessions.kw.get("bind")
        if isinstance(engine, AsyncEngine):
            await scrub(engine)
        return ErasureReport(patient_id=patient_id, dialogues=dialogues, files=files)


def _remove_tree(folder: Path) -> int:
    """Delete a folder with everything in it; returns the number of files removed."""
    if not folder.exists():
        return 0
    count = sum(1 for f in folder.rglob("*") if f.is_file())
    shutil.rmtree(folder)
    return count
