"""Applications to the centers, end to end against the fake Bot API: the patient's dialogue,
the staff card in its forum topic, requests, time assignment, conclusions; races and
forgeries."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from bot.callbacks import AppAction, AppCb, StaffAction, StaffCb, TimeAnswer, TimeAnswerCb
from bot.fsm.states import ApplicationForm
from fakegram.client import FakeGroup, FakeUser
from tests.conftest import Harness
from tests.helpers import NAME, flat, register, state_of
from tests.test_documents import pdf, png


@pytest.fixture
def staff(harness: Harness, make_user: Any) -> tuple[FakeGroup, FakeUser, FakeUser]:
    """Bakulev's staff forum with two doctors."""
    center = harness.catalog.center("bakulev")
    assert center is not None
    group = FakeGroup(harness.fake, center.staff_chat_id, "НМИЦ ССХ — заявки", is_forum=True)
    first = make_user(first_name="Пётр", last_name="Врачев")
    second = make_user(first_name="Анна", last_name="Докторова")
    group.add_member(first)
    group.add_member(second)
    return group, first, second


async def apply(
    user: FakeUser, h: Harness, *, diagnosis: str = "ИБС, стенокардия напряжения"
) -> None:
    await user.press("📨 Заявка в центр")
    await user.click("НМИЦ ССХ им. А.Н. Бакулева")
    await user.click("Ишемическая болезнь сердца")
    await user.send(diagnosis)
    await user.send("Давящие боли за грудиной при ходьбе, около года")


async def submitted(user: FakeUser, h: Harness) -> None:
    await register(user)
    await user.send_document(pdf("discharge"), "vypiska.pdf", caption="выписка")
    await h.settle()
    await apply(user, h)
    await user.click("➡️ Отправить без них (добавлю позже)")
    await user.click("✅ Отправить заявку")
    await h.deliver()


def card(group: FakeGroup) -> Any:
    return next(m for m in group.messages() if "Заявка №" in (m.text or "") and m.inline_keyboard)


async def test_the_whole_path(harness: Harness, user: FakeUser, staff: Any) -> None:
    group, doctor, _second = staff
    await register(user)
    await user.send_document(pdf("discharge"), "vypiska.pdf", caption="выписка")
    await harness.settle()
    await apply(user, harness)
    checklist = user.last_text()
    assert "✅ Медицинская выписка" in checklist
    assert "❌ ЭКГ" in checklist and "❌ ЭХО КГ" in checklist
    assert "(при наличии)" in checklist
    await user.click("➡️ Отправить без них (добавлю позже)")
    summary = user.last_text()
    assert NAME in summary and "Возраст: 65" in summary and "Иркутская область" in summary
    assert "уйдёт без документов" in summary
    await user.click("✅ Отправить заявку")
    assert "Заявка №1 отправлена" in user.last_text() and "1–3 дней" in user.last_text()
    await harness.deliver()

    topics = group.topics()
    assert len(topics) == 1 and topics[0].name.startswith("Заявка №1")
    thread = topics[0].thread_id
    the_card = card(group)
    assert the_card.message_thread_id == thread
    assert NAME in the_card.text and "❌ ЭКГ" in the_card.text
    assert "Давящие боли" in the_card.text
    assert group.files_received(thread_id=thread), "the documents go with the card"

    # the doctor asks for the ECG
    await doctor.click_in_group(group, "📎 Запросить документы")
    await doctor.click_in_group(group, "▫️ ЭКГ")
    await doctor.click_in_group(group, "✅ Готово")
    await doctor.send_in_group(group, "Нужна свежая ЭКГ", thread_id=thread)
    await harness.deliver()
    assert "Врач просит загрузить документы: ЭКГ" in user.last_text()
    assert "Нужна свежая ЭКГ" in user.last_text()
    assert "запрошены документы" in card(group).text

    await user.click("📎 Загрузить документ")
    await user.send_photo(png(5), caption="ЭКГ")
    await harness.settle()
    await harness.deliver()
    assert "✅ ЭКГ" in card(group).text
    assert any("загрузил документ" in (m.text or "") for m in group.messages(thread_id=thread))

    # the doctor sets the time on the calendar
    await doctor.click_in_group(group, "🗓 Назначить дату и время")
    await doctor.click_in_group(group, "28")
    await doctor.click_in_group(group, "14:30")
    await doctor.click_in_group(group, "✅ Назначить")
    await harness.deliver()
    notice = user.last_text()
    assert "28.11.2026 19:30 (Asia/Irkutsk)" in notice and "28.11.2026 14:30" in notice
    assert "https://meet.jit.si/oblako-" in notice
    assert "назначено время" in card(group).text and "Пётр Врачев" in card(group).text
    await user.click("✅ Подтверждаю")
    await harness.deliver()
    assert any("подтвердил" in (m.text or "") for m in group.messages(thread_id=thread))

    # the conclusion
    await doctor.click_in_group(group, "📝 Заключение")
    await doctor.send_in_group(group, "Рекомендована коронарография.", thread_id=thread)
    await harness.deliver()
    assert "Рекомендована коронарография." in user.last_text()
    await user.press("📝 Мои заключения")
    await user.click(re.compile("Пётр Врачев"))
    assert "Рекомендована коронарография." in user.last_text()
    await user.press("📋 Мои заявки")
    await user.click(re.compile("^№1 "))
    timeline = user.last_text()
    for step in ("подана", "запрошены документы", "назначено время", "завершена"):
        assert step in timeline


async def test_diagnosis_over_the_limit(harness: Harness, user: FakeUser) -> None:
    await register(user)
    await user.press("📨 Заявка в центр")
    await user.click("НМИЦ ССХ им. А.Н. Бакулева")
    await user.click("Кардиомиопатии")
    await user.send("а" * 501)
    assert "501 символов, а можно не больше 500" in user.last_text()
    assert await state_of(harness, user) == ApplicationForm.diagnosis.state


async def test_second_open_application_to_the_same_center(
    harness: Harness, user: FakeUser, staff: Any
) -> None:
    await submitted(user, harness)
    await user.press("📨 Заявка в центр")
    await user.click("НМИЦ ССХ им. А.Н. Бакулева")
    assert "уже есть открытая заявка" in (user.last_callback_answer() or "")
    assert await state_of(harness, user) == ApplicationForm.center.state
    assert await harness.rows("SELECT count(*) FROM applications") == [(1,)]


async def test_staff_types_a_past_or_impossible_time(
    harness: Harness, user: FakeUser, staff: Any
) -> None:
    group, doctor, _ = staff
    await submitted(user, harness)
    await doctor.click_in_group(group, "🗓 Назначить дату и время")
    await doctor.send_in_group(group, "24.11 10:00")
    assert "уже прошло" in group.last_text()
    await doctor.send_in_group(group, "31.11 10:00")
    assert "Такой даты не бывает" in group.last_text()
    await doctor.send_in_group(group, "завтра")
    assert "Не понял время" in group.last_text()
    await doctor.send_in_group(group, "26.11 12:00")
    await doctor.click_in_group(group, "✅ Назначить")
    assert await harness.rows("SELECT count(*) FROM consultations") == [(1,)]


async def test_assigning_twice_and_concurrent_presses(
    harness: Harness, user: FakeUser, staff: Any
) -> None:
    group, first, second = staff
    await submitted(user, harness)
    # both take the card at the same moment: one wins
    await asyncio.gather(
        first.click_in_group(group, "👁 Взять на рассмотрение"),
        second.click_in_group(group, "👁 Взять на рассмотрение"),
    )
    answers = sorted(str(u.last_callback_answer()) for u in (first, second))
    assert answers[0].startswith("Заявка взята") or answers[1].startswith("Заявка взята")
    assert sum("Уже сделано" in a for a in answers) == 1
    # both prepare a time, then confirm at once: one consultation
    await first.click_in_group(group, "🗓 Назначить дату и время")
    await first.send_in_group(group, "27.11 10:00")
    first_confirm = group.last_message()
    await second.click_in_group(group, "🗓 Назначить дату и время")
    await second.send_in_group(group, "27.11 11:00")
    second_confirm = group.last_message()
    await asyncio.gather(
        first.click_in_group(group, "✅ Назначить", message_id=first_confirm.message_id),
        second.click_in_group(group, "✅ Назначить", message_id=second_confirm.message_id),
    )
    assert await harness.rows("SELECT count(*) FROM consultations") == [(1,)]
    losers = [u for u in (first, second) if "Уже сделано" in str(u.last_callback_answer())]
    assert len(losers) == 1


async def test_non_member_is_refused(
    harness: Harness, user: FakeUser, staff: Any, make_user: Any
) -> None:
    group, _doctor, _ = staff
    await submitted(user, harness)
    stranger = make_user(first_name="Посторонний")
    group.add_member(stranger, status="left")
    await stranger.click_in_group(group, "✖️ Отклонить")
    assert "Недостаточно прав" in str(stranger.last_callback_answer())
    assert await harness.rows("SELECT status FROM applications") == [("submitted",)]


async def test_buttons_of_a_withdrawn_application(
    harness: Harness, user: FakeUser, staff: Any
) -> None:
    group, doctor, _ = staff
    await submitted(user, harness)
    old_card = card(group)
    await user.press("📋 Мои заявки")
    await user.click(re.compile("^№1 "))
    await user.click("↩️ Отозвать заявку")
    await user.click("Да, отозвать")
    assert "отозвана" in user.last_text()
    await doctor.click_in_group(group, "👁 Взять на рассмотрение", message_id=old_card.message_id)
    assert "Уже сделано: отозвана" in str(doctor.last_callback_answer())
    await harness.deliver()
    assert "отозвана" in card_text(group)
    assert await harness.rows("SELECT status FROM applications") == [("withdrawn",)]


def card_text(group: FakeGroup) -> str:
    return next(m.text for m in group.messages() if (m.text or "").startswith("📨"))


async def test_patients_forged_callbacks(
    harness: Harness, user: FakeUser, staff: Any, make_user: Any
) -> None:
    group, doctor, _ = staff
    await submitted(user, harness)
    await doctor.click_in_group(group, "🗓 Назначить дату и время")
    await doctor.send_in_group(group, "27.11 10:00")
    await doctor.click_in_group(group, "✅ Назначить")
    await harness.deliver()
    intruder = make_user()
    await register(intruder)
    anchor = intruder.last_message().message_id
    for data in (
        AppCb(action=AppAction.OPEN, id=1).pack(),
        AppCb(action=AppAction.WITHDRAW_YES, id=1).pack(),
        TimeAnswerCb(consultation=1, answer=TimeAnswer.OTHER).pack(),
    ):
        await intruder.click_data(data, anchor)
        assert "не найдена" in str(intruder.last_callback_answer())
    # a staff button forged in a private chat does nothing either
    await intruder.click_data(StaffCb(action=StaffAction.DECLINE, app=1).pack(), anchor)
    assert await harness.rows("SELECT status FROM applications") == [("time_assigned",)]
    assert await harness.rows("SELECT status FROM consultations") == [("scheduled",)]
    assert flat(intruder.inline_buttons()) is not None


async def test_missing_document_uploaded_at_the_checklist(harness: Harness, user: FakeUser) -> None:
    await register(user)
    await apply(user, harness)
    assert "❌ ЭКГ" in user.last_text()
    await user.click("📎 Загрузить документ")
    await user.send_photo(png(41), caption="ЭКГ")
    await harness.settle()
    await user.click("🔄 Обновить")
    assert "✅ ЭКГ" in user.last_text()
    assert await state_of(harness, user) == ApplicationForm.checklist.state


async def test_blocked_patient_is_marked_on_the_card(
    harness: Harness, user: FakeUser, staff: Any
) -> None:
    group, doctor, _ = staff
    await submitted(user, harness)
    harness.fake.block(user.user_id)
    await doctor.click_in_group(group, "✖️ Отклонить")
    await doctor.send_in_group(group, "Не профиль центра")
    await harness.deliver()
    [(unreachable_at,)] = await harness.rows("SELECT unreachable_at FROM patients")
    assert unreachable_at is not None
    assert "заблокировал бота" in card_text(group)
    harness.fake.unblock(user.user_id)
    await user.send("/start")  # writing again means they are back
    assert await harness.rows("SELECT unreachable_at FROM patients") == [(None,)]


async def test_another_time_then_a_new_one_and_a_pdf_conclusion(
    harness: Harness, user: FakeUser, staff: Any
) -> None:
    group, doctor, _ = staff
    await submitted(user, harness)
    await doctor.click_in_group(group, "🗓 Назначить дату и время")
    await doctor.send_in_group(group, "27.11 10:00")
    await doctor.click_in_group(group, "✅ Назначить")
    await harness.deliver()
    await user.click("🔁 Прошу другое время")
    await harness.deliver()
    assert "пациент просит другое время" in card_text(group)
    await doctor.click_in_group(group, "🗓 Назначить другое время")
    await doctor.send_in_group(group, "30.11 09:30")
    await doctor.click_in_group(group, "✅ Назначить")
    await harness.deliver()
    assert "30.11.2026 14:30 (Asia/Irkutsk)" in user.last_text()
    assert await harness.rows("SELECT status FROM consultations ORDER BY id") == [
        ("cancelled",),
        ("scheduled",),
    ]
    await doctor.click_in_group(group, "📝 Заключение")
    center = harness.catalog.center("bakulev")
    assert center is not None
    not_pdf = doctor._document_content(b"hello", "conclusion.pdf", "application/pdf", None, None)
    await doctor._send_content(not_pdf, chat_id=group.chat_id)
    assert "Это не PDF" in group.last_text()
    conclusion = pdf("conclusion")
    content = doctor._document_content(conclusion, "z.pdf", "application/pdf", "Итог", None)
    await doctor._send_content(content, chat_id=group.chat_id)
    await harness.deliver()
    assert any(f.data == conclusion for f in user.files_received())
    [(conclusion_text, telegram_file_id)] = await harness.rows(
        "SELECT text, telegram_file_id FROM conclusions"
    )
    assert conclusion_text == "Итог"
    assert telegram_file_id


async def test_a_doctors_half_done_step_belongs_to_its_topic(
    harness: Harness, make_user: Any, staff: Any
) -> None:
    """A decline reason asked in one patient's topic is not taken from another patient's topic:
    a doctor answering elsewhere meanwhile sends nothing to the wrong patient."""
    group, doctor, _ = staff
    first, second = make_user(), make_user()
    await submitted(first, harness)
    await submitted(second, harness)
    first_card, second_card = (
        m for m in group.messages() if "Заявка №" in (m.text or "") and m.inline_keyboard
    )
    assert first_card.message_thread_id != second_card.message_thread_id
    await doctor.click_in_group(group, "✖️ Отклонить", message_id=first_card.message_id)
    await doctor.send_in_group(group, "Коллеги, посмотрите ЭКГ", second_card.message_thread_id)
    assert await harness.rows("SELECT status FROM applications ORDER BY id") == [
        ("submitted",),
        ("submitted",),
    ]
    await doctor.send_in_group(group, "Не профиль центра", first_card.message_thread_id)
    await harness.deliver()
    assert await harness.rows("SELECT status, status_note FROM applications ORDER BY id") == [
        ("declined", "Не профиль центра"),
        ("submitted", None),
    ]
    assert "Не профиль центра" in first.last_text()
    assert "Коллеги" not in second.last_text()


@pytest.mark.parametrize("ending", ["withdrawn", "declined"])
async def test_stale_card_buttons_are_refused_at_the_first_press(
    harness: Harness, user: FakeUser, staff: Any, ending: str
) -> None:
    group, doctor, colleague = staff
    await submitted(user, harness)
    old_card = card(group)
    await doctor.click_in_group(group, "🗓 Назначить дату и время")  # a calendar left open
    calendar = group.last_message()
    if ending == "withdrawn":
        await user.press("📋 Мои заявки")
        await user.click(re.compile("^№1 "))
        await user.click("↩️ Отозвать заявку")
        await user.click("Да, отозвать")
    else:
        await colleague.click_in_group(group, "✖️ Отклонить", message_id=old_card.message_id)
        await colleague.send_in_group(group, "Не наш профиль")
    shown = len(group.messages())
    buttons = ("🗓 Назначить дату и время", "📎 Запросить документы", re.compile("^🏥 Пригласить"))
    for button in buttons:
        await doctor.click_in_group(group, button, message_id=old_card.message_id)
        refusal = doctor.last_callback_answer()
        assert refusal is not None and "Уже сделано" in refusal, (button, refusal)
    assert len(group.messages()) == shown  # no calendar, no list, no question
    await doctor.click_in_group(group, "28", message_id=calendar.message_id)
    assert "Уже сделано" in str(doctor.last_callback_answer())
    assert "выберите время" not in (group.last_message().text or "")
    statuses = await harness.rows("SELECT status FROM applications")
    assert statuses == [(ending,)]


async def test_forged_huge_ids_on_staff_buttons_are_refused_quietly(
    harness: Harness, user: FakeUser, staff: Any, caplog: pytest.LogCaptureFixture
) -> None:
    group, doctor, _ = staff
    await submitted(user, harness)
    the_card = card(group)
    huge = 2**63
    forged = (f"st:t:{huge}", f"st:a:{huge}", f"cl:{huge}:202611:0", f"ts:1:{huge}:600:0")
    for number, data in enumerate(forged):
        query = harness.fake.new_callback_query(
            doctor.user_json, the_card, data, token=harness.bot.token
        )
        with caplog.at_level(logging.ERROR):
            update = {"update_id": 910_000_000 + number, "callback_query": query}
            await harness.fake.update_sink(update)  # type: ignore[misc]
        answer = harness.fake.callback_answer(query["id"], token=harness.bot.token)
        assert answer is not None and "больше не действует" in (answer.text or ""), data
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_the_documents_request_stays_readable_after_upload_is_pressed(
    harness: Harness, user: FakeUser, staff: Any
) -> None:
    group, doctor, _ = staff
    await submitted(user, harness)
    await doctor.click_in_group(group, "📎 Запросить документы")
    await doctor.click_in_group(group, "▫️ ЭКГ")
    await doctor.click_in_group(group, "✅ Готово")
    await doctor.send_in_group(group, "Нужна свежая ЭКГ")
    await harness.deliver()
    request = user.last_message()
    assert "ЭКГ" in request.text and "Нужна свежая ЭКГ" in request.text
    await user.click("📎 Загрузить документ", message_id=request.message_id)
    kept = next(m for m in user.messages() if m.message_id == request.message_id)
    assert kept.text == request.text  # the list and the comment are still in the chat
    assert "Отправьте фото или файлы" in user.last_text()
    assert user.last_message().message_id != request.message_id
    await user.send_photo(png(7), caption="ЭКГ")
    await harness.settle()
    assert "ЭКГ" in user.last_text()
    await user.press("📋 Мои заявки")
    await user.click(re.compile("^№1 "))
    assert "по часовому поясу Asia/Irkutsk" in user.last_text()  # the history's times


async def test_withdraw_on_an_old_screen_is_refused_at_the_first_press(
    harness: Harness, user: FakeUser, staff: Any
) -> None:
    group, doctor, _ = staff
    await submitted(user, harness)
    await user.press("📋 Мои заявки")
    await user.click(re.compile("^№1 "))
    details = user.last_message()
    await doctor.click_in_group(group, "🗓 Назначить дату и время")
    await doctor.send_in_group(group, "27.11 10:00")
    await doctor.click_in_group(group, "✅ Назначить")
    await user.click("↩️ Отозвать заявку", message_id=details.message_id)
    refusal = user.last_callback_answer()
    assert refusal is not None and "Отозвать уже нельзя" in refusal
    assert "Да, отозвать" not in flat(user.inline_buttons(details.message_id))


def test_the_calendar_offers_times_from_a_quarter_of_an_hour_ahead() -> None:
    from datetime import date as day_of
    from datetime import datetime

    from bot.services.applications import first_offered_minute

    now = datetime(2026, 11, 25, 9, 50)
    assert first_offered_minute(day_of(2026, 11, 24), now) is None  # a day gone by
    assert first_offered_minute(day_of(2026, 11, 25), now) == 10 * 60 + 5
    assert first_offered_minute(day_of(2026, 11, 26), now) == 0
    late = datetime(2026, 11, 25, 23, 50)  # nothing left today: no minute of it is offered
    assert first_offered_minute(day_of(2026, 11, 25), late) == 24 * 60
