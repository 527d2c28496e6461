"""Referrals of attending doctors, end to end against the fake Bot API: the coordinator's
template and import (xlsx and csv, bad rows, repeats, progress), personal links and their
activation by the patient's contact, the application doctors see, /relink, erasure."""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiogram.utils.i18n import I18n
from openpyxl import Workbook, load_workbook

from bot.catalog import Catalog
from bot.handlers import referrals as referral_handlers
from bot.referral_sheets import ReportWriter
from fakegram.client import FakeGroup, FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import Harness
from tests.helpers import register
from tests.test_documents import pdf

HEADERS = [
    "ФИО пациента",
    "Дата рождения",
    "Телефон",
    "Регион",
    "Центр",
    "Группа заболеваний",
    "Диагноз",
    "Направившая медицинская организация",
    "Направивший врач",
    "Комментарий",
]
ORG = "ОГБУЗ «Иркутская областная клиническая больница»"
DOCTOR = "Кузнецова Ирина Львовна"
PATIENT_PHONE = "+79149876501"


def row(
    name: str = "Сидорова Анна Павловна",
    born: str = "12.04.1975",
    phone: str = "8 914 987-65-01",
    region: str = "Иркутская обл.",
    center: str = "Центр Бакулева",
    group: str = "ишемическая болезнь сердца",
    diagnosis: str = "ИБС, стенокардия напряжения II ФК",
    org: str = ORG,
    doctor: str = DOCTOR,
    comment: str = "Одышка при ходьбе",
) -> list[Any]:
    return [name, born, phone, region, center, group, diagnosis, org, doctor, comment]


def xlsx(rows: Sequence[Sequence[Any]], headers: Sequence[str] = HEADERS) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(headers))
    for values in rows:
        sheet.append(list(values))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_bytes(rows: Sequence[Sequence[Any]], encoding: str = "utf-8", sep: str = ";") -> bytes:
    lines = [sep.join(HEADERS)] + [sep.join(str(v) for v in values) for values in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def read_report(data: bytes) -> list[list[Any]]:
    sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    return [list(values) for values in sheet.iter_rows(values_only=True)]


def payload_of(link: str) -> str:
    found = re.search(r"\?start=(ref_[\w-]+)$", link)
    assert found, link
    return found.group(1)


_staff_chats = itertools.count(1)


def own_staff_chats(catalog: Catalog) -> Catalog:
    """Staff chats no other test uses (this module's own range of chat ids)."""
    centers = tuple(
        dataclasses.replace(c, staff_chat_id=-1003000000000 - next(_staff_chats))
        for c in catalog.centers
    )
    return dataclasses.replace(catalog, centers=centers)


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
        own_staff_chats(catalog),
        database_url=database_url,
        coordinator_ids=frozenset({coordinator.user_id}),
    )
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


@pytest.fixture
def patient(make_user: Callable[..., FakeUser]) -> FakeUser:
    return make_user(first_name="Анна", phone_number=PATIENT_PHONE)


async def upload(coordinator: FakeUser, data: bytes, name: str = "list.xlsx") -> list[list[Any]]:
    """Send a table; the report's rows (header first), or [] when no report came."""
    before = len(coordinator.files_received())
    await coordinator.send_document(data, name, mime_type="application/octet-stream")
    files = coordinator.files_received()
    return read_report(files[-1].data) if len(files) > before else []


async def referral_count(h: Harness) -> int:
    return int((await h.rows("SELECT count(*) FROM referrals"))[0][0])


# --- the coordinator's side ----------------------------------------------------------------------


async def test_template_has_the_columns_explanations_and_allowed_values(
    harness: Harness, coordinator: FakeUser
) -> None:
    await coordinator.send("/template")
    file = coordinator.files_received()[-1]
    assert file.file_name is not None and file.file_name.endswith(".xlsx")
    assert "Заполните лист «Пациенты»" in (file.caption or "")
    workbook = load_workbook(io.BytesIO(file.data), read_only=True)
    assert workbook.sheetnames == ["Пациенты", "Пояснения", "Справочники"]
    first = next(workbook["Пациенты"].iter_rows(values_only=True))
    assert list(first) == HEADERS
    explained = [r[0] for r in workbook["Пояснения"].iter_rows(min_row=2, values_only=True)]
    assert explained == HEADERS
    values = " ".join(
        str(v) for r in workbook["Справочники"].iter_rows(values_only=True) for v in r if v
    )
    for allowed in ("Иркутская область", "НМИЦ ССХ им. А.Н. Бакулева", "Кардиомиопатии"):
        assert allowed in values


async def test_only_coordinators_have_the_commands(
    harness: Harness, user: FakeUser, make_user: Callable[..., FakeUser]
) -> None:
    await register(user)
    for command in ("/template", "/relink 1", "/import"):
        await user.send(command)
        assert "Не понял сообщение" in user.last_text()
        assert user.files_received() == []
    stranger = make_user()
    await stranger.send("/template")
    assert "Сначала нужно зарегистрироваться" in stranger.last_text()
    assert stranger.files_received() == []


async def test_import_reports_every_row_and_repeats_create_nothing(
    harness: Harness, coordinator: FakeUser
) -> None:
    rows = [
        row(),
        row("Петров Иван", "31.02.1980", "+79149876502"),  # impossible date
        row("Орлов Пётр Ильич", "01.01.1990", "+7 914 ABC-65-03"),  # letters in the phone
        row("Лебедева Ольга", "02.02.1992", "+79149876504", region="Нарния"),
        row(
            "Зуева Нина",
            "03.03.1993",
            "+79149876505",
            center="Центр Кулакова",
            group="патология  молочной железы",
            comment="",
        ),
        row("  сидорова   анна павловна ", "1975-04-12", "+7 (914) 987-65-01"),  # same person
        ["", "", "", "", "", "", "", "", "", ""],  # an empty line is skipped
        row("Козлов Игорь", "04.04.1984", "", doctor=""),  # no phone
    ]
    report = await upload(coordinator, xlsx(rows))
    text = coordinator.messages()[-2].text or ""
    assert "Создано направлений: 2" in text
    assert "Повторов" in text and ": 1" in text
    assert "Отклонено: 4" in text
    assert report[0][:3] == ["Строка", "ФИО пациента", "Статус"]
    by_line = {r[0]: r for r in report[1:]}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 9]
    assert by_line[2][2] == "создано" and by_line[2][4].startswith("https://t.me/")
    assert by_line[2][1] == "Сидорова Анна Павловна"
    assert by_line[3][2] == "отклонено" and "такой даты не бывает" in by_line[3][3]
    assert "это не номер телефона" in by_line[4][3]
    assert "регион не найден" in by_line[5][3]
    assert by_line[6][2] == "создано"
    assert by_line[7][2] == "повтор" and "выше в этом файле" in by_line[7][3]
    assert not by_line[7][4]  # no second link for the same person
    assert "не заполнено: «Телефон»" in by_line[9][3]
    assert await referral_count(harness) == 2
    # the code is stored only as a hash
    code = payload_of(by_line[2][4]).removeprefix("ref_")
    assert code not in await harness.dump()

    again = await upload(coordinator, xlsx(rows))
    assert "Создано направлений: 0" in (coordinator.messages()[-2].text or "")
    assert [r[2] for r in again[1:]].count("создано") == 0
    assert await referral_count(harness) == 2


async def test_csv_in_windows_1251_with_semicolons_and_utf8_with_commas(
    harness: Harness, coordinator: FakeUser
) -> None:
    report = await upload(coordinator, csv_bytes([row()], "cp1251"), "list.csv")
    assert report[1][2] == "создано"
    second = row(
        "Зуева Нина Ивановна", "03.03.1993", "+79149876505", group="врождённые пороки сердца"
    )
    report = await upload(coordinator, csv_bytes([second], "utf-8-sig", ","), "list.txt")
    assert report[1][2] == "создано"
    assert await referral_count(harness) == 2


async def test_files_that_cannot_be_imported(harness: Harness, coordinator: FakeUser) -> None:
    assert await upload(coordinator, pdf("not a table"), "list.xlsx") == []
    assert "Это не таблица" in coordinator.last_text()
    assert await upload(coordinator, b"PK\x03\x04broken zip", "list.xlsx") == []
    assert "Это не таблица" in coordinator.last_text()

    wrong = xlsx([row()], headers=["Пациент", "ДР", "Тел.", "Регион", "Центр"])
    assert await upload(coordinator, wrong, "list.xlsx") == []
    answer = coordinator.last_text()
    assert "Не нашёл нужных столбцов: ФИО пациента, Дата рождения, Телефон" in answer
    assert "Направившая медицинская организация" in answer  # the expected headers are named

    assert await upload(coordinator, b"", "empty.csv") == []
    assert "нет ни одной строки" in coordinator.last_text()
    assert await upload(coordinator, xlsx([]), "empty.xlsx") == []
    assert "нет ни одной строки" in coordinator.last_text()
    assert await referral_count(harness) == 0


async def test_progress_is_one_message_edited(
    harness: Harness, coordinator: FakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(referral_handlers, "PROGRESS_EVERY_SECONDS", 0.0)
    rows = [
        row(f"Пациент Номер{chr(1072 + i % 30)}", "01.01.1980", f"+7914{i:07d}")
        for i in range(1200)
    ]
    before = len(harness.fake.calls("sendMessage", coordinator.user_id))
    report = await upload(coordinator, csv_bytes(rows), "big.csv")
    assert len(report) == 1201
    edits = [
        c.params.get("text", "") for c in harness.fake.calls("editMessageText", coordinator.user_id)
    ]
    assert edits[:2] == [
        "⏳ Обработано строк: 500 из ~1200…",
        "⏳ Обработано строк: 1000 из ~1200…",
    ]
    assert "Создано направлений: <b>1200</b>" in edits[-1]
    # one status message, edited; then the report file
    assert len(harness.fake.calls("sendMessage", coordinator.user_id)) == before + 1


async def test_ten_thousand_rows_import_within_the_issue_bound(
    harness: Harness, i18n: I18n
) -> None:
    rows = [row("Пациент Тестовый", "01.01.1980", f"+7914{i:07d}") for i in range(10_000)]
    data = csv_bytes(rows)
    with i18n.context(), i18n.use_locale("ru"):
        writer = ReportWriter("oblako_bot")
        started = time.perf_counter()
        summary = await harness.services.referrals.import_table(data, 1, writer)
        elapsed = time.perf_counter() - started
        report = read_report(writer.finish())
    assert summary.created == 10_000 and summary.rejected == 0
    assert len(report) == 10_001
    assert len({r[4] for r in report[1:]}) == 10_000  # every link is different
    assert elapsed < 60, elapsed


# --- the patient's side --------------------------------------------------------------------------


async def imported_link(coordinator: FakeUser, *rows: list[Any]) -> list[list[Any]]:
    report = await upload(coordinator, xlsx(list(rows) or [row()]))
    return report[1:]


async def test_referred_patient_activates_uploads_and_doctors_see_it(
    harness: Harness, coordinator: FakeUser, patient: FakeUser, make_user: Any
) -> None:
    center = harness.catalog.center("bakulev")
    assert center is not None
    group = FakeGroup(harness.fake, center.staff_chat_id, "НМИЦ ССХ — заявки", is_forum=True)
    doctor = make_user(first_name="Пётр", last_name="Врачев")
    group.add_member(doctor)
    [line] = await imported_link(coordinator)
    payload = payload_of(line[4])

    await patient.start(payload)
    assert "персональная ссылка" in patient.messages()[-2].text
    assert "Сидорова" not in " ".join(m.text or "" for m in patient.messages())  # not yet
    await patient.click("✅ Согласен")
    assert "номер вашего Telegram должен совпасть" in patient.last_text()
    await patient.press("📱 Отправить мой номер")
    summary = patient.last_text()
    assert "Сидорова Анна Павловна" in summary and "12.04.1975" in summary
    assert "Иркутская область" in summary
    # a correction through the usual summary steps
    await patient.click("✏️ ФИО")
    await patient.send("Сидорова Анна Петровна")
    assert "Сидорова Анна Петровна" in patient.last_text()
    await patient.click("✅ Всё верно")
    assert "Осталось загрузить документы" in " ".join(m.text or "" for m in patient.messages()[-3:])
    assert "❌" in patient.last_text()  # the center's checklist

    await patient.send_document(pdf("discharge"), "vypiska.pdf", caption="выписка")
    await patient.send_document(pdf("ecg"), "ecg.pdf", caption="ЭКГ")
    await harness.settle()
    await patient.click("🔄 Обновить")
    await patient.click("➡️ Отправить без них (добавлю позже)")
    await patient.click("✅ Отправить заявку")
    assert "Заявка №" in patient.last_text()
    await harness.deliver()

    card = next(m for m in group.messages() if "Заявка №" in (m.text or ""))
    assert f"По направлению: {ORG}, врач" in (card.text or "")
    assert DOCTOR in (card.text or "")
    assert "ИБС, стенокардия напряжения II ФК" in (card.text or "")
    assert "Сидорова Анна Петровна" in (card.text or "")
    rows = await harness.rows("SELECT status, patient_id FROM referrals")
    assert rows[0][0] == "activated" and rows[0][1] is not None
    assert (await harness.rows("SELECT count(*) FROM patients"))[0][0] == 1

    await patient.start(payload)  # the link is single-use
    assert "уже использована" in patient.last_text()


async def test_expired_and_unknown_links(
    harness: Harness, coordinator: FakeUser, patient: FakeUser
) -> None:
    [line] = await imported_link(coordinator)
    harness.clock.advance(days=31)
    await patient.start(payload_of(line[4]))
    assert "Срок действия ссылки истёк" in patient.last_text()
    await patient.start("ref_" + "A" * 32)
    assert "ссылка недействительна" in patient.last_text()
    await patient.start()  # the normal registration still starts
    assert "Согласие" in patient.last_text()


async def test_wrong_phone_is_refused_and_the_coordinator_relinks(
    harness: Harness, coordinator: FakeUser, make_user: Callable[..., FakeUser]
) -> None:
    [line] = await imported_link(coordinator)
    someone = make_user(first_name="Анна", phone_number="+79140000000")
    await someone.start(payload_of(line[4]))
    await someone.click("✅ Согласен")
    await someone.send_contact(user_id=someone.user_id)
    assert "не совпадает с номером в направлении" in someone.last_text()
    await someone.send_contact("+79149876501", user_id=None)  # a forged card is not enough
    assert (await harness.rows("SELECT count(*) FROM patients"))[0][0] == 0

    await coordinator.send(f"/relink {line[5]} +7 914 000-00-00")
    answer = coordinator.last_text()
    assert (
        "Новая ссылка для направления" in answer and "Прежняя ссылка больше не действует" in answer
    )
    new_payload = payload_of(answer.split("\n")[1])
    await someone.start(payload_of(line[4]))
    assert "ссылка недействительна" in someone.last_text()
    await someone.start(new_payload)
    await someone.click("✅ Согласен")
    await someone.press("📱 Отправить мой номер")
    assert "Сидорова Анна Павловна" in someone.last_text()

    await coordinator.send("/relink")
    assert "/relink 123" in coordinator.last_text()
    await coordinator.send("/relink 99999")
    assert "Направления с таким номером нет" in coordinator.last_text()


async def test_a_registered_patient_gets_the_referral_added(
    harness: Harness, coordinator: FakeUser, patient: FakeUser
) -> None:
    await register(patient, name="Сидорова Анна Павловна", birth="12.04.1975", phone=PATIENT_PHONE)
    [line] = await imported_link(coordinator)
    assert line[2] == "повтор" and "уже зарегистрирован" in line[3]
    await patient.start(payload_of(line[4]))
    assert "подтвердите, что это вы" in patient.messages()[-2].text
    assert "Отправить мой номер" in str(patient.reply_keyboard())  # no consent asked again
    await patient.press("📱 Отправить мой номер")
    assert "Направление добавлено" in " ".join(m.text or "" for m in patient.messages()[-4:])
    await patient.click("➡️ Отправить без них (добавлю позже)")
    await patient.click("✅ Отправить заявку")
    assert (await harness.rows("SELECT count(*) FROM patients"))[0][0] == 1
    assert (await harness.rows("SELECT referral_id FROM applications"))[0][0] == line[5]


async def test_erasure_removes_the_referral(
    harness: Harness, coordinator: FakeUser, patient: FakeUser, make_user: Any
) -> None:
    first, _second = await imported_link(
        coordinator, row(), row("Зуева Нина Ивановна", "03.03.1993", "+79149876505")
    )
    await patient.start(payload_of(first[4]))
    await patient.click("✅ Согласен")
    await patient.press("📱 Отправить мой номер")
    await patient.click("✅ Всё верно")
    # the second person registered by themselves, never opening their link
    nina = make_user(first_name="Нина", phone_number="+79149876505")
    await register(nina, name="Зуева Нина Ивановна", birth="03.03.1993", phone="+79149876505")
    for person in (patient, nina):
        await person.send("/profile")
        await person.click("🗑 Удалить мои данные")
        await person.click("Да, удалить")
        await person.click("🗑 Удалить навсегда")
    dump = await harness.dump()
    for secret in ("Сидорова", "9876501", "1975-04-12", "Зуева", "9876505", ORG, DOCTOR):
        assert secret not in dump, secret
    assert await referral_count(harness) == 0


def without_dimension(data: bytes) -> bytes:
    """The workbook as streaming writers make it: no <dimension> in the sheet."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                body = re.sub(rb"<dimension[^>]*/>", b"", body)
            target.writestr(item, body)
    return out.getvalue()


def big_sheet(count: int) -> bytes:
    rows = [
        row(f"Пациент Номер{chr(1072 + i % 30)}", "01.01.1980", f"+7914{i:07d}")
        for i in range(count)
    ]
    data = without_dimension(xlsx(rows))
    assert b"<dimension" not in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    return data


def progress_edits(h: Harness, coordinator: FakeUser) -> list[str]:
    texts = [
        str(c.params.get("text", "")) for c in h.fake.calls("editMessageText", coordinator.user_id)
    ]
    return [t for t in texts if t.startswith("⏳")]


async def test_progress_of_a_workbook_without_dimension_says_no_total(
    harness: Harness, coordinator: FakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(referral_handlers, "PROGRESS_EVERY_SECONDS", 0.0)
    report = await upload(coordinator, big_sheet(1200))
    assert len(report) == 1201
    assert progress_edits(harness, coordinator) == [
        "⏳ Обработано строк: 500…",
        "⏳ Обработано строк: 1000…",
    ]


async def test_progress_edits_keep_their_limit_whatever_the_workbook(
    harness: Harness, coordinator: FakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workbook that does not say its size: still no edit before the limit has passed."""
    monkeypatch.setattr(referral_handlers, "PROGRESS_EVERY_SECONDS", 3600.0)
    report = await upload(coordinator, big_sheet(1200))
    assert len(report) == 1201
    assert progress_edits(harness, coordinator) == []


async def test_relink_with_a_huge_or_odd_number_gets_the_usage(
    harness: Harness, coordinator: FakeUser, caplog: pytest.LogCaptureFixture
) -> None:
    for command in (f"/relink {2**63}", "/relink ²", "/relink #99999999999"):
        await coordinator.send(command)
        assert "Напишите номер направления" in coordinator.last_text(), command
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
