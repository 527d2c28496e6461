"""The main menu (reply keyboard) and the profile's inline keyboards."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.callbacks import (
    Field,
    Language,
    LanguageCb,
    LinkAction,
    LinkCb,
    ProfileAction,
    ProfileCb,
)
from bot.i18n import N_
from bot.keyboards import per_locale
from bot.keyboards.builder import InlineKeyboardBuilder
from bot.messengers.identity import Messenger

# Menu items in order; a feature adds its key here when it exists.
MENU_ITEMS: tuple[str, ...] = (
    N_("menu.apply"),
    N_("menu.my_applications"),
    N_("menu.duty"),
    N_("menu.consultations"),
    N_("menu.documents"),
    N_("menu.conclusions"),
    N_("menu.ask_doctor"),
    N_("menu.profile"),
    N_("menu.help"),
)


@per_locale
def main_menu() -> ReplyKeyboardMarkup:
    buttons = [KeyboardButton(text=_(key)) for key in MENU_ITEMS]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True, is_persistent=True)


#: «Перейти в …» of the profile, by the messenger the patient would move to.
MOVE_BUTTONS = {
    Messenger.MAX: N_("btn.move_to_max"),
    Messenger.TELEGRAM: N_("btn.move_to_telegram"),
}


@per_locale
def profile(move_to: Messenger | None = None) -> InlineKeyboardMarkup:
    """``move_to``: the other messenger, when this process serves it (services.links)."""
    kb = InlineKeyboardBuilder()
    for field, key in (
        (Field.FULL_NAME, N_("btn.edit_name")),
        (Field.BIRTH_DATE, N_("btn.edit_birth_date")),
        (Field.PHONE, N_("btn.edit_phone")),
        (Field.REGION, N_("btn.edit_region")),
    ):
        kb.button(text=_(key), callback_data=ProfileCb(action=ProfileAction.EDIT, field=field))
    kb.button(text=_("btn.language"), callback_data=ProfileCb(action=ProfileAction.LANGUAGE))
    kb.button(text=_("btn.my_data"), callback_data=ProfileCb(action=ProfileAction.MY_DATA))
    if move_to is not None:
        kb.button(text=_(MOVE_BUTTONS[move_to]), callback_data=ProfileCb(action=ProfileAction.MOVE))
    kb.button(text=_("btn.delete_data"), callback_data=ProfileCb(action=ProfileAction.DELETE))
    kb.adjust(2, 2, 1, 1, *((1,) if move_to is not None else ()), 1)
    return kb.as_markup()


def link_confirm() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("btn.link_confirm"), callback_data=LinkCb(action=LinkAction.CONFIRM))
    kb.button(text=_("btn.cancel"), callback_data=LinkCb(action=LinkAction.CANCEL))
    kb.adjust(1)
    return kb.as_markup()


def languages() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text="Русский", callback_data=LanguageCb(locale=Language.RU))
    kb.button(text="English", callback_data=LanguageCb(locale=Language.EN))
    kb.button(text=_("btn.back"), callback_data=ProfileCb(action=ProfileAction.SHOW))
    kb.adjust(2, 1)
    return kb.as_markup()


def delete_step(final: bool) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    action = ProfileAction.DELETE_FINAL if final else ProfileAction.DELETE_YES
    key = N_("btn.delete_final") if final else N_("btn.delete_yes")
    kb.button(text=_(key), callback_data=ProfileCb(action=action))
    kb.button(text=_("btn.delete_no"), callback_data=ProfileCb(action=ProfileAction.SHOW))
    kb.adjust(1)
    return kb.as_markup()
