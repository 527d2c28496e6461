"""Where dialogues live and how one user's updates are kept apart: the bot's own database
(embedded default) or Redis (``REDIS_URL``: several workers share dialogues and locks)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.fsm.storage.redis import RedisStorage
from redis.asyncio import Redis

from bot.config import Settings
from bot.fsm.storage import SQLStorage
from bot.fsm.unit import WriteBehindStorage
from bot.storage.db import SessionFactory


class DialogueRedisStorage(WriteBehindStorage, RedisStorage):
    """RedisStorage whose reads and writes inside an update are done once (see bot.fsm.unit)."""


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
    # A crashed worker's lock on a user expires after LOCK_TIMEOUT_SECONDS.
    isolation = storage.create_isolation(lock_kwargs={"timeout": settings.lock_timeout_seconds})
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
        if len(parts) >= 5 and parts[-3] == str(user_id) and parts[-1] in ("state", "data"):
            doomed.append(key)
    if doomed:
        await storage.redis.delete(*doomed)
    return len(doomed)
