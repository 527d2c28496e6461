"""Coordinators' broadcasts: the audience (segments of consenting, reachable patients), one
outbox row per recipient, pause / resume / cancel, and the numbers of the progress message.

Each recipient is one outbox row of the group ``broadcast:<id>`` with the dedup key
``broadcast:<id>:<patient>``: a recipient is never queued twice, the outbox's claim keeps a row
from being sent twice, and a restart simply goes on with the rows still pending. The rows are
spread over time (``per_second``, below the outbox's global rate) so that personal
notifications, due "now", are never stuck behind a long broadcast.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, Table, and_, bindparam, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pseudonyms import tg
from bot.services.applications import OPEN, ConsultationStatus
from bot.services.audit import Action, Actor, Role, record
from bot.services.clock import Clock
from bot.services.outbox import Outbox
from bot.storage.broadcast_models import Broadcast
from bot.storage.db import SessionFactory
from bot.storage.models import Application, Consultation, Patient
from bot.storage.outbox_models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

#: Outbox job kind: edit the coordinator's progress message with the current numbers.
BROADCAST_PROGRESS = "broadcast_progress"

TEXT_LIMIT = 4096  # Telegram's limit for a message text
CAPTION_LIMIT = 1024  # ... and for a caption
UPCOMING_DAYS = (1, 3, 7, 14)
# Paused rows wait "forever"; resuming spreads them from now again.
_PAUSED_FOR = timedelta(days=3650)
_LIVE_CONSULTATIONS = (ConsultationStatus.SCHEDULED, ConsultationStatus.CONFIRMED)


class ContentKind(StrEnum):
    TEXT = "text"
    PHOTO = "photo"
    DOCUMENT = "document"


class AudienceKind(StrEnum):
    ALL = "all"
    REGION = "region"  # value: region code
    CENTER = "center"  # value: center code (patients with any application to it)
    REGISTERED = "registered"  # registered, no application and no consultation yet
    APPLIED = "applied"  # an open application
    UPCOMING = "upcoming"  # value: days; a live consultation within them


class BroadcastStatus(StrEnum):
    SENDING = "sending"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


FINISHED = frozenset({BroadcastStatus.CANCELLED, BroadcastStatus.DONE})


class Refusal(StrEnum):
    NOT_FOUND = "not_found"  # no such broadcast, or not this coordinator's
    FINISHED = "finished"  # done or cancelled already
    NOT_PAUSED = "not_paused"
    NOT_SENDING = "not_sending"


class BroadcastError(Exception):
    def __init__(self, reason: Refusal, progress: Progress | None = None) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.progress = progress


@dataclass(frozen=True, slots=True)
class Content:
    kind: ContentKind
    text: str  # HTML
    file_id: str | None = None

    @property
    def limit(self) -> int:
        return TEXT_LIMIT if self.kind is ContentKind.TEXT else CAPTION_LIMIT


@dataclass(frozen=True, slots=True)
class Audience:
    kind: AudienceKind
    value: str | int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "value": self.value}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Audience:
        return cls(AudienceKind(raw["kind"]), raw.get("value"))


@dataclass(frozen=True, slots=True)
class AudienceCount:
    recipients: int
    unreachable: int  # would be in the segment, but blocked the bot: skipped


@dataclass(frozen=True, slots=True)
class Progress:
    id: int
    author_id: int
    status: BroadcastStatus
    audience: Audience
    total: int
    sent: int
    failed: int
    blocked: int
    skipped: int  # not sent because the broadcast was cancelled
    left: int
    chat_id: int
    message_id: int | None
    created_at: datetime
    finished_at: datetime | None

    @property
    def counts(self) -> str:
        return f"{self.status}:{self.sent}/{self.failed}/{self.blocked}/{self.skipped}/{self.left}"


class BroadcastService:
    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        *,
        per_second: float = 20.0,
        progress_every: timedelta = timedelta(seconds=5),
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._per_second = per_second
        self._progress_every = progress_every

    # ---------------------------------------------------------------------------- audience
    async def count(self, audience: Audience) -> AudienceCount:
        async with self._sessions() as session:
            reachable = await session.scalar(
                select(func.count()).select_from(
                    _segment(audience, self._clock(), reachable=True).subquery()
                )
            )
            blocked = await session.scalar(
                select(func.count()).select_from(
                    _segment(audience, self._clock(), reachable=False).subquery()
                )
            )
        return AudienceCount(int(reachable or 0), int(blocked or 0))

    async def regions_with_patients(self) -> list[tuple[int, int]]:
        """(region code, patients) of regions that have consenting reachable patients."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Patient.region_code, func.count())
                .where(*_eligible(), Patient.unreachable_at.is_(None))
                .group_by(Patient.region_code)
                .order_by(func.count().desc(), Patient.region_code)
            )
            return [(int(code), int(n)) for code, n in rows.all()]

    # ------------------------------------------------------------------------------ start
    async def start(
        self,
        *,
        token: str,
        author_id: int,
        chat_id: int,
        message_id: int | None,
        content: Content,
        audience: Audience,
    ) -> tuple[Progress, bool]:
        """Queue the broadcast: one outbox row per recipient, in one transaction. Returns its
        progress and whether it was made now (False: this draft was confirmed before)."""
        if len(content.text) > content.limit:
            raise ValueError("content over Telegram's limit")
        now = self._clock()
        try:
            async with self._sessions.begin() as session:
                broadcast = Broadcast(
                    token=token,
                    author_id=author_id,
                    content_kind=content.kind.value,
                    text=content.text,
                    file_id=content.file_id,
                    audience=audience.as_json(),
                    total=0,
                    status=BroadcastStatus.SENDING,
                    progress_chat_id=chat_id,
                    progress_message_id=message_id,
                    shown_counts="",
                    shown_at=now,
                    created_at=now,
                )
                session.add(broadcast)
                await session.flush()
                recipients = await session.execute(
                    _segment(audience, now, reachable=True).order_by(Patient.id)
                )
                method, payload = _call(content)
                total = 0
                for patient_id, telegram_id in recipients.all():
                    Outbox.call(
                        session,
                        method=method,
                        payload=payload,
                        chat_id=telegram_id,
                        patient_id=patient_id,
                        due_at=now + self._spacing(total),
                        dedup_key=f"broadcast:{broadcast.id}:{patient_id}",
                        group_key=_group(broadcast.id),
                        now=now,
                    )
                    total += 1
                broadcast.total = total
                record(
                    session,
                    Actor(author_id, Role.COORDINATOR, chat_id),
                    Action.BROADCAST_STARTED,
                    now,
                    object_id=broadcast.id,
                    detail=f"{audience.kind}:{total}",
                )
                if not total:
                    broadcast.status = BroadcastStatus.DONE
                    broadcast.finished_at = now
                await session.flush()
                broadcast_id = broadcast.id
        except IntegrityError:
            async with self._sessions() as session:
                existing = await session.scalar(
                    select(Broadcast.id).where(Broadcast.token == token)
                )
            if existing is None:
                raise
            found = await self.progress(existing)
            assert found is not None
            return found, False
        log.info("broadcast %s by %s: %s recipients queued", broadcast_id, tg(author_id), total)
        progress = await self.progress(broadcast_id)
        assert progress is not None
        return progress, True

    def _shown_lately(self, broadcast: Broadcast, now: datetime) -> bool:
        shown = broadcast.shown_at
        return shown is not None and now - shown < self._progress_every

    def _spacing(self, position: int) -> timedelta:
        return timedelta(seconds=position / self._per_second)

    # ----------------------------------------------------------------- pause/resume/cancel
    async def pause(self, broadcast_id: int, author_id: int) -> Progress:
        async with self._sessions.begin() as session:
            broadcast = await self._own(session, broadcast_id, author_id)
            if broadcast.status != BroadcastStatus.SENDING:
                raise BroadcastError(Refusal.NOT_SENDING)
            await session.execute(
                update(_table())
                .where(_table().c.group_key == _group(broadcast_id))
                .where(_table().c.status == OutboxStatus.PENDING)
                # no retry mark: a paused row must not hold its chat's personal messages
                .values(due_at=self._clock() + _PAUSED_FOR, last_error=None)
            )
            broadcast.status = BroadcastStatus.PAUSED
        log.info("broadcast %s paused by %s", broadcast_id, tg(author_id))
        return await self._progress_or_gone(broadcast_id)

    async def resume(self, broadcast_id: int, author_id: int) -> Progress:
        now = self._clock()
        async with self._sessions.begin() as session:
            broadcast = await self._own(session, broadcast_id, author_id)
            if broadcast.status != BroadcastStatus.PAUSED:
                raise BroadcastError(Refusal.NOT_PAUSED)
            waiting = await session.scalars(
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.group_key == _group(broadcast_id),
                    OutboxMessage.status == OutboxStatus.PENDING,
                )
                .order_by(OutboxMessage.id)
            )
            moves = [
                {"row_id": row_id, "new_due": now + self._spacing(position)}
                for position, row_id in enumerate(waiting.all())
            ]
            if moves:
                table = _table()
                await session.execute(
                    update(table)
                    .where(table.c.id == bindparam("row_id"))
                    .where(table.c.status == OutboxStatus.PENDING)
                    .values(due_at=bindparam("new_due")),
                    moves,
                )
            broadcast.status = BroadcastStatus.SENDING
        log.info("broadcast %s resumed by %s", broadcast_id, tg(author_id))
        return await self._progress_or_gone(broadcast_id)

    async def cancel(self, broadcast_id: int, author_id: int) -> Progress:
        now = self._clock()
        async with self._sessions.begin() as session:
            broadcast = await self._own(session, broadcast_id, author_id)
            await Outbox.cancel_group(session, _group(broadcast_id))
            broadcast.status = BroadcastStatus.CANCELLED
            broadcast.finished_at = now
        log.info("broadcast %s cancelled by %s", broadcast_id, tg(author_id))
        return await self._progress_or_gone(broadcast_id)

    async def _own(self, session: AsyncSession, broadcast_id: int, author_id: int) -> Broadcast:
        broadcast = await session.get(Broadcast, broadcast_id, with_for_update=True)
        if broadcast is None or broadcast.author_id != author_id:
            raise BroadcastError(Refusal.NOT_FOUND)
        if broadcast.status in FINISHED:
            raise BroadcastError(Refusal.FINISHED, await _progress(session, broadcast))
        return broadcast

    async def _progress_or_gone(self, broadcast_id: int) -> Progress:
        found = await self.progress(broadcast_id)
        if found is None:
            raise BroadcastError(Refusal.NOT_FOUND)
        return found

    # ---------------------------------------------------------------------------- progress
    async def progress(self, broadcast_id: int) -> Progress | None:
        async with self._sessions() as session:
            broadcast = await session.get(Broadcast, broadcast_id)
            return None if broadcast is None else await _progress(session, broadcast)

    async def own_progress(
        self, broadcast_id: int, author_id: int, *, live: bool = False
    ) -> Progress:
        """The author's broadcast as it is now: NOT_FOUND for anyone else; with ``live``,
        FINISHED (carrying the progress) once it is over."""
        found = await self.progress(broadcast_id)
        if found is None or found.author_id != author_id:
            raise BroadcastError(Refusal.NOT_FOUND)
        if live and found.status in FINISHED:
            raise BroadcastError(Refusal.FINISHED, found)
        return found

    async def tick(self) -> int:
        """Finish broadcasts with nothing left and queue an edit of each progress message
        whose numbers changed (at most once per ``progress_every``). Returns how many edits
        were queued. The scheduler calls it; it only reads and writes the database."""
        now = self._clock()
        queued = 0
        async with self._sessions.begin() as session:
            active = await session.scalars(
                select(Broadcast).where(
                    Broadcast.status.in_((BroadcastStatus.SENDING, BroadcastStatus.PAUSED))
                )
            )
            for broadcast in active.all():
                progress = await _progress(session, broadcast)
                if broadcast.status == BroadcastStatus.SENDING and not progress.left:
                    broadcast.status = BroadcastStatus.DONE
                    broadcast.finished_at = now
                    progress = await _progress(session, broadcast)
                    log.info("broadcast %s finished", broadcast.id)
                elif progress.counts == broadcast.shown_counts or self._shown_lately(
                    broadcast, now
                ):
                    continue
                if broadcast.progress_message_id is None:
                    broadcast.shown_counts = progress.counts
                    continue
                Outbox.job(
                    session,
                    kind=BROADCAST_PROGRESS,
                    payload={"broadcast_id": broadcast.id},
                    chat_id=broadcast.progress_chat_id,
                    now=now,
                )
                broadcast.shown_counts = progress.counts
                broadcast.shown_at = now
                queued += 1
        return queued


# ------------------------------------------------------------------------------- queries


def _group(broadcast_id: int) -> str:
    return f"broadcast:{broadcast_id}"


def _table() -> Table:
    table = OutboxMessage.__table__
    assert isinstance(table, Table)
    return table


def _eligible() -> tuple[Any, ...]:
    """Who may ever get a broadcast: patients who gave consent (erased ones are gone)."""
    return (Patient.consent_at.is_not(None), Patient.consent_version != "")


def _segment(audience: Audience, now: datetime, *, reachable: bool) -> Select[int, int]:
    """(patient id, chat id) of the audience: the reachable ones, or those who blocked us."""
    query: Select[int, int] = select(Patient.id, Patient.telegram_id).where(*_eligible())
    query = query.where(
        Patient.unreachable_at.is_(None) if reachable else Patient.unreachable_at.is_not(None)
    )
    applications = select(Application.id).where(Application.patient_id == Patient.id)
    consultations = select(Consultation.id).where(Consultation.patient_id == Patient.id)
    kind = audience.kind
    if kind is AudienceKind.REGION:
        query = query.where(Patient.region_code == int(audience.value or 0))
    elif kind is AudienceKind.CENTER:
        query = query.where(
            exists(applications.where(Application.center_code == str(audience.value)))
        )
    elif kind is AudienceKind.REGISTERED:
        query = query.where(~exists(applications), ~exists(consultations))
    elif kind is AudienceKind.APPLIED:
        query = query.where(exists(applications.where(Application.status.in_(OPEN))))
    elif kind is AudienceKind.UPCOMING:
        until = now + timedelta(days=int(audience.value or 0))
        query = query.where(
            exists(
                consultations.where(
                    and_(
                        Consultation.status.in_(_LIVE_CONSULTATIONS),
                        Consultation.starts_at > now,
                        Consultation.starts_at <= until,
                    )
                )
            )
        )
    return query


def _call(content: Content) -> tuple[str, dict[str, Any]]:
    caption = {"caption": content.text, "parse_mode": "HTML"}
    if content.kind is ContentKind.PHOTO:
        return "sendPhoto", {"photo": content.file_id, **caption}
    if content.kind is ContentKind.DOCUMENT:
        return "sendDocument", {"document": content.file_id, **caption}
    return "sendMessage", {"text": content.text, "parse_mode": "HTML"}


async def _progress(session: AsyncSession, broadcast: Broadcast) -> Progress:
    m = OutboxMessage
    rows = await session.execute(
        select(m.status, m.last_error, func.count())
        .where(m.group_key == _group(broadcast.id))
        .group_by(m.status, m.last_error)
    )
    sent = failed = blocked = skipped = left = 0
    for status, last_error, n in rows.all():
        was_blocked = last_error == "blocked"
        if status == OutboxStatus.SENT:
            sent += n
        elif status in (OutboxStatus.PENDING, OutboxStatus.SENDING):
            left += n
        elif was_blocked:
            blocked += n
        elif status == OutboxStatus.CANCELLED:
            skipped += n
        else:
            failed += n
    return Progress(
        id=broadcast.id,
        author_id=broadcast.author_id,
        status=BroadcastStatus(broadcast.status),
        audience=Audience.from_json(broadcast.audience),
        total=broadcast.total,
        sent=sent,
        failed=failed,
        blocked=blocked,
        skipped=skipped,
        left=left,
        chat_id=broadcast.progress_chat_id,
        message_id=broadcast.progress_message_id,
        created_at=broadcast.created_at,
        finished_at=broadcast.finished_at,
    )
