"""The update inbox: store an update before Telegram gets its acknowledgement, hand it to one
worker, mark it finished (dropping the raw update), take over the updates of workers that died.

Each messenger has its own update ids and users (Telegram's; MAX's through aiogram-max): a row is
(messenger, update_id), and one person's order is kept per (messenger, order key).

Times here are wall-clock (not the domain clock): claims are compared between processes."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.messengers.identity import Messenger
from bot.services.clock import Clock, utc_now
from bot.storage.db import AsyncSession, SessionFactory
from bot.storage.inbox_models import InboxStatus, InboxUpdate

logger = logging.getLogger("bot.inbox")


_TABLE: Table = InboxUpdate.__table__  # type: ignore[assignment]
# Built once: every update is finished with it (see bot.fsm.storage for why).
_FINISH = (
    update(_TABLE)
    .where(_TABLE.c.messenger == bindparam("f_messenger"), _TABLE.c.update_id == bindparam("f_id"))
    .values(
        status=bindparam("f_status"),
        payload=None,
        order_key=0,
        claimed_by=None,
        finished_at=bindparam("f_at", type_=_TABLE.c.finished_at.type),
    )
)


def _store_statement(dialect: str) -> Any:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(_TABLE)
        .on_conflict_do_nothing(index_elements=["messenger", "update_id"])
        .returning(_TABLE.c.update_id)
    )


_NEWEST = _TABLE.alias("newest")
# Built once (every batch of updates is stored with them): many rows, one round trip.
_STORE = {dialect: _store_statement(dialect) for dialect in ("sqlite", "postgresql")}
_EARLIEST_ELSEWHERE = (
    select(_TABLE.c.order_key, func.min(_TABLE.c.update_id))
    .where(
        _TABLE.c.messenger == bindparam("messenger"),
        _TABLE.c.order_key.in_(bindparam("keys", expanding=True)),
        _TABLE.c.status == InboxStatus.PENDING,
        or_(_TABLE.c.claimed_by.is_(None), _TABLE.c.claimed_by != bindparam("me")),
    )
    .group_by(_TABLE.c.order_key)
)


@dataclass
class _Finish:
    messenger: str
    update_id: int
    failed: bool
    also: Callable[[AsyncSession], Awaitable[None]] | None
    done: asyncio.Future[None]


def _settle(item: _Finish, error: BaseException | None) -> None:
    if item.done.done():
        return
    if error is None:
        item.done.set_result(None)
    else:
        item.done.set_exception(error)


@dataclass
class StoredUpdate:
    update_id: int
    order_key: int
    payload: dict[str, Any]
    #: An earlier update of the same key was pending at another worker when this one was
    #: stored: this one waits until that is finished (see InboxService.waits_for_others).
    behind_others: bool = False
    #: The update as aiogram already read it (long polling), so it is not validated twice.
    update: Any = None
    #: Taken back from a worker that died (or from this one before a restart): it may have been
    #: handled in part already.
    again: bool = False
    #: Whose update it is: ids and order keys are per messenger.
    messenger: Messenger = Messenger.TELEGRAM

    @property
    def key(self) -> tuple[Messenger, int]:
        """The person (or chat) whose updates are handled in order."""
        return self.messenger, self.order_key


def is_dead_predecessor(claimed_by: str, stable_name: str) -> bool:
    """Is ``claimed_by`` (``name/pid/random``) an earlier, now dead, process of the worker
    called ``stable_name`` on this host? Its pid is gone, or is ours (a container restarts its
    program under the same pid)."""
    name, _, rest = claimed_by.partition("/")
    pid_text = rest.partition("/")[0]
    if name != stable_name or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def stable_worker_name(webhook_port: int | None) -> str:
    """The name a worker keeps across restarts without WORKER_NAME: the host and how it
    receives updates (one poller per bot; webhook workers differ by port)."""
    receiving = f"webhook{webhook_port}" if webhook_port is not None else "polling"
    return f"{socket.gethostname()}:{receiving}"[:40]


def order_key(payload: dict[str, Any]) -> int:
    """Whose updates must stay in order: the sender (``from``/``user``), else the chat."""
    for name, event in payload.items():
        if name == "update_id" or not isinstance(event, dict):
            continue
        for field in ("from", "user"):
            person = event.get(field)
            if isinstance(person, dict) and isinstance(person.get("id"), int):
                return int(person["id"])
        for holder in (event, event.get("message")):
            chat = holder.get("chat") if isinstance(holder, dict) else None
            if isinstance(chat, dict) and isinstance(chat.get("id"), int):
                return int(chat["id"])
    return 0


class InboxService:
    def __init__(
        self,
        sessions: SessionFactory,
        worker_id: str,
        *,
        stale_after: timedelta,
        keep_finished: timedelta,
        clock: Clock = utc_now,
        messengers: Iterable[Messenger] = (Messenger.TELEGRAM,),
    ) -> None:
        self._sessions = sessions
        self.worker_id = worker_id
        #: The messengers this worker handles: it takes over only their updates.
        self.messengers = tuple(messengers)
        self.stale_after = stale_after
        self.keep_finished = keep_finished
        self._clock = clock
        self._finishing: list[_Finish] = []
        self._committer: asyncio.Task[None] | None = None

    async def store(
        self, payloads: Sequence[dict[str, Any]], *, messenger: Messenger = Messenger.TELEGRAM
    ) -> list[StoredUpdate]:
        """Store updates of ``messenger`` claimed by this worker, in one transaction. Returns
        the ones that were new; an update_id already stored (delivered again) is left alone."""
        if not payloads:
            return []
        now = self._clock()
        updates = [
            StoredUpdate(int(p["update_id"]), order_key(p), p, messenger=messenger)
            for p in payloads
        ]
        rows = [
            {
                "messenger": messenger.value,
                "update_id": u.update_id,
                "order_key": u.order_key,
                "payload": u.payload,
                "status": InboxStatus.PENDING,
                "claimed_by": self.worker_id,
                "claimed_at": now,
                "received_at": now,
            }
            for u in updates
        ]
        async with self._sessions.begin() as session:
            dialect = session.get_bind().dialect.name
            result = await session.execute(_STORE[dialect], rows)
            new = set(result.scalars())
            stored = [u for u in updates if u.update_id in new]
            # Another worker may still hold an earlier update of the same person (a webhook
            # behind a round-robin proxy): then this one must wait for it. One query a batch.
            keys = sorted({u.order_key for u in stored})
            if keys:
                found = await session.execute(
                    _EARLIEST_ELSEWHERE,
                    {"keys": keys, "me": self.worker_id, "messenger": messenger.value},
                )
                earliest: dict[int, int] = dict(found.all())
                for item in stored:
                    first = earliest.get(item.order_key)
                    item.behind_others = first is not None and first < item.update_id
        if len(new) < len(rows):
            # MAX: every worker polls, so all but the first to store a batch see it "repeated"
            level = logging.INFO if messenger is Messenger.TELEGRAM else logging.DEBUG
            logger.log(level, "inbox: %s repeated update(s) ignored", len(rows) - len(new))
        return stored

    def _not_mine(self) -> Any:
        return or_(InboxUpdate.claimed_by.is_(None), InboxUpdate.claimed_by != self.worker_id)

    async def waits_for_others(self, item: StoredUpdate) -> bool:
        """Is an earlier update of the same key still pending and not in this worker's hands?
        (Then handling ``item`` now would answer the person out of order.)"""
        async with self._sessions.read() as connection:
            found = await connection.scalar(
                select(InboxUpdate.update_id)
                .where(
                    InboxUpdate.messenger == item.messenger.value,
                    InboxUpdate.order_key == item.order_key,
                    InboxUpdate.update_id < item.update_id,
                    InboxUpdate.status == InboxStatus.PENDING,
                    self._not_mine(),
                )
                .limit(1)
            )
        return found is not None

    async def still_mine(
        self, update_id: int, *, messenger: Messenger = Messenger.TELEGRAM
    ) -> bool:
        """Is the update still pending and claimed by this worker? (Not so when a peer took it
        over while this worker was alive but late with its heartbeat, and may have handled it.)"""
        async with self._sessions.read() as connection:
            found = await connection.scalar(
                select(InboxUpdate.update_id).where(
                    InboxUpdate.messenger == messenger.value,
                    InboxUpdate.update_id == update_id,
                    InboxUpdate.status == InboxStatus.PENDING,
                    InboxUpdate.claimed_by == self.worker_id,
                )
            )
        return found is not None

    async def finish(
        self,
        update_id: int,
        *,
        messenger: Messenger = Messenger.TELEGRAM,
        failed: bool = False,
        also: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> None:
        """The update was handled: keep only its id and outcome (no personal data: the order
        key is the sender's id on the messenger, needed only while the update is pending). ``also``
        writes the update's own state (its dialogue) in the same transaction.

        Updates finished at about the same time share one transaction (a group commit): the
        disk is waited for once for all of them, not once each in a queue."""
        done = asyncio.get_running_loop().create_future()
        self._finishing.append(_Finish(messenger.value, update_id, failed, also, done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_finished())
        await done

    async def _commit_finished(self) -> None:
        while self._finishing:
            batch, self._finishing = self._finishing, []
            try:
                await self._finish_all(batch)
            except Exception as error:  # noqa: BLE001 - each is tried alone, then told
                if len(batch) == 1:
                    _settle(batch[0], error)
                    continue
                for item in batch:  # one bad dialogue must not fail its neighbours
                    try:
                        await self._finish_all([item])
                    except Exception as alone:  # noqa: BLE001 - handed to its caller
                        _settle(item, alone)
                    else:
                        _settle(item, None)
            else:
                for item in batch:
                    _settle(item, None)

    async def _finish_all(self, batch: list[_Finish]) -> None:
        now = self._clock()
        async with self._sessions.begin() as session:
            for item in batch:
                if item.also is not None:
                    await item.also(session)
            await session.execute(
                _FINISH,
                [
                    {
                        "f_messenger": item.messenger,
                        "f_id": item.update_id,
                        "f_status": InboxStatus.FAILED if item.failed else InboxStatus.DONE,
                        "f_at": now,
                    }
                    for item in batch
                ],
            )

    async def heartbeat(self) -> None:
        """This worker is alive: refresh the claims of the updates it is handling."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(InboxUpdate)
                .where(
                    InboxUpdate.claimed_by == self.worker_id,
                    InboxUpdate.status == InboxStatus.PENDING,
                )
                .values(claimed_at=self._clock())
            )

    async def take_over(
        self,
        *,
        predecessor: str | None = None,
        only_if_dead: bool = False,
        limit: int = 500,
    ) -> list[StoredUpdate]:
        """Claim pending updates nobody handles: released ones and those of workers whose claim
        went stale (the worker died), of the messengers this worker handles. Oldest first; a
        live worker's fresh claim is never taken.

        ``predecessor``: this worker's stable name; the claims of its earlier processes (ids
        ``name/…``) are taken at once: that process is gone (``only_if_dead``: checked by its
        pid, for a name derived from the host rather than set by the operator)."""
        stale = self._clock() - self.stale_after
        orphaned = or_(InboxUpdate.claimed_by.is_(None), InboxUpdate.claimed_at < stale)
        served = InboxUpdate.messenger.in_([m.value for m in self.messengers])
        async with self._sessions() as session:
            if predecessor:
                earlier = (
                    await session.scalars(
                        select(InboxUpdate.claimed_by)
                        .where(
                            InboxUpdate.status == InboxStatus.PENDING,
                            InboxUpdate.claimed_by.startswith(f"{predecessor}/", autoescape=True),
                            InboxUpdate.claimed_by != self.worker_id,
                        )
                        .distinct()
                    )
                ).all()
                gone = [
                    worker
                    for worker in earlier
                    if worker and (not only_if_dead or is_dead_predecessor(worker, predecessor))
                ]
                if gone:
                    orphaned = or_(orphaned, InboxUpdate.claimed_by.in_(gone))
            candidates = [
                tuple(row)
                for row in await session.execute(
                    select(InboxUpdate.messenger, InboxUpdate.update_id)
                    .where(InboxUpdate.status == InboxStatus.PENDING, served, orphaned)
                    .order_by(InboxUpdate.update_id)
                    .limit(limit)
                )
            ]
        if not candidates:
            return []
        async with self._sessions.begin() as session:
            claimed = await session.execute(
                update(InboxUpdate)
                .where(
                    tuple_(InboxUpdate.messenger, InboxUpdate.update_id).in_(candidates),
                    InboxUpdate.status == InboxStatus.PENDING,
                    orphaned,
                )
                .values(claimed_by=self.worker_id, claimed_at=self._clock())
                .returning(
                    InboxUpdate.update_id,
                    InboxUpdate.order_key,
                    InboxUpdate.payload,
                    InboxUpdate.messenger,
                )
            )
            rows = claimed.all()
        taken = sorted(
            (
                StoredUpdate(
                    row[0],
                    row[1],
                    row[2],
                    behind_others=True,
                    again=True,
                    messenger=Messenger(row[3]),
                )
                for row in rows
                if row[2]
            ),
            key=lambda item: item.update_id,
        )
        if taken:
            logger.info("inbox: took over %s unfinished update(s)", len(taken))
        return taken

    async def release(
        self, update_ids: Iterable[int], *, messenger: Messenger = Messenger.TELEGRAM
    ) -> None:
        """Give back updates this worker will not finish (a stop): another worker, or this one
        after a restart, takes them at once instead of waiting for the claim to go stale."""
        ids = list(update_ids)
        if not ids:
            return
        async with self._sessions.begin() as session:
            await session.execute(
                update(InboxUpdate)
                .where(
                    InboxUpdate.messenger == messenger.value,
                    InboxUpdate.update_id.in_(ids),
                    InboxUpdate.claimed_by == self.worker_id,
                    InboxUpdate.status == InboxStatus.PENDING,
                )
                .values(claimed_by=None)
            )

    async def last_stored(self, messenger: Messenger) -> int | None:
        """The highest update id of ``messenger`` in the inbox: where its polling goes on after
        a restart (MAX: without a marker, its feed would give only its latest update)."""
        async with self._sessions() as session:
            found: int | None = await session.scalar(
                select(func.max(InboxUpdate.update_id)).where(
                    InboxUpdate.messenger == messenger.value
                )
            )
        return found

    async def purge_finished(self) -> int:
        """Forget finished updates older than ``keep_finished`` (they only guard against a late
        repeat of the same update_id), except each messenger's newest (``last_stored``: it holds
        no personal data once finished)."""
        cutoff: datetime = self._clock() - self.keep_finished
        newest = (
            select(func.max(_NEWEST.c.update_id))
            .where(_NEWEST.c.messenger == _TABLE.c.messenger)
            .scalar_subquery()
        )
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(_TABLE).where(
                    _TABLE.c.status != InboxStatus.PENDING,
                    _TABLE.c.finished_at < cutoff,
                    _TABLE.c.update_id < newest,
                )
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
