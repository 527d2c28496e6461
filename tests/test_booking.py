"""Booking duty doctors and "Мои консультации", end to end against the fake Bot API."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.utils.i18n import I18n

from bot.callbacks import ConsultAction, ConsultCb
from bot.catalog import Catalog
from bot.services.applications import Draft
from bot.storage.models import DutyDoctor, DutySlot
from fakegram.client import FakeGroup, FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import Harness
from tests.helpers import flat, register

DUTY_CHAT = -1003000000001
# 26.11.2026 10:00 and 10:30 Moscow = 07:00 and 07:30 UTC = 15:00 and 15:30 in Irkutsk
FIRST = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)


@pytest.fixture
async def duty(
    fake: FakeTelegram, tmp_path: Path, i18n: I18n, catalog: Catalog, database_url: str
) -> AsyncIterator[Harness]:
    h = Harness(fake, tmp_path, i18n, catalog, database_url=database_url, duty_chat_id=DUTY_CHAT)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def add_doctor(h: Harness, name: str, specialty: str, starts: list[datetime]) -> list[int]:
    async with h.services.sessions.begin() as session:
        doctor = DutyDoctor(
            display_name=name,
            specialty=specialty,
            about="кардиолог, 20 лет стажа",
            created_at=h.clock(),
        )
        session.add(doctor)
        await session.flush()
        slots = [
            DutySlot(doctor_id=doctor.id, starts_at=s, duration_minutes=30, created_at=h.clock())
            for s in starts
        ]
        session.add_all(slots)
        await session.flush()
        return [s.id for s in slots]


async def to_confirmation(user: FakeUser, time: str = "15:00") -> None:
    await user.press("🩺 Дежурный врач")
    await user.click("❤️ Кардиология")
    await user.click(re.compile("^Анна Сердцева"))
    await user.click("26.11")
    await user.click(time)


async def test_full_booking(duty: Harness, user: FakeUser) -> None:
    group = FakeGroup(duty.fake, DUTY_CHAT, "Дежурные врачи")
    await add_doctor(duty, "Анна Сердцева", "cardiology", [FIRST, FIRST + timedelta(minutes=30)])
    await register(user)
    await user.press("🩺 Дежурный врач")
    assert "в том числе без медицинских документов" in user.last_text()
    await user.click("❤️ Кардиология")
    assert "Анна Сердцева — 26.11 15:00" in flat(user.inline_buttons())
    await user.click(re.compile("^Анна Сердцева"))
    await user.click("26.11")
    assert "Asia/Irkutsk" in user.last_text()
    await user.click("15:30")
    confirm = user.last_text()
    assert "26.11.2026 15:30 (Asia/Irkutsk)" in confirm and "26.11.2026 10:30" in confirm
    assert "видеосвязь" in confirm
    await user.click("✅ Записаться")
    assert "Вы записаны к врачу Анна Сердцева на 26.11.2026 15:30" in user.last_text()
    await duty.deliver()
    assert "Новая запись" in group.last_text() and "26.11.2026 10:30" in group.last_text()
    [(status, doctor_id, slot_id)] = await duty.rows(
        "SELECT status, doctor_id, slot_id FROM consultations"
    )
    assert status == "scheduled"
    assert doctor_id is not None and slot_id is not None


async def test_two_patients_race_for_one_slot(duty: Harness, make_user: Any) -> None:
    await add_doctor(duty, "Анна Сердцева", "cardiology", [FIRST, FIRST + timedelta(minutes=30)])
    first, second = make_user(), make_user()
    for user in (first, second):
        await register(user)
        await to_confirmation(user)
    await asyncio.gather(first.click("✅ Записаться"), second.click("✅ Записаться"))
    texts = [first.last_text(), second.last_text()]
    assert sum("Вы записаны" in t for t in texts) == 1
    loser = first if "только что занял" in first.last_text() else second
    assert "только что занял" in loser.last_text()
    assert any("15:30" in b for b in flat(loser.inline_buttons()))  # the nearest free slot
    assert await duty.rows("SELECT count(*) FROM consultations") == [(1,)]


async def test_at_most_two_future_bookings(duty: Harness, user: FakeUser) -> None:
    await add_doctor(
        duty, "Анна Сердцева", "cardiology", [FIRST + timedelta(minutes=30 * i) for i in range(3)]
    )
    await register(user)
    for time in ("15:00", "15:30"):
        await to_confirmation(user, time)
        await user.click("✅ Записаться")
    await to_confirmation(user, "16:00")
    await user.click("✅ Записаться")
    assert "максимум предстоящих записей" in str(user.last_callback_answer())
    assert await duty.rows("SELECT count(*) FROM consultations") == [(2,)]


async def book(user: FakeUser, time: str = "15:00") -> None:
    await to_confirmation(user, time)
    await user.click("✅ Записаться")


async def test_cancel_before_and_after_the_cutoff(duty: Harness, user: FakeUser) -> None:
    await add_doctor(duty, "Анна Сердцева", "cardiology", [FIRST, FIRST + timedelta(minutes=30)])
    await register(user)
    await book(user, "15:00")
    await book(user, "15:30")
    await user.press("🗓 Мои консультации")
    await user.click(re.compile("^26.11.2026 15:00"))
    assert "появится за 15 минут" in user.last_text()
    await user.click("✖️ Отменить запись")
    await user.click("Заболел(а)")
    assert "отменена (причина: Заболел(а))" in user.last_text()
    assert await duty.services.booking.free_slots("cardiology", 0) != []  # the slot is free again
    duty.clock.now = FIRST + timedelta(minutes=30) - timedelta(hours=1)  # 1 h before the second
    await user.press("🗓 Мои консультации")
    await user.click(re.compile("^26.11.2026 15:30"))
    await user.click("✖️ Отменить запись")
    assert "меньше 2 ч" in user.last_text() and "638-66-99" in user.last_text()
    statuses = sorted(r[0] for r in await duty.rows("SELECT status FROM consultations"))
    assert statuses == ["cancelled", "scheduled"]


async def test_reschedule_frees_the_old_slot(duty: Harness, make_user: Any) -> None:
    await add_doctor(duty, "Анна Сердцева", "cardiology", [FIRST, FIRST + timedelta(minutes=30)])
    user, other = make_user(), make_user()
    await register(user)
    await book(user, "15:00")
    await user.press("🗓 Мои консультации")
    await user.click(re.compile("^26.11.2026 15:00"))
    await user.click("🔁 Перенести")
    await user.click("26.11")
    assert flat(user.inline_buttons())[0] == "15:30"  # only the free one is offered
    await user.click("15:30")
    await user.click("✅ Перенести на это время")
    assert "перенесена на 26.11.2026 15:30" in user.last_text()
    await register(other)
    await book(other, "15:00")  # the freed slot can be booked by someone else
    assert "Вы записаны" in other.last_text()


async def test_video_link_from_fifteen_minutes_before(duty: Harness, user: FakeUser) -> None:
    await add_doctor(duty, "Анна Сердцева", "cardiology", [FIRST])
    await register(user)
    await book(user)
    duty.clock.now = FIRST - timedelta(minutes=10)
    await user.press("🗓 Мои консультации")
    await user.click(re.compile("^26.11.2026 15:00"))
    button = next(
        b
        for row in user.last_message().inline_keyboard
        for b in row
        if b["text"] == "🎥 Подключиться"
    )
    assert button["url"].startswith("https://meet.jit.si/oblako-")


async def test_video_link_at_the_start_and_through_the_consultation(
    duty: Harness, user: FakeUser
) -> None:
    """The link is there at the very minute the consultation starts and while it runs (it
    once vanished at the start); not before its window opens."""
    await add_doctor(duty, "Анна Сердцева", "cardiology", [FIRST])
    await register(user)
    await book(user)
    for moment, shown in (
        (FIRST - timedelta(minutes=16), False),
        (FIRST - timedelta(minutes=15), True),
        (FIRST, True),
        (FIRST + timedelta(minutes=20), True),
    ):
        duty.clock.now = moment
        await user.press("🗓 Мои консультации")
        await user.click(re.compile("^26.11.2026 15:00"))
        buttons = flat(user.inline_buttons())
        assert ("🎥 Подключиться" in buttons) is shown, moment
        assert ("Можно подключаться" in user.last_text()) is shown, moment
        if moment >= FIRST:  # begun: nothing left to cancel or move
            assert "✖️ Отменить запись" not in buttons


async def test_center_consultations_are_listed_and_cancel_goes_back_to_the_doctors(
    duty: Harness, user: FakeUser
) -> None:
    await register(user)
    patient = await duty.services.patients.get(user.user_id)
    assert patient is not None
    application = await duty.services.applications.submit(
        patient.id, Draft("bakulev", "ihd", "ИБС", "Боли", ())
    )
    await duty.services.applications.assign_time(application.id, "Пётр Врачев", FIRST)
    await user.press("🗓 Мои консультации")
    await user.click(re.compile("федеральный центр"))
    assert "🔁 Перенести" not in flat(user.inline_buttons())
    await user.click("✖️ Отменить запись")
    await user.click("Не смогу в это время")
    assert await duty.rows("SELECT status FROM applications") == [("under_review",)]


async def test_forged_callback_on_someone_elses_consultation(duty: Harness, make_user: Any) -> None:
    await add_doctor(duty, "Анна Сердцева", "cardiology", [FIRST])
    owner, intruder = make_user(), make_user()
    await register(owner)
    await book(owner)
    await register(intruder)
    anchor = intruder.last_message().message_id
    for action in (ConsultAction.OPEN, ConsultAction.CANCEL, ConsultAction.RESCHEDULE):
        await intruder.click_data(ConsultCb(action=action, id=1).pack(), anchor)
        assert "не найдена" in str(intruder.last_callback_answer())
    assert await duty.rows("SELECT status FROM consultations") == [("scheduled",)]


async def test_a_long_doctors_list_comes_in_pages(duty: Harness, user: FakeUser) -> None:
    for number in range(25):
        await add_doctor(duty, f"Врач Номер{number:02d}", "cardiology", [FIRST])
    await register(user)
    await user.press("🩺 Дежурный врач")
    await user.click("❤️ Кардиология")
    buttons = flat(user.inline_buttons())
    doctors = [b for b in buttons if b.startswith("Врач Номер")]
    assert len(doctors) == 10 and "1/3" in buttons
    assert user.last_text().count("Врач Номер") == 10  # their "about" lines: this page's only
    assert "по часовому поясу Asia/Irkutsk" in user.last_text()  # of the next free times
    await user.click("▶️")
    doctors = [b for b in flat(user.inline_buttons()) if b.startswith("Врач Номер")]
    assert doctors[0].startswith("Врач Номер10") and "2/3" in flat(user.inline_buttons())
    await user.click(re.compile("^Врач Номер12"))
    assert "26.11" in flat(user.inline_buttons())  # the doctor's days: the list still works


async def test_any_doctors_day_shows_a_bounded_list_of_times(duty: Harness, user: FakeUser) -> None:
    for number in range(8):  # 8 doctors with 16 half-hour slots each on 26.11
        starts = [FIRST + timedelta(minutes=30 * k) for k in range(16)]
        await add_doctor(duty, f"Врач Номер{number}", "cardiology", starts)
    await register(user)
    await user.press("🩺 Дежурный врач")
    await user.click("❤️ Кардиология")
    await user.click(re.compile("^⏱"))
    await user.click("26.11")
    buttons = flat(user.inline_buttons())
    assert len(buttons) <= 100  # Telegram's limit for one message
    times = [b for b in buttons if " · Врач Номер" in b]
    assert len(times) == 48 and times[0].startswith("15:00")  # the day's earliest first


async def test_an_old_screens_cancel_of_a_cancelled_consultation_is_refused_at_once(
    duty: Harness, user: FakeUser
) -> None:
    await add_doctor(duty, "Анна Сердцева", "cardiology", [FIRST])
    await register(user)
    await book(user, "15:00")
    await user.press("🗓 Мои консультации")
    await user.click(re.compile("^26.11.2026 15:00"))
    old_screen = user.last_message()
    await user.press("🗓 Мои консультации")  # a second screen, where it is cancelled
    await user.click(re.compile("^26.11.2026 15:00"))
    await user.click("✖️ Отменить запись")
    await user.click("Заболел(а)")
    await user.click("✖️ Отменить запись", message_id=old_screen.message_id)
    refusal = user.last_callback_answer()
    assert refusal is not None and "уже прошла или отменена" in refusal
    assert "Заболел(а)" not in flat(user.inline_buttons(old_screen.message_id))  # not asked
