"""Which bot a call goes to when both messengers serve one process: a call to the chat of the
MAX patient being served (an outbox row to their dialog, a reminder, a doctor's notice) goes to
the MAX bot; everything else (staff chats, Telegram patients) stays on the bot it was made on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType

from bot.messengers.identity import Messenger, current_address

if TYPE_CHECKING:
    from aiogram import Bot


class DeliverToMax(BaseRequestMiddleware):
    """A request middleware of the Telegram bot (the one the outbox and staff handlers use)."""

    def __init__(self, max_bot: Bot) -> None:
        self._max_bot = max_bot

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        address = current_address()
        chat_id: Any = getattr(method, "chat_id", None)
        if (
            address.messenger is Messenger.MAX
            and address.chat_id is not None
            and chat_id is not None
            and chat_id in (address.chat_id, address.user_id)
        ):
            # Writers address a patient by user id; on MAX their dialog has its own chat id.
            method = method.model_copy(update={"chat_id": address.chat_id})
            # A session returns the result itself, whatever aiogram's annotation says.
            return cast("Response[TelegramType]", await self._max_bot(method))
        return await make_request(bot, method)
