"""The "Документы" section against the fake Bot API: uploads (photos, files, albums) typed,
verified by their bytes, archived once; listing, opening, deleting; forged callbacks."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path
from typing import Any

from bot.callbacks import DocAction, DocCb, DocTypeCb
from bot.fsm.states import Documents
from fakegram.client import AlbumDocument, FakeUser
from tests.conftest import Harness
from tests.helpers import flat, register, state_of


def png(seed: int) -> bytes:
    """A real, distinct 1x1 PNG for every seed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixel = zlib.compress(b"\x00" + bytes([seed % 256, seed // 256 % 256, 7]))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixel) + chunk(b"IEND", b"")
    )


def pdf(label: str) -> bytes:
    return f"%PDF-1.4\n1 0 obj <<>> endobj\n% {label}\ntrailer <<>>\n%%EOF\n".encode()


async def registered(user: FakeUser) -> None:
    await register(user)
    await user.press("📄 Документы")
    await user.click("📎 Загрузить документ")


def stored_files(h: Harness) -> list[Path]:
    return sorted(p for p in Path(h.settings.files_dir).rglob("*") if p.is_file())


async def test_section_tells_formats_and_limit_before_upload(
    harness: Harness, user: FakeUser
) -> None:
    await register(user)
    await user.press("📄 Документы")
    intro = user.last_text()
    assert "PDF" in intro and "DICOM" in intro and "HEIC" in intro
    assert "20 МБ" in intro
    await user.click("📎 Загрузить документ")
    assert "не больше 20 МБ" in user.last_text()
    assert await state_of(harness, user) == Documents.upload.state


async def test_photo_is_typed_by_button_and_archived(harness: Harness, user: FakeUser) -> None:
    await registered(user)
    image = png(1)
    await user.send_photo(image)
    await harness.settle()
    assert "Что это за документ? (1 файл)" in user.last_text()
    await user.click("ЭКГ")
    assert user.last_text() == "✅ Получен 1 файл — ЭКГ"
    rows = await harness.rows(
        "SELECT f.kind, f.size, f.sha256, f.stored_path, f.telegram_file_id, d.type_code, p.id"
        " FROM document_files f JOIN documents d ON d.id = f.document_id"
        " JOIN patients p ON p.id = d.patient_id"
    )
    assert len(rows) == 1
    kind, size, sha, path, file_id, type_code, patient_id = rows[0]
    assert (kind, size, type_code) == ("png", len(image), "ecg")
    assert sha == hashlib.sha256(image).hexdigest()
    assert file_id
    assert path.startswith(f"patients/{patient_id}/")
    assert "/" in path and not path.endswith(".jpg")
    assert (Path(harness.settings.files_dir) / path).read_bytes() == image


async def test_pdf_with_a_caption_naming_the_type(harness: Harness, user: FakeUser) -> None:
    await registered(user)
    await user.send_document(pdf("a"), "scan.pdf", caption="Выписка из стационара")
    await harness.settle()
    assert user.last_text() == "✅ Получен 1 файл — Выписка"
    assert await harness.rows(
        "SELECT d.type_code, f.kind FROM documents d JOIN document_files f ON f.document_id = d.id"
    ) == [("discharge", "pdf")]


async def test_files_are_taken_from_the_main_menu_too(harness: Harness, user: FakeUser) -> None:
    await register(user)
    await user.send_document(pdf("menu"), "x.pdf", caption="экг")
    await harness.settle()
    assert user.last_text() == "✅ Получен 1 файл — ЭКГ"


async def test_album_of_six_is_one_batch(harness: Harness, user: FakeUser) -> None:
    await registered(user)
    await user.send_album([png(i) for i in range(10, 16)], shuffle=True)
    await harness.settle()
    questions = [m for m in user.messages() if "Что это за документ?" in (m.text or "")]
    assert len(questions) == 1
    assert "(6 файлов)" in questions[0].text
    await user.click("ЭХО КГ")
    assert user.last_text() == "✅ Получено 6 файлов — ЭХО КГ"
    assert await harness.rows("SELECT count(*) FROM documents") == [(1,)]
    assert await harness.rows("SELECT count(*) FROM document_files") == [(6,)]
    assert len(stored_files(harness)) == 6


async def test_two_albums_interleaved_are_two_batches(harness: Harness, user: FakeUser) -> None:
    await registered(user)
    for i in range(4):  # ЭКГ photos and МРТ files, alternating
        await user.send_photo(png(100 + i), caption="ЭКГ" if i == 0 else None, media_group_id="A")
        await user.send_document(
            pdf(f"mri{i}"), f"mri{i}.pdf", caption="МРТ" if i == 0 else None, media_group_id="B"
        )
    await harness.settle()
    acks = sorted(m.text for m in user.messages() if (m.text or "").startswith("✅ Получ"))
    assert acks == ["✅ Получено 4 файла — МРТ", "✅ Получено 4 файла — ЭКГ"]
    rows = await harness.rows(
        "SELECT d.type_code, f.kind, count(*) FROM documents d"
        " JOIN document_files f ON f.document_id = d.id"
        " GROUP BY d.id, d.type_code, f.kind ORDER BY d.type_code"
    )
    assert rows == [("ecg", "png", 4), ("mri", "pdf", 4)]


async def test_oversize_file_is_refused_at_once(harness: Harness, user: FakeUser) -> None:
    await registered(user)
    await user.send_document(
        pdf("big"), "ct.zip", mime_type="application/zip", file_size=40 * 1024 * 1024
    )
    assert "больше 20 МБ" in user.last_text()
    assert "разделите" in user.last_text() and "фотографиями" in user.last_text()
    await harness.settle()
    assert await harness.rows("SELECT count(*) FROM upload_batches") == [(0,)]
    assert await state_of(harness, user) == Documents.upload.state


async def test_fake_pdf_and_exe_are_refused(harness: Harness, user: FakeUser) -> None:
    await registered(user)
    await user.send_document(b"just some text, not a PDF", "summary.pdf", caption="выписка")
    await harness.settle()
    assert "Ни один файл не сохранён" in user.last_text()
    assert "такой формат не принимаем" in user.last_text()
    await user.send_document(
        b"MZ\x90\x00" + b"\x00" * 200, "setup.exe", mime_type="application/pdf", caption="выписка"
    )
    await harness.settle()
    assert "такой формат не принимаем" in user.last_text()
    await user.send_document(pdf("cut")[:30], "cut.pdf", caption="выписка")
    await harness.settle()
    assert "повреждён или загружен не полностью" in user.last_text()
    assert await harness.rows("SELECT count(*) FROM document_files") == [(0,)]
    assert stored_files(harness) == []


async def test_sticker_and_voice_during_upload(harness: Harness, user: FakeUser) -> None:
    await registered(user)
    await user.send_sticker()
    assert "Стикеры, голосовые" in user.last_text()
    await user.send_voice()
    assert "JPEG, PNG, HEIC, PDF" in user.last_text()
    assert await state_of(harness, user) == Documents.upload.state


async def test_duplicate_upload_is_recognised(harness: Harness, user: FakeUser) -> None:
    await registered(user)
    await user.send_document(pdf("same"), "a.pdf", caption="ЭКГ")
    await harness.settle()
    await user.send_document(pdf("same"), "copy-of-a.pdf", caption="выписка")
    await harness.settle()
    assert "уже загружен раньше (ЭКГ от 25.11.2026)" in user.last_text()
    assert await harness.rows("SELECT count(*) FROM document_files") == [(1,)]
    assert len(stored_files(harness)) == 1


async def test_restart_between_album_items(harness: Harness, user: FakeUser) -> None:
    await registered(user)
    items = [png(200 + i) for i in range(6)]
    for data in items[:3]:
        await user.send_photo(data, media_group_id="album-r")
    await harness.restart()  # the process dies before the album is complete
    for data in items[3:]:
        await user.send_photo(data, media_group_id="album-r")
    await harness.settle()
    await user.click("УЗИ плода")
    assert user.last_text() == "✅ Получено 6 файлов — УЗИ плода"
    assert await harness.rows("SELECT count(*) FROM document_files") == [(6,)]


async def test_restart_before_the_quiet_period_ends(harness: Harness, user: FakeUser) -> None:
    await registered(user)
    await user.send_document(pdf("r"), "r.pdf", caption="КТ")
    await harness.restart()  # the timer is gone; the new process rebuilds it from the database
    await harness.settle()
    assert user.last_text() == "✅ Получен 1 файл — КТ"


async def test_list_open_and_delete(harness: Harness, user: FakeUser) -> None:
    await registered(user)
    await user.send_document(pdf("ecg"), "ecg.pdf", caption="ЭКГ")
    await harness.settle()
    await user.send_album([png(301), png(302)], caption="выписка")
    await harness.settle()
    await user.press("📄 Документы")
    await user.click("📋 Мои документы (2)")
    listing = user.last_text()
    assert "выписка из истории болезни: 25.11.2026 (2 файла)" in listing
    assert "ЭКГ (электрокардиограмма): 25.11.2026 (1 файл)" in listing
    album_button = next(b for b in flat(user.inline_buttons()) if b.startswith("Выписка"))
    before = len(user.files_received())
    await user.click(album_button)
    received = user.files_received()[before:]
    assert sorted(f.data for f in received) == sorted([png(301), png(302)])
    assert "2 файла" in user.last_text()
    await user.click("🗑 Удалить документ")
    assert "Удалить документ" in user.last_text()
    await user.click("Да, удалить документ")
    assert "удалён" in user.last_text()
    assert await harness.rows("SELECT count(*) FROM documents") == [(1,)]
    assert len(stored_files(harness)) == 1  # only the ECG is left on disk


async def test_forged_callbacks_show_and_delete_nothing(harness: Harness, make_user: Any) -> None:
    owner, intruder = make_user(), make_user()
    await registered(owner)
    await owner.send_document(pdf("mine"), "mine.pdf", caption="МРТ")
    await harness.settle()
    await owner.send_photo(png(77))
    await harness.settle()
    question = owner.last_message()
    document_id = (await harness.rows("SELECT id FROM documents"))[0][0]
    batch_id = await harness.rows("SELECT id FROM upload_batches WHERE status='awaiting_type'")
    await register(intruder)
    await intruder.send("/start")
    anchor = intruder.last_message().message_id
    before = len(intruder.files_received())
    for action in (DocAction.OPEN, DocAction.DELETE, DocAction.DELETE_YES):
        await intruder.click_data(DocCb(action=action, id=document_id).pack(), anchor)
        assert "не найден" in (intruder.last_callback_answer() or "")
    await intruder.click_data(DocTypeCb(batch=batch_id[0][0], type="ecg").pack(), anchor)
    assert "больше не действует" in (intruder.last_callback_answer() or "")
    assert len(intruder.files_received()) == before
    assert await harness.rows("SELECT count(*) FROM documents") == [(1,)]
    # the owner's question still works
    await owner.click("ЭКГ", message_id=question.message_id)
    assert owner.last_text() == "✅ Получен 1 файл — ЭКГ"


async def test_profile_deletion_removes_every_file(harness: Harness, user: FakeUser) -> None:
    await registered(user)
    await user.send_album(
        [AlbumDocument(pdf("p1"), "p1.pdf"), AlbumDocument(pdf("p2"), "p2.pdf")], caption="выписка"
    )
    await harness.settle()
    assert len(stored_files(harness)) == 2
    await user.send("/profile")
    await user.click("🗑 Удалить мои данные")
    await user.click("Да, удалить")
    await user.click("🗑 Удалить навсегда")
    assert "файлов: 2" in user.last_text()
    assert stored_files(harness) == []
    for table in ("documents", "document_files", "upload_batches", "upload_items"):
        assert await harness.rows(f"SELECT count(*) FROM {table}") == [(0,)]  # noqa: S608
