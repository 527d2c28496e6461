"""After an erasure: make the deleted rows' bytes leave the database files too.

SQLite runs with ``secure_delete`` on (freed cells and pages are zeroed, see ``db.py``); what
remains are the older page images in the write-ahead log, which a checkpoint with truncation
copies back and cuts away. PostgreSQL keeps dead tuples until VACUUM: the bot vacuums the tables
that hold personal data; rewriting files (VACUUM FULL), old WAL segments and backups are the
operator's part (README, «Personal data»)."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.models import Base

log = logging.getLogger("bot.erasure")

CHECKPOINT_TRIES = 50  # a checkpoint waits for readers (busy_timeout); a few retries on top


async def scrub(engine: AsyncEngine) -> bool:
    """Best effort, never raises: True when the files hold no older copy of deleted rows."""
    try:
        if engine.dialect.name == "sqlite":
            return await _sqlite_checkpoint(engine)
        if engine.dialect.name == "postgresql":
            await _postgres_vacuum(engine)
            return True
    except Exception as exc:  # noqa: BLE001 - the erasure itself is committed; report only
        log.error("erasure: scrubbing the database files failed: %s", type(exc).__name__)
    return False


async def _sqlite_checkpoint(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(CHECKPOINT_TRIES):
            row = (await auto.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).first()
            if row is None or int(row[0]) == 0:  # (busy, wal frames, checkpointed frames)
                return True
            await asyncio.sleep(0.1)  # a reader held an older snapshot: once it is done
    log.warning("erasure: the write-ahead log could not be checkpointed (readers busy)")
    return False


async def _postgres_vacuum(engine: AsyncEngine) -> None:
    tables = ", ".join(f'"{name}"' for name in sorted(Base.metadata.tables))
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.exec_driver_sql(f"VACUUM (ANALYZE) {tables}")
