"""Real processes against one database and the fake Bot API: two ``python -m scheduler`` (one
delivers, the other waits; the holder stalls (SIGSTOP): the standby takes over when the lease
runs out and the stalled one stops its jobs when it wakes; the holder is SIGKILLed: the other
takes over, at once since the dead process was on this host), a
``python -m bot`` with its embedded scheduler next to a ``python -m scheduler``, and a scheduler
killed just before a row is due. Every test counts what the fake server received: each row
exactly once.

The clock is the real one, so due times are a few seconds ahead and the lease is 3 seconds
(SCHEDULER_LEASE_SECONDS=3: renewed every second, taken over at most 4 seconds after the
holder died)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.services.outbox import Outbox
from bot.storage.db import create_engine, create_session_factory, migrate
from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import PROCESS_STAFF_CHAT_IDS, ROOT, TOKEN
from tests.helpers import wait_until
from tests.processes import Child, popen

pytestmark = pytest.mark.process

LEASE = 3.0
TAKEOVER = LEASE + LEASE / 3  # the bound: the lease runs out, then the standby's next look
SLACK = 4.0  # process scheduling on a loaded machine


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.add_bot(TOKEN)
        yield server


class Process:
    """``python -m <module>`` with the test's settings; its log in a file of its own."""

    count = 0

    def __init__(self, module: str, fake: FakeTelegram, tmp: Path, database_url: str) -> None:
        Process.count += 1
        self.module = module
        self.log = tmp / f"{module}-{Process.count}.log"
        self.proc: Child | None = None
        self.env = {
            **os.environ,
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": fake.base_url,
            "DATABASE_URL": database_url,
            "FILES_DIR": str(tmp / "files"),
            "LOG_LEVEL": "INFO",
            "STAFF_CHAT_IDS": PROCESS_STAFF_CHAT_IDS,
            "PYTHONPATH": str(ROOT),
            "SCHEDULER_LEASE_SECONDS": str(LEASE),
            "OUTBOX_TICK_SECONDS": "0.2",
            "OUTBOX_PER_CHAT_PER_SECOND": "100",
        }
        self.cwd = tmp

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, ready: str, **env: str) -> None:
        with self.log.open("ab") as log:
            self.proc = popen(
                [sys.executable, "-m", self.module],
                cwd=self.cwd,
                env={**self.env, **env},
                stderr=log,
            )
        await self.wait_log(ready, timeout=60)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8") if self.log.exists() else ""

    async def wait_log(self, needle: str, timeout: float, count: int = 1) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while self.text().count(needle) < count:
            assert self.proc is not None and self.proc.poll() is None, self.text()[-2000:]
            assert time.monotonic() < deadline, f"{needle!r} not logged: {self.text()[-2000:]}"
            await asyncio.sleep(0.1)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)

    async def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        for _ in range(200):
            if self.proc.poll() is not None:
                return self.proc.returncode
            await asyncio.sleep(0.1)
        self.proc.kill()
        raise AssertionError(f"{self.module} did not stop within 20 s")


class World:
    """The database the processes share, seen from the test."""

    def __init__(self, fake: FakeTelegram, tmp: Path, database_url: str) -> None:
        self.fake = fake
        self.tmp = tmp
        self.url = database_url
        self.engine = create_engine(database_url)
        self.sessions = create_session_factory(self.engine)
        self.processes: list[Process] = []
        self.chat = FakeUser(fake, 620_000_001)

    def process(self, module: str) -> Process:
        process = Process(module, self.fake, self.tmp, self.url)
        self.processes.append(process)
        return process

    async def scheduler(self) -> Process:
        process = self.process("scheduler")
        await process.start("started (standby")
        return process

    async def queue(self, *texts: str, due_in: float = 0.0) -> None:
        now = datetime.now(UTC)
        async with self.sessions.begin() as session:
            for body in texts:
                Outbox.send_message(
                    session,
                    chat_id=self.chat.user_id,
                    text=body,
                    due_at=now + timedelta(seconds=due_in),
                    now=now,
                )

    def received(self) -> Counter[str]:
        return Counter(
            str(call.params.get("text"))
            for call in self.fake.calls("sendMessage")
            if call.params.get("chat_id") in (self.chat.user_id, str(self.chat.user_id))
        )

    async def wait_received(self, texts: list[str], timeout: float) -> float:  # noqa: ASYNC109
        """Seconds until every text arrived."""
        start = time.monotonic()
        while not all(self.received()[t] for t in texts):
            assert time.monotonic() - start < timeout, (
                f"missing: {set(texts) - set(self.received())}"
            )
            await asyncio.sleep(0.05)
        return time.monotonic() - start

    async def wait_all_sent(self, count: int) -> None:
        """Until all ``count`` rows are marked sent (none claimed, none pending). What the fake
        received is final then: a row is sent only by the sender that claimed it, and a sent row
        is never claimed again. (Waited on instead of "a second more of ticks".)"""

        async def all_sent() -> bool:
            return await self.statuses() == Counter({"sent": count})

        await wait_until(all_sent, within=10, what=f"{count} rows sent")

    async def holder_pid(self) -> int | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT holder, expires_at FROM leases"))).first()
        if row is None:
            return None
        return int(row[0].split(":")[1])

    async def statuses(self) -> Counter[str]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT status FROM outbox"))).all()
        return Counter(r[0] for r in rows)


@pytest.fixture
async def world(fake_api: FakeTelegram, tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    w = World(fake_api, tmp_path, database_url)
    await migrate(w.engine)  # once, before processes start side by side
    try:
        yield w
    finally:
        for process in w.processes:
            process.kill()
        await w.engine.dispose()


async def test_two_schedulers_one_delivers_the_standby_takes_over_after_a_stall_and_a_kill(
    world: World,
) -> None:
    first = await world.scheduler()
    await first.wait_log("jobs start", timeout=10)
    second = await world.scheduler()
    batch = [f"первая волна {i}" for i in range(5)]
    await world.queue(*batch)
    await world.wait_received(batch, timeout=10)
    assert await world.holder_pid() == first.pid
    assert "jobs start" not in second.text()  # the standby never ran the jobs

    # The holder stalls (alive, not renewing): the standby takes over when the lease runs out.
    stalled = [f"во время зависания {i}" for i in range(5)]
    await world.queue(*stalled, due_in=0.5)
    first.signal(signal.SIGSTOP)
    since = time.monotonic()
    await second.wait_log("jobs start", timeout=TAKEOVER + SLACK)
    took = time.monotonic() - since
    assert 0.5 <= took <= TAKEOVER + SLACK  # by expiry (it is alive), within the bound
    await world.wait_received(stalled, timeout=5)
    assert await world.holder_pid() == second.pid

    # The stalled one wakes up, finds the lease lost at its next look and stops its jobs.
    first.signal(signal.SIGCONT)
    await first.wait_log("lease lost", timeout=LEASE / 3 + SLACK)
    after_stall = [f"после зависания {i}" for i in range(3)]
    await world.queue(*after_stall)
    await world.wait_received(after_stall, timeout=5)

    # SIGKILL the holder just before rows are due: the other one (same host, the dead
    # process's pid gone) takes over without waiting for the lease to run out.
    reminders = [f"напоминание {i}" for i in range(5)]
    await world.queue(*reminders, due_in=1.0)
    second.kill()
    killed = time.monotonic()
    await first.wait_log("jobs start", timeout=TAKEOVER + SLACK, count=2)
    assert time.monotonic() - killed <= TAKEOVER + SLACK
    await world.wait_received(reminders, timeout=5)
    assert await world.holder_pid() == first.pid

    everything = batch + stalled + after_stall + reminders
    await world.wait_all_sent(len(everything))
    received = world.received()
    assert all(received[t] == 1 for t in everything), received
    assert sum(received.values()) == len(everything)
    assert await world.statuses() == Counter({"sent": len(everything)})
    assert await first.stop() == 0
    assert "scheduler stopped" in first.text()
    assert await world.holder_pid() is None  # released on a graceful stop


async def test_bot_with_embedded_scheduler_and_a_standalone_one_deliver_once(
    world: World,
) -> None:
    bot = world.process("bot")
    await bot.start("started (polling)", SCHEDULER_EMBEDDED="true")
    scheduler = await world.scheduler()
    texts = [f"сообщение {i}" for i in range(12)]
    for i in range(0, 12, 3):  # rows becoming due over two seconds, both processes up
        await world.queue(*texts[i : i + 3], due_in=i / 6)
    await world.wait_received(texts, timeout=15)
    await world.wait_all_sent(len(texts))
    received = world.received()
    assert all(received[t] == 1 for t in texts), received
    assert await world.holder_pid() in {bot.pid, scheduler.pid}
    runs = ("jobs start" in bot.text()) + ("jobs start" in scheduler.text())
    assert runs == 1  # exactly one of them ever ran the jobs
    assert await world.statuses() == Counter({"sent": 12})


async def test_a_scheduler_killed_just_before_a_reminder_sends_it_once_after_restart(
    world: World,
) -> None:
    scheduler = await world.scheduler()
    await scheduler.wait_log("jobs start", timeout=10)
    await world.queue("напоминание за 15 минут", due_in=2.0)
    await asyncio.sleep(1.0)  # the scenario: it runs with the row queued, then dies
    scheduler.kill()  # a second before it is due
    await asyncio.sleep(1.5)  # the scenario: the due time passes with no scheduler alive
    assert world.received() == Counter()
    assert await world.statuses() == Counter({"pending": 1})

    again = await world.scheduler()  # a restart later: the dead holder's lease runs out first
    await again.wait_log("jobs start", timeout=TAKEOVER + SLACK)
    await world.wait_received(["напоминание за 15 минут"], timeout=5)
    await world.wait_all_sent(1)
    assert world.received() == Counter({"напоминание за 15 минут": 1})
    assert await world.statuses() == Counter({"sent": 1})
    log = again.text()
    assert re.search(rf"scheduler lease taken by \S+:{again.pid}:", log)


async def test_the_scheduler_process_imports_no_handlers(world: World) -> None:
    """``python -m scheduler`` delivers the outbox without the bot's handlers: no module of
    ``bot.handlers`` is imported, nor ``bot.dispatcher``, the only builder of their routers.
    Python's own import profile (PYTHONPROFILEIMPORTTIME) lists every module it imported."""
    scheduler = world.process("scheduler")
    await scheduler.start("started (standby", PYTHONPROFILEIMPORTTIME="1")
    await scheduler.wait_log("jobs start", timeout=30)  # the outbox and every job built
    assert await scheduler.stop() == 0
    imported = set(re.findall(r"^import time:.*\|\s+([\w.]+)\s*$", scheduler.text(), re.M))
    assert {"scheduler.runner", "bot.delivery.applications", "bot.delivery.relay"} <= imported
    assert not {m for m in imported if m.startswith(("bot.handlers", "bot.dispatcher"))}
