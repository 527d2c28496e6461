"""Keyboards of the registration dialogue (also used when a profile field is edited)."""

from __future__ import annotations

from aiogram.types import (
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)
from aiogram.utils.i18n import gettext as _

from bot.callbacks import (
    ConsentAction,
    ConsentCb,
    Field,
    RegAction,
    RegionPageCb,
    RegionPickCb,
    RegNavCb,
    SummaryAction,
    SummaryCb,
    TimeZonePickCb,
)
from bot.catalog import Region
from bot.i18n import N_
from bot.keyboards import per_locale
from bot.keyboards.builder import InlineKeyboardBuilder

REGIONS_PER_PAGE = 10


@per_locale
def consent(full_text_shown: bool) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("btn.consent_accept"), callback_data=ConsentCb(action=ConsentAction.ACCEPT))
    if full_text_shown:
        kb.button(text=_("btn.back"), callback_data=ConsentCb(action=ConsentAction.SHORT_TEXT))
    else:
        kb.button(
            text=_("btn.consent_full_text"), callback_data=ConsentCb(action=ConsentAction.FULL_TEXT)
        )
    kb.button(text=_("btn.consent_decline"), callback_data=ConsentCb(action=ConsentAction.DECLINE))
    kb.adjust(1)
    return kb.as_markup()


@per_locale
def step_nav() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("btn.back"), callback_data=RegNavCb(action=RegAction.BACK))
    kb.button(text=_("btn.cancel"), callback_data=RegNavCb(action=RegAction.CANCEL))
    return kb.as_markup()


@per_locale
def phone_request() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=_("btn.share_phone"), request_contact=True)],
            [KeyboardButton(text=_("btn.back")), KeyboardButton(text=_("btn.cancel"))],
        ],
        resize_keyboard=True,
        one_time_keyboard=False,
        input_field_placeholder=_("phone.placeholder"),
    )


@per_locale
def region_page(regions: tuple[Region, ...], page: int, locale: str) -> InlineKeyboardMarkup:
    pages = max(1, -(-len(regions) // REGIONS_PER_PAGE))
    page = min(max(page, 0), pages - 1)
    kb = InlineKeyboardBuilder()
    chunk = regions[page * REGIONS_PER_PAGE : (page + 1) * REGIONS_PER_PAGE]
    for region in chunk:
        kb.button(text=region.name.get(locale), callback_data=RegionPickCb(code=region.code))
    sizes = [1] * len(chunk)
    if pages > 1:
        kb.button(text="◀️", callback_data=RegionPageCb(page=(page - 1) % pages))
        kb.button(text=f"{page + 1}/{pages}", callback_data=RegionPageCb(page=page))
        kb.button(text="▶️", callback_data=RegionPageCb(page=(page + 1) % pages))
        sizes.append(3)
    kb.button(text=_("btn.back"), callback_data=RegNavCb(action=RegAction.BACK))
    kb.button(text=_("btn.cancel"), callback_data=RegNavCb(action=RegAction.CANCEL))
    sizes.append(2)
    kb.adjust(*sizes)
    return kb.as_markup()


def region_matches(regions: list[Region], locale: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for region in regions:
        kb.button(text=region.name.get(locale), callback_data=RegionPickCb(code=region.code))
    kb.button(text=_("btn.region_list"), callback_data=RegionPageCb(page=0))
    kb.adjust(1)
    return kb.as_markup()


def time_zones(region: Region, locale: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for index, choice in enumerate(region.time_zones):
        kb.button(
            text=choice.label.get(locale),
            callback_data=TimeZonePickCb(region=region.code, index=index),
        )
    kb.button(text=_("btn.back"), callback_data=RegNavCb(action=RegAction.BACK))
    kb.adjust(1)
    return kb.as_markup()


@per_locale
def summary() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for field, key in (
        (Field.FULL_NAME, N_("btn.edit_name")),
        (Field.BIRTH_DATE, N_("btn.edit_birth_date")),
        (Field.PHONE, N_("btn.edit_phone")),
        (Field.REGION, N_("btn.edit_region")),
    ):
        kb.button(text=_(key), callback_data=SummaryCb(action=SummaryAction.EDIT, field=field))
    kb.button(text=_("btn.confirm"), callback_data=SummaryCb(action=SummaryAction.CONFIRM))
    kb.adjust(2, 2, 1)
    return kb.as_markup()


def resume_or_restart() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("btn.resume"), callback_data=RegNavCb(action=RegAction.RESUME))
    kb.button(text=_("btn.restart"), callback_data=RegNavCb(action=RegAction.RESTART))
    kb.adjust(1)
    return kb.as_markup()


def cancel_confirm() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("btn.cancel_yes"), callback_data=RegNavCb(action=RegAction.CANCEL_YES))
    kb.button(text=_("btn.cancel_no"), callback_data=RegNavCb(action=RegAction.CANCEL_NO))
    kb.adjust(1)
    return kb.as_markup()
