"""Retention: once a day, finished dialogues and settled outbox rows older than the retention
period are deleted. Pending rows (and rows being sent) are never touched, nor the rows of a
group that still has some waiting, nor dialogues still in a state: a patient may come back to
a half-done registration."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, or_, select
from sqlalchemy.orm import aliased

from bot.services.audit import AuditService
from bot.services.clock import Clock
from bot.storage.db import SessionFactory
from bot.storage.models import FsmRecord
from bot.storage.outbox_models import OutboxMessage, OutboxStatus
from bot.storage.runs import claim_period

log = logging.getLogger(__name__)

RETENTION_JOB = "retention"
SETTLED = (OutboxStatus.SENT, OutboxStatus.CANCELLED, OutboxStatus.MISSED, OutboxStatus.FAILED)
BATCH = 500  # rows per delete: short transactions, no long lock on the outbox


@dataclass(frozen=True, slots=True)
class Purged:
    dialogues: int
    outbox_rows: int
    audit_rows: int = 0


class RetentionService:
    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        *,
        retention_days: int,
        audit: AuditService | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.keep = timedelta(days=retention_days)
        self._audit = audit  # its rows have a retention of their own (AUDIT_RETENTION_DAYS)

    async def purge_daily(self) -> Purged | None:
        """The purge, at most once per UTC day (a restart does not repeat it); None if it has
        already run today."""
        now = self._clock()
        async with self._sessions.begin() as session:
            if not await claim_period(session, RETENTION_JOB, now.date().isoformat(), now):
                return None
        return await self.purge()

    async def purge(self) -> Purged:
        cutoff = self._clock() - self.keep
        async with self._sessions.begin() as session:
            # A finished dialogue: no state left (whatever data a handler left behind).
            dialogues = await session.execute(
                delete(FsmRecord).where(FsmRecord.state.is_(None), FsmRecord.updated_at < cutoff)
            )
        m = OutboxMessage
        waiting = aliased(OutboxMessage)
        old = and_(
            m.status.in_(SETTLED),
            m.created_at < cutoff,
            m.due_at < cutoff,
            or_(m.sent_at.is_(None), m.sent_at < cutoff),
            # a group (a broadcast, a consultation's reminders) goes only when none of its rows
            # waits any more: a paused broadcast keeps counting what it has sent
            or_(
                m.group_key.is_(None),
                ~select(waiting.id)
                .where(
                    waiting.group_key == m.group_key,
                    waiting.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
                )
                .exists(),
            ),
        )
        outbox_rows = 0
        while True:
            async with self._sessions.begin() as session:
                ids = list(await session.scalars(select(m.id).where(old).limit(BATCH)))
                if not ids:
                    break
                result = await session.execute(delete(m).where(m.id.in_(ids), old))
                outbox_rows += _rowcount(result)
        audit_rows = await self._audit.purge() if self._audit is not None else 0
        purged = Purged(
            dialogues=_rowcount(dialogues), outbox_rows=outbox_rows, audit_rows=audit_rows
        )
        log.info(
            "retention: %s finished dialogues, %s outbox rows and %s audit rows deleted",
            purged.dialogues,
            purged.outbox_rows,
            purged.audit_rows,
        )
        return purged


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)
