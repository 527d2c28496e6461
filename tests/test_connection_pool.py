"""PostgreSQL connections: pinged before use only after sitting idle, replaced when the server
closed them (a restart, an idle timeout). On SQLite (no server) these tests are skipped."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.storage import db


async def _backend_pid(engine: db.AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(url: str, pid: int) -> None:
    """What a server restart does to one pooled connection: its backend is gone."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.sleep(0.2)


def _count_pings(engine: db.AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    real = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(1)
        return bool(real(dbapi_connection))

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL only (set TEST_DATABASE_URL)")
    return database_url


async def test_a_connection_in_steady_use_is_not_pinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.create_engine(postgres_url)
    pings = _count_pings(engine, monkeypatch)
    try:
        pids = {await _backend_pid(engine) for _ in range(20)}
        assert len(pids) == 1  # the pooled connection is reused
        assert pings == []  # ...without a round trip to check it each time
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
        await _backend_pid(engine)
        assert pings == [1]  # idle "long enough": checked before use
    finally:
        await engine.dispose()


async def test_an_idle_connection_the_server_closed_is_replaced_unnoticed(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.1)
    engine = db.create_engine(postgres_url)
    try:
        first = await _backend_pid(engine)
        await _terminate(postgres_url, first)  # idle for longer than the setting meanwhile
        second = await _backend_pid(engine)  # no error: the ping failed, a new connection
        assert second != first
    finally:
        await engine.dispose()


async def test_a_busy_connection_the_server_closed_fails_once_then_the_pool_recovers(
    postgres_url: str,
) -> None:
    engine = db.create_engine(postgres_url)  # the default: not pinged after a moment's rest
    try:
        first = await _backend_pid(engine)
        await _terminate(postgres_url, first)
        with pytest.raises(DBAPIError) as failed:
            await _backend_pid(engine)
        assert failed.value.connection_invalidated
        assert await _backend_pid(engine) != first  # the next statement has a new connection
    finally:
        await engine.dispose()


async def test_the_per_update_reads_run_without_a_transaction_around_them(
    postgres_url: str,
) -> None:
    """Each of the reads every update makes is one statement: on PostgreSQL it is sent alone,
    not between a BEGIN and a ROLLBACK (two more round trips to the server each)."""
    engine = db.create_engine(postgres_url)
    sessions = db.create_session_factory(engine)

    async def in_transaction(connection: db.AsyncConnection) -> bool:
        raw = await connection.get_raw_connection()
        return bool(raw.driver_connection.is_in_transaction())  # type: ignore[union-attr]

    try:
        for _ in range(3):
            async with sessions.read() as connection:
                assert await connection.scalar(text("SELECT 1")) == 1
                assert not await in_transaction(connection)
            async with sessions.begin() as session:  # a unit of work still has its transaction
                await session.execute(text("SELECT 1"))
                assert await in_transaction(await session.connection())
    finally:
        await engine.dispose()
