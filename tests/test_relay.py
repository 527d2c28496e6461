"""The chat with the duty doctors, end to end against the fake Bot API: a patient's messages in
their forum topic (or under headers in a chat without topics), the doctors' answers, replies and
edits on both sides, a deleted topic, /close, a blocked patient and the limits."""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.utils.i18n import I18n

from bot.catalog import Catalog
from bot.fsm.states import Relay
from bot.services.relay import RATE_LIMIT
from bot.storage.models import DutyDoctor, DutySlot
from fakegram.client import FakeGroup, FakeUser, PushedUpdate
from fakegram.models import StoredMessage
from fakegram.server import FakeTelegram
from tests.conftest import Harness, with_fresh_staff_chats
from tests.helpers import NAME, register, state_of
from tests.test_booking import FIRST, add_doctor, book
from tests.test_documents import pdf, png

ASK = "❓ Вопрос врачу"
TOPIC = "Агриппина Фёдоровна · #1"
SIGNED = "👩‍⚕️ Анна Докторова:"
BLOCKED = "⚠️ пациент заблокировал бота — сообщение не доставлено"

_duty_chats = itertools.count(1)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def duty_chat_id() -> int:
    """A duty chat of the test's own on the shared fake server."""
    return -1004000000000 - next(_duty_chats)


@pytest.fixture
async def harness(
    fake: FakeTelegram,
    tmp_path: Path,
    i18n: I18n,
    catalog: Catalog,
    database_url: str,
    duty_chat_id: int,
) -> AsyncIterator[Harness]:
    """The bot with DUTY_CHAT_ID set (overrides conftest's ``harness`` in this module)."""
    h = Harness(
        fake,
        tmp_path,
        i18n,
        with_fresh_staff_chats(catalog),
        database_url=database_url,
        duty_chat_id=duty_chat_id,
    )
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


@pytest.fixture
def doctor(make_user: Any) -> FakeUser:
    person: FakeUser = make_user(first_name="Анна", last_name="Докторова")
    return person


def duty_group(h: Harness, chat_id: int, doctor: FakeUser, *, is_forum: bool) -> FakeGroup:
    group = FakeGroup(h.fake, chat_id, "Дежурные врачи", is_forum=is_forum)
    group.add_member(doctor)
    return group


@pytest.fixture
def forum(harness: Harness, duty_chat_id: int, doctor: FakeUser) -> FakeGroup:
    return duty_group(harness, duty_chat_id, doctor, is_forum=True)


@pytest.fixture
def plain(harness: Harness, duty_chat_id: int, doctor: FakeUser) -> FakeGroup:
    return duty_group(harness, duty_chat_id, doctor, is_forum=False)


# --- people's actions the fake client has no shortcut for -----------------------------------


async def photo_in_group(
    person: FakeUser, group: FakeGroup, data: bytes, caption: str, thread_id: int | None
) -> PushedUpdate:
    content = person._photo_content(data, caption)
    return await person._send_content(content, chat_id=group.chat_id, thread_id=thread_id)


async def document_in_group(
    person: FakeUser, group: FakeGroup, data: bytes, name: str, thread_id: int | None
) -> PushedUpdate:
    content = person._document_content(data, name, "application/pdf", None, None)
    return await person._send_content(content, chat_id=group.chat_id, thread_id=thread_id)


async def edit_in_group(
    person: FakeUser, group: FakeGroup, message_id: int | None, text: str
) -> PushedUpdate:
    assert message_id is not None
    stored = person.server.edit_user_message(group.chat_id, message_id, text)
    return await person._push({"edited_message": copy.deepcopy(stored.data)})


# --- steps ---------------------------------------------------------------------------------


async def ask_doctor(user: FakeUser) -> None:
    await register(user)
    await user.press(ASK)


def the_topic(group: FakeGroup) -> int:
    topics = group.topics()
    assert [t.name for t in topics] == [TOPIC]
    return topics[0].thread_id


def in_topic(group: FakeGroup, thread_id: int) -> list[StoredMessage]:
    return group.messages(thread_id=thread_id)


def copies(group: FakeGroup, thread_id: int | None = None) -> list[StoredMessage]:
    return [m for m in group.messages(thread_id=thread_id) if m.method == "copyMessage"]


def private_message(user: FakeUser, message_id: int | None) -> StoredMessage:
    chat = user.server.chat(user.user_id)
    assert message_id is not None
    return copy.deepcopy(chat.messages[message_id])


# --- the tests -----------------------------------------------------------------------------


async def test_text_both_ways_in_the_patients_topic(
    harness: Harness, user: FakeUser, forum: FakeGroup, doctor: FakeUser
) -> None:
    await ask_doctor(user)
    intro = user.last_text()
    assert "дежурные врачи" in intro and "/cancel" in intro
    assert await state_of(harness, user) == Relay.chatting.state
    assert forum.topics() == []  # the topic waits for the first message

    await user.send("Здравствуйте! Можно ли мне бегать после стентирования?")
    thread = the_topic(forum)
    card, question = in_topic(forum, thread)
    assert "Вопрос дежурному врачу" in card.content and "пациент #1" in card.content
    assert NAME in card.content and "65 лет" in card.content
    assert (
        "Иркутская область" in card.content and "местное время 17:00 (Asia/Irkutsk)" in card.content
    )
    assert "Документов в профиле: 0" in card.content and "— нет" in card.content
    assert "/close" in card.content
    assert question.text == "Здравствуйте! Можно ли мне бегать после стентирования?"

    await user.send("И ещё: давление 150/90 по утрам.")
    assert len(forum.topics()) == 1, "one topic per patient"
    assert in_topic(forum, thread)[-1].text == "И ещё: давление 150/90 по утрам."

    await doctor.send_in_group(forum, "Бегать пока рано, начните с ходьбы.", thread_id=thread)
    answer = user.last_message()
    assert answer.text == f"{SIGNED}\nБегать пока рано, начните с ходьбы."
    assert answer.reply_to_message_id is None
    assert await state_of(harness, user) == Relay.chatting.state


async def test_photos_documents_and_voice_both_ways(
    harness: Harness, user: FakeUser, forum: FakeGroup, doctor: FakeUser
) -> None:
    await ask_doctor(user)
    start = harness.fake.call_count
    await user.send_photo(png(1), caption="ЭКГ вчера")
    await user.send_document(pdf("discharge"), "vypiska.pdf", caption="выписка")
    await user.send_voice()
    thread = the_topic(forum)
    files = forum.files_received(thread_id=thread)
    assert [(f.kind, f.caption) for f in files] == [
        ("photo", "ЭКГ вчера"),
        ("document", "выписка"),
        ("voice", None),
    ]
    assert files[0].data == png(1) and files[1].file_name == "vypiska.pdf"
    assert await harness.rows("SELECT count(*) FROM documents") == [(0,)], "nothing is filed"
    downloads = [c for c in harness.fake.calls("getFile") if c.index >= start]
    assert downloads == [], "nothing is downloaded"

    await photo_in_group(doctor, forum, png(2), "Так выглядит норма", thread)
    await document_in_group(doctor, forum, pdf("memo"), "pamyatka.pdf", thread)
    got = user.files_received()
    assert [(f.kind, f.caption) for f in got] == [
        ("photo", f"{SIGNED}\nТак выглядит норма"),
        ("document", SIGNED),
    ]
    assert got[0].data == png(2) and got[1].file_name == "pamyatka.pdf"


async def test_replies_keep_the_thread(
    harness: Harness, user: FakeUser, forum: FakeGroup, doctor: FakeUser
) -> None:
    await ask_doctor(user)
    first = await user.send("Первый вопрос")
    await user.send("Второй вопрос")
    thread = the_topic(forum)
    first_copy, second_copy = copies(forum, thread)

    # the doctor answers the first question by replying to its copy
    await doctor.send_in_group(forum, "Ответ на первый", reply_to=first_copy.message_id)
    answer = user.last_message()
    assert answer.reply_to_message_id == first.message_id

    # the patient replies to the doctor's answer: the copy answers the doctor's message
    doctors_message = forum.all_messages(thread_id=thread)[-1]
    assert doctors_message.text == "Ответ на первый" and not doctors_message.from_bot
    await user.reply_to(answer.message_id, "Спасибо, понятно")
    assert copies(forum, thread)[-1].reply_to_message_id == doctors_message.message_id

    # and to their own earlier message: the copy answers its copy
    await user.reply_to(first.message_id or 0, "Уточню первый вопрос")
    assert copies(forum, thread)[-1].reply_to_message_id == first_copy.message_id
    assert second_copy.reply_to_message_id is None


async def test_edits_are_mirrored_both_ways(
    harness: Harness, user: FakeUser, forum: FakeGroup, doctor: FakeUser
) -> None:
    await ask_doctor(user)
    question = await user.send("Давление 150/90")
    photo = await user.send_photo(png(3), caption="ЭКГ")
    thread = the_topic(forum)
    text_copy, photo_copy = copies(forum, thread)

    await user.edit_message(question.message_id or 0, "Давление 160/95")
    assert forum.server.chat(forum.chat_id).messages[text_copy.message_id].text == (
        "Давление 160/95"
    )
    await user.edit_message(photo.message_id or 0, "ЭКГ от 24.11")
    assert forum.server.chat(forum.chat_id).messages[photo_copy.message_id].caption == (
        "ЭКГ от 24.11"
    )

    answer = await doctor.send_in_group(forum, "Принимайте 5 мг", thread_id=thread)
    delivered = user.last_message()
    await edit_in_group(doctor, forum, answer.message_id, "Принимайте 2,5 мг")
    edited = private_message(user, delivered.message_id)
    assert edited.text == f"{SIGNED}\nПринимайте 2,5 мг" and edited.edited

    media = await photo_in_group(doctor, forum, png(4), "схема", thread)
    delivered = user.last_message()
    await edit_in_group(doctor, forum, media.message_id, "схема приёма")
    assert private_message(user, delivered.message_id).caption == f"{SIGNED}\nсхема приёма"


async def test_a_deleted_topic_is_made_again(
    harness: Harness, user: FakeUser, forum: FakeGroup, doctor: FakeUser
) -> None:
    await ask_doctor(user)
    await user.send("Первый вопрос")
    old = the_topic(forum)
    await harness.bot.delete_forum_topic(forum.chat_id, old)  # a doctor deleted it
    assert forum.topics() == []

    await user.send("Вы меня слышите?")
    new = the_topic(forum)
    assert new != old
    card, message = in_topic(forum, new)
    assert "Прежняя тема пациента была удалена" in card.content and NAME in card.content
    assert message.text == "Вы меня слышите?"

    await doctor.send_in_group(forum, "Да, слышим", thread_id=new)
    assert user.last_text() == f"{SIGNED}\nДа, слышим"


async def test_a_chat_without_topics(
    harness: Harness, user: FakeUser, plain: FakeGroup, doctor: FakeUser
) -> None:
    await ask_doctor(user)
    question = await user.send("Можно ли мне в баню?")
    await user.send_photo(png(5), caption="анализы")
    header, text_copy, header2, photo_copy = plain.messages()
    assert "Агриппина Фёдоровна" in header.content and "#1" in header.content
    assert text_copy.text == "Можно ли мне в баню?" and photo_copy.caption == "анализы"
    assert header2.text == header.text
    assert plain.topics() == []

    await doctor.send_in_group(plain, "Пока нет", reply_to=text_copy.message_id)
    answer = user.last_message()
    assert answer.text == f"{SIGNED}\nПока нет"
    assert answer.reply_to_message_id == question.message_id

    await doctor.send_in_group(plain, "И анализы хорошие", reply_to=header2.message_id)
    assert user.last_text() == f"{SIGNED}\nИ анализы хорошие"

    # doctors talking among themselves: nothing goes to the patient
    count = len(user.messages())
    await doctor.send_in_group(plain, "Коллеги, кто дежурит завтра?")
    assert len(user.messages()) == count

    # the patient's reply goes as a reply to the doctor's message
    doctors_answer = next(m for m in plain.all_messages() if m.text == "Пока нет")
    await user.reply_to(answer.message_id, "Спасибо!")
    assert plain.messages()[-1].reply_to_message_id == doctors_answer.message_id


async def test_a_patient_who_blocked_the_bot(
    harness: Harness, user: FakeUser, forum: FakeGroup, doctor: FakeUser
) -> None:
    await ask_doctor(user)
    await user.send("Вопрос")
    thread = the_topic(forum)
    harness.fake.block(user.user_id)
    answer = await doctor.send_in_group(forum, "Ответ", thread_id=thread)
    mark = forum.last_message(thread_id=thread)
    assert mark.text == BLOCKED
    assert mark.reply_to_message_id == answer.message_id
    await doctor.send_in_group(forum, "/profile", thread_id=thread)
    assert "заблокировал бота" in forum.last_text(thread_id=thread)


async def test_an_answer_telegram_refuses_is_reported_to_the_doctor_naming_telegram(
    harness: Harness, user: FakeUser, forum: FakeGroup, doctor: FakeUser
) -> None:
    await ask_doctor(user)
    await user.send("Вопрос")
    thread = the_topic(forum)
    harness.fake.fail_next(
        "*", error_code=400, description="Bad Request: boom", chat_id=user.user_id
    )
    answer = await doctor.send_in_group(forum, "Ответ", thread_id=thread)
    mark = forum.last_message(thread_id=thread)
    assert mark.text is not None
    assert "не доставлено пациенту (ошибка Telegram)" in mark.text
    assert mark.reply_to_message_id == answer.message_id


async def test_the_rate_limit_says_which_message_was_not_delivered(
    harness: Harness, user: FakeUser, forum: FakeGroup
) -> None:
    await ask_doctor(user)
    for number in range(RATE_LIMIT):
        await user.send(f"сообщение {number}")
    refused = await user.send("ещё одно")
    answer = user.last_message()
    assert "не доставлено" in answer.content and "через минуту" in answer.content
    assert answer.reply_to_message_id == refused.message_id
    thread = the_topic(forum)
    assert len(copies(forum, thread)) == RATE_LIMIT

    harness.clock.advance(seconds=61)
    await user.send("ещё одно")
    assert copies(forum, thread)[-1].text == "ещё одно"


async def test_only_registered_patients_can_write(
    harness: Harness, make_user: Any, forum: FakeGroup
) -> None:
    stranger = make_user(first_name="Гость")
    await stranger.send(ASK)
    assert "Сначала нужно зарегистрироваться" in stranger.last_text()
    await stranger.send("У меня вопрос к врачу")
    assert "Сначала нужно зарегистрироваться" in stranger.last_text()
    assert forum.messages() == [] and forum.topics() == []


async def test_what_cannot_be_sent_is_answered(
    harness: Harness, user: FakeUser, forum: FakeGroup
) -> None:
    await ask_doctor(user)
    sticker = await user.send_sticker()
    answer = user.last_message()
    assert "не доставлено" in answer.content
    assert answer.reply_to_message_id == sticker.message_id
    assert forum.messages() == []


async def test_a_failed_delivery_is_told_to_the_patient(
    harness: Harness, user: FakeUser, forum: FakeGroup
) -> None:
    await ask_doctor(user)
    # A flood wait longer than TELEGRAM_OUTAGE_SECONDS: not waited for (a short one is, below).
    harness.fake.fail_next("copyMessage", error_code=429, retry_after=600)
    refused = await user.send("Важный вопрос")
    answer = user.last_message()
    assert "Не удалось доставить это сообщение врачу" in answer.content
    assert answer.reply_to_message_id == refused.message_id
    await user.send("Важный вопрос")
    assert copies(forum, the_topic(forum))[-1].text == "Важный вопрос"


async def test_a_short_flood_wait_is_waited_out_and_the_question_delivered_once(
    harness: Harness, user: FakeUser, forum: FakeGroup
) -> None:
    await ask_doctor(user)
    harness.fake.fail_next("copyMessage", error_code=429, retry_after=1)
    await user.send("Важный вопрос")
    assert [c.text for c in copies(forum, the_topic(forum))].count("Важный вопрос") == 1
    assert "Не удалось доставить" not in user.last_message().content


async def test_close_and_open_again(
    harness: Harness, user: FakeUser, forum: FakeGroup, doctor: FakeUser
) -> None:
    await ask_doctor(user)
    await user.send("Вопрос")
    thread = the_topic(forum)
    await doctor.send_in_group(forum, "/close", thread_id=thread)
    assert "Врач завершил этот разговор" in user.last_text()
    assert await state_of(harness, user) is None
    assert forum.topics()[0].closed
    assert "завершён" in forum.last_text(thread_id=thread)

    await user.press(ASK)
    await user.send("Новый вопрос")
    topic = forum.topics()[0]
    assert topic.thread_id == thread and not topic.closed
    card, message = in_topic(forum, thread)[-2:]
    assert NAME in card.content and message.text == "Новый вопрос"


async def test_a_menu_button_or_cancel_leaves_the_chat(
    harness: Harness, user: FakeUser, forum: FakeGroup
) -> None:
    await ask_doctor(user)
    await user.press("📄 Документы")
    assert await state_of(harness, user) is None
    await user.press(ASK)
    await user.send("/cancel")
    assert await state_of(harness, user) is None
    await user.send("это уже не врачу")
    assert forum.messages() == []


async def test_strangers_bots_and_service_messages_are_not_relayed(
    harness: Harness, user: FakeUser, forum: FakeGroup, doctor: FakeUser, make_user: Any
) -> None:
    await ask_doctor(user)
    await user.send("Вопрос")
    thread = the_topic(forum)
    before = len(user.messages())

    outsider = make_user(first_name="Чужой")  # not a member of the duty chat
    await outsider.send_in_group(forum, "Я тоже врач", thread_id=thread)

    other_bot = make_user(first_name="Другой бот")
    forum.add_member(other_bot)
    posted = harness.fake.store_user_message(
        forum.chat_id, {**other_bot.user_json, "is_bot": True}, {"text": "Я бот"}, thread_id=thread
    )
    await other_bot._push({"message": copy.deepcopy(posted.data)})

    renamed = {"forum_topic_edited": {"name": "Агриппина Фёдоровна · #1 (кардиология)"}}
    await doctor._send_content(renamed, chat_id=forum.chat_id, thread_id=thread)

    assert len(user.messages()) == before
    assert await harness.rows("SELECT count(*) FROM relay_messages") == [(1,)]


async def test_staff_commands(
    harness: Harness, user: FakeUser, forum: FakeGroup, doctor: FakeUser
) -> None:
    await ask_doctor(user)
    await user.send("Вопрос")
    thread = the_topic(forum)
    patient = await harness.services.patients.get(user.user_id)
    assert patient is not None
    starts = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # 10:00 Moscow
    async with harness.services.sessions.begin() as session:
        duty_doctor = DutyDoctor(
            display_name="Пётр Сердцев", specialty="cardiology", created_at=harness.clock()
        )
        session.add(duty_doctor)
        await session.flush()
        slot = DutySlot(doctor_id=duty_doctor.id, starts_at=starts, created_at=harness.clock())
        session.add(slot)
        await session.flush()
        slot_id = slot.id
    await harness.services.booking.book(patient.id, slot_id)

    count = len(user.messages())
    await doctor.send_in_group(forum, "/consultations", thread_id=thread)
    listing = forum.last_text(thread_id=thread)
    assert "пациента #1" in listing
    assert "26.11.2026 10:00 (МСК) — дежурный врач Пётр Сердцев, назначена" in listing
    harness.clock.now = starts + timedelta(minutes=10)  # under way: still the doctors' to see
    await doctor.send_in_group(forum, "/consultations", thread_id=thread)
    assert "26.11.2026 10:00 (МСК)" in forum.last_text(thread_id=thread)
    harness.clock.now = starts + timedelta(minutes=31)  # over
    await doctor.send_in_group(forum, "/consultations", thread_id=thread)
    assert "26.11.2026 10:00" not in forum.last_text(thread_id=thread)
    harness.clock.now = starts - timedelta(hours=20)
    await doctor.send_in_group(forum, "/profile", thread_id=thread)
    assert "дежурный врач Пётр Сердцев" in forum.last_text(thread_id=thread)
    assert NAME in forum.last_text(thread_id=thread)
    assert len(user.messages()) == count, "commands are not relayed"

    await doctor.send_in_group(forum, "/profile", thread_id=None)  # in General: whose?
    assert "в теме пациента" in forum.last_text()
    assert len(user.messages()) == count


async def test_without_a_duty_chat(
    fake: FakeTelegram, tmp_path: Path, i18n: I18n, catalog: Catalog, database_url: str, user: Any
) -> None:
    h = Harness(fake, tmp_path, i18n, catalog, database_url=database_url)
    await h.start()
    try:
        await ask_doctor(user)
        assert "пока не подключён" in user.last_text()
        assert await state_of(h, user) is None
    finally:
        await h.stop()


async def test_erasure_takes_the_pairs_with_the_patient(
    harness: Harness, user: FakeUser, forum: FakeGroup, doctor: FakeUser
) -> None:
    await ask_doctor(user)
    await user.send("Вопрос")
    await doctor.send_in_group(forum, "Ответ", thread_id=the_topic(forum))
    assert await harness.rows("SELECT count(*) FROM relay_messages") == [(2,)]
    await user.send("/profile")
    await user.click("🗑 Удалить мои данные")
    await user.click("Да, удалить")
    await user.click("🗑 Удалить навсегда")
    assert await harness.rows("SELECT count(*) FROM relay_messages") == [(0,)]
    assert await harness.rows("SELECT count(*) FROM relay_threads") == [(0,)]


async def test_book_ask_answer_reschedule_all_in_the_patients_topic(
    harness: Harness, user: FakeUser, forum: FakeGroup, doctor: FakeUser
) -> None:
    """The issue's end-to-end path: a patient without documents books a duty doctor, asks a
    question, gets the answer, reschedules — and the doctors see every step in one topic."""
    await add_doctor(harness, "Анна Сердцева", "cardiology", [FIRST, FIRST + timedelta(minutes=30)])
    await register(user)
    assert await harness.rows("SELECT count(*) FROM documents") == [(0,)]

    await book(user, "15:00")
    assert "Вы записаны к врачу Анна Сердцева на 26.11.2026 15:00" in user.last_text()
    await harness.deliver()
    thread = the_topic(forum)  # the booking opened the patient's topic
    card, booked = in_topic(forum, thread)
    assert "пациент #1" in card.content and "26.11.2026 10:00" in card.content
    assert "Новая запись" in booked.content and "26.11.2026 10:00" in booked.content

    await user.press(ASK)
    await user.send("Нужно ли сдать анализы до консультации?")
    assert in_topic(forum, thread)[-1].text == "Нужно ли сдать анализы до консультации?"
    await doctor.send_in_group(forum, "Достаточно общего анализа крови.", thread_id=thread)
    assert user.last_text() == f"{SIGNED}\nДостаточно общего анализа крови."

    await user.press("🗓 Мои консультации")  # a menu section ends the chat mode
    assert await state_of(harness, user) is None
    await user.click(re.compile("^26.11.2026 15:00"))
    await user.click("🔁 Перенести")
    await user.click("26.11")
    await user.click("15:30")
    await user.click("✅ Перенести на это время")
    assert "перенесена на 26.11.2026 15:30" in user.last_text()
    await harness.deliver()

    assert len(forum.topics()) == 1
    # Everything in the topic, in order: the card, the booking, the question, the doctor's
    # answer, the move (the service message of the topic's creation aside).
    contents = [m.content for m in forum.all_messages(thread_id=thread) if not m.is_service]
    assert len(contents) == 5, contents
    assert "пациент #1" in contents[0] and "Новая запись" in contents[1]
    assert contents[2:4] == [
        "Нужно ли сдать анализы до консультации?",
        "Достаточно общего анализа крови.",
    ]
    assert "Перенос" in contents[4] and "26.11.2026 10:30" in contents[4]
    assert "Анна Сердцева" in contents[4]
    assert [m for m in forum.messages() if m.message_thread_id is None] == []  # none in General


async def test_menu_sections_end_the_chat_with_doctors(
    harness: Harness, user: FakeUser, forum: FakeGroup
) -> None:
    for section in ("📋 Мои заявки", "📝 Мои заключения", "❓ Помощь"):
        await ask_doctor(user) if section == "📋 Мои заявки" else await user.press(ASK)
        assert await state_of(harness, user) == Relay.chatting.state
        await user.press(section)
        assert await state_of(harness, user) is None, section
    assert forum.topics() == []  # none of the presses reached the doctors
    assert "Дежурный врач" in user.last_text() and "Вопрос врачу" in user.last_text()


async def test_a_booking_notice_after_the_topic_was_deleted_makes_a_new_one(
    harness: Harness, user: FakeUser, forum: FakeGroup
) -> None:
    await add_doctor(harness, "Анна Сердцева", "cardiology", [FIRST, FIRST + timedelta(minutes=30)])
    await ask_doctor(user)
    await user.send("Первый вопрос")
    old = the_topic(forum)
    await harness.bot.delete_forum_topic(forum.chat_id, old)  # a doctor deleted it

    await book(user, "15:30")
    await harness.deliver()
    new = the_topic(forum)
    assert new != old
    card, booked = in_topic(forum, new)
    assert "Прежняя тема пациента была удалена" in card.content
    assert "Новая запись" in booked.content and "26.11.2026 10:30" in booked.content
    notices = "SELECT status FROM outbox WHERE kind = 'duty_booking_notice'"
    assert await harness.rows(notices) == [("sent",)]
