"""aiogram FSM storage kept in the bot's own database, so a restart keeps every dialogue."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from sqlalchemy import Table, and_, bindparam, delete, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.fsm.unit import DialogueUnit, WriteBehindStorage, current_unit
from bot.messengers.identity import current_messenger
from bot.services.patients import (
    PATIENT_COLUMNS,
    SENDERS_PATIENT,
    patient_from_columns,
    sender_key,
)
from bot.storage.db import AsyncSession, SessionFactory
from bot.storage.models import FsmRecord, Patient


def _pk(key: StorageKey) -> dict[str, Any]:
    return {
        "bot_id": key.bot_id,
        "chat_id": key.chat_id,
        "user_id": key.user_id,
        "thread_id": key.thread_id or 0,
        "business_connection_id": key.business_connection_id or "",
        "destiny": key.destiny,
    }


def _where(key: StorageKey) -> list[Any]:
    return [getattr(FsmRecord, name) == value for name, value in _pk(key).items()]


# The statements of the hot path (every update reads, most write), built once: constructing
# them per call with literal values cost more than running them.
_TABLE: Table = FsmRecord.__table__  # type: ignore[assignment]
_KEY_COLUMNS = ("bot_id", "chat_id", "user_id", "thread_id", "business_connection_id", "destiny")
_BY_KEY = [_TABLE.c[name] == bindparam(f"k_{name}") for name in _KEY_COLUMNS]
_READ = select(_TABLE.c.state, _TABLE.c.data).where(*_BY_KEY)
_DELETE = delete(_TABLE).where(*_BY_KEY)
# the dialogue and its sender's patient, either missing: two outer joins on a one-row base
_ONE_ROW = select(literal(1).label("one")).subquery("one_row")
_READ_WITH_SENDER = select(_TABLE.c.state, _TABLE.c.data, *PATIENT_COLUMNS).select_from(
    _ONE_ROW.outerjoin(_TABLE, and_(*_BY_KEY)).outerjoin(Patient.__table__, SENDERS_PATIENT)
)


def _upsert_statement(dialect: str) -> Any:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(_TABLE).values(
        {name: bindparam(f"k_{name}") for name in _KEY_COLUMNS}
        | {name: bindparam(name) for name in ("state", "data", "updated_at")}
    )
    return stmt.on_conflict_do_update(
        index_elements=list(_KEY_COLUMNS),
        set_={name: stmt.excluded[name] for name in ("state", "data", "updated_at")},
    )


_UPSERT = {dialect: _upsert_statement(dialect) for dialect in ("sqlite", "postgresql")}


def _key_params(key: StorageKey) -> dict[str, Any]:
    return {f"k_{name}": value for name, value in _pk(key).items()}


async def _upsert(session: AsyncSession, key: StorageKey, values: dict[str, Any]) -> None:
    """Set some columns of the key's row (made if missing); a row left with neither a state nor
    data is deleted."""
    values = {**values, "updated_at": datetime.now(UTC)}
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(FsmRecord).values(**{**_pk(key), "state": None, "data": "{}", **values})
    await session.execute(stmt.on_conflict_do_update(index_elements=list(_pk(key)), set_=values))
    await session.execute(
        delete(FsmRecord).where(*_where(key), FsmRecord.state.is_(None), FsmRecord.data == "{}")
    )


class _SQLStorage(BaseStorage):
    """One row per key; an empty state with empty data deletes the row."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def _read(self, key: StorageKey) -> tuple[str | None, dict[str, Any]]:
        async with self._sessions.read() as connection:
            row = (await connection.execute(_READ, _key_params(key))).first()
        if row is None:
            return None, {}
        data: dict[str, Any] = json.loads(row[1])
        return row[0], data

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        async with self._sessions.begin() as session:
            await _upsert(session, key, {"state": value})

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._read(key))[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async with self._sessions.begin() as session:
            await _upsert(session, key, {"data": json.dumps(dict(data), ensure_ascii=False)})

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return (await self._read(key))[1]

    async def close(self) -> None:
        """The engine is owned and disposed of by the composition root."""


class SQLStorage(WriteBehindStorage, _SQLStorage):
    """The SQL storage; inside an update's unit, state and data are read in one query and
    written in one statement per dialogue, in the transaction the caller gives (the one that
    marks the update handled)."""

    async def load(self, key: StorageKey) -> tuple[str | None, dict[str, Any]]:
        """The dialogue; on the update's first read (aiogram's, before the middlewares) in a
        private chat, the sender's patient too, in the same statement, left in the unit for the
        patient middleware (PatientService.sender): one read instead of two per update."""
        unit = current_unit()
        if unit is None or unit.dialogues or key.chat_id != key.user_id or key.thread_id:
            return await self._read(key)
        messenger = current_messenger().value
        params = _key_params(key) | {"tid": key.user_id, "messenger": messenger}
        async with self._sessions.read() as connection:
            row = (await connection.execute(_READ_WITH_SENDER, params)).one()
        fields: dict[str, Any] = dict(row._mapping)
        state, data = fields.pop("state"), fields.pop("data")
        unit.read_along[sender_key(messenger, key.user_id)] = patient_from_columns(fields)
        return state, (json.loads(data) if data is not None else {})

    async def save(self, unit: DialogueUnit, session: Any = None) -> None:
        changes = unit.changes()
        if not changes:
            return
        if session is None:
            async with self._sessions.begin() as own:
                await self._save_in(own, unit)
            unit.saved()
        else:  # the caller's transaction: saved when it commits
            await self._save_in(session, unit)

    async def _save_in(self, session: AsyncSession, unit: DialogueUnit) -> None:
        upsert = _UPSERT[session.get_bind().dialect.name]
        for key, dialogue in unit.changes():
            if dialogue.state is None and not dialogue.data:
                await session.execute(_DELETE, _key_params(key))
                continue
            values = {
                "state": dialogue.state,
                "data": json.dumps(dialogue.data, ensure_ascii=False),
                "updated_at": datetime.now(UTC),
            }
            await session.execute(upsert, _key_params(key) | values)

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
