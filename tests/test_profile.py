"""Profile: data shown, fields edited, language switched, everything erased on request."""

from __future__ import annotations

from pathlib import Path

from fakegram.client import FakeUser
from tests.conftest import Harness
from tests.helpers import NAME, PHONE, flat, register, state_of


async def test_profile_shows_the_data(harness: Harness, user: FakeUser) -> None:
    await register(user)
    await user.press("👤 Профиль")
    text = user.last_text()
    assert NAME in text
    assert "07.09.1961" in text
    assert "+7 914 987-65-43" in text
    assert "Иркутская область" in text
    assert "UTC+8, МСК+5 (Asia/Irkutsk)" in text
    assert "версия 2026-11-01 от 25.11.2026" in text


async def test_edit_a_field(harness: Harness, user: FakeUser) -> None:
    await register(user)
    await user.send("/profile")
    await user.click("✏️ ФИО")
    await user.send("Петрова Анна")
    assert "Петрова Анна" in user.last_text() and "Ваш профиль" in user.last_text()
    assert await harness.rows("SELECT full_name FROM patients") == [("Петрова Анна",)]


async def test_edit_a_field_refuses_bad_input_and_keeps_the_old_value(
    harness: Harness, user: FakeUser
) -> None:
    await register(user)
    await user.send("/profile")
    await user.click("✏️ Дата рождения")
    await user.send("31.11.1970")
    assert "Такой даты не бывает" in user.last_text()
    await user.click("⬅️ Назад")
    assert "Ваш профиль" in user.last_text()
    [(birth_date,)] = await harness.rows("SELECT birth_date FROM patients")
    assert str(birth_date) == "1961-09-07"


async def test_edit_region_to_another_zone(harness: Harness, user: FakeUser) -> None:
    await register(user)
    await user.send("/profile")
    await user.click("✏️ Регион")
    await user.send("Калининградская")
    assert "UTC+2, МСК-1 (Europe/Kaliningrad)" in user.last_text()
    assert await harness.rows("SELECT region_code, time_zone FROM patients") == [
        (39, "Europe/Kaliningrad")
    ]


async def test_switch_language(harness: Harness, user: FakeUser) -> None:
    await register(user)
    await user.send("/profile")
    await user.click("🌐 Язык / Language")
    await user.click("English")
    assert "Your profile" in user.last_text()
    keyboard = user.reply_keyboard()
    assert keyboard is not None and "👤 Profile" in flat(keyboard)
    await user.press("👤 Profile")
    assert "Your profile" in user.last_text()
    await user.send("/help")
    assert "Commands" in user.last_text()


async def test_delete_needs_two_confirmations(harness: Harness, user: FakeUser) -> None:
    await register(user)
    await user.send("/profile")
    await user.click("🗑 Удалить мои данные")
    await user.click("Отмена")
    assert "Ваш профиль" in user.last_text()
    await user.click("🗑 Удалить мои данные")
    await user.click("Да, удалить")
    assert "необратимо" in user.last_text()
    await user.send("что?")
    assert "кнопками" in user.last_text()
    assert len(await harness.rows("SELECT id FROM patients")) == 1


async def test_delete_erases_everything_personal(harness: Harness, user: FakeUser) -> None:
    await register(user)
    patient_id = (await harness.rows("SELECT id FROM patients"))[0][0]
    files = harness.settings.files_dir / "patients" / str(patient_id)
    files.mkdir(parents=True)
    (files / "1.pdf").write_bytes(b"%PDF-1.4 " + NAME.encode())
    await user.send("/profile")
    await user.click("🗑 Удалить мои данные")
    await user.click("Да, удалить")
    await user.click("🗑 Удалить навсегда")
    assert "Ваши данные удалены" in user.last_text()
    assert await state_of(harness, user) is None
    assert await harness.rows("SELECT id FROM deleted_patients") == [(patient_id,)]

    # Nothing personal in any table: dump every row of every table as text and look.
    dump = await harness.dump()
    for secret in (NAME, "Агриппина", PHONE, "9876543", "1961-09-07", str(user.user_id)):
        assert secret not in dump, secret
    leftovers = [p for p in Path(harness.settings.files_dir).rglob("*") if p.is_file()]
    assert leftovers == []
    # The person can start again from scratch.
    await user.send("/start")
    assert "Согласие на обработку" in user.last_text()


async def test_a_menu_button_leaves_any_step(harness: Harness, user: FakeUser) -> None:
    await register(user)
    await user.send("/profile")
    await user.click("✏️ ФИО")
    await user.press("📄 Документы")
    assert "Принимаем" in user.last_text()
    assert await state_of(harness, user) is None
    assert await harness.rows("SELECT full_name FROM patients") == [(NAME,)]
    await user.press("📨 Заявка в центр")
    await user.click("НМИЦ ССХ им. А.Н. Бакулева")
    await user.click("Кардиомиопатии")
    await user.press("👤 Профиль")
    assert "Ваш профиль" in user.last_text()
    assert await state_of(harness, user) is None
