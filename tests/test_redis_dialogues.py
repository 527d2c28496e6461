"""Dialogues in Redis (REDIS_URL): they survive a restart, expire when abandoned, and go with the
patient's data when the patient deletes it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.utils.i18n import I18n
from redis.asyncio import Redis

from bot.catalog import Catalog
from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import TOKEN, Harness, drop_redis_keys, with_fresh_staff_chats
from tests.helpers import register, start_and_consent

pytestmark = pytest.mark.servers


@pytest.fixture
async def on_redis(
    fake: FakeTelegram,
    tmp_path: Path,
    i18n: I18n,
    catalog: Catalog,
    database_url: str,
    redis_url: str,
) -> AsyncIterator[Harness]:
    h = Harness(
        fake,
        tmp_path,
        i18n,
        with_fresh_staff_chats(catalog),
        database_url=database_url,
        redis_url=redis_url,
        redis_dialogue_ttl_hours=2,
    )
    await h.start()
    try:
        yield h
    finally:
        await h.stop()
        await drop_redis_keys(redis_url, h.redis_prefix)


async def user_keys(h: Harness, user: FakeUser) -> list[str]:
    client = Redis.from_url(h.settings.redis_url or "")
    try:
        keys = [k.decode() async for k in client.scan_iter(match=f"{h.redis_prefix}:*")]
    finally:
        await client.aclose()
    return sorted(k for k in keys if f":{user.user_id}:" in k)


async def test_a_dialogue_lives_in_redis_with_a_ttl_and_survives_a_restart(
    on_redis: Harness, user: FakeUser
) -> None:
    h = on_redis
    assert isinstance(h.dp.fsm.storage, RedisStorage)
    await start_and_consent(user)
    assert "Шаг 1 из 4" in user.last_text()
    keys = await user_keys(h, user)
    assert any(k.endswith(":state") for k in keys)
    client = Redis.from_url(h.settings.redis_url or "")
    try:
        ttl = await client.ttl(next(k for k in keys if k.endswith(":state")))
    finally:
        await client.aclose()
    assert 2 * 3600 - 60 < ttl <= 2 * 3600  # an abandoned dialogue is forgotten

    await h.restart()
    await user.send("Кузнецова Мария")
    assert "Шаг 2 из 4" in user.last_text()


async def test_deleting_the_profile_erases_the_users_dialogues_in_redis(
    on_redis: Harness, user: FakeUser
) -> None:
    h = on_redis
    await register(user)
    # A dialogue of the same person elsewhere (another chat's key) holds data too.
    other = StorageKey(bot_id=int(TOKEN.split(":")[0]), chat_id=-100777, user_id=user.user_id)
    await h.dp.fsm.storage.set_data(other, {"draft": "Кузнецова"})
    assert await user_keys(h, user)

    await user.send("/profile")
    await user.click("🗑 Удалить мои данные")
    await user.click("Да, удалить")
    await user.click("🗑 Удалить навсегда")
    assert "Ваши данные удалены" in user.last_text()
    assert await user_keys(h, user) == []


async def test_a_slow_update_keeps_its_users_lock_and_a_dead_workers_lock_ends(
    redis_url: str,
) -> None:
    """LOCK_TIMEOUT_SECONDS bounds a dead worker's lock, not a live worker's slow update: the
    same user's next update (another worker) waits for the slow one to end, however long."""
    from redis.asyncio.lock import Lock

    from bot.fsm.backends import LeasedEventIsolation

    redis = Redis.from_url(redis_url)
    prefix = f"lease-{TOKEN[:4]}-{id(redis)}"
    isolation = LeasedEventIsolation(
        redis,
        key_builder=DefaultKeyBuilder(prefix=prefix, with_bot_id=True, with_destiny=True),
        lock_kwargs={"timeout": 0.3, "sleep": 0.02},
    )
    key = StorageKey(bot_id=1, chat_id=42, user_id=42)
    order: list[str] = []
    try:

        async def slow() -> None:
            async with isolation.lock(key):
                order.append("slow begins")
                await asyncio.sleep(1.0)  # more than three lock timeouts
                order.append("slow ends")

        async def next_update() -> None:
            await asyncio.sleep(0.1)
            async with isolation.lock(key):
                order.append("next")

        await asyncio.wait_for(asyncio.gather(slow(), next_update()), 5)
        assert order == ["slow begins", "slow ends", "next"]

        # A worker that died holding the lock (no renewal, no release): gone after the timeout.
        name = isolation.key_builder.build(key, "lock")
        dead = redis.lock(name=name, timeout=0.3, lock_class=Lock)
        assert await dead.acquire()
        started = asyncio.get_running_loop().time()
        async with isolation.lock(key):
            waited = asyncio.get_running_loop().time() - started
        assert 0.1 < waited < 2.0
    finally:
        await drop_redis_keys(redis_url, prefix)
        await redis.aclose()


async def test_only_the_update_the_mark_names_counts_as_applied(redis_url: str) -> None:
    """A taken-back update whose dialogue its first worker wrote is marked done, not applied
    again; an earlier update is not taken for applied because a later one of the same person
    was applied out of turn (two messages sent at once reach two workers before either is
    stored): it is still answered."""
    from aiogram import Dispatcher

    from bot.fsm.backends import DialogueRedisStorage
    from bot.messengers.identity import Messenger
    from bot.runner import Front, UpdateProcessor
    from bot.services.inbox import StoredUpdate

    prefix = f"mark-{id(redis_url)}"
    storage = DialogueRedisStorage.from_url(
        redis_url,
        key_builder=DefaultKeyBuilder(prefix=prefix, with_bot_id=True, with_destiny=True),
    )
    dp = Dispatcher(storage=storage)
    on_max = Front(Messenger.MAX, None, dp)  # type: ignore[arg-type]
    processor = UpdateProcessor(dp, None, None, others=[on_max])  # type: ignore[arg-type]
    try:
        assert not await processor._applied_before(StoredUpdate(1005, 42, {}))
        await storage.redis.set(storage._applied_key(42), 1005)
        assert await processor._applied_before(StoredUpdate(1005, 42, {}))
        assert not await processor._applied_before(StoredUpdate(1003, 42, {}))
        assert not await processor._applied_before(StoredUpdate(1005, 43, {}))
        # MAX's user 42 is another person: Telegram's mark is not theirs, nor theirs Telegram's
        on_max_42 = StoredUpdate(1005, 42, {}, messenger=Messenger.MAX)
        assert not await processor._applied_before(on_max_42)
        await storage.redis.set(storage._applied_key(42, Messenger.MAX), 2010)
        assert await processor._applied_before(StoredUpdate(2010, 42, {}, messenger=Messenger.MAX))
        assert not await processor._applied_before(StoredUpdate(2010, 42, {}))
    finally:
        await drop_redis_keys(redis_url, prefix)
        await storage.close()


async def test_an_update_a_peer_took_from_a_late_worker_is_answered_once(
    harness: Harness, redis_url: str
) -> None:
    """A worker alive but late with its heartbeat (a starved CPU) has its claims taken by a
    peer while the updates still wait in its own queue. Whoever comes second under the person's
    lock leaves the update alone: the late worker neither answers it again (the peer answered
    it and the person's next message since, so the dialogue's mark names another update) nor
    marks it done before the peer, which then answers it."""
    from datetime import UTC, datetime, timedelta

    from aiogram import Dispatcher
    from aiogram.fsm.context import FSMContext
    from aiogram.types import Message

    from bot.fsm.backends import DialogueRedisStorage
    from bot.fsm.unit import DialogueUnitMiddleware
    from bot.runner import UpdateProcessor
    from bot.services.inbox import InboxService
    from bot.storage.inbox_models import InboxStatus, InboxUpdate
    from tests.conftest import FrozenClock
    from tests.test_inbox import text_update

    prefix = f"late-{id(harness)}"
    storage = DialogueRedisStorage.from_url(
        redis_url,
        key_builder=DefaultKeyBuilder(prefix=prefix, with_bot_id=True, with_destiny=True),
    )
    answered: list[str | None] = []
    dp = Dispatcher(storage=storage)
    dp.update.outer_middleware(DialogueUnitMiddleware(storage))

    @dp.message()
    async def answer(message: Message, state: FSMContext) -> None:
        answered.append(message.text)
        await state.update_data(last=message.text)

    clock = FrozenClock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))

    def inbox(worker: str) -> InboxService:
        return InboxService(
            harness.services.sessions,
            worker,
            stale_after=timedelta(seconds=30),
            keep_finished=timedelta(hours=1),
            clock=clock,
        )

    late, peer = inbox("worker-1/101/a"), inbox("worker-2/102/b")
    late_worker = UpdateProcessor(dp, harness.bot, late)
    peer_worker = UpdateProcessor(dp, harness.bot, peer)

    async def row(update_id: int) -> tuple[InboxStatus, str | None]:
        async with harness.services.sessions() as session:
            found = await session.get(InboxUpdate, ("telegram", update_id))
            assert found is not None
            return found.status, found.claimed_by

    try:
        # 1. the peer took the update and answered it, and the person's next one too
        (region,) = await late.store([text_update(700_261, 4242, "Тверская область")])
        clock.advance(seconds=60)
        assert [s.update_id for s in await peer.take_over()] == [700_261]
        await peer_worker._handle(region)
        (click,) = await peer.store([text_update(700_342, 4242, "Всё верно")])
        await peer_worker._handle(click)
        await late_worker._handle(region)  # the late worker gets to it at last
        assert answered == ["Тверская область", "Всё верно"]

        # 2. the peer took it but has not answered yet: the late worker must not close it
        (late_one,) = await late.store([text_update(700_400, 4242, "вопрос")])
        clock.advance(seconds=60)
        assert [s.update_id for s in await peer.take_over()] == [700_400]
        await late_worker._handle(late_one)
        assert answered == ["Тверская область", "Всё верно"]
        assert await row(700_400) == (InboxStatus.PENDING, "worker-2/102/b")
        await peer_worker._handle(late_one)
        assert answered == ["Тверская область", "Всё верно", "вопрос"]
        assert (await row(700_400))[0] == InboxStatus.DONE
    finally:
        await drop_redis_keys(redis_url, prefix)
        await storage.close()
