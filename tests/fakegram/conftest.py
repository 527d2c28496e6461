"""Fixtures for the tests of the fake Bot API itself (nothing global is set here)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from fakegram import FakeTelegram

FG_TOKEN = "424242:fakegram-self-test-token"


@pytest.fixture
async def fg_server() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.add_bot(FG_TOKEN)
        yield server


@pytest.fixture
async def fg_bot(fg_server: FakeTelegram) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(fg_server.base_url))
    bot = Bot(FG_TOKEN, session=session)
    try:
        yield bot
    finally:
        await close_quickly(bot)


async def close_quickly(bot: Bot) -> None:
    """``AiohttpSession.close`` sleeps 250 ms for TLS shutdown; plain HTTP needs none."""
    inner = getattr(bot.session, "_session", None)
    if inner is not None and not inner.closed:
        await inner.close()
