"""Which bot a call goes to when both messengers serve one process.

- On the Telegram bot (the outbox, the staff handlers): a call to the chat of the MAX patient
  being served goes to the MAX bot instead (``DeliverToMax``).
- On the MAX bot (the patients' handlers of a MAX update): a call to any other chat (a staff
  forum, where a MAX patient's question goes) goes to the Telegram bot (``DeliverToTelegram``);
  copying the patient's message there becomes a send of its text or file, since the two
  platforms cannot copy each other's messages.
"""

from __future__ import annotations

from contextvars import ContextVar
from html import escape
from typing import TYPE_CHECKING, Any, cast

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import CopyMessage, SendDocument, SendMessage, SendPhoto, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import BufferedInputFile, Message

from bot.messengers import require_max_support
from bot.messengers.identity import Address, Messenger, current_address

if TYPE_CHECKING:
    from aiogram import Bot

    from bot.config import Settings

#: The MAX message being handled (set by bot.messengers.max_front.feed_max_update): what a copy
#: of it to Telegram is made from.
incoming_max_message: ContextVar[Message | None] = ContextVar("incoming_max_message", default=None)


def _to_served_patient(address: Address, chat_id: Any) -> bool:
    return (
        address.messenger is Messenger.MAX
        and address.chat_id is not None
        and chat_id is not None
        and chat_id in (address.chat_id, address.user_id)
    )


class DeliverToMax(BaseRequestMiddleware):
    """A request middleware of the Telegram bot."""

    def __init__(self, max_bot: Bot) -> None:
        self._max_bot = max_bot

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        address = current_address()
        if not _to_served_patient(address, getattr(method, "chat_id", None)):
            return await make_request(bot, method)
        if isinstance(method, CopyMessage):
            # MAX cannot copy a Telegram message and aiogram-max has no copy_message: said,
            # so the sender reports it (the relay tells the doctor "not delivered").
            raise TelegramBadRequest(method, "copy to MAX is not supported: send text")
        # Writers address a patient by user id; on MAX their dialog has its own chat id.
        moved = method.model_copy(update={"chat_id": address.chat_id})
        # A session returns the result itself, whatever aiogram's annotation says.
        return cast("Response[TelegramType]", await self._max_bot(moved))


class DeliverToTelegram(BaseRequestMiddleware):
    """A request middleware of the MAX bot."""

    def __init__(self, telegram_bot: Bot) -> None:
        self._telegram_bot = telegram_bot

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        address = current_address()
        chat_id = getattr(method, "chat_id", None)
        if (
            address.messenger is not Messenger.MAX
            or chat_id is None
            or _to_served_patient(address, chat_id)
        ):
            return await make_request(bot, method)
        if isinstance(method, CopyMessage):
            return cast("Response[TelegramType]", await self._copy_to_telegram(bot, method))
        return cast("Response[TelegramType]", await self._telegram_bot(method))

    async def _copy_to_telegram(self, max_bot: Bot, method: CopyMessage) -> Message:
        source = incoming_max_message.get()
        if source is None or source.message_id != method.message_id:
            raise TelegramBadRequest(method, "only the MAX message being handled can be copied")
        caption = method.caption or source.caption or source.text
        common: dict[str, Any] = {
            "chat_id": method.chat_id,
            "message_thread_id": method.message_thread_id,
            "reply_parameters": method.reply_parameters,
        }
        file_id = source.document.file_id if source.document else None
        if source.photo:
            file_id = source.photo[-1].file_id
        if file_id is None:
            text = method.caption or escape(source.text or "")
            return await self._telegram_bot(SendMessage(text=text, **common))
        data = await max_bot.download(file_id)
        assert data is not None
        name = source.document.file_name if source.document else None
        upload = BufferedInputFile(data.read(), filename=name or "file")
        shown = escape(caption) if caption and not method.caption else caption
        if source.photo:
            return await self._telegram_bot(SendPhoto(photo=upload, caption=shown, **common))
        return await self._telegram_bot(SendDocument(document=upload, caption=shown, **common))


async def attach_max_delivery(settings: Settings, telegram_bot: Bot) -> Bot:
    """For a process that only delivers the outbox (``python -m scheduler``): the MAX bot, with
    the Telegram bot's calls to a MAX patient's chat routed to it. The caller closes it.
    Here, not in max_front, so that the scheduler process imports no handlers."""
    require_max_support()
    from bot.messengers.max_adapter import connect_max_bot

    assert settings.max_bot_token is not None
    max_bot = await connect_max_bot(
        settings.max_bot_token.get_secret_value(), settings.max_api_base
    )
    telegram_bot.session.middleware(DeliverToMax(max_bot))
    return max_bot
