"""The bot's own membership: a patient blocking or unblocking it (private chat), and the bot
added to a group or its rights changed there (it tells the group its id and what it lacks)."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.types import ChatMemberUpdated
from aiogram.utils.i18n import I18n

from bot.catalog import Catalog
from bot.config import Settings
from bot.pseudonyms import tg
from bot.services.applications import ApplicationService
from bot.services.patients import PatientService
from bot.staff_chats import DUTY, check_chat, group_greeting

log = logging.getLogger(__name__)

#: Statuses in which the bot is in a group and may be able to write.
PRESENT = frozenset({"member", "administrator", "creator", "restricted"})


def router(i18n: I18n) -> Router:
    r = Router(name="membership")
    private = F.chat.type == "private"
    r.my_chat_member.register(blocked, private, F.new_chat_member.status == "kicked")
    r.my_chat_member.register(unblocked, private, F.new_chat_member.status == "member")
    r.my_chat_member.register(group_status, F.chat.type.in_({"group", "supergroup"}))
    return r


async def blocked(
    event: ChatMemberUpdated, patients: PatientService, applications: ApplicationService
) -> None:
    log.info("user %s blocked the bot", tg(event.chat.id))
    await patients.mark_unreachable(None, event.chat.id)
    await applications.refresh_cards(None, event.chat.id)


async def unblocked(event: ChatMemberUpdated, patients: PatientService) -> None:
    log.info("user %s unblocked the bot", tg(event.chat.id))
    await patients.mark_reachable(event.chat.id)


async def group_status(
    event: ChatMemberUpdated, bot: Bot, catalog: Catalog, settings: Settings, i18n: I18n
) -> None:
    new = event.new_chat_member
    if new.status not in PRESENT or getattr(new, "can_send_messages", True) is False:
        return  # removed, or muted: nothing can be said there
    chat_id = event.chat.id
    log.info("bot is %s in chat %s", new.status, tg(chat_id))
    problems, _title = await check_chat(bot, chat_id)
    roles = [c.code for c in catalog.centers if c.staff_chat_id == chat_id]
    if settings.duty_chat_id == chat_id:
        roles.append(DUTY)
    me = await bot.me()
    text = group_greeting(
        chat_id,
        roles,
        problems,
        catalog,
        i18n,
        settings.default_locale,
        bot_username=me.username or "",
    )
    await bot.send_message(chat_id, text)
