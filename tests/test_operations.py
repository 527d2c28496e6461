"""Operations: patients blocking and unblocking the bot, the bot's description, and a SQLite
backup made while the bot runs, restored, and the bot going on from it."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aiogram.utils.i18n import I18n

from bot.backup import DATABASE_FILE, FILES, backup
from bot.catalog import Catalog
from bot.startup import set_descriptions
from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import ROOT, TOKEN, Harness, with_fresh_staff_chats
from tests.helpers import NAME, register
from tests.test_documents import pdf


async def test_blocking_and_unblocking_marks_the_patient_without_tracebacks(
    harness: Harness, user: FakeUser, caplog: pytest.LogCaptureFixture
) -> None:
    await register(user)
    with caplog.at_level(logging.INFO):
        await user.block_bot()
        assert (await harness.rows("SELECT unreachable_at FROM patients"))[0][0] is not None
        await user.unblock_bot()
        assert await harness.rows("SELECT unreachable_at FROM patients") == [(None,)]

        # Blocked while its answer was on the way: marked, logged once, no trace.
        harness.fake.block(user.user_id)
        await user.send("/help")
    assert (await harness.rows("SELECT unreachable_at FROM patients"))[0][0] is not None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info]
    assert any("blocked the bot" in r.getMessage() for r in caplog.records)


async def test_description_and_short_description_in_every_language(
    harness: Harness, i18n: I18n
) -> None:
    await set_descriptions(harness.bot, i18n)
    descriptions = {
        c.params.get("language_code"): str(c.params["description"])
        for c in harness.fake.calls("setMyDescription")
    }
    shorts = {
        c.params.get("language_code"): str(c.params["short_description"])
        for c in harness.fake.calls("setMyShortDescription")
    }
    assert set(descriptions) == set(shorts) == {None, "ru", "en"}
    assert "Облако здоровья" in descriptions[None] == descriptions["ru"]
    assert "online consultations" in descriptions["en"]
    assert all(len(text) <= 512 for text in descriptions.values())
    assert all(0 < len(text) <= 120 for text in shorts.values())


async def test_backup_while_running_then_restore_and_go_on(
    fake: FakeTelegram, tmp_path: Path, i18n: I18n, catalog: Catalog, user: FakeUser
) -> None:
    live = tmp_path / "live"
    h = Harness(
        fake,
        live,
        i18n,
        with_fresh_staff_chats(catalog),
        database_url=f"sqlite+aiosqlite:///{live}/bot.db",
    )
    await h.start()
    try:
        await register(user)
        await user.send_document(pdf("discharge"), "vypiska.pdf", caption="выписка")
        await h.settle()
        # the command, as an operator runs it next to the running bot
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot", "--backup", str(tmp_path / "backups")],
            cwd=tmp_path,
            env={
                **os.environ,
                "BOT_TOKEN": TOKEN,
                "DATABASE_URL": h.settings.database_url,
                "FILES_DIR": str(h.settings.files_dir),
                "PYTHONPATH": str(ROOT),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        [made] = (tmp_path / "backups").iterdir()
        assert result.stdout.strip() == f"backup written to {made}"
        await user.send("/profile")  # the bot goes on while and after it is copied
        assert NAME in user.last_text()
    finally:
        await h.stop()

    # Restore on another machine: the database file and the files directory put in place.
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(made / DATABASE_FILE, restored / "bot.db")
    shutil.copytree(made / FILES, restored / "files")
    again = Harness(
        fake,
        restored,
        i18n,
        with_fresh_staff_chats(catalog),
        database_url=f"sqlite+aiosqlite:///{restored}/bot.db",
    )
    await again.start()
    try:
        await user.send("/profile")
        assert NAME in user.last_text()
        [(path,)] = await again.rows("SELECT stored_path FROM document_files")
        assert (restored / "files" / path).read_bytes() == pdf("discharge")
        # and the patient goes on: another document joins the restored one
        await user.send_document(pdf("ecg"), "ecg.pdf", caption="ЭКГ")
        await again.settle()
        assert await again.rows("SELECT count(*) FROM document_files") == [(2,)]
    finally:
        await again.stop()


def test_backup_of_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    from bot.backup import BackupError

    with pytest.raises(BackupError, match="pg_dump"):
        backup("postgresql+asyncpg://u:p@localhost/db", tmp_path, tmp_path)
