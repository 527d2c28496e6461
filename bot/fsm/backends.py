"""Where dialogues live and how one user's updates are kept apart: the bot's own database
(embedded default) or Redis (``REDIS_URL``: several workers share dialogues)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiogram.fsm.storage.base import (
    BaseEventIsolation,
    BaseStorage,
    DefaultKeyBuilder,
    StorageKey,
)
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from bot.config import Settings
from bot.fsm.storage import SQLStorage
from bot.fsm.unit import DialogueUnit, WriteBehindStorage
from bot.storage.db import SessionFactory

DIALOGUE_PARTS = ("state", "data", "applied")

logger = logging.getLogger("bot.dialogues")


class LeasedEventIsolation(RedisEventIsolation):
    """aiogram's Redis lock per user, held as a lease: a dead worker's lock ends after its
    timeout (LOCK_TIMEOUT_SECONDS), while a live worker renews its own every third of it for as
    long as the update takes. A plain timeout let a slow update (a loaded machine, a slow
    database) lose its lock mid-handler to the same user's next update on another worker."""

    @contextlib.asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        name = self.key_builder.build(key, "lock")
        lease = self.redis.lock(name=name, **self.lock_kwargs, lock_class=Lock)
        async with lease:
            renewal = asyncio.create_task(self._renew(lease))
            try:
                yield None
            finally:
                renewal.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewal

    @staticmethod
    async def _renew(lease: Lock) -> None:
        if lease.timeout is None:
            return
        while True:
            await asyncio.sleep(lease.timeout / 3)
            try:
                await lease.reacquire()
            except (LockError, RedisError) as exc:  # lost: the release will say so as well
                logger.warning("dialogue lock not renewed: %s", type(exc).__name__)
                return


class DialogueRedisStorage(WriteBehindStorage, RedisStorage):
    """RedisStorage whose reads and writes inside an update are done once (see bot.fsm.unit),
    each in one round trip."""

    async def load(self, key: StorageKey) -> tuple[str | None, dict[str, Any]]:
        state, data = await self.redis.mget(
            self.key_builder.build(key, "state"), self.key_builder.build(key, "data")
        )
        if isinstance(state, bytes):
            state = state.decode("utf-8")
        return state, (self.json_loads(data) if data else {})

    def _applied_key(self, order_key: int, messenger: str = "telegram") -> str:
        builder = self.key_builder
        prefix = builder.prefix if isinstance(builder, DefaultKeyBuilder) else "fsm"
        separator = builder.separator if isinstance(builder, DefaultKeyBuilder) else ":"
        # A user is (messenger, user id): MAX's marks apart from Telegram's ("applied" as it
        # was for Telegram). Shaped like a dialogue key of the user, so forget_dialogues erases
        # it with them.
        kind = "applied" if messenger == "telegram" else f"applied-{messenger}"
        return separator.join((prefix, kind, str(order_key), "inbox", "applied"))

    async def last_applied(self, order_key: int, messenger: str = "telegram") -> int:
        """The last update of this user (of ``messenger``) whose dialogue changes were written
        (0: none known)."""
        value = await self.redis.get(self._applied_key(order_key, messenger))
        return int(value) if value else 0

    async def save(
        self,
        unit: DialogueUnit,
        session: Any = None,
        *,
        applied: tuple[int, int] | None = None,
        messenger: str = "telegram",
    ) -> None:
        """Write the unit's changes in one MULTI; with ``applied`` (order key, update id of
        ``messenger``), also that this update's changes are in, so a worker that dies before the
        update is marked done in the database does not get it applied a second time, to a later
        step."""
        changes = unit.changes()
        if not changes:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            if applied is not None:
                order_key, update_id = applied
                pipe.set(self._applied_key(order_key, messenger), update_id, ex=self.data_ttl)
            for key, dialogue in changes:
                state_key = self.key_builder.build(key, "state")
                data_key = self.key_builder.build(key, "data")
                if dialogue.state is None:
                    pipe.delete(state_key)
                else:
                    pipe.set(state_key, dialogue.state, ex=self.state_ttl)
                if dialogue.data:
                    pipe.set(data_key, self.json_dumps(dialogue.data), ex=self.data_ttl)
                else:
                    pipe.delete(data_key)
            await pipe.execute()
        unit.saved()


@dataclass(frozen=True)
class DialogueBackend:
    storage: BaseStorage
    isolation: BaseEventIsolation

    @property
    def redis(self) -> Redis | None:
        """The Redis client (for health checks), None on the SQL storage."""
        return self.storage.redis if isinstance(self.storage, RedisStorage) else None


def create_dialogue_backend(
    settings: Settings, sessions: SessionFactory, *, key_prefix: str | None = None
) -> DialogueBackend:
    if not settings.redis_url:
        return DialogueBackend(SQLStorage(sessions), SimpleEventIsolation())
    ttl = timedelta(hours=settings.redis_dialogue_ttl_hours)
    storage = DialogueRedisStorage.from_url(
        settings.redis_url,
        key_builder=DefaultKeyBuilder(
            prefix=key_prefix or settings.redis_key_prefix, with_bot_id=True, with_destiny=True
        ),
        state_ttl=ttl,
        data_ttl=ttl,
    )
    # The inbox decides the order of one user's updates across workers (bot.runner); this lock
    # also keeps two workers from handling one user at the same moment when Telegram delivers
    # two of their updates at once. A dead worker's lock ends after LOCK_TIMEOUT_SECONDS; a
    # live one renews its own.
    isolation = LeasedEventIsolation(
        storage.redis,
        key_builder=storage.key_builder,
        lock_kwargs={"timeout": settings.lock_timeout_seconds, "sleep": 0.02},
    )
    return DialogueBackend(storage, isolation)


async def forget_dialogues(storage: BaseStorage, user_id: int) -> int:
    """Erase every dialogue of a user kept outside the database (profile deletion; the SQL
    storage's rows go in the erasure's own transaction). Returns the keys removed."""
    if not isinstance(storage, RedisStorage):
        return 0
    builder = storage.key_builder
    prefix = builder.prefix if isinstance(builder, DefaultKeyBuilder) else "fsm"
    separator = builder.separator if isinstance(builder, DefaultKeyBuilder) else ":"
    doomed = []
    async for raw in storage.redis.scan_iter(match=f"{prefix}{separator}*", count=500):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        parts = key.split(separator)
        # prefix:bot:chat[:thread]:user:destiny:part (see DefaultKeyBuilder.build)
        if len(parts) >= 5 and parts[-3] == str(user_id) and parts[-1] in DIALOGUE_PARTS:
            doomed.append(key)
    if doomed:
        await storage.redis.delete(*doomed)
    return len(doomed)
