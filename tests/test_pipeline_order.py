"""The update pipeline as processes (issue 12): fifty quick patients registering through two
webhook workers behind a round-robin proxy (PostgreSQL + Redis) are answered in step order, also
when one worker is SIGKILLed mid-run; the default single process takes back an update cut off by
a SIGKILL at once and answers it in the step it arrived in; replies outlast 8 seconds of 429s or
500s from Telegram and arrive exactly once."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.services.inbox import order_key
from bot.storage.db import create_engine
from fakegram.client import FakeUser, PushedUpdate
from fakegram.server import FakegramTimeout, FakeTelegram
from tests.conftest import (
    TEST_DATABASE_URL,
    TOKEN,
    Databases,
    drop_redis_keys,
    reachable_redis,
    redis_prefix,
)
from tests.test_process import BIRTH, NAME, BotProcess
from tests.test_scaleout import RoundRobinProxy, Worker

pytestmark = pytest.mark.process

#: LOCK_TIMEOUT_SECONDS of the webhook workers: how long a dead worker may hold its users.
LOCK_SECONDS = 3.0
USERS = 50
REGION = "Иркутская"
#: Where .ci/postgres starts PostgreSQL; used when TEST_DATABASE_URL is not set.
DEFAULT_TEST_DATABASE_URL = "postgresql+asyncpg://oblako:oblako@127.0.0.1:55432/oblako_test"

#: The bot's messages of a registration, in order, each known by a piece of its text.
REGISTRATION = [
    ("welcome", "Здравствуйте!"),
    ("consent", "Согласие на обработку"),
    ("step 1", "Шаг 1 из 4"),
    ("step 2", "Шаг 2 из 4"),
    ("step 3", "Шаг 3 из 4"),
    ("phone saved", "Номер получен"),
    ("step 4", "Шаг 4 из 4"),
    ("summary", "Проверьте данные"),
    ("done", "Регистрация завершена"),
]
STEPS = [name for name, _ in REGISTRATION]


def step_of(text: str) -> str:
    """The registration step a message of the bot belongs to ("?: …" for anything else)."""
    for name, piece in REGISTRATION:
        if piece in text:
            return name
    return f"?: {text[:60]}"


# ------------------------------------------------------------------ following the fake's log


@dataclass(frozen=True)
class Answer:
    at: float  # when the fake answered the call (its clock: time.time())
    method: str
    text: str


class Watch:
    """Follows the fake's log once, incrementally, for many patients waiting at once: what the
    bot sent to each chat (successful calls only), failed calls per chat, and which updates the
    webhook accepted. (The fake's own waits rescan its whole log for every waiter: with fifty
    patients that would cost more CPU than the bot.)"""

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self.sent: dict[int, list[Answer]] = defaultdict(list)
        self.refused: dict[int, list[int]] = defaultdict(list)  # chat -> error codes
        self.accepted: dict[int, float] = {}  # update_id -> when the webhook said 200
        self.pushed: dict[int, list[int]] = defaultdict(list)  # user -> their update ids
        self._calls = fake.call_count
        self._deliveries = len(fake.webhook_deliveries)
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    async def __aenter__(self) -> Watch:
        self._task = asyncio.create_task(self._follow())
        return self

    async def __aexit__(self, *exc: object) -> None:
        # A flag, not a cancel: Python 3.11's wait_for (inside the fake's waits) may swallow
        # a cancel that meets a wake-up, and the follower would run on forever.
        self._stopped = True
        assert self._task is not None
        await self._task

    def _fresh(self) -> bool | None:
        news = self.fake.call_count > self._calls
        return True if news or len(self.fake.webhook_deliveries) > self._deliveries else None

    async def _follow(self) -> None:
        while not self._stopped:
            try:
                await self.fake.wait_for_event(self._fresh, 0.2, lambda: "news")
            except FakegramTimeout:
                continue
            for call in self.fake.calls_since(self._calls):
                self._calls = call.index + 1
                if call.method not in ("sendMessage", "editMessageText"):
                    continue
                chat = int(call.params.get("chat_id", 0))
                if call.ok:
                    text = str(call.params.get("text", ""))
                    self.sent[chat].append(Answer(call.finished_at, call.method, text))
                else:
                    self.refused[chat].append(call.status)
            deliveries = self.fake.webhook_deliveries[self._deliveries :]
            self._deliveries += len(deliveries)
            for delivery in deliveries:
                if delivery.status == 200:
                    self.accepted.setdefault(delivery.update_id, delivery.at)
            async with self._changed:
                self._changed.notify_all()

    async def until(self, probe: Callable[[], bool], what: str, timeout: float = 90) -> None:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(probe)
        except TimeoutError:
            raise AssertionError(f"not within {timeout} s: {what}") from None

    def shows(self, user: FakeUser, piece: str) -> bool:
        return any(piece in answer.text for answer in self.sent[user.user_id])

    async def sees(self, user: FakeUser, piece: str) -> None:
        await self.until(lambda: self.shows(user, piece), f"{user!r} sees {piece!r}")

    async def webhook_accepted(self, pushed: PushedUpdate) -> None:
        uid = pushed.update_id
        self.pushed[order_key(pushed.update)].append(uid)
        await self.until(lambda: uid in self.accepted, f"update {uid} accepted by the webhook")

    def walk(self, user: FakeUser, *, repeats: bool = True) -> list[str]:
        """The steps of the bot's messages to the patient, in the order Telegram got them
        (``repeats=False``: the answers of one update sent again right after themselves — a
        worker killed after answering, before its update was marked done — counted once)."""
        steps = [step_of(a.text) for a in self.sent[user.user_id] if a.method == "sendMessage"]
        if repeats:
            return steps
        once: list[str] = []
        i = 0
        while i < len(steps):
            for size in (3, 2, 1):  # an update answers with up to three messages
                if len(once) >= size and steps[i : i + size] == once[-size:]:
                    i += size
                    break
            else:
                once.append(steps[i])
                i += 1
        return once

    def longest_wait(self, user: FakeUser, since: float) -> float:
        """The longest time the patient waited for the bot: from ``since`` (their first
        message accepted) to the first answer, and between two answers."""
        times = [since, *(a.at for a in self.sent[user.user_id])]
        return max(b - a for a, b in itertools.pairwise(times))


Accepted = Callable[[PushedUpdate], Awaitable[None]]


async def register_quickly(
    watch: Watch, user: FakeUser, accepted: Accepted, *, name: str = NAME
) -> None:
    """The whole registration as a quick patient: each message as soon as Telegram has the
    previous one (``accepted``), waiting for the bot only for the buttons to press."""
    await accepted(await user.send("/start"))
    await watch.sees(user, "Согласие на обработку")
    await accepted(await user.click("✅ Согласен"))
    await accepted(await user.send(name))
    await accepted(await user.send(BIRTH))
    await accepted(await user.send_contact())
    await accepted(await user.send(REGION))
    await watch.sees(user, "Проверьте данные")
    await accepted(await user.click("✅ Всё верно"))
    await watch.sees(user, "Регистрация завершена")


def out_of_order(
    watch: Watch, users: Iterable[FakeUser], *, repeats: bool = True
) -> dict[int, Any]:
    """Patients whose messages did not come in step order: their update ids and what they saw
    (``repeats=False``: an answer sent again right after itself is tolerated)."""
    return {
        u.user_id: {"updates": watch.pushed[u.user_id], "saw": watch.walk(u)}
        for u in users
        if watch.walk(u, repeats=repeats) != STEPS
    }


def patients(fake: FakeTelegram, base: int, count: int = USERS) -> list[FakeUser]:
    """Patients with ids ``base``…: each their own phone (``+7999…`` from the id)."""
    names = ["Мария", "Анна", "Ольга", "Елена", "Ирина"]
    return [FakeUser(fake, base + i, first_name=names[i % len(names)]) for i in range(count)]


async def _stuck_report(worker: Worker, watch: Watch, users: list[FakeUser]) -> str:
    """Who is stuck where, and the inbox rows still pending (for the failure message)."""
    pending = await worker.db(
        "SELECT update_id, order_key, claimed_by, claimed_at FROM inbox"
        " WHERE status != 'done' ORDER BY update_id"
    )
    walks = {
        u.user_id: (watch.pushed[u.user_id], watch.walk(u)[2:])
        for u in users
        if not watch.shows(u, "завершена")
    }
    return f"unfinished patients (update ids; steps): {walks}; inbox not done: {pending}"


# ------------------------------------------------------------------ two workers (PostgreSQL)


@pytest.fixture(scope="module")
async def postgres_url(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """An empty PostgreSQL database for the workers (they migrate it): on TEST_DATABASE_URL's
    server, else on the one .ci/postgres starts; skipped when there is none."""
    if TEST_DATABASE_URL:
        url = await databases.create(tmp_path_factory.mktemp("pg"), empty=True)
        try:
            yield url
        finally:
            await databases.drop(url)
        return
    base = make_url(DEFAULT_TEST_DATABASE_URL)
    try:
        admin = await asyncpg.connect(
            base.set(drivername="postgresql").render_as_string(hide_password=False), timeout=2
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        pytest.skip("PostgreSQL is not running at 127.0.0.1:55432 (bash .ci/postgres starts it)")
    # <db>_<pid>_<n>: a run that dies leaves it to conftest's clean-up of dead runs' databases
    name = f"{base.database}_{os.getpid()}_9001"
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        for attempt in range(20):
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except asyncpg.InsufficientPrivilegeError:  # an autovacuum worker, gone soon
                if attempt == 19:
                    raise
                await asyncio.sleep(0.25)
        await admin.close()


@dataclass
class Cluster:
    fake: FakeTelegram
    proxy: RoundRobinProxy
    workers: list[Worker]
    env: dict[str, str]

    async def ensure_running(self) -> None:
        """Start a worker an earlier test killed (so each test may run alone, or after it)."""
        for worker in self.workers:
            if worker.proc is None or worker.proc.poll() is not None:
                await worker.start(**self.env)

    def users(self, base: int, count: int = USERS) -> list[FakeUser]:
        return patients(self.fake, base, count)


@pytest.fixture(scope="module")
async def cluster(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cluster]:
    """Two webhook workers on PostgreSQL + Redis behind a round-robin proxy, shared by the
    tests of this module (starting a worker costs seconds of CPU)."""
    redis_url = await reachable_redis()
    if redis_url is None:
        pytest.skip("Redis is not running at 127.0.0.1:56379 (bash .ci/redis starts it)")
    tmp = tmp_path_factory.mktemp("workers")
    prefix = redis_prefix()
    env = {
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "LOCK_TIMEOUT_SECONDS": str(LOCK_SECONDS),
        "LOG_LEVEL": "INFO",
    }
    async with FakeTelegram() as fake:
        fake.add_bot(TOKEN)
        fake.webhook_retry_delay = 0.2
        proxy = RoundRobinProxy([])
        workers = [Worker(fake, tmp, postgres_url, f"worker-{n}", proxy.url) for n in (1, 2)]
        proxy.backends[:] = [w.url for w in workers]
        proxy.counts = dict.fromkeys(proxy.backends, 0)
        proxy._next = itertools.cycle(proxy.backends)
        await proxy.start()
        cluster = Cluster(fake, proxy, workers, env)
        try:
            for worker in workers:  # one after the other: the first one migrates the database
                await worker.start(**env)
            yield cluster
            for worker in workers:
                if worker.proc is not None and worker.proc.poll() is None:
                    assert await worker.stop(signal.SIGTERM) == 0
        finally:
            for worker in workers:
                worker.stop_now()
            await proxy.stop()
            await drop_redis_keys(redis_url, prefix)


@pytest.mark.servers
@pytest.mark.parametrize("run", [1, 2, 3])
async def test_fifty_quick_patients_through_two_workers_are_answered_in_step_order(
    cluster: Cluster, run: int
) -> None:
    await cluster.ensure_running()
    base = 650_000_000 + run * 1000
    users = cluster.users(base)
    before = dict(cluster.proxy.counts)
    async with Watch(cluster.fake) as watch:
        try:
            await asyncio.gather(
                *(register_quickly(watch, u, watch.webhook_accepted) for u in users)
            )
        except AssertionError as stuck:
            raise AssertionError(await _stuck_report(cluster.workers[0], watch, users)) from stuck

    wrong = out_of_order(watch, users)
    assert not wrong, f"answered out of step: {wrong}"
    worker = cluster.workers[0]
    rows = await worker.db(
        f"SELECT count(*) FROM patients WHERE telegram_id BETWEEN {base} AND {base + USERS}"  # noqa: S608
    )
    assert rows == [(USERS,)]
    assert await worker.db("SELECT count(*) FROM inbox WHERE status != 'done'") == [(0,)]
    # both workers took a fair share (the proxy alternates)
    shares = [cluster.proxy.counts[b] - before[b] for b in cluster.proxy.backends]
    assert min(shares) >= USERS * 3, shares


@pytest.mark.servers
async def test_a_worker_killed_mid_run_loses_nothing_and_freezes_nobody_past_the_lock(
    cluster: Cluster,
) -> None:
    await cluster.ensure_running()
    victim, survivor = cluster.workers
    base = 650_009_000
    users = cluster.users(base)
    async with Watch(cluster.fake) as watch:

        async def patient(user: FakeUser) -> float:
            first = await user.send("/start")
            await watch.webhook_accepted(first)
            started = watch.accepted[first.update_id]
            await watch.sees(user, "Согласие на обработку")
            for action in (
                lambda: user.click("✅ Согласен"),
                lambda: user.send(NAME),
                lambda: user.send(BIRTH),
                lambda: user.send_contact(),
                lambda: user.send(REGION),
            ):
                await watch.webhook_accepted(await action())
            await watch.sees(user, "Проверьте данные")
            await watch.webhook_accepted(await user.click("✅ Всё верно"))
            await watch.sees(user, "Регистрация завершена")
            return started

        running = asyncio.gather(*(patient(u) for u in users))
        await watch.until(
            lambda: sum(watch.shows(u, "Шаг 2 из 4") for u in users) >= USERS // 3,
            "a third of the patients at step 2",
        )
        victim.stop_now()  # SIGKILL
        killed_at = time.time()
        orphans = await survivor.db(
            "SELECT count(*) FROM inbox WHERE status = 'pending' AND claimed_by LIKE 'worker-1/%'"
        )
        try:
            started = await running
        except AssertionError as stuck:
            raise AssertionError(await _stuck_report(survivor, watch, users)) from stuck

    assert orphans[0][0] > 0, "the kill left no update unfinished: the test tested nothing"
    # An answer the dead worker sent before its update was marked handled is sent again by the
    # survivor (at least once); anything else out of step is a fault.
    wrong = out_of_order(watch, users, repeats=False)
    assert not wrong, f"answered out of step: {wrong}"
    rows = await survivor.db(
        f"SELECT count(*) FROM patients WHERE telegram_id BETWEEN {base} AND {base + USERS}"  # noqa: S608
    )
    assert rows == [(USERS,)]
    assert await survivor.db("SELECT count(*) FROM inbox WHERE status != 'done'") == [(0,)]
    waits = {u.user_id: watch.longest_wait(u, s) for u, s in zip(users, started, strict=True)}
    # The dead worker's claims go stale after the lock setting, the survivor sweeps every third
    # of it; a margin for a loaded machine.
    allowed = LOCK_SECONDS + LOCK_SECONDS / 3 + 2.0
    frozen = {uid: round(w, 1) for uid, w in waits.items() if w > allowed}
    assert frozen == {}, f"waited longer than {allowed} s (killed at {killed_at:.1f})"


@pytest.mark.servers
async def test_a_worker_killed_after_saving_the_dialogue_but_before_the_inbox_mark(
    cluster: Cluster,
) -> None:
    """The window between the Redis dialogue write and the inbox mark, made wide on purpose:
    the test holds the update's inbox row locked, so the worker's mark waits after the dialogue
    was saved; then the worker is SIGKILLed. The survivor takes the update over and must not
    apply it again in the step the dialogue has moved on to."""
    await cluster.ensure_running()
    fake = cluster.fake
    (user,) = patients(fake, 650_008_000, 1)
    redis_url = cluster.env["REDIS_URL"]
    bot_id = int(TOKEN.split(":")[0])
    state_key = DefaultKeyBuilder(
        prefix=cluster.env["REDIS_KEY_PREFIX"], with_bot_id=True, with_destiny=True
    ).build(StorageKey(bot_id, user.user_id, user.user_id), "state")
    redis = Redis.from_url(redis_url)
    engine = create_engine(cluster.workers[0].database_url)
    try:
        async with Watch(fake) as watch:
            for action, answer in (
                (lambda: user.send("/start"), "Согласие на обработку"),
                (lambda: user.click("✅ Согласен"), "Шаг 1 из 4"),
            ):
                await watch.webhook_accepted(await action())
                await watch.sees(user, answer)
            fake.hold("sendMessage")
            name = await user.send(NAME)
            await watch.webhook_accepted(name)
            await fake.wait_for_held(1, timeout=30)
            async with engine.connect() as conn, conn.begin() as lock:
                holder = (
                    await conn.execute(
                        text("SELECT claimed_by FROM inbox WHERE update_id = :id FOR UPDATE"),
                        {"id": name.update_id},
                    )
                ).scalar_one()
                fake.release()
                await watch.sees(user, "Шаг 2 из 4")
                for _ in range(300):  # the dialogue is saved (the mark now waits for our lock)
                    if await redis.get(state_key) == b"Registration:birth_date":
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("the dialogue was not saved")
                victim = next(w for w in cluster.workers if holder.startswith(f"{w.name}/"))
                victim.stop_now()  # SIGKILL
                await lock.rollback()
            # the survivor takes the update over (after LOCK_SECONDS) and finishes it
            survivor = next(w for w in cluster.workers if w is not victim)
            query = f"SELECT status FROM inbox WHERE update_id = {name.update_id}"  # noqa: S608
            for _ in range(300):
                if await survivor.db(query) != [("pending",)]:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the update was not taken over")
            await watch.webhook_accepted(await user.send(BIRTH))
            await watch.sees(user, "Шаг 3 из 4")
        # the name once (or its answer repeated), never the name read as a birth date
        seen = watch.walk(user, repeats=False)
        assert seen == STEPS[: STEPS.index("step 3") + 1], seen
    finally:
        await redis.aclose()
        await engine.dispose()


# ------------------------------------------------------------------ the default single process


def sqlite_url(tmp: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp}/bot.db"


async def test_default_process_takes_back_an_update_cut_off_by_sigkill_at_once_in_its_step(
    tmp_path: Path,
) -> None:
    """Polling, SQLite, no WORKER_NAME: two handlers are cut off by a SIGKILL while their
    answer waits at Telegram's door — a button's (after it edited its message) and a typed
    name's. The restarted process handles both again at once, in the steps they arrived in."""
    async with FakeTelegram() as fake:
        process = BotProcess(fake, tmp_path, sqlite_url(tmp_path))
        fake.add_bot(TOKEN)
        process.env.pop("WORKER_NAME", None)
        # a claim of the dead process would go stale only after a minute: "at once" is clear
        await process.start(LOCK_TIMEOUT_SECONDS="60")
        try:
            clicker, typist = patients(fake, 660_000_001, 2)
            async with Watch(fake) as watch:
                await clicker.send("/start")
                await watch.sees(clicker, "Согласие на обработку")
                await typist.send("/start")
                await watch.sees(typist, "Согласие на обработку")
                await typist.click("✅ Согласен")
                await watch.sees(typist, "Шаг 1 из 4")

                fake.hold("sendMessage")  # the next questions wait at Telegram's door
                click = await clicker.click("✅ Согласен")
                name = await typist.send(NAME)
                await fake.wait_for_held(2, timeout=30)
                process.kill()
                killed_at = time.time()
                pending = await process.db(
                    "SELECT update_id FROM inbox WHERE status = 'pending' ORDER BY update_id"
                )
                assert pending == [(click.update_id,), (name.update_id,)]
                before = {u.user_id: len(watch.walk(u)) for u in (clicker, typist)}

                await process.start(LOCK_TIMEOUT_SECONDS="60")
                # Released only now that the fake has surely seen the dead process's connections
                # close: its held calls are dropped, never executed (the answers never arrived).
                fake.release()
                ready_at = time.time()
                await watch.sees(clicker, "Шаг 1 из 4")
                await watch.sees(typist, "Шаг 2 из 4")
                answered_at = max(watch.sent[u.user_id][-1].at for u in (clicker, typist))
                # taken back at once: not after the claim went stale (60 s after the kill)
                assert answered_at - ready_at < 5.0, (killed_at, ready_at, answered_at)
                # answered in the step each arrived in, and only that
                assert watch.walk(clicker)[before[clicker.user_id] :] == ["step 1"]
                assert watch.walk(typist)[before[typist.user_id] :] == ["step 2"]

                # and the dialogues go on from there
                for user in (clicker, typist):
                    if user is clicker:
                        await user.send(NAME)
                        await watch.sees(user, "Шаг 2 из 4")
                    await user.send(BIRTH)
                    await watch.sees(user, "Шаг 3 из 4")
                    await user.send_contact()
                    await watch.sees(user, "Шаг 4 из 4")
                    await user.send(REGION)
                    await watch.sees(user, "Проверьте данные")
                    await user.click("✅ Всё верно")
                    await watch.sees(user, "Регистрация завершена")
                wrong = out_of_order(watch, (clicker, typist))
                assert not wrong, f"answered out of step: {wrong}"
            assert await process.db("SELECT count(*) FROM patients") == [(2,)]
            # the last answer goes out before its update is marked done (a moment later)
            for _ in range(100):
                left = await process.db("SELECT count(*) FROM inbox WHERE status != 'done'")
                if left == [(0,)]:
                    break
                await asyncio.sleep(0.05)
            assert left == [(0,)]
            assert await process.stop(signal.SIGTERM) == 0
        finally:
            if process.proc is not None and process.proc.poll() is None:
                process.kill()


@dataclass
class Poller:
    fake: FakeTelegram
    process: BotProcess


@pytest.fixture(scope="module")
async def poller(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Poller]:
    """The default bot process (polling, SQLite), shared by the outage tests."""
    tmp = tmp_path_factory.mktemp("poller")
    async with FakeTelegram() as fake:
        fake.add_bot(TOKEN)
        process = BotProcess(fake, tmp, sqlite_url(tmp))
        process.env["LOG_LEVEL"] = "INFO"
        await process.start()
        try:
            yield Poller(fake, process)
            assert await process.stop(signal.SIGTERM) == 0
        finally:
            if process.proc is not None and process.proc.poll() is None:
                process.kill()


#: What the bot calls while answering a registration step.
REPLY_METHODS = ["sendMessage", "editMessageText", "editMessageReplyMarkup", "answerCallbackQuery"]
OUTAGE_SECONDS = 8.0


@pytest.mark.parametrize(
    ("error_code", "retry_after"), [(429, 3), (500, None)], ids=["429-retry-after-3", "500"]
)
async def test_replies_outlast_telegram_refusing_for_8_seconds_each_delivered_once(
    poller: Poller, error_code: int, retry_after: int | None
) -> None:
    fake, process = poller.fake, poller.process
    users = patients(fake, 670_000_000 + error_code * 100, 10)

    async def consumed(pushed: PushedUpdate) -> None:
        await pushed.consumed(timeout=60)

    async with Watch(fake) as watch:

        async def up_to_step_1(user: FakeUser) -> None:
            await consumed(await user.send("/start"))
            await watch.sees(user, "Согласие на обработку")
            await consumed(await user.click("✅ Согласен"))
            await watch.sees(user, "Шаг 1 из 4")
            await user.wait_for_callback_answer(timeout=60)  # the consent update is done

        await asyncio.gather(*(up_to_step_1(u) for u in users))
        before = {u.user_id: len(watch.walk(u)) for u in users}

        # Telegram refuses every reply for 8 s while the patients answer four steps quickly
        fake.fail_for(REPLY_METHODS, OUTAGE_SECONDS, error_code=error_code, retry_after=retry_after)
        outage_ends = time.time() + OUTAGE_SECONDS

        async def answer_quickly(user: FakeUser) -> None:
            for action in (
                lambda: user.send(NAME),
                lambda: user.send(BIRTH),
                lambda: user.send_contact(),
                lambda: user.send(REGION),
            ):
                await consumed(await action())
            await watch.sees(user, "Проверьте данные")
            await consumed(await user.click("✅ Всё верно"))
            await watch.sees(user, "Регистрация завершена")

        await asyncio.gather(*(answer_quickly(u) for u in users))

        async def all_finished() -> bool:
            rows = await process.db("SELECT count(*) FROM inbox WHERE status = 'pending'")
            return rows == [(0,)]

        for _ in range(300):  # the handlers are done: no reply can still be on its way
            if await all_finished():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("updates still pending")

    met = {u.user_id: watch.refused[u.user_id] for u in users}
    assert all(met.values()), f"the outage did not meet every patient: {met}"
    for user in users:
        after = watch.walk(user)[before[user.user_id] :]
        assert after == STEPS[STEPS.index("step 2") :], (user, after)
        first = next(a for a in watch.sent[user.user_id] if "Шаг 2 из 4" in a.text)
        assert first.at >= outage_ends - 0.5, "answered inside the outage?"
    ids = ", ".join(str(u.user_id) for u in users)
    rows = await process.db(f"SELECT count(*) FROM patients WHERE telegram_id IN ({ids})")  # noqa: S608
    assert rows == [(len(users),)]
    assert await process.db("SELECT count(*) FROM inbox WHERE status = 'failed'") == [(0,)]
