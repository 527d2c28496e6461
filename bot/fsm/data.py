"""Typed FSM data: the registration draft kept in the dialogue storage until it is confirmed."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from aiogram.fsm.context import FSMContext
from pydantic import BaseModel


class Mode(StrEnum):
    """Why a field step is being asked."""

    REGISTER = "register"  # step by step through registration
    SUMMARY_EDIT = "summary_edit"  # one field from the registration summary
    PROFILE_EDIT = "profile_edit"  # one field of an existing profile


class RegistrationDraft(BaseModel):
    mode: Mode = Mode.REGISTER
    consent_version: str | None = None
    consent_at: datetime | None = None
    full_name: str | None = None
    birth_date: date | None = None
    phone: str | None = None
    phone_verified: bool = False
    region_code: int | None = None
    time_zone: str | None = None
    region_page: int = 0
    resume_state: str | None = None  # the step to go back to after /cancel is declined
    referral_id: int | None = None  # activating a referral's link: confirm makes the patient

    @property
    def complete(self) -> bool:
        return None not in (
            self.consent_at,
            self.full_name,
            self.birth_date,
            self.phone,
            self.region_code,
            self.time_zone,
        )


_KEY = "registration"


async def load_draft(state: FSMContext) -> RegistrationDraft:
    raw: dict[str, Any] | None = (await state.get_data()).get(_KEY)
    return RegistrationDraft.model_validate(raw) if raw else RegistrationDraft()


async def save_draft(state: FSMContext, draft: RegistrationDraft) -> None:
    await state.update_data({_KEY: draft.model_dump(mode="json")})


class ApplicationDraft(BaseModel):
    center_code: str | None = None
    group_code: str | None = None
    diagnosis: str | None = None
    complaints: str | None = None
    referral_id: int | None = None  # made from a referral (the card names who referred)


_APPLICATION_KEY = "application"


async def load_application(state: FSMContext) -> ApplicationDraft:
    raw: dict[str, Any] | None = (await state.get_data()).get(_APPLICATION_KEY)
    return ApplicationDraft.model_validate(raw) if raw else ApplicationDraft()


async def save_application(state: FSMContext, draft: ApplicationDraft) -> None:
    await state.update_data({_APPLICATION_KEY: draft.model_dump(mode="json")})


class StaffDraft(BaseModel):
    application_id: int
    chosen_documents: list[str] = []
    starts_at: datetime | None = None


_STAFF_KEY = "staff"


async def load_staff(state: FSMContext) -> StaffDraft | None:
    raw: dict[str, Any] | None = (await state.get_data()).get(_STAFF_KEY)
    return StaffDraft.model_validate(raw) if raw else None


async def save_staff(state: FSMContext, draft: StaffDraft) -> None:
    await state.update_data({_STAFF_KEY: draft.model_dump(mode="json")})
