"""All routers, joined in one place. Parent routers carry the chat and role filters."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Filter
from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n

from bot.handlers import (
    applications,
    booking,
    broadcasts,
    common,
    documents,
    errors,
    fallback,
    membership,
    profile,
    referrals,
    registration,
    relay,
    reminders,
    schedule,
    staff,
    stats,
)
from bot.middlewares import FlowMiddleware


class Registered(Filter):
    """The user is a registered patient (``patient`` put in the data by PatientMiddleware)."""

    async def __call__(self, event: TelegramObject, patient: Any = None) -> bool:
        return patient is not None


def build_root_router(i18n: I18n) -> Router:
    root = Router(name="root")

    private = Router(name="private")
    private.message.filter(F.chat.type == "private")
    private.callback_query.filter(F.message.chat.type == "private")
    private.message.middleware(FlowMiddleware())
    private.callback_query.middleware(FlowMiddleware())

    patients_only = Router(name="patients")
    patients_only.message.filter(Registered())
    patients_only.callback_query.filter(Registered())
    patients_only.include_routers(
        profile.router(i18n),
        applications.router(i18n),
        booking.router(i18n),
        reminders.router(i18n),
        documents.router(i18n),
        relay.router(i18n),
    )

    private.include_routers(
        referrals.activation_router(i18n),  # /start ref_<code> before the plain /start
        common.router(i18n),
        schedule.router(i18n),  # coordinators only (its own filter); others fall through
        broadcasts.router(i18n),  # coordinators only, as above
        stats.router(i18n),  # coordinators only, as above
        referrals.coordinator_router(i18n),  # coordinators only (its own filter)
        registration.router(i18n),
        patients_only,
        fallback.router(),
    )
    root.include_routers(
        private,
        reminders.staff_router(),
        staff.router(),
        relay.duty_router(),
        membership.router(i18n),
        errors.router(),
    )
    return root
