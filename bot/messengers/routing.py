"""Which bot a call goes to when both messengers serve one process.

- On the Telegram bot (the outbox, the staff handlers): a call to the chat of the MAX patient
  being served goes to the MAX bot instead (``DeliverToMax``). MAX knows nothing of Telegram's
  files: a file sent by its Telegram file id (a broadcast's photo, a conclusion's PDF) is
  downloaded from Telegram and uploaded to MAX, and a copy of the doctor's message being relayed
  (``relaying``) becomes a send of its text or file. A file the bot cannot carry over (above
  Telegram's download limit for bots, or MAX's own) raises :class:`FileTooBigForMax`, which the
  callers turn into a clear text.
- On the MAX bot (the patients' handlers of a MAX update): a call to any other chat (a staff
  forum, where a MAX patient's question goes) goes to the Telegram bot (``DeliverToTelegram``);
  copying the patient's message there becomes a send of its text or file, since the two
  platforms cannot copy each other's messages. A file the MAX bot sends by a Telegram file id
  (a PDF conclusion shown in «Мои заключения») is carried over from Telegram as above.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from html import escape
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, cast

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramBadRequest, TelegramEntityTooLarge
from aiogram.methods import (
    CopyMessage,
    SendAnimation,
    SendAudio,
    SendDocument,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SendVideo,
    SendVoice,
    TelegramMethod,
)
from aiogram.methods.base import Response, TelegramType
from aiogram.types import BufferedInputFile, Message

from bot.messengers import require_max_support
from bot.messengers.identity import Address, Messenger, current_address, current_messenger

if TYPE_CHECKING:
    from aiogram import Bot

    from bot.config import Settings

#: The MAX message being handled (set by bot.messengers.max_front.feed_max_update): what a copy
#: of it to Telegram is made from.
incoming_max_message: ContextVar[Message | None] = ContextVar("incoming_max_message", default=None)
#: The Telegram message being passed on to a patient (``relaying``): what a copy of it to MAX is
#: made from.
outgoing_telegram_message: ContextVar[Message | None] = ContextVar(
    "outgoing_telegram_message", default=None
)

#: MAX's limit for a file a bot uploads (dev.max.ru: up to 4 GB). Telegram's own limit for a bot
#: downloading a file (20 MB, unless a local Bot API server is used) usually comes first.
MAX_FILE_BYTES = 4 * 1024 * 1024 * 1024

#: Send methods with a file, and the parameter that holds it.
_FILE_PARAMETERS: dict[type[TelegramMethod[Any]], str] = {
    SendPhoto: "photo",
    SendDocument: "document",
    SendVideo: "video",
    SendAudio: "audio",
    SendVoice: "voice",
    SendAnimation: "animation",
}
#: A message's content type → the method sending such a file.
_SEND_BY_CONTENT: dict[str, type[TelegramMethod[Message]]] = {
    "photo": SendPhoto,
    "document": SendDocument,
    "video": SendVideo,
    "audio": SendAudio,
    "voice": SendVoice,
    "animation": SendAnimation,
}


class FileTooBigForMax(TelegramEntityTooLarge):
    """A Telegram file that cannot be carried over to a MAX patient (too big to download from
    Telegram, or to upload to MAX). The outbox fails such a row as ``too_large``; the relay
    sends the patient a text instead and tells the doctor."""


@contextlib.contextmanager
def relaying(message: Message) -> Iterator[None]:
    """Inside, a copy of ``message`` to a MAX patient is made from it (Telegram's
    ``copyMessage`` cannot reach MAX)."""
    token = outgoing_telegram_message.set(message)
    try:
        yield
    finally:
        outgoing_telegram_message.reset(token)


def bot_for(bot: Bot, messenger: Messenger) -> Bot | None:
    """The bot that talks to ``messenger``'s users (their dialogue state is kept under its id),
    seen from ``bot`` (either of the two): ``bot`` itself or the other one its calls are routed
    to; None when this process does not serve that messenger."""
    for middleware in bot.session.middleware:
        if isinstance(middleware, DeliverToMax):  # bot is Telegram's
            return bot if messenger is Messenger.TELEGRAM else middleware.max_bot
        if isinstance(middleware, DeliverToTelegram):  # bot is MAX's
            return bot if messenger is Messenger.MAX else middleware.telegram_bot
    return bot if messenger is Messenger.TELEGRAM else None


def messenger_of(bot: Bot) -> Messenger:
    """Which messenger ``bot`` talks to: a MAX bot's session is aiogram-max's (which is loaded
    only when MAX is served)."""
    aiogram_max = sys.modules.get("aiogram_max")
    if aiogram_max is not None and isinstance(bot.session, aiogram_max.MaxSession):
        return Messenger.MAX
    return Messenger.TELEGRAM


def move_target(bot: Bot) -> Messenger | None:
    """The messenger a patient writing now could move to (services.links), when served."""
    other = Messenger.MAX if current_messenger() is Messenger.TELEGRAM else Messenger.TELEGRAM
    return other if bot_for(bot, other) is not None else None


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
        self.max_bot = max_bot

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        address = current_address()
        if not _to_served_patient(address, getattr(method, "chat_id", None)):
            return await make_request(bot, method)
        call: TelegramMethod[Any] = method
        name = None
        if isinstance(method, CopyMessage):
            # aiogram-max has no copy_message and MAX cannot copy a Telegram message: a copy
            # of the message being relayed is sent anew; any other copy is refused, said.
            call, name = _as_send(method)
        call = await _files_from_telegram(bot, call, name)
        # Writers address a patient by user id; on MAX their dialog has its own chat id.
        moved = call.model_copy(update={"chat_id": address.chat_id})
        # A session returns the result itself, whatever aiogram's annotation says.
        return cast("Response[TelegramType]", await self.max_bot(moved))


class DeliverToTelegram(BaseRequestMiddleware):
    """A request middleware of the MAX bot."""

    def __init__(self, telegram_bot: Bot) -> None:
        self.telegram_bot = telegram_bot

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        address = current_address()
        chat_id = getattr(method, "chat_id", None)
        if (
            address.messenger is Messenger.MAX
            and chat_id is not None
            and not _to_served_patient(address, chat_id)
        ):
            if isinstance(method, CopyMessage):
                return cast("Response[TelegramType]", await self._copy_to_telegram(bot, method))
            return cast("Response[TelegramType]", await self.telegram_bot(method))
        # To a MAX chat: a file kept by its Telegram id (a PDF conclusion, a document sent
        # before the patient moved to MAX) is carried over from Telegram.
        carried = await _files_from_telegram(self.telegram_bot, method)
        return await make_request(bot, cast("TelegramMethod[TelegramType]", carried))

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
            return await self.telegram_bot(SendMessage(text=text, **common))
        data = await max_bot.download(file_id)
        assert data is not None
        name = source.document.file_name if source.document else None
        upload = BufferedInputFile(data.read(), filename=name or "file")
        shown = escape(caption) if caption and not method.caption else caption
        if source.photo:
            return await self.telegram_bot(SendPhoto(photo=upload, caption=shown, **common))
        return await self.telegram_bot(SendDocument(document=upload, caption=shown, **common))


def _as_send(method: CopyMessage) -> tuple[TelegramMethod[Any], str | None]:
    """The send that makes a copy of the Telegram message being relayed, and its file's name."""
    source = outgoing_telegram_message.get()
    if (
        source is None
        or source.message_id != method.message_id
        or source.chat.id != method.from_chat_id
    ):
        raise TelegramBadRequest(method, "copy to MAX: only the message being relayed")
    common: dict[str, Any] = {
        "chat_id": method.chat_id,
        "reply_parameters": method.reply_parameters,
        "reply_markup": method.reply_markup,
    }
    if source.text is not None:
        return SendMessage(text=method.caption or source.html_text, **common), None
    send = _SEND_BY_CONTENT.get(source.content_type)
    if send is None:  # a sticker, a location, a poll...: nothing MAX could show
        raise TelegramBadRequest(method, f"copy to MAX: {source.content_type} is not supported")
    if source.photo:
        file_id = source.photo[-1].file_id
    else:
        file_id = getattr(source, source.content_type).file_id
    caption = method.caption
    if caption is None and source.caption:
        caption = source.html_text
    call = send.model_validate({**common, _FILE_PARAMETERS[send]: file_id, "caption": caption})
    return call, _file_name(source)


def _file_name(message: Message) -> str | None:
    for kind in ("document", "audio", "video", "animation"):
        media = getattr(message, kind)
        if media is not None and media.file_name:
            return str(media.file_name)
    return None


async def _files_from_telegram(
    telegram_bot: Bot, method: TelegramMethod[Any], name: str | None = None
) -> TelegramMethod[Any]:
    """The method with each file given by a Telegram file id replaced by its bytes (a URL and
    an uploaded file stay as they are)."""
    if isinstance(method, SendMediaGroup):
        media = [
            item.model_copy(update={"media": await _carried(telegram_bot, method, item.media)})
            for item in method.media
        ]
        return method.model_copy(update={"media": media})
    parameter = _FILE_PARAMETERS.get(type(method))
    if parameter is None:
        return method
    carried = await _carried(telegram_bot, method, getattr(method, parameter), name)
    return method.model_copy(update={parameter: carried})


async def _carried(
    telegram_bot: Bot, method: TelegramMethod[Any], file: Any, name: str | None = None
) -> Any:
    if not isinstance(file, str) or file.startswith(("http://", "https://")):
        return file
    try:
        found = await telegram_bot.get_file(file)
    except TelegramBadRequest as error:
        if "too big" in error.message.lower():
            raise FileTooBigForMax(method, "above Telegram's download limit for bots") from error
        raise
    if (found.file_size or 0) > MAX_FILE_BYTES or found.file_path is None:
        raise FileTooBigForMax(method, "above MAX's file limit")
    data = await telegram_bot.download_file(found.file_path)
    assert data is not None
    return BufferedInputFile(data.read(), filename=name or PurePosixPath(found.file_path).name)


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
