"""Webhook workers as real processes: a SIGKILL with updates in flight loses none and answers
none twice; two workers sharing the database and Redis keep one user's dialogue in step, make one
batch of an album whose parts land on both, and deliver each outbox row once (the lease)."""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.services.outbox import Outbox
from bot.storage.db import create_engine, create_session_factory
from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import TOKEN, drop_redis_keys, redis_prefix
from tests.processes import popen
from tests.test_documents import png
from tests.test_inbox import free_port
from tests.test_process import BIRTH, PHONE, BotProcess, step

pytestmark = pytest.mark.process

SECRET = "worker-secret_42"


@pytest.fixture
async def fake_hook() -> AsyncIterator[FakeTelegram]:
    """A fake of its own, posting updates to the webhook the bot registers."""
    async with FakeTelegram() as server:
        server.add_bot(TOKEN)
        server.webhook_retry_delay = 0.2
        yield server


class Worker(BotProcess):
    """``python -m bot --webhook`` on a port of its own."""

    def __init__(
        self, fake: FakeTelegram, tmp: Path, database_url: str, name: str, public_url: str
    ) -> None:
        super().__init__(fake, tmp, database_url)
        self.name = name
        self.port = free_port()
        self.log = tmp / f"{name}.log"
        self.env.update(
            {
                "WEBHOOK_URL": public_url or f"http://127.0.0.1:{self.port}/tg/updates",
                "WEBHOOK_PATH": "/tg/updates",
                "WEBHOOK_SECRET": SECRET,
                "WEBHOOK_PORT": str(self.port),
                "WORKER_NAME": name,
                "UPLOAD_QUIET_SECONDS": "1.5",
            }
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, **env: str) -> None:
        mark = len(self.fake.calls())
        with self.log.open("ab") as log:
            self.proc = popen(
                [sys.executable, "-m", "bot", "--webhook"],
                cwd=self.tmp,
                env={**self.env, **env},
                stderr=log,
            )
        await self.fake.wait_for_call("setWebhook", after_index=mark, timeout=60)

    def stop_now(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def answers(fake: FakeTelegram, chat_id: int, pattern: str) -> list[str]:
    """Texts of the messages the bot really sent to a chat (held-and-dropped calls excluded)."""
    return [
        str(call.params.get("text", ""))
        for call in fake.calls("sendMessage", chat_id=chat_id)
        if call.ok and re.search(pattern, str(call.params.get("text", "")))
    ]


async def eventually(probe: Any, timeout: float = 30) -> None:  # noqa: ASYNC109
    for _ in range(int(timeout * 10)):
        if await probe():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


async def test_webhook_sigkill_with_updates_in_flight_loses_none_and_answers_none_twice(
    fake_hook: FakeTelegram, tmp_path: Path, empty_database_url: str
) -> None:
    fake = fake_hook
    worker = Worker(fake, tmp_path, empty_database_url, "worker-1", "")
    await worker.start()
    try:
        await _kill_in_flight_and_restart(fake, worker, webhook=True)
    finally:
        worker.stop_now()
        fake.release()


async def test_polling_sigkill_with_updates_in_flight_loses_none_and_answers_none_twice(
    tmp_path: Path, empty_database_url: str
) -> None:
    async with FakeTelegram() as fake:
        fake.add_bot(TOKEN)
        process = BotProcess(fake, tmp_path, empty_database_url)
        process.env["WORKER_NAME"] = "poller-1"
        await process.start()
        try:
            await _kill_in_flight_and_restart(fake, process, webhook=False)
        finally:
            if process.proc and process.proc.poll() is None:
                process.kill()
            fake.release()


async def _kill_in_flight_and_restart(
    fake: FakeTelegram, process: BotProcess, *, webhook: bool
) -> None:
    users = [FakeUser(fake, 630_000_001 + i, first_name="Евпраксия") for i in range(6)]
    fake.hold("sendMessage")  # the answers wait at Telegram's door...
    update_ids = [(await user.send("/start")).update_id for user in users]
    if webhook:  # ...each update got its 200
        await fake.wait_until_delivered(update_ids, timeout=30)
    else:  # ...the offset moved past each update (only once it was stored)
        await fake.wait_until_consumed(update_ids[-1], timeout=30)
    await fake.wait_for_held(len(users), timeout=30)
    if webhook:
        fake.redeliver(update_ids[0])  # and Telegram sends one of them again
        await eventually(lambda: _true(len(fake.webhook_statuses(update_ids[0])) == 2))

    process.kill()  # SIGKILL: every update is in flight
    fake.release()
    assert all(answers(fake, u.user_id, "Согласие") == [] for u in users)
    pending = await process.db("SELECT count(*) FROM inbox WHERE status = 'pending'")
    assert pending == [(len(users),)]

    fake.redeliver(update_ids[1])  # a late repeat (polling: waiting for the next getUpdates)
    await process.start()  # the same WORKER_NAME: its unfinished updates are taken at once

    async def all_answered() -> bool:
        return all(answers(fake, u.user_id, "Согласие") for u in users)

    await eventually(all_answered)

    async def all_done() -> bool:  # the late repeat taken and dropped, every update finished
        done = await process.db("SELECT count(*) FROM inbox WHERE status != 'done'")
        return not fake.pending_updates() and done == [(0,)]

    await eventually(all_done)  # an update is answered only while not done: no duplicate now
    for user in users:
        assert len(answers(fake, user.user_id, "Согласие")) == 1, user
    rows = await process.db("SELECT status, payload FROM inbox ORDER BY update_id")
    assert rows == [("done", None)] * len(users)
    assert await process.stop(signal.SIGTERM) == 0


async def _true(value: bool) -> bool:
    return value


class RoundRobinProxy:
    """What nginx does in front of the workers: each request to the next worker in turn."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.port = free_port()
        self.counts = dict.fromkeys(backends, 0)
        self._next = itertools.cycle(backends)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tg/updates"

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/tg/updates", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        backend = next(self._next)
        self.counts[backend] += 1
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-telegram")}
        headers["Content-Type"] = "application/json"
        try:
            async with self._session.post(
                f"{backend}/tg/updates", data=await request.read(), headers=headers
            ) as response:
                return web.Response(status=response.status, body=await response.read())
        except aiohttp.ClientError:
            return web.Response(status=502)


FIRST_NAMES = [
    "Мария", "Анна", "Ольга", "Елена", "Ирина", "Наталья", "Татьяна", "Светлана", "Юлия",
    "Галина", "Вера", "Нина", "Людмила", "Зоя", "Раиса", "Лидия", "Валентина", "Алла", "Инна",
    "Жанна",
]  # fmt: skip


@pytest.mark.servers
async def test_two_workers_sharing_database_and_redis_keep_dialogues_and_albums_whole(
    fake_hook: FakeTelegram, tmp_path: Path, empty_database_url: str, redis_url: str
) -> None:
    fake = fake_hook
    prefix = redis_prefix()
    proxy = RoundRobinProxy([])
    workers = [Worker(fake, tmp_path, empty_database_url, f"worker-{n}", proxy.url) for n in (1, 2)]
    proxy.backends[:] = [w.url for w in workers]
    proxy.counts = dict.fromkeys(proxy.backends, 0)
    proxy._next = itertools.cycle(proxy.backends)
    await proxy.start()
    try:
        for w in workers:  # one after the other: the first one migrates the database
            await w.start(REDIS_URL=redis_url, REDIS_KEY_PREFIX=prefix)

        healthz = f"{workers[1].url}/healthz"
        async with aiohttp.ClientSession() as http, http.get(healthz) as r:
            assert r.status == 200
            assert await r.json() == {"database": "ok", "redis": "ok"}

        people = [FakeUser(fake, 640_000_001 + i, first_name="Евпраксия") for i in range(3)]
        for person in people:
            await step(fake, person.start, "Согласие на обработку")
            await step(fake, lambda p=person: p.click("✅ Согласен"), "Шаг 1 из 4")

        # Each forwards 20 messages at once, spread over both workers: the first one handled is
        # the name, the other 19 are (wrong) birth dates; no step is taken twice or skipped.
        mark = len(fake.calls())
        before = dict(proxy.counts)
        await asyncio.gather(
            *(p.forward([f"Иванова {name}" for name in FIRST_NAMES]) for p in people)
        )

        def replies(person: FakeUser) -> list[str]:
            calls = fake.calls("sendMessage", chat_id=person.user_id)
            return [str(c.params.get("text", "")) for c in calls if c.index >= mark and c.ok]

        await eventually(lambda: _true(all(len(replies(p)) >= 20 for p in people)))

        async def all_done() -> bool:  # an update's answers go out before it is marked done
            rows = await workers[0].db("SELECT count(*) FROM inbox WHERE status != 'done'")
            return rows == [(0,)]

        await eventually(all_done)
        for person in people:
            texts = replies(person)
            assert len(texts) == 20
            assert sum("Шаг 2 из 4" in t for t in texts) == 1, person
            assert not any("Шаг 3 из 4" in t for t in texts)
        assert all(proxy.counts[b] - before[b] >= 20 for b in proxy.backends), proxy.counts

        user = people[0]
        await step(fake, lambda: user.send(BIRTH), "Шаг 3 из 4")
        await step(fake, lambda: user.send_contact(PHONE), "Шаг 4 из 4")
        await step(fake, lambda: user.send("Иркутская"), "Проверьте данные")
        await step(fake, lambda: user.click("✅ Всё верно"), "Регистрация завершена")

        # An album of 6 photos, its updates alternating between the workers: one batch.
        before = dict(proxy.counts)
        photos = [png(900 + i) for i in range(6)]
        await step(fake, lambda: user.send_album(photos), "Что это за документ", within=30)
        assert all(proxy.counts[b] - before[b] >= 3 for b in proxy.backends), proxy.counts
        # The scenario's time: both workers' quiet-period timers (1.5 s) fire, and a second
        # question would show (nothing else tells that the other worker's timer has run).
        await asyncio.sleep(2.0)
        assert len(answers(fake, user.user_id, "Что это за документ")) == 1
        rows = await workers[0].db("SELECT count(*) FROM upload_batches")
        assert rows == [(1,)]
        items = await workers[0].db("SELECT count(*) FROM upload_items")
        assert items == [(6,)]
        # Both workers run the embedded scheduler; the database lease lets one deliver the
        # outbox: 15 queued notifications (5 per person: one message a second per chat is
        # Telegram's limit) arrive, each exactly once.
        texts = {p.user_id: [f"Уведомление {p.user_id}-{n}" for n in range(5)] for p in people}
        engine = create_engine(empty_database_url)
        try:
            now = datetime.now(UTC)
            async with create_session_factory(engine).begin() as session:
                for chat_id, bodies in texts.items():
                    for body in bodies:
                        Outbox.send_message(session, chat_id=chat_id, text=body, now=now)
        finally:
            await engine.dispose()

        async def all_sent() -> bool:
            rows = await workers[0].db("SELECT count(*) FROM outbox WHERE status != 'sent'")
            return rows == [(0,)]

        await eventually(all_sent)  # a sent row is never claimed again: the counts are final
        for chat_id, bodies in texts.items():
            delivered = answers(fake, chat_id, "^Уведомление ")
            assert sorted(delivered) == sorted(bodies), "each notification exactly once"
        assert len(await workers[0].db("SELECT holder FROM leases")) == 1

        for w in workers:
            assert await w.stop(signal.SIGTERM) == 0
    finally:
        for w in workers:
            w.stop_now()
        await proxy.stop()
        await drop_redis_keys(redis_url, prefix)
