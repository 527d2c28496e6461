"""What every Bot API request of the bot goes through: a change that changes nothing is success.

Telegram answers 400 "message is not modified" when an edit would leave a message exactly as it
is (a double tap, a button pressed on a message already showing its answer, a refreshed figure
that did not change). The message shows what it should, so for the bot that is the edit done."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import (
    CloseForumTopic,
    EditForumTopic,
    EditMessageCaption,
    EditMessageMedia,
    EditMessageReplyMarkup,
    EditMessageText,
    ReopenForumTopic,
)
from aiogram.methods.base import TelegramType

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response, TelegramMethod

EDITS = (
    EditMessageText,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageMedia,
    # a topic closed, reopened or renamed into the state it already has: TOPIC_NOT_MODIFIED
    CloseForumTopic,
    ReopenForumTopic,
    EditForumTopic,
)


def is_not_modified(error: TelegramBadRequest) -> bool:
    return "not_modified" in error.message.lower().replace(" ", "_")


class NotModifiedIsSuccess(BaseRequestMiddleware):
    """An edit refused as "not modified" returns True, as a successful edit of an inline
    message does (the edit methods return a Message or True; the topic methods True)."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except TelegramBadRequest as error:
            if isinstance(method, EDITS) and is_not_modified(error):
                result: Any = True  # what the session returns is the method's result
                return cast("Response[TelegramType]", result)
            raise
