"""SQLite for the async engine without a thread per connection.

aiosqlite runs each connection in a thread of its own: every cursor, execute, fetch and close is
a hand-off to that thread and back (about four per statement), and under load the hand-offs and
the fight for the GIL cost more than the queries. Our queries on a local file take microseconds,
so this adapter runs them inline on the event loop, behind the same interface SQLAlchemy's
aiosqlite dialect drives (``create_async_engine(..., async_creator=...)``); only a commit, which
waits for the disk, goes to a thread.

It never blocks the loop on a lock: SQLite's own busy handler is off, and a statement refused
with "database is locked" (another process is writing) is tried again after an asyncio sleep,
until ``busy_seconds`` have passed. Writers of this process do not meet here at all: they take
turns on an asyncio lock first (bot.storage.db)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def _locked(error: sqlite3.OperationalError) -> bool:
    return "locked" in str(error) or "busy" in str(error)


async def _patiently(call: Callable[[], T], busy_seconds: float) -> T:
    deadline = time.monotonic() + busy_seconds
    pause = 0.002
    while True:
        try:
            return call()
        except sqlite3.OperationalError as error:
            if not _locked(error) or time.monotonic() + pause > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor, busy_seconds: float) -> None:
        self._cursor = cursor
        self._busy = busy_seconds

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        await _patiently(lambda: self._cursor.execute(sql, parameters or ()), self._busy)
        return self

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> InlineCursor:
        rows = list(rows)
        await _patiently(lambda: self._cursor.executemany(sql, rows), self._busy)
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def close(self) -> None:
        self._cursor.close()


class _CursorOpener:
    """``connection.cursor()`` is awaited through ``__aenter__`` by SQLAlchemy's adapter."""

    def __init__(self, cursor: InlineCursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self._cursor

    async def __aexit__(self, *_exc: object) -> None:
        await self._cursor.close()

    def __await__(self) -> Any:
        return self.__aenter__().__await__()


class _RunNow:
    """Stands in for aiosqlite's queue of calls to its thread, which SQLAlchemy's adapter uses
    directly to change the isolation level (AUTOCOMMIT): the call is made at once."""

    @staticmethod
    def put_nowait(item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:  # noqa: BLE001 - handed to the awaiting caller
            future.set_exception(error)


class InlineConnection:
    """The subset of ``aiosqlite.Connection`` that SQLAlchemy's aiosqlite dialect uses."""

    _tx = _RunNow()

    def __init__(self, connection: sqlite3.Connection, busy_seconds: float) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._busy = busy_seconds

    @property
    def _conn(self) -> sqlite3.Connection:
        assert self._connection is not None, "connection closed"
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: Any) -> None:
        self._conn.isolation_level = value

    def cursor(self) -> _CursorOpener:
        return _CursorOpener(InlineCursor(self._conn.cursor(), self._busy))

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        cursor = InlineCursor(self._conn.cursor(), self._busy)
        return await cursor.execute(sql, parameters)

    async def commit(self) -> None:
        connection = self._conn
        if not connection.in_transaction:
            return  # a unit of work that wrote nothing
        # The one call that waits for the disk (fsync of the WAL, synchronous=FULL: a committed
        # update survives a power cut): in a thread, so the loop goes on meanwhile.
        await asyncio.to_thread(connection.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)


def inline_creator(path: str, busy_seconds: float) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: connections to the file at ``path``."""

    async def connect() -> InlineConnection:
        # timeout=0: never wait inside SQLite; _patiently waits without blocking the loop.
        connection = sqlite3.connect(path, timeout=0, check_same_thread=False)
        return InlineConnection(connection, busy_seconds)

    return connect
