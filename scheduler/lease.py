"""A lease in the database: one holder at a time, for as long as it keeps renewing.

``acquire`` both takes a free or expired lease and renews one already held, in one short
transaction: a conditional UPDATE (the row is ours, or it has expired) and, when there is no
row yet, an INSERT ... ON CONFLICT DO NOTHING. Of several processes trying at once exactly one
succeeds, on SQLite (writes are serialised) and on PostgreSQL (a concurrent UPDATE re-checks
its condition on the row the winner committed; a conflicting INSERT does nothing).

Time is the application's clock (``Clock``), not the database's, so tests can move it; the
hosts of the schedulers must therefore keep their clocks in step (NTP): a skew of ``s`` seconds
shifts the takeover by ``s``.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta

from sqlalchemy import case, delete, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.services.clock import Clock
from bot.storage.db import SessionFactory
from bot.storage.scheduler_models import Lease

SCHEDULER_LEASE = "scheduler"


def new_holder_id() -> str:
    """Unique per process start; names the host and pid for the operator (no personal data)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"


class DatabaseLease:
    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        *,
        seconds: float,
        name: str = SCHEDULER_LEASE,
        holder: str | None = None,
    ) -> None:
        if seconds <= 0:
            raise ValueError("a lease must last a positive time")
        self._sessions = sessions
        self._clock = clock
        self.name = name
        self.holder = holder or new_holder_id()
        self.duration = timedelta(seconds=seconds)

    async def acquire(self) -> bool:
        """Take the lease or renew it; False when another holder's lease has not expired."""
        now = self._clock()
        expires = now + self.duration
        async with self._sessions.begin() as session:
            renewed = await session.execute(
                update(Lease)
                .where(
                    Lease.name == self.name,
                    (Lease.holder == self.holder) | (Lease.expires_at <= now),
                )
                .values(
                    holder=self.holder,
                    expires_at=expires,
                    acquired_at=case((Lease.holder == self.holder, Lease.acquired_at), else_=now),
                )
                .returning(Lease.name)
                .execution_options(synchronize_session=False)
            )
            if renewed.scalar_one_or_none() is not None:
                return True
            module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            inserted = await session.execute(
                module.insert(Lease)
                .values(name=self.name, holder=self.holder, acquired_at=now, expires_at=expires)
                .on_conflict_do_nothing(index_elements=[Lease.name])
                .returning(Lease.name)
            )
            return inserted.scalar_one_or_none() is not None

    async def release(self) -> None:
        """Give the lease up (a graceful stop): a standby takes over at its next try."""
        async with self._sessions.begin() as session:
            await session.execute(
                delete(Lease).where(Lease.name == self.name, Lease.holder == self.holder)
            )

    async def current_holder(self) -> str | None:
        """Who holds the lease now (None if nobody or it has expired)."""
        async with self._sessions() as session:
            lease = await session.get(Lease, self.name)
            if lease is None or lease.expires_at <= self._clock():
                return None
            return lease.holder
