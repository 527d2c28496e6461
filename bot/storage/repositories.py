"""Repositories: queries over one session. They flush at most; the service commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import DeletedPatient, FsmRecord, Patient


class PatientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_telegram_id(self, telegram_id: int) -> Patient | None:
        return await self.session.scalar(select(Patient).where(Patient.of_user(telegram_id)))

    async def add(self, patient: Patient) -> Patient:
        self.session.add(patient)
        await self.session.flush()
        return patient

    async def erase(self, patient: Patient, at: datetime) -> None:
        """Delete the patient row (children cascade) and leave an anonymous tombstone."""
        self.session.add(DeletedPatient(id=patient.id, deleted_at=at))
        await self.session.delete(patient)
        await self.session.flush()


class DialogueRepository:
    """The SQL FSM rows, for erasing a person's dialogues inside a service transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def erase_user(self, user_id: int) -> int:
        result = await self.session.execute(delete(FsmRecord).where(FsmRecord.user_id == user_id))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
