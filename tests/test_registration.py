"""Registration dialogue, driven through the real Dispatcher against the fake Bot API."""

from __future__ import annotations

from datetime import date

import pytest

from bot.fsm.states import Registration
from fakegram.client import FakeUser
from tests.conftest import Harness
from tests.helpers import (
    BIRTH,
    NAME,
    PHONE,
    draft_of,
    flat,
    register,
    start_and_consent,
    state_of,
)


async def test_happy_path_creates_the_patient_and_shows_the_menu(
    harness: Harness, user: FakeUser
) -> None:
    await user.send("/start")
    texts = [m.text for m in user.messages()]
    assert any("Облако здоровья" in (t or "") for t in texts)
    assert "Согласие на обработку персональных данных" in user.last_text()
    await user.click("📄 Полный текст")
    assert "152-ФЗ" in user.last_text()
    await user.click("✅ Согласен")
    assert "Шаг 1 из 4" in user.last_text()
    await user.send("зайцева-оболенская агриппина фёдоровна")
    assert "Шаг 2 из 4" in user.last_text()
    await user.send(BIRTH)
    assert "Шаг 3 из 4" in user.last_text()
    assert user.reply_keyboard() is not None
    await user.press("📱 Отправить мой номер")
    assert "Шаг 4 из 4" in user.last_text()
    await user.send("иркут")
    summary = user.last_text()
    assert NAME in summary
    assert "07.09.1961 (65 лет)" in summary
    assert "Иркутская область" in summary
    assert "UTC+8, МСК+5" in summary
    await user.click("✅ Всё верно")
    assert "Регистрация завершена" in user.last_text()
    keyboard = user.reply_keyboard()
    assert keyboard is not None
    assert "👤 Профиль" in flat(keyboard)

    rows = await harness.rows(
        "SELECT full_name, birth_date, phone_verified, time_zone, region_code, consent_version"
        " FROM patients"
    )
    assert len(rows) == 1
    full_name, birth, verified, tz, region, consent = rows[0]
    assert full_name == NAME
    assert str(birth) == "1961-09-07"
    assert verified
    assert tz == "Asia/Irkutsk"
    assert region == 38
    assert consent == harness.settings.consent_version
    assert await state_of(harness, user) is None


async def test_decline_stores_nothing_and_explains(harness: Harness, user: FakeUser) -> None:
    await user.send("/start")
    await user.click("✖️ Не согласен")
    assert "ничего не сохранили" in user.last_text()
    assert await harness.rows("SELECT * FROM patients") == []
    assert await state_of(harness, user) is None


async def test_region_with_several_time_zones_offers_a_choice(
    harness: Harness, user: FakeUser
) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    await user.send(BIRTH)
    await user.send_contact(PHONE)
    await user.send("Якутия")
    assert "несколько часовых поясов" in user.last_text()
    buttons = flat(user.inline_buttons())
    assert len(buttons) >= 3
    await user.click(buttons[-2])  # one of the eastern zones
    assert "Проверьте данные" in user.last_text()
    draft = await draft_of(harness, user)
    assert draft["time_zone"] != "Asia/Yakutsk" or len(buttons) == 2


async def test_region_paging_and_picking_from_the_list(harness: Harness, user: FakeUser) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    await user.send(BIRTH)
    await user.send_contact(PHONE)
    first_page = user.inline_buttons()
    await user.click("▶️")
    second_page = user.inline_buttons()
    assert first_page != second_page
    assert len(user.messages()) == len(user.messages())  # paging edits, it does not add messages
    picked = second_page[0][0]
    await user.click(picked)
    summary = user.last_text()
    assert picked in summary


async def test_typed_phone_is_stored_unverified(harness: Harness, user: FakeUser) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    await user.send(BIRTH)
    await user.send("8 (914) 987-65-43")
    assert "не подтверждён" in user.messages()[-2].text
    await user.send("Иркутская")
    assert "+7 914 987-65-43 (не подтверждён)" in user.last_text()
    await user.click("✅ Всё верно")
    rows = await harness.rows("SELECT phone, phone_verified FROM patients")
    assert rows == [("+79149876543", False)]


async def test_summary_edit_returns_to_the_summary(harness: Harness, user: FakeUser) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    await user.send(BIRTH)
    await user.send_contact(PHONE)
    await user.send("Иркутская")
    await user.click("✏️ Дата рождения")
    await user.send("08.09.1961")
    assert "08.09.1961" in user.last_text() and "Проверьте данные" in user.last_text()
    assert NAME in user.last_text()


async def test_back_goes_one_step_back_keeping_answers(harness: Harness, user: FakeUser) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    await user.click("⬅️ Назад")
    assert "Шаг 1 из 4" in user.last_text()
    assert (await draft_of(harness, user))["full_name"] == NAME


# --- bad input: told what is wrong, asked again, nothing lost -------------------------------


@pytest.mark.parametrize("kind", ["sticker", "voice", "photo", "location"])
async def test_non_text_where_text_is_expected(harness: Harness, user: FakeUser, kind: str) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    sends = {
        "sticker": user.send_sticker,
        "voice": user.send_voice,
        "photo": lambda: user.send_photo(_PNG),
        "location": lambda: user.send_location(52.28, 104.3),
    }
    await sends[kind]()
    assert "нужен текст" in user.messages()[-2].text
    assert "Шаг 2 из 4" in user.last_text()
    assert await state_of(harness, user) == Registration.birth_date.state
    assert (await draft_of(harness, user))["full_name"] == NAME


@pytest.mark.parametrize(
    ("typed", "answer"),
    [
        ("Иванов2 Иван", "не должно быть цифр"),
        ("И", "хотя бы фамилия и имя"),
    ],
)
async def test_bad_names(harness: Harness, user: FakeUser, typed: str, answer: str) -> None:
    await start_and_consent(user)
    await user.send(typed)
    assert answer in user.last_text()
    assert await state_of(harness, user) == Registration.full_name.state
    assert (await draft_of(harness, user)).get("full_name") is None


@pytest.mark.parametrize(
    ("typed", "answer"),
    [
        ("31.02.1990", "Такой даты не бывает"),
        ("01.01.2030", "не может быть в будущем"),
        ("01.01.1900", "больше 120 лет"),
        ("первое мая", "Не понял дату"),
    ],
)
async def test_bad_birth_dates(harness: Harness, user: FakeUser, typed: str, answer: str) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    await user.send(typed)
    assert answer in user.last_text()
    assert await state_of(harness, user) == Registration.birth_date.state
    draft = await draft_of(harness, user)
    assert draft["full_name"] == NAME and draft.get("birth_date") is None


@pytest.mark.parametrize("typed", ["05.03.1980", "5.3.1980", "1980-03-05"])
async def test_birth_date_forms(harness: Harness, user: FakeUser, typed: str) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    await user.send(typed)
    assert (await draft_of(harness, user))["birth_date"] == date(1980, 3, 5).isoformat()


async def test_someone_elses_contact_is_refused(harness: Harness, user: FakeUser) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    await user.send(BIRTH)
    await user.send_contact("+79001112233", user_id=user.user_id + 1)
    assert "чужой контакт" in user.last_text()
    assert await state_of(harness, user) == Registration.phone.state
    await user.send_contact("+79001112233", user_id=None)  # a contact card with no user
    assert "чужой контакт" in user.last_text()
    assert (await draft_of(harness, user)).get("phone") is None


async def test_malformed_phone_is_refused(harness: Harness, user: FakeUser) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    await user.send(BIRTH)
    await user.send("+7 9ab 123")
    assert "не похоже на номер" in user.last_text()
    assert await state_of(harness, user) == Registration.phone.state
    assert (await draft_of(harness, user))["birth_date"] == "1961-09-07"


async def test_unknown_region(harness: Harness, user: FakeUser) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    await user.send(BIRTH)
    await user.send_contact(PHONE)
    await user.send("Атлантида")
    assert any("Не нашёл такой регион" in (m.text or "") for m in user.messages()[-2:])
    assert "Шаг 4 из 4" in user.last_text()
    assert await state_of(harness, user) == Registration.region.state


async def test_old_button_after_registration(harness: Harness, user: FakeUser) -> None:
    await start_and_consent(user)
    consent_message = user.messages()[-2]
    await user.send(NAME)
    name_prompt = user.last_message()
    await user.send(BIRTH)
    await user.send_contact(PHONE)
    await user.send("Иркутская")
    summary = user.last_message()
    await user.click("✅ Всё верно")
    await user.click("⬅️ Назад", message_id=name_prompt.message_id)
    assert "больше не действует" in (user.last_callback_answer() or "")
    assert await state_of(harness, user) is None
    assert len(await harness.rows("SELECT id FROM patients")) == 1
    # a second press of "all correct" (double click) changes nothing either
    await user.click_data(summary.inline_keyboard[-1][0]["callback_data"], summary.message_id)
    assert "больше не действует" in (user.last_callback_answer() or "")
    assert len(await harness.rows("SELECT id FROM patients")) == 1
    del consent_message


async def test_start_in_the_middle_offers_to_continue(harness: Harness, user: FakeUser) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    await user.send("/start")
    assert "Продолжить с того же места или начать заново" in user.last_text()
    await user.click("▶️ Продолжить с того же места")
    assert "Шаг 2 из 4" in user.last_text()
    assert (await draft_of(harness, user))["full_name"] == NAME
    await user.send("/start")
    await user.click("🔄 Начать заново")
    assert "Согласие на обработку" in user.last_text()
    assert (await draft_of(harness, user)).get("full_name") is None


async def test_cancel_asks_first_then_forgets(harness: Harness, user: FakeUser) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    await user.send("/cancel")
    assert "Прервать регистрацию?" in user.last_text()
    await user.click("Нет, продолжить")
    assert "Шаг 2 из 4" in user.last_text()
    assert (await draft_of(harness, user))["full_name"] == NAME
    await user.send("/cancel")
    await user.click("Да, прервать регистрацию")
    assert "Регистрация прервана" in user.last_text()
    assert await state_of(harness, user) is None
    assert await draft_of(harness, user) == {}


async def test_text_where_a_button_is_expected(harness: Harness, user: FakeUser) -> None:
    await user.send("/start")
    await user.send("да")
    assert "ответьте кнопками" in user.messages()[-2].text
    assert await state_of(harness, user) == Registration.consent.state


async def test_english_speaker_gets_english_and_others_russian(
    harness: Harness, make_user: object
) -> None:
    english = make_user(language_code="en")  # type: ignore[operator]
    german = make_user(language_code="de")  # type: ignore[operator]
    await english.send("/start")
    assert "Consent to personal data processing" in english.last_text()
    await german.send("/start")
    assert "Согласие на обработку" in german.last_text()


async def test_registered_user_start_shows_the_menu(harness: Harness, user: FakeUser) -> None:
    await register(user)
    await user.send("/start")
    assert "Агриппина" in user.last_text() or "Фёдоровна" in user.last_text()
    assert user.reply_keyboard() is not None


_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
