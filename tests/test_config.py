"""Settings: defaults, parsing, and one clear line naming a missing or malformed setting."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import SettingsError, load_settings

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper() in {"BOT_TOKEN", "DATABASE_URL", "COORDINATOR_IDS", "LOG_LEVEL"}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    settings = load_settings()
    assert settings.database_url.startswith("sqlite+aiosqlite:///./data/")
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert settings.default_locale == "ru"
    assert settings.redis_url is None
    assert settings.coordinator_ids == frozenset()


def test_coordinator_ids_are_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("COORDINATOR_IDS", "111, 222;333")
    assert load_settings().coordinator_ids == {111, 222, 333}


def test_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"BOT_TOKEN={TOKEN}\nLOG_LEVEL=debug\n")
    settings = load_settings()
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "BOT_TOKEN is required"),
        ({"BOT_TOKEN": "not-a-token"}, "BOT_TOKEN"),
        ({"BOT_TOKEN": TOKEN, "COORDINATOR_IDS": "12,abc"}, "COORDINATOR_IDS"),
        ({"BOT_TOKEN": TOKEN, "DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"BOT_TOKEN": TOKEN, "DUTY_CHAT_ID": "chat"}, "DUTY_CHAT_ID"),
        ({"BOT_TOKEN": TOKEN, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_bad_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert named in str(error.value)
    assert "\n" not in str(error.value)


def test_startup_with_a_missing_token_prints_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BOT_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "configuration error: BOT_TOKEN is required but not set"
    assert "Traceback" not in result.stderr


def test_help_documents_the_options(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "BOT_TOKEN" in result.stdout and "DATABASE_URL" in result.stdout
    assert "--check-config" in result.stdout


def test_broken_catalog_stops_startup_naming_the_entry(tmp_path: Path) -> None:
    broken = tmp_path / "catalog.toml"
    text = (ROOT / "bot" / "catalog.toml").read_text(encoding="utf-8")
    broken.write_text(text.replace('"Asia/Irkutsk"', '"Asia/Nowhere"', 1), encoding="utf-8")
    env = {**os.environ, "BOT_TOKEN": TOKEN, "CATALOG_PATH": str(broken)}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--check-config"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Asia/Nowhere" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_max_token_without_aiogram_max_stops_both_processes_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``python -m bot`` and ``python -m scheduler`` both start through process.configure: a
    MAX token where aiogram-max is missing (Python 3.11, or no `max` extra) is refused there."""
    import importlib.util

    from bot import process

    real_find_spec = importlib.util.find_spec

    def without_aiogram_max(name: str, package: str | None = None) -> object:
        return None if name == "aiogram_max" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_aiogram_max)
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("MAX_BOT_TOKEN", "max-token")
    with pytest.raises(process.StartRefused, match=r"aiogram-max is not installed"):
        process.configure()
