"""Profile: show the data, edit a field, switch the language, erase everything."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import BufferedInputFile, CallbackQuery, Message, ReplyKeyboardRemove, Update
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.callbacks import LanguageCb, ProfileAction, ProfileCb
from bot.fsm.backends import forget_dialogues
from bot.fsm.data import Mode
from bot.fsm.states import Profile
from bot.handlers.flow import Flow
from bot.handlers.utils import drop_buttons
from bot.i18n import variants
from bot.keyboards import menu as menu_kb
from bot.messengers.routing import move_target
from bot.my_data_view import render_my_data
from bot.services.my_data import MyDataService
from bot.services.patients import NotRegisteredError, PatientDTO
from bot.views import profile_text


def router(i18n: I18n) -> Router:
    """Only for registered patients: the parent router filters on that."""
    r = Router(name="profile")
    r.message.register(show, Command("profile"))
    r.message.register(show, F.text.in_(variants(i18n, "menu.profile")))
    r.callback_query.register(back_to_profile, ProfileCb.filter(F.action == ProfileAction.SHOW))
    r.callback_query.register(edit, ProfileCb.filter(F.action == ProfileAction.EDIT))
    r.callback_query.register(language, ProfileCb.filter(F.action == ProfileAction.LANGUAGE))
    r.callback_query.register(set_language, LanguageCb.filter())
    r.callback_query.register(my_data, ProfileCb.filter(F.action == ProfileAction.MY_DATA))
    r.callback_query.register(delete_ask, ProfileCb.filter(F.action == ProfileAction.DELETE))
    r.callback_query.register(
        delete_confirm,
        Profile.delete_confirm,
        ProfileCb.filter(F.action == ProfileAction.DELETE_YES),
    )
    r.callback_query.register(
        delete_final, Profile.delete_final, ProfileCb.filter(F.action == ProfileAction.DELETE_FINAL)
    )
    r.message.register(delete_pending, StateFilter(Profile.delete_confirm, Profile.delete_final))
    return r


async def show(_message: Message, flow: Flow) -> None:
    await flow.state.clear()
    await flow.show_profile()


async def back_to_profile(query: CallbackQuery, flow: Flow, patient: PatientDTO) -> None:
    await flow.state.clear()
    text = profile_text(patient, flow.catalog, flow.locale, flow.clock())
    assert isinstance(query.message, Message)
    await query.message.edit_text(text, reply_markup=menu_kb.profile(move_target(flow.bot)))


async def edit(query: CallbackQuery, callback_data: ProfileCb, flow: Flow) -> None:
    if callback_data.field is None:
        return
    await drop_buttons(query)
    await flow.start_edit(callback_data.field, Mode.PROFILE_EDIT)


async def language(query: CallbackQuery) -> None:
    assert isinstance(query.message, Message)
    await query.message.edit_text(_("language.choose"), reply_markup=menu_kb.languages())


async def set_language(
    query: CallbackQuery, callback_data: LanguageCb, flow: Flow, i18n: I18n
) -> None:
    await flow.patients.set_locale(flow.user_id, callback_data.locale.value)
    with i18n.use_locale(callback_data.locale.value):
        flow.locale = callback_data.locale.value
        await drop_buttons(query)
        await flow.send(_("language.changed"), reply_markup=menu_kb.main_menu())
        await flow.show_profile()


async def my_data(
    _query: CallbackQuery, flow: Flow, my_data: MyDataService, callback_answer: CallbackAnswer
) -> None:
    try:
        data = await my_data.collect(flow.user_id)
    except NotRegisteredError:
        callback_answer.text = _("common.stale_button")
        return
    content = render_my_data(data, flow.catalog, flow.locale)
    await flow.bot.send_document(
        flow.chat_id,
        BufferedInputFile(content, filename=f"my_data_{data.made_at:%Y%m%d}.html"),
        caption=_("mydata.caption"),
    )


async def delete_ask(query: CallbackQuery, flow: Flow) -> None:
    await flow.state.set_state(Profile.delete_confirm)
    assert isinstance(query.message, Message)
    await query.message.edit_text(_("delete.first"), reply_markup=menu_kb.delete_step(False))


async def delete_confirm(query: CallbackQuery, flow: Flow) -> None:
    await flow.state.set_state(Profile.delete_final)
    assert isinstance(query.message, Message)
    await query.message.edit_text(_("delete.final"), reply_markup=menu_kb.delete_step(True))


async def delete_final(
    query: CallbackQuery,
    flow: Flow,
    callback_answer: CallbackAnswer,
    fsm_storage: BaseStorage,
    event_update: Update,
) -> None:
    try:
        report = await flow.patients.erase(flow.user_id, update_id=event_update.update_id)
    except NotRegisteredError:
        callback_answer.text = _("common.stale_button")
        return
    await forget_dialogues(fsm_storage, flow.user_id)  # Redis: the SQL rows went above
    await flow.state.clear()
    assert isinstance(query.message, Message)
    await query.message.edit_text(_("delete.done_title"))
    await flow.send(
        _("delete.done").format(files=report.files, record=report.patient_id),
        reply_markup=ReplyKeyboardRemove(),
    )


async def delete_pending(_message: Message, flow: Flow) -> None:
    await flow.send(_("delete.use_buttons"))
