"""Double taps and stale or forged buttons: an edit that changes nothing is success, a press is
answered once even when its handler fails, ids out of any table's range are refused quietly."""

from __future__ import annotations

import logging

import pytest

from bot.callbacks import ConsentAction, ConsentCb
from bot.services.patients import PatientService
from fakegram.client import FakeGroup, FakeUser
from tests.conftest import Harness
from tests.helpers import BIRTH, NAME, PHONE, register, start_and_consent

APOLOGY = "что-то пошло не так"


def answers_to(harness: Harness, query_id: str | None) -> list[dict[str, object]]:
    return [
        c.params
        for c in harness.fake.calls("answerCallbackQuery")
        if c.params.get("callback_query_id") == query_id
    ]


async def test_a_double_tap_on_full_text_is_no_error(
    harness: Harness, user: FakeUser, caplog: pytest.LogCaptureFixture
) -> None:
    await user.send("/start")
    consent = user.last_message()
    await user.click("📄 Полный текст")
    full = user.last_text()
    with caplog.at_level(logging.ERROR):
        # The second tap of a double tap carries the data of the button as it was.
        await user.click_data(ConsentCb(action=ConsentAction.FULL_TEXT).pack(), consent.message_id)
    answer = user.last_callback_answer()
    assert answer is not None and not answer.show_alert
    assert user.last_text() == full
    assert not any(APOLOGY in m.text for m in user.messages() if m.text)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_every_edit_that_changes_nothing_is_success(harness: Harness, user: FakeUser) -> None:
    await user.send("/start")
    message = user.last_message()
    bot = harness.bot
    text = message.text or ""
    markup = message.data.get("reply_markup")
    assert await bot.edit_message_text(
        text=text, chat_id=user.user_id, message_id=message.message_id, reply_markup=markup
    )
    assert await bot.edit_message_reply_markup(
        chat_id=user.user_id, message_id=message.message_id, reply_markup=markup
    )


async def test_a_failing_button_is_answered_once_with_the_apology(
    harness: Harness, user: FakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    await user.send(BIRTH)
    await user.send_contact(PHONE)
    await user.send("Иркутская")

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database is on fire")

    monkeypatch.setattr(PatientService, "register", broken)
    await user.click("✅ Всё верно")
    calls = answers_to(harness, user._last_query_id)
    assert len(calls) == 1, calls  # Telegram refuses a second answer
    answer = user.last_callback_answer()
    assert answer is not None and APOLOGY in answer and answer.show_alert


HUGE = 2**63  # past what SQLite's INTEGER holds (PostgreSQL's INTEGER ends at 2**31)


@pytest.mark.parametrize(
    "data",
    [
        f"dc:o:{HUGE}",
        f"dc:d:{HUGE}",
        f"dc:y:{HUGE}",
        f"ap:o:{HUGE}:",
        f"ap:w:{2**31}:",
        f"ta:{HUGE}:c",
        f"dt:{HUGE}:ecg",
        f"co:o:{HUGE}::0:0",
        f"rm:y:{HUGE}:0",
        f"du:d:cardiology:{HUGE}:0:0",
    ],
)
async def test_a_forged_huge_id_is_refused_quietly(
    harness: Harness, user: FakeUser, data: str, caplog: pytest.LogCaptureFixture
) -> None:
    await register(user)
    menu = user.last_message()
    with caplog.at_level(logging.ERROR):
        await user.click_data(data, menu.message_id)
    answer = user.last_callback_answer()
    assert answer is not None and "больше не действует" in answer, answer
    assert APOLOGY not in answer
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_closing_a_closed_topic_is_success(harness: Harness) -> None:
    group = FakeGroup(harness.fake, -1009000000014, "Дежурные врачи", is_forum=True)
    topic = await harness.bot.create_forum_topic(group.chat_id, "Пациент #1")
    thread = topic.message_thread_id
    assert await harness.bot.close_forum_topic(group.chat_id, thread)
    assert await harness.bot.close_forum_topic(group.chat_id, thread)  # TOPIC_NOT_MODIFIED
    assert await harness.bot.reopen_forum_topic(group.chat_id, thread)
    assert await harness.bot.reopen_forum_topic(group.chat_id, thread)
