"""Coordinators' broadcasts end to end against the fake Bot API: the dialogue with its preview
and audience, the live progress message with pause / resume / stop, blocked and erased
patients, bad input, and a 1,000-patient broadcast that survives a restart midway."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.utils.i18n import I18n
from sqlalchemy import func, select

from bot.callbacks import BroadcastAction, BroadcastCb
from bot.catalog import Catalog
from bot.fsm.states import BroadcastForm
from bot.services.broadcasts import Audience, AudienceKind, BroadcastError, Content, ContentKind
from bot.services.outbox import Outbox
from bot.storage.broadcast_models import Broadcast
from bot.storage.models import Application, Consultation, Patient
from bot.storage.outbox_models import OutboxMessage, OutboxStatus
from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import Harness
from tests.helpers import flat, register, state_of
from tests.test_documents import pdf, png

IRKUTSK = 38
MOSCOW = 77


@pytest.fixture
def coordinator(make_user: Callable[..., FakeUser]) -> FakeUser:
    return make_user(first_name="Ольга", last_name="Координатова")


def coordinator_harness(
    fake: FakeTelegram,
    tmp_path: Path,
    i18n: I18n,
    catalog: Catalog,
    database_url: str,
    coordinator: FakeUser,
    **overrides: Any,
) -> Harness:
    settings: dict[str, Any] = {
        "coordinator_ids": frozenset({coordinator.user_id}),
        "outbox_global_per_second": 400.0,
        "broadcast_per_second": 200.0,
        "broadcast_progress_seconds": 2.0,
        **overrides,
    }
    return Harness(fake, tmp_path, i18n, catalog, database_url=database_url, **settings)


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


async def add_patients(
    h: Harness,
    make_user: Callable[..., FakeUser],
    count: int,
    *,
    region: int = IRKUTSK,
    unreachable: bool = False,
) -> list[FakeUser]:
    """Registered, consenting patients made directly in the database (one transaction)."""
    users = [make_user() for _ in range(count)]
    now = h.clock()
    async with h.services.sessions.begin() as session:
        session.add_all(
            Patient(
                telegram_id=user.user_id,
                full_name="Пациентова Анна Петровна",
                birth_date=date(1980, 1, 1),
                phone=user.phone_number,
                phone_verified=True,
                region_code=region,
                time_zone="Asia/Irkutsk",
                consent_version="2026-11-01",
                consent_at=now,
                registered_at=now,
                updated_at=now,
                unreachable_at=now if unreachable else None,
            )
            for user in users
        )
    return users


async def patient_id(h: Harness, user: FakeUser) -> int:
    async with h.services.sessions() as session:
        found = await session.scalar(select(Patient.id).where(Patient.telegram_id == user.user_id))
    assert found is not None
    return found


def received(fake: FakeTelegram, user: FakeUser, text: str) -> int:
    return sum(1 for m in fake.messages(user.user_id) if m.from_bot and m.content == text)


async def run_to_the_end(h: Harness, *, step: float = 1.0, limit: int = 100) -> None:
    """What the scheduler does: outbox ticks and progress ticks as time passes."""
    for _ in range(limit):
        await h.services.broadcasts.tick()
        await h.deliver()
        left = await h.rows("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')")
        if not left[0][0]:
            await h.services.broadcasts.tick()
            await h.deliver()
            return
        h.clock.advance(seconds=step)
    raise AssertionError("the broadcast did not finish")


async def write_and_pick_all(coordinator: FakeUser, text: str) -> None:
    await coordinator.send("/broadcast")
    await coordinator.send(text)
    await coordinator.click("👥 Выбрать получателей")
    await coordinator.click("Всем пациентам")


def progress_button(coordinator: FakeUser, text: str) -> tuple[str, int]:
    message = coordinator.last_message()
    for row in message.data["reply_markup"]["inline_keyboard"]:
        for button in row:
            if button["text"] == text:
                return str(button["callback_data"]), message.message_id
    raise AssertionError(f"no button {text!r}")


async def test_a_coordinator_broadcasts_to_all_with_a_preview_and_live_progress(
    harness: Harness,
    fake: FakeTelegram,
    coordinator: FakeUser,
    make_user: Callable[..., FakeUser],
) -> None:
    patients = await add_patients(harness, make_user, 3)
    (blocked,) = await add_patients(harness, make_user, 1, unreachable=True)
    text = "Уважаемые пациенты! 1 декабря консультации переносятся на 2 декабря."

    await coordinator.send("/broadcast")
    assert "Пришлите сообщение для пациентов" in coordinator.last_text()
    await coordinator.send(text)
    preview = coordinator.messages()[-2]
    assert preview.content == text  # exactly as the patients will see it
    assert "Это предпросмотр" in coordinator.last_text()
    await coordinator.click("👥 Выбрать получателей")
    assert flat(coordinator.last_message().inline_buttons)[:6] == [
        "Всем пациентам",
        "По региону…",
        "По центру…",
        "Зарегистрированы, но без заявок",
        "С открытой заявкой",
        "С консультацией в ближайшие дни…",
    ]
    await coordinator.click("Всем пациентам")
    assert "Сообщение получат пациентов: 3" in coordinator.last_text()
    assert "Ещё 1 из этой группы заблокировали бота" in coordinator.last_text()
    await coordinator.click("✅ Отправить (3)")
    progress = coordinator.last_message()
    assert "Рассылка №" in progress.content and "идёт отправка" in progress.content
    assert "Осталось: 3" in progress.content
    assert flat(progress.inline_buttons) == ["⏸ Пауза", "⏹ Остановить", "🔄 Обновить"]
    assert await state_of(harness, coordinator) is None

    await run_to_the_end(harness)
    for patient in patients:
        assert received(fake, patient, text) == 1
    assert received(fake, blocked, text) == 0
    final = coordinator.messages()[-1]
    assert final.message_id == progress.message_id  # the same message, edited
    assert "завершена" in final.content
    assert "Отправлено: 3" in final.content and "Осталось: 0" in final.content
    assert "▓▓▓▓▓▓▓▓▓▓ 100%" in final.content
    assert final.inline_buttons == []


async def test_pause_resume_stop_and_buttons_pressed_after_the_end(
    fake: FakeTelegram,
    tmp_path: Path,
    i18n: I18n,
    catalog: Catalog,
    database_url: str,
    coordinator: FakeUser,
    make_user: Callable[..., FakeUser],
) -> None:
    h = coordinator_harness(
        fake, tmp_path, i18n, catalog, database_url, coordinator, broadcast_per_second=5.0
    )
    await h.start()
    try:
        patients = await add_patients(h, make_user, 30)
        text = "Напоминаем о бесплатных консультациях федеральных центров."
        await write_and_pick_all(coordinator, text)
        await coordinator.click("✅ Отправить (30)")
        await h.deliver()
        assert sum(received(fake, p, text) for p in patients) == 1  # spread at 5/s

        await coordinator.click("⏸ Пауза")
        assert coordinator.last_callback_answer() == "Рассылка на паузе."
        assert "на паузе" in coordinator.last_text()
        assert "▶️ Продолжить" in flat(coordinator.last_message().inline_buttons)
        h.clock.advance(seconds=60)
        await h.deliver()
        assert sum(received(fake, p, text) for p in patients) == 1  # nothing while paused

        await coordinator.click("▶️ Продолжить")
        assert "идёт отправка" in coordinator.last_text()
        h.clock.advance(seconds=1)
        await h.deliver()
        sent = sum(received(fake, p, text) for p in patients)
        assert 1 < sent < 30

        await h.services.broadcasts.tick()
        await h.deliver()
        assert f"Отправлено: {sent}" in coordinator.last_text()  # the live numbers

        pause_data, message_id = progress_button(coordinator, "⏸ Пауза")
        await coordinator.click("⏹ Остановить")
        assert "Остановить рассылку №1?" in coordinator.last_text()  # asked first
        await coordinator.click("⬅️ Нет, продолжить")
        assert coordinator.last_text() == "Рассылка №1 продолжается."
        await coordinator.click("⏹ Остановить", message_id=message_id)
        question = coordinator.last_message().message_id
        h.clock.advance(seconds=2)
        await h.services.broadcasts.tick()  # the progress message goes on being edited
        await h.deliver()
        assert "Остановить рассылку №1?" in coordinator.last_text()  # the question stays
        await coordinator.click("⏹ Да, остановить", message_id=question)
        assert "Рассылка №1 остановлена" in coordinator.last_text()
        (progress,) = [m for m in coordinator.messages() if m.message_id == message_id]
        sent = sum(received(fake, p, text) for p in patients)
        assert "остановлена" in progress.content
        assert f"Отправлено: {sent}" in progress.content
        assert 0 < 30 - sent < 30
        assert f"Не отправлено из-за остановки: {30 - sent}" in progress.content
        assert progress.inline_buttons == []
        h.clock.advance(seconds=60)
        await run_to_the_end(h)
        assert sum(received(fake, p, text) for p in patients) == sent

        # an old button of the finished broadcast
        await coordinator.click_data(pause_data, message_id)
        answer = coordinator.last_callback_answer()
        assert answer is not None and "уже завершена" in answer and answer.show_alert
        (progress,) = [m for m in coordinator.messages() if m.message_id == message_id]
        assert "остановлена" in progress.content
    finally:
        await h.stop()


async def test_progress_buttons_refused_to_others(
    harness: Harness,
    fake: FakeTelegram,
    coordinator: FakeUser,
    make_user: Callable[..., FakeUser],
) -> None:
    await add_patients(harness, make_user, 2)
    await write_and_pick_all(coordinator, "Объявление")
    await coordinator.click("✅ Отправить (2)")
    async with harness.services.sessions() as session:
        broadcast_id = await session.scalar(select(Broadcast.id))
    assert broadcast_id is not None
    stranger = make_user()
    forged = BroadcastCb(action=BroadcastAction.CANCEL_YES, broadcast=broadcast_id).pack()
    await stranger.send("/start")
    await stranger.click_data(forged, stranger.last_message().message_id)
    answer = stranger.last_callback_answer()
    assert answer == "Эта кнопка больше не действует."  # as any stale button: nothing revealed
    progress = await harness.services.broadcasts.progress(broadcast_id)
    assert progress is not None and progress.status == "sending"

    # another coordinator cannot steer someone else's broadcast either
    with pytest.raises(BroadcastError, match="not_found"):
        await harness.services.broadcasts.cancel(broadcast_id, stranger.user_id)


async def test_commands_are_unknown_to_everyone_else(
    harness: Harness, make_user: Callable[..., FakeUser]
) -> None:
    stranger = make_user()
    await stranger.send("/nonsense")
    unknown = stranger.last_text()
    for command in ("/broadcast", "/stats", "/export"):
        await stranger.send(command)
        assert stranger.last_text() == unknown
    assert await harness.rows("SELECT count(*) FROM broadcasts") == [(0,)]


async def test_help_lists_the_coordinator_commands_to_coordinators_only(
    harness: Harness, coordinator: FakeUser, make_user: Callable[..., FakeUser]
) -> None:
    await coordinator.send("/help")
    assert "Для координаторов" in coordinator.last_text()
    assert "/broadcast" in coordinator.last_text() and "/template" in coordinator.last_text()
    patient = make_user()
    await register(patient)
    await patient.press("❓ Помощь")
    assert "Дежурный врач" in patient.last_text()
    assert "/broadcast" not in patient.last_text() and "координатор" not in patient.last_text()


async def test_bad_input_while_writing_a_broadcast(
    harness: Harness, coordinator: FakeUser, make_user: Callable[..., FakeUser]
) -> None:
    await add_patients(harness, make_user, 2)
    await coordinator.send("/broadcast")

    await coordinator.send("а" * 5000)
    assert "5000 символов" in coordinator.last_text() and "4096" in coordinator.last_text()
    assert await state_of(harness, coordinator) == BroadcastForm.content.state

    await coordinator.send_sticker()
    assert "только текст, фото или документ" in coordinator.last_text()
    await coordinator.send_voice()
    assert "только текст, фото или документ" in coordinator.last_text()
    assert await state_of(harness, coordinator) == BroadcastForm.content.state

    await coordinator.send_photo(png(1), caption="б" * 1100)
    assert "Подпись слишком длинная: 1100" in coordinator.last_text()
    await coordinator.send_photo(png(1), caption="График приёма на декабрь")
    preview = coordinator.messages()[-2]
    assert preview.method == "sendPhoto" and preview.content == "График приёма на декабрь"

    await coordinator.click("👥 Выбрать получателей")
    await coordinator.send("всем")  # a text where a button is expected
    assert "выберите вариант кнопкой" in coordinator.messages()[-2].content
    assert "Кому отправить рассылку?" in coordinator.last_text()
    await coordinator.click("Всем пациентам")
    await coordinator.send("да")
    assert "выберите вариант кнопкой" in coordinator.messages()[-2].content
    assert "Сообщение получат пациентов: 2" in coordinator.last_text()

    await coordinator.click("⬅️ Назад")
    assert "Кому отправить рассылку?" in coordinator.last_text()
    await coordinator.click("⬅️ Назад")
    assert "Пришлите новое сообщение" in coordinator.last_text()
    await coordinator.click("✖️ Отмена")
    assert "ничего не отправлено" in coordinator.last_text()
    assert await state_of(harness, coordinator) is None

    # another command in the middle is that command, not the broadcast's text
    await coordinator.send("/broadcast")
    await coordinator.send("/stats")
    assert "Статистика" in coordinator.last_text()
    assert await state_of(harness, coordinator) is None
    assert await harness.rows("SELECT count(*) FROM outbox WHERE group_key IS NOT NULL") == [(0,)]


async def test_a_double_click_on_send_makes_one_broadcast(
    harness: Harness,
    fake: FakeTelegram,
    coordinator: FakeUser,
    make_user: Callable[..., FakeUser],
) -> None:
    patients = await add_patients(harness, make_user, 3)
    await write_and_pick_all(coordinator, "Один раз")
    data, message_id = progress_button(coordinator, "✅ Отправить (3)")
    await coordinator.click_data(data, message_id)
    await coordinator.click_data(data, message_id)
    answer = coordinator.last_callback_answer()
    assert answer == "Эта рассылка уже запущена — второй раз она не отправится."
    assert "⏸ Пауза" in flat(coordinator.last_message().inline_buttons)  # still there
    await run_to_the_end(harness)
    assert await harness.rows("SELECT count(*) FROM broadcasts") == [(1,)]
    for patient in patients:
        assert received(fake, patient, "Один раз") == 1

    # the same draft confirmed again through the service: nothing new is queued
    progress = await harness.services.broadcasts.progress(1)
    assert progress is not None
    token = (await harness.rows("SELECT token FROM broadcasts"))[0][0]
    again, created = await harness.services.broadcasts.start(
        token=token,
        author_id=coordinator.user_id,
        chat_id=coordinator.user_id,
        message_id=None,
        content=Content(ContentKind.TEXT, "Один раз"),
        audience=Audience(AudienceKind.ALL),
    )
    assert not created and again.id == progress.id
    assert await harness.rows("SELECT count(*) FROM outbox WHERE group_key = 'broadcast:1'") == [
        (3,)
    ]


async def test_blocked_and_erased_patients_are_skipped(
    harness: Harness,
    fake: FakeTelegram,
    coordinator: FakeUser,
    make_user: Callable[..., FakeUser],
) -> None:
    stays, blocks, leaves = await add_patients(harness, make_user, 3)
    fake.block(blocks.user_id)
    await write_and_pick_all(coordinator, "Первое объявление")
    await coordinator.click("✅ Отправить (3)")
    await harness.services.patients.erase(leaves.user_id)  # after it was queued
    await run_to_the_end(harness)
    assert received(fake, stays, "Первое объявление") == 1
    assert received(fake, leaves, "Первое объявление") == 0
    assert "Заблокировали бота: 1" in coordinator.last_text()
    async with harness.services.sessions() as session:
        marked = await session.scalar(
            select(Patient.unreachable_at).where(Patient.telegram_id == blocks.user_id)
        )
    assert marked is not None

    # the next broadcast skips the one who blocked the bot, and says so
    await write_and_pick_all(coordinator, "Второе объявление")
    assert "Сообщение получат пациентов: 1" in coordinator.last_text()
    assert "Ещё 1 из этой группы заблокировали бота" in coordinator.last_text()


async def test_segments_count_the_right_patients(
    harness: Harness, coordinator: FakeUser, make_user: Callable[..., FakeUser]
) -> None:
    irkutsk = await add_patients(harness, make_user, 3, region=IRKUTSK)
    moscow = await add_patients(harness, make_user, 2, region=MOSCOW)
    now = harness.clock()
    center = harness.catalog.centers[0]
    async with harness.services.sessions.begin() as session:
        for user, status in ((irkutsk[0], "submitted"), (moscow[0], "completed")):
            session.add(
                Application(
                    patient_id=await patient_id(harness, user),
                    center_code=center.code,
                    open_center=center.code if status == "submitted" else None,
                    disease_group_code=center.disease_groups[0].code,
                    diagnosis="I34.0",
                    complaints="одышка",
                    status=status,
                    staff_chat_id=center.staff_chat_id,
                    created_at=now,
                    updated_at=now,
                )
            )
        for user, days in ((irkutsk[1], 2), (moscow[1], 10)):
            session.add(
                Consultation(
                    patient_id=await patient_id(harness, user),
                    starts_at=now + timedelta(days=days),
                    video_url="https://meet.example/x",
                    status="scheduled",
                    created_at=now,
                )
            )
    service = harness.services.broadcasts

    async def count(kind: AudienceKind, value: str | int | None = None) -> int:
        return (await service.count(Audience(kind, value))).recipients

    assert await count(AudienceKind.ALL) == 5
    assert await count(AudienceKind.REGION, IRKUTSK) == 3
    assert await count(AudienceKind.REGION, MOSCOW) == 2
    assert await count(AudienceKind.CENTER, center.code) == 2
    assert await count(AudienceKind.APPLIED) == 1
    assert await count(AudienceKind.REGISTERED) == 1  # irkutsk[2]: no application, no visit
    assert await count(AudienceKind.UPCOMING, 3) == 1
    assert await count(AudienceKind.UPCOMING, 14) == 2

    # the same through the buttons: a region with its number of patients
    await coordinator.send("/broadcast")
    await coordinator.send("Для Иркутской области")
    await coordinator.click("👥 Выбрать получателей")
    await coordinator.click("По региону…")
    buttons = flat(coordinator.last_message().inline_buttons)
    assert any(b.startswith("Иркутская") and b.endswith("· 3") for b in buttons)
    await coordinator.click(next(b for b in buttons if b.startswith("Иркутская")))
    assert "Сообщение получат пациентов: 3" in coordinator.last_text()
    await coordinator.click("⬅️ Назад")
    await coordinator.click("С консультацией в ближайшие дни…")
    await coordinator.click("14 дн.")
    assert "Сообщение получат пациентов: 2" in coordinator.last_text()


async def test_a_thousand_patients_survive_a_restart_with_nobody_messaged_twice(
    fake: FakeTelegram,
    tmp_path: Path,
    i18n: I18n,
    catalog: Catalog,
    database_url: str,
    coordinator: FakeUser,
    make_user: Callable[..., FakeUser],
) -> None:
    h = coordinator_harness(
        fake,
        tmp_path,
        i18n,
        catalog,
        database_url,
        coordinator,
        outbox_global_per_second=300.0,
        broadcast_per_second=250.0,
    )
    await h.start()
    try:
        patients = await add_patients(h, make_user, 1000)
        text = "Бесплатные онлайн-консультации: расписание на декабрь"
        await write_and_pick_all(coordinator, text)
        assert "Сообщение получат пациентов: 1000" in coordinator.last_text()
        await coordinator.click("✅ Отправить (1000)")
        h.clock.advance(seconds=1)
        first = await h.deliver()
        assert 0 < first < 1000  # the rate limit spreads it out

        await h.restart()  # a crash and a new process over the same database
        await run_to_the_end(h, step=1.0, limit=30)

        calls = fake.calls("sendMessage")
        wanted = {p.user_id for p in patients}
        per_chat: dict[int, int] = {}
        for call in calls:
            chat = int(call.params["chat_id"])
            if chat in wanted and call.params.get("text") == text:
                per_chat[chat] = per_chat.get(chat, 0) + 1
        assert len(per_chat) == 1000
        assert set(per_chat.values()) == {1}
        async with h.services.sessions() as session:
            sent = await session.scalar(
                select(func.count()).where(
                    OutboxMessage.group_key == "broadcast:1",
                    OutboxMessage.status == OutboxStatus.SENT,
                )
            )
        assert sent == 1000
        assert "Отправлено: 1000" in coordinator.last_text()
        assert "завершена" in coordinator.last_text()
    finally:
        await h.stop()


async def test_personal_notifications_are_not_stuck_behind_a_broadcast(
    fake: FakeTelegram,
    tmp_path: Path,
    i18n: I18n,
    catalog: Catalog,
    database_url: str,
    coordinator: FakeUser,
    make_user: Callable[..., FakeUser],
) -> None:
    h = coordinator_harness(
        fake,
        tmp_path,
        i18n,
        catalog,
        database_url,
        coordinator,
        outbox_global_per_second=10.0,
        broadcast_per_second=5.0,
    )
    await h.start()
    try:
        patients = await add_patients(h, make_user, 40)
        await write_and_pick_all(coordinator, "Длинная рассылка")
        await coordinator.click("✅ Отправить (40)")
        for _ in range(3):
            h.clock.advance(seconds=1)
            await h.deliver()
        (someone,) = await add_patients(h, make_user, 1)
        async with h.services.sessions.begin() as session:
            Outbox.send_message(
                session, chat_id=someone.user_id, text="Ваша заявка принята", now=h.clock()
            )
        await h.deliver()
        assert received(fake, someone, "Ваша заявка принята") == 1  # at once, not after 40
        assert sum(received(fake, p, "Длинная рассылка") for p in patients) < 40
    finally:
        await h.stop()


async def test_a_document_with_a_caption_reaches_a_region(
    harness: Harness,
    fake: FakeTelegram,
    coordinator: FakeUser,
    make_user: Callable[..., FakeUser],
) -> None:
    irkutsk = await add_patients(harness, make_user, 2, region=IRKUTSK)
    (moscow,) = await add_patients(harness, make_user, 1, region=MOSCOW)
    await coordinator.send("/broadcast")
    await coordinator.send_document(pdf("памятка"), "pamyatka.pdf", caption="Памятка пациента")
    preview = coordinator.messages()[-2]
    assert preview.method == "sendDocument" and preview.content == "Памятка пациента"
    await coordinator.click("👥 Выбрать получателей")
    await coordinator.click("По региону…")
    await coordinator.click(re.compile(r"^Иркутская"))
    await coordinator.click("✅ Отправить (2)")
    await run_to_the_end(harness)
    for patient in irkutsk:
        (got,) = patient.files_received()
        assert got.caption == "Памятка пациента" and got.data == pdf("памятка")
    assert moscow.files_received() == []
    assert "Отправлено: 2" in coordinator.last_text()


async def test_coordinators_see_their_commands_in_their_own_menu_only(
    harness: Harness, make_user: Any
) -> None:
    from bot.dispatcher import set_commands

    coordinator = make_user()  # has a chat with the bot
    newcomer = 555_000_002  # never started the bot: Telegram does not know the chat
    await set_commands(harness.bot, harness.i18n, [newcomer, coordinator.user_id])
    everyone = harness.fake.commands({"type": "all_private_chats"}, "ru")
    assert [c["command"] for c in everyone] == ["start", "profile", "help", "cancel"]
    mine = harness.fake.commands({"type": "chat", "chat_id": coordinator.user_id})
    names = [c["command"] for c in mine]
    assert names[:4] == ["start", "profile", "help", "cancel"]
    assert {"schedule", "template", "import", "broadcast", "stats", "export"} <= set(names)
    assert "Рассылка пациентам" in str(mine)
    assert harness.fake.commands({"type": "chat", "chat_id": newcomer}) == []
