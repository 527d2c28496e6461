"""Claims that must succeed once however many processes try: "this job ran for this period"."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.scheduler_models import JobRun


async def claim_period(session: AsyncSession, name: str, period: str, now: datetime) -> bool:
    """True when this caller is the first to run job ``name`` for ``period`` (e.g. a date).

    A conditional UPDATE (the period differs) or, for a job never run, an INSERT ... ON
    CONFLICT DO NOTHING: of two concurrent callers exactly one wins, on SQLite and PostgreSQL.
    The claim commits with the caller's transaction, together with the job's own writes."""
    result = await session.execute(
        update(JobRun)
        .where(JobRun.name == name, JobRun.period != period)
        .values(period=period, ran_at=now)
        .execution_options(synchronize_session=False)
    )
    if int(cast(CursorResult[Any], result).rowcount or 0) == 1:
        return True
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = await session.execute(
        module.insert(JobRun)
        .values(name=name, period=period, ran_at=now)
        .on_conflict_do_nothing(index_elements=[JobRun.name])
        .returning(JobRun.name)
    )
    return inserted.scalar_one_or_none() is not None
