"""Telegram ↔ MAX: the same person on both messengers is two patients, unless they move on
purpose — a one-time code asked for in «Профиль» on one side, entered and confirmed on the
other (bot.services.links). Also the MAX command menu and the texts that name the messenger."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.max_support import require_aiogram_max

require_aiogram_max()  # skips without aiogram-max, except in the CI pass that runs MAX

from bot.dispatcher import COMMANDS, set_max_commands
from bot.services.outbox import Outbox
from fakegram.client import FakeUser
from fakemax import FakeMaxUser
from tests.conftest import Harness
from tests.helpers import NAME, PHONE, register, state_of
from tests.test_documents import pdf, png
from tests.test_max_patient import MaxSide, max_side, register_on_max

__all__ = ["max_side"]  # a fixture used here

CODE = re.compile(r"\b[A-Z2-9]{4}-[A-Z2-9]{4}\b")
TO_MAX = "📲 Перейти в MAX"
TO_TELEGRAM = "📲 Перейти в Telegram"
CONFIRM = "✅ Да, перенести сюда"


async def code_on_telegram(user: FakeUser) -> str:
    await user.press("👤 Профиль")
    await user.click(TO_MAX)
    found = CODE.search(user.last_text())
    assert found is not None, user.last_text()
    return found.group(0)


async def code_on_max(patient: FakeMaxUser) -> str:
    await patient.click("👤 Профиль")
    await patient.click(TO_TELEGRAM)
    found = CODE.search(patient.last_text())
    assert found is not None, patient.last_text()
    return found.group(0)


async def patients(harness: Harness) -> list[tuple[object, ...]]:
    rows = await harness.rows("SELECT id, messenger, telegram_id, phone FROM patients ORDER BY id")
    return [tuple(r) for r in rows]


async def test_one_phone_stays_two_patients_and_a_registered_account_is_never_merged(
    harness: Harness, max_side: MaxSide, user: FakeUser
) -> None:
    await register(user)
    on_max = FakeMaxUser(max_side.server, 84_000_001)
    await register_on_max(on_max, phone=PHONE)
    before = await patients(harness)
    assert [(m, p) for _, m, _, p in before] == [("telegram", PHONE), ("max", PHONE)]

    code = await code_on_telegram(user)
    await on_max.send(f"/link {code}")
    assert "уже зарегистрирован другой профиль" in on_max.last_text()
    assert await patients(harness) == before  # nothing moved, nothing merged


async def test_a_telegram_patient_moves_to_max_with_everything_and_back(
    harness: Harness, max_side: MaxSide, user: FakeUser
) -> None:
    await register(user)
    await user.press("📄 Документы")  # a document uploaded in Telegram
    await user.click("📎 Загрузить документ")
    await user.send_photo(png(5))
    await harness.settle()
    await user.click("ЭКГ")
    [(patient_id, *_)] = await patients(harness)
    async with harness.services.sessions.begin() as session:  # a reminder still to come
        Outbox.send_message(
            session,
            chat_id=user.user_id,
            text="Напоминание",
            patient_id=patient_id,
            due_at=harness.clock() + timedelta(days=1),
            now=harness.clock(),
        )
    code = await code_on_telegram(user)
    offer = user.last_text()
    assert f"https://max.ru/oblako_max_bot?start=move_{code.replace('-', '')}" in offer
    assert "15 минут" in offer

    on_max = FakeMaxUser(max_side.server, 84_000_002)
    await on_max.start(f"move_{code.replace('-', '')}")  # the link opens MAX with the code
    assert "Агриппина Фёдоровна" in on_max.last_text()  # whose profile: asked before moving
    assert await patients(harness) == [(patient_id, "telegram", user.user_id, PHONE)]
    await on_max.click(CONFIRM)
    assert "Готово" in on_max.last_text()
    assert on_max.button_types().get("👤 Профиль") == "message"  # the main menu, on MAX
    assert await patients(harness) == [(patient_id, "max", on_max.user_id, PHONE)]
    rows = await harness.rows(
        "SELECT messenger, chat_id FROM outbox WHERE patient_id = :p AND status = 'pending'",
        p=patient_id,
    )
    assert [tuple(r) for r in rows] == [("max", on_max.chat_id)]  # the reminder follows

    await harness.deliver()
    assert "перенесён в MAX" in user.last_text()
    assert user.reply_keyboard() is None  # the Telegram menu is gone
    await user.send("/start")  # Telegram no longer answers as that patient
    assert "Согласие на обработку персональных данных" in user.last_text()
    await user.send("/cancel")

    await on_max.click("👤 Профиль")
    assert NAME in on_max.last_text()
    await on_max.click("📄 Документы")  # the Telegram document, opened on MAX
    await on_max.click("📋 Мои документы (1)")
    await on_max.click(re.compile("^ЭКГ"))
    assert [data for _, data in on_max.received_files()] == [png(5)]
    await on_max.click("📄 Документы")  # and one uploaded on MAX
    await on_max.click("📎 Загрузить документ")
    await on_max.send_file("vypiska.pdf", pdf("discharge"), caption="выписка")
    await max_side.settle()
    await on_max.click("👤 Профиль")
    code_back = await code_on_max(on_max)
    assert "https://t.me/" in on_max.last_text()
    await user.send(f"/link {code_back}")
    await user.click(CONFIRM)
    assert "Готово" in user.last_text()
    assert await patients(harness) == [(patient_id, "telegram", user.user_id, PHONE)]
    assert await state_of(harness, user) is None
    await user.press("📄 Документы")  # both documents, opened in Telegram
    await user.click("📋 Мои документы (2)")
    await user.click(re.compile("^Выписка"))
    assert any(f.data == pdf("discharge") for f in user.files_received())
    await harness.deliver()
    assert "перенесён в Telegram" in on_max.last_text()


async def test_forged_expired_reused_and_misplaced_codes_are_refused(
    harness: Harness, max_side: MaxSide, user: FakeUser
) -> None:
    await register(user)
    first = FakeMaxUser(max_side.server, 84_000_003)
    await first.send("/link ABCD-EFGH")  # made up
    assert "Такого кода нет" in first.last_text()
    await first.send("/link")
    assert "/link" in first.last_text()  # how it works

    code = await code_on_telegram(user)
    await user.send(f"/link {code}")  # where it was asked for
    assert "в другом мессенджере" in user.last_text()
    harness.clock.advance(minutes=16)
    await first.send(f"/link {code}")
    assert "Срок действия кода истёк" in first.last_text()

    replaced = await code_on_telegram(user)
    code = await code_on_telegram(user)  # a new code: the one before stops working
    await first.send(f"/link {replaced}")
    assert "Такого кода нет" in first.last_text()
    await first.send(f"/link {code.lower()}")  # typed in lower case: still the code
    await first.click(CONFIRM)
    assert "Готово" in first.last_text()
    second = FakeMaxUser(max_side.server, 84_000_004)
    await second.send(f"/link {code}")
    assert "уже использован" in second.last_text()
    rows = await harness.rows("SELECT messenger, telegram_id FROM patients")
    assert [tuple(r) for r in rows] == [("max", first.user_id)]


async def test_the_command_menu_on_max_and_texts_that_name_the_messenger(
    harness: Harness, max_side: MaxSide
) -> None:
    await set_max_commands(max_side.front.bot, harness.i18n)
    # one list, no scopes or languages on MAX: the patients' commands in Russian
    assert [c["name"] for c in max_side.server.commands] == list(COMMANDS)
    assert max_side.server.commands[0]["description"] == harness.i18n.gettext(
        "command.start", locale="ru"
    )
    patient = FakeMaxUser(max_side.server, 84_000_005)
    await patient.start()
    await patient.click("📄 Полный текст")
    assert "идентификатор MAX" in patient.last_text()
    assert "Telegram" not in patient.last_text()
