"""Routing compiled per dialogue step (bot/handlers/routing.py): the same handler answers as without
the index, and handlers the step cannot reach are not tried at all."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram import BaseMiddleware, Bot, Dispatcher, F, Router
from aiogram.dispatcher.event.bases import UNHANDLED, SkipHandler
from aiogram.filters import Command, StateFilter
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import Chat, Message, TelegramObject, Update, User

from bot.handlers import run_sync_filters_inline
from bot.handlers.routing import compile_routes
from bot.middlewares import Handler


class Form(StatesGroup):
    name = State()
    age = State()


class Other(StatesGroup):
    topic = State()


USER = User(id=42, is_bot=False, first_name="Тест")
CHAT = Chat(id=42, type="private")
STEPS = [None, Form.name.state, Form.age.state, Other.topic.state]
TEXTS = ["/start", "/help", "привет", "12", "/other"]


def counted(calls: Counter[str], name: str) -> Callable[[Message], bool]:
    """A filter that passes and counts that it was asked."""

    def check(message: Message) -> bool:
        calls[name] += 1
        return True

    return check


class Seen(BaseMiddleware):
    """An outer middleware that notes every event reaching its router."""

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Message)
        self.seen.append(event.text or "")
        return await handler(event, data)


def build(calls: Counter[str], seen: list[str], *, indexed: bool) -> Router:
    """A tree shaped like ours (commands first, step handlers, step-less ones, a catch-all) with
    what aiogram's walk does on the way: root filters adding data or failing, an inner
    middleware, a handler skipping, a handler declining (UNHANDLED) before a sub-router."""

    def answer(name: str) -> Callable[..., Awaitable[Any]]:
        async def handler(message: Message, **data: Any) -> Any:
            if name == "skips":
                raise SkipHandler
            if name == "declines":
                return UNHANDLED
            chosen = data["handler"].callback is handler
            return name, data["event_router"].name, data.get("tag"), data.get("mw"), chosen

        return handler

    class Mark(BaseMiddleware):
        async def __call__(
            self, handler: Handler, event: TelegramObject, data: dict[str, Any]
        ) -> Any:
            return await handler(event, {**data, "mw": "form"})

    root = Router(name="root")
    commands = Router(name="commands")
    commands.message.register(answer("skips"), Command("help"))
    commands.message.register(answer("start"), Command("start"))
    commands.message.register(answer("help in form"), StateFilter(Form), Command("help"))
    form = Router(name="form")
    form.message.filter(lambda message: {"tag": "form root"})
    form.message.middleware(Mark())
    form.message.register(answer("name"), counted(calls, "name"), Form.name, F.text)
    form.message.register(answer("age"), Form.age, F.text.regexp(r"^\d+$"))
    form.message.register(answer("age: digits please"), StateFilter(Form.age))
    other = Router(name="other")
    other.message.filter(F.text != "/start")
    other.message.register(answer("declines"), StateFilter(Other.topic), F.text == "привет")
    other.message.register(answer("topic"), StateFilter(Other.topic), counted(calls, "topic"))
    other_sub = Router(name="other sub")
    other_sub.message.register(answer("topic greeting"), StateFilter(Other.topic))
    other.include_router(other_sub)
    watched = Router(name="watched")
    watched.message.outer_middleware(Seen(seen))
    watched.message.register(answer("watched"), StateFilter(Other.topic), F.text == "12")
    anywhere = Router(name="anywhere")
    nested = Router(name="nested")
    nested.message.register(answer("menu"), F.text == "привет")
    nested.message.register(answer("not understood"), StateFilter("*"))
    anywhere.include_router(nested)
    root.include_routers(commands, form, other, watched, anywhere)
    run_sync_filters_inline(root)
    if indexed:
        compile_routes(root)
    return root


async def route(dp: Dispatcher, bot: Bot, step: str | None, text: str) -> Any:
    await dp.fsm.get_context(bot, chat_id=CHAT.id, user_id=USER.id).set_state(step)
    message = Message(
        message_id=1, date=datetime.now(UTC), chat=CHAT, from_user=USER, text=text
    ).as_(bot)
    return await dp.feed_update(bot, Update(update_id=1, message=message))


def dispatcher(root: Router) -> Dispatcher:
    dp = Dispatcher(storage=MemoryStorage())
    dp.include_router(root)
    return dp


@pytest.mark.parametrize(("step", "text"), list(itertools.product(STEPS, TEXTS)))
async def test_the_same_handler_answers_with_and_without_the_index(
    step: str | None, text: str
) -> None:
    bot = Bot("42:TEST")
    plain, indexed = Counter[str](), Counter[str]()
    seen_plain: list[str] = []
    seen_indexed: list[str] = []
    expected = await route(dispatcher(build(plain, seen_plain, indexed=False)), bot, step, text)
    answered = await route(dispatcher(build(indexed, seen_indexed, indexed=True)), bot, step, text)
    assert answered == expected
    assert seen_indexed == seen_plain  # a router with an outer middleware is entered as before


async def test_handlers_of_other_steps_are_not_tried() -> None:
    bot = Bot("42:TEST")
    calls: Counter[str] = Counter()
    dp = dispatcher(build(calls, [], indexed=True))
    assert (await route(dp, bot, Form.age.state, "abc"))[:4] == (
        "age: digits please",
        "form",
        "form root",
        "form",
    )
    assert (await route(dp, bot, None, "привет"))[:2] == ("menu", "nested")
    assert (await route(dp, bot, Other.topic.state, "hi"))[:2] == ("topic", "other")
    assert (await route(dp, bot, Other.topic.state, "привет"))[:2] == (
        "topic greeting",
        "other sub",
    )
    assert calls == Counter({"topic": 1})  # the name step's filter never ran outside its step

    unindexed: Counter[str] = Counter()
    dp = dispatcher(build(unindexed, [], indexed=False))
    assert (await route(dp, bot, Form.age.state, "abc"))[0] == "age: digits please"
    assert unindexed["name"] == 1  # without the index aiogram asks it: it comes first
