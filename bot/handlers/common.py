"""/start, /help, /cancel and the main menu items that every patient has."""

from __future__ import annotations

from html import escape

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message, ReplyKeyboardRemove
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.fsm.states import Registration
from bot.handlers.flow import Flow
from bot.i18n import variants
from bot.keyboards import menu as menu_kb
from bot.keyboards import registration as kb
from bot.services.patients import PatientDTO
from bot.views import polite_name


def router(i18n: I18n) -> Router:
    r = Router(name="common")
    r.message.register(start, CommandStart())
    r.message.register(cancel, Command("cancel"))
    r.message.register(help_, Command("help"))
    r.message.register(help_, F.text.in_(variants(i18n, "menu.help")))
    return r


async def start(_message: Message, flow: Flow, patient: PatientDTO | None) -> None:
    current = await flow.state.get_state()
    if patient is not None:
        await flow.state.clear()
        await flow.send(
            _("menu.welcome_back").format(name=escape(polite_name(patient.full_name))),
            reply_markup=menu_kb.main_menu(),
        )
        return
    in_registration = current is not None and current.startswith(Registration.__name__)
    if in_registration and current != Registration.consent.state:
        await flow.send(_("reg.resume_question"), reply_markup=kb.resume_or_restart())
        return
    await flow.welcome()


async def cancel(_message: Message, flow: Flow, patient: PatientDTO | None) -> None:
    current = await flow.state.get_state()
    if current is None:
        await flow.send(
            _("common.nothing_to_cancel"),
            reply_markup=menu_kb.main_menu() if patient else ReplyKeyboardRemove(),
        )
        return
    if current.startswith(Registration.__name__):
        await flow.ask_cancel()
        return
    await flow.state.clear()
    await flow.send(
        _("common.cancelled"),
        reply_markup=menu_kb.main_menu() if patient else ReplyKeyboardRemove(),
    )


async def help_(_message: Message, flow: Flow, patient: PatientDTO | None) -> None:
    current = await flow.state.get_state()
    if current is not None and current.startswith(Registration.__name__):
        await flow.send(_("help.text"))
        await flow.ask(current)
        return
    await flow.leave_chat_with_doctor()
    text = _("help.text")
    if flow.user_id in flow.settings.coordinator_ids:  # only they learn the admin commands
        text += "\n\n" + _("help.coordinator")
    await flow.send(text, reply_markup=menu_kb.main_menu() if patient else ReplyKeyboardRemove())
