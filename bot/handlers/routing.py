"""Routing compiled per dialogue step: an update is tried only on the handlers that can take it.

aiogram walks the router tree for every update: each router copies the handler data a few times
(its outer-middleware chain, its root filters, its observer), and each handler of each router is
tried in turn, copying the data again and calling its filters, until one's filters all pass. For
a patient's message that was 24 handler tries and 8 routers per update, most of the routing's
cost. Here the tree is flattened once into the list of its handlers in aiogram's order, each with
the routers above it, and per dialogue step (and per command prefix) the list keeps only the
handlers whose step filters (``State``, ``StateFilter``) and ``Command`` filters could pass. An
update walks that short list; the routers' root filters are still checked, once per router, before
the first of its handlers is tried, and everything else is done as aiogram does it: the same data
reaches the handler (``event_router``, ``handler``, filter results), the same inner middlewares
wrap it, ``SkipHandler`` moves on to the next handler. The handler chosen is the one aiogram would
choose: only handlers that could not have matched are left out (``tests/test_routing.py``).

A sub-router with outer middlewares is routed by aiogram itself (they see every update reaching
it), and so are errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import FunctionType
from typing import Any

from aiogram import Router
from aiogram.dispatcher.event.bases import REJECTED, UNHANDLED, SkipHandler
from aiogram.dispatcher.event.handler import HandlerObject
from aiogram.dispatcher.event.telegram import TelegramEventObserver
from aiogram.filters import Command, StateFilter
from aiogram.fsm.state import State
from aiogram.types import Message, TelegramObject

_NOT_IN_DATA = object()
_NO_EVENT: Any = None  # step filters never read the event
StepCheck = Callable[[str | None], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class _Route:
    handler: HandlerObject
    observer: TelegramEventObserver
    routers: tuple[Router, ...]  # from the compiled root down to the handler's own router
    steps: tuple[StepCheck, ...]  # its filters that read the dialogue step alone
    prefixes: tuple[str, ...]  # each Command filter's prefixes: the text must start with one


@dataclass(frozen=True, slots=True)
class _Delegate:
    """A sub-router with outer middlewares: aiogram routes its subtree (they see every update
    reaching it, handled or not)."""

    router: Router
    routers: tuple[Router, ...]  # the routers above it


def _filters_of(handler: HandlerObject) -> tuple[tuple[StepCheck, ...], tuple[str, ...]]:
    steps: list[StepCheck] = []
    prefixes: list[str] = []
    for item in handler.filters or []:
        callback = item.callback
        if isinstance(callback, FunctionType):  # our inline wrappers name what they run
            callback = getattr(callback, "__wrapped__", callback)
        if isinstance(callback, StateFilter):
            steps.append(_state_filter_check(callback))
        elif isinstance(callback, State):
            steps.append(_state_check(callback))
        elif isinstance(callback, Command):
            prefixes.append(callback.prefix)
    return tuple(steps), tuple(prefixes)


def _state_filter_check(state_filter: StateFilter) -> StepCheck:
    async def check(raw_state: str | None) -> bool:
        return bool(await state_filter(_NO_EVENT, raw_state=raw_state))

    return check


def _state_check(state: State) -> StepCheck:
    async def check(raw_state: str | None) -> bool:
        return state(_NO_EVENT, raw_state=raw_state)

    return check


class _Table:
    """One update type's routes under a root, and the short list per (step, command prefix)."""

    def __init__(self, root: Router, update_type: str) -> None:
        self.routes: list[_Route | _Delegate] = []
        self._collect(root, (), update_type)
        self.prefixes = frozenset(
            "".join(p for route in self.routes if isinstance(route, _Route) for p in route.prefixes)
        )
        self._lists: dict[tuple[str | None, str], list[_Route | _Delegate]] = {}

    def _collect(self, router: Router, above: tuple[Router, ...], update_type: str) -> None:
        observer = router.observers.get(update_type)
        if above and observer is not None and len(observer.outer_middleware):
            self.routes.append(_Delegate(router, above))
            return
        routers = (*above, router)
        if observer is not None:
            for handler in observer.handlers:
                steps, prefixes = _filters_of(handler)
                self.routes.append(_Route(handler, observer, routers, steps, prefixes))
        for sub in router.sub_routers:
            self._collect(sub, routers, update_type)

    def key(self, event: TelegramObject, raw_state: str | None) -> tuple[str | None, str]:
        first = ""
        if isinstance(event, Message):
            text = event.text or event.caption
            if text and text[0] in self.prefixes:
                first = text[0]
        return raw_state, first

    async def candidates(self, key: tuple[str | None, str]) -> list[_Route | _Delegate]:
        found = self._lists.get(key)
        if found is None:
            raw_state, first = key
            found = []
            for route in self.routes:
                if isinstance(route, _Delegate):
                    found.append(route)
                    continue
                if any(not first or first not in prefix for prefix in route.prefixes):
                    continue
                if all([await check(raw_state) for check in route.steps]):
                    found.append(route)
            self._lists[key] = found
        return found


class _Walk:
    """One update's way through the candidates: each router's data once, as aiogram builds it."""

    __slots__ = ("_data", "_event", "_kwargs", "_own", "_update_type")

    def __init__(self, update_type: str, event: TelegramObject, kwargs: dict[str, Any]) -> None:
        self._update_type = update_type
        self._event = event
        self._kwargs = kwargs
        self._data: dict[Router, dict[str, Any] | None] = {}  # after its root filters; None: no
        self._own: dict[Router, dict[str, Any] | None] = {}  # its observer's; None: it is done

    async def entered(self, routers: tuple[Router, ...]) -> dict[str, Any] | None:
        data: dict[str, Any] | None = self._kwargs
        for router in routers:
            known = self._data.get(router, _NOT_IN_DATA)
            if known is _NOT_IN_DATA:
                assert data is not None
                data = {**data, "event_router": router}
                observer = router.observers.get(self._update_type)
                if observer is not None and observer._handler.filters:
                    passed, data = await observer.check_root_filters(self._event, **data)
                    if not passed:
                        data = None
                self._data[router] = data
            else:
                data = known  # type: ignore[assignment]
            if data is None:
                return None
        return data

    async def own_data(self, route: _Route) -> dict[str, Any] | None:
        router = route.routers[-1]
        own = self._own.get(router, _NOT_IN_DATA)
        if own is _NOT_IN_DATA:
            entered = await self.entered(route.routers)
            own = None if entered is None else dict(entered)
            self._own[router] = own
        return own  # type: ignore[return-value]

    def done_with(self, router: Router, *, subtree: bool) -> None:
        self._own[router] = None
        if subtree:
            self._data[router] = None


def compile_routes(root: Router) -> None:
    """Route ``root``'s tree through per-step lists (see the module's text)."""
    tables: dict[str, _Table] = {}
    for update_type, observer in root.observers.items():
        if update_type not in {"error", "update"} and not len(observer.outer_middleware):
            tables[update_type] = _Table(root, update_type)
    aiogram_propagate = root.propagate_event

    async def propagate_event(update_type: str, event: TelegramObject, **kwargs: Any) -> Any:
        table = tables.get(update_type)
        raw_state = kwargs.get("raw_state", _NOT_IN_DATA)
        if table is None or raw_state is _NOT_IN_DATA:
            return await aiogram_propagate(update_type, event, **kwargs)
        walk = _Walk(update_type, event, kwargs)
        for route in await table.candidates(table.key(event, raw_state)):
            if isinstance(route, _Delegate):
                above = await walk.entered(route.routers)
                if above is not None:
                    response = await route.router.propagate_event(update_type, event, **above)
                    if response is not UNHANDLED:
                        return response
                continue
            data = await walk.own_data(route)
            if data is None:
                continue
            handler, observer = route.handler, route.observer
            data["handler"] = handler
            passed, checked = await handler.check(event, **data)
            if not passed:
                continue
            data.update(checked)
            try:
                wrapped = observer.outer_middleware.wrap_middlewares(
                    observer._resolve_middlewares(),
                    handler.call,
                )
                response = await wrapped(event, data)
            except SkipHandler:
                continue
            if response is REJECTED:  # aiogram: the router is left, its siblings go on
                walk.done_with(route.routers[-1], subtree=True)
            elif response is UNHANDLED:  # aiogram: its own handlers end, its sub-routers go on
                walk.done_with(route.routers[-1], subtree=False)
            else:
                return response
        return UNHANDLED

    root.propagate_event = propagate_event  # type: ignore[method-assign]
