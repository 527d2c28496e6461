"""An edit done a second time — by an update handled again after a crash, or repeated after its
answer was lost — is not a failure: the message already shows it (bot.api_session, inside the
retries of bot.sending)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest

from bot.app import create_bot
from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import make_settings


@pytest.fixture
async def bot(fake: FakeTelegram, tmp_path: Path) -> AsyncIterator[Bot]:
    bot = create_bot(make_settings(fake.base_url, tmp_path))
    try:
        yield bot
    finally:
        await bot.session.close()


async def test_an_edit_made_twice_is_done(fake: FakeTelegram, bot: Bot) -> None:
    user = FakeUser(fake, 680_000_001)
    sent = await bot.send_message(user.user_id, "Согласие на обработку")
    await bot.edit_message_text(
        "Согласие принято", chat_id=user.user_id, message_id=sent.message_id
    )
    # the same edit again (Telegram: "message is not modified"): done, not an error
    await bot.edit_message_text(
        "Согласие принято", chat_id=user.user_id, message_id=sent.message_id
    )
    assert fake.messages(user.user_id)[-1].text == "Согласие принято"
    # other refusals of an edit still fail
    with pytest.raises(TelegramBadRequest):
        await bot.edit_message_text("?", chat_id=user.user_id, message_id=999_999)
