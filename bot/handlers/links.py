"""Moving to the other messenger (services.links): «Перейти в MAX / Telegram» in the profile
gives a one-time code; on the other messenger the code (its deep link, or ``/link CODE``) is
confirmed, and the patient's record moves there."""

from __future__ import annotations

import logging
from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.callbacks import LinkAction, LinkCb, ProfileAction, ProfileCb
from bot.fsm.states import AccountLink
from bot.handlers.flow import Flow
from bot.handlers.utils import drop_buttons
from bot.i18n import N_
from bot.keyboards import menu as menu_kb
from bot.messengers.identity import Messenger, current_messenger
from bot.messengers.routing import bot_for, move_target
from bot.pseudonyms import tg
from bot.services.links import (
    CODE_TTL,
    START_PREFIX,
    LinkRefusal,
    LinkRefusedError,
    LinkService,
    normalized,
    shown,
)
from bot.services.patients import PatientDTO
from bot.views import polite_name

log = logging.getLogger(__name__)

#: A bot's link that opens the chat with it and sends /start <payload>.
START_LINKS = {
    Messenger.TELEGRAM: "https://t.me/{username}?start={payload}",
    Messenger.MAX: "https://max.ru/{username}?start={payload}",
}
REFUSALS = {
    LinkRefusal.UNKNOWN: N_("link.refused_unknown"),
    LinkRefusal.EXPIRED: N_("link.refused_expired"),
    LinkRefusal.USED: N_("link.refused_used"),
    LinkRefusal.SAME_MESSENGER: N_("link.refused_same_messenger"),
    LinkRefusal.REGISTERED_HERE: N_("link.refused_registered_here"),
}


def router() -> Router:
    """Before /start (its deep link) and for everyone: the code is entered where the person
    is not registered yet."""
    r = Router(name="links")
    r.message.register(
        enter_code, CommandStart(deep_link=True, magic=F.args.startswith(START_PREFIX))
    )
    r.message.register(enter_code, Command("link"))
    r.callback_query.register(ask_code, ProfileCb.filter(F.action == ProfileAction.MOVE))
    r.callback_query.register(
        confirm, AccountLink.confirm, LinkCb.filter(F.action == LinkAction.CONFIRM)
    )
    r.callback_query.register(cancel, LinkCb.filter(F.action == LinkAction.CANCEL))
    return r


async def ask_code(
    _query: CallbackQuery,
    flow: Flow,
    links: LinkService,
    patient: PatientDTO | None,
    callback_answer: CallbackAnswer,
) -> None:
    """On the messenger they are registered on: a code and a link for the other one."""
    target = move_target(flow.bot)
    target_bot = bot_for(flow.bot, target) if target is not None else None
    if patient is None or target is None or target_bot is None:
        callback_answer.text = _("link.unavailable")
        return
    offer = await links.issue(flow.user_id)
    me = await target_bot.me()
    link = START_LINKS[target].format(username=me.username or "", payload=START_PREFIX + offer.code)
    await flow.send(
        _("link.code").format(
            messenger=target.label,
            code=shown(offer.code),
            minutes=int(CODE_TTL.total_seconds() // 60),
            link=escape(link),
        )
    )


async def enter_code(
    _message: Message,
    command: CommandObject,
    flow: Flow,
    links: LinkService,
    patient: PatientDTO | None,
) -> None:
    """On the other messenger: the code checked, then the move asked to be confirmed."""
    typed = command.args or ""
    if not typed.strip():
        await flow.send(_("link.how"))
        return
    try:
        name = await links.check(typed, flow.user_id)
    except LinkRefusedError as refused:
        await _refused(flow, refused.reason, patient)
        return
    await flow.state.set_state(AccountLink.confirm)
    await flow.state.set_data({"link_code": normalized(typed)})
    await flow.send(
        _("link.confirm").format(
            name=escape(polite_name(name)), messenger=current_messenger().label
        ),
        reply_markup=menu_kb.link_confirm(),
    )


async def confirm(
    query: CallbackQuery, flow: Flow, links: LinkService, bot: Bot, fsm_storage: BaseStorage
) -> None:
    await drop_buttons(query)
    code = str((await flow.state.get_data()).get("link_code") or "")
    await flow.state.clear()
    here = current_messenger()
    try:
        farewell = _("link.farewell").format(messenger=here.label)
        moved = await links.redeem(code, flow.user_id, farewell)
    except LinkRefusedError as refused:
        await _refused(flow, refused.reason, None)
        return
    # Whatever the old account was in the middle of ends: it is no longer this patient.
    old_bot = bot_for(bot, moved.old_messenger)
    if old_bot is not None:
        key = StorageKey(bot_id=old_bot.id, chat_id=moved.old_chat_id, user_id=moved.old_user_id)
        await FSMContext(fsm_storage, key).clear()
    await flow.send(
        _("link.done").format(
            name=escape(polite_name(moved.full_name)),
            here=here.label,
            old=moved.old_messenger.label,
        ),
        reply_markup=menu_kb.main_menu(),
    )


async def cancel(query: CallbackQuery, flow: Flow) -> None:
    await drop_buttons(query)
    if await flow.state.get_state() == AccountLink.confirm.state:
        await flow.state.clear()
    await flow.send(_("link.cancelled"))


async def _refused(flow: Flow, reason: LinkRefusal, patient: PatientDTO | None) -> None:
    log.info("a link code refused: %s (user %s)", reason.value, tg(flow.user_id))
    await flow.send(
        _(REFUSALS[reason]),
        reply_markup=menu_kb.main_menu() if patient is not None else ReplyKeyboardRemove(),
    )
