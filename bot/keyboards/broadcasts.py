"""Keyboards of coordinators' broadcasts (the dialogue and the progress message)."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.callbacks import (
    BroadcastAction,
    BroadcastCb,
    BroadcastStep,
    BroadcastStepCb,
)
from bot.catalog import Catalog
from bot.i18n import N_
from bot.keyboards.builder import InlineKeyboardBuilder
from bot.services.broadcasts import UPCOMING_DAYS, AudienceKind, BroadcastStatus, Progress

MAX_REGIONS_SHOWN = 40


def _nav(kb: InlineKeyboardBuilder, *, back_value: int = 0) -> None:
    kb.button(
        text=_("broadcast.btn_back"),
        callback_data=BroadcastStepCb(step=BroadcastStep.BACK, value=back_value),
    )
    kb.button(
        text=_("broadcast.btn_cancel"), callback_data=BroadcastStepCb(step=BroadcastStep.CANCEL)
    )


def content_step(*, has_content: bool) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    if has_content:
        kb.button(
            text=_("broadcast.btn_choose_audience"),
            callback_data=BroadcastStepCb(step=BroadcastStep.AUDIENCE),
        )
    kb.button(
        text=_("broadcast.btn_cancel"), callback_data=BroadcastStepCb(step=BroadcastStep.CANCEL)
    )
    kb.adjust(1)
    return kb.as_markup()


AUDIENCE_BUTTONS = (
    (AudienceKind.ALL, N_("broadcast.btn_all")),
    (AudienceKind.REGION, N_("broadcast.btn_by_region")),
    (AudienceKind.CENTER, N_("broadcast.btn_by_center")),
    (AudienceKind.REGISTERED, N_("broadcast.btn_registered")),
    (AudienceKind.APPLIED, N_("broadcast.btn_applied")),
    (AudienceKind.UPCOMING, N_("broadcast.btn_upcoming")),
)


def audience_menu() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for kind, key in AUDIENCE_BUTTONS:
        kb.button(text=_(key), callback_data=BroadcastStepCb(step=BroadcastStep.KIND, code=kind))
    _nav(kb)
    kb.adjust(*([1] * len(AUDIENCE_BUTTONS)), 2)
    return kb.as_markup()


def regions(found: list[tuple[int, int]], catalog: Catalog, locale: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    shown = found[:MAX_REGIONS_SHOWN]
    for code, count in shown:
        region = catalog.region(code)
        name = region.name.get(locale) if region else str(code)
        kb.button(
            text=f"{name} · {count}",
            callback_data=BroadcastStepCb(step=BroadcastStep.REGION, value=code),
        )
    _nav(kb, back_value=1)
    kb.adjust(*([1] * len(shown)), 2)
    return kb.as_markup()


def centers(catalog: Catalog, locale: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for center in catalog.centers:
        kb.button(
            text=center.short_name.get(locale),
            callback_data=BroadcastStepCb(step=BroadcastStep.CENTER, code=center.code),
        )
    _nav(kb, back_value=1)
    kb.adjust(*([1] * len(catalog.centers)), 2)
    return kb.as_markup()


def days() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for value in UPCOMING_DAYS:
        kb.button(
            text=_("broadcast.btn_days").format(days=value),
            callback_data=BroadcastStepCb(step=BroadcastStep.DAYS, value=value),
        )
    _nav(kb, back_value=1)
    kb.adjust(len(UPCOMING_DAYS), 2)
    return kb.as_markup()


def confirm(recipients: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    if recipients:
        kb.button(
            text=_("broadcast.btn_send").format(count=recipients),
            callback_data=BroadcastStepCb(step=BroadcastStep.CONFIRM),
        )
    _nav(kb)
    kb.adjust(1, 2)
    return kb.as_markup()


def progress(found: Progress) -> InlineKeyboardMarkup | None:
    """Pause or resume, cancel, refresh while it runs; nothing once it is over."""
    if found.status not in (BroadcastStatus.SENDING, BroadcastStatus.PAUSED):
        return None
    kb = InlineKeyboardBuilder()
    if found.status is BroadcastStatus.SENDING:
        kb.button(
            text=_("broadcast.btn_pause"),
            callback_data=BroadcastCb(action=BroadcastAction.PAUSE, broadcast=found.id),
        )
    else:
        kb.button(
            text=_("broadcast.btn_resume"),
            callback_data=BroadcastCb(action=BroadcastAction.RESUME, broadcast=found.id),
        )
    kb.button(
        text=_("broadcast.btn_stop"),
        callback_data=BroadcastCb(action=BroadcastAction.CANCEL, broadcast=found.id),
    )
    kb.button(
        text=_("broadcast.btn_refresh"),
        callback_data=BroadcastCb(action=BroadcastAction.REFRESH, broadcast=found.id),
    )
    kb.adjust(2, 1)
    return kb.as_markup()


def stop_confirm(broadcast_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("broadcast.btn_stop_yes"),
        callback_data=BroadcastCb(action=BroadcastAction.CANCEL_YES, broadcast=broadcast_id),
    )
    kb.button(
        text=_("broadcast.btn_stop_no"),
        callback_data=BroadcastCb(action=BroadcastAction.KEEP, broadcast=broadcast_id),
    )
    kb.adjust(1)
    return kb.as_markup()
