"""Lists that grow with a patient's history come in pages (Telegram allows 100 buttons under a
message, and a person reads ten): documents, applications and conclusions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.storage.models import Application, Conclusion, Document, DocumentFile
from fakegram.client import FakeUser
from tests.conftest import Harness
from tests.helpers import flat, register


async def patient_id(h: Harness) -> int:
    [(pid,)] = await h.rows("SELECT id FROM patients")
    return int(pid)


async def test_a_long_documents_list_comes_in_pages(harness: Harness, user: FakeUser) -> None:
    await register(user)
    pid = await patient_id(harness)
    async with harness.services.sessions.begin() as session:
        for number in range(25):
            at = datetime(2026, 10, 1, 9, 0, tzinfo=UTC) + timedelta(days=number)
            document = Document(patient_id=pid, type_code="ecg", created_at=at)
            session.add(document)
            await session.flush()
            session.add(
                DocumentFile(
                    document_id=document.id,
                    patient_id=pid,
                    position=1,
                    kind="pdf",
                    telegram_file_id=f"file-{number}",
                    telegram_file_unique_id=f"unique-{number}",
                    size=100,
                    sha256=f"{number:064d}",
                    stored_path=f"patients/{pid}/{number}.pdf",
                    created_at=at,
                )
            )
    await user.press("📄 Документы")
    await user.click("📋 Мои документы (25)")
    buttons = flat(user.inline_buttons())
    assert len([b for b in buttons if b.startswith("ЭКГ")]) == 10 and "1/3" in buttons
    assert user.last_text().count("10.2026") == 10  # the text lists the page's documents
    await user.click("◀️")  # wraps round to the last page
    buttons = flat(user.inline_buttons())
    assert len([b for b in buttons if b.startswith("ЭКГ")]) == 5 and "3/3" in buttons


async def test_a_long_conclusions_list_comes_in_pages_dated_on_the_patients_calendar(
    harness: Harness, user: FakeUser
) -> None:
    await register(user)
    pid = await patient_id(harness)
    async with harness.services.sessions.begin() as session:
        for number in range(12):
            session.add(
                Conclusion(
                    patient_id=pid,
                    text=f"Заключение {number}",
                    author="Пётр Врачев",
                    # 21:00 UTC is the next day in Irkutsk (UTC+8): the list says the next day
                    created_at=datetime(2026, 11, 1 + number, 21, 0, tzinfo=UTC),
                )
            )
    await user.press("📝 Мои заключения")
    buttons = flat(user.inline_buttons())
    assert len([b for b in buttons if "Пётр Врачев" in b]) == 10 and "1/2" in buttons
    assert buttons[0].startswith("13.11.2026")  # the newest: 12.11 21:00 UTC
    await user.click("▶️")
    buttons = [b for b in flat(user.inline_buttons()) if "Пётр Врачев" in b]
    assert len(buttons) == 2 and buttons[-1].startswith("02.11.2026")


async def test_a_long_applications_list_comes_in_pages(harness: Harness, user: FakeUser) -> None:
    await register(user)
    pid = await patient_id(harness)
    at = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    async with harness.services.sessions.begin() as session:
        for _number in range(12):
            session.add(
                Application(
                    patient_id=pid,
                    center_code="bakulev",
                    disease_group_code="ihd",
                    diagnosis="ИБС",
                    complaints="боли",
                    status="withdrawn",
                    staff_chat_id=-1001,
                    created_at=at,
                    updated_at=at,
                )
            )
    await user.press("📋 Мои заявки")
    buttons = flat(user.inline_buttons())
    assert len([b for b in buttons if b.startswith("№")]) == 10 and "1/2" in buttons
    await user.click("▶️")
    assert len([b for b in flat(user.inline_buttons()) if b.startswith("№")]) == 2
