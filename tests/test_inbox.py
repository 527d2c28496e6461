"""The update inbox and the webhook worker, in-process: an update is stored before Telegram gets
its 200, handled once (a repeated update_id too), and what a dead worker left is taken over —
never what a live worker is handling; the secret is checked; /healthz tells what is reachable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram.utils.i18n import I18n
from pydantic import SecretStr

from bot.catalog import Catalog
from bot.messengers.identity import Messenger
from bot.runner import health_check, serve
from bot.services.inbox import InboxService, order_key
from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import TOKEN, FrozenClock, Harness

SECRET = "s3cret-Token_1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def text_update(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id % 100000,
            "date": 1_790_000_000,
            "chat": {"id": user_id, "type": "private", "first_name": "Мария"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Мария"},
            "text": text,
        },
    }


def inbox_of(harness: Harness, worker: str, clock: FrozenClock | None = None) -> InboxService:
    return InboxService(
        harness.services.sessions,
        worker,
        stale_after=timedelta(seconds=30),
        keep_finished=timedelta(hours=1),
        clock=clock or FrozenClock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC)),
    )


async def test_a_repeated_update_id_is_stored_once_and_the_payload_goes_when_done(
    harness: Harness,
) -> None:
    inbox = inbox_of(harness, "w1/1/aa")
    person = 7_123_456_789
    first = await inbox.store([text_update(501, person, "Иванова Мария")])
    again = await inbox.store(
        [text_update(501, person, "Иванова Мария"), text_update(502, person, "x")]
    )
    assert [u.update_id for u in first] == [501]
    assert [u.update_id for u in again] == [502]  # 501 is not handed out a second time
    assert first[0].order_key == person

    await inbox.finish(501)
    await inbox.finish(502, failed=True)
    rows = await harness.rows("SELECT update_id, status, payload, claimed_by FROM inbox")
    assert sorted(rows) == [(501, "done", None, None), (502, "failed", None, None)]
    dump = await harness.dump()
    # nothing of the person stays: neither their text nor their Telegram id (the order key)
    assert "Иванова" not in dump and str(person) not in dump


async def test_a_live_workers_claim_is_never_taken_a_stale_one_is(harness: Harness) -> None:
    clock = FrozenClock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    busy = inbox_of(harness, "host/100/aa", clock)
    dead = inbox_of(harness, "host/200/bb", clock)
    starting = inbox_of(harness, "host/300/cc", clock)
    await busy.store([text_update(601, 1, "a")])
    await dead.store([text_update(602, 2, "b")])

    clock.advance(seconds=20)
    await busy.heartbeat()  # alive: its claim is refreshed
    assert await starting.take_over() == []  # nothing is stale yet

    clock.advance(seconds=20)  # the dead one's claim is 40 s old, the busy one's 20 s
    taken = await starting.take_over()
    assert [u.update_id for u in taken] == [602]
    assert taken[0].payload["message"]["text"] == "b"
    assert await inbox_of(harness, "host/400/dd", clock).take_over() == []  # claimed once

    await busy.release([601])  # a graceful stop gives the rest back at once
    assert [u.update_id for u in await starting.take_over()] == [601]


async def test_a_restarted_named_worker_takes_its_own_work_back_at_once(harness: Harness) -> None:
    clock = FrozenClock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    before = inbox_of(harness, "worker-1/100/aa", clock)
    other = inbox_of(harness, "worker-2/101/bb", clock)
    await before.store([text_update(701, 1, "a")])
    await other.store([text_update(702, 2, "b")])
    after = inbox_of(harness, "worker-1/555/cc", clock)  # SIGKILL, then the same WORKER_NAME
    taken = await after.take_over(predecessor="worker-1")
    assert [u.update_id for u in taken] == [701]  # worker-2 is alive: its update stays its own


async def test_finished_updates_are_forgotten_after_the_keep_time(harness: Harness) -> None:
    clock = FrozenClock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    inbox = inbox_of(harness, "w/1/a", clock)
    await inbox.store([text_update(801, 1, "a"), text_update(802, 1, "b")])
    await inbox.finish(801)
    clock.advance(minutes=61)
    assert await inbox.purge_finished() == 1
    assert await harness.rows("SELECT update_id, status FROM inbox") == [(802, "pending")]


async def test_each_messenger_has_its_own_update_ids_order_keys_and_take_over(
    harness: Harness,
) -> None:
    """MAX's updates share the inbox: the same update id and the same user id on Telegram and on
    MAX are two updates of two people; a worker without MAX never takes a MAX update."""
    clock = FrozenClock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    person = 7_123_456_789
    telegram_worker = inbox_of(harness, "host/100/aa", clock)
    both = InboxService(
        harness.services.sessions,
        "host/200/bb",
        stale_after=timedelta(seconds=30),
        keep_finished=timedelta(hours=1),
        clock=clock,
        messengers=(Messenger.TELEGRAM, Messenger.MAX),
    )
    await telegram_worker.store([text_update(900, person, "a")])  # pending at another worker
    stored = await both.store(
        [text_update(900, person, "b"), text_update(901, person, "c")], messenger=Messenger.MAX
    )
    # the same update id, but MAX's: stored, not taken for a repeat of Telegram's
    assert [(u.messenger, u.update_id) for u in stored] == [
        (Messenger.MAX, 900),
        (Messenger.MAX, 901),
    ]
    assert stored[0].key == (Messenger.MAX, person) != (Messenger.TELEGRAM, person)
    # Telegram's earlier update of the same number does not hold MAX's person back
    assert not stored[0].behind_others
    assert not await both.waits_for_others(stored[1])
    assert not await both.waits_for_others(stored[0])

    await both.finish(900, messenger=Messenger.MAX)
    rows = await harness.rows("SELECT messenger, update_id, status FROM inbox ORDER BY 1, 2")
    assert [tuple(r) for r in rows] == [
        ("max", 900, "done"),
        ("max", 901, "pending"),
        ("telegram", 900, "pending"),
    ]
    assert await both.last_stored(Messenger.MAX) == 901

    clock.advance(seconds=40)  # both workers died
    only_telegram = inbox_of(harness, "host/300/cc", clock)
    assert [(u.messenger, u.update_id) for u in await only_telegram.take_over()] == [
        (Messenger.TELEGRAM, 900)
    ]
    clock.advance(seconds=40)
    with_max = InboxService(
        harness.services.sessions,
        "host/400/dd",
        stale_after=timedelta(seconds=30),
        keep_finished=timedelta(hours=1),
        clock=clock,
        messengers=(Messenger.TELEGRAM, Messenger.MAX),
    )
    taken = await with_max.take_over()
    assert [(u.messenger, u.update_id, u.again) for u in taken] == [
        (Messenger.TELEGRAM, 900, True),
        (Messenger.MAX, 901, True),
    ]
    await with_max.release([901], messenger=Messenger.MAX)
    assert [u.update_id for u in await both.take_over()] == [901]


async def test_the_newest_finished_update_of_each_messenger_is_kept_where_polling_goes_on(
    harness: Harness,
) -> None:
    clock = FrozenClock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    inbox = inbox_of(harness, "w/1/a", clock)
    await inbox.store(
        [text_update(5_000, 1, "a"), text_update(5_032, 1, "b")], messenger=Messenger.MAX
    )
    await inbox.store([text_update(10, 1, "a")])
    for update_id in (5_000, 5_032):
        await inbox.finish(update_id, messenger=Messenger.MAX)
    await inbox.finish(10)
    clock.advance(minutes=61)
    assert await inbox.purge_finished() == 1
    assert await inbox.last_stored(Messenger.MAX) == 5_032
    assert await inbox.last_stored(Messenger.TELEGRAM) == 10


def test_order_key_is_the_sender_else_the_chat() -> None:
    assert order_key(text_update(1, 77, "x")) == 77
    callback = {"update_id": 2, "callback_query": {"id": "q", "from": {"id": 78}, "data": "d"}}
    assert order_key(callback) == 78
    post = {"update_id": 3, "channel_post": {"message_id": 1, "chat": {"id": -100}}}
    assert order_key(post) == -100


# --- the webhook worker ----------------------------------------------------------------------


class Worker:
    def __init__(self, harness: Harness, port: int) -> None:
        self.harness = harness
        self.port = port
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        h = self.harness
        mark = h.fake.call_count
        health = health_check(h.services.sessions, None)
        self.task = asyncio.create_task(
            serve(
                h.settings,
                h.bot,
                h.dp,
                h.services.sessions,
                health,
                stop=self.stop,
                handle_signals=False,
            )
        )
        await h.fake.wait_for_call("setWebhook", after_index=mark, timeout=20)

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task


@pytest.fixture
def worker_settings() -> dict[str, Any]:
    """More settings of the worker (a test parametrizes this)."""
    return {}


@pytest.fixture
async def worker(
    worker_settings: dict[str, Any],
    tmp_path: Path,
    i18n: I18n,
    catalog: Catalog,
    database_url: str,
) -> AsyncIterator[Worker]:
    """The bot as a webhook worker over a fake Telegram of its own (updates go by webhook)."""
    extra = worker_settings
    async with FakeTelegram() as fake:
        fake.add_bot(TOKEN)
        port = free_port()
        harness = Harness(
            fake,
            tmp_path,
            i18n,
            catalog,
            database_url=database_url,
            webhook=True,
            webhook_url=f"http://127.0.0.1:{port}/tg/updates",
            webhook_secret=SECRET,
            webhook_port=port,
            webhook_max_connections=5,
            **extra,
        )
        await harness.start()
        fake.update_sink = None
        w = Worker(harness, port)
        await w.start()
        try:
            yield w
        finally:
            with contextlib.suppress(Exception):
                await w.close()
            await harness.stop(graceful=False)


async def test_webhook_registered_with_secret_and_updates_of_the_dispatcher(
    worker: Worker,
) -> None:
    call = worker.harness.fake.calls("setWebhook")[-1]
    assert call.params["url"] == f"{worker.url}/tg/updates"
    assert call.params["secret_token"] == SECRET
    assert call.params["max_connections"] == 5
    allowed = set(call.params["allowed_updates"])
    assert {"message", "callback_query", "edited_message"} <= allowed
    assert "inline_query" not in allowed  # nothing handles it


async def test_an_update_is_answered_once_even_when_telegram_sends_it_again(
    worker: Worker,
) -> None:
    fake = worker.harness.fake
    user = FakeUser(fake, 720_000_001)
    pushed = await user.send("/start")
    consent = await user.wait_for_message(lambda m: "Согласие" in (m.text or ""), timeout=20)
    assert consent is not None
    await fake.wait_until_delivered([pushed.update_id])

    fake.redeliver(pushed.update_id)  # Telegram did not believe the first 200
    for _ in range(100):
        if len(fake.webhook_statuses(pushed.update_id)) == 2:
            break
        await asyncio.sleep(0.05)
    assert fake.webhook_statuses(pushed.update_id) == [200, 200]
    await user.click("✅ Согласен")
    await user.wait_for_message(lambda m: "Шаг 1 из 4" in (m.text or ""), timeout=20)
    consents = [m for m in fake.messages(user.user_id) if "Согласие" in (m.text or "")]
    assert len(consents) == 1

    rows = await worker.harness.rows("SELECT status, payload FROM inbox ORDER BY update_id")
    assert rows[0] == ("done", None)


async def test_a_request_without_the_right_secret_gets_401_and_is_not_handled(
    worker: Worker,
) -> None:
    update = text_update(990_001, 720_000_002, "/start")
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            async with http.post(f"{worker.url}/tg/updates", json=update, headers=headers) as r:
                assert r.status == 401
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        async with http.post(f"{worker.url}/tg/updates", data=b"{}", headers=headers) as r:
            assert r.status == 400
    assert await worker.harness.rows("SELECT update_id FROM inbox") == []
    assert worker.harness.fake.calls("sendMessage", chat_id=720_000_002) == []


async def test_healthz_reports_the_database_and_redis(worker: Worker) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{worker.url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"database": "ok", "redis": "not configured"}

    from redis.asyncio import Redis

    nowhere = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        report = await health_check(worker.harness.services.sessions, nowhere)()
    finally:
        await nowhere.aclose()
    assert report == {"database": "ok", "redis": "unreachable"}

    from bot.storage.db import create_engine, create_session_factory

    broken = create_engine(f"sqlite+aiosqlite:///{worker.harness.tmp}")  # a directory
    try:
        report = await health_check(create_session_factory(broken), None)()
    finally:
        await broken.dispose()
    assert report["database"] == "unreachable"


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"WEBHOOK_URL": "https://bot.example.org/tg"}, "WEBHOOK_SECRET"),
        ({"WEBHOOK_SECRET": SECRET}, "WEBHOOK_URL"),
    ],
)
def test_webhook_mode_without_its_url_or_secret_stops_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    missing: str,
) -> None:
    from bot.__main__ import main

    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("WEBHOOK", "WEBHOOK_URL", "WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["--webhook"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert error.startswith("configuration error: webhook mode needs")
    assert missing in error


def test_a_webhook_secret_telegram_would_refuse_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import SettingsError, load_settings

    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("WEBHOOK_SECRET", "has spaces!")
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        load_settings(_env_file=None)


async def test_healthz_is_503_when_something_is_unreachable(harness: Harness) -> None:
    from aiohttp import web

    from bot.runner import UpdateProcessor, webhook_app

    async def broken() -> dict[str, str]:
        return {"database": "ok", "redis": "unreachable"}

    settings = harness.settings.model_copy(
        update={"webhook_url": "http://127.0.0.1/tg", "webhook_secret": SecretStr(SECRET)}
    )
    inbox = inbox_of(harness, "w/1/a")
    app = webhook_app(settings, inbox, UpdateProcessor(harness.dp, harness.bot, inbox), broken)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            assert response.status == 503
            assert await response.json() == {"database": "ok", "redis": "unreachable"}
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("worker_settings", [{"inbox_claim_stale_seconds": 1}])
async def test_a_running_worker_takes_over_what_a_dead_peer_left(worker: Worker) -> None:
    h = worker.harness
    user = FakeUser(h.fake, 720_000_009)
    update = text_update(990_100, user.user_id, "/start")
    dead_peer = InboxService(
        h.services.sessions,
        "other-host/4242/ff",
        stale_after=timedelta(seconds=1),
        keep_finished=timedelta(hours=1),
    )
    await dead_peer.store([update])  # stored and acknowledged, then the peer died

    await user.wait_for_message(lambda m: "Согласие" in (m.text or ""), timeout=20)
    sql = "SELECT status, payload FROM inbox WHERE update_id = 990100"
    for _ in range(100):
        if await h.rows(sql) == [("done", None)]:
            break
        await asyncio.sleep(0.05)
    assert await h.rows(sql) == [("done", None)]


def test_in_ci_a_skipped_server_test_is_a_failure(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(
        "from tests.conftest import pytest_runtest_makereport  # noqa: F401\n"
        "def pytest_configure(config):\n"
        "    config.addinivalue_line('markers', 'servers: needs servers')\n"
    )
    pytester.makepyfile(
        "import pytest\n"
        "@pytest.mark.servers\n"
        "def test_needs_redis():\n"
        "    pytest.skip('Redis is not running')\n"
        "def test_other():\n"
        "    pytest.skip('not a server test')\n"
    )
    monkeypatch.setenv("CI", "true")
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio").assert_outcomes(
        failed=1, skipped=1
    )
    monkeypatch.setenv("CI", "")
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio").assert_outcomes(
        skipped=2
    )


async def test_an_update_that_cannot_be_read_is_logged_without_its_content(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    broken = {  # no "date": aiogram cannot read it, and its error would quote the text
        "update_id": 990_050,
        "message": {
            "text": "ИБС, +79991234567",
            "message_id": 1,
            "chat": {"id": 720_000_003, "type": "private"},
        },
    }
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    with caplog.at_level(logging.DEBUG, logger="bot"):
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{worker.url}/tg/updates", json=broken, headers=headers) as r,
        ):
            assert r.status == 200
        for _ in range(100):
            rows = await worker.harness.rows("SELECT status FROM inbox WHERE update_id = 990050")
            if rows == [("failed",)]:
                break
            await asyncio.sleep(0.05)
    assert rows == [("failed",)]
    assert "update 990050 failed: ValidationError" in caplog.text
    assert "ИБС" not in caplog.text and "7999" not in caplog.text


async def test_a_dialogue_that_cannot_be_saved_does_not_hold_the_persons_next_updates(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dialogue store fails once (Redis gone for a moment): that update is closed as failed,
    logged by id, and the person's next update is handled, not held behind it."""
    storage = type(worker.harness.dp.fsm.storage)
    real_save = storage.save
    calls = {"n": 0}

    async def failing_once(self: Any, unit: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("store down")
        await real_save(self, unit, *args, **kwargs)

    monkeypatch.setattr(storage, "save", failing_once)
    user = FakeUser(worker.harness.fake, 720_000_077)
    await user.send("/start")  # its dialogue change (to the consent step) cannot be saved
    consent = await user.wait_for_message(lambda m: "Согласие" in (m.text or ""), timeout=20)
    assert consent is not None
    for _ in range(200):
        statuses = await worker.harness.rows("SELECT status FROM inbox ORDER BY update_id")
        if statuses and all(s != "pending" for (s,) in statuses):
            break
        await asyncio.sleep(0.05)
    assert ("failed",) in statuses and ("pending",) not in statuses
    await user.send("/help")  # the next update is not held behind the failed one
    answered = await user.wait_for_message(lambda m: "/start" in (m.text or ""), timeout=20)
    assert answered is not None
