"""Erasure of a patient who used everything: documents, an application with a consultation,
a conclusion, queued notifications; and of one who came by a referral link and used every later
feature too (relay, duty bookings, no-shows, SLA, broadcasts). Nothing personal may remain in any
table, file or Redis key, nor in the logs of it all."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.utils.i18n import I18n
from redis.asyncio import Redis

from bot.catalog import Catalog
from bot.logging_setup import configure_logging
from fakegram.client import FakeGroup, FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import Harness, with_fresh_staff_chats
from tests.helpers import NAME, PHONE, flat, register
from tests.test_booking import add_doctor
from tests.test_documents import pdf, png
from tests.test_referrals import imported_link, payload_of, row
from tests.test_reminders import book


async def test_erasure_after_a_whole_path(harness: Harness, user: FakeUser, make_user: Any) -> None:
    center = harness.catalog.center("bakulev")
    assert center is not None
    group = FakeGroup(harness.fake, center.staff_chat_id, "staff", is_forum=True)
    doctor = make_user(first_name="Врач")
    group.add_member(doctor)

    await register(user)
    await user.send_document(pdf("erasure"), "v.pdf", caption="выписка")
    await user.send_photo(png(901), caption="ЭКГ")
    await harness.settle()
    await user.press("📨 Заявка в центр")
    await user.click("НМИЦ ССХ им. А.Н. Бакулева")
    await user.click("Кардиомиопатии")
    await user.send("Гипертрофическая кардиомиопатия")
    await user.send("Одышка и перебои в работе сердца")
    await user.click("➡️ Отправить без них (добавлю позже)")
    await user.click("✅ Отправить заявку")
    await harness.deliver()
    await doctor.click_in_group(group, "🗓 Назначить дату и время")
    await doctor.send_in_group(group, "27.11 10:00")
    await doctor.click_in_group(group, "✅ Назначить")
    await harness.deliver()
    await doctor.click_in_group(group, "📝 Заключение")
    await doctor.send_in_group(group, "Кардиомиопатия подтверждена, нужна МРТ сердца.")
    # not delivered yet: queued notifications to the patient are part of their data too

    await user.send("/profile")
    await user.click("🗑 Удалить мои данные")
    await user.click("Да, удалить")
    await user.click("🗑 Удалить навсегда")
    assert "Ваши данные удалены" in user.last_text()

    dump = await harness.dump()
    secrets = (
        NAME,
        "Агриппина",
        PHONE,
        "9876543",
        "1961-09-07",
        str(user.user_id),
        "Гипертрофическая",
        "Одышка",
        "Кардиомиопатия подтверждена",
    )
    for secret in secrets:
        assert secret not in dump, secret
    assert [p for p in Path(harness.settings.files_dir).rglob("*") if p.is_file()] == []
    await harness.deliver()  # what is left to send must not reach the erased patient
    assert "Кардиомиопатия подтверждена" not in " ".join(m.text or "" for m in user.messages())


# --- a patient who used everything ---------------------------------------------------------------

REFERRED = "Опарина-Щукина Евдокия Тарасовна"
REFERRED_PHONE = "+79149871234"
DIAGNOSIS = "Дилатационная кардиомиопатия, ФВ 28%"
COMMENT = "Отёки голеней по вечерам"
QUESTION = "Можно ли мне принимать бисопролол вместе с торасемидом?"
ANSWER = "Да, но контролируйте пульс утром."
START = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # 15:00 in Irkutsk
LATER = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


@pytest.fixture
async def everything(
    fake: FakeTelegram,
    tmp_path: Path,
    i18n: I18n,
    catalog: Catalog,
    database_url: str,
    make_user: Any,
) -> AsyncIterator[tuple[Harness, FakeUser]]:
    """A bot with every feature on: a coordinator, a duty chat, staff chats of its own."""
    coordinator = make_user(first_name="Ольга", last_name="Координатова")
    h = Harness(
        fake,
        tmp_path,
        i18n,
        with_fresh_staff_chats(catalog),
        database_url=database_url,
        duty_chat_id=-1006000000000 - coordinator.user_id % 1000000,
        coordinator_ids=frozenset({coordinator.user_id}),
        max_duty_bookings=5,
    )
    await h.start()
    try:
        yield h, coordinator
    finally:
        await h.stop()


@dataclass
class Everything:
    """The people and chats of a patient who used every feature."""

    h: Harness
    patient: FakeUser
    coordinator: FakeUser
    staff: FakeGroup
    duty: FakeGroup


async def use_everything(
    h: Harness, coordinator: FakeUser, make_user: Any, *, faults: bool = False
) -> Everything:
    """Referral link, documents, application card, relay, three duty bookings (two missed: a
    no-show alert), an SLA escalation and a broadcast queued. With ``faults``, Telegram
    refuses some calls with descriptions that quote personal data (as real descriptions may
    quote a text)."""
    patient = make_user(first_name="Евдокия", phone_number=REFERRED_PHONE)
    center = h.catalog.center("bakulev")
    assert center is not None and h.settings.duty_chat_id is not None
    staff = FakeGroup(h.fake, center.staff_chat_id, "НМИЦ ССХ — заявки", is_forum=True)
    duty = FakeGroup(h.fake, h.settings.duty_chat_id, "Дежурные врачи", is_forum=True)
    doctor = make_user(first_name="Анна", last_name="Сердцева")
    staff.add_member(doctor)
    duty.add_member(doctor)
    quoting = f"Bad Request: can't parse entities in {REFERRED}, {DIAGNOSIS}: {QUESTION}"

    # registration through the attending doctor's referral link
    [line] = await imported_link(
        coordinator,
        row(REFERRED, "14.02.1958", "8 914 987-12-34", diagnosis=DIAGNOSIS, comment=COMMENT),
    )
    await patient.start(payload_of(line[4]))
    await patient.click("✅ Согласен")
    await patient.press("📱 Отправить мой номер")
    await patient.click("✅ Всё верно")
    # documents and the application the center's doctors get a card of
    await patient.send_document(pdf("evdokia"), "vypiska_oparina.pdf", caption="выписка")
    await patient.send_photo(png(902), caption="ЭКГ")
    await h.settle()
    await patient.click("🔄 Обновить")
    await patient.click("➡️ Отправить без них (добавлю позже)")
    await patient.click("✅ Отправить заявку")
    await h.deliver()
    assert any(REFERRED in (m.text or "") for m in staff.messages())

    # the chat with the duty doctors
    await patient.press("❓ Вопрос врачу")
    if faults:  # the first copy is refused: the patient is told, and sends it again
        h.fake.fail_next("copyMessage", error_code=400, description=quoting, chat_id=duty.chat_id)
        await patient.send(QUESTION)
        assert "Не удалось доставить" in patient.last_text()
    await patient.send(QUESTION)
    thread = duty.topics()[0].thread_id
    await doctor.send_in_group(duty, ANSWER, thread_id=thread)
    assert ANSWER in patient.last_text()
    await patient.send("/cancel")

    # three duty bookings: two missed (a no-show alert for the coordinator), one ahead
    await add_doctor(h, "Анна Сердцева", "cardiology", [START, START + timedelta(days=1), LATER])
    for moment in (START, START + timedelta(days=1), LATER):
        await book(patient, moment)
    for moment in (START, START + timedelta(days=1)):
        h.clock.now = moment - timedelta(minutes=10)
        await h.deliver()
        headsup = next(
            m for m in reversed(duty.messages()) if "🚫 Пациент не пришёл" in flat(m.inline_buttons)
        )
        h.clock.now = moment + timedelta(minutes=5)
        await doctor.click_in_group(duty, "🚫 Пациент не пришёл", headsup.message_id)
    # not delivered: the no-show alert, then an SLA escalation and a broadcast, stay queued
    h.clock.now = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    assert await h.services.sla.escalate_overdue() == 1
    await coordinator.send("/broadcast")
    await coordinator.send("Уважаемые пациенты! Консультации 1 декабря переносятся.")
    await coordinator.click("👥 Выбрать получателей")
    await coordinator.click("Всем пациентам")
    await coordinator.click("✅ Отправить (1)")
    queued = await h.rows("SELECT kind, status FROM outbox WHERE status = 'pending'")
    kinds = {kind for kind, _status in queued}
    for kind in ("no_show_alert", "sla_escalation", "consultation_headsup", "api"):
        assert kind in kinds, (kind, kinds)

    if faults:  # a handler's call refused: the error handler logs it and apologises
        h.fake.fail_next("*", error_code=400, description=quoting, chat_id=patient.user_id)
        await patient.send("/profile")
        assert "что-то пошло не так" in patient.last_text()
    return Everything(h, patient, coordinator, staff, duty)


async def erase_profile(patient: FakeUser) -> None:
    await patient.send("/profile")
    await patient.click("🗑 Удалить мои данные")
    await patient.click("Да, удалить")
    await patient.click("🗑 Удалить навсегда")
    assert "Ваши данные удалены" in patient.last_text()


async def test_erasure_after_every_feature(
    everything: tuple[Harness, FakeUser], make_user: Any
) -> None:
    h, coordinator = everything
    secrets = (
        REFERRED,
        "Опарина",
        "Евдокия",
        "9871234",
        "1958-02-14",
        "Дилатационная",
        "Отёки",
    )
    it = await use_everything(h, coordinator, make_user)
    patient, staff, duty = it.patient, it.staff, it.duty
    dump = await h.dump()
    assert [s for s in secrets if s not in dump] == []  # all of it was stored
    assert any(p.is_file() for p in Path(h.settings.files_dir).rglob("*"))

    await erase_profile(patient)
    dump = await h.dump()
    # never stored at all, but checked too: relayed texts and file names
    for secret in (*secrets, str(patient.user_id), "бисопролол", "пульс утром", "vypiska_oparina"):
        assert secret not in dump, secret
    assert [p for p in Path(h.settings.files_dir).rglob("*") if p.is_file()] == []
    if h.settings.redis_url:
        client = Redis.from_url(h.settings.redis_url)
        try:
            keys = [k.decode() async for k in client.scan_iter(match=f"{h.redis_prefix}:*")]
        finally:
            await client.aclose()
        assert [k for k in keys if str(patient.user_id) in k] == []

    # what is still queued for staff says nothing of the erased patient when it is delivered
    before = {m.message_id for g in (staff, duty) for m in g.messages()}
    h.clock.advance(days=5)
    await h.deliver()
    told = [m for g in (staff, duty) for m in g.messages() if m.message_id not in before]
    told += coordinator.messages()
    for message in told:
        for secret in (REFERRED, "Опарина", "9871234", "14.02.1958", "Дилатационная"):
            assert secret not in message.content, (secret, message.content)


async def test_logs_of_every_feature_carry_no_personal_data(
    everything: tuple[Harness, FakeUser], make_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    h, coordinator = everything
    configure_logging("DEBUG")  # as python -m bot does (SQL drivers stay quiet)
    with caplog.at_level(logging.DEBUG):
        it = await use_everything(h, coordinator, make_user, faults=True)
        await erase_profile(it.patient)
        h.fake.fail_next(
            "sendMessage",
            error_code=400,
            description=f"Bad Request: {REFERRED} {DIAGNOSIS}",
            chat_id=coordinator.user_id,
            times=5,
        )
        h.clock.advance(days=5)
        await h.deliver()
    formatter = logging.Formatter("%(name)s %(message)s")
    ours = [r for r in caplog.records if not r.name.startswith("fakegram")]  # the fake's own
    text = "\n".join(formatter.format(r) + repr(r.args) for r in ours)
    assert "bot.errors" in text and "TelegramBadRequest" in text  # the faults were logged
    assert "message withheld" in text  # with the frames of the trace, not the description
    assert "bot.relay" in text
    for secret in (
        REFERRED,
        "Опарина",
        "9871234",
        "14.02.1958",
        "1958-02-14",
        "Дилатационная",
        "бисопролол",
        "пульс утром",
        "vypiska_oparina",
        str(it.patient.user_id) + " ",
    ):
        assert secret not in text, secret
