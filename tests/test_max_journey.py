"""One MAX patient's whole journey, end to end on the fake MAX API and the fake Telegram: they
register, upload an album, apply to a center; a doctor in Telegram assigns a time; the notice,
the calendar file, the video link and the reminders arrive on MAX; a question is answered from
the Telegram duty topic; and the conclusion (text and PDF) arrives on MAX."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.max_support import require_aiogram_max

require_aiogram_max()  # skips without aiogram-max, except in the CI pass that runs MAX

from fakegram.client import FakeGroup, FakeUser
from fakemax import FakeMaxUser
from tests.conftest import Harness
from tests.helpers import NAME
from tests.test_documents import pdf, png
from tests.test_max_patient import MaxSide, max_side, register_on_max, submit
from tests.test_relay import ASK, SIGNED, TOPIC, doctor, duty_chat_id, forum, harness

__all__ = ["doctor", "duty_chat_id", "forum", "harness", "max_side"]  # fixtures used here


async def test_one_max_patient_from_registration_to_the_conclusion(
    harness: Harness, max_side: MaxSide, forum: FakeGroup, doctor: FakeUser, make_user: Any
) -> None:
    center = harness.catalog.center("bakulev")
    assert center is not None
    group = FakeGroup(harness.fake, center.staff_chat_id, "НМИЦ ССХ — заявки", is_forum=True)
    surgeon = make_user(first_name="Пётр", last_name="Врачев")
    group.add_member(surgeon)
    patient = FakeMaxUser(max_side.server, 85_000_001, first_name="Агриппина")

    # registration, with MAX's own phone button
    await register_on_max(patient)

    # an album (MAX: one message with several files), then a single file
    await patient.click("📄 Документы")
    await patient.send_album([(f"scan{i}.png", png(40 + i)) for i in range(3)])
    await max_side.settle()
    assert "(3 файла)" in patient.last_text()
    await patient.click("ЭХО КГ")
    assert patient.last_text() == "✅ Получено 3 файла — ЭХО КГ"
    await patient.send_file("vypiska.pdf", pdf("discharge"), caption="выписка")
    await max_side.settle()
    assert await harness.rows("SELECT count(*) FROM document_files") == [(4,)]

    # an application to a center; its card goes to the center's Telegram forum
    await patient.click("📨 Заявка в центр")
    await patient.click("НМИЦ ССХ им. А.Н. Бакулева")
    await patient.click("Ишемическая болезнь сердца")
    await patient.send("ИБС, стенокардия напряжения")
    await patient.send("Давящие боли за грудиной при ходьбе, около года")
    await submit(patient)
    assert "Заявка №" in patient.last_text()
    rows = await harness.rows(
        "SELECT a.center_code, p.messenger FROM applications a JOIN patients p"
        " ON p.id = a.patient_id"
    )
    assert [tuple(r) for r in rows] == [("bakulev", "max")]
    await harness.deliver()
    card = next(m for m in group.messages() if "Заявка №" in (m.text or ""))
    assert NAME in card.text
    # the documents with it: MAX's file links mean nothing to Telegram, the bot's copies go
    assert {f.data for f in group.files_received()} >= {png(40), png(41), png(42)}

    # a doctor in Telegram assigns a time: the notice, the link and the .ics on MAX
    await surgeon.click_in_group(group, "🗓 Назначить дату и время")
    await surgeon.click_in_group(group, "28")
    await surgeon.click_in_group(group, "14:30")
    await surgeon.click_in_group(group, "✅ Назначить")
    await harness.deliver()
    notice = patient.last_text()
    assert "28.11.2026 19:30 (Asia/Irkutsk)" in notice  # in the patient's own zone
    assert "https://meet.jit.si/oblako-" in notice  # the video link
    assert any(name.endswith(".ics") for name, _ in patient.received_files())
    thread = next(t.thread_id for t in group.topics())
    await patient.click("✅ Подтверждаю")  # a callback button on MAX
    await harness.deliver()
    assert any("подтвердил" in (m.text or "") for m in group.messages(thread_id=thread))

    # the reminder 24 h before, with its buttons, on MAX
    start = datetime(2026, 11, 28, 11, 30, tzinfo=UTC)
    harness.clock.now = start - timedelta(hours=24)
    await harness.deliver()
    assert "через 24 ч" in patient.last_text()
    assert patient.button_types().get("✅ Буду") == "callback"
    await patient.click("✅ Буду")

    # a question to the duty doctors, answered from the patient's Telegram topic
    await patient.click(ASK)
    await patient.send("Можно ли перед консультацией принимать аспирин?")
    topic = next(t for t in forum.topics() if t.name == TOPIC)
    texts = [m.text or "" for m in forum.messages(thread_id=topic.thread_id)]
    assert "Можно ли перед консультацией принимать аспирин?" in texts
    await doctor.send_in_group(forum, "Да, как обычно.", thread_id=topic.thread_id)
    assert patient.last_text() == f"{SIGNED}\nДа, как обычно."
    await patient.send("/cancel")

    # the conclusion: its text and its PDF (a Telegram file, carried over to MAX)
    await surgeon.click_in_group(group, "📝 Заключение")
    conclusion = pdf("conclusion")
    content = surgeon._document_content(
        conclusion, "zakl.pdf", "application/pdf", "Рекомендована коронарография.", None
    )
    await surgeon._send_content(content, chat_id=group.chat_id, thread_id=thread)
    await harness.deliver()
    assert any("Рекомендована коронарография." in text for text in patient.texts())
    assert any(data == conclusion for _, data in patient.received_files())
    await patient.click("📝 Мои заключения")
    before = len(patient.received_files())
    await patient.click(re.compile("Пётр Врачев"))
    text, document = patient.bot_messages()[-2:]  # the text, then the PDF
    assert "Рекомендована коронарография." in text.visible_text
    assert document.attachments[0]["type"] == "file"
    [(_name, data)] = patient.received_files()[before:]  # carried over from Telegram
    assert data == conclusion
    rows = await harness.rows(
        "SELECT DISTINCT messenger, chat_id FROM outbox WHERE patient_id IS NOT NULL"
    )
    assert ("max", patient.chat_id) in [tuple(r) for r in rows]
    failed = await harness.rows("SELECT method, last_error FROM outbox WHERE status = 'failed'")
    assert failed == []
