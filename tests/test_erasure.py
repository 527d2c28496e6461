"""Erasure of a patient who used everything: documents, an application with a consultation,
a conclusion, queued notifications. Nothing personal may remain in any table or file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakegram.client import FakeGroup, FakeUser
from tests.conftest import Harness
from tests.helpers import NAME, PHONE, register
from tests.test_documents import pdf, png


async def test_erasure_after_a_whole_path(harness: Harness, user: FakeUser, make_user: Any) -> None:
    center = harness.catalog.center("bakulev")
    assert center is not None
    group = FakeGroup(harness.fake, center.staff_chat_id, "staff", is_forum=True)
    doctor = make_user(first_name="Врач")
    group.add_member(doctor)

    await register(user)
    await user.send_document(pdf("erasure"), "v.pdf", caption="выписка")
    await user.send_photo(png(901), caption="ЭКГ")
    await harness.settle()
    await user.press("📨 Заявка в центр")
    await user.click("НМИЦ ССХ им. А.Н. Бакулева")
    await user.click("Кардиомиопатии")
    await user.send("Гипертрофическая кардиомиопатия")
    await user.send("Одышка и перебои в работе сердца")
    await user.click("➡️ Отправить без них (добавлю позже)")
    await user.click("✅ Отправить заявку")
    await harness.deliver()
    await doctor.click_in_group(group, "🗓 Назначить дату и время")
    await doctor.send_in_group(group, "27.11 10:00")
    await doctor.click_in_group(group, "✅ Назначить")
    await harness.deliver()
    await doctor.click_in_group(group, "📝 Заключение")
    await doctor.send_in_group(group, "Кардиомиопатия подтверждена, нужна МРТ сердца.")
    # not delivered yet: queued notifications to the patient are part of their data too

    await user.send("/profile")
    await user.click("🗑 Удалить мои данные")
    await user.click("Да, удалить")
    await user.click("🗑 Удалить навсегда")
    assert "Ваши данные удалены" in user.last_text()

    dump = await harness.dump()
    secrets = (
        NAME,
        "Агриппина",
        PHONE,
        "9876543",
        "1961-09-07",
        str(user.user_id),
        "Гипертрофическая",
        "Одышка",
        "Кардиомиопатия подтверждена",
    )
    for secret in secrets:
        assert secret not in dump, secret
    assert [p for p in Path(harness.settings.files_dir).rglob("*") if p.is_file()] == []
    await harness.deliver()  # what is left to send must not reach the erased patient
    assert "Кардиомиопатия подтверждена" not in " ".join(m.text or "" for m in user.messages())
