"""Shared fixtures: one fake Bot API server per session, a fresh bot (real Dispatcher, real
database of its own) per test, and users played by the fake's client.

The database: every test that uses one gets a fresh database of its own, a copy of a template
migrated once per session (or empty, for tests of migrations and of a first start): a SQLite file
in the test's temp dir by default, copied from the template file; with ``TEST_DATABASE_URL`` set
(e.g. ``postgresql+asyncpg://oblako:oblako@127.0.0.1:55432/oblako_test``) a PostgreSQL database on
that server, created with ``TEMPLATE`` and dropped afterwards. ``tests/test_storage.py`` runs every
migration up and down on an empty one, so the migrations themselves stay tested.

Dialogues: the bot's SQL storage by default; with ``TEST_REDIS_URL`` set (e.g.
``redis://127.0.0.1:56379/0``) the harness keeps dialogues in RedisStorage under a key
prefix of each test's own. Tests marked ``servers`` need PostgreSQL/Redis themselves: they skip
with a reason when the server is absent, and in CI (``CI=true``) such a skip is a failure."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import re
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiogram import Bot, Dispatcher
from aiogram.utils.i18n import I18n
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import Services, create_bot
from bot.catalog import Catalog, default_catalog_path, load_catalog
from bot.config import Settings
from bot.dispatcher import create_dispatcher
from bot.fsm.backends import create_dialogue_backend
from bot.i18n import create_i18n
from bot.storage.db import create_engine, migrate
from bot.uploads import UploadCoordinator
from fakegram.client import FakeUser
from fakegram.server import FakeTelegram
from tests import processes

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
#: Staff chats of the bot processes tests start (the catalog's placeholders are refused).
PROCESS_STAFF_CHATS = {"bakulev": -1001000000101, "kulakov": -1001000000102}
PROCESS_STAFF_CHAT_IDS = ",".join(f"{code}={chat}" for code, chat in PROCESS_STAFF_CHATS.items())
ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "").strip()
# Where tests that need Redis look for it when TEST_REDIS_URL is not set (.ci/redis starts it).
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:56379/0"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_report_header() -> list[str]:
    if not TEST_DATABASE_URL:
        database = "database: SQLite, a file per test (set TEST_DATABASE_URL for PostgreSQL)"
    else:
        database = f"database: {make_url(TEST_DATABASE_URL).render_as_string(hide_password=True)}"
    dialogues = f"dialogues: Redis {TEST_REDIS_URL}" if TEST_REDIS_URL else "dialogues: SQL storage"
    return [database, dialogues]


#: Fixtures through which a test reaches the database or Redis under test (every database
#: fixture depends on ``databases``; ``fake`` is the in-process harness's server, and the harness
#: takes its dialogue storage from TEST_REDIS_URL however its database was made).
BACKEND_FIXTURES = frozenset({"databases", "redis_url", "fake"})


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by the mark
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``backend_independent`` every test that cannot see TEST_DATABASE_URL or
    TEST_REDIS_URL: none of BACKEND_FIXTURES in its fixture closure and not marked ``servers``.
    They pass or fail the same on every back end, so CI's PostgreSQL + Redis pass deselects them
    (``-m "not backend_independent"``); a plain ``pytest`` runs everything."""
    for item in items:
        if item.get_closest_marker("process") is not None:
            # under pytest-xdist (the README's `-n 2`, `--dist loadgroup`) the tests that start
            # bot processes run one after another on one worker: two of them at once on two
            # cores would starve each other's time-bounded scenarios
            item.add_marker(pytest.mark.xdist_group("processes"))
        names = set(getattr(item, "fixturenames", ()))
        if names & BACKEND_FIXTURES or item.get_closest_marker("servers") is not None:
            continue
        item.add_marker(pytest.mark.backend_independent)


#: How much an xdist worker running in-process tests yields the CPU (see pytest_runtest_setup).
IN_PROCESS_NICENESS = 5
_yielded_cpu = False


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under pytest-xdist an in-process test yields the CPU a little to the process tests on the
    other worker: theirs are time-bounded scenarios (a dead worker's lock, a lease takeover) run
    by bot processes the fork server started before this, at normal priority. Nothing in-process
    waits on a bound tighter than its conditions' own generous timeouts."""
    global _yielded_cpu
    if _yielded_cpu or not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    if item.get_closest_marker("process") is None:
        os.nice(IN_PROCESS_NICENESS)
        _yielded_cpu = True


def pytest_collection_finish(session: pytest.Session) -> None:
    if any(item.get_closest_marker("process") is not None for item in session.items):
        processes.warm_up()  # the fork server's imports overlap with the tests that run first


def pytest_sessionfinish() -> None:
    processes.shut_down()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """In CI the servers are there: a test that needs them and skipped has failed."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and item.get_closest_marker("servers") is not None:
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where PostgreSQL and Redis must run: {report.longrepr}"


_redis_probe: dict[str, str | None] = {}


async def reachable_redis() -> str | None:
    """The test Redis URL if a server answers there (probed once per session), else None."""
    url = TEST_REDIS_URL or DEFAULT_TEST_REDIS_URL
    if url not in _redis_probe:
        from redis.asyncio import Redis

        client = Redis.from_url(url, socket_connect_timeout=1)
        try:
            await client.ping()
            _redis_probe[url] = url
        except Exception:  # noqa: BLE001 - any failure: not reachable
            _redis_probe[url] = None
        finally:
            await client.aclose()
    if _redis_probe[url] is None and TEST_REDIS_URL:
        pytest.exit(f"TEST_REDIS_URL is set but Redis cannot be reached ({url})", 1)
    return _redis_probe[url]


@pytest.fixture
async def redis_url() -> str:
    """A reachable Redis for tests that need one (mark them ``servers``): skips without it."""
    url = await reachable_redis()
    if url is None:
        pytest.skip(f"Redis is not running at {DEFAULT_TEST_REDIS_URL} (bash .ci/redis starts it)")
    return url


_redis_prefixes = itertools.count(1)


def redis_prefix() -> str:
    """Keys of one test's dialogues and locks: nothing is shared between tests."""
    return f"t{os.getpid()}_{next(_redis_prefixes)}"


async def drop_redis_keys(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


class Databases:
    """Hands out a fresh database per test, copied from a template migrated once per session: a
    SQLite file in the test's temp dir, or (with ``TEST_DATABASE_URL``) a PostgreSQL database of
    its own on that server. Migrating each test's database took most of the fixtures' time."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url: URL | None = make_url(url) if url else None
        self._admin: asyncpg.Connection | None = None
        self._names = itertools.count(1)
        self._sqlite_files = itertools.count(1)
        self._sqlite_template = workdir / "template.db"
        if self.url is not None:
            if self.url.get_backend_name() != "postgresql" or not self.url.database:
                pytest.exit(f"TEST_DATABASE_URL must be postgresql+asyncpg://…/db, not {url!r}", 4)
            # Names of this run's databases: <db>_<pid>_template, <db>_<pid>_<n>.
            self.prefix = f"{self.url.database}_{os.getpid()}_"
            self.template = f"{self.prefix}template"

    async def open(self) -> None:
        """Build the template: a database migrated to head once, copied for each test. On
        PostgreSQL, connect first (failing the run loudly if the server is unreachable)."""
        if self.url is None:
            await self._build_sqlite_template()
            return
        dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            self._admin = await asyncpg.connect(dsn, timeout=10)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            where = self.url.render_as_string(hide_password=True)
            pytest.exit(
                f"TEST_DATABASE_URL is set but PostgreSQL cannot be reached ({where}): {exc!r}", 1
            )
        await self._drop_leftovers()
        await self._admin.execute(f'CREATE DATABASE "{self.template}" TEMPLATE template0')
        engine = create_engine(self._url_of(self.template))
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    async def close(self) -> None:
        if self._admin is None:
            return
        await self._admin.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        await self._admin.close()

    async def create(self, tmp: Path, *, empty: bool = False) -> str:
        """A new database's URL: at the latest schema, or ``empty`` (no tables at all)."""
        if self._admin is None:
            path = tmp / f"db{next(self._sqlite_files)}.db"
            if not empty:
                shutil.copyfile(self._sqlite_template, path)
            return f"sqlite+aiosqlite:///{path}"
        name = f"{self.prefix}{next(self._names)}"
        template = "template0" if empty else self.template
        await self._admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self._url_of(name)

    async def drop(self, url: str) -> None:
        if self._admin is None:
            return
        name = make_url(url).database
        for attempt in range(20):
            try:
                await self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except asyncpg.InsufficientPrivilegeError:
                # An autovacuum worker is in the database (FORCE may not end it without
                # pg_signal_backend, which .ci/postgres grants): it is gone in a moment.
                if attempt == 19:
                    raise
                await asyncio.sleep(0.25)

    async def _build_sqlite_template(self) -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{self._sqlite_template}")
        try:
            await migrate(engine)
        finally:
            await engine.dispose()
        # One self-contained file to copy: the write-ahead log folded in and switched off (the
        # bot's connections switch each copy back to WAL, as on any database it opens).
        with contextlib.closing(sqlite3.connect(self._sqlite_template)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode=DELETE")

    def _url_of(self, database: str) -> str:
        assert self.url is not None
        return self.url.set(database=database).render_as_string(hide_password=False)

    async def _drop_leftovers(self) -> None:
        """Drop databases of earlier runs on this machine that died before cleaning up (ours
        too: a run that had this process id before)."""
        assert self._admin is not None and self.url is not None
        if self.url.host not in (None, "", "localhost", "127.0.0.1", "::1"):
            return  # other machines' runs may share the server
        pattern = re.compile(rf"{re.escape(self.url.database or '')}_(\d+)_(\d+|template)")
        for row in await self._admin.fetch("SELECT datname FROM pg_database"):
            found = pattern.fullmatch(row["datname"])
            pid = int(found[1]) if found else 0
            if found and (pid == os.getpid() or not _process_alive(pid)):
                await self._admin.execute(
                    f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)'
                )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
async def databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Databases]:
    dbs = Databases(TEST_DATABASE_URL, tmp_path_factory.mktemp("template"))
    await dbs.open()
    try:
        yield dbs
    finally:
        await dbs.close()


@pytest.fixture
async def database_url(databases: Databases, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database of the test's own, at the latest schema (a copy of the template)."""
    url = await databases.create(tmp_path)
    try:
        yield url
    finally:
        await databases.drop(url)


@pytest.fixture
async def empty_database_url(databases: Databases, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database with no tables at all, for tests of migrations and of a first start."""
    url = await databases.create(tmp_path, empty=True)
    try:
        yield url
    finally:
        await databases.drop(url)


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
    """The bot under test, in-process: real Dispatcher, real database of its own."""

    def __init__(
        self,
        fake: FakeTelegram,
        tmp: Path,
        i18n: I18n,
        catalog: Catalog,
        *,
        database_url: str,  # from the ``database_url`` fixture: SQLite or PostgreSQL
        **overrides: Any,
    ) -> None:
        self.fake = fake
        self.tmp = tmp
        self.i18n = i18n
        self.catalog = catalog
        if TEST_REDIS_URL:
            overrides.setdefault("redis_url", TEST_REDIS_URL)
        self.settings = make_settings(fake.base_url, tmp, database_url=database_url, **overrides)
        self.clock = FrozenClock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
        self.redis_prefix = redis_prefix()

    async def start(self) -> None:
        self.engine: AsyncEngine = create_engine(self.settings.database_url)
        await migrate(self.engine)
        self.services = Services.create(
            self.settings, self.catalog, self.engine, self.i18n, self.clock
        )
        self.bot: Bot = create_bot(self.settings)
        self.dialogues = create_dialogue_backend(
            self.settings, self.services.sessions, key_prefix=self.redis_prefix
        )
        self.dp: Dispatcher = create_dispatcher(
            self.services, self.bot, self.dialogues.storage, self.dialogues.isolation
        )

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
            await self.dialogues.storage.close()
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

    async def dump(self) -> str:
        """Every value in every table as text, the same on every backend: dates as ISO text,
        JSON documents decoded (so escaped non-ASCII text is searchable too)."""
        from sqlalchemy import inspect

        async with self.engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        values: list[str] = []
        for table in sorted(tables):
            for row in await self.rows(f'SELECT * FROM "{table}"'):  # noqa: S608 - test
                values.append(f"{table}:")
                for value in row:
                    values.append(str(value))
                    if isinstance(value, str) and value[:1] in ("{", "["):
                        with contextlib.suppress(ValueError):
                            values.append(json.dumps(json.loads(value), ensure_ascii=False))
        return "\n".join(values)


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
    fake: FakeTelegram, tmp_path: Path, i18n: I18n, catalog: Catalog, database_url: str
) -> AsyncIterator[Harness]:
    h = Harness(fake, tmp_path, i18n, with_fresh_staff_chats(catalog), database_url=database_url)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()
        if h.settings.redis_url:
            await drop_redis_keys(h.settings.redis_url, h.redis_prefix)


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
