"""Jobs of the scheduler: the outbox tick and the recovery of interrupted deliveries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.jobstores.base import JobLookupError  # type: ignore[import-untyped]
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from bot.services.outbox import OutboxSender

log = logging.getLogger(__name__)

OUTBOX_JOB_ID = "outbox-deliver"
OUTBOX_RECOVER_JOB_ID = "outbox-recover"
BROADCAST_PROGRESS_JOB_ID = "broadcast-progress"


def build_scheduler(sender: OutboxSender, *, tick_seconds: float = 1.0) -> AsyncIOScheduler:
    """A scheduler (not started: call ``.start()`` inside the running event loop, and
    ``stop_scheduler`` on the way out) that

    - runs ``sender.deliver_due`` every ``tick_seconds`` (one run at a time; missed runs are
      coalesced into one), and at once whenever ``sender.wake()`` is called;
    - runs ``sender.recover`` at start and then once per lease, so rows a crash left in
      "sending" are settled.

    Only one process may run it against a database (see ``OutboxSender``): the caller holds
    the lock that guarantees that before starting it.
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

    def run_now() -> None:
        if not scheduler.running:
            return
        try:
            scheduler.modify_job(OUTBOX_JOB_ID, next_run_time=datetime.now(UTC))
        except JobLookupError:
            log.debug("outbox job is gone; wake ignored")

    sender.set_waker(run_now)
    return scheduler


def add_broadcast_progress(
    scheduler: AsyncIOScheduler, tick: Callable[[], Awaitable[int]], *, seconds: float
) -> None:
    """Run ``tick`` (``BroadcastService.tick``: finish broadcasts, queue progress edits) every
    ``seconds``; what it queues goes out with the next outbox tick."""
    scheduler.add_job(
        tick,
        IntervalTrigger(seconds=seconds, timezone=UTC),
        id=BROADCAST_PROGRESS_JOB_ID,
        name="broadcasts: progress messages",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )


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
