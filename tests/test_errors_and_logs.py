"""The error handler apologises and keeps the step; logs never carry personal data."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import SendMessage
from pydantic import BaseModel

from bot.fsm.states import Registration
from bot.logging_setup import configure_logging, safe_exc_info
from bot.middlewares import InFlightMiddleware
from bot.services.patients import PatientService
from fakegram.client import FakeUser
from tests.conftest import Harness
from tests.helpers import BIRTH, NAME, PHONE, draft_of, register, start_and_consent, state_of


async def test_failure_gets_an_apology_and_the_step_stays(
    harness: Harness,
    user: FakeUser,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await start_and_consent(user)
    await user.send(NAME)
    await user.send(BIRTH)
    await user.send_contact(PHONE)
    await user.send("Иркутская")

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database is on fire")

    monkeypatch.setattr(PatientService, "register", broken)
    with caplog.at_level(logging.ERROR, logger="bot.errors"):
        await user.click("✅ Всё верно")
    apology = user.last_callback_answer()  # the press's one answer
    assert apology is not None and "что-то пошло не так" in apology and apology.show_alert
    assert await state_of(harness, user) == Registration.summary.state
    assert (await draft_of(harness, user))["full_name"] == NAME
    record = next(r for r in caplog.records if r.name == "bot.errors")
    assert "RuntimeError" in record.getMessage()
    assert "update" in record.getMessage()

    monkeypatch.undo()
    await user.click("✅ Всё верно")  # the buttons are still there: try again, it works
    assert "Регистрация завершена" in user.last_text()


async def test_debug_logs_carry_no_personal_data(
    harness: Harness, make_user: object, caplog: pytest.LogCaptureFixture
) -> None:
    user = make_user(first_name="Евлампия")  # type: ignore[operator]
    name = "Пантелеймонова Евлампия Ксенофонтовна"
    configure_logging("DEBUG")  # as python -m bot does
    with caplog.at_level(logging.DEBUG):
        await register(user, name=name, birth="29.02.1952", phone="+79837771234")
        await user.send("/profile")
        await user.send("Какой-то вопрос с диагнозом гипертония")
    text = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert len(caplog.records) > 5  # something was logged at DEBUG
    for secret in (
        name,
        "Пантелеймонова",
        "+79837771234",
        "7771234",
        "29.02.1952",
        "1952-02-29",
        "гипертония",
    ):
        assert secret not in text, secret


async def test_in_flight_counter_waits_for_handlers() -> None:
    import asyncio

    tracker = InFlightMiddleware()
    release = asyncio.Event()

    async def slow(_event: object, _data: dict[str, object]) -> str:
        await release.wait()
        return "done"

    task = asyncio.create_task(tracker(slow, object(), {}))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert tracker.in_flight == 1
    assert not await tracker.drained(0.05)
    release.set()
    assert await tracker.drained(1)
    assert await task == "done"


def test_a_logged_trace_keeps_its_frames_but_not_a_message_that_may_quote_input(
    caplog: pytest.LogCaptureFixture,
) -> None:
    typed = "Иванова Мария, гипертония"  # (a literal would show in the trace's source lines)

    class Form(BaseModel):
        born: date

    def refused() -> None:
        method = SendMessage(chat_id=1, text=typed)
        raise TelegramBadRequest(method, f"Bad Request: can't parse entities: {typed}")

    def invalid() -> None:
        Form.model_validate({"born": typed})

    def ours() -> None:
        raise RuntimeError("upload batch 7 is gone")

    log = logging.getLogger("bot.test")
    with caplog.at_level(logging.ERROR, logger="bot.test"):
        for fail in (refused, invalid, ours):
            try:
                fail()
            except Exception as exc:
                log.error("failed: %s", type(exc).__name__, exc_info=safe_exc_info(exc))
    refused_text, invalid_text, ours_text = (logging.Formatter().format(r) for r in caplog.records)
    for text, name in ((refused_text, "TelegramBadRequest"), (invalid_text, "ValidationError")):
        assert "Иванова" not in text
        assert f"{name} (message withheld" in text
        assert "Traceback" in text  # where it happened is still there
    assert "RuntimeError: upload batch 7 is gone" in ours_text  # our own messages are ids
