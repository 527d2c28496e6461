"""The bot process's Dispatcher: the handlers' routers, middlewares and workflow data, and the
commands menu. The scheduler process never imports this module (it delivers without handlers)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiogram import Bot, Dispatcher, Router
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.fsm.strategy import FSMStrategy
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat
from aiogram.utils.i18n import I18n

from bot.app import Services, build_outbox
from bot.fsm.storage import SQLStorage
from bot.fsm.unit import DialogueUnitMiddleware
from bot.handlers import build_root_router
from bot.handlers.errors import CallbackAnswerMiddleware
from bot.i18n import N_, LocaleMiddleware
from bot.middlewares import InFlightMiddleware, PatientMiddleware
from bot.pseudonyms import tg
from bot.staff_access import StaffAccess
from bot.uploads import UploadCoordinator

log = logging.getLogger(__name__)


def create_dispatcher(
    services: Services,
    bot: Bot,
    storage: BaseStorage | None = None,
    isolation: BaseEventIsolation | None = None,
    *,
    root: Router | None = None,  # all routers by default; MAX: the patients' only
) -> Dispatcher:
    uploads = UploadCoordinator(
        bot,
        services.documents,
        services.catalog,
        services.i18n,
        services.clock,
        on_document=services.applications.documents_added,
    )
    sender = build_outbox(services, bot)
    dp = Dispatcher(
        storage=storage or SQLStorage(services.sessions),
        events_isolation=isolation or SimpleEventIsolation(),
        # A doctor's half-done step (a decline reason, a typed time) belongs to the topic of
        # the card it was started on: text in another patient's topic is not taken for it.
        fsm_strategy=FSMStrategy.USER_IN_TOPIC,
        settings=services.settings,
        catalog=services.catalog,
        sessions=services.sessions,
        clock=services.clock,
        patients=services.patients,
        documents=services.documents,
        applications=services.applications,
        booking=services.booking,
        relay=services.relay,
        schedule=services.schedule,
        broadcasts=services.broadcasts,
        statistics=services.statistics,
        referrals=services.referrals,
        reminders=services.reminders,
        audit=services.audit,
        my_data=services.my_data,
        links=services.links,
        uploads=uploads,
        outbox=sender,
        access=StaffAccess(),
    )
    dp.startup.register(uploads.resume)
    dp.shutdown.register(uploads.close)
    in_flight = InFlightMiddleware()
    dp["in_flight"] = in_flight
    dp.update.outer_middleware(DialogueUnitMiddleware(dp.fsm.storage))
    dp.update.outer_middleware(in_flight)
    dp.update.outer_middleware(PatientMiddleware(services.patients))
    LocaleMiddleware(services.i18n).setup(dp)
    dp.callback_query.middleware(CallbackAnswerMiddleware())
    dp.include_router(root or build_root_router(services.i18n))
    return dp


COMMANDS = {
    "start": N_("command.start"),
    "profile": N_("command.profile"),
    "help": N_("command.help"),
    "cancel": N_("command.cancel"),
}

#: Commands of coordinators (COORDINATOR_IDS), shown in their own chats' menus only.
COORDINATOR_COMMANDS = {
    "schedule": N_("command.schedule"),
    "template": N_("command.template"),
    "import": N_("command.import"),
    "relink": N_("command.relink"),
    "broadcast": N_("command.broadcast"),
    "stats": N_("command.stats"),
    "export": N_("command.export"),
    "audit": N_("command.audit"),
}


async def set_max_commands(bot: Bot, i18n: I18n) -> None:
    """The patients' commands on MAX. MAX keeps one list per bot, without scopes or languages
    (aiogram-max would drop them with a warning): the list in the default language, and no
    coordinators' commands (coordinators stay in Telegram)."""
    locale = i18n.default_locale
    await bot.set_my_commands(
        [
            BotCommand(command=name, description=i18n.gettext(key, locale=locale))
            for name, key in COMMANDS.items()
        ]
    )


async def set_commands(bot: Bot, i18n: I18n, coordinator_ids: Iterable[int] = ()) -> None:
    """The commands menu in Russian (also the default) and English; coordinators also see their
    own commands, in their private chat only (nobody else learns the admin surface exists)."""
    for language in (None, *i18n.available_locales):
        locale = language or i18n.default_locale
        commands = [
            BotCommand(command=name, description=i18n.gettext(key, locale=locale))
            for name, key in COMMANDS.items()
        ]
        await bot.set_my_commands(
            commands, scope=BotCommandScopeAllPrivateChats(), language_code=language
        )
    locale = i18n.default_locale
    staff_menu = [
        BotCommand(command=name, description=i18n.gettext(key, locale=locale))
        for name, key in (COMMANDS | COORDINATOR_COMMANDS).items()
    ]
    for user_id in sorted(coordinator_ids):
        try:
            await bot.set_my_commands(staff_menu, scope=BotCommandScopeChat(chat_id=user_id))
        except (TelegramBadRequest, TelegramForbiddenError):
            # Telegram knows the chat only once the coordinator has started the bot.
            log.info("commands menu: coordinator %s has no chat with the bot yet", tg(user_id))
