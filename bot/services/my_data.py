"""«Мои данные»: everything stored about one patient, gathered for their own copy (152-FZ,
art. 14). Only rows of that patient; uploaded files are listed, not included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select

from bot.services.audit import Action, record
from bot.services.clock import Clock
from bot.services.patients import NotRegisteredError, PatientDTO, patient_actor, patient_dto
from bot.storage.audit_models import AuditEvent
from bot.storage.db import SessionFactory
from bot.storage.models import (
    Application,
    ApplicationEvent,
    Conclusion,
    Consultation,
    Document,
    DocumentFile,
    DutyDoctor,
    Patient,
)
from bot.storage.referral_models import Referral


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    version: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    id: int
    type_code: str
    created_at: datetime
    files: int
    size: int


@dataclass(frozen=True, slots=True)
class StepRecord:
    status: str
    note: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ApplicationRecord:
    id: int
    center_code: str
    disease_group_code: str
    diagnosis: str
    complaints: str
    status: str
    created_at: datetime
    timeline: tuple[StepRecord, ...]


@dataclass(frozen=True, slots=True)
class ConsultationRecord:
    id: int
    application_id: int | None
    doctor_name: str | None
    starts_at: datetime
    duration_minutes: int
    status: str
    cancel_reason: str | None


@dataclass(frozen=True, slots=True)
class ConclusionRecord:
    id: int
    application_id: int | None
    author: str
    text: str | None
    has_pdf: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReferralRecord:
    id: int
    organization: str
    doctor: str
    diagnosis: str
    comment: str
    created_at: datetime
    activated_at: datetime | None


@dataclass(frozen=True, slots=True)
class MyData:
    profile: PatientDTO
    consents: tuple[ConsentRecord, ...]
    documents: tuple[DocumentRecord, ...]
    applications: tuple[ApplicationRecord, ...]
    consultations: tuple[ConsultationRecord, ...]
    conclusions: tuple[ConclusionRecord, ...]
    referrals: tuple[ReferralRecord, ...]
    made_at: datetime


class MyDataService:
    def __init__(self, sessions: SessionFactory, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def collect(self, telegram_id: int) -> MyData:
        """The patient's data as of now; the copy is itself audited (same transaction)."""
        now = self._clock()
        async with self._sessions.begin() as session:
            patient = await session.scalar(select(Patient).where(Patient.of_user(telegram_id)))
            if patient is None:
                raise NotRegisteredError
            pid = patient.id
            consents = [
                ConsentRecord(detail or "", at)
                for detail, at in (
                    await session.execute(
                        select(AuditEvent.detail, AuditEvent.at)
                        .where(
                            AuditEvent.patient == str(pid),
                            AuditEvent.action == Action.CONSENT_GIVEN,
                        )
                        .order_by(AuditEvent.at, AuditEvent.id)
                    )
                ).all()
            ]
            if not any(c.version == patient.consent_version for c in consents):
                # given before the audit trail existed: the profile row still records it
                consents.insert(0, ConsentRecord(patient.consent_version, patient.consent_at))
            documents = [
                DocumentRecord(doc_id, type_code, created_at, int(files or 0), int(size or 0))
                for doc_id, type_code, created_at, files, size in (
                    await session.execute(
                        select(
                            Document.id,
                            Document.type_code,
                            Document.created_at,
                            func.count(DocumentFile.id),
                            func.sum(DocumentFile.size),
                        )
                        .outerjoin(DocumentFile, DocumentFile.document_id == Document.id)
                        .where(Document.patient_id == pid)
                        .group_by(Document.id, Document.type_code, Document.created_at)
                        .order_by(Document.created_at, Document.id)
                    )
                ).all()
            ]
            applications = []
            for app in await session.scalars(
                select(Application)
                .where(Application.patient_id == pid)
                .order_by(Application.created_at, Application.id)
            ):
                steps = tuple(
                    StepRecord(e.status, e.note, e.at)
                    for e in await session.scalars(
                        select(ApplicationEvent)
                        .where(ApplicationEvent.application_id == app.id)
                        .order_by(ApplicationEvent.at, ApplicationEvent.id)
                    )
                )
                applications.append(
                    ApplicationRecord(
                        app.id,
                        app.center_code,
                        app.disease_group_code,
                        app.diagnosis,
                        app.complaints,
                        app.status,
                        app.created_at,
                        steps,
                    )
                )
            consultations = [
                ConsultationRecord(
                    c.id,
                    c.application_id,
                    name,
                    c.starts_at,
                    c.duration_minutes,
                    c.status,
                    c.cancel_reason,
                )
                for c, name in (
                    await session.execute(
                        select(Consultation, DutyDoctor.display_name)
                        .outerjoin(DutyDoctor, DutyDoctor.id == Consultation.doctor_id)
                        .where(Consultation.patient_id == pid)
                        .order_by(Consultation.starts_at, Consultation.id)
                    )
                ).all()
            ]
            conclusions = [
                ConclusionRecord(
                    c.id,
                    c.application_id,
                    c.author,
                    c.text,
                    c.telegram_file_id is not None,
                    c.created_at,
                )
                for c in await session.scalars(
                    select(Conclusion)
                    .where(Conclusion.patient_id == pid)
                    .order_by(Conclusion.created_at, Conclusion.id)
                )
            ]
            referrals = [
                ReferralRecord(
                    r.id,
                    r.referring_organization,
                    r.referring_doctor,
                    r.diagnosis,
                    r.comment,
                    r.created_at,
                    r.activated_at,
                )
                for r in await session.scalars(
                    select(Referral)
                    .where(
                        or_(
                            Referral.patient_id == pid,
                            (Referral.phone == patient.phone)
                            & (Referral.birth_date == patient.birth_date),
                        )
                    )
                    .order_by(Referral.id)
                )
            ]
            record(session, patient_actor(telegram_id), Action.DATA_EXPORTED, now, patient_id=pid)
            return MyData(
                profile=patient_dto(patient),
                consents=tuple(consents),
                documents=tuple(documents),
                applications=tuple(applications),
                consultations=tuple(consultations),
                conclusions=tuple(conclusions),
                referrals=tuple(referrals),
                made_at=now,
            )
