"""The outbox: messages written in the caller's transaction, delivered later under Telegram's
limits by one sender per process.

Writing (``Outbox``) happens inside the transaction of the change that caused the message, so a
rolled-back change sends nothing and a committed one is never forgotten. Delivering
(``OutboxSender``) claims each row with a conditional UPDATE before the HTTP call and records the
outcome after it, each in its own short transaction.

What "never twice" means here. Two senders (two processes, or two concurrent ``deliver_due``
calls) never both send a row: only one of them wins the claim (pending -> sending). The crash
window is the HTTP call itself: a process that dies after claiming a row cannot know whether
Telegram got the message. ``OutboxSender.recover`` therefore does not resend such a row blindly:
a row stuck in "sending" for longer than the lease goes back to "pending" only if its call is
safe to repeat (an edit, an answer, a deletion; a job kind registered as idempotent), and is
marked failed ("interrupted", its id logged) otherwise: a lost notification is visible and
recoverable by a person, a doubled one is not undone. Network errors are the one place where a
row is repeated although Telegram may have got it (a connection dropped after the request was
sent): they are retried with backoff, because losing every message of a network blip is worse.

A row may carry ``expires_at``: once that has passed, the row is no longer worth sending (a
reminder of a consultation that has begun, due while the bot was down) and the sender records
it as missed instead of sending it late; ``move_group`` moves the expiry with the due time.

Logs carry row ids, chat ids and short codes only: never texts, payloads or Telegram's error
descriptions (which may quote the text).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any, cast

import aiogram.methods
import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods.base import TelegramMethod
from aiogram.types import Message, MessageId
from pydantic import ValidationError
from sqlalchemy import (
    CursorResult,
    Select,
    Table,
    and_,
    event,
    func,
    inspect,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction, make_transient_to_detached
from sqlalchemy.sql import Insert

from bot.messengers.identity import Messenger, serving
from bot.pseudonyms import tg
from bot.sending import retries_by_caller
from bot.services.clock import Clock
from bot.storage.db import SessionFactory
from bot.storage.models import Patient
from bot.storage.outbox_models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

#: ``kind`` of a row that is one raw Bot API call (``method`` + ``payload``).
API = "api"

#: Bot API methods that may be repeated without harm after a crash in mid-call.
IDEMPOTENT_METHODS = frozenset(
    {
        "answerCallbackQuery",
        "closeForumTopic",
        "deleteMessage",
        "deleteMessages",
        "editForumTopic",
        "editMessageCaption",
        "editMessageMedia",
        "editMessageReplyMarkup",
        "editMessageText",
        "pinChatMessage",
        "reopenForumTopic",
        "sendChatAction",
        "setMessageReaction",
        "unpinChatMessage",
    }
)

# Telegram's 400 descriptions we tell apart (substring, lower case) -> our short code.
_BAD_REQUEST_CODES = (
    ("chat not found", "chat_not_found"),
    ("message thread not found", "thread_not_found"),
    ("message to edit not found", "message_not_found"),
    ("message to delete not found", "message_not_found"),
    ("message to be replied not found", "reply_not_found"),
    ("can't parse entities", "parse_error"),
    ("message is too long", "too_long"),
    ("wrong file identifier", "bad_file"),
)
_NOT_MODIFIED = "message is not modified"


# ---------------------------------------------------------------------------------- writing


@cache
def _api_methods() -> dict[str, type[TelegramMethod[Any]]]:
    found: dict[str, type[TelegramMethod[Any]]] = {}
    for name in dir(aiogram.methods):
        candidate = getattr(aiogram.methods, name)
        if (
            isinstance(candidate, type)
            and issubclass(candidate, TelegramMethod)
            and isinstance(getattr(candidate, "__api_method__", None), str)
        ):
            found[candidate.__api_method__] = candidate
    return found


def api_method(name: str) -> type[TelegramMethod[Any]]:
    """The aiogram method class of a Bot API method name ("sendMessage"); ValueError if none."""
    try:
        return _api_methods()[name]
    except KeyError:
        raise ValueError(f"unknown Bot API method {name!r}") from None


class Outbox:
    """Writes rows inside the caller's transaction (takes an AsyncSession; never commits).

    The writers are plain functions, callable from synchronous helpers of a service: the row is
    added to the session and reaches the database with the caller's next flush or commit. The
    returned ``OutboxMessage`` has its ``id`` once the session has flushed.

    ``dedup_key`` makes "send this once" idempotent: when a row with that key already exists
    (committed, or written earlier in the same transaction) nothing new is written and the
    caller's transaction goes on unharmed (INSERT ... ON CONFLICT DO NOTHING on SQLite and
    PostgreSQL). The returned object then carries the ``id`` of the row already there and is
    not attached to the session.
    """

    @staticmethod
    def send_message(
        session: AsyncSession,
        *,
        chat_id: int,
        text: str,
        reply_markup: dict[str, Any] | None = None,
        message_thread_id: int | None = None,
        patient_id: int | None = None,
        due_at: datetime | None = None,
        dedup_key: str | None = None,
        group_key: str | None = None,
        expires_at: datetime | None = None,
        now: datetime,
    ) -> OutboxMessage:
        """A ``sendMessage``; ``reply_markup`` is ``markup.model_dump(exclude_none=True)``."""
        payload: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if reply_markup is not None:
            payload["reply_markup"] = reply_markup
        if message_thread_id is not None:
            payload["message_thread_id"] = message_thread_id
        return Outbox.call(
            session,
            method="sendMessage",
            payload=payload,
            chat_id=chat_id,
            patient_id=patient_id,
            due_at=due_at,
            dedup_key=dedup_key,
            group_key=group_key,
            expires_at=expires_at,
            now=now,
        )

    @staticmethod
    def call(
        session: AsyncSession,
        *,
        method: str,
        payload: dict[str, Any],
        chat_id: int,
        patient_id: int | None = None,
        due_at: datetime | None = None,
        dedup_key: str | None = None,
        group_key: str | None = None,
        expires_at: datetime | None = None,
        now: datetime,
    ) -> OutboxMessage:
        """Any Bot API method with its parameters (``sendDocument`` with a file_id,
        ``editMessageText``, ``sendMediaGroup`` ...). The parameters are checked now, against
        aiogram's model of the method, so a mistake fails in the caller and not at delivery.
        ``chat_id`` is added to the payload when the method has one."""
        model = api_method(method)
        payload = dict(payload)
        has_chat = "chat_id" in model.model_fields
        if has_chat and payload.setdefault("chat_id", chat_id) != chat_id:
            raise ValueError("payload chat_id differs from the row's chat_id")
        model.model_validate(payload)
        return _add(
            session,
            kind=API,
            method=method,
            payload=payload,
            chat_id=chat_id,
            patient_id=patient_id,
            due_at=due_at,
            dedup_key=dedup_key,
            group_key=group_key,
            expires_at=expires_at,
            now=now,
        )

    @staticmethod
    def job(
        session: AsyncSession,
        *,
        kind: str,
        payload: dict[str, Any],
        chat_id: int,
        patient_id: int | None = None,
        due_at: datetime | None = None,
        dedup_key: str | None = None,
        group_key: str | None = None,
        expires_at: datetime | None = None,
        now: datetime,
    ) -> OutboxMessage:
        """A job delivered by the handler registered for ``kind`` (``OutboxSender.register``);
        ``chat_id`` is the chat it writes to (for the rate limits and for a 403)."""
        if kind == API:
            raise ValueError("use Outbox.call for raw Bot API calls")
        return _add(
            session,
            kind=kind,
            method=None,
            payload=payload,
            chat_id=chat_id,
            patient_id=patient_id,
            due_at=due_at,
            dedup_key=dedup_key,
            group_key=group_key,
            expires_at=expires_at,
            now=now,
        )

    @staticmethod
    async def cancel_group(session: AsyncSession, group_key: str) -> int:
        """Pending rows of the group -> cancelled; returns how many."""
        result = await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.group_key == group_key,
                OutboxMessage.status == OutboxStatus.PENDING,
            )
            .values(status=OutboxStatus.CANCELLED)
        )
        return _rowcount(result)

    @staticmethod
    async def move_group(session: AsyncSession, group_key: str, delta: timedelta) -> int:
        """Shift the due time of the group's pending rows by ``delta``; returns how many.

        A moved row is rescheduled: a retry mark it had (``last_error``) is cleared, and its
        ``expires_at`` moves with it."""
        rows = await session.execute(
            select(OutboxMessage.id, OutboxMessage.due_at, OutboxMessage.expires_at).where(
                OutboxMessage.group_key == group_key,
                OutboxMessage.status == OutboxStatus.PENDING,
            )
        )
        moved = 0
        for row_id, due_at, expires_at in rows.all():
            result = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id, OutboxMessage.status == OutboxStatus.PENDING)
                .values(
                    due_at=due_at + delta,
                    expires_at=None if expires_at is None else expires_at + delta,
                    last_error=None,
                )
            )
            moved += _rowcount(result)
        return moved


def _add(
    session: AsyncSession,
    *,
    kind: str,
    method: str | None,
    payload: dict[str, Any],
    chat_id: int,
    patient_id: int | None,
    due_at: datetime | None,
    dedup_key: str | None,
    group_key: str | None,
    expires_at: datetime | None,
    now: datetime,
) -> OutboxMessage:
    if any(t is not None and t.tzinfo is None for t in (now, due_at, expires_at)):
        raise ValueError("outbox times must be aware (UTC)")
    json.dumps(payload)  # not JSON: fail here, in the caller, not at the flush
    row = OutboxMessage(
        kind=kind,
        method=method,
        payload=payload,
        chat_id=chat_id,
        patient_id=patient_id,
        due_at=due_at or now,
        status=OutboxStatus.PENDING,
        attempts=0,
        created_at=now,
        dedup_key=dedup_key,
        group_key=group_key,
        expires_at=expires_at,
    )
    _listen(session.sync_session)
    session.add(row)
    return row


_LISTENING = "bot.services.outbox.listening"


def _listen(session: Session) -> None:
    if not session.info.get(_LISTENING):
        event.listen(session, "before_flush", _insert_outbox_rows)
        session.info[_LISTENING] = True


def _insert_outbox_rows(
    session: Session, _flush_context: UOWTransaction, _instances: Iterable[object] | None
) -> None:
    """Outbox rows of a flush that holds a row with a dedup_key are inserted here, in the order
    they were added, with ON CONFLICT DO NOTHING for the keyed ones (an ORM insert of a
    duplicate would break the caller's transaction). Other flushes are left to the ORM."""
    rows = [obj for obj in session.new if isinstance(obj, OutboxMessage)]
    if not any(row.dedup_key is not None for row in rows):
        return
    rows.sort(key=lambda row: inspect(row).insert_order or 0)
    connection = session.connection()
    for row in rows:
        values = {c.key: getattr(row, c.key) for c in OutboxMessage.__table__.columns}
        del values["id"]
        session.expunge(row)
        new_id = _insert(connection, values)
        if new_id is None:  # a duplicate: the caller gets the id of the row already there
            existing = _existing_id(connection, values["dedup_key"])
            if existing is not None:
                row.id = existing
            continue
        row.id = new_id
        make_transient_to_detached(row)
        session.add(row)


def _insert(connection: Connection, values: dict[str, Any]) -> int | None:
    """Insert one row; None when its dedup_key is taken."""
    table = _table()
    key = values["dedup_key"]
    dialect = connection.dialect.name
    stmt: Insert
    if key is not None and dialect in ("sqlite", "postgresql"):
        module = sqlite if dialect == "sqlite" else postgresql
        stmt = (
            module.insert(table)
            .values(values)
            .on_conflict_do_nothing(index_elements=[table.c.dedup_key])
            .returning(table.c.id)
        )
        inserted = connection.execute(stmt).scalar_one_or_none()
        return None if inserted is None else int(inserted)
    if key is not None and _existing_id(connection, key) is not None:
        return None  # other backends: checked first (a concurrent twin may still conflict)
    result = connection.execute(table.insert().values(values))
    primary_key = result.inserted_primary_key
    assert primary_key is not None
    return int(primary_key[0])


def _existing_id(connection: Connection, dedup_key: str) -> int | None:
    table = _table()
    found = connection.execute(
        select(table.c.id).where(table.c.dedup_key == dedup_key)
    ).scalar_one_or_none()
    return None if found is None else int(found)


def _table() -> Table:
    return cast(Table, OutboxMessage.__table__)


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


# --------------------------------------------------------------------------------- sending


#: A chat as the sender keys it: (messenger, chat id).
_Chat = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Limits:
    """Telegram's limits (≈30 messages/s in total, 1/s per chat, 20/min per group), held for
    each messenger's bot separately (MAX allows 30 requests/s to a bot too), and the
    retry policy. ``lease_seconds``: how long a claimed row may stay in "sending" before
    ``recover`` treats it as interrupted; each Bot API call is cut at ``request_timeout`` and a
    job handler at half the lease, so a live sender always finishes within the lease."""

    global_per_second: float = 30
    per_chat_per_second: float = 1
    per_group_per_minute: float = 20
    max_attempts: int = 8
    base_backoff: float = 2.0
    max_backoff: float = 300.0
    lease_seconds: float = 60.0
    request_timeout: int = 20

    def backoff(self, attempts: int) -> timedelta:
        """Wait after the ``attempts``-th failed try: base, doubled each time, capped."""
        seconds = self.base_backoff * 2 ** max(0, min(attempts - 1, 30))
        return timedelta(seconds=min(self.max_backoff, seconds))


@dataclass(slots=True)
class OutboxJob:
    """A row as a job handler (and the sender) sees it, detached from any session."""

    id: int
    kind: str
    method: str | None
    payload: dict[str, Any]
    chat_id: int
    patient_id: int | None
    due_at: datetime
    attempts: int
    group_key: str | None
    dedup_key: str | None
    expires_at: datetime | None = None
    #: Whose chat ``chat_id`` is: "telegram" or "max" (a MAX patient's dialog).
    messenger: str = "telegram"


#: Delivers one job row; returns the id of the message it sent (or None).
JobHandler = Callable[[OutboxJob, Bot], Awaitable[int | None]]
#: Called as ``on_blocked(patient_id, chat_id)`` after a 403 on delivery.
BlockedHook = Callable[[int | None, int], Awaitable[None]]
#: Called as ``on_staff_failure(chat_id, code)`` when a row to a group failed for good.
StaffFailureHook = Callable[[int, str], Awaitable[object]]


class _Window:
    """At most ``limit`` events in any ``span`` (a sliding window of event times)."""

    __slots__ = ("events", "limit", "span")

    def __init__(self, rate: float, period_seconds: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.limit = max(1, math.floor(rate))
        self.span = timedelta(seconds=period_seconds * self.limit / rate)
        self.events: deque[datetime] = deque()

    def _prune(self, now: datetime) -> None:
        while self.events and self.events[0] <= now - self.span:
            self.events.popleft()

    def allows(self, now: datetime) -> bool:
        self._prune(now)
        return len(self.events) < self.limit

    def add(self, now: datetime) -> None:
        self.events.append(now)

    def discard(self, at: datetime) -> None:
        with contextlib.suppress(ValueError):
            self.events.remove(at)

    def idle(self, now: datetime) -> bool:
        self._prune(now)
        return not self.events


class _Outcome(StrEnum):
    SENT = "sent"
    DEFERRED = "deferred"  # back to pending for later
    FAILED = "failed"
    LOST = "lost"  # the row changed under us (another sender recovered it)


class SkipDelivery(Exception):
    """Raised by a job handler when, at delivery, its message no longer makes sense (the
    consultation a reminder is about was cancelled): the row is recorded as cancelled with
    ``code`` and nothing is sent."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class _Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class OutboxSender:
    """Delivers due outbox rows with one ``aiogram.Bot``, honouring ``Limits``.

    Per tick (``deliver_due``): the due pending rows are read oldest first (at most as many per
    chat as the chat's limit allows in one go); chats are served concurrently, the rows of one
    chat in order, and a chat stops for the tick at its first row that is not sent. A chat with
    a row waiting for a retry (429, network) or in flight elsewhere is held entirely, so a later
    row never overtakes an earlier one. Rows over a limit simply stay pending for a later tick.

    The rate limits are counted in memory, so they hold for one sender per bot token. The
    claim keeps rows from being sent twice by any number of senders; keeping a second process
    from sending at all (the single active scheduler, guarded by a lock) is the job of whoever
    starts the scheduler: start it, and so this sender's ticks, only while holding that lock.
    """

    def __init__(
        self,
        sessions: SessionFactory,
        bot: Bot,
        clock: Clock,
        limits: Limits | None = None,
        *,
        on_blocked: BlockedHook | None = None,
        on_staff_failure: StaffFailureHook | None = None,
    ) -> None:
        self._sessions = sessions
        self._on_staff_failure = on_staff_failure
        self._bot = bot
        self._clock = clock
        self._limits = limits or Limits()
        self._on_blocked = on_blocked
        self._handlers: dict[str, tuple[JobHandler, bool]] = {}
        # Each messenger's limits are its own (a bot per messenger), and so are its pauses: a
        # 429 or a refused token of the MAX bot holds no Telegram row, nor the reverse. A chat
        # is (messenger, chat id): the two messengers' ids are separate name spaces.
        self._global: dict[str, _Window] = {}
        self._chats: dict[_Chat, _Window] = {}
        self._groups: dict[_Chat, _Window] = {}
        self._paused_until: dict[str, datetime] = {}
        self._chat_paused: dict[_Chat, datetime] = {}
        self._in_flight: set[int] = set()
        self._per_chat_batch = _Window(self._limits.per_chat_per_second, 1.0).limit
        self._concurrency = min(16, max(1, math.floor(self._limits.global_per_second)))
        self._waker: Callable[[], None] | None = None
        self._busy = 0
        self._wake_again = False
        self._idle = asyncio.Event()
        self._idle.set()
        #: When ``deliver_due`` last ran (for /metrics: a scheduler that stopped ticking).
        self.last_tick: datetime | None = None

    @property
    def limits(self) -> Limits:
        return self._limits

    def register(self, kind: str, handler: JobHandler, *, idempotent: bool = False) -> None:
        """Deliver rows of ``kind`` with ``handler``.

        A handler runs again after a 429 or a network error it let through, so one that sends
        several messages should pick up where it stopped. ``idempotent=True``: running it again
        after a crash in mid-delivery does no harm either (``recover`` then retries the row
        instead of failing it). A handler counts as one message for the rate limits."""
        if kind == API:
            raise ValueError(f"{API!r} is the kind of raw Bot API calls")
        self._handlers[kind] = (handler, idempotent)

    # ------------------------------------------------------------------------- waking up
    def set_waker(self, waker: Callable[[], None] | None) -> None:
        """What ``wake`` calls to get a ``deliver_due`` run soon (the scheduler installs it)."""
        self._waker = waker

    def wake(self) -> None:
        """Ask for a delivery soon: call after committing a transaction that wrote rows."""
        if self._busy:
            self._wake_again = True  # the running delivery takes one more pass
        elif self._waker is not None:
            self._waker()

    # ---------------------------------------------------------------------------- ticks
    async def deliver_due(self, max_rows: int = 200) -> int:
        """Deliver what is due now, within the limits; returns how many rows were sent."""
        self.last_tick = self._clock()
        self._busy += 1
        self._idle.clear()
        try:
            with retries_by_caller():  # a row's retries are the outbox's own, in the database
                sent = await self._deliver_once(max_rows)
            for _ in range(5):
                if not self._wake_again:
                    break
                self._wake_again = False
                with retries_by_caller():
                    sent += await self._deliver_once(max_rows)
            return sent
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def idle(self) -> None:
        """Return once no delivery is running (for a graceful stop: a delivery cancelled in
        mid-call leaves its row to ``recover``)."""
        await self._idle.wait()

    async def recover(self) -> int:
        """Settle rows left in "sending" by a crash (older than the lease; see the module
        docstring): repeatable ones go back to pending, the others fail as "interrupted".
        Returns how many rows were settled."""
        now = self._clock()
        cutoff = now - timedelta(seconds=self._limits.lease_seconds)
        stuck = OutboxMessage.status == OutboxStatus.SENDING
        old = or_(OutboxMessage.claimed_at.is_(None), OutboxMessage.claimed_at <= cutoff)
        settled = 0
        async with self._sessions.begin() as session:
            rows = await session.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.kind,
                    OutboxMessage.method,
                    OutboxMessage.attempts,
                ).where(stuck, old)
            )
            for row_id, kind, method, attempts in rows.all():
                if row_id in self._in_flight:
                    continue
                repeat = self._repeatable(kind, method) and attempts < self._limits.max_attempts
                values: dict[str, Any] = {"last_error": "interrupted", "claimed_at": None}
                values["status"] = OutboxStatus.PENDING if repeat else OutboxStatus.FAILED
                result = await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row_id, stuck, old)
                    .values(**values)
                )
                if _rowcount(result):
                    settled += 1
                    if repeat:
                        log.warning("outbox row %s interrupted in mid-call: retried", row_id)
                    else:
                        log.warning("outbox row %s interrupted in mid-call: not resent", row_id)
        return settled

    async def miss_expired(self, now: datetime) -> int:
        """Pending rows whose ``expires_at`` has passed -> missed (never sent late: a reminder
        due while the bot was down and stale by the time it is back). Returns how many."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.expires_at.is_not(None),
                    OutboxMessage.expires_at <= now,
                )
                .values(status=OutboxStatus.MISSED, last_error="expired", claimed_at=None)
                .execution_options(synchronize_session=False)
            )
        missed = _rowcount(result)
        if missed:
            log.warning("outbox: %s rows expired before they could be sent (missed)", missed)
        return missed

    def _repeatable(self, kind: str, method: str | None) -> bool:
        if kind == API:
            return method in IDEMPOTENT_METHODS
        registered = self._handlers.get(kind)
        return registered is not None and registered[1]

    async def _deliver_once(self, max_rows: int) -> int:
        now = self._clock()
        self._forget_idle(now)
        await self.miss_expired(now)
        async with self._sessions() as session:
            found = (await session.execute(self._due_query(now, max_rows))).all()
            ranked = [(int(position), _job(row)) for row, position in found]
        by_chat: dict[_Chat, list[tuple[int, OutboxJob]]] = {}
        for position, row in ranked:
            by_chat.setdefault((row.messenger, row.chat_id), []).append((position, row))
        queues = [_in_chat_order(items) for items in by_chat.values()]
        gate = asyncio.Semaphore(self._concurrency)
        results = await asyncio.gather(
            *(self._deliver_chat(queue, gate) for queue in queues if queue),
            return_exceptions=True,
        )
        sent = 0
        errors: list[BaseException] = []
        for result in results:
            if isinstance(result, BaseException):
                errors.append(result)
            else:
                sent += result
        if errors:
            for error in errors:
                log.error("outbox delivery error: %s", type(error).__name__)
            raise errors[0]
        return sent

    def _due_query(self, now: datetime, max_rows: int) -> Select[OutboxMessage, int]:
        """Due pending rows with their place in their chat's queue (1 = next), the first
        ``_per_chat_batch`` of each chat, oldest first.

        A chat's queue: a row waiting for a retry (it has a ``last_error``) was the head of its
        chat when it was tried, so it comes first; then due time, then writing order. A chat
        whose head still waits for its retry, or is in flight, is left out entirely."""
        m = OutboxMessage
        lease = timedelta(seconds=self._limits.lease_seconds)
        retry = m.last_error.is_not(None)
        held = select(m.messenger, m.chat_id).where(
            or_(
                and_(m.status == OutboxStatus.PENDING, retry, m.due_at > now),
                and_(m.status == OutboxStatus.SENDING, m.claimed_at > now - lease),
            )
        )
        queue_order = (m.last_error.is_(None), m.due_at, m.id)
        ranked = (
            select(
                m.id,
                func.row_number()
                .over(partition_by=(m.messenger, m.chat_id), order_by=queue_order)
                .label("queue_place"),
            )
            .where(
                m.status == OutboxStatus.PENDING,
                m.due_at <= now,
                tuple_(m.messenger, m.chat_id).not_in(held),
            )
            .subquery()
        )
        return (
            select(m, ranked.c.queue_place)
            .join(ranked, ranked.c.id == m.id)
            .where(ranked.c.queue_place <= self._per_chat_batch)
            .order_by(m.due_at, m.id)
            .limit(max_rows)
        )

    async def _deliver_chat(self, rows: list[OutboxJob], gate: asyncio.Semaphore) -> int:
        sent = 0
        async with gate:
            for row in rows:
                now = self._clock()
                chat = (row.messenger, row.chat_id)
                if not self._may_send(chat, now):
                    break
                self._take(chat, now)
                if not await self._claim(row.id, now):
                    self._give_back(chat, now)
                    break  # another sender has it; the rest of this chat waits
                row.attempts += 1
                if await self._send(row) is not _Outcome.SENT:
                    break
                sent += 1
        return sent

    # -------------------------------------------------------------------- rate limiting
    def _global_window(self, messenger: str) -> _Window:
        window = self._global.get(messenger)
        if window is None:
            window = self._global[messenger] = _Window(self._limits.global_per_second, 1.0)
        return window

    def _chat_window(self, chat: _Chat) -> _Window:
        window = self._chats.get(chat)
        if window is None:
            window = self._chats[chat] = _Window(self._limits.per_chat_per_second, 1.0)
        return window

    def _group_window(self, chat: _Chat) -> _Window:
        window = self._groups.get(chat)
        if window is None:
            window = self._groups[chat] = _Window(self._limits.per_group_per_minute, 60.0)
        return window

    def _may_send(self, chat: _Chat, now: datetime) -> bool:
        messenger, chat_id = chat
        paused = self._paused_until.get(messenger)
        if paused is not None and now < paused:
            return False
        paused = self._chat_paused.get(chat)
        if paused is not None and now < paused:
            return False
        if not self._global_window(messenger).allows(now):
            return False
        if not self._chat_window(chat).allows(now):
            return False
        return chat_id >= 0 or self._group_window(chat).allows(now)

    def _take(self, chat: _Chat, now: datetime) -> None:
        self._global_window(chat[0]).add(now)
        self._chat_window(chat).add(now)
        if chat[1] < 0:
            self._group_window(chat).add(now)

    def _give_back(self, chat: _Chat, at: datetime) -> None:
        self._global_window(chat[0]).discard(at)
        self._chat_window(chat).discard(at)
        if chat[1] < 0:
            self._group_window(chat).discard(at)

    def _forget_idle(self, now: datetime) -> None:
        for windows in (self._chats, self._groups):
            for chat in [c for c, w in windows.items() if w.idle(now)]:
                del windows[chat]
        for chat in [c for c, until in self._chat_paused.items() if until <= now]:
            del self._chat_paused[chat]
        for messenger in [m for m, until in self._paused_until.items() if until <= now]:
            del self._paused_until[messenger]

    # -------------------------------------------------------------------------- one row
    async def _claim(self, row_id: int, now: datetime) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == row_id,
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.due_at <= now,
                    or_(OutboxMessage.expires_at.is_(None), OutboxMessage.expires_at > now),
                )
                .values(
                    status=OutboxStatus.SENDING,
                    attempts=OutboxMessage.attempts + 1,
                    claimed_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            return _rowcount(result) == 1

    async def _perform(self, row: OutboxJob) -> int | None:
        # A MAX patient's row: calls to its chat go to the MAX bot (bot.messengers.routing).
        messenger = Messenger(row.messenger)
        user_id = None
        if messenger is not Messenger.TELEGRAM and row.patient_id is not None:
            async with self._sessions() as session:
                user_id = await session.scalar(
                    select(Patient.telegram_id).where(Patient.id == row.patient_id)
                )
        with serving(messenger, row.chat_id, user_id):
            return await self._perform_as_addressed(row)

    async def _perform_as_addressed(self, row: OutboxJob) -> int | None:
        if row.kind == API:
            try:
                model = api_method(row.method or "")
                call = model.model_validate(row.payload)
            except (ValueError, ValidationError):
                raise _Refused("invalid_call") from None
            result = await self._bot(call, request_timeout=self._limits.request_timeout)
            return _message_id(result)
        registered = self._handlers.get(row.kind)
        if registered is None:
            raise _Refused("unknown_kind")
        async with asyncio.timeout(self._limits.lease_seconds / 2):
            return await registered[0](row, self._bot)

    async def _send(self, row: OutboxJob) -> _Outcome:
        self._in_flight.add(row.id)
        try:
            return await self._send_and_record(row)
        finally:
            self._in_flight.discard(row.id)

    async def _send_and_record(self, row: OutboxJob) -> _Outcome:
        try:
            message_id = await self._perform(row)
        except TelegramRetryAfter as exc:
            return await self._retry_after(row, exc)
        except TelegramForbiddenError:
            return await self._blocked(row)
        except TelegramBadRequest as exc:
            if _NOT_MODIFIED in exc.message.lower():
                return await self._finish(row, OutboxStatus.SENT)
            return await self._fail(row, _bad_request_code(exc.message))
        except TelegramEntityTooLarge:
            return await self._fail(row, "too_large")
        except TelegramMigrateToChat:
            return await self._fail(row, "chat_migrated")
        except TelegramNotFound:
            return await self._fail(row, "not_found")
        except TelegramUnauthorizedError:
            # the token is wrong: nothing is the row's fault; stop this bot's rows for a while
            until = self._clock() + timedelta(seconds=self._limits.max_backoff)
            self._paused_until[row.messenger] = until
            log.error(
                "outbox: the %s API refused the token (401); its delivery paused", row.messenger
            )
            return await self._back_to_pending(row, until, "unauthorized", count=False)
        except (TelegramNetworkError, TelegramServerError, aiohttp.ClientError, TimeoutError):
            return await self._network_error(row)
        except TelegramAPIError as exc:
            log.warning("outbox row %s: Bot API error %s", row.id, type(exc).__name__)
            return await self._fail(row, "api_error")
        except _Refused as exc:
            return await self._fail(row, exc.code)
        except SkipDelivery as exc:
            log.info("outbox row %s skipped: %s", row.id, exc.code)
            ok = await self._record(
                row, status=OutboxStatus.CANCELLED, last_error=exc.code[:32], claimed_at=None
            )
            return _Outcome.SENT if ok else _Outcome.LOST
        except Exception as exc:  # noqa: BLE001 - a handler's bug must not stop the others
            # the type only: an exception's text may quote personal data
            log.error(
                "outbox row %s: handler of %s raised %s", row.id, row.kind, type(exc).__name__
            )
            return await self._fail(row, "handler_error")
        return await self._finish(row, OutboxStatus.SENT, message_id)

    # --------------------------------------------------------------------- the outcomes
    async def _record(self, row: OutboxJob, **values: Any) -> bool:
        """Write the outcome of a claimed row (if it is still ours: still "sending")."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id, OutboxMessage.status == OutboxStatus.SENDING)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            recorded = _rowcount(result) == 1
        if not recorded:
            log.warning("outbox row %s was settled elsewhere while being sent", row.id)
        return recorded

    async def _finish(
        self, row: OutboxJob, status: OutboxStatus, message_id: int | None = None
    ) -> _Outcome:
        ok = await self._record(
            row,
            status=status,
            sent_at=self._clock(),
            result_message_id=message_id,
            last_error=None,
            claimed_at=None,
        )
        return _Outcome.SENT if ok else _Outcome.LOST

    async def _fail(self, row: OutboxJob, code: str) -> _Outcome:
        log.warning("outbox row %s to chat %s failed: %s", row.id, tg(row.chat_id), code)
        ok = await self._record(row, status=OutboxStatus.FAILED, last_error=code, claimed_at=None)
        if ok and row.chat_id < 0 and self._on_staff_failure is not None:
            # a card or a notice that staff will never see: somebody must be told
            try:
                await self._on_staff_failure(row.chat_id, code)
            except Exception as exc:  # noqa: BLE001 - the row is settled either way
                log.error(
                    "outbox staff failure hook for chat %s: %s", row.chat_id, type(exc).__name__
                )
        return _Outcome.FAILED if ok else _Outcome.LOST

    async def _back_to_pending(
        self, row: OutboxJob, due_at: datetime, code: str, *, count: bool
    ) -> _Outcome:
        values: dict[str, Any] = {
            "status": OutboxStatus.PENDING,
            "due_at": due_at,
            "last_error": code,
            "claimed_at": None,
        }
        if not count:  # this try does not use up the row's attempts
            values["attempts"] = OutboxMessage.attempts - 1
        ok = await self._record(row, **values)
        return _Outcome.DEFERRED if ok else _Outcome.LOST

    async def _retry_after(self, row: OutboxJob, exc: TelegramRetryAfter) -> _Outcome:
        until = self._clock() + timedelta(seconds=max(1, exc.retry_after))
        context = getattr(exc.method, "chat_id", None)
        if isinstance(context, int):
            self._chat_paused[(row.messenger, context)] = until
            self._chat_paused[(row.messenger, row.chat_id)] = until
            log.warning(
                "outbox row %s: 429, chat %s paused %ss", row.id, tg(context), exc.retry_after
            )
        else:
            self._paused_until[row.messenger] = until
            log.warning(
                "outbox row %s: 429, all %s delivery paused %ss",
                row.id,
                row.messenger,
                exc.retry_after,
            )
        return await self._back_to_pending(row, until, "retry_after", count=False)

    async def _network_error(self, row: OutboxJob) -> _Outcome:
        if row.attempts >= self._limits.max_attempts:
            return await self._fail(row, "network")
        due = self._clock() + self._limits.backoff(row.attempts)
        log.info("outbox row %s: network error, try %s, retry later", row.id, row.attempts)
        return await self._back_to_pending(row, due, "network", count=True)

    async def _blocked(self, row: OutboxJob) -> _Outcome:
        if row.chat_id < 0:
            # a group removed the bot: no patient blocked anything; the staff are alerted
            return await self._fail(row, "forbidden")
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id, OutboxMessage.status == OutboxStatus.SENDING)
                .values(status=OutboxStatus.FAILED, last_error="blocked", claimed_at=None)
                .execution_options(synchronize_session=False)
            )
            if not _rowcount(result):
                return _Outcome.LOST
            cancelled = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.chat_id == row.chat_id,
                    OutboxMessage.status == OutboxStatus.PENDING,
                )
                .values(status=OutboxStatus.CANCELLED, last_error="blocked")
                .execution_options(synchronize_session=False)
            )
        log.warning(
            "outbox row %s: chat %s blocked the bot (403); %s pending rows cancelled",
            row.id,
            tg(row.chat_id),
            _rowcount(cancelled),
        )
        if self._on_blocked is not None:
            try:
                await self._on_blocked(row.patient_id, row.chat_id)
            except Exception as exc:  # noqa: BLE001 - the row is settled either way
                log.error(
                    "outbox on_blocked for chat %s raised %s", tg(row.chat_id), type(exc).__name__
                )
        return _Outcome.FAILED


def _job(row: OutboxMessage) -> OutboxJob:
    return OutboxJob(
        id=row.id,
        kind=row.kind,
        method=row.method,
        payload=row.payload,
        chat_id=row.chat_id,
        patient_id=row.patient_id,
        due_at=row.due_at,
        attempts=row.attempts,
        group_key=row.group_key,
        dedup_key=row.dedup_key,
        expires_at=row.expires_at,
        messenger=row.messenger,
    )


def _in_chat_order(items: list[tuple[int, OutboxJob]]) -> list[OutboxJob]:
    """The rows of one chat by their place in its queue, cut at the first gap (a row the
    query's LIMIT left out must not be overtaken)."""
    items.sort(key=lambda item: item[0])
    queue: list[OutboxJob] = []
    for expected, (position, row) in enumerate(items, start=1):
        if position != expected:
            break
        queue.append(row)
    return queue


def _message_id(result: object) -> int | None:
    if isinstance(result, Message | MessageId):
        return result.message_id
    if isinstance(result, list) and result and isinstance(result[0], Message | MessageId):
        return result[0].message_id  # an album: its first message
    return None


def _bad_request_code(description: str) -> str:
    lowered = description.lower()
    for needle, code in _BAD_REQUEST_CODES:
        if needle in lowered:
            return code
    return "bad_request"
