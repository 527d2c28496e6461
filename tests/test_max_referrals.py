"""Referrals on MAX: one code works on both messengers. The coordinator imports the table in
Telegram; the patient opens https://max.ru/<bot>?start=<the same code> and MAX's bot_started
brings it, with the phone checked against the table through MAX's contact button."""

from __future__ import annotations

from tests.max_support import require_aiogram_max

require_aiogram_max()  # skips without aiogram-max, except in the CI pass that runs MAX

from fakegram.client import FakeUser
from fakemax import FakeMaxUser
from tests.conftest import Harness
from tests.test_max_patient import MaxSide, max_side
from tests.test_referrals import (
    PATIENT_PHONE,
    coordinator,
    harness,
    imported_link,
    payload_of,
)

__all__ = ["coordinator", "harness", "max_side"]  # fixtures used here


async def test_a_referral_link_code_activates_on_max(
    harness: Harness, max_side: MaxSide, coordinator: FakeUser
) -> None:
    [line] = await imported_link(coordinator)
    patient = FakeMaxUser(max_side.server, 83_000_001, first_name="Анна")
    await patient.start(payload_of(line[4]))
    assert "персональная ссылка" in " ".join(patient.texts())
    await patient.click("✅ Согласен")
    assert "request_contact" in patient.button_types().values()
    assert "номер вашего MAX" in patient.last_text()  # not "вашего Telegram"
    await patient.share_contact(PATIENT_PHONE)
    assert "Сидорова Анна Павловна" in patient.last_text()
    await patient.click("✅ Всё верно")
    rows = await harness.rows(
        "SELECT p.messenger, p.telegram_id, r.status FROM referrals r"
        " JOIN patients p ON p.id = r.patient_id"
    )
    assert [tuple(r) for r in rows] == [("max", patient.user_id, "activated")]
