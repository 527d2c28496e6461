"""Coordinators' /stats and /export against the fake Bot API: the numbers a coordinator reads,
the .xlsx they get (and what is not in it), and every bad date range."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiogram.utils.i18n import I18n
from openpyxl import load_workbook

from bot.catalog import Catalog
from bot.fsm.states import ExportForm
from bot.storage.models import Application, ApplicationEvent, Consultation
from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import Harness
from tests.helpers import state_of
from tests.test_broadcasts import IRKUTSK, MOSCOW, add_patients, coordinator_harness, patient_id

DIAGNOSIS = "Недостаточность митрального клапана"
COMPLAINTS = "Одышка при подъёме на второй этаж"


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
    h = coordinator_harness(fake, tmp_path, i18n, catalog, database_url, coordinator)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


def at(day: int, hour: int = 10, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


async def fill(h: Harness, make_user: Callable[..., FakeUser]) -> None:
    """Now is Wed 25.11.2026 09:00 UTC. Six applications, four consultations."""
    irkutsk = await add_patients(h, make_user, 3, region=IRKUTSK)
    moscow = await add_patients(h, make_user, 2, region=MOSCOW)
    bakulev, kulakov = h.catalog.centers[0], h.catalog.centers[1]
    # (patient, center, status, submitted, decision event)
    plan = [
        (irkutsk[0], bakulev, "time_assigned", at(20), ("time_assigned", at(21))),  # 24 h
        (irkutsk[1], bakulev, "declined", at(22), ("declined", at(22, 16))),  # 6 h
        (moscow[0], kulakov, "invited", at(21), ("invited", at(24))),  # 72 h
        (irkutsk[2], kulakov, "submitted", at(20), None),  # overdue
        (moscow[1], bakulev, "documents_requested", at(21, 12), None),  # overdue
        (moscow[1], kulakov, "submitted", at(24), None),  # one day: not yet
        (irkutsk[0], kulakov, "completed", at(15, month=10), ("time_assigned", at(16, 10, 10))),
    ]
    async with h.services.sessions.begin() as session:
        for user, center, status, submitted, decision in plan:
            application = Application(
                patient_id=await patient_id(h, user),
                center_code=center.code,
                open_center=None,
                disease_group_code=center.disease_groups[0].code,
                diagnosis=DIAGNOSIS,
                complaints=COMPLAINTS,
                status=status,
                staff_chat_id=center.staff_chat_id,
                created_at=submitted,
                updated_at=submitted,
            )
            session.add(application)
            await session.flush()
            session.add(
                ApplicationEvent(application_id=application.id, status="submitted", at=submitted)
            )
            if decision is not None:
                session.add(
                    ApplicationEvent(
                        application_id=application.id, status=decision[0], at=decision[1]
                    )
                )
        first_id = await patient_id(h, irkutsk[0])
        for starts_at, status in (
            (at(24), "done"),
            (at(23), "no_show"),
            (at(27), "scheduled"),
            (at(16), "no_show"),  # last week
        ):
            session.add(
                Consultation(
                    patient_id=first_id,
                    starts_at=starts_at,
                    video_url="https://meet.example/x",
                    status=status,
                    created_at=at(1),
                )
            )


async def test_stats_show_what_a_coordinator_needs(
    harness: Harness, coordinator: FakeUser, make_user: Callable[..., FakeUser]
) -> None:
    await fill(harness, make_user)
    await coordinator.send("/stats")
    text = coordinator.last_text()
    assert "Пациентов: 5" in text
    assert "Иркутская область: 3" in text
    assert "Москва: 2" in text
    bakulev = harness.catalog.centers[0].short_name.ru
    assert f"{bakulev} (3): " in text
    assert "назначено время: 1" in text and "запрошены документы: 1" in text
    # 6 h, 24 h, 72 h this month and 24 h in October
    assert "Медиана времени до решения: 24.0 ч (решений: 4)" in text
    assert "Просрочено (нет решения больше 3 дней): 2" in text
    assert "Консультации на этой неделе (с 23.11.2026): 3" in text
    assert "неявка: 1" in text
    assert "Неявки за последние 30 дней: 2" in text
    assert DIAGNOSIS not in text


async def test_export_asks_for_a_range_and_sends_an_xlsx_without_personal_details(
    harness: Harness, coordinator: FakeUser, make_user: Callable[..., FakeUser]
) -> None:
    await fill(harness, make_user)
    await coordinator.send("/export")
    assert "За какой период" in coordinator.last_text()

    for typed, answer in (
        ("прошлую неделю", "Не получилось прочитать диапазон дат"),
        ("30.11.2026-01.11.2026", "Конец периода раньше начала"),
        ("31.02.2026-01.03.2026", "Такой даты нет в календаре"),
        ("01.01.2025-01.11.2026", "Период слишком длинный"),
    ):
        await coordinator.send(typed)
        assert answer in coordinator.last_text(), typed
        assert await state_of(harness, coordinator) == ExportForm.period.state
    await coordinator.send_sticker()
    assert "Напишите диапазон дат текстом" in coordinator.last_text()

    await coordinator.send("01.11.2026-30.11.2026")
    assert await state_of(harness, coordinator) is None
    (sent,) = coordinator.files_received()
    assert sent.file_name == "applications_20261101-20261130.xlsx"
    assert "Заявки за 01.11.2026–30.11.2026: 6" in (sent.caption or "")
    sheet = load_workbook(io.BytesIO(sent.data)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:6] == (
        "Заявка №",
        "Пациент (внутр. №)",
        "Подана (МСК)",
        "Центр",
        "Группа заболеваний",
        "Статус",
    )
    assert len(rows) == 7
    first = rows[1]
    assert first[2] == datetime(2026, 11, 20, 13, 0)  # 10:00 UTC is 13:00 in Moscow
    assert first[5] == "назначено время"
    assert first[6] == datetime(2026, 11, 21, 13, 0)
    assert "Иркутская область" in first
    everything = " ".join(str(cell) for row in rows for cell in row)
    for private in (DIAGNOSIS, COMPLAINTS, "Пациентова", "+7999"):
        assert private not in everything

    await coordinator.send("/export")
    await coordinator.click("Прошлый месяц")
    (_, october) = coordinator.files_received()
    assert "Заявки за 01.10.2026–31.10.2026: 1" in (october.caption or "")
    await coordinator.send("/export")
    await coordinator.send("01.09.2026-30.09.2026")
    assert "За период 01.09.2026–30.09.2026 заявок нет" in coordinator.last_text()
    await coordinator.send("/export")
    await coordinator.click("✖️ Отмена")
    assert "Выгрузка отменена" in coordinator.last_text()
    assert await state_of(harness, coordinator) is None


async def test_stats_with_nothing_yet(harness: Harness, coordinator: FakeUser) -> None:
    await coordinator.send("/stats")
    text = coordinator.last_text()
    assert "Пациентов: 0" in text
    assert "заявок пока нет" in text
    assert "Медиана времени до решения: — (решений: 0)" in text
    assert "Просрочено (нет решения больше 3 дней): 0" in text
