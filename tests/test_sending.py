"""Replies survive Telegram's ordinary faults: 429 waits retry_after, 5xx backs off, each reply
reaches the patient exactly once; what might already have arrived is not sent again; the outbox
keeps its own retries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import EditMessageText, SendMessage, TelegramMethod
from aiogram.types import Message
from pydantic import ValidationError

from bot.sending import RetryingRequests, retries_by_caller
from fakegram.client import FakeUser
from tests.conftest import Harness


def delivered(harness: Harness, user: FakeUser, text: str) -> int:
    """How many messages with ``text`` Telegram accepted into the user's chat."""
    return sum(text in (m.text or "") for m in user.messages())


async def test_a_reply_refused_with_429_is_sent_after_retry_after_once(
    harness: Harness, user: FakeUser
) -> None:
    harness.fake.fail_next("sendMessage", error_code=429, retry_after=1, times=2)
    await user.send("/start")
    assert delivered(harness, user, "Согласие на обработку персональных данных") == 1
    assert sum("Облако здоровья" in (m.text or "") for m in user.messages()) >= 1


async def test_a_reply_that_met_5xx_is_sent_after_a_backoff_once(
    harness: Harness, user: FakeUser
) -> None:
    harness.fake.fail_next("sendMessage", error_code=500, times=2)
    await user.send("/start")
    assert delivered(harness, user, "Согласие на обработку персональных данных") == 1


class Script:
    """A make_request that fails as told, then succeeds; counts the calls."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self, bot: Bot, method: TelegramMethod[Any]) -> Any:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


SEND = SendMessage(chat_id=1, text="x")
EDIT = EditMessageText(chat_id=1, message_id=2, text="x")


def retrying(clock: Clock, outage: float = 60) -> RetryingRequests:
    return RetryingRequests(outage, sleep=clock.sleep, clock=clock)


async def test_retry_after_is_honoured_and_the_backoff_is_bounded() -> None:
    clock = Clock()
    script = Script(
        TelegramRetryAfter(SEND, "Too Many Requests", retry_after=3),
        TelegramServerError(SEND, "Internal Server Error"),
        TelegramServerError(SEND, "Bad Gateway"),
    )
    assert await retrying(clock)(script, None, SEND) == "ok"  # type: ignore[arg-type]
    assert script.calls == 4
    assert clock.slept == [3.0, 0.5, 1.0]


async def test_the_outage_limit_ends_the_waiting() -> None:
    clock = Clock()
    script = Script(*[TelegramServerError(SEND, "down")] * 50)
    with pytest.raises(TelegramServerError):
        await retrying(clock, outage=10)(script, None, SEND)  # type: ignore[arg-type]
    assert sum(clock.slept) <= 10
    assert script.calls < 50


async def test_a_send_whose_answer_was_lost_is_not_repeated_an_edit_is() -> None:
    clock = Clock()
    lost = Script(TelegramNetworkError(SEND, "Request timeout error"))
    with pytest.raises(TelegramNetworkError):
        await retrying(clock)(lost, None, SEND)  # type: ignore[arg-type]
    assert lost.calls == 1  # it may have arrived: a second copy is worse than an apology

    never_sent = Script(TelegramNetworkError(SEND, "ClientConnectorError: refused"))
    assert await retrying(clock)(never_sent, None, SEND) == "ok"  # type: ignore[arg-type]
    assert never_sent.calls == 2

    edit = Script(TelegramNetworkError(EDIT, "Request timeout error"))
    assert await retrying(clock)(edit, None, EDIT) == "ok"  # type: ignore[arg-type]
    assert edit.calls == 2


async def test_other_errors_and_the_outbox_are_not_retried_here() -> None:
    clock = Clock()
    bad = Script(TelegramBadRequest(SEND, "chat not found"))
    with pytest.raises(TelegramBadRequest):
        await retrying(clock)(bad, None, SEND)  # type: ignore[arg-type]
    assert bad.calls == 1
    outbox = Script(TelegramRetryAfter(SEND, "Too Many Requests", retry_after=3))
    with retries_by_caller(), pytest.raises(TelegramRetryAfter):
        await retrying(clock)(outbox, None, SEND)  # type: ignore[arg-type]
    assert outbox.calls == 1 and clock.slept == []


async def test_an_answer_of_an_unknown_shape_is_not_asked_again_an_error_page_is() -> None:
    clock = Clock()
    try:
        Message.model_validate({"broken": True})
    except ValidationError as error:
        invalid = error
    unknown = Script(ClientDecodeError("Failed to deserialize object", invalid, {}))
    with pytest.raises(ClientDecodeError):
        await retrying(clock)(unknown, None, SEND)  # type: ignore[arg-type]
    assert unknown.calls == 1

    page = json.JSONDecodeError("Expecting value", "<html>502 Bad Gateway</html>", 0)
    proxy = Script(ClientDecodeError("Failed to deserialize object", page, "<html>"))
    assert await retrying(clock)(proxy, None, SEND) == "ok"  # type: ignore[arg-type]
    assert proxy.calls == 2
