"""Jobs of the scheduler: the outbox tick, the recovery of interrupted deliveries, and periodic
checks (SLA escalations, the coordinators' digest, retention) that read their state from the
database each time they run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.jobstores.base import JobLookupError  # type: ignore[import-untyped]
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from bot.services.outbox import OutboxSender

log = logging.getLogger(__name__)

OUTBOX_JOB_ID = "outbox-deliver"
OUTBOX_RECOVER_JOB_ID = "outbox-recover"
BROADCAST_PROGRESS_JOB_ID = "broadcast-progress"


@dataclass(frozen=True, slots=True)
class Periodic:
    """A job run every ``every`` seconds, the first time at the scheduler's start. It must be
    safe to run at any time and any number of times: what it does once per day or per
    application it claims in the database."""

    id: str
    run: Callable[[], Awaitable[object]]
    every: float


def build_scheduler(
    sender: OutboxSender, *, tick_seconds: float = 1.0, periodic: Sequence[Periodic] = ()
) -> AsyncIOScheduler:
    """A scheduler (not started: call ``.start()`` inside the running event loop, and
    ``stop_scheduler`` on the way out) that

    - runs ``sender.deliver_due`` every ``tick_seconds`` (one run at a time; missed runs are
      coalesced into one), and at once whenever ``sender.wake()`` is called;
    - runs ``sender.recover`` at start and then once per lease, so rows a crash left in
      "sending" are settled;
    - runs each of ``periodic`` at start and then every ``every`` seconds.

    Only one process should run it against a database: ``scheduler.runner.SchedulerRunner``
    starts it only while holding the database lease.
    """
    if tick_seconds <= 0:
        raise ValueError("tick_seconds must be positive")
    scheduler = AsyncIOScheduler(timezone=UTC)
    now = datetime.now(UTC)
    scheduler.add_job(
        sender.deliver_due,
        IntervalTrigger(seconds=tick_seconds, timezone=UTC),
        id=OUTBOX_JOB_ID,
        name="outbox: deliver due messages",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        next_run_time=now,
    )
    scheduler.add_job(
        sender.recover,
        IntervalTrigger(seconds=sender.limits.lease_seconds, timezone=UTC),
        id=OUTBOX_RECOVER_JOB_ID,
        name="outbox: settle interrupted deliveries",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        next_run_time=now,
    )
    for job in periodic:
        scheduler.add_job(
            _guarded(job),
            IntervalTrigger(seconds=job.every, timezone=UTC),
            id=job.id,
            name=job.id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=now,
        )

    def run_now() -> None:
        if not scheduler.running:
            return
        try:
            scheduler.modify_job(OUTBOX_JOB_ID, next_run_time=datetime.now(UTC))
        except JobLookupError:
            log.debug("outbox job is gone; wake ignored")

    sender.set_waker(run_now)
    return scheduler


def _guarded(job: Periodic) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await job.run()
        except Exception as exc:  # noqa: BLE001 - the next run tries again
            # the type only: an exception's text may quote personal data
            log.error("scheduler job %s failed: %s", job.id, type(exc).__name__)

    return run


async def stop_scheduler(scheduler: AsyncIOScheduler, sender: OutboxSender) -> None:
    """Stop without cutting a delivery in mid-call: no new runs, let the running one finish,
    then shut down (APScheduler's own shutdown cancels running coroutine jobs)."""
    if not scheduler.running:
        return
    scheduler.pause()
    sender.set_waker(None)
    await sender.idle()
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn
