"""An album cut in two by a restart of the real ``python -m bot`` process: the items Telegram
delivers after the restart join the items received before it (one batch, one question)."""

from __future__ import annotations

import random

import pytest

from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from tests.test_documents import png
from tests.test_process import BIRTH, NAME, PHONE, BotProcess, bot_process, fake_queue, step
from tests.test_scaleout import eventually

pytestmark = pytest.mark.process

__all__ = ["bot_process", "fake_queue"]  # fixtures, re-used


async def test_album_split_by_a_restart_stays_one_document(
    bot_process: BotProcess, fake_queue: FakeTelegram
) -> None:
    fake = fake_queue
    user = FakeUser(fake, 610_000_041, first_name="Евпраксия")
    await step(fake, lambda: user.send("/start"), "Согласие на обработку")
    await step(fake, lambda: user.click("✅ Согласен"), "Шаг 1 из 4")
    await step(fake, lambda: user.send(NAME), "Шаг 2 из 4")
    await step(fake, lambda: user.send(BIRTH), "Шаг 3 из 4")
    await step(fake, lambda: user.send_contact(PHONE), "Шаг 4 из 4")
    await step(fake, lambda: user.send("Иркутская"), "Проверьте данные")
    await step(fake, lambda: user.click("✅ Всё верно"), "Регистрация завершена")

    album = str(12_000_000_000_000_000 + random.randrange(10**15))
    for seed in range(3):
        await user.send_photo(png(300 + seed), media_group_id=album)

    async def first_half_received() -> bool:
        return await bot_process.db("SELECT count(*) FROM upload_items") == [(3,)]

    await eventually(first_half_received)
    bot_process.kill()  # the process dies with half of the album received
    for seed in range(3, 6):  # the rest waits at Telegram until the bot is back
        await user.send_photo(png(300 + seed), media_group_id=album)
    # The restart (a new interpreter importing aiogram) takes longer than the quiet period.
    mark = len(fake.calls())
    await bot_process.start(UPLOAD_QUIET_SECONDS="1.5")

    asked = await fake.wait_for_call(
        "sendMessage",
        predicate=lambda call: "Что это за документ" in str(call.params.get("text", "")),
        after_index=mark,
        timeout=30,
    )
    assert "(6 файлов)" in str(asked.params["text"])
    assert await bot_process.db("SELECT count(*) FROM upload_batches") == [(1,)]
    assert await bot_process.db("SELECT count(*) FROM upload_items") == [(6,)]
