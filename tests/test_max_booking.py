"""A MAX patient books a duty doctor (the second path to a consultation), finds the booking in
«Мои консультации» with its video-link rule, and cancels it: every step is an inline screen
MAX edits in place; the doctors' notice goes to the Telegram duty chat."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.max_support import require_aiogram_max

require_aiogram_max()  # skips without aiogram-max, except in the CI pass that runs MAX

from fakegram.client import FakeGroup, FakeUser
from fakemax import FakeMaxUser
from tests.conftest import Harness
from tests.test_booking import FIRST, add_doctor
from tests.test_max_patient import MaxSide, max_side, register_on_max
from tests.test_relay import doctor, duty_chat_id, forum, harness

__all__ = ["doctor", "duty_chat_id", "forum", "harness", "max_side"]  # fixtures used here


async def test_a_max_patient_books_a_duty_doctor_sees_it_and_cancels_it(
    harness: Harness, max_side: MaxSide, forum: FakeGroup, doctor: FakeUser
) -> None:
    await add_doctor(harness, "Анна Сердцева", "cardiology", [FIRST, FIRST + timedelta(minutes=30)])
    patient = FakeMaxUser(max_side.server, 86_000_001, first_name="Агриппина")
    await register_on_max(patient)

    await patient.click("🩺 Дежурный врач")
    assert "в том числе без медицинских документов" in patient.last_text()
    await patient.click("❤️ Кардиология")
    await patient.click(re.compile("^Анна Сердцева"))
    await patient.click("26.11")
    await patient.click("15:30")
    confirm = patient.last_text()
    assert "26.11.2026 15:30 (Asia/Irkutsk)" in confirm and "26.11.2026 10:30" in confirm
    await patient.click("✅ Записаться")
    assert "Вы записаны к врачу Анна Сердцева на 26.11.2026 15:30" in patient.last_text()
    await harness.deliver()
    assert "Новая запись" in (forum.last_text() or "")
    rows = await harness.rows(
        "SELECT c.status, p.messenger FROM consultations c JOIN patients p ON p.id = c.patient_id"
    )
    assert [tuple(r) for r in rows] == [("scheduled", "max")]

    await patient.click("🗓 Мои консультации")
    await patient.click(re.compile("^26.11.2026 15:30"))
    assert "появится за 15 минут" in patient.last_text()  # the link's rule, not the link yet
    await patient.click("✖️ Отменить запись")
    await patient.click("Заболел(а)")
    assert "отменена (причина: Заболел(а))" in patient.last_text()
    assert [r[0] for r in await harness.rows("SELECT status FROM consultations")] == ["cancelled"]
    assert await harness.services.booking.free_slots("cardiology", 0) != []  # free again
