"""A MAX patient's questions to the duty doctors: into their topic of the Telegram duty forum,
and the doctors' answers back to MAX."""

from __future__ import annotations

from tests.max_support import require_aiogram_max

require_aiogram_max()  # skips without aiogram-max, except in the CI pass that runs MAX

from fakegram.client import FakeGroup, FakeUser
from fakemax import FakeMaxUser
from tests.conftest import Harness
from tests.test_documents import pdf
from tests.test_max_patient import MaxSide, max_side, register_on_max
from tests.test_relay import (
    ASK,
    SIGNED,
    TOPIC,
    doctor,
    document_in_group,
    duty_chat_id,
    forum,
    harness,
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


async def test_a_doctors_file_is_not_copied_to_max_and_the_doctor_is_told(
    harness: Harness, max_side: MaxSide, forum: FakeGroup, doctor: FakeUser
) -> None:
    patient = FakeMaxUser(max_side.server, 82_000_002)
    await register_on_max(patient)
    await patient.click(ASK)
    await patient.send("Вопрос")
    [topic] = forum.topics()
    before = len(patient.bot_messages())
    await document_in_group(doctor, forum, pdf("plan"), "plan.pdf", topic.thread_id)
    assert len(patient.bot_messages()) == before
    assert "не доставлено" in (forum.messages(thread_id=topic.thread_id)[-1].text or "")
