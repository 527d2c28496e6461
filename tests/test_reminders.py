"""The consultation day, end to end against the fake Bot API: the .ics file, the 24 h / 2 h /
15 min reminders and their buttons, the doctors' heads-up, no-shows, and reminders that are
moved, cancelled, sent after a restart or recorded as missed when they became stale."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiogram.utils.i18n import I18n
from icalendar import Calendar

from bot.callbacks import RemindAction, RemindCb
from bot.catalog import Catalog
from bot.config import SettingsError, load_settings
from bot.services.applications import Draft
from bot.services.outbox import Outbox
from fakegram.client import FakeGroup, FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import TOKEN, Harness
from tests.helpers import NAME, flat, register
from tests.test_booking import add_doctor

# 27.11.2026 07:00 UTC = 10:00 Moscow = 15:00 in Irkutsk (the patient's zone); the clock starts
# at 25.11 09:00 UTC, 46 hours before.
START = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Irkutsk")
COORDINATOR = 990_000_001
_chats = itertools.count(1)


def own_staff_chats(catalog: Catalog) -> Catalog:
    """Staff chats of this test's own. (Not conftest's helper: imported as ``tests.conftest``
    it would be a second copy of that module, counting from the start again.)"""
    number = next(_chats)
    centers = tuple(
        dataclasses.replace(c, staff_chat_id=-1005000000000 - 10 * number - i)
        for i, c in enumerate(catalog.centers)
    )
    return dataclasses.replace(catalog, centers=centers)


@pytest.fixture
async def day(
    fake: FakeTelegram, tmp_path: Path, i18n: I18n, catalog: Catalog, database_url: str
) -> AsyncIterator[Harness]:
    h = Harness(
        fake,
        tmp_path,
        i18n,
        own_staff_chats(catalog),
        database_url=database_url,
        duty_chat_id=-1003100000000 - next(_chats),
        coordinator_ids=str(COORDINATOR),
        max_duty_bookings=5,
    )
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


@pytest.fixture
def duty_chat(day: Harness, make_user: Any) -> tuple[FakeGroup, FakeUser]:
    assert day.settings.duty_chat_id is not None
    group = FakeGroup(day.fake, day.settings.duty_chat_id, "Дежурные врачи", is_forum=True)
    doctor = make_user(first_name="Анна", last_name="Сердцева")
    group.add_member(doctor)
    return group, doctor


async def book(user: FakeUser, moment: datetime) -> None:
    """Book Анна Сердцева at ``moment`` (given in UTC; the patient picks it in Irkutsk time)."""
    local = moment.astimezone(ZONE)
    await user.press("🩺 Дежурный врач")
    await user.click("❤️ Кардиология")
    await user.click(re.compile("^Анна Сердцева"))
    await user.click(f"{local:%d.%m}")
    await user.click(f"{local:%H:%M}")
    await user.click("✅ Записаться")
    assert "Вы записаны" in user.last_text()


async def at(h: Harness, moment: datetime) -> int:
    """Move the clock to ``moment`` and deliver what is due."""
    h.clock.now = moment
    return await h.deliver()


def texts(user: FakeUser) -> list[str]:
    return [m.content for m in user.messages()]


def reminders_of(user: FakeUser) -> list[Any]:
    return [m for m in user.messages() if (m.text or "").startswith(("⏰", "🎥"))]


def button(message: Any, text: str) -> dict[str, Any]:
    return next(b for row in message.inline_keyboard for b in row if b["text"] == text)


async def statuses(h: Harness, kind: str) -> list[str]:
    """Outbox statuses of the rows of ``kind``, by due time."""
    rows = await h.rows(
        "SELECT status FROM outbox WHERE kind = :kind ORDER BY due_at, id", kind=kind
    )
    return [status for (status,) in rows]


async def test_booking_brings_a_calendar_file_and_reminders_at_their_times(
    day: Harness, user: FakeUser, duty_chat: tuple[FakeGroup, FakeUser]
) -> None:
    group, _doctor = duty_chat
    await add_doctor(day, "Анна Сердцева", "cardiology", [START])
    await register(user)
    await book(user, START)
    await day.deliver()

    [ics] = [f for f in user.files_received() if (f.file_name or "").endswith(".ics")]
    assert "27.11.2026 15:00 (Asia/Irkutsk)" in (ics.caption or "")
    event = Calendar.from_ical(ics.data).walk("VEVENT")[0]
    starts = event.decoded("dtstart")
    assert starts == START and starts.utcoffset() == timedelta(0)  # in UTC
    assert event.decoded("dtend") == START + timedelta(minutes=30)
    assert "Облако здоровья" in str(event["summary"])
    [(video_url,)] = await day.rows("SELECT video_url FROM consultations")
    assert str(event["location"]) == video_url and video_url in str(event["description"])
    assert str(event["uid"]) == "consultation-1@oblako-zdorovia.bot"

    assert await at(day, START - timedelta(hours=24, minutes=1)) == 0
    await at(day, START - timedelta(hours=24))
    first = user.last_message()
    assert "через 24 ч" in first.content and "27.11.2026 15:00 (Asia/Irkutsk)" in first.content
    assert "по Москве 27.11.2026 10:00" in first.content
    assert flat(first.inline_buttons) == ["✅ Буду", "❌ Не смогу", "🔁 Перенести"]

    await at(day, START - timedelta(hours=2, minutes=1))
    assert len(reminders_of(user)) == 1
    await at(day, START - timedelta(hours=2))
    assert "через 2 ч" in user.last_text()
    assert flat(user.inline_buttons()) == ["✅ Буду", "❌ Не смогу", "🔁 Перенести"]

    await at(day, START - timedelta(minutes=15))
    link = user.last_message()
    assert "через 15 мин" in link.content and video_url in link.content
    assert "Chrome" in link.content and "камер" in link.content
    assert "2 Мбит/с" in link.content and "512 кбит/с" in link.content
    assert button(link, "🎥 Подключиться")["url"] == video_url
    assert not any("🚫 Пациент не пришёл" in flat(m.inline_buttons) for m in group.messages())

    await at(day, START - timedelta(minutes=10))
    [topic] = group.topics()
    headsup = group.last_message(thread_id=topic.thread_id)
    assert NAME in headsup.content and video_url in headsup.content
    assert re.sub(r"\D", "", headsup.content).count("79149876543") == 1  # the phone
    assert "27.11.2026 10:00 (МСК)" in headsup.content
    assert button(headsup, "🎥 Подключиться")["url"] == video_url
    assert "🚫 Пациент не пришёл" in flat(headsup.inline_buttons)

    await at(day, START + timedelta(hours=1))
    assert len(reminders_of(user)) == 3  # each once, nothing after


async def test_booking_three_hours_ahead_skips_the_24h_reminder(
    day: Harness, user: FakeUser, duty_chat: Any
) -> None:
    await add_doctor(day, "Анна Сердцева", "cardiology", [START])
    await register(user)
    day.clock.now = START - timedelta(hours=3)
    await book(user, START)
    await day.deliver()
    for moment in (
        START - timedelta(hours=2),
        START - timedelta(minutes=15),
        START + timedelta(hours=1),
    ):
        await at(day, moment)
    sent = [m.content for m in reminders_of(user)]
    assert len(sent) == 2
    assert "через 2 ч" in sent[0] and "через 15 мин" in sent[1]
    assert not any("24 ч" in t for t in texts(user))
    assert await statuses(day, "consultation_reminder") == ["sent", "sent"]


async def test_attend_is_shown_to_the_doctors_once(
    day: Harness, user: FakeUser, duty_chat: tuple[FakeGroup, FakeUser]
) -> None:
    group, _doctor = duty_chat
    await add_doctor(day, "Анна Сердцева", "cardiology", [START])
    await register(user)
    await book(user, START)
    await at(day, START - timedelta(hours=24))
    reminder = user.last_message()
    await user.click("✅ Буду")
    assert "Ждём вас" in str(user.last_callback_answer())
    assert user.inline_buttons(reminder.message_id) == []  # no second press
    forged = RemindCb(action=RemindAction.ATTEND, id=1, minutes=1440).pack()
    await user.click_data(forged, reminder.message_id)  # a double click that got through
    assert "уже ответили" in str(user.last_callback_answer())
    await day.deliver()
    [topic] = group.topics()
    answers = [m for m in group.messages(thread_id=topic.thread_id) if "«Буду»" in m.content]
    assert len(answers) == 1 and NAME in answers[0].content
    assert await day.rows("SELECT status FROM consultations") == [("confirmed",)]


async def test_cannot_leads_to_the_cancel_flow_and_the_reminders_go(
    day: Harness, user: FakeUser, duty_chat: tuple[FakeGroup, FakeUser]
) -> None:
    group, _doctor = duty_chat
    await add_doctor(day, "Анна Сердцева", "cardiology", [START])
    await register(user)
    await book(user, START)
    await at(day, START - timedelta(hours=24))
    reminder = user.last_message()
    await user.click("❌ Не смогу")
    assert "Заболел(а)" in flat(user.inline_buttons(reminder.message_id))  # the reasons
    await user.click("Заболел(а)")
    assert "отменена (причина: Заболел(а))" in user.last_text()
    await day.deliver()
    [topic] = group.topics()
    assert any("«Не смогу»" in m.content for m in group.messages(thread_id=topic.thread_id))
    pending = await day.rows(
        "SELECT count(*) FROM outbox WHERE group_key = 'consultation:1' AND status = 'pending'"
    )
    assert pending == [(0,)]
    before = len(user.messages())
    for moment in (START - timedelta(hours=2), START - timedelta(minutes=10), START):
        await at(day, moment)
    assert len(user.messages()) == before  # no 2 h, no link reminder
    assert not any("Консультация через" in m.content for m in group.messages())

    # the old reminder's button, pressed after the cancellation
    await user.click_data(
        RemindCb(action=RemindAction.ATTEND, id=1, minutes=1440).pack(), reminder.message_id
    )
    answer = user.last_callback_answer()
    assert answer is not None and "отменена" in answer and answer.show_alert


async def test_reschedule_moves_the_reminders(day: Harness, user: FakeUser, duty_chat: Any) -> None:
    later = START + timedelta(hours=2)  # 17:00 in Irkutsk
    await add_doctor(day, "Анна Сердцева", "cardiology", [START, later])
    await register(user)
    await book(user, START)
    await at(day, START - timedelta(hours=24))
    await user.click("🔁 Перенести")
    await user.click("27.11")
    await user.click("17:00")
    await user.click("✅ Перенести на это время")
    assert "перенесена на 27.11.2026 17:00" in user.last_text()
    await day.deliver()
    calendars = [f for f in user.files_received() if (f.file_name or "").endswith(".ics")]
    assert len(calendars) == 2
    assert Calendar.from_ical(calendars[-1].data).walk("VEVENT")[0].decoded("dtstart") == later

    await at(day, later - timedelta(hours=24))  # the new time's own 24 h reminder
    assert "через 24 ч" in user.last_text() and "27.11.2026 17:00" in user.last_text()
    before = len(reminders_of(user))
    for moment in (START - timedelta(hours=2), START - timedelta(minutes=15)):
        await at(day, moment)
    assert len(reminders_of(user)) == before  # nothing at the old times
    await at(day, later - timedelta(hours=2))
    assert "через 2 ч" in user.last_text() and "27.11.2026 17:00" in user.last_text()
    await at(day, later - timedelta(minutes=15))
    assert "через 15 мин" in user.last_text()
    assert len(reminders_of(user)) == before + 2


async def test_center_consultation_reminders_and_heads_up_in_the_application_topic(
    day: Harness, user: FakeUser, make_user: Any
) -> None:
    center = day.catalog.center("bakulev")
    assert center is not None
    group = FakeGroup(day.fake, center.staff_chat_id, "НМИЦ ССХ — заявки", is_forum=True)
    doctor = make_user(first_name="Пётр", last_name="Врачев")
    group.add_member(doctor)
    await register(user)
    patient = await day.services.patients.get(user.user_id)
    assert patient is not None
    application = await day.services.applications.submit(
        patient.id, Draft("bakulev", "ihd", "ИБС, стенокардия", "Боли", ())
    )
    await day.deliver()  # the card and its topic
    [topic] = group.topics()
    await day.services.applications.assign_time(application.id, "Пётр Врачев", START)
    await day.deliver()
    assert any((f.file_name or "").endswith(".ics") for f in user.files_received())
    assert "Подтверждаю" in " ".join(flat(user.inline_buttons()))  # the notice comes last

    await at(day, START - timedelta(hours=24))
    assert "через 24 ч" in user.last_text() and "федерального центра" in user.last_text()
    await at(day, START - timedelta(minutes=10))
    headsup = group.last_message(thread_id=topic.thread_id)
    assert "Заявка №1" in headsup.content and "ИБС, стенокардия" in headsup.content
    assert NAME in headsup.content and "🚫 Пациент не пришёл" in flat(headsup.inline_buttons)


async def test_center_reschedule_asks_the_doctors_for_another_time(
    day: Harness, user: FakeUser, make_user: Any
) -> None:
    center = day.catalog.center("bakulev")
    assert center is not None
    group = FakeGroup(day.fake, center.staff_chat_id, "НМИЦ ССХ — заявки", is_forum=True)
    await register(user)
    patient = await day.services.patients.get(user.user_id)
    assert patient is not None
    application = await day.services.applications.submit(
        patient.id, Draft("bakulev", "ihd", "ИБС", "Боли", ())
    )
    await day.services.applications.assign_time(application.id, "Пётр Врачев", START)
    await day.deliver()
    await user.click("✅ Подтверждаю")
    await at(day, START - timedelta(hours=24))
    await user.click("🔁 Перенести")
    assert "другое время" in str(user.last_callback_answer())
    await day.deliver()
    assert any("другое время" in m.content for m in group.messages())
    assert await day.rows("SELECT status FROM consultations") == [("reschedule_requested",)]
    before = len(user.messages())
    for moment in (START - timedelta(hours=2), START - timedelta(minutes=10)):
        await at(day, moment)
    assert len(user.messages()) == before
    assert not any("🚫 Пациент не пришёл" in flat(m.inline_buttons) for m in group.messages())


async def test_no_show_marked_by_a_member_and_coordinators_alerted_once(
    day: Harness, user: FakeUser, make_user: Any, duty_chat: tuple[FakeGroup, FakeUser]
) -> None:
    group, doctor = duty_chat
    stranger = make_user(first_name="Чужой")
    coordinator = FakeUser(day.fake, COORDINATOR, first_name="Ольга")
    times = [START, START + timedelta(days=1), START + timedelta(days=2)]
    await add_doctor(day, "Анна Сердцева", "cardiology", times)
    await register(user)
    for moment in times:
        await book(user, moment)
    for number, moment in enumerate(times, start=1):
        await at(day, moment - timedelta(minutes=10))
        headsup = next(
            m
            for m in reversed(group.messages())
            if "🚫 Пациент не пришёл" in flat(m.inline_buttons)
        )
        if number == 1:
            await stranger.click_in_group(group, "🚫 Пациент не пришёл", headsup.message_id)
            assert "только для врачей" in str(stranger.last_callback_answer())
            await doctor.click_in_group(group, "🚫 Пациент не пришёл", headsup.message_id)
            assert "после начала" in str(doctor.last_callback_answer())
        day.clock.now = moment + timedelta(minutes=5)
        await doctor.click_in_group(group, "🚫 Пациент не пришёл", headsup.message_id)
        assert "Отмечено" in str(doctor.last_callback_answer())
        edited = next(m for m in group.messages() if m.message_id == headsup.message_id)
        assert "пациент не пришёл — Анна Сердцева" in edited.content
        assert edited.inline_buttons == []
        await day.deliver()
        alerts = [m for m in coordinator.messages() if "не пришёл" in m.content]
        assert len(alerts) == (0 if number < 2 else 1)
    assert "Всего неявок: 2" in alerts[0].content and NAME in alerts[0].content
    found = await day.rows("SELECT status FROM consultations ORDER BY id")
    assert found == [("no_show",)] * 3


async def test_a_restart_sends_a_due_reminder_once_and_stale_ones_are_missed(
    day: Harness, user: FakeUser, duty_chat: Any
) -> None:
    await add_doctor(day, "Анна Сердцева", "cardiology", [START])
    await register(user)
    await book(user, START)
    await at(day, START - timedelta(hours=24))
    await at(day, START - timedelta(hours=2, minutes=1))  # the bot stops just before the 2 h one
    await day.restart()
    await at(day, START - timedelta(hours=2) + timedelta(minutes=4))  # back 4 minutes late
    await day.deliver()
    await day.restart()
    await day.deliver()
    sent = [m.content for m in reminders_of(user)]
    assert len(sent) == 2 and "через 24 ч" in sent[0]
    assert "через 2 ч" in sent[1]  # exactly once, a few minutes late but still useful


async def test_reminders_due_while_down_are_missed_when_stale(
    day: Harness, user: FakeUser, duty_chat: tuple[FakeGroup, FakeUser]
) -> None:
    group, _doctor = duty_chat
    await add_doctor(day, "Анна Сердцева", "cardiology", [START, START + timedelta(days=1)])
    await register(user)
    await book(user, START)
    await day.deliver()  # the calendar file
    await day.restart()
    # back only after the start: the 24 h and 2 h questions are stale, the link is not yet
    await at(day, START + timedelta(minutes=5))
    sent = [m.content for m in reminders_of(user)]
    assert len(sent) == 1 and video_link_in(sent[0])
    assert await statuses(day, "consultation_reminder") == ["missed", "missed", "sent"]
    # back after the end: the link and the heads-up are stale too
    await book(user, START + timedelta(days=1))
    await day.restart()
    await at(day, START + timedelta(days=1, minutes=31))
    assert len(reminders_of(user)) == 1
    headsups = [m for m in group.messages() if "🚫 Пациент не пришёл" in flat(m.inline_buttons)]
    assert len(headsups) == 1 and "27.11.2026 10:00" in headsups[0].content  # the first one's
    rows = await day.rows(
        "SELECT kind, status FROM outbox WHERE group_key = 'consultation:2' ORDER BY id"
    )
    assert sorted(rows) == [
        ("consultation_calendar", "missed"),
        ("consultation_headsup", "missed"),
        ("consultation_reminder", "missed"),  # 2 h (the 24 h one: booked less than 24 h ahead)
        ("consultation_reminder", "missed"),  # 15 min
    ]


def video_link_in(text: str) -> bool:
    return "https://meet.jit.si/oblako-" in text


async def test_erased_patient_takes_the_reminders_along(
    day: Harness, user: FakeUser, duty_chat: tuple[FakeGroup, FakeUser]
) -> None:
    group, _doctor = duty_chat
    await add_doctor(day, "Анна Сердцева", "cardiology", [START])
    await register(user)
    await book(user, START)
    of_patient = "SELECT count(*) FROM outbox WHERE group_key = 'consultation:1' AND chat_id = :c"
    assert await day.rows(of_patient, c=user.user_id) == [(4,)]  # .ics, 24 h, 2 h, 15 min
    await day.services.patients.erase(user.user_id)
    assert await day.rows(of_patient, c=user.user_id) == [(0,)]
    before = len(user.messages())
    for moment in (START - timedelta(hours=24), START - timedelta(minutes=10)):
        await at(day, moment)
    assert len(user.messages()) == before
    # the doctors' heads-up held the consultation id only: it is dropped, not sent
    assert not any("🚫 Пациент не пришёл" in flat(m.inline_buttons) for m in group.messages())
    headsup = "SELECT status, last_error FROM outbox WHERE kind = 'consultation_headsup'"
    assert await day.rows(headsup) == [("cancelled", "gone")]


async def test_any_outbox_row_may_expire_and_its_expiry_moves_with_its_group(
    day: Harness, user: FakeUser
) -> None:
    await register(user)
    now = day.clock()
    async with day.services.sessions.begin() as session:
        for text, group in (("moved", "g1"), ("stays", "g2")):
            Outbox.send_message(
                session,
                chat_id=user.user_id,
                text=text,
                due_at=now + timedelta(hours=1),
                expires_at=now + timedelta(hours=2),
                group_key=group,
                now=now,
            )
        assert await Outbox.move_group(session, "g1", timedelta(hours=3)) == 1
    before = len(user.messages())
    assert await at(day, now + timedelta(hours=3)) == 0  # "stays" expired an hour ago
    assert len(user.messages()) == before
    await at(day, now + timedelta(hours=4, minutes=59))
    assert user.last_text() == "moved"
    found = await day.rows("SELECT group_key, status, last_error FROM outbox ORDER BY id")
    assert [s for s in found if s[0] in ("g1", "g2")] == [
        ("g1", "sent", None),
        ("g2", "missed", "expired"),
    ]


def test_reminder_offsets_setting_is_checked() -> None:
    settings = load_settings(bot_token=TOKEN, reminder_offsets_minutes="15, 1440;120")
    assert settings.reminder_offsets_minutes == (1440, 120, 15)
    with pytest.raises(SettingsError, match="REMINDER_OFFSETS_MINUTES"):
        load_settings(bot_token=TOKEN, reminder_offsets_minutes="1440,two hours")
    with pytest.raises(SettingsError, match="REMINDER_OFFSETS_MINUTES"):
        load_settings(bot_token=TOKEN, reminder_offsets_minutes="0")


async def test_a_removed_slot_takes_its_reminders_along(
    day: Harness, user: FakeUser, duty_chat: Any
) -> None:
    [slot_id] = await add_doctor(day, "Анна Сердцева", "cardiology", [START])
    await register(user)
    await book(user, START)
    await day.deliver()
    await day.services.schedule.remove_slot(slot_id, booking_confirmed=True)
    pending = (
        "SELECT count(*) FROM outbox WHERE group_key = 'consultation:1' AND status = 'pending'"
    )
    assert await day.rows(pending) == [(0,)]
    for moment in (START - timedelta(hours=24), START - timedelta(minutes=10)):
        await at(day, moment)
    assert reminders_of(user) == []


async def test_declined_after_the_time_was_set_no_reminders(day: Harness, user: FakeUser) -> None:
    await register(user)
    patient = await day.services.patients.get(user.user_id)
    assert patient is not None
    applications = day.services.applications
    application = await applications.submit(patient.id, Draft("bakulev", "ihd", "ИБС", "Боли", ()))
    await applications.assign_time(application.id, "Пётр Врачев", START)
    await applications.decline(application.id, "Пётр Врачев", "Нужна очная госпитализация")
    for moment in (START - timedelta(hours=24), START - timedelta(minutes=10)):
        await at(day, moment)
    assert reminders_of(user) == []


async def test_a_consultation_under_way_keeps_its_join_button_until_its_end(
    day: Harness, user: FakeUser, duty_chat: tuple[FakeGroup, FakeUser]
) -> None:
    await add_doctor(day, "Анна Сердцева", "cardiology", [START])
    await register(user)
    await book(user, START)
    await at(day, START - timedelta(hours=2))
    reminder = user.last_message()
    await at(day, START - timedelta(minutes=15))
    day.clock.now = START + timedelta(seconds=4)  # it has begun
    await user.click("✅ Буду", message_id=reminder.message_id)
    assert "Мои консультации" in str(user.last_callback_answer())
    await user.press("🗓 Мои консультации")
    overview = user.last_text()
    assert "Прошедшие" not in overview, overview
    assert "по часовому поясу Asia/Irkutsk" in overview  # the buttons' times are theirs
    await user.click(re.compile("Анна Сердцева"))
    join = button(user.last_message(), "🎥 Подключиться")
    assert join["url"].startswith("https://")
    assert not any("Отменить" in b or "Перенести" in b for b in flat(user.inline_buttons()))

    day.clock.now = START + timedelta(minutes=31)  # the slot (30 min) is over
    await user.press("🗓 Мои консультации")
    assert user.inline_buttons() == []
