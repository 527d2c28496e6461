"""All routers, joined in one place. Parent routers carry the chat and role filters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiogram import Bot, F, Router
from aiogram.dispatcher.event.handler import CallableObject
from aiogram.filters import Command, Filter
from aiogram.types import Message, TelegramObject
from aiogram.utils.i18n import I18n

from bot.filters.coordinator import Coordinator
from bot.handlers import (
    applications,
    booking,
    broadcasts,
    common,
    documents,
    errors,
    fallback,
    links,
    membership,
    profile,
    referrals,
    registration,
    relay,
    reminders,
    schedule,
    staff,
    stats,
)
from bot.handlers.flow import FlowMiddleware
from bot.handlers.routing import compile_routes


class Registered(Filter):
    """The user is a registered patient (``patient`` put in the data by PatientMiddleware)."""

    async def __call__(self, event: TelegramObject, patient: Any = None) -> bool:
        return patient is not None


def private_router(i18n: I18n, *, with_coordinators: bool = True) -> Router:
    """The private chat: the chat-type filter and ``flow`` for every handler under it; the
    coordinators' routers (their role filter on their parent) unless ``with_coordinators`` is
    off (the MAX front end: a MAX user id may equal a Telegram coordinator's)."""
    private = Router(name="private")
    private.message.filter(F.chat.type == "private")
    private.callback_query.filter(F.message.chat.type == "private")
    private.message.middleware(FlowMiddleware())
    private.callback_query.middleware(FlowMiddleware())

    patients_only = Router(name="patients")
    patients_only.message.filter(Registered())
    patients_only.callback_query.filter(Registered())
    patients_only.include_routers(
        profile.router(i18n),
        applications.router(i18n),
        booking.router(i18n),
        reminders.router(i18n),
        documents.router(i18n),
        relay.router(i18n),
    )

    # everyone else falls through to registration and the patients' routers
    coordinators = Router(name="coordinators")
    coordinators.message.filter(Coordinator())
    coordinators.callback_query.filter(Coordinator())
    coordinators.include_routers(
        schedule.router(i18n),
        broadcasts.router(i18n),
        stats.router(i18n),
        referrals.coordinator_router(i18n),
    )

    private.include_routers(
        referrals.activation_router(i18n),  # /start ref_<code> before the plain /start
        links.router(),  # /start move_<code> too; the code is entered before registering
        common.router(i18n),
        *([coordinators] if with_coordinators else []),
        registration.router(i18n),
        patients_only,
        fallback.router(),
    )
    return private


def build_root_router(i18n: I18n) -> Router:
    root = Router(name="root")
    private = private_router(i18n)
    root.include_routers(
        private,
        reminders.staff_router(),
        staff.router(),
        relay.duty_router(),
        membership.router(i18n),
        fallback.staff_router(),
        errors.router(),
    )
    run_sync_filters_inline(root)
    compile_routes(root)
    return root


def _command_prefix_first(command: Command) -> Callable[..., Any]:
    """aiogram's Command filter parses every text and raises an exception for each that is not
    a command (a dozen per plain message); a text that does not start with the prefix is not."""

    async def call(message: Message, bot: Bot) -> bool | dict[str, Any]:
        text = message.text or message.caption if isinstance(message, Message) else None
        if not text or text[0] not in command.prefix:
            return False
        return await command(message, bot)

    call.__wrapped__ = command  # type: ignore[attr-defined]  # for bot.handlers.routing
    return call


def _as_coroutine(function: Callable[..., Any]) -> Callable[..., Any]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    call.__wrapped__ = function  # type: ignore[attr-defined]  # for bot.handlers.routing
    return call


def run_sync_filters_inline(root: Router) -> int:
    """aiogram runs every plain (non-async) filter and handler in a worker thread, in case it
    blocks. Ours never block: magic filters (``F.text == …``), lambdas over the event. A thread
    hand-off per filter cost more than the filter (about ten per update), so they run inline.
    Command filters look at the first character before parsing. Returns how many changed."""
    changed = 0
    for router in root.chain_tail:
        for observer in router.observers.values():
            for handler in (getattr(observer, "_handler", None), *observer.handlers):
                if handler is None:
                    continue
                callables: list[CallableObject] = [*(handler.filters or [])]
                if handler is not getattr(observer, "_handler", None):
                    callables.append(handler)
                for item in callables:
                    if isinstance(item.callback, Command):
                        item.callback = _command_prefix_first(item.callback)
                        changed += 1
                    elif not item.awaitable:
                        item.callback = _as_coroutine(item.callback)
                        item.awaitable = True
                        changed += 1
    return changed
