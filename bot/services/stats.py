"""Coordinators' numbers: patients, applications, decision times, overdue applications,
consultations and no-shows (/stats), and the rows of the applications export (/export).

Periods are calendar days in the programme's time zone (Moscow); stored times are UTC."""

from __future__ import annotations

import io
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.services.applications import BEFORE_TIME, ConsultationStatus, Status
from bot.services.audit import Action, Actor, record
from bot.services.clock import Clock
from bot.storage.db import SessionFactory
from bot.storage.models import Application, ApplicationEvent, Consultation, Patient
from bot.storage.outbox_models import OutboxMessage, OutboxStatus

PROGRAMME_ZONE = ZoneInfo("Europe/Moscow")
OVERDUE_AFTER = timedelta(days=3)
DECISIONS = (Status.TIME_ASSIGNED, Status.DECLINED, Status.INVITED)
MAX_EXPORT_DAYS = 366


@dataclass(frozen=True, slots=True)
class Stats:
    patients: int
    unreachable: int
    by_region: list[tuple[int, int]]  # (region code, patients), most first
    applications: dict[tuple[str, str], int]  # (center, status) -> count
    median_decision: timedelta | None
    decided: int
    overdue: int
    overdue_ids: list[int]  # the oldest first (a few, for the coordinator to look at)
    week_start: date
    week_consultations: dict[str, int]  # status -> count, this week
    no_shows_30_days: int
    # Messages to staff chats that failed for good (kept RETENTION_DAYS), by failure code.
    staff_failed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExportRow:
    application_id: int
    patient_id: int
    region_code: int | None
    center_code: str
    disease_group_code: str
    status: str
    created_at: datetime
    decided_at: datetime | None
    consultation_at: datetime | None
    consultation_status: str | None
    updated_at: datetime


class RangeProblem(StrEnum):
    FORMAT = "format"
    NO_SUCH_DATE = "no_such_date"
    REVERSED = "reversed"
    TOO_LONG = "too_long"


class RangeError(ValueError):
    def __init__(self, problem: RangeProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


_RANGE = re.compile(
    r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})\s*(?:-|–|—|\.\.|\s)\s*(\d{1,2})\.(\d{1,2})\.(\d{4})\s*$"
)


def parse_range(text: str) -> tuple[date, date]:
    """``01.11.2026-30.11.2026`` (also with a dash, "..", or a space) -> the two days."""
    found = _RANGE.match(text)
    if found is None:
        raise RangeError(RangeProblem.FORMAT)
    d1, m1, y1, d2, m2, y2 = (int(part) for part in found.groups())
    try:
        first, last = date(y1, m1, d1), date(y2, m2, d2)
    except ValueError:
        raise RangeError(RangeProblem.NO_SUCH_DATE) from None
    if last < first:
        raise RangeError(RangeProblem.REVERSED)
    if (last - first).days >= MAX_EXPORT_DAYS:
        raise RangeError(RangeProblem.TOO_LONG)
    return first, last


def month_of(day: date, *, previous: bool = False) -> tuple[date, date]:
    first = day.replace(day=1)
    if previous:
        first = (first - timedelta(days=1)).replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), PROGRAMME_ZONE)


class StatsService:
    def __init__(
        self, sessions: SessionFactory, clock: Clock, *, overdue_after: timedelta = OVERDUE_AFTER
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._overdue_after = overdue_after  # SLA_DAYS: the same "overdue" as the escalations

    def today(self) -> date:
        return self._clock().astimezone(PROGRAMME_ZONE).date()

    async def stats(self) -> Stats:
        now = self._clock()
        week_start = self.today() - timedelta(days=self.today().weekday())
        async with self._sessions() as session:
            patients = await session.scalar(select(func.count()).select_from(Patient)) or 0
            unreachable = (
                await session.scalar(
                    select(func.count()).where(Patient.unreachable_at.is_not(None))
                )
                or 0
            )
            regions = await session.execute(
                select(Patient.region_code, func.count())
                .group_by(Patient.region_code)
                .order_by(func.count().desc(), Patient.region_code)
            )
            by_status = await session.execute(
                select(Application.center_code, Application.status, func.count()).group_by(
                    Application.center_code, Application.status
                )
            )
            decisions = await session.execute(
                select(Application.created_at, func.min(ApplicationEvent.at))
                .join(ApplicationEvent, ApplicationEvent.application_id == Application.id)
                .where(
                    ApplicationEvent.status.in_(DECISIONS),
                    ApplicationEvent.at >= Application.created_at,
                )
                .group_by(Application.id, Application.created_at)
            )
            decided_after = [at - created for created, at in decisions.all()]
            decided_ids = (
                select(ApplicationEvent.application_id)
                .where(ApplicationEvent.status.in_(DECISIONS))
                .scalar_subquery()
            )
            overdue = await session.scalars(
                select(Application.id)
                .where(
                    Application.status.in_(BEFORE_TIME),
                    Application.created_at <= now - self._overdue_after,
                    Application.id.not_in(decided_ids),
                )
                .order_by(Application.created_at, Application.id)
            )
            overdue_ids = list(overdue.all())
            week = await session.execute(
                select(Consultation.status, func.count())
                .where(
                    Consultation.starts_at >= _start_of(week_start),
                    Consultation.starts_at < _start_of(week_start + timedelta(days=7)),
                )
                .group_by(Consultation.status)
            )
            staff_failed = await session.execute(
                select(OutboxMessage.last_error, func.count())
                .where(OutboxMessage.status == OutboxStatus.FAILED, OutboxMessage.chat_id < 0)
                .group_by(OutboxMessage.last_error)
            )
            no_shows = await session.scalar(
                select(func.count()).where(
                    Consultation.status == ConsultationStatus.NO_SHOW,
                    Consultation.starts_at >= now - timedelta(days=30),
                    Consultation.starts_at <= now,
                )
            )
        return Stats(
            patients=int(patients),
            unreachable=int(unreachable),
            by_region=[(int(code), int(n)) for code, n in regions.all()],
            applications={(c, s): int(n) for c, s, n in by_status.all()},
            median_decision=(
                timedelta(seconds=statistics.median(d.total_seconds() for d in decided_after))
                if decided_after
                else None
            ),
            decided=len(decided_after),
            overdue=len(overdue_ids),
            overdue_ids=overdue_ids[:20],
            week_start=week_start,
            week_consultations=dict(Counter({s: int(n) for s, n in week.all()})),
            no_shows_30_days=int(no_shows or 0),
            staff_failed={str(code or "unknown"): int(n) for code, n in staff_failed.all()},
        )

    async def export_rows(
        self, first: date, last: date, *, by: Actor | None = None
    ) -> list[ExportRow]:
        """Applications submitted from ``first`` to ``last`` (both included, Moscow days).
        No names, phones, birth dates, diagnoses or complaints: ids, where and what stage.
        The export is audited in the transaction that reads it."""
        start, end = _start_of(first), _start_of(last + timedelta(days=1))
        async with self._sessions.begin() as session:
            record(
                session,
                by,
                Action.APPLICATIONS_EXPORTED,
                self._clock(),
                detail=f"{first.isoformat()}..{last.isoformat()}",
            )
            found = await session.execute(
                select(Application, Patient.region_code)
                .join(Patient, Patient.id == Application.patient_id, isouter=True)
                .where(Application.created_at >= start, Application.created_at < end)
                .order_by(Application.created_at, Application.id)
            )
            rows = found.all()
            ids = [application.id for application, _region in rows]
            decided: dict[int, datetime] = {}
            consultations: dict[int, tuple[datetime, str]] = {}
            if ids:
                events = await session.execute(
                    select(ApplicationEvent.application_id, func.min(ApplicationEvent.at))
                    .where(
                        ApplicationEvent.application_id.in_(ids),
                        ApplicationEvent.status.in_(DECISIONS),
                    )
                    .group_by(ApplicationEvent.application_id)
                )
                decided = {int(app_id): at for app_id, at in events.all()}
                latest = await session.execute(
                    select(Consultation.application_id, Consultation.starts_at, Consultation.status)
                    .where(Consultation.application_id.in_(ids))
                    .order_by(Consultation.created_at, Consultation.id)
                )
                for app_id, starts_at, status in latest.all():
                    if app_id is not None:
                        consultations[app_id] = (starts_at, status)  # the latest wins
        return [
            ExportRow(
                application_id=application.id,
                patient_id=application.patient_id,
                region_code=region,
                center_code=application.center_code,
                disease_group_code=application.disease_group_code,
                status=application.status,
                created_at=application.created_at,
                decided_at=decided.get(application.id),
                consultation_at=consultations.get(application.id, (None, None))[0],
                consultation_status=consultations.get(application.id, (None, None))[1],
                updated_at=application.updated_at,
            )
            for application, region in rows
        ]


def build_xlsx(headers: list[str], rows: list[list[object]], sheet_title: str) -> bytes:
    """One sheet: a bold header row, frozen, with columns wide enough to read."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_title[:31]
    sheet.append(headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(row)
    sheet.freeze_panes = "A2"
    for index, header in enumerate(headers, start=1):
        width = max([len(header), *(len(str(row[index - 1] or "")) for row in rows[:200])])
        sheet.column_dimensions[get_column_letter(index)].width = min(60, width + 2)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
