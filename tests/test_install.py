"""The wheel as an operator gets it: built, installed into a fresh venv (not editable), and
``oblako-bot`` started from a directory of its own against the fake Bot API: a user's /start is
answered. Slow (about a minute): runs in CI on the SQLite pass, locally with
OBLAKO_INSTALL_TEST=1."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from tests.conftest import PROCESS_STAFF_CHAT_IDS, ROOT, TEST_DATABASE_URL, TOKEN, in_ci
from tests.test_process import step

pytestmark = [pytest.mark.install, pytest.mark.process]


def enabled() -> bool:
    return os.environ.get("OBLAKO_INSTALL_TEST") == "1" or (in_ci() and not TEST_DATABASE_URL)


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


@pytest.fixture
async def fake_queue() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.add_bot(TOKEN)
        yield server


async def test_the_wheel_installs_into_a_fresh_venv_and_starts_anywhere(
    fake_queue: FakeTelegram, tmp_path: Path
) -> None:
    if not enabled():
        pytest.skip("builds and installs the wheel (slow): set OBLAKO_INSTALL_TEST=1")
    dist, venv, workdir = tmp_path / "dist", tmp_path / "venv", tmp_path / "run"
    workdir.mkdir()
    await asyncio.to_thread(
        run, sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT, cwd=tmp_path
    )
    [wheel] = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "bot/locales/ru/LC_MESSAGES/messages.mo" in names
    assert "bot/locales/en/LC_MESSAGES/messages.mo" in names
    assert any(n.startswith("bot/storage/migrations/versions/") for n in names)
    assert not [n for n in names if n.startswith(("fakegram/", "tests/"))]

    await asyncio.to_thread(run, sys.executable, "-m", "venv", venv, cwd=tmp_path)
    await asyncio.to_thread(run, venv / "bin/pip", "install", "-q", wheel, cwd=tmp_path)
    [site] = venv.glob("lib/python*/site-packages")
    installed = sorted(p for p in (site / "bot").rglob("*") if "__pycache__" not in p.parts)

    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV") and not key.startswith("TEST_")
    }
    env.update(
        {
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": fake_queue.base_url,
            "STAFF_CHAT_IDS": PROCESS_STAFF_CHAT_IDS,
            "HOME": str(tmp_path / "home"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        }
    )
    await asyncio.to_thread(run, venv / "bin/oblako-scheduler", "--help", cwd=workdir, env=env)
    log = (tmp_path / "bot.log").open("wb")
    proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child process
        [venv / "bin/oblako-bot"], cwd=workdir, env=env, stderr=log
    )
    try:
        await fake_queue.wait_for_polling(timeout=60)
        user = FakeUser(fake_queue, 640_000_001)
        await step(fake_queue, lambda: user.send("/start"), "Согласие на обработку")
        assert fake_queue.calls("setMyDescription")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert (workdir / "data" / "oblako.db").exists()  # the default database, under the cwd
    after = sorted(p for p in (site / "bot").rglob("*") if "__pycache__" not in p.parts)
    assert after == installed, "the bot wrote into its install directory"
    assert not (tmp_path / "cache").exists()  # the packaged catalogs were used as they are
