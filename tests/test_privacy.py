"""Medical-data privacy (issue 15): the audit trail (a row per action, in the action's own
transaction, ids only; /audit for coordinators; retention; pseudonyms at erasure), the patient's
own copy «📦 Мои данные», and pseudonymous Telegram ids in the logs."""

from __future__ import annotations

import io
import logging
import re
import secrets
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.logging_setup import configure_logging
from bot.pseudonyms import configure_log_ids, tg
from bot.services.applications import ApplicationService
from bot.storage.scrub import scrub
from fakegram.client import FakeGroup, FakeUser
from tests.conftest import Harness
from tests.helpers import NAME, PHONE, register
from tests.test_applications import staff, submitted
from tests.test_erasure import (
    ANSWER,
    COMMENT,
    DIAGNOSIS,
    LATER,
    QUESTION,
    REFERRED,
    REFERRED_PHONE,
    START,
    Everything,
    erase_profile,
    everything,
    use_everything,
)

__all__ = ["everything", "staff"]  # fixtures shared with the modules they come from

CONCLUSION = "Показана имплантация кардиовертера-дефибриллятора."


async def audit_rows(h: Harness) -> list[Any]:
    return await h.rows(
        "SELECT actor, role, action, chat, patient, application_id, consultation_id, object_id,"
        " detail FROM audit_log ORDER BY id"
    )


def xlsx_rows(data: bytes) -> list[list[Any]]:
    sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    return [list(values) for values in sheet.iter_rows(values_only=True)]


async def doctor_works_the_card(it: Everything, doctor: FakeUser) -> None:
    """Every staff action on the referred patient's application no. 1."""
    h, patient, group = it.h, it.patient, it.staff
    await doctor.click_in_group(group, "👁 Взять на рассмотрение")
    await doctor.click_in_group(group, "📎 Документы пациента")
    await h.deliver()
    notices = [m for m in group.messages() if "по запросу врача" in (m.text or "")]
    assert len(notices) == 1
    assert group.files_received(thread_id=notices[0].message_thread_id)
    await doctor.click_in_group(group, "📎 Запросить документы")
    await doctor.click_in_group(group, "▫️ ЭКГ")
    await doctor.click_in_group(group, "✅ Готово")
    await doctor.send_in_group(group, "Нужна свежая ЭКГ")
    await h.deliver()
    await doctor.click_in_group(group, "🗓 Назначить дату и время")
    await doctor.send_in_group(group, "30.11 10:00")
    await doctor.click_in_group(group, "✅ Назначить")
    await h.deliver()
    await patient.click("🔁 Прошу другое время")
    await h.deliver()
    await doctor.click_in_group(group, "🗓 Назначить другое время")
    await doctor.send_in_group(group, "01.12 09:30")
    await doctor.click_in_group(group, "✅ Назначить")
    await h.deliver()
    await doctor.click_in_group(group, "📝 Заключение")
    await doctor.send_in_group(group, CONCLUSION)
    await h.deliver()
    assert CONCLUSION in patient.last_text()


async def test_every_action_leaves_one_audit_row_of_ids_and_audit_is_for_coordinators(
    everything: tuple[Harness, FakeUser], make_user: Any
) -> None:
    h, coordinator = everything
    it = await use_everything(h, coordinator, make_user)
    patient, group = it.patient, it.staff
    doctor = make_user(first_name="Борис", last_name="Кардиологов")
    group.add_member(doctor)
    await doctor_works_the_card(it, doctor)

    # a second and a third patient: one declined, one invited
    for decision, answer in (("✖️ Отклонить", "Вне профиля"), ("🏥 Пригласить", "Очно 3.12")):
        other = make_user(first_name="Другая")
        await submitted(other, h)
        await doctor.click_in_group(group, re.compile(re.escape(decision)))
        await doctor.send_in_group(group, answer)
        await h.deliver()

    # coordinators: a failing relink (the referral was used) leaves no row; export; schedule
    referral_id = (await h.rows("SELECT id FROM referrals"))[0][0]
    await coordinator.send(f"/relink {referral_id}")
    await coordinator.send("/export")
    await coordinator.click("Этот месяц")
    await coordinator.send("/schedule")
    await coordinator.click("👩‍⚕️ Дежурные врачи")
    await coordinator.click(re.compile("^Анна Сердцева"))
    await coordinator.click("🚫 Отключить врача")
    await coordinator.click("🚫 Да, отключить")

    # the duty doctors' heads-up of the booking ahead: its documents on a press
    duty = it.duty
    duty.add_member(doctor)
    h.clock.now = LATER - timedelta(minutes=10)
    await h.deliver()
    files_before = len(duty.files_received())
    await doctor.click_in_group(duty, "📎 Документы пациента")
    await h.deliver()
    assert len(duty.files_received()) > files_before
    assert "по запросу врача" in duty.last_text() or any(
        "по запросу врача" in (m.text or "") for m in duty.messages()
    )

    rows = await audit_rows(h)
    actions = Counter(row[2] for row in rows)
    assert actions == {
        "referrals_imported": 1,
        "consent_given": 3,  # by the referral link, and the two other patients
        "no_show_marked": 2,
        "broadcast_started": 1,
        "application_taken": 1,
        "documents_viewed": 2,  # the application's card and the duty consultation's heads-up
        "documents_requested": 1,
        "time_assigned": 1,
        "time_moved": 1,
        "conclusion_sent": 1,
        "application_declined": 1,
        "patient_invited": 1,
        "applications_exported": 1,
        "duty_doctor_active": 1,
    }, actions
    patient_id = (
        await h.rows("SELECT id FROM patients WHERE telegram_id = :t", t=patient.user_id)
    )[0][0]
    by_action = {row[2]: row for row in rows}
    viewed = by_action["documents_viewed"]  # the last one: on the duty heads-up
    assert (
        viewed[:5]
        == (str(doctor.user_id), "doctor", "documents_viewed", str(duty.chat_id), str(patient_id))
        and viewed[6]
        and viewed[5] is None
    )
    taken = by_action["application_taken"]
    assert taken[:6] == (
        str(doctor.user_id),
        "doctor",
        "application_taken",
        str(group.chat_id),
        str(patient_id),
        1,
    )
    consent = next(r for r in rows if r[2] == "consent_given" and r[0] == str(patient.user_id))
    assert consent[1:5] == ("patient", "consent_given", str(patient.user_id), str(patient_id))
    assert consent[8] == h.settings.consent_version
    assert by_action["broadcast_started"][:4] == (
        str(coordinator.user_id),
        "coordinator",
        "broadcast_started",
        str(coordinator.user_id),
    )
    assert by_action["no_show_marked"][1] == "doctor" and by_action["no_show_marked"][6]
    assert by_action["time_moved"][6] != by_action["time_assigned"][6]  # a new consultation

    # /audit: the coordinator gets the rows as an .xlsx of ids, never names or texts
    before = len(coordinator.files_received())
    await coordinator.send("/audit 01.11.2026-31.12.2026")
    [sheet] = coordinator.files_received()[before:]
    table = xlsx_rows(sheet.data)
    assert table[0][:4] == ["Когда (МСК)", "Кто (Telegram id)", "Роль", "Действие"]
    assert [r[3] for r in table[1:]] == [row[2] for row in rows]
    text = "\n".join(str(cell) for r in table for cell in r)
    for secret in (
        REFERRED,
        "Опарина",
        "9871234",
        "14.02.1958",
        "Дилатационная",
        COMMENT,
        NAME,
        PHONE,
        "Вне профиля",
        "Нужна свежая ЭКГ",
        CONCLUSION,
        "Анна",
        "Сердцева",
    ):
        assert secret not in text, secret
    assert (await audit_rows(h))[-1][:3] == (
        str(coordinator.user_id),
        "coordinator",
        "audit_exported",
    )
    await coordinator.send("/audit вчера")
    assert "/audit 01.11.2026-30.11.2026" in coordinator.last_text()

    # not a coordinator: the ordinary answers, no file
    files_before = len(patient.files_received())
    await patient.send("/audit 01.11.2026-30.11.2026")
    assert "Не понял сообщение" in patient.last_text()
    stranger = make_user()
    await stranger.send("/audit 01.11.2026-30.11.2026")
    assert "Сначала нужно зарегистрироваться" in stranger.last_text()
    await doctor.send_in_group(group, "/audit 01.11.2026-30.11.2026")
    assert len(patient.files_received()) == files_before
    assert stranger.files_received() == []
    assert not [f for f in group.files_received() if f.file_name and "audit" in f.file_name]

    # erasure: the rows stay, the patient's ids in them become one keyed pseudonym
    count = len(await audit_rows(h))
    await erase_profile(patient)
    after = await audit_rows(h)
    assert len(after) == count + 1 and after[-1][2] == "patient_erased"
    alias = after[-1][0]
    assert re.fullmatch(r"erased:[0-9a-f]{16}", alias)
    assert after[-1][3] == after[-1][4] == alias
    for row in after:
        assert str(patient.user_id) not in (row[0], row[3]), row
        assert row[4] != str(patient_id), row
    assert next(r for r in after if r[2] == "application_taken")[:5] == (
        str(doctor.user_id),
        "doctor",
        "application_taken",
        str(group.chat_id),
        alias,
    )
    mine = [r for r in after if alias in (r[0], r[3], r[4])]
    assert (
        len(mine)
        == sum(1 for r in rows if str(patient_id) == r[4] or r[0] == str(patient.user_id)) + 1
    )
    dump = await h.dump()
    assert str(patient.user_id) not in dump


async def test_a_failing_action_leaves_no_audit_row(
    harness: Harness,
    user: FakeUser,
    staff: tuple[FakeGroup, FakeUser, FakeUser],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    group, doctor, second = staff
    await submitted(user, harness)
    await doctor.click_in_group(group, "👁 Взять на рассмотрение")
    await second.click_in_group(group, "👁 Взять на рассмотрение", _card_id(group))  # too late

    def broken(*_args: Any) -> None:
        raise RuntimeError("the card could not be queued")

    # the decline fails after its audit row was added, in the same transaction
    monkeypatch.setattr(ApplicationService, "_refresh_card", broken)
    await doctor.click_in_group(group, "✖️ Отклонить")
    await doctor.send_in_group(group, "Вне профиля центра")
    assert "что-то пошло не так" in group.last_text()
    assert [row[2] for row in await audit_rows(harness)] == ["consent_given", "application_taken"]
    assert await harness.rows("SELECT status FROM applications") == [("under_review",)]


def _card_id(group: FakeGroup) -> int:
    return next(m.message_id for m in group.messages() if "Заявка №" in (m.text or ""))


async def test_audit_rows_are_kept_for_the_retention_period(
    harness: Harness, user: FakeUser
) -> None:
    assert harness.settings.audit_retention_days == 1826  # five years by default
    await register(user)
    harness.clock.advance(days=1825)
    await harness.services.retention.purge()
    assert [r[2] for r in await audit_rows(harness)] == ["consent_given"]
    harness.clock.advance(days=2)
    purged = await harness.services.retention.purge()
    assert purged.audit_rows == 1 and await audit_rows(harness) == []


# --- «📦 Мои данные» --------------------------------------------------------------------------


async def test_my_data_has_everything_of_the_patient_and_nothing_of_another(
    everything: tuple[Harness, FakeUser], make_user: Any
) -> None:
    h, coordinator = everything
    it = await use_everything(h, coordinator, make_user)
    patient = it.patient
    doctor = make_user(first_name="Борис", last_name="Кардиологов")
    it.staff.add_member(doctor)
    await doctor_works_the_card(it, doctor)
    other = make_user(first_name="Другая")
    await submitted(other, h)  # registered as NAME, with a diagnosis of her own

    await patient.send("/profile")
    await patient.click("📦 Мои данные")
    [copy] = patient.files_received()[-1:]
    assert copy.file_name and copy.file_name.endswith(".html")
    assert "Всё, что бот хранит о вас" in (patient.last_message().caption or "")
    html = copy.data.decode("utf-8")
    root = ET.fromstring(copy.data)  # noqa: S314 - our own output; well-formed
    text = " ".join(root.itertext())
    for expected in (
        REFERRED,
        "14.02.1958",
        "+7 914 987-12-34",
        "Иркутская область",
        "Asia/Irkutsk",
        "2026-11-01",  # the consent's version
        "Медицинская выписка",
        "Заявка №1",
        DIAGNOSIS,
        "подана",
        "запрошены документы",
        "назначено время",
        "Нужна свежая ЭКГ",
        "Анна Сердцева",  # the duty doctor
        f"{START + timedelta(hours=8):%d.%m.%Y %H:%M}",  # the first booking, Irkutsk time
        "неявка",
        "01.12.2026 14:30",  # the moved consultation: 09:30 in Moscow, 14:30 in Irkutsk
        CONCLUSION,
        COMMENT,  # the referral's comment
    ):
        assert expected in text, expected
    for foreign in (NAME, PHONE, "ИБС, стенокардия", "Давящие боли", "+7 914 987-65-43"):
        assert foreign not in html, foreign
    for never in ("vypiska_oparina", QUESTION, ANSWER):  # files are listed, not included
        assert never not in html
    assert (await audit_rows(h))[-1][2] == "data_exported"
    assert [f for f in patient.files_received() if f.file_name == "vypiska_oparina.pdf"] == []
    assert REFERRED_PHONE  # (the phone is shown formatted above)


# --- logs -----------------------------------------------------------------------------------------


@pytest.fixture
def pseudonymous_logs() -> Iterator[None]:
    yield
    configure_log_ids(secrets.token_bytes(32), plain=False)  # as before any configuration


async def test_debug_log_of_every_feature_has_no_raw_telegram_id(
    everything: tuple[Harness, FakeUser],
    make_user: Any,
    caplog: pytest.LogCaptureFixture,
    pseudonymous_logs: None,
) -> None:
    h, coordinator = everything
    configure_logging("DEBUG", pseudonym_key=h.settings.pseudonym_secret)  # as python -m bot
    with caplog.at_level(logging.DEBUG):
        it = await use_everything(h, coordinator, make_user, faults=True)
        h.fake.fail_next(  # the outbox logs the chat of a row it cannot deliver (the alerts)
            "sendMessage",
            error_code=400,
            description="Bad Request: chat not found",
            chat_id=coordinator.user_id,
            times=5,
        )
        doctor = make_user(first_name="Борис", last_name="Кардиологов")
        it.staff.add_member(doctor)
        await doctor_works_the_card(it, doctor)
        await coordinator.send("/relink 1")
        await coordinator.send("/audit 01.11.2026-30.11.2026")
        h.fake.fail_next(  # a direct answer refused: the error handler logs the update
            "*",
            error_code=403,
            description="Forbidden: bot was blocked by the user",
            chat_id=it.patient.user_id,
        )
        await it.patient.press("📋 Мои заявки")
        await erase_profile(it.patient)
        h.clock.advance(days=5)
        await h.deliver()
    formatter = logging.Formatter("%(name)s %(message)s")
    ours = [r for r in caplog.records if not r.name.startswith("fakegram")]
    text = "\n".join(formatter.format(r) for r in ours)
    assert "referral import by u:" in text and "broadcast 1 by u:" in text  # hashed ids
    assert re.search(r"outbox row \d+ to chat u:[0-9a-f]{12} failed", text)
    people = {it.patient.user_id, coordinator.user_id, doctor.user_id}
    people |= {
        int(actor)
        for (actor,) in await h.rows("SELECT actor FROM audit_log")
        if actor.isdigit() and int(actor)
    }  # the duty doctor who marked no-shows too
    assert len(people) >= 4
    for person in people:
        assert not re.search(rf"(?<!\d){person}(?!\d)", text), person

    configure_log_ids(h.settings.pseudonym_secret, plain=True)  # LOG_PLAIN_IDS=true
    assert str(tg(coordinator.user_id)) == str(coordinator.user_id)
    configure_log_ids(h.settings.pseudonym_secret, plain=False)
    assert str(tg(coordinator.user_id)).startswith("u:")
    assert str(tg(-1001234)) == "-1001234"  # group chats are not people


async def test_the_scrub_after_an_erasure_runs_on_this_backend(harness: Harness) -> None:
    """SQLite: the WAL checkpoint with truncation; PostgreSQL: VACUUM (outside a transaction)."""
    assert await scrub(harness.engine) is True
    if harness.engine.dialect.name == "sqlite":
        rows = await harness.rows("PRAGMA secure_delete")
        assert rows == [(1,)]


async def test_the_audit_table_refuses_any_change_but_a_pseudonym(
    harness: Harness, user: FakeUser
) -> None:
    async def execute(sql: str) -> None:
        async with harness.engine.begin() as conn:
            await conn.execute(text(sql))

    await register(user)
    for change in ("action = 'patient_erased'", "detail = 'x'", "actor = '1'", "at = NULL"):
        with pytest.raises(DBAPIError, match="append-only"):
            await execute(f"UPDATE audit_log SET {change}")  # noqa: S608 - test
    await execute("UPDATE audit_log SET patient = 'erased:abc', actor = 'erased:abc'")
    assert [r[0] for r in await audit_rows(harness)] == ["erased:abc"]
