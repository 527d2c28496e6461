"""Nothing toward staff fails silently: a message to a staff chat that failed for good, or a
card that had to go without its topic, is told to the coordinators — once per cause (the chat
and the failure code), however often it happens, by a keyed outbox row each."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import func, select

from bot.services.clock import Clock
from bot.services.outbox import Outbox
from bot.storage.db import SessionFactory
from bot.storage.outbox_models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

#: Outbox job kind of the coordinators' alert (rendered at delivery, in their language).
STAFF_ALERT = "staff_alert"
#: ``code`` of an alert about a card that went without a topic.
NO_TOPIC = "no_topic"


class StaffAlerts:
    def __init__(self, sessions: SessionFactory, clock: Clock, coordinator_ids: Iterable[int]):
        self._sessions = sessions
        self._clock = clock
        self._coordinators = sorted(set(coordinator_ids))

    async def report(self, chat_id: int, code: str, *, application_id: int | None = None) -> int:
        """Queue the alert for every coordinator unless this cause was reported already;
        returns how many rows were written."""
        log.warning("staff chat %s: delivery problem %s", chat_id, code)
        if not self._coordinators:
            log.warning("staff chat %s: no COORDINATOR_IDS to alert about %s", chat_id, code)
            return 0
        now = self._clock()
        written = 0
        async with self._sessions.begin() as session:
            for coordinator in self._coordinators:
                row = Outbox.job(
                    session,
                    kind=STAFF_ALERT,
                    payload={"chat_id": chat_id, "code": code, "application_id": application_id},
                    chat_id=coordinator,
                    dedup_key=f"staff-alert:{chat_id}:{code}:{coordinator}",
                    now=now,
                )
                await session.flush()
                written += row in session
        return written

    async def failures(self) -> dict[str, int]:
        """Messages to staff chats that failed for good (still kept), by code."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(OutboxMessage.last_error, func.count())
                .where(OutboxMessage.status == OutboxStatus.FAILED, OutboxMessage.chat_id < 0)
                .group_by(OutboxMessage.last_error)
            )
            return {str(code or "unknown"): int(n) for code, n in rows.all()}
