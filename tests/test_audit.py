"""An audit of the newest features against the people a deployment gets: commands in the middle
of a dialogue, old buttons pressed again and forged callback data (someone else's ids)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from aiogram.utils.i18n import I18n
from sqlalchemy import select

from bot.callbacks import BroadcastAction, BroadcastCb, NoShowCb, RemindAction, RemindCb
from bot.catalog import Catalog
from bot.storage.models import Consultation
from fakegram.client import FakeGroup, FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import TOKEN, Harness
from tests.helpers import flat, register, state_of
from tests.test_booking import add_doctor
from tests.test_broadcasts import (  # noqa: F401 - fixtures
    add_patients,
    coordinator,
    coordinator_harness,
    harness,
)
from tests.test_referrals import imported_link, patient, payload_of  # noqa: F401 - fixture
from tests.test_reminders import START, at, book, day, duty_chat  # noqa: F401 - fixtures


async def test_a_command_leaves_the_import_dialogue(
    harness: Harness,  # noqa: F811
    coordinator: FakeUser,  # noqa: F811
) -> None:
    await coordinator.send("/import")
    await coordinator.send_sticker()
    assert "Нужен файл с таблицей" in coordinator.last_text()
    assert await state_of(harness, coordinator) == "ReferralImport:upload"
    await coordinator.send("/relink 99999")
    assert "Направления с таким номером нет" in coordinator.last_text()
    await coordinator.send("/nonsense")
    assert "Нужен файл с таблицей" not in coordinator.last_text()
    await coordinator.send("/cancel")
    assert await state_of(harness, coordinator) is None


async def test_someone_elses_consultation_in_a_reminder_button_is_refused(
    day: Harness,  # noqa: F811
    user: FakeUser,
    make_user: Callable[..., FakeUser],
    duty_chat: tuple[FakeGroup, FakeUser],  # noqa: F811
) -> None:
    group, _doctor = duty_chat
    other = make_user(first_name="Другой")
    await add_doctor(day, "Анна Сердцева", "cardiology", [START])
    await register(user)
    await register(other, phone=other.phone_number or "+79140000001")
    await book(user, START)
    async with day.services.sessions() as session:
        consultation = await session.scalar(select(Consultation.id))
    assert consultation is not None
    await day.deliver()
    before = len(group.messages())
    statuses = await day.rows("SELECT status FROM consultations")
    anchor = other.messages()[-1].message_id
    for action in (RemindAction.ATTEND, RemindAction.CANNOT, RemindAction.MOVE):
        data = RemindCb(action=action, id=consultation, minutes=1440).pack()
        await other.click_data(data, anchor)
        refused = other.last_callback_answer()
        assert refused is not None and refused.show_alert and "не найдена" in refused
    await other.click_data("rm:zz:oops", anchor)
    assert other.last_callback_answer() is not None
    await day.deliver()
    assert len(group.messages()) == before
    assert await day.rows("SELECT status FROM consultations") == statuses


async def test_progress_buttons_of_someone_elses_broadcast_do_nothing(
    fake: FakeTelegram,
    tmp_path: Path,
    i18n: I18n,
    catalog: Catalog,
    database_url: str,
    make_user: Callable[..., FakeUser],
) -> None:
    author, colleague = make_user(), make_user()
    h = coordinator_harness(
        fake,
        tmp_path,
        i18n,
        catalog,
        database_url,
        author,
        coordinator_ids=frozenset({author.user_id, colleague.user_id}),
    )
    await h.start()
    try:
        await add_patients(h, make_user, 3)
        await author.send("/broadcast")
        await author.send("Приём 1 декабря переносится")
        await author.click("👥 Выбрать получателей")
        await author.click("Всем пациентам")
        await author.click("✅ Отправить (3)")
        [(broadcast_id, status)] = await h.rows("SELECT id, status FROM broadcasts")
        patient = make_user()
        await register(patient, phone=patient.phone_number or "+79140000002")
        await colleague.send("/stats")
        for someone in (colleague, patient):
            anchor = someone.messages()[-1].message_id
            for action in BroadcastAction:
                packed = BroadcastCb(action=action, broadcast=broadcast_id).pack()
                await someone.click_data(packed, anchor)
                assert someone.last_callback_answer() is not None
            await someone.click_data("bp:zz:1", anchor)
            assert someone.last_callback_answer() is not None
        assert await h.rows("SELECT status FROM broadcasts") == [(status,)]
        assert not any("Рассылка" in m.content for m in patient.messages() if m.from_bot)
    finally:
        await h.stop()


async def test_commands_work_in_the_middle_of_a_referral_activation(
    harness: Harness,  # noqa: F811
    coordinator: FakeUser,  # noqa: F811
    patient: FakeUser,  # noqa: F811
) -> None:
    h = harness
    [line] = await imported_link(coordinator)
    payload = payload_of(line[4])
    await patient.send("/start")
    await patient.click("✅ Согласен")
    await patient.send("Иванов Иван Иванович")
    await patient.start(payload)  # the link opened in the middle of a registration
    assert await state_of(h, patient) == "ReferralActivation:consent"
    await patient.send_sticker()
    assert "ответьте кнопками" in patient.messages()[-2].content
    assert await state_of(h, patient) == "ReferralActivation:consent"
    await patient.send("/cancel")
    assert "Действие прервано" in patient.last_text()
    assert await state_of(h, patient) is None

    await patient.start(payload)
    await patient.start(payload)  # twice in a row: the same activation, from its start
    await patient.click("✅ Согласен")
    await patient.send_voice()
    assert "Отправить мой номер" in patient.last_text()
    assert await state_of(h, patient) == "ReferralActivation:contact"
    await patient.send("/help")  # the help, and the contact button stays
    assert "Отправить мой номер" in patient.last_text()
    assert "📱 Отправить мой номер" in str(patient.reply_keyboard())
    assert await state_of(h, patient) == "ReferralActivation:contact"
    await patient.send("/cancel")
    assert "Действие прервано" in patient.last_text()
    assert await state_of(h, patient) is None

    await patient.start(payload)
    await patient.click("✅ Согласен")
    await patient.send("/start")  # a plain /start: the usual registration, from its start
    assert await state_of(h, patient) == "Registration:consent"
    await patient.start(payload)
    await patient.click("✅ Согласен")
    await patient.press("📱 Отправить мой номер")
    await patient.click("✅ Всё верно")
    assert (await h.rows("SELECT status FROM referrals")) == [("activated",)]
    await patient.start(payload)  # the same person again after the activation
    assert "уже использована" in patient.last_text()
    assert (await h.rows("SELECT count(*) FROM patients"))[0][0] == 1


async def test_a_no_show_button_forged_in_another_staff_chat_is_refused(
    day: Harness,  # noqa: F811
    user: FakeUser,
    duty_chat: tuple[FakeGroup, FakeUser],  # noqa: F811
) -> None:
    group, doctor = duty_chat
    center = day.catalog.centers[0]
    other = FakeGroup(day.fake, center.staff_chat_id, "Врачи центра", is_forum=True)
    other.add_member(doctor)  # a doctor of both chats
    await add_doctor(day, "Анна Сердцева", "cardiology", [START])
    await register(user)
    await book(user, START)
    await at(day, START - timedelta(minutes=10))
    assert any("🚫 Пациент не пришёл" in flat(m.inline_buttons) for m in group.messages())
    day.clock.now = START + timedelta(minutes=5)
    async with day.services.sessions() as session:
        consultation = await session.scalar(select(Consultation.id))
    assert consultation is not None
    forged = NoShowCb(id=consultation).pack()
    posted = await day.bot.send_message(other.chat_id, "Заявки центра")
    stored = day.fake.chat(other.chat_id, token=TOKEN).messages[posted.message_id]
    query = day.fake.new_callback_query(doctor.user_json, stored, forged, token=TOKEN)
    await day.fake.update_sink({"update_id": 900_000_001, "callback_query": query})
    answer = day.fake.callback_answer(query["id"], token=TOKEN)
    assert answer is not None and "не относится к этому чату" in answer.text
    # pressed in a private chat (a forged button there): a stale button, nothing marked
    await user.click_data(forged, user.last_message().message_id)
    assert "больше не действует" in str(user.last_callback_answer())
    assert await day.rows("SELECT status FROM consultations") == [("scheduled",)]
