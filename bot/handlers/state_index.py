"""Routing by dialogue step: an update is only checked against the handlers its step can reach.

aiogram tries an update on every handler of every router in order until one's filters all pass;
each try copies the handler data and calls each filter. Most of our handlers name the dialogue
steps they answer in (a ``State`` or ``StateFilter`` among their filters), and whether that filter
passes depends on the step alone. So, per observer and per step, the handlers whose step filter
would fail are dropped from the list before aiogram walks it, and a router none of whose handlers
(its own or its sub-routers') the step can reach is skipped whole. The first handler whose filters
all pass is the same one as before: only handlers that could not have matched are left out.

The lists are built on first use of a step and kept (a step is one of a few dozen names).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Router
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.dispatcher.event.handler import HandlerObject
from aiogram.dispatcher.event.telegram import TelegramEventObserver
from aiogram.filters import StateFilter
from aiogram.fsm.state import State
from aiogram.types import TelegramObject

_NO_STATE_IN_DATA = object()  # an update type routed without FSM data (errors): no index
StepCheck = Callable[[str | None], Awaitable[bool]]


def _step_checks(handler: HandlerObject) -> list[StepCheck]:
    """The filters of a handler that look at the dialogue step and nothing else."""
    checks: list[StepCheck] = []
    for item in handler.filters or []:
        callback = inspect.unwrap(item.callback)
        if isinstance(callback, StateFilter):
            checks.append(_state_filter_check(callback))
        elif isinstance(callback, State):
            checks.append(_state_check(callback))
    return checks


def _state_filter_check(state_filter: StateFilter) -> StepCheck:
    async def check(raw_state: str | None) -> bool:
        return bool(await state_filter(_NO_EVENT, raw_state=raw_state))

    return check


def _state_check(state: State) -> StepCheck:
    async def check(raw_state: str | None) -> bool:
        return state(_NO_EVENT, raw_state=raw_state)

    return check


_NO_EVENT: Any = None  # step filters never read the event


class _ObserverIndex:
    """One router's observer of one update type, with its handlers per dialogue step."""

    def __init__(self, observer: TelegramEventObserver) -> None:
        self.observer = observer
        self._checks = [_step_checks(handler) for handler in observer.handlers]
        self._views: dict[str | None, TelegramEventObserver] = {}

    async def view(self, raw_state: str | None) -> TelegramEventObserver:
        """The observer as this step sees it: a shallow copy holding only reachable handlers."""
        view = self._views.get(raw_state)
        if view is None:
            reachable = [
                handler
                for handler, checks in zip(self.observer.handlers, self._checks, strict=True)
                if await _passes(checks, raw_state)
            ]
            view = copy.copy(self.observer)
            view.handlers = reachable
            self._views[raw_state] = view
        return view


async def _passes(checks: list[StepCheck], raw_state: str | None) -> bool:
    for check in checks:
        if not await check(raw_state):
            return False
    return True


class _RouterIndex:
    """Whether a router (with its sub-routers) has any handler a step can reach, per update type."""

    def __init__(self, router: Router, observers: dict[int, _ObserverIndex]) -> None:
        self.router = router
        self._observers = observers
        self._reachable: dict[tuple[str, str | None], bool] = {}
        # a router with outer middlewares in its subtree is always entered: they may act on
        # every update that reaches them, handled or not
        self._always = {
            name
            for sub in router.chain_tail
            for name, observer in sub.observers.items()
            if len(observer.outer_middleware)
        }

    async def reachable(self, update_type: str, raw_state: str | None) -> bool:
        if update_type in self._always:
            return True
        key = (update_type, raw_state)
        known = self._reachable.get(key)
        if known is None:
            known = False
            for sub in self.router.chain_tail:
                observer = sub.observers.get(update_type)
                if observer is None:
                    continue
                indexed = self._observers.get(id(observer))
                if indexed is None or (await indexed.view(raw_state)).handlers:
                    known = True
                    break
            self._reachable[key] = known
        return known


def index_by_state(root: Router) -> None:
    """Route every update of ``root``'s tree by its dialogue step (see the module's text)."""
    observers: dict[int, _ObserverIndex] = {}
    for router in root.chain_tail:
        for name, observer in router.observers.items():
            if isinstance(observer, TelegramEventObserver) and name != "error":
                observers[id(observer)] = _ObserverIndex(observer)
    for router in root.chain_tail:
        _route_by_state(router, _RouterIndex(router, observers), observers)


def _route_by_state(
    router: Router, index: _RouterIndex, observers: dict[int, _ObserverIndex]
) -> None:
    propagate = router.propagate_event

    async def propagate_event(update_type: str, event: TelegramObject, **kwargs: Any) -> Any:
        raw_state = kwargs.get("raw_state", _NO_STATE_IN_DATA)
        if (
            raw_state is not _NO_STATE_IN_DATA
            and update_type != "error"
            and not await index.reachable(update_type, raw_state)
        ):
            return UNHANDLED
        return await propagate(update_type, event, **kwargs)

    router.propagate_event = propagate_event  # type: ignore[method-assign]

    for observer in router.observers.values():
        observer_index = observers.get(id(observer))
        if observer_index is None:
            continue

        async def trigger(
            event: TelegramObject,
            _index: _ObserverIndex = observer_index,
            _observer: TelegramEventObserver = observer,
            **kwargs: Any,
        ) -> Any:
            raw_state = kwargs.get("raw_state", _NO_STATE_IN_DATA)
            if raw_state is _NO_STATE_IN_DATA:
                return await TelegramEventObserver.trigger(_observer, event, **kwargs)
            view = await _index.view(raw_state)
            return await TelegramEventObserver.trigger(view, event, **kwargs)

        observer.trigger = trigger  # type: ignore[method-assign]
