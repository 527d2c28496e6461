"""Run the scheduler only while holding the database lease.

Every ``renew_every`` seconds (a third of the lease) the runner tries to take or renew the
lease. Holding it, it runs the scheduler (built afresh from the database each time it takes
over); failing to renew — the lease taken by another, the database unreachable, or no answer
within a quarter of the lease — it stops its jobs at once, before the lease could run out. A
runner that does not hold the lease waits as a hot standby and takes over at most ``lease +
renew_every`` seconds after the holder died: at its next look once the lease has run out, or at
once after a graceful stop (which releases the lease) or a death on the same host.

Between a holder's stall and its next renewal both may run for a moment: nothing is sent twice
even then, because every outbox row, SLA escalation and daily run is claimed in the database
with a conditional write that exactly one process wins. The lease keeps that rare, not safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

from bot.app import Services
from bot.services.outbox import OutboxSender
from scheduler.jobs import BROADCAST_PROGRESS_JOB_ID, Periodic, build_scheduler, stop_scheduler
from scheduler.lease import DatabaseLease

log = logging.getLogger(__name__)

SLA_JOB_ID = "sla-escalations"
DIGEST_JOB_ID = "coordinator-digest"
RETENTION_JOB_ID = "retention"
#: How often the periodic checks look at the database (each acts once per day or application).
CHECK_EVERY = 60.0


class SchedulerRunner:
    def __init__(
        self,
        sender: OutboxSender,
        lease: DatabaseLease,
        *,
        tick_seconds: float,
        periodic: Sequence[Periodic] = (),
        renew_every: float | None = None,
    ) -> None:
        self._sender = sender
        self.lease = lease
        self._tick_seconds = tick_seconds
        self._periodic = tuple(periodic)
        self.renew_every = renew_every or lease.duration.total_seconds() / 3
        # A renewal still unanswered after this counts as failed, and the jobs stop before the
        # lease can run out: the lease is counted from the start of the last renewal, which
        # took at most renew_timeout; then renew_every passes, then at most renew_timeout again
        # (1/4 + 1/3 + 1/4 of the lease).
        self.renew_timeout = lease.duration.total_seconds() / 4
        self._scheduler: AsyncIOScheduler | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def last_tick(self) -> datetime | None:
        """When this runner's outbox sender last ticked (None: never, e.g. a standby)."""
        return self._sender.last_tick

    @property
    def active(self) -> bool:
        """Whether this runner holds the lease and runs the jobs."""
        return self._scheduler is not None

    async def check(self) -> bool:
        """One look at the lease: take or renew it and start the jobs, or stop them."""
        async with self._lock:
            try:
                async with asyncio.timeout(self.renew_timeout):
                    held = await self.lease.acquire()
            except Exception as exc:  # noqa: BLE001 - no lease is the safe answer to any error
                log.warning("scheduler lease check failed: %s", type(exc).__name__)
                held = False
            if held and self._scheduler is None:
                log.info("scheduler lease taken by %s: jobs start", self.lease.holder)
                self._scheduler = build_scheduler(
                    self._sender, tick_seconds=self._tick_seconds, periodic=self._periodic
                )
                self._scheduler.start()
            elif not held and self._scheduler is not None:
                log.warning("scheduler lease lost by %s: jobs stop", self.lease.holder)
                await self._stop_jobs()
            return held

    def start(self) -> None:
        """Start the lease loop (inside the running event loop)."""
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="scheduler-lease")

    async def stop(self) -> None:
        """Stop the loop and the jobs (letting a delivery in flight finish), release the lease."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        async with self._lock:
            was_active = self._scheduler is not None
            await self._stop_jobs()
            if was_active:
                try:
                    await self.lease.release()
                except Exception as exc:  # noqa: BLE001 - it expires on its own
                    log.warning("scheduler lease not released: %s", type(exc).__name__)

    async def _loop(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any one look
                log.error("scheduler lease loop: %s", type(exc).__name__)
            await asyncio.sleep(self.renew_every)

    async def _stop_jobs(self) -> None:
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            await stop_scheduler(scheduler, self._sender)


def periodic_jobs(services: Services) -> list[Periodic]:
    """Broadcasts' progress (every few seconds); the SLA escalations, the digest and the
    retention purge (each checked every minute)."""
    progress_every = min(services.settings.broadcast_progress_seconds, 5)
    return [
        Periodic(BROADCAST_PROGRESS_JOB_ID, services.broadcasts.tick, progress_every),
        Periodic(SLA_JOB_ID, services.sla.escalate_overdue, CHECK_EVERY),
        Periodic(DIGEST_JOB_ID, services.sla.queue_digest, CHECK_EVERY),
        Periodic(RETENTION_JOB_ID, services.retention.purge_daily, CHECK_EVERY),
    ]


def build_runner(services: Services, sender: OutboxSender) -> SchedulerRunner:
    """The runner of the bot's (embedded) or the standalone scheduler: the same jobs, the same
    lease, so only one of them delivers the outbox at a time."""
    settings = services.settings
    lease = DatabaseLease(
        services.sessions, services.clock, seconds=settings.scheduler_lease_seconds
    )
    return SchedulerRunner(
        sender,
        lease,
        tick_seconds=settings.outbox_tick_seconds,
        periodic=periodic_jobs(services),
    )
