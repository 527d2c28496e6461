# mypy: disable-error-code="safe-super"
# (a mixin: super() is the concrete storage it is mixed into, never BaseStorage itself)
"""One update's dialogue state: read once, written once at the end of the update.

aiogram reads and writes the dialogue through the storage many times per update (the state for
the filters, then ``get_data``/``update_data``/``set_state``/``clear`` in the handler), each its
own round trip and, on the SQL storage, its own transaction. Inside a ``DialogueUnit`` the
storage keeps what it read and what the handler wrote in memory; the update's runner writes the
changes once, in the same transaction that marks the update handled (SQL storage), so a crash
leaves either the old step and an unhandled update, or the new step and a handled one — an
update is never applied to a later step than the one it arrived in.

Outside a unit (scheduler jobs, background tasks that outlive their update, tests that call the
storage directly) the storage reads and writes through at once, as before."""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from aiogram.types import TelegramObject


@dataclass
class Dialogue:
    state: str | None
    data: dict[str, Any]
    changed: bool = False


@dataclass
class DialogueUnit:
    dialogues: dict[StorageKey, Dialogue] = field(default_factory=dict)
    open: bool = True
    #: The handler failed: its half-made changes are dropped, the dialogue stays where it was.
    failed: bool = False
    #: An update taken back from a worker that stopped answering: asked again under the user's
    #: lock, before the handler, whether that worker applied it after all (bot.runner).
    recheck: Callable[[], Awaitable[bool]] | None = None
    #: ...and it had: the handler was skipped, the update is only marked done.
    applied_before: bool = False
    #: ...or a peer worker holds it now: the handler was skipped, and the update is left to
    #: the peer, not marked.
    taken_away: bool = False
    #: What the first read of the dialogue brought along for later in the update (the sender's
    #: patient, bot.services.patients), each taken once.
    read_along: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def changes(self) -> list[tuple[StorageKey, Dialogue]]:
        if self.failed:
            return []
        return [(key, d) for key, d in self.dialogues.items() if d.changed]

    def saved(self) -> None:
        for dialogue in self.dialogues.values():
            dialogue.changed = False


_current: contextvars.ContextVar[DialogueUnit | None] = contextvars.ContextVar(
    "dialogue_unit", default=None
)


def current_unit() -> DialogueUnit | None:
    unit = _current.get()
    return unit if unit is not None and unit.open else None


@contextmanager
def dialogue_unit() -> Iterator[DialogueUnit]:
    """The dialogue state of the update handled inside (a task started inside and still
    running afterwards sees a closed unit and reads and writes through)."""
    unit = DialogueUnit()
    token = _current.set(unit)
    try:
        yield unit
    finally:
        unit.open = False
        _current.reset(token)


def _state_name(state: StateType) -> str | None:
    return state.state if isinstance(state, State) else state


class WriteBehindStorage(BaseStorage):
    """Mixed into a storage (before it in the bases): inside a unit, reads are cached and writes
    held until ``save``. Subclasses may override ``load`` (one round trip for state and data)
    and ``save`` (e.g. into the transaction that marks the update handled)."""

    async def load(self, key: StorageKey) -> tuple[str | None, dict[str, Any]]:
        return await super().get_state(key), await super().get_data(key)

    async def save(self, unit: DialogueUnit, session: Any = None) -> None:
        """Write what the unit changed (``session``: a SQL storage writes in it)."""
        for key, dialogue in unit.changes():
            await super().set_state(key, dialogue.state)
            await super().set_data(key, dialogue.data)
        unit.saved()

    async def _dialogue(self, unit: DialogueUnit, key: StorageKey) -> Dialogue:
        dialogue = unit.dialogues.get(key)
        if dialogue is None:
            state, data = await self.load(key)
            dialogue = unit.dialogues[key] = Dialogue(state, data)
        return dialogue

    async def get_state(self, key: StorageKey) -> str | None:
        unit = current_unit()
        if unit is None:
            return await super().get_state(key)
        return (await self._dialogue(unit, key)).state

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        unit = current_unit()
        if unit is None:
            return await super().get_data(key)
        return dict((await self._dialogue(unit, key)).data)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        unit = current_unit()
        if unit is None:
            await super().set_state(key, state)
            return
        dialogue = await self._dialogue(unit, key)
        value = _state_name(state)
        if dialogue.state != value:
            dialogue.state, dialogue.changed = value, True

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        unit = current_unit()
        if unit is None:
            await super().set_data(key, data)
            return
        dialogue = await self._dialogue(unit, key)
        if dialogue.data != data:
            dialogue.data, dialogue.changed = dict(data), True


Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class DialogueUnitMiddleware(BaseMiddleware):
    """An update fed to the Dispatcher without the runner (which opens the unit itself and saves
    it with the inbox mark) still gets a unit, saved when its handler returns."""

    def __init__(self, storage: BaseStorage) -> None:
        self._storage = storage

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        unit = current_unit()
        if unit is not None:
            if unit.recheck is not None and await unit.recheck():
                unit.applied_before = True
                return UNHANDLED
            try:
                return await handler(event, data)
            except BaseException:
                unit.failed = True
                raise
        if not isinstance(self._storage, WriteBehindStorage):
            return await handler(event, data)
        with dialogue_unit() as unit:
            result = await handler(event, data)
            await self._storage.save(unit)
            return result
