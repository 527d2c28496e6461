"""/healthz and Prometheus /metrics in every process mode — polling, a webhook worker and
``python -m scheduler`` — with the counters moving as updates and outbox rows flow."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text as sql

from bot.observability import Metrics, ObservabilityServer, process_health
from bot.services.outbox import Outbox
from bot.storage.db import create_engine, create_session_factory
from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from scheduler.lease import DatabaseLease
from tests.conftest import TOKEN, Harness
from tests.test_inbox import free_port
from tests.test_process import BotProcess, step
from tests.test_scaleout import Worker
from tests.test_scheduler_process import Process

MISSING_GROUP = -1007799999999  # a staff chat Telegram does not know: "chat not found"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def scrape_until(url: str, name: str, at_least: float, **labels: str) -> str:
    text = ""
    for _ in range(150):
        _status, text = await get(url + "/metrics")
        if sample(text, name, **labels) >= at_least:
            return text
        await asyncio.sleep(0.2)
    raise AssertionError(f"{name}{labels} never reached {at_least}:\n{text[-3000:]}")


async def queue_rows(
    database_url: str, chat_id: int, texts: list[str], now: datetime | None = None
) -> None:
    engine = create_engine(database_url)
    try:
        now = now or datetime.now(UTC)
        async with create_session_factory(engine).begin() as session:
            for body in texts:
                Outbox.send_message(session, chat_id=chat_id, text=body, now=now)
    finally:
        await engine.dispose()


async def test_metrics_in_process_count_updates_outbox_inbox_lease_and_api_errors(
    harness: Harness, user: FakeUser
) -> None:
    h = harness
    metrics = Metrics(clock=h.clock)
    metrics.instrument_bot(h.bot)
    metrics.instrument_dispatcher(h.dp)
    server = ObservabilityServer(
        metrics, h.services.sessions, process_health(h.services.sessions), "127.0.0.1", 0
    )
    await server.start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        status, body = await get(url + "/healthz")
        assert status == 200 and '"database": "ok"' in body

        await user.send("/start")
        await user.send("/start")
        text = (await get(url + "/metrics"))[1]
        assert sample(text, "oblako_updates_total", type="message", outcome="handled") == 2
        assert sample(text, "oblako_update_handling_seconds_count", type="message") == 2

        h.fake.block(user.user_id)
        await user.send("/help")  # the answer gets a 403
        h.fake.unblock(user.user_id)
        await queue_rows(h.settings.database_url, MISSING_GROUP, ["карточка"], h.clock())
        h.clock.advance(minutes=5)
        text = (await get(url + "/metrics"))[1]
        assert sample(text, "oblako_bot_api_errors_total", method="sendMessage", code="403") == 1
        assert sample(text, "oblako_outbox_pending_rows") == 1
        assert sample(text, "oblako_outbox_oldest_due_age_seconds") >= 300

        await h.deliver()
        lease = DatabaseLease(h.services.sessions, h.clock, seconds=30, holder="host:1:2:abc")
        assert await lease.acquire()
        async with h.engine.begin() as conn:
            await conn.execute(
                sql(
                    "INSERT INTO inbox (update_id, order_key, payload, status, received_at) "
                    "VALUES (1, 1, NULL, 'pending', :at)"
                ),
                {"at": h.clock() - timedelta(seconds=42)},
            )
        text = (await get(url + "/metrics"))[1]
        assert sample(text, "oblako_outbox_pending_rows") == 0
        assert sample(text, "oblako_outbox_failed_rows", code="chat_not_found", recipient="staff")
        assert sample(text, "oblako_bot_api_errors_total", method="sendMessage", code="400") == 1
        assert sample(text, "oblako_inbox_backlog") == 1
        assert sample(text, "oblako_inbox_oldest_age_seconds") >= 42
        assert sample(text, "oblako_scheduler_lease_holder", holder="host:1:2:abc") == 1
        assert sample(text, "oblako_scheduler_lease_expires_in_seconds") == 30
    finally:
        await server.stop()


@pytest.fixture
async def fake_queue() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.add_bot(TOKEN)
        yield server


@pytest.mark.process
async def test_metrics_in_polling_mode(
    fake_queue: FakeTelegram, tmp_path: Path, empty_database_url: str
) -> None:
    fake = fake_queue
    port = free_port()
    process = BotProcess(fake, tmp_path, empty_database_url)
    process.env.update({"METRICS_PORT": str(port), "OUTBOX_TICK_SECONDS": "0.2"})
    await process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        status, body = await get(url + "/healthz")
        assert status == 200 and '"mode": "polling"' in body
        user = FakeUser(fake, 630_000_001)
        await step(fake, lambda: user.send("/start"), "Согласие на обработку")
        await scrape_until(url, "oblako_updates_total", 1, type="message", outcome="handled")
        await queue_rows(empty_database_url, MISSING_GROUP, ["карточка"])
        text = await scrape_until(
            url, "oblako_outbox_failed_rows", 1, code="chat_not_found", recipient="staff"
        )
        assert sample(text, "oblako_bot_api_errors_total", method="sendMessage", code="400") >= 1
        assert sample(text, "oblako_scheduler_active") == 1
        assert sample(text, "oblako_scheduler_last_tick_timestamp_seconds") > 0
    finally:
        if process.proc and process.proc.poll() is None:
            process.kill()


@pytest.fixture
async def fake_hook() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.add_bot(TOKEN)
        server.webhook_retry_delay = 0.2
        yield server


@pytest.mark.process
async def test_metrics_in_webhook_mode(
    fake_hook: FakeTelegram, tmp_path: Path, empty_database_url: str
) -> None:
    fake = fake_hook
    port = free_port()
    worker = Worker(fake, tmp_path, empty_database_url, "worker-m", "")
    worker.env.update({"METRICS_PORT": str(port), "SCHEDULER_EMBEDDED": "false"})
    await worker.start()
    url = f"http://127.0.0.1:{port}"
    try:
        status, body = await get(url + "/healthz")
        assert status == 200 and '"mode": "webhook"' in body
        user = FakeUser(fake, 630_000_002)
        await step(fake, lambda: user.send("/start"), "Согласие на обработку")
        await scrape_until(url, "oblako_updates_total", 1, type="message", outcome="handled")
        await queue_rows(empty_database_url, user.user_id, ["one", "two"])
        # no scheduler runs in this worker (SCHEDULER_EMBEDDED=false): the rows wait
        text = await scrape_until(url, "oblako_outbox_pending_rows", 2)
        assert sample(text, "oblako_scheduler_active") == 0
        assert sample(text, "oblako_inbox_backlog") == 0
    finally:
        worker.stop_now()


@pytest.mark.process
async def test_metrics_of_the_scheduler_process(
    fake_queue: FakeTelegram, tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    process = Process("scheduler", fake_queue, tmp_path, database_url)
    process.env["METRICS_PORT"] = str(port)
    await process.start("started (standby")
    url = f"http://127.0.0.1:{port}"
    try:
        status, body = await get(url + "/healthz")
        assert status == 200 and '"mode": "scheduler"' in body
        await scrape_until(url, "oblako_scheduler_active", 1)
        # the first tick comes a moment after the lease is taken (0 until then)
        text = await scrape_until(url, "oblako_scheduler_last_tick_timestamp_seconds", 1)
        assert sample(text, "oblako_scheduler_last_tick_timestamp_seconds") > time.time() - 60
        assert re.search(r'oblako_scheduler_lease_holder\{holder="[^"]+"\} 1\.0', text)
        await queue_rows(database_url, MISSING_GROUP, ["карточка"])
        text = await scrape_until(
            url, "oblako_outbox_failed_rows", 1, code="chat_not_found", recipient="staff"
        )
        assert sample(text, "oblako_bot_api_errors_total", method="sendMessage", code="400") == 1
        assert sample(text, "oblako_outbox_pending_rows") == 0
    finally:
        process.kill()
