"""A lease in the database: one holder at a time, for as long as it keeps renewing.

``acquire`` both takes a free or expired lease and renews one already held, in one short
transaction: a conditional UPDATE (the row is ours, or it has expired) and, when there is no
row yet, an INSERT ... ON CONFLICT DO NOTHING. Of several processes trying at once exactly one
succeeds, on SQLite (writes are serialised) and on PostgreSQL (a concurrent UPDATE re-checks
its condition on the row the winner committed; a conflicting INSERT does nothing).

A holder that died on this very host (same host name and process namespace, its process gone)
is replaced at once rather than when its lease runs out: a bot restarted after a crash goes on
delivering without waiting. Anywhere else the lease's expiry is the only proof of death.

Time is the application's clock (``Clock``), not the database's, so tests can move it; the
hosts of the schedulers must therefore keep their clocks in step (NTP): a skew of ``s`` seconds
shifts the takeover by ``s``.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.services.clock import Clock
from bot.storage.db import SessionFactory
from bot.storage.scheduler_models import Lease

SCHEDULER_LEASE = "scheduler"


def new_holder_id() -> str:
    """Unique per process start: ``host:pid:namespace:random`` (no personal data). The pid
    namespace tells apart processes of containers that share a host name."""
    return f"{_host()}:{os.getpid()}:{_pid_namespace()}:{secrets.token_hex(4)}"


def _host() -> str:
    return socket.gethostname()[:64].replace(":", "_")


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def died_here(holder: str) -> bool:
    """Whether ``holder`` was a process of this host and namespace that no longer runs."""
    parts = holder.split(":")
    if len(parts) != 4 or parts[0] != _host() or not parts[2] or parts[2] != _pid_namespace():
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if pid == os.getpid():
        return True  # our own pid with another token: an earlier process of this pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists (another user's process): alive as far as we can tell
    return False


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
            if inserted.scalar_one_or_none() is not None:
                return True
            holder = await session.scalar(select(Lease.holder).where(Lease.name == self.name))
            if holder is None or holder == self.holder or not died_here(holder):
                return False
            taken = await session.execute(
                update(Lease)
                .where(Lease.name == self.name, Lease.holder == holder)
                .values(holder=self.holder, expires_at=expires, acquired_at=now)
                .returning(Lease.name)
                .execution_options(synchronize_session=False)
            )
            return taken.scalar_one_or_none() is not None

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
