"""Dates and times as their reader's clock shows them: a Kamchatka patient (UTC+12) at 02:00
on 03.12 sees 03.12 everywhere, though it is still 02.12 in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from fakegram.client import FakeUser
from tests.conftest import Harness
from tests.helpers import flat, register
from tests.test_documents import png

KAMCHATKA_NIGHT = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)  # 03.12.2026 02:00 in Kamchatka


async def test_a_kamchatka_patient_sees_their_own_date(harness: Harness, user: FakeUser) -> None:
    harness.clock.now = KAMCHATKA_NIGHT
    await register(user, birth="03.12.1960", region="Камчатка")  # 66 today, their time
    await user.send("/profile")
    profile = user.last_text()
    assert "от 03.12.2026" in profile  # the consent date
    assert "03.12.1960 (66 лет)" in profile

    image = png(41)
    await user.send_photo(image, caption="ЭКГ")
    await harness.settle()
    await user.press("📄 Документы")
    await user.click("📋 Мои документы (1)")
    assert "03.12.2026" in user.last_text() and "02.12.2026" not in user.last_text()
    button = next(b for b in flat(user.inline_buttons()) if b.startswith("ЭКГ"))
    assert "03.12.2026" in button
    await user.click(button)
    assert "от 03.12.2026" in user.last_text()

    await user.send_photo(image)  # the same picture again
    await harness.settle()
    await user.click("ЭКГ")
    assert "уже загружен раньше (ЭКГ от 03.12.2026)" in user.last_text()
