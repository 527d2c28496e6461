"""MAX updates through the inbox, on the real runner (``bot.runner.serve``) with the MAX front:
each polled MAX update is stored under its messenger before the poll marker moves on, answered
once and in order; one stored but not handled when its process died is handled after the
restart, once; a MAX user and a Telegram user with the same numeric id are two people (order
keys, update ids and dialogues apart)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.max_support import require_aiogram_max

require_aiogram_max()  # skips without aiogram-max, except in the CI pass that runs MAX

from aiogram.methods import GetUpdates
from aiogram.utils.i18n import I18n

from bot.catalog import Catalog
from bot.messengers.identity import Messenger
from bot.messengers.max_adapter import IDS_PER_EVENT, create_max_bot
from bot.messengers.max_front import MaxFront
from bot.runner import health_check, serve
from bot.services.inbox import InboxService, stable_worker_name
from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from fakemax import FakeMax, FakeMaxUser
from tests.conftest import TOKEN, Harness
from tests.helpers import BIRTH, NAME, wait_until

MAX_TOKEN = "max-test-token"
CONSENT = "Согласие на обработку персональных данных"
#: What the bot's messages read at the end (the consent question is edited once agreed).
STEPS = (
    "Здравствуйте! Это бот",
    "✅ Согласие принято",
    "Шаг 1 из 4",
    "Шаг 2 из 4",
    "Шаг 3 из 4",
)


class Worker:
    """One bot process: the runner polling Telegram's fake and MAX's fake into one inbox."""

    def __init__(self, harness: Harness, server: FakeMax) -> None:
        self.harness = harness
        self.server = server
        self.front: MaxFront | None = None
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        h = self.harness
        bot = create_max_bot(
            MAX_TOKEN, self.server.base_url, bot_id=self.server.bot_user["user_id"]
        )
        self.front = await MaxFront.create(
            h.settings,
            h.services,
            h.dialogues.storage,
            h.dialogues.isolation,
            bot=bot,
            telegram_bot=h.bot,
        )
        await self.front.start()
        polls = self.server.count_calls("GET", "/updates")
        self.task = asyncio.create_task(
            serve(
                h.settings,
                h.bot,
                h.dp,
                h.services.sessions,
                health_check(h.services.sessions, None),
                stop=self.stop,
                handle_signals=False,
                others=[self.front.front()],
            )
        )
        await wait_until(
            lambda: self.server.count_calls("GET", "/updates") > polls, what="MAX polled"
        )

    async def close(self) -> None:
        self.stop.set()
        task, self.task = self.task, None
        if task is not None:
            await task
        front, self.front = self.front, None
        if front is not None:
            await front.stop()

    async def inbox(self) -> list[tuple[str, int, str]]:
        rows = await self.harness.rows(
            "SELECT messenger, update_id, status FROM inbox ORDER BY messenger, update_id"
        )
        return [(str(m), int(i), str(s)) for m, i, s in rows]

    async def all_done(self) -> bool:
        rows = await self.inbox()
        return bool(rows) and all(status == "done" for _, _, status in rows)


@pytest.fixture
async def worker(
    tmp_path: Path, i18n: I18n, catalog: Catalog, database_url: str
) -> AsyncIterator[Worker]:
    """Not started: a test may leave something in the inbox first (a process that died)."""
    async with FakeTelegram() as fake, FakeMax(MAX_TOKEN) as server:
        fake.add_bot(TOKEN)
        # a live worker's claims are not taken over during a test (one test holds one)
        harness = Harness(
            fake, tmp_path, i18n, catalog, database_url=database_url, lock_timeout_seconds=120
        )
        await harness.start()
        fake.update_sink = None  # Telegram's updates by getUpdates, through the inbox
        w = Worker(harness, server)
        try:
            yield w
        finally:
            with contextlib.suppress(Exception):
                await w.close()
            await harness.stop(graceful=False)


async def answered(patient: FakeMaxUser, text: str) -> None:
    await wait_until(lambda: any(text in t for t in patient.texts()), what=f"{text!r} on MAX")


async def test_a_max_patients_messages_are_stored_and_answered_once_in_order(
    worker: Worker,
) -> None:
    await worker.start()
    patient = FakeMaxUser(worker.server, 82_000_001)
    await patient.start()
    await answered(patient, CONSENT)
    await patient.click("✅ Согласен")
    await answered(patient, "Шаг 1 из 4")
    # two answers typed at once: the name must be taken as the name, the date as the date
    await patient.send(NAME)
    await patient.send(BIRTH)
    await answered(patient, "Шаг 3 из 4")
    await wait_until(worker.all_done, what="every MAX update done")

    # each answered once and in order: nothing more was sent, the name went to step 1
    assert [step for text in patient.texts() for step in STEPS if step in text] == list(STEPS)
    front = worker.front
    assert front is not None
    dialogue = front.dp.fsm.get_context(
        bot=front.bot, chat_id=patient.chat_id, user_id=patient.user_id
    )
    assert (await dialogue.get_data())["registration"]["full_name"] == NAME
    rows = await worker.inbox()
    # stored under MAX, one row per event: start, the button, two messages
    assert [(m, s) for m, _, s in rows] == [("max", "done")] * 4
    ids = [update_id for _, update_id, _ in rows]
    assert ids == sorted(ids) and all(i % IDS_PER_EVENT == 0 for i in ids)
    # once done, neither the raw update nor the person's MAX id stays
    assert await worker.harness.rows("SELECT payload, order_key FROM inbox") == [(None, 0)] * 4


async def test_a_max_update_stored_by_a_process_that_died_is_handled_after_restart_once(
    worker: Worker,
) -> None:
    patient = FakeMaxUser(worker.server, 82_000_002)
    await patient.start()
    # The process before: polled the event and stored it (what its runner does), then was
    # killed before handling it; MAX never saw a later marker.
    before = create_max_bot(MAX_TOKEN, worker.server.base_url, bot_id=1)
    try:
        updates = await before(GetUpdates(timeout=0))
    finally:
        await before.session.close()
    assert len(updates) == 1
    payloads = [
        u.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)
        for u in updates
    ]
    dead = InboxService(
        worker.harness.services.sessions,
        # the same stable name, an earlier process of it (ours: the pid check says it is gone)
        f"{stable_worker_name(None)}/{os.getpid()}/dead00",
        stale_after=timedelta(seconds=60),
        keep_finished=timedelta(hours=1),
    )
    assert len(await dead.store(payloads, messenger=Messenger.MAX)) == 1
    assert patient.texts() == []

    await worker.start()  # the restart: takes its own unfinished update back at once
    await answered(patient, CONSENT)
    await wait_until(worker.all_done, what="the taken-over update done")
    await patient.click("✅ Согласен")  # and MAX's feed goes on after it, not before it
    await answered(patient, "Шаг 1 из 4")
    await wait_until(worker.all_done, what="every MAX update done")
    await asyncio.sleep(0.3)  # a second handling would have answered by now
    assert [step for text in patient.texts() for step in STEPS if step in text] == list(STEPS[:3])
    assert [(m, s) for m, _, s in await worker.inbox()] == [("max", "done")] * 2


async def test_max_and_telegram_users_with_one_id_share_no_order_key_nor_dialogue(
    worker: Worker,
) -> None:
    same_id = 82_000_003
    # Telegram's person with this id has an update pending at another, live worker (MAX's ids
    # here are above it): were the order key shared, MAX's person would wait behind it.
    elsewhere = InboxService(
        worker.harness.services.sessions,
        "elsewhere:webhook8081/4242/aa",
        stale_after=timedelta(seconds=120),
        keep_finished=timedelta(hours=1),
    )
    held_id = 150_000_000
    held = {
        "update_id": held_id,
        "message": {
            "message_id": 1,
            "date": 1_790_000_000,
            "chat": {"id": same_id, "type": "private", "first_name": "Мария"},
            "from": {"id": same_id, "is_bot": False, "first_name": "Мария"},
            "text": "/help",
        },
    }
    await elsewhere.store([held])
    await worker.start()
    on_telegram = FakeUser(worker.harness.fake, same_id)
    on_max = FakeMaxUser(worker.server, same_id)

    await on_max.start()
    await answered(on_max, CONSENT)
    await on_max.click("✅ Согласен")
    await answered(on_max, "Шаг 1 из 4")
    assert all(u > held_id for m, u, _ in await worker.inbox() if m == "max")
    await elsewhere.finish(held_id)  # the other worker is done with it

    # the same number on Telegram starts from the beginning: its dialogue is not MAX's
    await on_telegram.send("/start")
    await on_telegram.wait_for_message(lambda m: CONSENT in (m.text or ""), timeout=20)
    await on_telegram.click("✅ Согласен")
    await on_telegram.wait_for_message(lambda m: "Шаг 1 из 4" in (m.text or ""), timeout=20)
    await on_telegram.send(NAME)
    await on_telegram.wait_for_message(lambda m: "Шаг 2 из 4" in (m.text or ""), timeout=20)
    # ...and MAX's is where it was: a name to step 1, then a date to step 2
    await on_max.send("Петров Пётр Петрович")
    await answered(on_max, "Шаг 2 из 4")
    await on_max.send(BIRTH)
    await answered(on_max, "Шаг 3 из 4")
    await on_telegram.send(BIRTH)
    await on_telegram.wait_for_message(lambda m: "Шаг 3 из 4" in (m.text or ""), timeout=20)
    await wait_until(worker.all_done, what="every update done")
    assert [step for text in on_max.texts() for step in STEPS if step in text] == list(STEPS)

    rows = await worker.inbox()
    assert sum(m == "max" for m, _, _ in rows) == 4  # start, the button, name, date
    assert sum(m == "telegram" for m, _, _ in rows) == 5  # the held one, /start, button, 2
