"""The scheduler drives time; all state lives in the database.

APScheduler 3.x (``AsyncIOScheduler``, in-memory job store) only decides *when* things run, so a
restart rebuilds the schedule from the database. It ticks the outbox sender (reminders are
outbox rows with a due time) and settles rows a crash left in mid-call, escalates applications
waiting for a decision longer than the SLA, queues the coordinators' daily digest and purges
old data (``scheduler.jobs``). It runs only while holding a lease in the database
(``scheduler.lease``, ``scheduler.runner``): inside the bot process by default, or as its own
process (``python -m scheduler``) when the bot runs as several webhook workers; a second
scheduler waits as a hot standby and takes over when the holder dies.
"""

from scheduler.jobs import OUTBOX_JOB_ID, OUTBOX_RECOVER_JOB_ID, build_scheduler, stop_scheduler

__all__ = ["OUTBOX_JOB_ID", "OUTBOX_RECOVER_JOB_ID", "build_scheduler", "stop_scheduler"]
