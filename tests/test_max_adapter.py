"""aiogram-max's known gaps, each shown on the fake MAX API: the plain library session where it
fails, and the adapter's session (bot.messengers.max_adapter) where it is fixed or degrades
clearly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.max_support import require_aiogram_max

require_aiogram_max()  # skips without aiogram-max, except in the CI pass that runs MAX

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramNotFound
from aiogram.methods import GetUpdates
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from aiogram_max import make_bot

from bot.messengers.max_adapter import chat_member, create_max_bot
from fakemax import FakeMax, FakeMaxUser

TOKEN = "max-test-token"


@pytest.fixture
async def server() -> AsyncIterator[FakeMax]:
    async with FakeMax(TOKEN) as fake:
        yield fake


@pytest.fixture
async def bot(server: FakeMax) -> AsyncIterator[Bot]:
    bot = create_max_bot(TOKEN, server.base_url, bot_id=server.bot_user["user_id"])
    yield bot
    await bot.session.close()


@pytest.fixture
async def plain_bot(server: FakeMax) -> AsyncIterator[Bot]:
    """aiogram-max 1.3.0 as it comes."""
    bot = make_bot(TOKEN, api_url=server.base_url)
    yield bot
    await bot.session.close()


async def fetch(bot: Bot, offset: int | None = None, wait: int = 0) -> list[Update]:
    return await bot(GetUpdates(offset=offset, timeout=wait))


async def test_a_private_chat_is_answered_by_its_chat_id_not_the_user_id(
    server: FakeMax, bot: Bot
) -> None:
    user = FakeMaxUser(server, 42)
    await user.send("Здравствуйте")
    (update,) = await fetch(bot)
    assert update.message is not None and update.message.from_user is not None
    assert update.message.chat.id == user.chat_id != update.message.from_user.id
    await update.message.answer("Ответ")  # by chat id: arrives
    assert user.last_text() == "Ответ"
    with pytest.raises(TelegramNotFound, match=r"chat\.not\.found"):  # as aiogram's error
        await bot.send_message(user.user_id, "to the user id")


async def test_unmapped_events_make_the_plain_session_spin_and_the_adapter_wait(
    server: FakeMax, bot: Bot, plain_bot: Bot
) -> None:
    user = FakeMaxUser(server, 43)
    sent = await user.send("раз")
    await user.edit(sent, "два")  # message_edited: neither session maps it

    async def polls_in(client: Bot, seconds: float) -> int:
        before = server.count_calls("GET", "/updates")
        offset: int | None = None

        async def loop() -> None:
            nonlocal offset
            while True:  # the loop aiogram's polling runs
                for update in await fetch(client, offset, wait=1):
                    offset = update.update_id + 1

        task = asyncio.create_task(loop())
        await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return server.count_calls("GET", "/updates") - before

    assert await polls_in(plain_bot, 0.5) > 20  # the gap: re-fetches the edit without waiting
    assert await polls_in(bot, 0.5) <= 3  # the first batch, then a long poll that waits


async def test_reply_keyboards_become_message_and_contact_buttons(
    server: FakeMax, bot: Bot, plain_bot: Bot
) -> None:
    user = FakeMaxUser(server, 44)
    keyboard = ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text="📱 Отправить номер", request_contact=True)],
            [KeyboardButton(text="Мои документы")],
        ]
    )
    with pytest.raises(AttributeError):  # the gap
        await plain_bot.send_message(user.chat_id, "Номер?", reply_markup=keyboard)
    await bot.send_message(user.chat_id, "Номер?", reply_markup=keyboard)
    assert user.button_types() == {
        "📱 Отправить номер": "request_contact",
        "Мои документы": "message",
    }
    await bot.send_message(user.chat_id, "Готово", reply_markup=ReplyKeyboardRemove())
    assert user.last_text() == "Готово" and user.buttons() == []
    # a message button sends its text, as a reply-keyboard button does in Telegram
    await user.click("Мои документы", user.bot_messages()[-2])
    (update,) = await fetch(bot)
    assert update.message is not None and update.message.text == "Мои документы"


async def test_a_shared_contact_arrives_as_message_contact(
    server: FakeMax, bot: Bot, plain_bot: Bot
) -> None:
    user = FakeMaxUser(server, 45)
    await user.share_contact("+79161234567")
    (plain,) = await fetch(plain_bot)
    assert plain.message is not None
    assert plain.message.contact is None and not plain.message.text  # the gap
    (update,) = await fetch(bot)
    assert update.message is not None and update.message.contact is not None
    assert update.message.contact.phone_number == "+79161234567"
    assert update.message.contact.user_id == user.user_id


async def test_an_album_arrives_as_one_message_per_file_of_one_group(
    server: FakeMax, bot: Bot, plain_bot: Bot
) -> None:
    user = FakeMaxUser(server, 46)
    files = [(f"page{i}.pdf", b"%%PDF-1.4 page %d" % i) for i in range(3)]
    await user.send_album(files, caption="Выписка", kind="file")
    (plain,) = await fetch(plain_bot)
    assert plain.message is not None and plain.message.document is not None  # first file only
    updates = await fetch(bot)
    messages = [u.message for u in updates if u.message is not None]
    assert [m.document.file_name for m in messages if m.document] == [n for n, _ in files]
    assert len({m.media_group_id for m in messages}) == 1
    assert [m.caption for m in messages] == ["Выписка", None, None]
    assert len({u.update_id for u in updates}) == 3
    assert len({m.message_id for m in messages}) == 3  # album parts have ids of their own
    data = await bot.download(messages[1].document.file_id)  # type: ignore[union-attr]
    assert data is not None and data.read() == files[1][1]


async def test_edits_replace_the_buttons_and_answers_are_bound_to_the_bot(
    server: FakeMax, bot: Bot
) -> None:
    user = FakeMaxUser(server, 47)
    old = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="A", callback_data="a")]]
    )
    new = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="B", callback_data="b")]]
    )
    sent = await bot.send_message(user.chat_id, "Шаг 1", reply_markup=old)
    assert sent.bot is bot  # "mounted": its shortcuts work
    assert await sent.edit_text("Шаг 2", reply_markup=new) is True  # True, not a Message
    assert user.last_text() == "Шаг 2" and user.buttons() == [["B"]]


async def test_callback_answers_empty_sends_nothing_alert_becomes_a_notification(
    server: FakeMax, bot: Bot
) -> None:
    user = FakeMaxUser(server, 48)
    await bot.send_message(
        user.chat_id,
        "?",
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Да", callback_data="yes")]]
        ),
    )
    await user.click("Да")
    await user.click("Да")
    first, second = await fetch(bot)
    assert first.callback_query is not None and second.callback_query is not None
    assert first.callback_query.data == "yes"
    assert await first.callback_query.answer() is True
    assert server.answers == []  # nothing to send: MAX refuses an empty answer
    await second.callback_query.answer("Недоступно", show_alert=True)
    assert user.notifications() == ["Недоступно"]


def test_an_admin_member_validates_with_current_aiogram() -> None:
    from aiogram_max import converters

    raw = {"user_id": 9, "first_name": "Админ", "is_admin": True}
    with pytest.raises(ValueError, match="validation"):  # the gap with aiogram 3.31
        converters.to_chat_member(raw)
    member = chat_member(raw)
    assert member.status == "administrator" and member.user.id == 9
    assert member.can_manage_chat and not member.can_delete_messages


async def test_commands_have_one_list_without_scopes(server: FakeMax, bot: Bot) -> None:
    from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats

    await bot.set_my_commands(
        [BotCommand(command="start", description="Начать")],
        scope=BotCommandScopeAllPrivateChats(),
        language_code="en",
    )  # scope and language are dropped, with a warning
    assert server.commands == [{"name": "start", "description": "Начать"}]


async def test_html_goes_as_html_where_the_plain_session_escaped_it(
    server: FakeMax, bot: Bot, plain_bot: Bot
) -> None:
    from aiogram.client.default import DefaultBotProperties
    from aiogram.enums import ParseMode

    user = FakeMaxUser(server, 49)
    plain_bot.default = DefaultBotProperties(parse_mode=ParseMode.HTML)  # as our Telegram bot
    await plain_bot.send_message(user.chat_id, "<b>Важно</b>")
    assert user.last().text == "&lt;b&gt;Важно&lt;/b&gt;"  # the gap: taken for Markdown
    await bot.send_message(user.chat_id, "<b>Важно</b> &amp; срочно")
    assert (user.last().text, user.last().format) == ("<b>Важно</b> &amp; срочно", "html")
    assert user.last_text() == "Важно & срочно"


async def test_after_a_restart_an_old_message_cannot_be_edited_and_says_why(
    server: FakeMax, bot: Bot
) -> None:
    user = FakeMaxUser(server, 50)
    sent = await bot.send_message(user.chat_id, "Шаг 1")
    restarted = create_max_bot(TOKEN, server.base_url, bot_id=server.bot_user["user_id"])
    try:
        with pytest.raises(TelegramBadRequest, match="рестарт"):
            await restarted.edit_message_text(
                "Шаг 2", chat_id=user.chat_id, message_id=sent.message_id
            )
    finally:
        await restarted.session.close()
    assert user.last_text() == "Шаг 1"


async def test_the_marker_moves_on_only_when_the_batch_is_acknowledged(
    server: FakeMax, bot: Bot
) -> None:
    """The runner stores a batch before it acknowledges it (its next offset): a batch fetched but
    not acknowledged (the store failed, or the process died) comes again, with the same ids."""
    user = FakeMaxUser(server, 51)
    await user.send("раз")
    await user.send("два")
    first = await fetch(bot)
    again = await fetch(bot)  # not acknowledged: the same events, the same update ids
    assert [u.update_id for u in again] == [u.update_id for u in first]
    assert len(first) == 2
    restarted = create_max_bot(TOKEN, server.base_url, bot_id=server.bot_user["user_id"])
    try:  # a new process going on after the last update it stored
        after = await fetch(restarted, offset=first[0].update_id + 1)
    finally:
        await restarted.session.close()
    assert [u.update_id for u in after] == [first[1].update_id]
    await user.send("три")
    newer = await fetch(bot, offset=first[-1].update_id + 1)  # acknowledged: only what is new
    assert [u.message.text for u in newer if u.message] == ["три"]
