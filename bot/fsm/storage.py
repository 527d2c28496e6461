"""aiogram FSM storage kept in the bot's own database, so a restart keeps every dialogue."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.storage.db import SessionFactory
from bot.storage.models import FsmRecord


def _pk(key: StorageKey) -> dict[str, Any]:
    return {
        "bot_id": key.bot_id,
        "chat_id": key.chat_id,
        "user_id": key.user_id,
        "thread_id": key.thread_id or 0,
        "business_connection_id": key.business_connection_id or "",
        "destiny": key.destiny,
    }


class SQLStorage(BaseStorage):
    """One row per key; an empty state with empty data deletes the row."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def _upsert(self, key: StorageKey, values: dict[str, Any]) -> None:
        async with self._sessions.begin() as session:
            dialect = session.get_bind().dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            row = {**_pk(key), "state": None, "data": "{}", **values}
            row["updated_at"] = datetime.now(UTC)
            stmt = insert(FsmRecord).values(**row)
            stmt = stmt.on_conflict_do_update(
                index_elements=list(_pk(key)),
                set_={**values, "updated_at": row["updated_at"]},
            )
            await session.execute(stmt)
            await session.execute(
                delete(FsmRecord).where(
                    *(getattr(FsmRecord, k) == v for k, v in _pk(key).items()),
                    FsmRecord.state.is_(None),
                    FsmRecord.data == "{}",
                )
            )

    async def _get(self, key: StorageKey) -> FsmRecord | None:
        async with self._sessions() as session:
            return await session.get(FsmRecord, tuple(_pk(key).values()))

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._upsert(key, {"state": value})

    async def get_state(self, key: StorageKey) -> str | None:
        record = await self._get(key)
        return record.state if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._upsert(key, {"data": json.dumps(dict(data), ensure_ascii=False)})

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        record = await self._get(key)
        if record is None:
            return {}
        loaded: dict[str, Any] = json.loads(record.data)
        return loaded

    async def close(self) -> None:
        """The engine is owned and disposed of by the composition root."""

    async def forget_user(self, user_id: int) -> int:
        """Erase every dialogue of a user (profile deletion). Returns the rows removed."""
        async with self._sessions.begin() as session:
            result = await session.execute(delete(FsmRecord).where(FsmRecord.user_id == user_id))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def purge_idle(self, older_than: timedelta) -> int:
        """Drop dialogues untouched for longer than ``older_than`` (retention)."""
        cutoff = datetime.now(UTC) - older_than
        async with self._sessions.begin() as session:
            result = await session.execute(delete(FsmRecord).where(FsmRecord.updated_at < cutoff))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def keys_for_user(self, user_id: int) -> list[tuple[int, str | None]]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(FsmRecord.chat_id, FsmRecord.state).where(FsmRecord.user_id == user_id)
            )
            return [(r[0], r[1]) for r in rows]
