"""A patient on MAX, end to end on the fake MAX API: the real patients' Dispatcher (bot.messengers
.max_front) with the real services and database, fed by the adapter's long polling."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.max_support import require_aiogram_max

require_aiogram_max()  # skips without aiogram-max, except in the CI pass that runs MAX

from aiogram.methods import GetUpdates

from bot.config import SettingsError
from bot.messengers import require_max_support
from bot.messengers.max_adapter import create_max_bot
from bot.messengers.max_front import MaxFront, feed_max_update
from fakegram.client import FakeGroup, FakeUser
from fakemax import FakeMax, FakeMaxUser
from tests.conftest import Harness
from tests.helpers import BIRTH, NAME, PHONE, register
from tests.test_documents import pdf, png

MAX_TOKEN = "max-test-token"


class MaxSide:
    """The MAX front of the harness's bot process: same services, database and storage."""

    def __init__(self, harness: Harness, server: FakeMax, front: MaxFront) -> None:
        self.harness = harness
        self.server = server
        self.front = front
        self._offset: int | None = None

    async def drain(self) -> None:
        """What the polling loop does, until the feed is empty: ``await user.x()`` returns after
        the bot handled it."""
        while True:
            updates = await self.front.bot(GetUpdates(offset=self._offset, timeout=0))
            if not updates:
                return
            for update in updates:
                self._offset = update.update_id + 1
                await feed_max_update(self.front.dp, self.front.bot, update)

    async def settle(self) -> None:
        """The upload quiet period passes; the MAX front's batches finish."""
        self.harness.clock.advance(seconds=self.harness.settings.upload_quiet_seconds + 0.01)
        await self.front.dp["uploads"].idle()
        await self.drain()


@pytest.fixture
async def max_side(harness: Harness) -> AsyncIterator[MaxSide]:
    async with FakeMax(MAX_TOKEN) as server:
        bot = create_max_bot(MAX_TOKEN, server.base_url, bot_id=server.bot_user["user_id"])
        front = await MaxFront.create(
            harness.settings,
            harness.services,
            harness.dialogues.storage,
            harness.dialogues.isolation,
            bot=bot,
            telegram_bot=harness.bot,
        )
        await front.dp.emit_startup(bot=bot, **front.dp.workflow_data)
        side = MaxSide(harness, server, front)
        server.after_push = side.drain
        try:
            yield side
        finally:
            server.after_push = None
            await front.dp.emit_shutdown(bot=bot, **front.dp.workflow_data)
            await bot.session.close()


async def register_on_max(patient: FakeMaxUser, *, phone: str = PHONE) -> None:
    await patient.start()
    assert "Согласие на обработку персональных данных" in patient.last_text()
    await patient.click("✅ Согласен")
    assert "Шаг 1 из 4" in patient.last_text()
    await patient.send(NAME)
    assert "Шаг 2 из 4" in patient.last_text()
    await patient.send(BIRTH)
    assert "Шаг 3 из 4" in patient.last_text()
    # MAX has no reply keyboard: the phone button is MAX's own request_contact button
    assert "request_contact" in patient.button_types().values()
    await patient.share_contact(phone)
    assert "Шаг 4 из 4" in patient.last_text()
    await patient.send("иркут")
    assert NAME in patient.last_text()
    await patient.click("✅ Всё верно")
    assert "Регистрация завершена" in patient.last_text()


async def test_a_max_patient_registers_with_consent_and_the_max_phone_step(
    harness: Harness, max_side: MaxSide
) -> None:
    patient = FakeMaxUser(max_side.server, 81_000_001, first_name="Агриппина")
    await register_on_max(patient)
    # the main menu: Telegram's reply keyboard as MAX message buttons
    assert patient.button_types().get("👤 Профиль") == "message"
    rows = await harness.rows(
        "SELECT messenger, telegram_id, chat_id, phone, phone_verified FROM patients"
    )
    assert [tuple(r) for r in rows] == [("max", patient.user_id, patient.chat_id, PHONE, True)]
    # every answer went to the dialog's chat id, never to the user id
    sent_to = {q["chat_id"] for m, p, q in max_side.server.calls if (m, p) == ("POST", "/messages")}
    assert sent_to == {str(patient.chat_id)}


async def test_someone_elses_contact_is_refused_on_max(harness: Harness, max_side: MaxSide) -> None:
    patient = FakeMaxUser(max_side.server, 81_000_002)
    await patient.start()
    await patient.click("✅ Согласен")
    await patient.send(NAME)
    await patient.send(BIRTH)
    await patient.share_contact("+79001112233", own=False)
    assert "Шаг 4 из 4" not in patient.last_text()
    assert await harness.rows("SELECT count(*) FROM patients") == [(0,)]


async def test_telegram_and_max_patients_with_one_phone_stay_two_patients(
    harness: Harness, max_side: MaxSide, user: FakeUser
) -> None:
    await register(user)  # Telegram
    on_max = FakeMaxUser(max_side.server, user.user_id)  # even the same numeric id
    await register_on_max(on_max)
    rows = await harness.rows("SELECT messenger, telegram_id, phone FROM patients ORDER BY id")
    assert [tuple(r) for r in rows] == [
        ("telegram", user.user_id, PHONE),
        ("max", user.user_id, PHONE),
    ]


async def test_a_max_patient_uploads_an_album_and_applies_to_a_center(
    harness: Harness, max_side: MaxSide
) -> None:
    patient = FakeMaxUser(max_side.server, 81_000_003)
    await register_on_max(patient)
    await patient.click("📄 Документы")
    await patient.send_album([(f"scan{i}.png", png(40 + i)) for i in range(3)])
    await max_side.settle()
    assert "(3 файла)" in patient.last_text()
    await patient.click("ЭХО КГ")
    assert patient.last_text() == "✅ Получено 3 файла — ЭХО КГ"
    await patient.send_file("vypiska.pdf", pdf("discharge"), caption="выписка")
    await max_side.settle()
    assert await harness.rows("SELECT count(*) FROM document_files") == [(4,)]

    await patient.click("📨 Заявка в центр")
    await patient.click("НМИЦ ССХ им. А.Н. Бакулева")
    await patient.click("Ишемическая болезнь сердца")
    await patient.send("ИБС, стенокардия напряжения")
    await patient.send("Давящие боли за грудиной при ходьбе, около года")
    await _submit(patient)
    assert "Заявка №" in patient.last_text()
    rows = await harness.rows(
        "SELECT a.center_code, p.messenger FROM applications a JOIN patients p"
        " ON p.id = a.patient_id"
    )
    assert [tuple(r) for r in rows] == [("bakulev", "max")]


async def _submit(patient: FakeMaxUser) -> None:
    buttons = [b for row in patient.buttons() for b in row]
    if "➡️ Отправить без них (добавлю позже)" in buttons:
        await patient.click("➡️ Отправить без них (добавлю позже)")
    await patient.click("✅ Отправить заявку")


def test_a_max_token_without_aiogram_max_is_refused_clearly(monkeypatch: Any) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec

    def without_aiogram_max(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "aiogram_max" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", without_aiogram_max)
    with pytest.raises(SettingsError, match=r"Python >= 3\.12"):
        require_max_support()


async def test_a_doctor_in_telegram_assigns_a_time_and_the_max_patient_is_told(
    harness: Harness, max_side: MaxSide, make_user: Any
) -> None:
    center = harness.catalog.center("bakulev")
    assert center is not None
    group = FakeGroup(harness.fake, center.staff_chat_id, "НМИЦ ССХ — заявки", is_forum=True)
    doctor = make_user(first_name="Пётр", last_name="Врачев")
    group.add_member(doctor)
    patient = FakeMaxUser(max_side.server, 81_000_004)
    await register_on_max(patient)
    await patient.click("📨 Заявка в центр")
    await patient.click("НМИЦ ССХ им. А.Н. Бакулева")
    await patient.click("Ишемическая болезнь сердца")
    await patient.send("ИБС, стенокардия напряжения")
    await patient.send("Давящие боли за грудиной при ходьбе, около года")
    await _submit(patient)
    await harness.deliver()
    card = next(m for m in group.messages() if "Заявка №" in (m.text or ""))
    assert NAME in card.text  # the card went to the Telegram staff forum

    await doctor.click_in_group(group, "🗓 Назначить дату и время")
    await doctor.click_in_group(group, "28")
    await doctor.click_in_group(group, "14:30")
    await doctor.click_in_group(group, "✅ Назначить")
    await harness.deliver()
    notice = patient.last_text()
    assert "28.11.2026 19:30 (Asia/Irkutsk)" in notice  # on MAX, in the patient's zone
    assert any(name.endswith(".ics") for name, _ in patient.received_files())  # the calendar
    assert "https://meet.jit.si/oblako-" in notice  # the video link
    thread = group.topics()[0].thread_id
    await patient.click("✅ Подтверждаю")  # a callback button on MAX, handled by the MAX front
    await harness.deliver()
    assert any("подтвердил" in (m.text or "") for m in group.messages(thread_id=thread))

    # the reminder 24 h before, with its buttons, on MAX
    start = datetime(2026, 11, 28, 11, 30, tzinfo=UTC)
    harness.clock.now = start - timedelta(hours=24)
    await harness.deliver()
    assert "через 24 ч" in patient.last_text()
    assert patient.button_types().get("✅ Буду") == "callback"
    await patient.click("✅ Буду")

    await doctor.click_in_group(group, "📝 Заключение")
    await doctor.send_in_group(group, "Рекомендована коронарография.", thread_id=thread)
    await harness.deliver()
    assert "Рекомендована коронарография." in patient.last_text()
    await patient.click("📝 Мои заключения")
    await patient.click(re.compile("Пётр Врачев"))
    assert "Рекомендована коронарография." in patient.last_text()
    rows = await harness.rows(
        "SELECT DISTINCT messenger, chat_id FROM outbox WHERE patient_id IS NOT NULL"
    )
    assert ("max", patient.chat_id) in [tuple(r) for r in rows]


async def test_a_broadcast_reaches_patients_on_both_messengers(
    harness: Harness, max_side: MaxSide, user: FakeUser
) -> None:
    from bot.services.broadcasts import Audience, AudienceKind, Content, ContentKind

    await register(user)
    on_max = FakeMaxUser(max_side.server, 81_000_005)
    await register_on_max(on_max)
    await harness.services.broadcasts.start(
        token="t1",
        author_id=1,
        chat_id=1,
        message_id=None,
        content=Content(ContentKind.TEXT, "Завтра приём не ведётся"),
        audience=Audience(AudienceKind.ALL),
    )
    harness.clock.advance(minutes=1)  # recipients are spaced out
    await harness.deliver()
    assert user.last_text() == "Завтра приём не ведётся"
    assert on_max.last_text() == "Завтра приём не ведётся"
