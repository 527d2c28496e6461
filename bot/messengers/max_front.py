"""Patients on MAX: when ``MAX_BOT_TOKEN`` is set, the bot process also polls MAX and handles
its updates with the patients' routers (staff stay in Telegram, where forum topics exist), the
same services, dialogue storage and database. Its updates go through the same inbox and runner
as Telegram's (``bot.runner``, as a ``Front``). Imports aiogram-max only when created."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiogram import Router

from bot.config import Settings
from bot.handlers import errors, private_router, run_sync_filters_inline
from bot.handlers.routing import compile_routes
from bot.messengers import require_max_support
from bot.messengers.identity import Messenger, serving
from bot.messengers.routing import DeliverToMax, DeliverToTelegram, incoming_max_message
from bot.runner import Front

if TYPE_CHECKING:
    from aiogram import Bot, Dispatcher
    from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
    from aiogram.types import Update
    from aiogram.utils.i18n import I18n

    from bot.app import Services

logger = logging.getLogger("bot.messengers.max")


def build_patient_router(i18n: I18n) -> Router:
    """The private-chat routers of ``bot.handlers.build_root_router`` without the coordinators'
    (a MAX user id may equal a Telegram coordinator's) and without the staff chats."""
    root = Router(name="max-root")
    root.include_routers(private_router(i18n, with_coordinators=False), errors.router())
    run_sync_filters_inline(root)
    compile_routes(root)
    return root


def chat_of(update: Update) -> int | None:
    if update.message is not None:
        return update.message.chat.id
    if update.callback_query is not None and update.callback_query.message is not None:
        return update.callback_query.message.chat.id
    return None


async def feed_max_update(dp: Dispatcher, bot: Bot, update: Update) -> Any:
    """Handle one MAX update as MAX's: identity (messenger, user id), the chat to answer."""
    user = update.message.from_user if update.message is not None else None
    token = incoming_max_message.set(update.message)
    try:
        with serving(Messenger.MAX, chat_of(update), user.id if user else None):
            return await dp.feed_update(bot, update)
    finally:
        incoming_max_message.reset(token)


@dataclass
class MaxFront:
    bot: Bot
    dp: Dispatcher

    @classmethod
    async def create(
        cls,
        settings: Settings,
        services: Services,
        storage: BaseStorage | None = None,
        isolation: BaseEventIsolation | None = None,
        *,
        bot: Bot | None = None,
        telegram_bot: Bot | None = None,
    ) -> MaxFront:
        """``telegram_bot``: the bot of the outbox and the staff handlers; its calls to a MAX
        patient's chat are routed to the MAX bot (bot.messengers.routing)."""
        require_max_support()
        from bot.dispatcher import create_dispatcher
        from bot.messengers.max_adapter import connect_max_bot

        if bot is None:
            assert settings.max_bot_token is not None
            bot = await connect_max_bot(
                settings.max_bot_token.get_secret_value(), settings.max_api_base
            )
        if telegram_bot is not None:
            telegram_bot.session.middleware(DeliverToMax(bot))
            bot.session.middleware(DeliverToTelegram(telegram_bot))
        dp = create_dispatcher(
            services, bot, storage, isolation, root=build_patient_router(services.i18n)
        )
        return cls(bot, dp)

    def front(self) -> Front:
        """What the runner polls, stores in the inbox and hands MAX's updates to."""
        return Front(Messenger.MAX, self.bot, self.dp, feed_max_update)

    async def start(self) -> None:
        await self.dp.emit_startup(bot=self.bot, **self.dp.workflow_data)
        logger.info("MAX: serving patients (bot id=%s)", self.bot.id)

    async def stop(self) -> None:
        await self.dp.emit_shutdown(bot=self.bot, **self.dp.workflow_data)
        await self.bot.session.close()
