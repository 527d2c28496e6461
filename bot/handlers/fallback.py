"""Last in line: anything no feature took. Never silent, never loses the dialogue."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.handlers.flow import Flow
from bot.handlers.utils import drop_buttons
from bot.keyboards import menu as menu_kb
from bot.services.patients import PatientDTO


def router() -> Router:
    r = Router(name="fallback")
    r.callback_query.register(stale_button)
    r.message.register(not_understood)
    return r


def staff_router() -> Router:
    """Last in line in staff chats: a button no staff feature took (an old card's, or forged)
    is answered, so the spinner stops and nothing else happens."""
    r = Router(name="staff_fallback")
    r.callback_query.filter(F.message.chat.type != "private")
    r.callback_query.register(stale_staff_button)
    return r


async def stale_button(query: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    # An old message's button, a button of a finished dialogue, or forged data.
    callback_answer.text = _("common.stale_button")
    callback_answer.show_alert = True
    await drop_buttons(query)


async def not_understood(_message: Message, flow: Flow, patient: PatientDTO | None) -> None:
    if patient is None:
        await flow.send(_("common.not_registered"), reply_markup=ReplyKeyboardRemove())
        return
    await flow.send(_("common.not_understood"), reply_markup=menu_kb.main_menu())


async def stale_staff_button(_query: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    callback_answer.text = _("common.stale_button")
