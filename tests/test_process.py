"""The real ``python -m bot`` process against the fake Bot API: registration, a SIGKILL in the
middle of it, a graceful stop, the commands menu, and logs without personal data."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.storage.db import create_engine
from fakegram.client import FakeGroup, FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import PROCESS_STAFF_CHAT_IDS, PROCESS_STAFF_CHATS, ROOT, TOKEN
from tests.helpers import wait_until
from tests.processes import Child, popen

pytestmark = pytest.mark.process

NAME = "Кузнецова-Ратмирова Евпраксия Игнатьевна"
BIRTH = "13.04.1957"
PHONE = "+79025550147"


@pytest.fixture
async def fake_queue() -> AsyncIterator[FakeTelegram]:
    """A fake of its own, delivering updates through getUpdates like Telegram does."""
    async with FakeTelegram() as server:
        server.add_bot(TOKEN)
        yield server


class BotProcess:
    def __init__(self, fake: FakeTelegram, tmp: Path, database_url: str) -> None:
        self.fake = fake
        self.tmp = tmp
        self.database_url = database_url
        self.log = tmp / "bot.log"
        self.proc: Child | None = None
        self.env = {
            **os.environ,
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": fake.base_url,
            "DATABASE_URL": database_url,
            "FILES_DIR": str(tmp / "files"),
            "LOG_LEVEL": "DEBUG",
            "STAFF_CHAT_IDS": PROCESS_STAFF_CHAT_IDS,
            "PYTHONPATH": str(ROOT),
            # a restarted bot takes the scheduler lease of the killed one when it runs out
            "SCHEDULER_LEASE_SECONDS": "3",
        }

    async def start(self, **env: str) -> None:
        polls = self.fake.poll_count()
        with self.log.open("ab") as log:
            self.proc = popen(
                [sys.executable, "-m", "bot"], cwd=self.tmp, env={**self.env, **env}, stderr=log
            )
        # its first getUpdates has arrived (waiting for it to be logged took the 25 s long poll)
        await self.fake.wait_for_polling(timeout=60, after=polls)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        for _ in range(300):
            if self.proc.poll() is not None:
                return self.proc.returncode
            await asyncio.sleep(0.1)
        self.proc.kill()
        raise AssertionError("the bot did not stop within 30 s")

    async def db(self, sql: str) -> list[Any]:
        """Rows of the bot's database, read as another process would."""
        engine = create_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(text(sql))).all())
        finally:
            await engine.dispose()


@pytest.fixture
async def bot_process(
    fake_queue: FakeTelegram, tmp_path: Path, empty_database_url: str
) -> AsyncIterator[BotProcess]:
    """The bot started on an empty database: it creates the schema itself, as on a first start."""
    process = BotProcess(fake_queue, tmp_path, empty_database_url)
    await process.start()
    yield process
    if process.proc and process.proc.poll() is None:
        process.kill()


async def step(
    fake: FakeTelegram, action: Callable[[], Awaitable[Any]], expect: str, within: float = 20
) -> str:
    """Do something as the user, then wait for the bot's message (or edit) containing ``expect``."""
    mark = len(fake.calls())
    await action()

    def shows(call: Any) -> bool:
        return expect in str(call.params.get("text", ""))

    call = await fake.wait_for_call(None, predicate=shows, after_index=mark, timeout=within)
    return str(call.params["text"])


async def test_registration_survives_sigkill_and_commands_are_set(
    bot_process: BotProcess, fake_queue: FakeTelegram
) -> None:
    fake = fake_queue
    user = FakeUser(fake, 610_000_001, first_name="Евпраксия")
    commands = fake.calls("setMyCommands")
    languages = {call.params.get("language_code") for call in commands}
    assert {None, "ru", "en"} <= languages
    ru = next(c for c in commands if c.params.get("language_code") == "ru")
    assert "Мой профиль" in str(ru.params["commands"])

    await step(fake, lambda: user.send("/start"), "Согласие на обработку")
    await step(fake, lambda: user.click("✅ Согласен"), "Шаг 1 из 4")
    await step(fake, lambda: user.send(NAME), "Шаг 2 из 4")
    await step(fake, lambda: user.send(BIRTH), "Шаг 3 из 4")

    bot_process.kill()  # SIGKILL in the middle of registration
    await bot_process.start()

    await step(fake, lambda: user.send_contact(PHONE), "Шаг 4 из 4")
    summary = await step(fake, lambda: user.send("Иркутская"), "Проверьте данные")
    assert NAME in summary
    assert BIRTH in summary
    await step(fake, lambda: user.click("✅ Всё верно"), "Регистрация завершена")
    assert await bot_process.db("SELECT full_name, phone FROM patients") == [(NAME, PHONE)]

    assert await bot_process.stop(signal.SIGTERM) == 0
    log = bot_process.log.read_text(encoding="utf-8")
    assert "bot stopped" in log
    for secret in (NAME, "Евпраксия", PHONE, "5550147", BIRTH, "1957-04-13"):
        assert secret not in log, f"personal data in the log: {secret!r}"


async def test_sigint_stops_cleanly(bot_process: BotProcess, fake_queue: FakeTelegram) -> None:
    user = FakeUser(fake_queue, 610_000_002)
    await step(fake_queue, lambda: user.send("/start"), "Согласие на обработку")
    assert await bot_process.stop(signal.SIGINT) == 0
    assert "bot stopped" in bot_process.log.read_text(encoding="utf-8")


async def test_outbox_row_committed_before_a_sigkill_is_delivered_once(
    fake_queue: FakeTelegram, tmp_path: Path, empty_database_url: str
) -> None:
    fake = fake_queue
    group = FakeGroup(fake, PROCESS_STAFF_CHATS["bakulev"], "НМИЦ ССХ — заявки", is_forum=True)
    process = BotProcess(fake, tmp_path, empty_database_url)
    await process.start(OUTBOX_TICK_SECONDS="3600")  # the sender will not run before the kill
    try:
        user = FakeUser(fake, 610_000_003, first_name="Евпраксия")
        await step(fake, lambda: user.send("/start"), "Согласие на обработку")
        await step(fake, lambda: user.click("✅ Согласен"), "Шаг 1 из 4")
        await step(fake, lambda: user.send(NAME), "Шаг 2 из 4")
        await step(fake, lambda: user.send(BIRTH), "Шаг 3 из 4")
        await step(fake, lambda: user.send_contact(PHONE), "Шаг 4 из 4")
        await step(fake, lambda: user.send("Иркутская"), "Проверьте данные")
        await step(fake, lambda: user.click("✅ Всё верно"), "Регистрация завершена")
        await step(fake, lambda: user.press("📨 Заявка в центр"), "Выберите центр")
        await step(fake, lambda: user.click("НМИЦ ССХ им. А.Н. Бакулева"), "группу заболеваний")
        await step(fake, lambda: user.click("Кардиомиопатии"), "текущий диагноз")
        await step(fake, lambda: user.send("ДКМП"), "жалобы")
        await step(fake, lambda: user.send("Одышка при нагрузке"), "Документы для центра")
        await step(fake, lambda: user.click(re.compile("Отправить без них")), "Проверьте заявку")
        await step(fake, lambda: user.click("✅ Отправить заявку"), "отправлена")
        assert await process.db("SELECT status FROM outbox") == [("pending",)]
        assert group.messages() == []
        process.kill()  # committed, not delivered

        await process.start(OUTBOX_TICK_SECONDS="0.2")

        async def card_sent() -> bool:
            return await process.db("SELECT status FROM outbox") == [("sent",)]

        # The dead process's lease runs out first (3 s). A row marked sent is out for good
        # (only a claimed row is sent, and a sent row is never claimed again): the count holds.
        await wait_until(card_sent, within=15, every=0.1, what="the card sent")
        cards = [m for m in group.messages() if (m.text or "").startswith("📨")]
        assert len(cards) == 1
        assert len(fake.calls("createForumTopic")) == 1
        assert await process.db("SELECT status FROM outbox") == [("sent",)]
    finally:
        if process.proc and process.proc.poll() is None:
            process.kill()
