"""The duty schedule kept by coordinators, end to end against the fake Bot API: doctors, slots by
the dialogue and from a CSV, listing and removal (a booked slot's patient is told)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from aiogram.utils.i18n import I18n
from sqlalchemy import select

from bot.callbacks import DutyAction, DutyCb, ScheduleAction, ScheduleCb
from bot.catalog import Catalog
from bot.fsm.states import Schedule
from bot.services.schedule import SlotPlan
from bot.storage.models import Consultation, DutyDoctor, DutySlot, Patient
from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import Harness
from tests.helpers import flat, register, state_of
from tests.test_documents import pdf, png

DOCTOR = "Анна Сергеевна Сердцева"


@pytest.fixture
def coordinator(make_user: Callable[..., FakeUser]) -> FakeUser:
    return make_user(first_name="Ольга", last_name="Координатова")


@pytest.fixture
async def harness(
    fake: FakeTelegram,
    tmp_path: Path,
    i18n: I18n,
    catalog: Catalog,
    database_url: str,
    coordinator: FakeUser,
) -> AsyncIterator[Harness]:
    h = Harness(
        fake,
        tmp_path,
        i18n,
        catalog,
        database_url=database_url,
        coordinator_ids=frozenset({coordinator.user_id}),
    )
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def slots_in_db(h: Harness) -> list[tuple[datetime, int, str]]:
    async with h.services.sessions() as session:
        rows = await session.execute(
            select(DutySlot.starts_at, DutySlot.duration_minutes, DutySlot.time_zone).order_by(
                DutySlot.starts_at
            )
        )
        return [(s, m, z) for s, m, z in rows.all()]


async def add_doctor(h: Harness, name: str = DOCTOR, specialty: str = "cardiology") -> int:
    return (await h.services.schedule.add_doctor(name, specialty, "кардиолог")).id


async def make_slots(h: Harness, doctor_id: int, day: date, start: str, end: str) -> None:
    plan = SlotPlan(
        doctor_id=doctor_id,
        first_day=day,
        last_day=day,
        weekdays=frozenset(range(7)),
        start=time.fromisoformat(start),
        end=time.fromisoformat(end),
        length_minutes=30,
    )
    await h.services.schedule.create_slots(plan)


def button_data(user: FakeUser, text: str) -> str:
    for row in user.last_message().data["reply_markup"]["inline_keyboard"]:
        for button in row:
            if button["text"] == text:
                return str(button["callback_data"])
    raise AssertionError(f"no button {text!r}")


async def through_the_dialogue(
    user: FakeUser, *, dates: str, hours: str, length: str, zone: str | None
) -> None:
    """From the dates question to the preview."""
    await user.send(dates)
    await user.click("➡️ Дальше")
    await user.send(hours)
    await user.click(length)
    if zone is None:
        await user.click("🕒 Москва (по умолчанию)")
    else:
        await user.send(zone)


async def test_a_coordinator_adds_a_doctor_and_creates_slots(
    harness: Harness, coordinator: FakeUser
) -> None:
    await coordinator.send("/schedule")
    assert "Расписание дежурных врачей" in coordinator.last_text()
    await coordinator.click("👩‍⚕️ Дежурные врачи")
    assert "пока нет" in coordinator.last_text()
    await coordinator.click("➕ Добавить врача")
    assert "Как представить врача" in coordinator.last_text()
    await coordinator.send_sticker()
    assert "Нужен ответ текстом" in coordinator.messages()[-2].content
    assert "Как представить врача" in coordinator.last_text()
    await coordinator.send(DOCTOR)
    await coordinator.send("кардиология")  # a text where a button is expected
    assert "кнопкой" in coordinator.messages()[-2].content
    await coordinator.click("❤️ Кардиология")
    await coordinator.send("Кардиолог, 20 лет стажа")
    summary = coordinator.last_text()
    assert DOCTOR in summary and "❤️ Кардиология" in summary and "20 лет стажа" in summary
    await coordinator.click("✅ Сохранить врача")
    assert f"Врач {DOCTOR} добавлен" in coordinator.last_text()
    async with harness.services.sessions() as session:
        doctor = (await session.scalars(select(DutyDoctor))).one()
    assert (doctor.display_name, doctor.specialty, doctor.active) == (DOCTOR, "cardiology", True)

    # slots by the dialogue, Moscow time; bad answers first
    await coordinator.click("🗓 Создать слоты")
    assert "01.12.2026–14.12.2026" in coordinator.last_text()
    for wrong, answer in (
        ("31.02.2026", "Такой даты нет"),
        ("14.12.2026–01.12.2026", "раньше даты начала"),
        ("01.11.2026–05.11.2026", "уже прошли"),
        ("с понедельника", "Не понял даты"),
    ):
        await coordinator.send(wrong)
        assert answer in coordinator.messages()[-2].content, wrong
        assert "01.12.2026–14.12.2026" in coordinator.last_text()  # asked again
    await coordinator.send("01.12.2026–02.12.2026")  # Tuesday and Wednesday
    assert "✅ Пн" in flat(coordinator.inline_buttons())  # Mon–Fri by default
    await coordinator.click("➡️ Дальше")
    await coordinator.send("13:00–09:00")
    assert "должен быть позже начала" in coordinator.messages()[-2].content
    await coordinator.click("⬅️ Назад")  # back to the weekdays, and on again
    assert "дни недели" in coordinator.last_text()
    await coordinator.click("➡️ Дальше")
    await coordinator.send("09:00–11:00")
    await coordinator.click("30 мин")
    assert "Москва" in coordinator.last_text()
    await coordinator.click("🕒 Москва (по умолчанию)")
    preview = coordinator.last_text()
    assert "Будет создано слотов: 8" in preview and "Europe/Moscow" in preview
    await coordinator.click("✅ Создать слоты: 8")
    assert "Создано слотов: 8. Пропущено (уже были в расписании): 0" in coordinator.last_text()
    assert await state_of(harness, coordinator) is None
    slots = await slots_in_db(harness)
    utc = [s for s, _, _ in slots]
    assert utc == [
        datetime(2026, 12, day, hour, minute, tzinfo=UTC)
        for day in (1, 2)
        for hour in (6, 7)
        for minute in (0, 30)
    ]
    assert {(m, z) for _, m, z in slots} == {(30, "Europe/Moscow")}

    # the same range again: nothing new; a wider one: only the new days
    await coordinator.send("/schedule")
    await coordinator.click("🗓 Создать слоты")
    await coordinator.click(re.compile(f"^{DOCTOR}"))
    await through_the_dialogue(
        coordinator, dates="01.12.2026–02.12.2026", hours="9:00-11:00", length="30 мин", zone=None
    )
    assert "Будет создано слотов: 0" in coordinator.last_text()
    assert "Уже есть в расписании (будут пропущены): 8" in coordinator.last_text()
    assert not any(b.startswith("✅ Создать") for b in flat(coordinator.inline_buttons()))
    await coordinator.click("⬅️ Назад")  # to the time zone
    await coordinator.click("⬅️ Назад")  # to the length
    await coordinator.click("⬅️ Назад")  # to the hours
    await coordinator.click("⬅️ Назад")  # to the weekdays
    await coordinator.click("⬅️ Назад")  # to the dates
    await coordinator.send("01.12.2026–03.12.2026")
    await coordinator.click("➡️ Дальше")
    await coordinator.send("09:00–11:00")
    await coordinator.click("30 мин")
    await coordinator.click("🕒 Москва (по умолчанию)")
    await coordinator.click("✅ Создать слоты: 4")
    assert "Создано слотов: 4. Пропущено (уже были в расписании): 8" in coordinator.last_text()
    assert len(await slots_in_db(harness)) == 12

    # Irkutsk time (Moscow+5), Mondays only, an hour long
    await coordinator.send("/schedule")
    await coordinator.click("🗓 Создать слоты")
    await coordinator.click(re.compile(f"^{DOCTOR}"))
    await coordinator.send("07.12.2026–13.12.2026")
    for day in ("✅ Вт", "✅ Ср", "✅ Чт", "✅ Пт"):
        await coordinator.click(day)
    assert "✅ Пн" in flat(coordinator.inline_buttons())
    assert "▫️ Вт" in flat(coordinator.inline_buttons())
    await coordinator.click("➡️ Дальше")
    await coordinator.send("09:00–10:00")
    await coordinator.click("60 мин")
    await coordinator.send("Марс/Олимп")
    assert "Не знаю такого часового пояса" in coordinator.messages()[-2].content
    await coordinator.send("asia/irkutsk")
    assert "Asia/Irkutsk" in coordinator.last_text()
    await coordinator.click("✅ Создать слоты: 1")
    assert "Создано слотов: 1" in coordinator.last_text()
    assert (await slots_in_db(harness))[-1] == (
        datetime(2026, 12, 7, 1, 0, tzinfo=UTC),
        60,
        "Asia/Irkutsk",
    )


async def test_time_zone_by_region_and_cancel(harness: Harness, coordinator: FakeUser) -> None:
    await add_doctor(harness)
    await coordinator.send("/schedule")
    await coordinator.click("🗓 Создать слоты")
    await coordinator.click(re.compile(f"^{DOCTOR}"))
    await coordinator.send("07.12.2026")
    await coordinator.click("Все дни")
    await coordinator.click("➡️ Дальше")
    await coordinator.send("10:00–11:00")
    await coordinator.click("20 мин")
    await coordinator.click("🗺 Выбрать регион")
    await coordinator.click("▶️")
    await coordinator.click("⬅️ Назад")  # from the list: the time zone question again
    assert "часовом поясе" in coordinator.last_text()
    await coordinator.send("Иркутская")  # a region's name works too
    preview = coordinator.last_text()
    assert "Asia/Irkutsk" in preview and "Будет создано слотов: 3" in preview
    await coordinator.send("/cancel")
    assert await state_of(harness, coordinator) is None
    await coordinator.click("✅ Создать слоты: 3")  # the old preview's button
    assert await slots_in_db(harness) == []

    await coordinator.send("/schedule")
    await coordinator.click("🗓 Создать слоты")
    await coordinator.click(re.compile(f"^{DOCTOR}"))
    await coordinator.click("✖️ Отмена")
    assert "Отменено" in coordinator.last_text()
    assert await state_of(harness, coordinator) is None


def csv_rows(*rows: str) -> str:
    return "\r\n".join(rows) + "\r\n"


async def test_csv_import_reports_bad_rows_and_reads_windows_1251(
    harness: Harness, coordinator: FakeUser
) -> None:
    first = await add_doctor(harness)
    second = await add_doctor(harness, "Ольга Петровна Родина", "obgyn")
    await coordinator.send("/schedule")
    await coordinator.click("📄 Загрузить CSV со слотами")
    assert "врач;дата;время;длительность" in coordinator.last_text()
    assert await state_of(harness, coordinator) == Schedule.csv_upload.state
    table = csv_rows(
        "Врач;Дата;Время;Длительность;Часовой пояс",
        f"{DOCTOR};01.12.2026;09:00;30;",
        f"{DOCTOR};01.12.2026;09:30;30;Europe/Moscow",
        f"{DOCTOR};31.02.2026;10:00;30;",
        "Иван Неизвестный;01.12.2026;10:00;30",
        f"{first};01.12.2026;10:00;сорок",
        f"{DOCTOR};01.12.2026;25:00;30",
        f"{DOCTOR};01.11.2026;10:00;30",
        f"{DOCTOR};02.12.2026;10:00;30;Mars/Olympus",
        f"{first};01.12.2026;09:00;30",  # the same slot again: skipped
        "",
        f"{first};02.12.2026;09:00;45;Asia/Irkutsk",
    )
    await coordinator.send_document(table.encode(), "slots.csv", mime_type="text/csv")
    report = coordinator.last_text()
    assert "Загружено слотов: 3. Пропущено (уже были в расписании): 1" in report
    assert "Строк с ошибками: 6" in report
    assert "строка 4: неверная дата «31.02.2026»" in report
    assert "строка 5: нет дежурного врача «Иван Неизвестный»" in report
    assert "строка 6: неверная длительность «сорок»" in report
    assert "строка 7: неверное время «25:00»" in report
    assert "строка 8: это время уже прошло" in report
    assert "строка 9: неизвестный часовой пояс «Mars/Olympus»" in report
    assert await state_of(harness, coordinator) is None
    assert await slots_in_db(harness) == [
        (datetime(2026, 12, 1, 6, 0, tzinfo=UTC), 30, "Europe/Moscow"),
        (datetime(2026, 12, 1, 6, 30, tzinfo=UTC), 30, "Europe/Moscow"),
        (datetime(2026, 12, 2, 1, 0, tzinfo=UTC), 45, "Asia/Irkutsk"),
    ]

    # Windows-1251, commas, no header, a doctor by name in another case and by id
    await coordinator.send("/schedule")
    await coordinator.click("📄 Загрузить CSV со слотами")
    legacy = csv_rows(
        "ольга петровна родина,03.12.2026,12:00,30",
        f"{second},03.12.2026,12:30,30,Europe/Moscow",
        '"Ольга Петровна Родина",03.12.2026,13:00,30',
    ).encode("cp1251")
    await coordinator.send_document(legacy, "слоты.csv", mime_type="text/csv")
    assert "Загружено слотов: 3. Пропущено (уже были в расписании): 0" in coordinator.last_text()
    assert "ошибками" not in coordinator.last_text()
    async with harness.services.sessions() as session:
        theirs = list(
            await session.scalars(select(DutySlot.starts_at).where(DutySlot.doctor_id == second))
        )
    assert sorted(theirs) == [
        datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
        datetime(2026, 12, 3, 9, 30, tzinfo=UTC),
        datetime(2026, 12, 3, 10, 0, tzinfo=UTC),
    ]


async def test_a_file_that_is_not_csv_is_refused(harness: Harness, coordinator: FakeUser) -> None:
    await add_doctor(harness)
    await coordinator.send("/schedule")
    await coordinator.click("📄 Загрузить CSV со слотами")
    await coordinator.send_document(pdf("schedule"), "slots.csv", mime_type="text/csv")
    assert "Это не файл CSV" in coordinator.last_text()
    await coordinator.send_document(b"some words\nwithout columns\n", "notes.txt", "text/plain")
    assert "Это не файл CSV" in coordinator.last_text()
    await coordinator.send_photo(png(1))
    assert "Нужен файл CSV" in coordinator.last_text()
    await coordinator.send("вот файл")
    assert "Нужен файл CSV" in coordinator.last_text()
    assert await state_of(harness, coordinator) == Schedule.csv_upload.state
    assert await slots_in_db(harness) == []
    # still waiting for the file: a good one is taken
    good = csv_rows(f"{DOCTOR};01.12.2026;09:00;30")
    await coordinator.send_document(good.encode(), "slots.csv", mime_type="text/csv")
    assert "Загружено слотов: 1" in coordinator.last_text()


async def test_others_get_the_ordinary_fallback(
    harness: Harness, make_user: Callable[..., FakeUser]
) -> None:
    stranger = make_user(first_name="Пётр")
    await stranger.send("/schedule")
    assert stranger.last_text() == harness.i18n.gettext("common.not_registered", locale="ru")
    patient = make_user()
    await register(patient)
    await patient.send("/schedule")
    assert patient.last_text() == harness.i18n.gettext("common.not_understood", locale="ru")
    # a forged button of the schedule is a stale button for them
    forged = ScheduleCb(action=ScheduleAction.DOCTORS).pack()
    await patient.click_data(forged, patient.last_message().message_id)
    answer = patient.last_callback_answer()
    assert answer is not None
    assert answer == harness.i18n.gettext("common.stale_button", locale="ru")
    assert "Дежурные врачи." not in patient.last_text()


async def open_slots(coordinator: FakeUser) -> None:
    await coordinator.send("/schedule")
    await coordinator.click("📋 Слоты: просмотр и удаление")
    await coordinator.click(re.compile(f"^{DOCTOR}"))


async def test_removing_a_free_slot(harness: Harness, coordinator: FakeUser) -> None:
    doctor = await add_doctor(harness)
    await make_slots(harness, doctor, date(2026, 12, 1), "09:00", "10:00")
    await open_slots(coordinator)
    listing = coordinator.last_text()
    assert "01.12.2026 09:00 (Europe/Moscow), 30 мин — свободен" in listing
    assert "01.12.2026 09:30 (Europe/Moscow), 30 мин — свободен" in listing
    await coordinator.click("🟢 01.12 09:00")
    assert "Удалить свободный слот?" in coordinator.last_text()
    await coordinator.click("⬅️ Нет, назад")
    assert len(await slots_in_db(harness)) == 2
    await coordinator.click("🟢 01.12 09:00")
    await coordinator.click("🗑 Да, удалить слот")
    assert "Слот удалён: 01.12.2026 09:00" in coordinator.last_text()
    assert [s for s, _, _ in await slots_in_db(harness)] == [
        datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
    ]
    await coordinator.click("⬅️ К списку слотов")
    assert "09:00" not in coordinator.last_text() and "09:30" in coordinator.last_text()


async def book(h: Harness, user: FakeUser, slot_start: datetime) -> tuple[int, int]:
    """A live duty booking of the slot starting then: (consultation id, patient id)."""
    async with h.services.sessions.begin() as session:
        patient = (
            await session.scalars(select(Patient).where(Patient.telegram_id == user.user_id))
        ).one()
        slot = (
            await session.scalars(select(DutySlot).where(DutySlot.starts_at == slot_start))
        ).one()
        consultation = Consultation(
            patient_id=patient.id,
            doctor_id=slot.doctor_id,
            slot_id=slot.id,
            starts_at=slot.starts_at,
            duration_minutes=slot.duration_minutes,
            video_url="https://meet.jit.si/oblako-test",
            status="scheduled",
            created_at=h.clock(),
        )
        session.add(consultation)
        await session.flush()
        return consultation.id, patient.id


async def test_removing_a_booked_slot_cancels_the_booking_and_tells_the_patient(
    harness: Harness, coordinator: FakeUser, user: FakeUser
) -> None:
    doctor = await add_doctor(harness)
    await make_slots(harness, doctor, date(2026, 12, 1), "09:00", "10:00")
    await register(user)  # Irkutsk, Moscow+5
    first = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    consultation_id, patient_id = await book(harness, user, first)
    await open_slots(coordinator)
    assert f"01.12.2026 09:00 (Europe/Moscow), 30 мин — занят: пациент №{patient_id}" in (
        coordinator.last_text()
    )
    await coordinator.click(f"🔴 01.12 09:00 · #{patient_id}")
    question = coordinator.last_text()
    assert f"записан пациент №{patient_id}" in question and "будет отменена" in question
    assert "🗑 Удалить и отменить запись пациента" in flat(coordinator.inline_buttons())
    await coordinator.click("🗑 Удалить и отменить запись пациента")
    assert f"Запись пациента №{patient_id} отменена" in coordinator.last_text()

    async with harness.services.sessions() as session:
        consultation = await session.get(Consultation, consultation_id)
        assert consultation is not None
        assert consultation.status == "cancelled"
        assert consultation.cancel_reason == "slot_removed"
        assert consultation.cancelled_at == harness.clock()
        assert consultation.slot_id is None
    assert [s for s, _, _ in await slots_in_db(harness)] == [
        datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
    ]

    before = len(user.messages())
    assert await harness.deliver() == 1
    assert len(user.messages()) == before + 1
    notice = user.last_text()
    assert DOCTOR in notice and "отменён" in notice
    assert "01.12.2026 14:00 (Asia/Irkutsk)" in notice  # in the patient's own zone
    assert button_data(user, "🗓 Выбрать другое время") == (
        DutyCb(action=DutyAction.START, doctor=doctor).pack()
    )
    assert await harness.deliver() == 0  # told once


async def test_a_slot_booked_after_the_question_is_not_removed_silently(
    harness: Harness, coordinator: FakeUser, user: FakeUser
) -> None:
    doctor = await add_doctor(harness)
    await make_slots(harness, doctor, date(2026, 12, 1), "09:00", "09:30")
    await register(user)
    await open_slots(coordinator)
    await coordinator.click("🟢 01.12 09:00")
    assert "Удалить свободный слот?" in coordinator.last_text()
    consultation_id, patient_id = await book(harness, user, datetime(2026, 12, 1, 6, tzinfo=UTC))
    await coordinator.click("🗑 Да, удалить слот")
    answer = coordinator.last_callback_answer()
    assert answer is not None and "только что записался" in answer and answer.show_alert
    assert f"записан пациент №{patient_id}" in coordinator.last_text()  # asked again
    assert len(await slots_in_db(harness)) == 1
    async with harness.services.sessions() as session:
        consultation = await session.get(Consultation, consultation_id)
        assert consultation is not None and consultation.status == "scheduled"
    assert await harness.deliver() == 0


async def test_doctor_card_deactivate_and_activate(harness: Harness, coordinator: FakeUser) -> None:
    doctor = await add_doctor(harness)
    await make_slots(harness, doctor, date(2026, 12, 1), "09:00", "10:00")
    await coordinator.send("/schedule")
    await coordinator.click("👩‍⚕️ Дежурные врачи")
    await coordinator.click(re.compile(f"^{DOCTOR}"))
    card = coordinator.last_text()
    assert "принимает записи" in card and "Будущих слотов: 2, из них занято: 0" in card
    await coordinator.click("🚫 Отключить врача")
    await coordinator.click("🚫 Да, отключить")
    assert "отключён" in coordinator.last_text()
    assert await harness.services.booking.doctors("cardiology") == []
    await coordinator.click("✅ Снова включить врача")
    assert "принимает записи" in coordinator.last_text()
    assert [d.id for d in await harness.services.booking.doctors("cardiology")] == [doctor]

    # the slots, ten to a page
    await make_slots(harness, doctor, date(2026, 12, 2), "09:00", "14:00")
    await coordinator.click("📋 Слоты врача")
    assert "всего 12, страница 1 из 2" in coordinator.last_text()
    assert "02.12.2026 13:00" not in coordinator.last_text()
    await coordinator.click("▶️")
    assert "страница 2 из 2" in coordinator.last_text()
    assert "02.12.2026 13:30 (Europe/Moscow), 30 мин — свободен" in coordinator.last_text()


async def test_the_coordinators_doctor_lists_come_in_pages(
    harness: Harness, coordinator: FakeUser
) -> None:
    async with harness.services.sessions.begin() as session:
        for number in range(25):
            session.add(
                DutyDoctor(
                    display_name=f"Врач Номер{number:02d}",
                    specialty="cardiology",
                    created_at=harness.clock(),
                )
            )
    await coordinator.send("/schedule")
    menu = coordinator.last_message().message_id
    for button in ("👩‍⚕️ Дежурные врачи", "📋 Слоты: просмотр и удаление", "🗓 Создать слоты"):
        await coordinator.click(button, message_id=menu)
        shown = coordinator.last_message()
        names = [b for b in flat(coordinator.inline_buttons(shown)) if "Врач Номер" in b]
        assert len(names) == 10 and "1/3" in flat(coordinator.inline_buttons(shown)), button
        await coordinator.click("▶️", message_id=shown.message_id)
        names = [b for b in flat(coordinator.inline_buttons(shown)) if "Врач Номер" in b]
        assert "Врач Номер10" in names[0], button
        await coordinator.send("/schedule")
        menu = coordinator.last_message().message_id


async def test_deactivating_an_already_inactive_doctor_shows_the_card_as_it_is(
    harness: Harness, coordinator: FakeUser
) -> None:
    async with harness.services.sessions.begin() as session:
        session.add(
            DutyDoctor(
                display_name="Анна Сердцева", specialty="cardiology", created_at=harness.clock()
            )
        )
    await coordinator.send("/schedule")
    await coordinator.click("👩‍⚕️ Дежурные врачи")
    await coordinator.click(re.compile("Анна Сердцева"))
    old_card = coordinator.last_message()
    [(doctor_id,)] = await harness.rows("SELECT id FROM duty_doctors")
    await harness.services.schedule.set_active(doctor_id, False)  # another coordinator did it
    await coordinator.click("🚫 Отключить врача", message_id=old_card.message_id)
    buttons = flat(coordinator.inline_buttons(old_card.message_id))
    assert "🚫 Да, отключить" not in buttons and "✅ Снова включить врача" in buttons
