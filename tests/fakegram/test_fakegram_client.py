"""The user-playing client against a small real aiogram bot: in-process through the update
sink, and once through real long polling."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from fakegram import AlbumDocument, FakeGroup, FakeTelegram, FakeUser


@dataclass
class Seen:
    album_order: list[int] = field(default_factory=list)
    album_running: int = 0
    album_overlap: int = 0
    downloaded: list[bytes] = field(default_factory=list)


def make_router(seen: Seen) -> Router:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message, command: CommandObject) -> None:
        menu = ReplyKeyboardMarkup(
            keyboard=[
                [KeyboardButton(text="📱 Мой номер", request_contact=True)],
                [KeyboardButton(text="❓ Помощь")],
            ],
            resize_keyboard=True,
        )
        await message.answer(f"Здравствуйте! Код: {command.args}", reply_markup=menu)
        buttons = [
            [InlineKeyboardButton(text="✅ Согласен", callback_data="agree")],
            [InlineKeyboardButton(text="Сайт", url="https://example.org")],
        ]
        await message.answer(
            "Согласие на обработку", reply_markup=InlineKeyboardMarkup(inline_keyboard=buttons)
        )

    @router.callback_query(F.data == "agree")
    async def agree(query: CallbackQuery) -> None:
        await query.answer("Спасибо!", show_alert=True)
        assert isinstance(query.message, Message)
        await query.message.edit_text("Согласие получено")

    @router.callback_query(F.data == "take")
    async def take(query: CallbackQuery) -> None:
        await query.answer()
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"Взял: {query.from_user.first_name}")

    @router.callback_query()
    async def stale(query: CallbackQuery) -> None:
        await query.answer("Кнопка больше не действует")

    @router.message(F.contact)
    async def contact(message: Message) -> None:
        assert message.contact is not None and message.from_user is not None
        own = message.contact.user_id == message.from_user.id
        await message.answer(
            f"{message.contact.phone_number}: {'свой' if own else 'чужой'}",
            reply_markup=ReplyKeyboardRemove(),
        )

    @router.message(F.media_group_id)
    async def album_item(message: Message) -> None:
        seen.album_running += 1
        seen.album_overlap = max(seen.album_overlap, seen.album_running)
        seen.album_order.append(message.message_id)
        await asyncio.sleep(0.02)  # like a bot collecting the rest of the album
        seen.album_running -= 1

    @router.message(F.document)
    async def document(message: Message, bot: Bot) -> None:
        assert message.document is not None
        data = await bot.download(message.document)
        assert data is not None
        seen.downloaded.append(data.read())
        await message.answer(f"Файл {message.document.file_name} получен")

    @router.edited_message()
    async def edited(message: Message) -> None:
        await message.answer(f"Исправлено: {message.text}")

    @router.message(F.chat.type == "supergroup")
    async def in_group(message: Message) -> None:
        take_it = InlineKeyboardButton(text="Взять", callback_data="take")
        await message.answer(
            f"Заявка: {message.text}",
            reply_markup=InlineKeyboardMarkup(inline_keyboard=[[take_it]]),
        )

    @router.message(F.reply_to_message)
    async def reply(message: Message) -> None:
        assert message.reply_to_message is not None
        await message.answer(f"Ответ на #{message.reply_to_message.message_id}")

    @router.message(F.text)
    async def text(message: Message) -> None:
        await message.answer(f"Эхо: {message.text}")

    return router


@pytest.fixture
async def seen(fg_server: FakeTelegram, fg_bot: Bot) -> AsyncIterator[Seen]:
    """The bot runs in-process: ``await user.<action>`` returns once it handled the update."""
    state = Seen()
    dp = Dispatcher()
    dp.include_router(make_router(state))
    fg_server.update_sink = lambda update: dp.feed_raw_update(fg_bot, update)
    yield state
    fg_server.update_sink = None


async def test_start_click_and_press(fg_server: FakeTelegram, seen: Seen) -> None:
    user = FakeUser(fg_server, 5001, first_name="Агриппина")
    await user.start("ref-42")  # deep link
    assert [m.text for m in user.messages()] == [
        "Здравствуйте! Код: ref-42",
        "Согласие на обработку",
    ]
    assert user.reply_keyboard() == [["📱 Мой номер"], ["❓ Помощь"]]
    assert user.inline_buttons() == [["✅ Согласен"], ["Сайт"]]

    consent = user.last_message()
    await user.click(re.compile("Согласен"))
    answer = user.last_callback_answer()
    assert answer == "Спасибо!" and answer is not None and answer.show_alert
    assert user.last_text() == "Согласие получено"
    assert consent.inline_buttons == [["✅ Согласен"], ["Сайт"]]  # a snapshot keeps its past
    assert user.messages()[-1].edited and user.inline_buttons() == []

    with pytest.raises(AssertionError, match="no inline button 'Отказ'"):
        await user.click("Отказ")
    # a forged second press: the bot's handler fails the way it would with Telegram,
    # and with the update sink its exception reaches the test
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await user.click_data("agree", consent.message_id)
    assert user.last_callback_answer() == "Спасибо!"

    await user.press("❓ Помощь")
    assert user.last_text() == "Эхо: ❓ Помощь"
    with pytest.raises(AssertionError, match="no reply button"):
        await user.press("Отмена")
    await user.press("📱 Мой номер")  # request_contact shares the user's own card
    assert user.last_text() == f"{user.phone_number}: свой"
    assert user.reply_keyboard() is None
    await user.send_contact("+79990001122", user_id=None)
    assert user.last_text() == "+79990001122: чужой"


async def test_url_button_and_stale_buttons(fg_server: FakeTelegram, seen: Seen) -> None:
    user = FakeUser(fg_server, 5002)
    await user.send("/start")
    with pytest.raises(AssertionError, match="not a callback button"):
        await user.click("Сайт")
    await user.click_data("expired:1", 999)  # an inaccessible message
    assert user.last_callback_answer() == "Кнопка больше не действует"


async def test_album_documents_edits_and_replies(fg_server: FakeTelegram, seen: Seen) -> None:
    user = FakeUser(fg_server, 5003)
    pushed = await user.send_album([b"photo-1", b"photo-2", b"photo-3"], caption="Снимки",
                                   shuffle=random.Random(7))  # fmt: skip
    ids = [p.message_id for p in pushed]
    assert ids == [1, 2, 3]
    assert sorted(seen.album_order) == ids and seen.album_order != ids  # out of order
    assert seen.album_overlap == 3  # items are handled concurrently, as they arrive together
    first = pushed[0].message
    assert first is not None and first["caption"] == "Снимки" and len(first["photo"]) >= 2

    await user.send_album([AlbumDocument(b"%PDF-a", "a.pdf"), AlbumDocument(b"%PDF-b", "b.pdf")])
    await user.send_document(b"%PDF-1.7 blood test", "кровь.pdf")
    assert user.last_text() == "Файл кровь.pdf получен"
    assert seen.downloaded == [b"%PDF-1.7 blood test"]

    said = await user.send("Давление 140/90")
    assert said.message_id is not None
    await user.edit_message(said.message_id, "Давление 130/85")
    assert user.last_text() == "Исправлено: Давление 130/85"
    await user.reply_to(said.message_id, "это утром")
    assert user.last_text() == f"Ответ на #{said.message_id}"
    for action in (user.send_sticker, user.send_voice, user.send_video_note):
        await action()
    await user.send_location(52.28, 104.3)
    # nobody answers stickers, voice, video notes and locations in this bot
    assert fg_server.calls("sendMessage")[-1].params["text"] == f"Ответ на #{said.message_id}"


async def test_groups_and_topics(fg_server: FakeTelegram, seen: Seen) -> None:
    group = FakeGroup(fg_server, -1009001, "Дежурные врачи", is_forum=True)
    nurse, doctor = FakeUser(fg_server, 5004, "Анна"), FakeUser(fg_server, 5005, "Пётр")
    group.add_member(nurse)
    group.add_member(doctor, "administrator")
    topic = group.create_topic("Пациент №1", by=nurse)

    await nurse.send_in_group(group, "Нужна консультация", thread_id=topic.thread_id)
    posted = group.last_message(topic.thread_id)
    assert posted.text == "Заявка: Нужна консультация"
    assert posted.message_thread_id == topic.thread_id
    await doctor.click_in_group(group, "Взять")
    assert group.last_text() == "Взял: Пётр"
    assert [t.name for t in group.topics()] == ["Пациент №1"]
    everything = group.all_messages(topic.thread_id)
    assert [m.from_bot for m in everything] == [False, False, True]  # topic, request, answer


async def test_wait_for_message_with_real_polling(fg_server: FakeTelegram, fg_bot: Bot) -> None:
    """getUpdates mode: the Dispatcher long-polls the fake like it polls Telegram."""
    dp = Dispatcher()
    dp.include_router(make_router(Seen()))
    polling = asyncio.create_task(
        dp.start_polling(fg_bot, polling_timeout=1, handle_signals=False, close_bot_session=False)
    )
    try:
        user = FakeUser(fg_server, 5006)
        pushed = await user.send("/start")
        consent = await user.wait_for_message(lambda m: "Согласие" in m.content, timeout=5)
        assert consent.inline_buttons == [["✅ Согласен"], ["Сайт"]]
        await pushed.consumed(timeout=5)
        await user.click("✅ Согласен")
        edited = await user.wait_for_message(timeout=5)
        assert edited.text == "Согласие получено"
        assert (await user.wait_for_callback_answer(timeout=5)).show_alert
        call = await fg_server.wait_for_call(None, lambda c: c.method == "editMessageText")
        assert call.params["text"] == "Согласие получено"
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 5)


async def test_control_api_and_users_who_never_started(
    fg_server: FakeTelegram, fg_bot: Bot, seen: Seen
) -> None:
    """The JSON control API (for a standalone ``python -m fakegram``), and 403 for a user
    who never wrote to the bot."""
    shy = FakeUser(fg_server, 5007, has_started_bot=False)
    with pytest.raises(TelegramForbiddenError, match="bot can't initiate conversation"):
        await fg_bot.send_message(shy.user_id, "Напоминание")

    token = fg_server.bot_state().token
    base = f"{fg_server.base_url}/_fakegram/bot{token}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/users/5007/send", json={"text": "/start"}) as resp:
            assert resp.status == 200 and (await resp.json())["message_id"] == 1
        async with http.post(f"{base}/users/5007/click", json={"button": "✅ Согласен"}) as resp:
            assert resp.status == 200
        async with http.post(f"{base}/users/5007/click", json={"button": "Нет такой"}) as resp:
            assert resp.status == 400 and "no inline button" in await resp.text()
        async with http.get(f"{base}/chats/5007/messages") as resp:
            texts = [m["text"] for m in await resp.json()]
        async with http.get(f"{fg_server.base_url}/_fakegram/calls?method=editMessageText") as r:
            edits = await r.json()
    assert texts == ["Здравствуйте! Код: None", "Согласие получено"]
    assert [c["params"]["text"] for c in edits] == ["Согласие получено"]
    await fg_bot.send_message(shy.user_id, "Напоминание")  # now the user has written first
