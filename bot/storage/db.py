"""Engine, session factory and migration to head on start."""

from __future__ import annotations

import asyncio
import time
import weakref
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import TracebackType
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

from bot.storage.sqlite_inline import InlineConnection, inline_creator

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: How long a writer waits for SQLite's single write lock before giving up (as busy_timeout).
SQLITE_WRITE_WAIT_SECONDS = 30
#: Connections kept open: enough for the concurrent updates of one process, so the pool does not
#: open (PRAGMAs and all) and close a connection per burst. An inline SQLite connection is only
#: a file handle; a PostgreSQL one is a server process, so fewer.
POOL_SIZE = 20
SQLITE_POOL_SIZE = 64
#: A server connection unused for longer than this is pinged before it is handed out (a restart
#: or an idle timeout of the server may have closed it meanwhile); one in steady use is not.
PING_AFTER_IDLE_SECONDS = 10.0


def create_engine(database_url: str) -> AsyncEngine:
    """Create the engine; SQL parameters are never put into error messages (no personal data)."""
    url = make_url(database_url)
    kwargs: dict[str, Any] = {"hide_parameters": True}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # A file on this machine: no connection goes stale, so no ping before each checkout;
        # queries run inline on the event loop (see sqlite_inline), not in a thread each.
        kwargs["connect_args"] = {"timeout": SQLITE_WRITE_WAIT_SECONDS}
        kwargs["pool_size"] = SQLITE_POOL_SIZE
        if url.database and url.database != ":memory:":
            kwargs["async_creator"] = inline_creator(url.database, SQLITE_WRITE_WAIT_SECONDS)
    else:
        kwargs["pool_size"] = POOL_SIZE
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """A server may have closed a pooled connection (restart, idle timeout): it is pinged before
    use when it sat idle for ``PING_AFTER_IDLE_SECONDS``, and replaced if the ping fails.
    ``pool_pre_ping`` pinged before every checkout: with asyncpg three round trips (begin,
    query, rollback), about a sixth of a webhook worker's CPU under load. A connection the
    server closes while in steady use fails its next statement, and SQLAlchemy then discards
    the whole pool (a disconnect error), as it would for a statement already under way."""
    dialect = engine.dialect

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # just opened, or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError("stale connection") from error

    event.listen(engine.sync_engine, "checkin", checkin)
    event.listen(engine.sync_engine, "checkout", checkout)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    inline = isinstance(getattr(dbapi_connection, "driver_connection", None), InlineConnection)
    # Inline connections wait for a lock without blocking the event loop (sqlite_inline).
    cursor.execute(f"PRAGMA busy_timeout={0 if inline else SQLITE_WRITE_WAIT_SECONDS * 1000}")
    # Deleted rows are overwritten with zeros, not just unlinked: an erased patient's data must
    # not stay readable in free space (issue 15; the WAL is checkpointed after an erasure).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


_write_locks: weakref.WeakKeyDictionary[Any, _WriteLock] = weakref.WeakKeyDictionary()


class _WriteLock:
    """SQLite has one writer at a time. Writers of this process queue here, in order, instead of
    inside SQLite, whose busy handler polls with sleeps of up to 100 ms (under load most of an
    update's time went there). Re-entrant for the task holding it (a service calling another)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self._depth = 0

    async def acquire(self) -> None:
        task = asyncio.current_task()
        if self._owner is task and task is not None:
            self._depth += 1
            return
        try:
            async with asyncio.timeout(SQLITE_WRITE_WAIT_SECONDS):
                await self._lock.acquire()
        except TimeoutError:
            raise OperationalError("BEGIN", None, Exception("database is locked")) from None
        self._owner, self._depth = task, 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._lock.release()


class _SerializedBegin(AbstractAsyncContextManager[AsyncSession]):
    def __init__(self, lock: _WriteLock, inner: Any) -> None:
        self._lock = lock
        self._inner = inner

    async def __aenter__(self) -> AsyncSession:
        await self._lock.acquire()
        try:
            session: AsyncSession = await self._inner.__aenter__()
        except BaseException:
            self._lock.release()
            raise
        return session

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            await self._inner.__aexit__(kind, error, trace)
        finally:
            self._lock.release()


class SessionFactory(async_sessionmaker[AsyncSession]):
    """``sessions()`` for reading, ``sessions.begin()`` for a unit of work that commits. On
    SQLite the units of work of one process take turns (see _WriteLock)."""

    def begin(self) -> AbstractAsyncContextManager[AsyncSession]:  # type: ignore[override]
        bind = self.kw.get("bind")
        if isinstance(bind, AsyncEngine) and bind.dialect.name == "sqlite":
            lock = _write_locks.setdefault(bind.sync_engine, _WriteLock())
            return _SerializedBegin(lock, super().begin())
        return super().begin()

    def read(self) -> AsyncConnection:
        """A connection for the reads every update makes (who writes, their dialogue, the
        inbox's order): a Core statement on a pooled connection, without an ORM session around
        it, costs about half. One statement each: on PostgreSQL it runs without a transaction
        around it (the same snapshot of its own, without the round trips of BEGIN and ROLLBACK,
        two of every three)."""
        bind = self.kw["bind"]
        assert isinstance(bind, AsyncEngine)
        if bind.dialect.name == "postgresql":
            twin = _autocommit.get(bind.sync_engine)
            if twin is None:  # built once per engine, not per read
                twin = _autocommit[bind.sync_engine] = bind.execution_options(
                    isolation_level="AUTOCOMMIT"
                )
            bind = twin
        return bind.connect()


#: Per engine, its twin that runs each statement on its own (PostgreSQL; the same pool).
_autocommit: weakref.WeakKeyDictionary[Any, AsyncEngine] = weakref.WeakKeyDictionary()


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return SessionFactory(engine, expire_on_commit=False)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (creates the SQLite file if needed)."""
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), revision))
