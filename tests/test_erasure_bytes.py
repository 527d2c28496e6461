"""Erasure leaves no bytes behind: the real ``python -m bot`` process on SQLite, a patient who
registered, uploaded a document and applied, then erased everything. The raw bytes of the
database, its write-ahead log and shared-memory files, and of FILES_DIR hold none of their
secrets right after the erasure (the bot still running), nor after a SIGKILL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from tests.test_documents import pdf
from tests.test_process import BotProcess, fake_queue, step

pytestmark = pytest.mark.process
__all__ = ["fake_queue"]  # the fixture, shared with test_process

NAME = "Кузнецова-Ратмирова Евпраксия Игнатьевна"
TELEGRAM_NAME = "Феофания"
BIRTH = "13.04.1957"
PHONE = "+79025550147"
DIAGNOSIS = "Дилатационная кардиомиопатия, ФВ 31%"
COMPLAINTS = "Одышка при подъёме на второй этаж"
FILE_MARK = "scan-of-evpraksia-7f3a"


@pytest.fixture
async def sqlite_bot(
    fake_queue: FakeTelegram, tmp_path: Path
) -> AsyncIterator[tuple[BotProcess, Path]]:
    """The bot on a SQLite file of its own (whatever TEST_DATABASE_URL says: the files are
    what this test reads)."""
    db = tmp_path / "bot.db"
    process = BotProcess(fake_queue, tmp_path, f"sqlite+aiosqlite:///{db}")
    await process.start(UPLOAD_QUIET_SECONDS="0.3")
    yield process, db
    if process.proc and process.proc.poll() is None:
        process.kill()


def leaks(db: Path, files_dir: Path, secrets: list[str]) -> list[tuple[str, str]]:
    """(file, secret) for every secret found in the raw bytes of the database files or of any
    file under FILES_DIR (as UTF-8, the encoding SQLite stores text in)."""
    paths = [Path(f"{db}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]
    paths += [p for p in files_dir.rglob("*") if p.is_file()] if files_dir.exists() else []
    found = []
    for path in paths:
        if not path.exists():
            continue
        data = path.read_bytes()
        for secret in secrets:
            if secret.encode() in data:
                found.append((path.name, secret))
    return found


async def test_erasure_leaves_no_bytes_in_the_database_files_running_and_after_sigkill(
    sqlite_bot: tuple[BotProcess, Path], fake_queue: FakeTelegram
) -> None:
    process, db = sqlite_bot
    fake = fake_queue
    files_dir = process.tmp / "files"
    user = FakeUser(fake, 610_000_015, first_name=TELEGRAM_NAME, username="feofania_k")

    await step(fake, lambda: user.send("/start"), "Согласие на обработку")
    await step(fake, lambda: user.click("✅ Согласен"), "Шаг 1 из 4")
    await step(fake, lambda: user.send(NAME), "Шаг 2 из 4")
    await step(fake, lambda: user.send(BIRTH), "Шаг 3 из 4")
    await step(fake, lambda: user.send_contact(PHONE), "Шаг 4 из 4")
    await step(fake, lambda: user.send("Иркутская"), "Проверьте данные")
    await step(fake, lambda: user.click("✅ Всё верно"), "Регистрация завершена")
    await step(
        fake,
        lambda: user.send_document(pdf(FILE_MARK), "vypiska.pdf", caption="выписка"),
        "Получен 1 файл",
    )
    await step(fake, lambda: user.press("📨 Заявка в центр"), "Выберите центр")
    await step(fake, lambda: user.click("НМИЦ ССХ им. А.Н. Бакулева"), "группу заболеваний")
    await step(fake, lambda: user.click("Кардиомиопатии"), "текущий диагноз")
    await step(fake, lambda: user.send(DIAGNOSIS), "жалобы")
    await step(fake, lambda: user.send(COMPLAINTS), "Документы для центра")
    await step(fake, lambda: user.click(re.compile("Отправить без них")), "Проверьте заявку")
    await step(fake, lambda: user.click("✅ Отправить заявку"), "отправлена")

    secrets = [
        NAME,
        "Ратмирова",
        TELEGRAM_NAME,
        "feofania_k",
        "5550147",
        BIRTH,
        "1957-04-13",
        DIAGNOSIS,
        "Дилатационная",
        COMPLAINTS,
        FILE_MARK,
        str(user.user_id),
    ]
    # they are all there before (the test would prove nothing otherwise)
    before = {secret for _file, secret in leaks(db, files_dir, secrets)}
    assert {NAME, "5550147", DIAGNOSIS, COMPLAINTS, FILE_MARK} <= before

    await step(fake, lambda: user.send("/profile"), "Ваш профиль")
    await step(fake, lambda: user.click("🗑 Удалить мои данные"), "Удалить")
    await step(fake, lambda: user.click("Да, удалить"), "Удалить")
    await step(fake, lambda: user.click("🗑 Удалить навсегда"), "Ваши данные удалены")
    assert leaks(db, files_dir, secrets) == [], "right after the erasure, the bot running"

    process.kill()  # SIGKILL: the write-ahead log stays on disk as it is
    assert Path(f"{db}-wal").exists() or Path(f"{db}").exists()
    assert leaks(db, files_dir, secrets) == [], "after a SIGKILL"
    assert await process.db("SELECT count(*) FROM patients") == [(0,)]
    # the process logged at DEBUG: Telegram ids only as pseudonyms (LOG_PLAIN_IDS is off)
    log = process.log.read_text(encoding="utf-8")
    assert not re.search(rf"(?<!\d){user.user_id}(?!\d)", log)
    for secret in secrets[:-1]:
        assert secret not in log, secret
