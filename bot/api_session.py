"""What every Bot API request of the bot goes through: a JSON body when no file is sent, and a
change that changes nothing is success.

Telegram answers 400 "message is not modified" when an edit would leave a message exactly as it
is (a double tap, a button pressed on a message already showing its answer, a refreshed figure
that did not change). The message shows what it should, so for the bot that is the edit done."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramBadRequest, TelegramNetworkError
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
from aiohttp import ClientError, ClientTimeout

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


class JsonBodySession(AiohttpSession):
    """aiogram's aiohttp session, sending a request without files as one JSON document.

    aiogram sends every request as form data: each parameter URL-quoted on its own, each nested
    one (a keyboard) as a JSON string inside it, then the form encoded; about 4 % of the bot's CPU
    per update. The Bot API takes the same parameters as a JSON body (files still need
    multipart, so a request with files goes aiogram's way). Values are prepared by aiogram's own
    ``prepare_value`` (bot defaults, enums, dates) and empty ones left out, as aiogram does."""

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109  (aiogram's signature)
    ) -> TelegramType:
        files: dict[str, Any] = {}
        body: dict[str, Any] = {}
        # unset fields (None) are left out at once: aiogram's prepare_value drops them anyway
        for key, value in method.model_dump(warnings=False, exclude_none=True).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared:
                body[key] = prepared
        if files:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                url,
                data=self.json_dumps(body),
                headers={"Content-Type": "application/json"},
                timeout=ClientTimeout(total=self.timeout if timeout is None else timeout),
            ) as resp:
                raw_result = await resp.text()
        except TimeoutError as e:
            raise TelegramNetworkError(method=method, message="Request timeout error") from e
        except ClientError as e:
            raise TelegramNetworkError(method=method, message=f"{type(e).__name__}: {e}") from e
        response = self.check_response(
            bot=bot, method=method, status_code=resp.status, content=raw_result
        )
        return cast(TelegramType, response.result)
