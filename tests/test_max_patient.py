"""A patient on MAX, end to end on the fake MAX API: the real patients' Dispatcher (bot.messengers
.max_front) with the real services and database, fed by the adapter's long polling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.max_support import require_aiogram_max

require_aiogram_max()  # skips without aiogram-max, except in the CI pass that runs MAX

from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import StorageKey
from aiogram.methods import GetUpdates

from bot.config import SettingsError
from bot.messengers import require_max_support
from bot.messengers.max_adapter import create_max_bot
from bot.messengers.max_front import MaxFront, feed_max_update
from fakegram.client import FakeUser
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

    async def state_of(self, patient: FakeMaxUser) -> str | None:
        """The patient's dialogue state, under the MAX bot's id in their dialog's chat."""
        key = StorageKey(bot_id=self.front.bot.id, chat_id=patient.chat_id, user_id=patient.user_id)
        return await FSMContext(self.harness.dialogues.storage, key).get_state()

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


async def submit(patient: FakeMaxUser) -> None:
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


async def test_a_broadcast_reaches_patients_on_both_messengers(
    harness: Harness, max_side: MaxSide, user: FakeUser
) -> None:
    from bot.services.broadcasts import Audience, AudienceKind, Content, ContentKind

    await register(user)
    on_max = FakeMaxUser(max_side.server, 81_000_005)
    await register_on_max(on_max)
    # the coordinator's photo and document are Telegram files: carried over to MAX
    photo = harness.fake.register_user_photo(png(9))[-1]["file_id"]
    leaflet = harness.fake.register_user_file(
        pdf("памятка"), "document", file_name="pamyatka.pdf", mime_type="application/pdf"
    ).file_id
    contents = [
        Content(ContentKind.TEXT, "Завтра приём не ведётся"),
        Content(ContentKind.PHOTO, "График на декабрь", file_id=photo),
        Content(ContentKind.DOCUMENT, "Памятка пациента", file_id=leaflet),
    ]
    for number, content in enumerate(contents):
        progress, _made = await harness.services.broadcasts.start(
            token=f"t{number}",
            author_id=1,
            chat_id=1,
            message_id=None,
            content=content,
            audience=Audience(AudienceKind.ALL),
        )
        harness.clock.advance(minutes=1)  # recipients are spaced out
        await harness.deliver()
        assert user.last_text() == content.text
        assert on_max.last_text() == content.text
        done = await harness.services.broadcasts.progress(progress.id)
        assert done is not None and (done.sent, done.failed) == (2, 0)  # counted in the report
    # the bytes arrive; the name is Telegram's file path (a broadcast keeps only the file id)
    name, data = on_max.received_files()[-1]
    assert data == pdf("памятка") and name.endswith(".pdf")
    assert [a["type"] for m in on_max.bot_messages()[-2:] for a in m.attachments] == [
        "image",
        "file",
    ]


async def test_a_broadcast_file_too_big_for_max_is_counted_as_failed(
    harness: Harness, max_side: MaxSide, user: FakeUser
) -> None:
    from bot.services.broadcasts import Audience, AudienceKind, Content, ContentKind

    await register(user)
    on_max = FakeMaxUser(max_side.server, 81_000_006)
    await register_on_max(on_max)
    big = harness.fake.register_user_file(
        pdf("big"), "document", file_name="big.pdf", file_size=30 * 1024 * 1024
    ).file_id
    progress, _made = await harness.services.broadcasts.start(
        token="big",
        author_id=1,
        chat_id=1,
        message_id=None,
        content=Content(ContentKind.DOCUMENT, "Большой файл", file_id=big),
        audience=Audience(AudienceKind.ALL),
    )
    harness.clock.advance(minutes=1)
    await harness.deliver()
    assert user.last_text() == "Большой файл"  # Telegram re-sends its own file by id
    assert "Большой файл" not in on_max.texts()
    done = await harness.services.broadcasts.progress(progress.id)
    assert done is not None and (done.sent, done.failed) == (1, 1)
    rows = await harness.rows("SELECT last_error FROM outbox WHERE status = 'failed'")
    assert rows == [("too_large",)]
