"""Steps a person takes, shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram.fsm.context import FSMContext

from fakegram.client import FakeUser
from tests.conftest import Harness

NAME = "Зайцева-Оболенская Агриппина Фёдоровна"
BIRTH = "07.09.1961"
PHONE = "+79149876543"


def fsm(h: Harness, user: FakeUser) -> FSMContext:
    return h.dp.fsm.get_context(bot=h.bot, chat_id=user.user_id, user_id=user.user_id)


async def state_of(h: Harness, user: FakeUser) -> str | None:
    return await fsm(h, user).get_state()


async def draft_of(h: Harness, user: FakeUser) -> dict[str, Any]:
    data = await fsm(h, user).get_data()
    return dict(data.get("registration") or {})


async def start_and_consent(user: FakeUser) -> None:
    await user.send("/start")
    await user.click("✅ Согласен")


async def register(
    user: FakeUser,
    *,
    name: str = NAME,
    birth: str = BIRTH,
    phone: str = PHONE,
    region: str = "Иркутская",
) -> None:
    """The whole registration, the happy way."""
    await start_and_consent(user)
    await user.send(name)
    await user.send(birth)
    await user.send_contact(phone)
    await user.send(region)
    await user.click("✅ Всё верно")


def flat(rows: list[list[str]] | None) -> list[str]:
    return [item for row in rows or [] for item in row]


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    within: float = 30.0,
    every: float = 0.05,
    what: str = "the condition",
) -> None:
    """Wait for ``condition`` (a function, sync or async) to hold, looking every ``every``
    seconds; fail if it does not within ``within`` seconds. What tests wait on instead of a
    fixed sleep: as short as the machine allows, as long as a loaded one needs."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not hold within {within} s")
        await asyncio.sleep(every)
