"""Replies survive Telegram's ordinary faults: a request refused with 429 is sent again after
``retry_after``, one that met a 5xx or a connection that never opened is sent again with a
bounded back-off, until ``TELEGRAM_OUTAGE_SECONDS`` have passed. Nothing is sent twice: those
answers mean Telegram did not act on the request; a request whose answer was lost on the way
back (a timeout, a dropped connection) is repeated only when repeating it is harmless (an
edit, an answer to a button).

The outbox sender has retries of its own (its rows wait in the database, and other chats go on
meanwhile), so its calls pass through here untouched (``retries_by_caller``)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from pydantic import ValidationError

log = logging.getLogger(__name__)

#: Methods that may be repeated after an answer was lost: doing them twice changes nothing.
REPEATABLE = frozenset(
    {
        "answerCallbackQuery",
        "deleteMessage",
        "editMessageCaption",
        "editMessageMedia",
        "editMessageReplyMarkup",
        "editMessageText",
        "getChat",
        "getChatMember",
        "getFile",
        "getMe",
        "setMyCommands",
    }
)

_caller_retries: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "caller_retries", default=False
)


@contextmanager
def retries_by_caller() -> Iterator[None]:
    """Calls made inside go to Telegram once: the caller has its own retry (the outbox)."""
    token = _caller_retries.set(True)
    try:
        yield
    finally:
        _caller_retries.reset(token)


# pydantic keeps a parametrised generic (``Response[Message]``) only while something refers to
# it; aiogram builds one per call to read the answer, and rebuilding the class (a schema and a
# validator) cost more than the rest of the call. Referenced here, each is built once.
_response_models: dict[Any, Any] = {}


def _keep_response_model(method: TelegramMethod[Any]) -> None:
    returning = method.__returning__
    if returning not in _response_models:
        _response_models[returning] = Response[returning]  # type: ignore[valid-type]


def _never_sent(error: TelegramNetworkError) -> bool:
    """aiogram names the aiohttp error first: a connection that could not be made at all."""
    return error.message.startswith(("ClientConnectorError", "ClientConnectorDNSError"))


class RetryingRequests(BaseRequestMiddleware):
    def __init__(
        self,
        outage_seconds: float,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._outage = outage_seconds
        self._sleep = sleep
        self._clock = clock

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Any:
        _keep_response_model(method)
        if self._outage <= 0 or _caller_retries.get() or isinstance(method, GetUpdates):
            return await make_request(bot, method)
        deadline = self._clock() + self._outage
        backoff = 0.5
        while True:
            failure: Exception
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                failure, wait, cause = error, float(error.retry_after), "429"
            except TelegramServerError as error:
                failure, wait, cause = error, backoff, "5xx"
            except ClientDecodeError as error:
                if not isinstance(error.original, ValueError) or isinstance(
                    error.original, ValidationError
                ):
                    raise  # an answer in a shape we do not know: asking again will not help
                failure, wait, cause = error, backoff, "5xx"  # not JSON: a proxy's error page
            except TelegramNetworkError as error:
                if method.__api_method__ not in REPEATABLE and not _never_sent(error):
                    raise  # it may have arrived: sending again could show it twice
                failure, wait, cause = error, backoff, "network"
            if self._clock() + wait > deadline:
                raise failure
            log.warning(
                "Bot API %s: %s, trying again in %.1f s", method.__api_method__, cause, wait
            )
            await self._sleep(wait)
            if cause != "429":  # Telegram said how long; the back-off is for silence
                backoff = min(backoff * 2, 15.0)
