"""A MAX patient's questions to the duty doctors: into their topic of the Telegram duty forum,
and the doctors' answers back to MAX."""

from __future__ import annotations

from tests.max_support import require_aiogram_max

require_aiogram_max()  # skips without aiogram-max, except in the CI pass that runs MAX

from bot.fsm.states import Relay
from fakegram.client import FakeGroup, FakeUser
from fakemax import FakeMaxUser
from tests.conftest import Harness
from tests.test_documents import pdf, png
from tests.test_max_patient import MaxSide, max_side, register_on_max
from tests.test_relay import (
    ASK,
    SIGNED,
    TOPIC,
    doctor,
    document_in_group,
    duty_chat_id,
    edit_in_group,
    forum,
    harness,
    photo_in_group,
)

__all__ = ["doctor", "duty_chat_id", "forum", "harness", "max_side"]  # fixtures used here


async def test_a_question_from_max_is_answered_from_the_telegram_topic(
    harness: Harness, max_side: MaxSide, forum: FakeGroup, doctor: FakeUser
) -> None:
    patient = FakeMaxUser(max_side.server, 82_000_001)
    await register_on_max(patient)
    await patient.click(ASK)
    assert "дежурные врачи" in patient.last_text()
    await patient.send("Здравствуйте! Можно ли мне бегать после стентирования?")
    [topic] = forum.topics()
    assert topic.name == TOPIC
    texts = [m.text or "" for m in forum.messages(thread_id=topic.thread_id)]
    assert "Здравствуйте! Можно ли мне бегать после стентирования?" in texts

    await patient.send_file("vypiska.pdf", pdf("discharge"), caption="выписка")
    last = forum.messages(thread_id=topic.thread_id)[-1]
    assert last.method == "sendDocument" and "выписка" in (last.caption or "")

    await doctor.send_in_group(
        forum, "Бегать пока рано, начните с ходьбы.", thread_id=topic.thread_id
    )
    assert patient.last_text() == f"{SIGNED}\nБегать пока рано, начните с ходьбы."


async def test_a_doctors_file_and_photo_reach_max(
    harness: Harness, max_side: MaxSide, forum: FakeGroup, doctor: FakeUser
) -> None:
    patient = FakeMaxUser(max_side.server, 82_000_002)
    await register_on_max(patient)
    await patient.click(ASK)
    await patient.send("Вопрос")
    [topic] = forum.topics()
    await document_in_group(doctor, forum, pdf("plan"), "plan.pdf", topic.thread_id)
    # MAX cannot copy a Telegram message: the file is downloaded and uploaded to MAX
    assert patient.received_files() == [("plan.pdf", pdf("plan"))]
    assert patient.last_text() == SIGNED
    await photo_in_group(doctor, forum, png(7), "Вот схема", topic.thread_id)
    assert len(patient.received_files()) == 2
    assert patient.last().attachments[0]["type"] == "image"
    assert patient.last_text() == f"{SIGNED}\nВот схема"
    assert "не доставлено" not in (forum.last_text(thread_id=topic.thread_id) or "")


async def test_a_doctors_file_too_big_for_max_becomes_a_clear_text(
    harness: Harness, max_side: MaxSide, forum: FakeGroup, doctor: FakeUser
) -> None:
    patient = FakeMaxUser(max_side.server, 82_000_003)
    await register_on_max(patient)
    await patient.click(ASK)
    await patient.send("Вопрос")
    [topic] = forum.topics()
    # above the 20 MB a bot may download from Telegram
    content = doctor._document_content(
        pdf("scan"), "mrt.pdf", "application/pdf", "МРТ целиком", 25 * 1024 * 1024
    )
    await doctor._send_content(content, chat_id=forum.chat_id, thread_id=topic.thread_id)
    assert patient.received_files() == []
    text = patient.last_text()
    assert text.startswith(f"{SIGNED}\nМРТ целиком") and "слишком большой" in text
    told = forum.last_text(thread_id=topic.thread_id) or ""
    assert "слишком большой" in told and "MAX" in told


async def test_close_from_the_topic_reaches_the_max_patient_and_ends_the_questions_mode(
    harness: Harness, max_side: MaxSide, forum: FakeGroup, doctor: FakeUser
) -> None:
    patient = FakeMaxUser(max_side.server, 82_000_004)
    await register_on_max(patient)
    await patient.click(ASK)
    await patient.send("Вопрос")
    [topic] = forum.topics()
    assert await max_side.state_of(patient) == Relay.chatting.state
    await doctor.send_in_group(forum, "/close", thread_id=topic.thread_id)
    assert "Врач завершил этот разговор" in patient.last_text()
    assert patient.button_types().get(ASK) == "message"  # the main menu is back
    assert await max_side.state_of(patient) is None
    assert forum.topics()[0].closed
    await patient.send("это уже не врачу")
    assert "это уже не врачу" not in [m.text for m in forum.messages()]


async def test_a_doctors_edit_is_mirrored_on_max(
    harness: Harness, max_side: MaxSide, forum: FakeGroup, doctor: FakeUser
) -> None:
    patient = FakeMaxUser(max_side.server, 82_000_005)
    await register_on_max(patient)
    await patient.click(ASK)
    await patient.send("Вопрос")
    [topic] = forum.topics()
    answer = await doctor.send_in_group(forum, "Принимайте 5 мг", thread_id=topic.thread_id)
    delivered = patient.last()
    await edit_in_group(doctor, forum, answer.message_id, "Принимайте 2,5 мг")
    assert delivered.edits == 1
    assert patient.last_text() == f"{SIGNED}\nПринимайте 2,5 мг"
