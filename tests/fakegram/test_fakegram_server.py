"""The fake Bot API driven by a real aiogram ``Bot``: aiogram must parse every answer, and
errors must map to the same aiogram exceptions real Telegram's answers map to."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
)

from fakegram import FakeGroup, FakeTelegram, FakeUser
from fakegram.formatting import parse_text

PNG_4x3 = (
    bytes.fromhex("89504e470d0a1a0a0000000d49484452")
    + (4).to_bytes(4, "big")
    + (3).to_bytes(4, "big")
)
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


def keyboard(*texts: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=t[:8]) for t in texts]]
    )


async def raw(server: FakeTelegram, method: str, **kw: Any) -> tuple[int, Any]:
    """A request as any HTTP client would make it (JSON body, query string, form)."""
    url = f"{server.base_url}/bot{server.bot_state().token}/{method}"
    async with aiohttp.ClientSession() as http, http.post(url, **kw) as resp:
        return resp.status, await resp.json()


async def test_get_me_unknown_token_and_unknown_method(
    fg_server: FakeTelegram, fg_bot: Bot
) -> None:
    me = await fg_bot.get_me()
    assert me.is_bot and me.username == "oblako_test_bot" and me.id == 424242
    assert me.first_name == "Облако здоровья"

    stranger = Bot("1:nope", session=fg_bot.session)
    with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
        await stranger.get_me()

    status, body = await raw(fg_server, "sendTelepathy", json={"chat_id": 1})
    assert status == 404
    assert body == {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
    status, body = await raw(fg_server, "getme")  # method names are case-insensitive
    assert status == 200 and body["result"]["id"] == 424242


async def test_params_in_json_query_and_form(fg_server: FakeTelegram) -> None:
    FakeUser(fg_server, 9001)
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    status, body = await raw(
        fg_server, "sendMessage", json={"chat_id": "9001", "text": "json", "reply_markup": markup}
    )
    assert status == 200 and body["result"]["reply_markup"] == markup
    status, body = await raw(fg_server, "sendMessage", params={"chat_id": "9001", "text": "42"})
    assert status == 200 and body["result"]["text"] == "42"  # text stays a string
    status, body = await raw(
        fg_server, "sendMessage", data={"chat_id": "9001", "text": "form", "reply_markup": "{"}
    )
    assert status == 400
    assert body["description"] == "Bad Request: can't parse reply keyboard markup JSON object"
    calls = fg_server.calls("sendMessage", chat_id=9001)
    assert [c.params["text"] for c in calls] == ["json", "42", "form"]
    assert calls[0].params["reply_markup"] == markup  # JSON fields are decoded
    assert calls[0].ok and not calls[2].ok and calls[2].error_code == 400


async def test_send_edit_delete_and_their_errors(fg_server: FakeTelegram, fg_bot: Bot) -> None:
    user = FakeUser(fg_server, 1001)
    sent = await fg_bot.send_message(
        1001, "<b>Здравствуйте</b>, Иван!", parse_mode="HTML", reply_markup=keyboard("Да", "Нет")
    )
    assert sent.message_id == 1 and sent.text == "Здравствуйте, Иван!"
    assert sent.entities is not None and sent.entities[0].type == "bold"
    assert sent.entities[0].length == len("Здравствуйте")
    assert sent.reply_markup is not None

    with pytest.raises(TelegramBadRequest) as err:
        await fg_bot.edit_message_text(
            "<b>Здравствуйте</b>, Иван!",
            chat_id=1001,
            message_id=1,
            parse_mode="HTML",
            reply_markup=keyboard("Да", "Нет"),
        )
    assert err.value.message == NOT_MODIFIED

    edited = await fg_bot.edit_message_text("Готово", chat_id=1001, message_id=1)
    assert not isinstance(edited, bool) and edited.edit_date is not None
    assert edited.reply_markup is None  # no reply_markup: the keyboard goes away
    assert user.last_text() == "Готово" and user.inline_buttons() == []
    stored = fg_server.messages(1001)[0]
    assert stored.history[0]["data"]["text"] == "Здравствуйте, Иван!"

    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await fg_bot.edit_message_text("x", chat_id=1001, message_id=77)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await fg_bot.edit_message_reply_markup(chat_id=1001, message_id=1)
    await fg_bot.edit_message_reply_markup(chat_id=1001, message_id=1, reply_markup=keyboard("Ок"))
    assert user.inline_buttons() == [["Ок"]]

    assert await fg_bot.delete_message(1001, 1)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await fg_bot.delete_message(1001, 1)
    assert user.messages() == []
    with pytest.raises(TelegramBadRequest, match="Bad Request: chat not found"):
        await fg_bot.send_message(31337, "кому?")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await fg_bot.send_message(1001, "  ")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await fg_bot.send_message(1001, "я" * 4097)
    too_long = InlineKeyboardButton(text="x", callback_data="д" * 33)  # 66 bytes > 64
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await fg_bot.send_message(
            1001, "x", reply_markup=InlineKeyboardMarkup(inline_keyboard=[[too_long]])
        )

    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await fg_bot.send_message(1001, "ещё", reply_parameters=ReplyParameters(message_id=1))
    second = await fg_bot.send_message(
        1001,
        "ещё",
        reply_parameters=ReplyParameters(message_id=1, allow_sending_without_reply=True),
    )
    assert second.message_id == 2  # ids are never reused and failed sends take none
    assert second.reply_to_message is None
    third = await fg_bot.send_message(1001, "ответ", reply_to_message_id=2)
    assert third.reply_to_message is not None and third.reply_to_message.text == "ещё"


async def test_parse_mode_errors_use_telegram_wording(fg_server: FakeTelegram, fg_bot: Bot) -> None:
    FakeUser(fg_server, 1002)
    with pytest.raises(TelegramBadRequest, match='start tag "b"'):
        await fg_bot.send_message(1002, "<b>жирный", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "br" at byte offset 2'):
        await fg_bot.send_message(1002, "а<br>б", parse_mode="HTML")
    ok = await fg_bot.send_message(1002, "<b>жирный</b> и &lt;.", parse_mode="HTML")
    assert ok.text == "жирный и <."
    # The bot sends HTML only: the fake refuses the Markdown modes instead of imitating them.
    with pytest.raises(TelegramBadRequest, match="unsupported parse_mode"):
        await fg_bot.send_message(1002, "*жирный*", parse_mode="MarkdownV2")

    text, entities = parse_text('🏟 <a href="https://x.org">ссылка</a>&lt;', "HTML")
    assert text == "🏟 ссылка<"
    assert entities == [{"type": "text_link", "offset": 3, "length": 6, "url": "https://x.org"}]


async def test_flood_block_and_network_drop(fg_server: FakeTelegram, fg_bot: Bot) -> None:
    FakeUser(fg_server, 1003)
    fg_server.fail_next("sendMessage", error_code=429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as flood:
        await fg_bot.send_message(1003, "раз")
    assert flood.value.retry_after == 7
    assert "Too Many Requests: retry after 7" in flood.value.message

    fg_server.fail_next("sendMessage", error_code=400, description="Bad Request: X", chat_id=555)
    await fg_bot.send_message(1003, "другой чат: не задело")
    assert fg_server.messages(1003)[-1].text == "другой чат: не задело"
    fg_server.clear_faults()

    fg_server.block(1003)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await fg_bot.send_message(1003, "два")
    fg_server.unblock(1003)

    fg_server.network_drop_next("sendMessage")
    with pytest.raises(TelegramNetworkError):
        await fg_bot.send_message(1003, "три")
    assert fg_server.calls("sendMessage")[-1].response is None
    assert (await fg_bot.send_message(1003, "четыре")).text == "четыре"
    assert [m.text for m in fg_server.messages(1003)] == ["другой чат: не задело", "четыре"]


async def test_fail_for_answers_every_call_in_the_window_then_none(
    fg_server: FakeTelegram, fg_bot: Bot
) -> None:
    FakeUser(fg_server, 1005)
    fg_server.fail_for(["sendMessage", "editMessageText"], 0.3, error_code=429, retry_after=3)
    for _ in range(3):  # however often it is tried inside the window
        with pytest.raises(TelegramRetryAfter) as flood:
            await fg_bot.send_message(1005, "в окне")
        assert flood.value.retry_after == 3
    assert (await fg_bot.get_me()).is_bot  # other methods work
    await asyncio.sleep(0.35)
    assert (await fg_bot.send_message(1005, "после")).text == "после"
    assert [m.text for m in fg_server.messages(1005)] == ["после"]
    assert [c.status for c in fg_server.calls("sendMessage", chat_id=1005)] == [429] * 3 + [200]

    fg_server.fail_for("*", 0.2, error_code=500)
    with pytest.raises(TelegramServerError):
        await fg_bot.get_me()
    await asyncio.sleep(0.25)
    assert (await fg_bot.get_me()).is_bot


async def test_upload_get_file_download_and_reuse(fg_server: FakeTelegram, fg_bot: Bot) -> None:
    user = FakeUser(fg_server, 1004)
    doc = await fg_bot.send_document(
        1004, BufferedInputFile(b"%PDF-1.4 anamnesis", "анализ.pdf"), caption="Результаты"
    )
    assert doc.document is not None and doc.document.file_name == "анализ.pdf"
    assert doc.document.mime_type == "application/pdf" and doc.document.file_size == 18
    file = await fg_bot.get_file(doc.document.file_id)
    assert file.file_path is not None and file.file_path.startswith("documents/")
    downloaded = await fg_bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == b"%PDF-1.4 anamnesis"

    again = await fg_bot.send_document(1004, doc.document.file_id)  # re-send by file_id
    assert again.document is not None and again.document.file_id == doc.document.file_id
    same_bytes = await fg_bot.send_document(1004, BufferedInputFile(b"%PDF-1.4 anamnesis", "b"))
    assert same_bytes.document is not None
    assert same_bytes.document.file_unique_id == doc.document.file_unique_id
    assert same_bytes.document.file_id != doc.document.file_id

    photo = await fg_bot.send_photo(1004, BufferedInputFile(PNG_4x3, "p.png"))
    assert photo.photo is not None and (photo.photo[-1].width, photo.photo[-1].height) == (4, 3)
    with pytest.raises(TelegramBadRequest, match="wrong file identifier/HTTP URL specified"):
        await fg_bot.send_photo(1004, "AgACAgIAAxkBAAIBnope")
    assert [(f.kind, f.data[:8]) for f in user.files_received()] == [
        ("document", b"%PDF-1.4"),
        ("document", b"%PDF-1.4"),
        ("document", b"%PDF-1.4"),
        ("photo", PNG_4x3[:8]),
    ]

    # a user's 40 MB file: Telegram reports its size, but getFile refuses it
    sent = await user.send_document(b"tiny", "scan.pdf", file_size=40 * 1024 * 1024)
    assert sent.message is not None
    big_id = sent.message["document"]["file_id"]
    with pytest.raises(TelegramBadRequest, match="Bad Request: file is too big"):
        await fg_bot.get_file(big_id)
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await fg_bot.get_file("BQACnope")
    token = fg_server.bot_state().token
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{fg_server.base_url}/file/bot{token}/documents/nothing.pdf") as resp,
    ):
        assert resp.status == 404


async def test_send_media_group(fg_server: FakeTelegram, fg_bot: Bot) -> None:
    user = FakeUser(fg_server, 1005)
    first = await fg_bot.send_photo(1005, BufferedInputFile(PNG_4x3, "a.png"))
    assert first.photo is not None
    album = await fg_bot.send_media_group(
        1005,
        [
            InputMediaPhoto(media=BufferedInputFile(b"jpeg-1", "1.jpg"), caption="<i>Снимки</i>",
                            parse_mode="HTML"),
            InputMediaPhoto(media=first.photo[-1].file_id),
        ],
    )  # fmt: skip
    assert [m.message_id for m in album] == [2, 3]
    assert album[0].media_group_id is not None
    assert album[0].media_group_id == album[1].media_group_id
    assert album[0].caption == "Снимки" and album[1].caption is None
    assert album[1].photo is not None
    assert album[1].photo[-1].file_unique_id == first.photo[-1].file_unique_id
    docs = await fg_bot.send_media_group(
        1005,
        [
            InputMediaDocument(media=BufferedInputFile(b"1", "1.txt")),
            InputMediaDocument(media=BufferedInputFile(b"2", "2.txt")),
        ],
    )
    assert [m.document.file_name for m in docs if m.document] == ["1.txt", "2.txt"]
    call = fg_server.calls("sendMediaGroup")[0]
    assert len(call.files) == 1 and call.params["media"][0]["media"].startswith("attach://")
    assert len(user.files_received()) == 5


async def test_forum_topics(fg_server: FakeTelegram, fg_bot: Bot) -> None:
    group = FakeGroup(fg_server, -1001234, "Дежурные врачи", is_forum=True)
    topic = await fg_bot.create_forum_topic(-1001234, "Пациент №17")
    posted = await fg_bot.send_message(
        -1001234, "Новая заявка", message_thread_id=topic.message_thread_id
    )
    assert posted.message_thread_id == topic.message_thread_id and posted.is_topic_message
    assert [t.name for t in group.topics()] == ["Пациент №17"]
    assert await fg_bot.edit_forum_topic(-1001234, topic.message_thread_id, name="Пациент №18")
    with pytest.raises(TelegramBadRequest, match="TOPIC_NOT_MODIFIED"):
        await fg_bot.edit_forum_topic(-1001234, topic.message_thread_id, name="Пациент №18")
    assert await fg_bot.close_forum_topic(-1001234, topic.message_thread_id)
    assert group.topic("Пациент №18").closed
    assert await fg_bot.delete_forum_topic(-1001234, topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="Bad Request: message thread not found"):
        await fg_bot.send_message(-1001234, "ещё", message_thread_id=topic.message_thread_id)
    assert group.topics() == [] and group.messages() == []

    FakeGroup(fg_server, -1005678, "Не форум")
    with pytest.raises(TelegramBadRequest, match="the chat is not a forum"):
        await fg_bot.create_forum_topic(-1005678, "x")


async def test_chat_members_and_get_chat(fg_server: FakeTelegram, fg_bot: Bot) -> None:
    group = FakeGroup(fg_server, -100777, "Врачи")
    doctor, admin, owner, stranger = (FakeUser(fg_server, 2000 + i) for i in range(4))
    group.add_member(doctor)
    group.add_member(admin, "administrator")
    group.add_member(owner, "creator")
    statuses = [
        (await fg_bot.get_chat_member(-100777, u.user_id)).status
        for u in (doctor, admin, owner, stranger)
    ]
    assert statuses == ["member", "administrator", "creator", "left"]
    me = await fg_bot.get_chat_member(-100777, 424242)
    assert me.status == "administrator"
    chat = await fg_bot.get_chat(-100777)
    assert chat.title == "Врачи" and chat.type == "supergroup"
    private = await fg_bot.get_chat(doctor.user_id)
    assert private.first_name == "Иван"
    group.set_bot_status("kicked")
    with pytest.raises(TelegramForbiddenError, match="bot was kicked from the supergroup chat"):
        await fg_bot.send_message(-100777, "пусти")


async def test_get_updates_long_polling(fg_server: FakeTelegram, fg_bot: Bot) -> None:
    user = FakeUser(fg_server, 1006)
    assert await fg_bot.get_updates(timeout=0) == []

    poll = asyncio.create_task(fg_bot.get_updates(timeout=5))
    await fg_server.wait_for_polling(timeout=2)
    pushed = await user.send("/start")
    updates = await asyncio.wait_for(poll, 2)  # returns as soon as the update arrives
    assert [u.update_id for u in updates] == [pushed.update_id]
    assert updates[0].message is not None and updates[0].message.text == "/start"
    entities = updates[0].message.entities or []
    assert [(e.type, e.offset, e.length) for e in entities] == [("bot_command", 0, 6)]

    second = await user.send("ещё")
    again = await fg_bot.get_updates(timeout=0)  # not confirmed yet: both again
    assert [u.update_id for u in again] == [pushed.update_id, second.update_id]
    assert second.update_id == pushed.update_id + 1
    consumed = asyncio.create_task(second.consumed(timeout=2))
    rest = await fg_bot.get_updates(offset=pushed.update_id + 1, timeout=0)
    assert [u.update_id for u in rest] == [second.update_id]
    assert not consumed.done()
    assert await fg_bot.get_updates(offset=second.update_id + 1, timeout=0) == []
    await consumed

    await fg_bot.get_updates(allowed_updates=["callback_query"], timeout=0)
    await user.send("фильтруется")
    assert await fg_bot.get_updates(timeout=0) == []
    await fg_bot.get_updates(allowed_updates=[], timeout=0)

    first = asyncio.create_task(fg_bot.get_updates(timeout=5))
    await fg_server.wait_for_polling(timeout=2)
    assert await fg_bot.get_updates(timeout=0) == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await first


async def test_commands_callbacks_copy_and_forward(fg_server: FakeTelegram, fg_bot: Bot) -> None:
    user = FakeUser(fg_server, 1007)
    await fg_bot.set_my_commands([BotCommand(command="start", description="Начать")])
    await fg_bot.set_my_commands(
        [BotCommand(command="profile", description="Мой профиль")],
        scope=BotCommandScopeAllPrivateChats(),
        language_code="ru",
    )
    assert [c.command for c in await fg_bot.get_my_commands()] == ["start"]
    ru = await fg_bot.get_my_commands(scope=BotCommandScopeAllPrivateChats(), language_code="ru")
    assert [c.description for c in ru] == ["Мой профиль"]
    assert fg_server.commands({"type": "all_private_chats"}, "ru")[0]["command"] == "profile"
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await fg_bot.set_my_commands([BotCommand(command="Профиль", description="x")])

    with pytest.raises(TelegramBadRequest, match="query is too old and response timeout expired"):
        await fg_bot.answer_callback_query("12345")

    said = await user.send("Болит голова")
    group = FakeGroup(fg_server, -100888, "Врачи")
    copied = await fg_bot.copy_message(-100888, 1007, said.message_id or 0)
    forwarded = await fg_bot.forward_message(-100888, 1007, said.message_id or 0)
    assert copied.message_id == 1 and forwarded.message_id == 2
    assert [m.text for m in group.messages()] == ["Болит голова", "Болит голова"]
    assert forwarded.forward_origin is not None
    assert forwarded.forward_origin.type == "user"
    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await fg_bot.copy_message(-100888, 1007, 999)


async def test_reply_keyboard_is_stored_not_returned(fg_server: FakeTelegram, fg_bot: Bot) -> None:
    user = FakeUser(fg_server, 1008)
    markup = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="📱 Номер", request_contact=True)]])
    sent = await fg_bot.send_message(1008, "Поделитесь номером", reply_markup=markup)
    assert sent.reply_markup is None  # Message.reply_markup only carries inline keyboards
    assert user.reply_keyboard() == [["📱 Номер"]]
    call = fg_server.calls("sendMessage")[-1]
    assert json.dumps(call.params["reply_markup"], ensure_ascii=False).count("request_contact")
    await fg_bot.send_message(1008, "Спасибо", reply_markup=ReplyKeyboardRemove())
    assert user.reply_keyboard() is None
