"""The scheduler drives time; all state lives in the database.

APScheduler 3.x (``AsyncIOScheduler``, in-memory job store) only decides *when* things run, so a
restart rebuilds the schedule from the database. Today it ticks the outbox sender (and settles
rows a crash left in mid-call); reminder due times, SLA checks (applications with no time after
3 days go to coordinators) and retention purges come later. It runs inside the bot process by
default; ``python -m scheduler`` (its own process, for several webhook workers, with a lock so
that only one scheduler is active) comes with another issue.
"""

from scheduler.jobs import OUTBOX_JOB_ID, OUTBOX_RECOVER_JOB_ID, build_scheduler, stop_scheduler

__all__ = ["OUTBOX_JOB_ID", "OUTBOX_RECOVER_JOB_ID", "build_scheduler", "stop_scheduler"]
