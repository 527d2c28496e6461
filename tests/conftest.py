"""Shared fixtures: one fake Bot API server per session, a fresh bot (real Dispatcher, real
database in a temp dir) per test, and users played by the fake's client."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import Services, create_bot, create_dispatcher
from bot.catalog import Catalog, default_catalog_path, load_catalog
from bot.config import Settings
from bot.i18n import create_i18n
from bot.storage.db import create_engine, migrate
from bot.uploads import UploadCoordinator
from fakegram.client import FakeUser
from fakegram.server import FakeTelegram

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
ROOT = Path(__file__).resolve().parent.parent


class FrozenClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="session")
def i18n() -> I18n:
    return create_i18n("ru")


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(default_catalog_path())


@pytest.fixture(scope="session")
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.add_bot(TOKEN)
        yield server


class Harness:
    """The bot under test, in-process: real Dispatcher, real database in a temp dir."""

    def __init__(
        self, fake: FakeTelegram, tmp: Path, i18n: I18n, catalog: Catalog, **overrides: Any
    ) -> None:
        self.fake = fake
        self.tmp = tmp
        self.i18n = i18n
        self.catalog = catalog
        self.settings = make_settings(fake.base_url, tmp, **overrides)
        self.clock = FrozenClock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))

    async def start(self) -> None:
        self.engine: AsyncEngine = create_engine(self.settings.database_url)
        await migrate(self.engine)
        self.services = Services.create(
            self.settings, self.catalog, self.engine, self.i18n, self.clock
        )
        self.bot: Bot = create_bot(self.settings)
        self.dp: Dispatcher = create_dispatcher(self.services, self.bot)

        async def sink(update: dict[str, Any]) -> None:
            await self.dp.feed_raw_update(self.bot, update)

        self.fake.update_sink = sink
        await self.dp.emit_startup(bot=self.bot, **self.dp.workflow_data)

    async def stop(self, *, graceful: bool = True) -> None:
        self.fake.update_sink = None
        if graceful:
            await self.dp.emit_shutdown(bot=self.bot, **self.dp.workflow_data)
        else:  # a crash: timers just vanish
            await self.uploads.close()
        await self.bot.session.close()
        await self.engine.dispose()

    async def restart(self) -> None:
        """A crash and a new process over the same database and files."""
        await self.stop(graceful=False)
        await self.start()

    @property
    def uploads(self) -> UploadCoordinator:
        uploads: UploadCoordinator = self.dp["uploads"]
        return uploads

    async def settle(self) -> None:
        """Let the upload quiet period pass (on the bot's clock too) and batches finish."""
        self.clock.advance(seconds=self.settings.upload_quiet_seconds + 0.01)
        await self.uploads.idle()

    async def deliver(self) -> int:
        """Deliver everything due in the outbox (what the scheduler's tick does)."""
        total = 0
        for _ in range(50):
            sent = await self.dp["outbox"].deliver_due()
            total += sent
            if not sent:
                return total
        return total

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())


def make_settings(base_url: str, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "bot_token": TOKEN,
        "telegram_api_url": base_url,
        "database_url": f"sqlite+aiosqlite:///{tmp}/bot.db",
        "files_dir": tmp / "files",
        "upload_quiet_seconds": 0.2,
        "outbox_per_chat_per_second": 1000.0,
        "outbox_per_group_per_minute": 100000.0,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


_staff_chats = itertools.count(1)


def with_fresh_staff_chats(catalog: Catalog) -> Catalog:
    """Each test gets staff chats of its own on the shared fake server."""
    centers = tuple(
        dataclasses.replace(c, staff_chat_id=-1002000000000 - next(_staff_chats))
        for c in catalog.centers
    )
    return dataclasses.replace(catalog, centers=centers)


@pytest.fixture
async def harness(
    fake: FakeTelegram, tmp_path: Path, i18n: I18n, catalog: Catalog
) -> AsyncIterator[Harness]:
    h = Harness(fake, tmp_path, i18n, with_fresh_staff_chats(catalog))
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


_user_ids = itertools.count(700_000_001)


@pytest.fixture
def make_user(fake: FakeTelegram) -> Callable[..., FakeUser]:
    def make(**kwargs: Any) -> FakeUser:
        kwargs.setdefault("first_name", "Мария")
        return FakeUser(fake, next(_user_ids), **kwargs)

    return make


@pytest.fixture
def user(make_user: Callable[..., FakeUser]) -> FakeUser:
    return make_user()
