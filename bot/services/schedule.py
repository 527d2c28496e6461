"""The duty schedule, kept by coordinators: duty doctors, their slots (made from a plan or a CSV
table) and the removal of slots. Removing a booked slot cancels the booking and tells the
patient through the outbox, in the same transaction."""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.catalog import Catalog, Region, normalize_text
from bot.services.applications import ConsultationStatus
from bot.services.audit import Action, Actor, record
from bot.services.booking import LIVE, SPECIALTIES
from bot.services.clock import Clock
from bot.services.outbox import Outbox
from bot.services.reminder_plan import ReminderPlan
from bot.services.tables import Unreadable, UnreadableTableError, open_table
from bot.storage.db import SessionFactory
from bot.storage.models import Consultation, DutyDoctor, DutySlot, Patient

log = logging.getLogger(__name__)

#: Outbox job: a booked slot was removed; payload ``{"consultation_id": ...}``.
SLOT_REMOVED = "duty_slot_removed"
#: Why a consultation was cancelled when its slot was removed by a coordinator.
SLOT_REMOVED_REASON = "slot_removed"

DEFAULT_TIME_ZONE = "Europe/Moscow"
SLOT_LENGTHS = (15, 20, 30, 45, 60)
MIN_SLOT_MINUTES = 5
MAX_SLOT_MINUTES = 240
MAX_RANGE_DAYS = 92
MAX_SLOTS_AT_ONCE = 5000
MAX_NAME = 128
MAX_ABOUT = 255
MAX_CSV_BYTES = 1024 * 1024
MAX_CSV_ROWS = 10_000
REGIONS_OFFERED = 10


class InputProblem(StrEnum):
    """Why a value typed by a coordinator was not taken (the step is asked again)."""

    DATE_FORMAT = "date_format"
    NO_SUCH_DATE = "no_such_date"
    END_BEFORE_START = "end_before_start"
    PAST_DATE = "past_date"
    RANGE_TOO_LONG = "range_too_long"
    HOURS_FORMAT = "hours_format"
    END_NOT_AFTER_START = "end_not_after_start"
    NAME_LENGTH = "name_length"
    ABOUT_LENGTH = "about_length"
    UNKNOWN_TIME_ZONE = "unknown_time_zone"
    TOO_MANY_SLOTS = "too_many_slots"


class ScheduleInputError(ValueError):
    def __init__(self, problem: InputProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


class SlotRefused(StrEnum):
    NOT_FOUND = "not_found"
    BOOKED = "booked"  # booked since the coordinator saw it free: ask again
    STARTED = "started"
    DOCTOR_NOT_FOUND = "doctor_not_found"
    DOCTOR_INACTIVE = "doctor_inactive"


class SlotError(Exception):
    def __init__(self, reason: SlotRefused) -> None:
        super().__init__(reason.value)
        self.reason = reason


class RowProblem(StrEnum):
    """Why one row of a CSV of slots was not imported."""

    COLUMNS = "columns"
    DOCTOR_UNKNOWN = "doctor_unknown"
    DOCTOR_AMBIGUOUS = "doctor_ambiguous"
    DOCTOR_INACTIVE = "doctor_inactive"
    DATE = "date"
    TIME = "time"
    DURATION = "duration"
    TIME_ZONE = "time_zone"
    NO_SUCH_LOCAL_TIME = "no_such_local_time"
    PAST = "past"


class CsvRefused(StrEnum):
    """Why a whole file was not read as a CSV of slots."""

    NOT_CSV = "not_csv"
    TOO_BIG = "too_big"
    EMPTY = "empty"
    TOO_MANY_ROWS = "too_many_rows"


class CsvError(Exception):
    def __init__(self, reason: CsvRefused) -> None:
        super().__init__(reason.value)
        self.reason = reason


_UNREADABLE = {Unreadable.NOT_TABLE: CsvRefused.NOT_CSV, Unreadable.EMPTY: CsvRefused.EMPTY}


@dataclass(frozen=True, slots=True)
class DutyDoctorDTO:
    id: int
    name: str
    specialty: str
    about: str
    active: bool


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """Slots every ``length`` minutes from ``start`` to ``end`` (local wall time in
    ``time_zone``) on the chosen weekdays (0 = Monday) of ``first_day``..``last_day``."""

    doctor_id: int
    first_day: date
    last_day: date
    weekdays: frozenset[int]
    start: time
    end: time | None  # None: midnight at the end of the day
    length_minutes: int
    time_zone: str = DEFAULT_TIME_ZONE

    def local_starts(self) -> list[datetime]:
        """The planned starts as aware datetimes in the zone; local times that do not exist
        (a daylight-saving gap) are left out."""
        zone = ZoneInfo(self.time_zone)
        step = timedelta(minutes=self.length_minutes)
        result: list[datetime] = []
        day = self.first_day
        while day <= self.last_day:
            if day.weekday() in self.weekdays:
                moment = datetime.combine(day, self.start)
                end = (
                    datetime.combine(day, self.end)
                    if self.end is not None
                    else datetime.combine(day + timedelta(days=1), time())
                )
                while moment + step <= end:
                    local = moment.replace(tzinfo=zone)
                    if _exists(local):
                        result.append(local)
                    moment += step
            day += timedelta(days=1)
        return result


@dataclass(frozen=True, slots=True)
class NewSlot:
    doctor_id: int
    starts_at: datetime  # UTC
    duration_minutes: int
    time_zone: str


@dataclass(frozen=True, slots=True)
class PlanPreview:
    new: int  # would be created
    existing: int  # already in the schedule (or overlapping a slot there): skipped
    past: int  # already started: left out


@dataclass(frozen=True, slots=True)
class CreateResult:
    created: int
    skipped: int


@dataclass(frozen=True, slots=True)
class ScheduleSlotDTO:
    id: int
    doctor_id: int
    doctor_name: str
    starts_at: datetime
    duration_minutes: int
    time_zone: str
    patient_id: int | None  # the booked patient's internal id, None when free

    @property
    def booked(self) -> bool:
        return self.patient_id is not None


@dataclass(frozen=True, slots=True)
class SlotPage:
    items: list[ScheduleSlotDTO]
    page: int
    pages: int
    total: int


@dataclass(frozen=True, slots=True)
class RemovedSlot:
    slot: ScheduleSlotDTO
    consultation_id: int | None  # the cancelled booking, if there was one


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    problem: RowProblem
    value: str = ""


@dataclass(frozen=True, slots=True)
class CsvReport:
    created: int
    skipped: int
    errors: list[RowError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RemovalNotice:
    """What the patient is told about their cancelled duty booking."""

    telegram_id: int
    locale: str | None
    time_zone: str
    starts_at: datetime
    doctor_id: int | None
    doctor_name: str | None
    doctor_active: bool


# --- parsing what a coordinator types ------------------------------------------------------

_DATE = r"(\d{1,2})[./](\d{1,2})[./](\d{4})"
_RANGE_RE = re.compile(rf"^\s*{_DATE}\s*(?:(?:-|–|—|\.\.|to|по|до)\s*{_DATE}\s*)?$", re.IGNORECASE)
_TIME_RE = re.compile(r"^\s*(\d{1,2})(?:[:.](\d{2}))?\s*$")
_HOURS_RE = re.compile(
    r"^\s*(\d{1,2}(?:[:.]\d{2})?)\s*(?:-|–|—|to|до)\s*(\d{1,2}(?:[:.]\d{2})?)\s*$"
)


def parse_date_range(text: str, today: date) -> tuple[date, date]:
    """'01.12.2026–14.12.2026' (or one date: that day only) → (first, last)."""
    found = _RANGE_RE.match(text)
    if not found:
        raise ScheduleInputError(InputProblem.DATE_FORMAT)
    groups = found.groups()
    first = _date(*groups[0:3])
    last = _date(*groups[3:6]) if groups[3] else first
    if first is None or last is None:
        raise ScheduleInputError(InputProblem.NO_SUCH_DATE)
    if last < first:
        raise ScheduleInputError(InputProblem.END_BEFORE_START)
    if first < today:
        raise ScheduleInputError(InputProblem.PAST_DATE)
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise ScheduleInputError(InputProblem.RANGE_TOO_LONG)
    return first, last


def _date(day: str, month: str, year: str) -> date | None:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def parse_time(text: str) -> time | None:
    """'9:00', '09.30', '9' → a time of day; None when it is not one."""
    found = _TIME_RE.match(text)
    if not found:
        return None
    hours, minutes = int(found[1]), int(found[2] or 0)
    if hours > 23 or minutes > 59:
        return None
    return time(hours, minutes)


def parse_hours(text: str) -> tuple[time, time | None]:
    """'09:00–13:00' → (09:00, 13:00); an end of '24:00' is midnight (None)."""
    found = _HOURS_RE.match(text)
    if not found:
        raise ScheduleInputError(InputProblem.HOURS_FORMAT)
    start, end = parse_time(found[1]), parse_time(found[2])
    midnight = end is None and _is_midnight(found[2])
    if start is None or (end is None and not midnight):
        raise ScheduleInputError(InputProblem.HOURS_FORMAT)
    if end is not None and end <= start:
        raise ScheduleInputError(InputProblem.END_NOT_AFTER_START)
    return start, end


def _is_midnight(text: str) -> bool:
    found = _TIME_RE.match(text)
    return found is not None and int(found[1]) == 24 and int(found[2] or 0) == 0


def clean_name(text: str) -> str:
    name = " ".join(text.split())
    if not 2 <= len(name) <= MAX_NAME:
        raise ScheduleInputError(InputProblem.NAME_LENGTH)
    return name


def clean_about(text: str) -> str:
    about = " ".join(text.split())
    if len(about) > MAX_ABOUT:
        raise ScheduleInputError(InputProblem.ABOUT_LENGTH)
    return about


@cache
def _zones() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def iana_zone(text: str) -> str | None:
    """The canonical spelling of an IANA zone name typed in any case, or None."""
    return _zones().get(text.strip().casefold())


def _exists(local: datetime) -> bool:
    """False for a wall time skipped by a daylight-saving change."""
    back = local.astimezone(UTC).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


# --- the service -----------------------------------------------------------------------------


def _doctor_dto(d: DutyDoctor) -> DutyDoctorDTO:
    return DutyDoctorDTO(d.id, d.display_name, d.specialty, d.about, d.active)


class ScheduleService:
    PAGE_SIZE = 10

    def __init__(self, sessions: SessionFactory, catalog: Catalog, clock: Clock) -> None:
        self._sessions = sessions
        self._catalog = catalog
        self._clock = clock

    def today(self) -> date:
        """Today in Moscow: dates before it are in the past for the schedule."""
        return self._clock().astimezone(ZoneInfo(DEFAULT_TIME_ZONE)).date()

    # --- time zones --------------------------------------------------------------------------

    def resolve_time_zone(self, text: str, locale: str) -> str | list[Region]:
        """An IANA zone typed as such, or the catalog's regions matching the text (a single
        region with a single zone gives that zone; otherwise the caller asks which).
        ScheduleInputError when it is neither."""
        zone = iana_zone(text)
        if zone is not None:
            return zone
        regions = self._catalog.search_regions(text, locale)[:REGIONS_OFFERED]
        if not regions:
            raise ScheduleInputError(InputProblem.UNKNOWN_TIME_ZONE)
        if len(regions) == 1 and len(regions[0].time_zones) == 1:
            return regions[0].time_zones[0].tz
        return regions

    # --- doctors -----------------------------------------------------------------------------

    async def doctors(self, *, active_only: bool = False) -> list[DutyDoctorDTO]:
        query = select(DutyDoctor).order_by(
            DutyDoctor.active.desc(), DutyDoctor.display_name, DutyDoctor.id
        )
        if active_only:
            query = query.where(DutyDoctor.active.is_(True))
        async with self._sessions() as session:
            return [_doctor_dto(d) for d in await session.scalars(query)]

    async def doctor(self, doctor_id: int) -> DutyDoctorDTO | None:
        async with self._sessions() as session:
            found = await session.get(DutyDoctor, doctor_id)
            return _doctor_dto(found) if found is not None else None

    async def add_doctor(
        self, name: str, specialty: str, about: str, *, by: Actor | None = None
    ) -> DutyDoctorDTO:
        if specialty not in SPECIALTIES:
            raise ValueError(f"unknown specialty {specialty!r}")
        async with self._sessions.begin() as session:
            doctor = DutyDoctor(
                display_name=clean_name(name),
                specialty=specialty,
                about=clean_about(about),
                active=True,
                created_at=self._clock(),
            )
            session.add(doctor)
            await session.flush()
            record(
                session,
                by,
                Action.DUTY_DOCTOR_ADDED,
                self._clock(),
                object_id=doctor.id,
                detail=specialty,
            )
            return _doctor_dto(doctor)

    async def set_active(
        self, doctor_id: int, active: bool, *, by: Actor | None = None
    ) -> DutyDoctorDTO:
        """A deactivated doctor is not offered to patients; bookings already made stay."""
        async with self._sessions.begin() as session:
            doctor = await session.get(DutyDoctor, doctor_id)
            if doctor is None:
                raise SlotError(SlotRefused.DOCTOR_NOT_FOUND)
            doctor.active = active
            record(
                session,
                by,
                Action.DUTY_DOCTOR_ACTIVE,
                self._clock(),
                object_id=doctor_id,
                detail=str(active).lower(),
            )
            return _doctor_dto(doctor)

    async def upcoming_counts(self, doctor_id: int) -> tuple[int, int]:
        """(upcoming slots, of them booked) of a doctor."""
        now = self._clock()
        async with self._sessions() as session:
            total = await session.scalar(
                select(func.count()).where(
                    DutySlot.doctor_id == doctor_id, DutySlot.starts_at > now
                )
            )
            booked = await session.scalar(
                select(func.count())
                .select_from(DutySlot)
                .join(Consultation, Consultation.slot_id == DutySlot.id)
                .where(
                    DutySlot.doctor_id == doctor_id,
                    DutySlot.starts_at > now,
                    Consultation.status.in_(LIVE),
                )
            )
            return total or 0, booked or 0

    # --- making slots ------------------------------------------------------------------------

    async def preview(self, plan: SlotPlan) -> PlanPreview:
        candidates, past = self._plan_candidates(plan)
        async with self._sessions() as session:
            new = await self._new_only(session, candidates)
        return PlanPreview(new=len(new), existing=len(candidates) - len(new), past=past)

    async def create_slots(self, plan: SlotPlan, *, by: Actor | None = None) -> CreateResult:
        """Slots of the plan that are not in the schedule yet; the others are skipped."""
        candidates, _past = self._plan_candidates(plan)
        async with self._sessions() as session:
            doctor = await session.get(DutyDoctor, plan.doctor_id)
        if doctor is None:
            raise SlotError(SlotRefused.DOCTOR_NOT_FOUND)
        if not doctor.active:
            raise SlotError(SlotRefused.DOCTOR_INACTIVE)
        created = await self._insert(candidates, (by, Action.DUTY_SLOTS_CREATED, plan.doctor_id))
        log.info("duty slots created doctor=%s created=%s", plan.doctor_id, created)
        return CreateResult(created=created, skipped=len(candidates) - created)

    def _plan_candidates(self, plan: SlotPlan) -> tuple[list[NewSlot], int]:
        now = self._clock()
        candidates = []
        past = 0
        starts = plan.local_starts()
        if len(starts) > MAX_SLOTS_AT_ONCE:
            raise ScheduleInputError(InputProblem.TOO_MANY_SLOTS)
        for local in starts:
            starts_at = local.astimezone(UTC)
            if starts_at <= now:
                past += 1
                continue
            candidates.append(
                NewSlot(plan.doctor_id, starts_at, plan.length_minutes, plan.time_zone)
            )
        return candidates, past

    async def _insert(
        self, candidates: Sequence[NewSlot], audit: tuple[Actor | None, Action, int | None]
    ) -> int:
        """Insert the candidates not in the schedule; how many were inserted. Another
        coordinator inserting the same slots meanwhile makes the unique constraint refuse the
        whole batch: it is then computed again against what is there now."""
        for attempt in range(3):
            try:
                async with self._sessions.begin() as session:
                    new = await self._new_only(session, candidates)
                    now = self._clock()
                    session.add_all(
                        DutySlot(
                            doctor_id=s.doctor_id,
                            starts_at=s.starts_at,
                            duration_minutes=s.duration_minutes,
                            time_zone=s.time_zone,
                            created_at=now,
                        )
                        for s in new
                    )
                    by, action, doctor_id = audit
                    record(session, by, action, now, object_id=doctor_id, detail=len(new))
                    return len(new)
            except IntegrityError:
                if attempt == 2:
                    raise
        return 0  # pragma: no cover - the loop returns or raises

    async def _new_only(
        self, session: AsyncSession, candidates: Sequence[NewSlot]
    ) -> list[NewSlot]:
        """The candidates that overlap neither a slot of the same doctor in the schedule nor
        an earlier candidate (so a slot is never doubled, whatever its length)."""
        by_doctor: dict[int, list[NewSlot]] = {}
        for candidate in candidates:
            by_doctor.setdefault(candidate.doctor_id, []).append(candidate)
        result: list[NewSlot] = []
        for doctor_id, items in by_doctor.items():
            low = min(s.starts_at for s in items) - timedelta(minutes=MAX_SLOT_MINUTES)
            high = max(s.starts_at + timedelta(minutes=s.duration_minutes) for s in items)
            rows = await session.execute(
                select(DutySlot.starts_at, DutySlot.duration_minutes).where(
                    DutySlot.doctor_id == doctor_id,
                    DutySlot.starts_at >= low,
                    DutySlot.starts_at < high,
                )
            )
            taken = _Intervals((start, minutes) for start, minutes in rows.all())
            for item in items:
                if taken.overlaps(item.starts_at, item.duration_minutes):
                    continue
                taken.add(item.starts_at, item.duration_minutes)
                result.append(item)
        return result

    # --- listing and removing ----------------------------------------------------------------

    async def upcoming_slots(self, doctor_id: int, page: int) -> SlotPage:
        now = self._clock()
        async with self._sessions() as session:
            total = (
                await session.scalar(
                    select(func.count()).where(
                        DutySlot.doctor_id == doctor_id, DutySlot.starts_at > now
                    )
                )
                or 0
            )
            pages = max(1, -(-total // self.PAGE_SIZE))
            page = min(max(page, 0), pages - 1)
            rows = await session.execute(
                self._slots_query()
                .where(DutySlot.doctor_id == doctor_id, DutySlot.starts_at > now)
                .order_by(DutySlot.starts_at, DutySlot.id)
                .offset(page * self.PAGE_SIZE)
                .limit(self.PAGE_SIZE)
            )
            items = [self._slot_dto(*row) for row in rows.all()]
            return SlotPage(items, page, pages, total)

    async def slot(self, slot_id: int) -> ScheduleSlotDTO | None:
        async with self._sessions() as session:
            row = (await session.execute(self._slots_query().where(DutySlot.id == slot_id))).first()
            return self._slot_dto(*row) if row is not None else None

    @staticmethod
    def _slots_query() -> Select[DutySlot, str, int | None]:
        return (
            select(DutySlot, DutyDoctor.display_name, Consultation.patient_id)
            .join(DutyDoctor, DutyDoctor.id == DutySlot.doctor_id)
            .outerjoin(
                Consultation,
                (Consultation.slot_id == DutySlot.id) & Consultation.status.in_(LIVE),
            )
        )

    @staticmethod
    def _slot_dto(slot: DutySlot, doctor_name: str, patient_id: int | None) -> ScheduleSlotDTO:
        return ScheduleSlotDTO(
            slot.id,
            slot.doctor_id,
            doctor_name,
            slot.starts_at,
            slot.duration_minutes,
            slot.time_zone,
            patient_id,
        )

    async def remove_slot(
        self, slot_id: int, *, booking_confirmed: bool, by: Actor | None = None
    ) -> RemovedSlot:
        """Delete a slot. A booked one only when the coordinator was told it is booked
        (``booking_confirmed``): its consultation is cancelled and the patient is written to
        through the outbox, all in one transaction."""
        now = self._clock()
        async with self._sessions.begin() as session:
            # Locks the slot (PostgreSQL): a booking of it waits for this transaction and
            # then fails on the foreign key, instead of being cancelled unseen.
            slot = await session.scalar(
                select(DutySlot).where(DutySlot.id == slot_id).with_for_update()
            )
            if slot is None:
                raise SlotError(SlotRefused.NOT_FOUND)
            if slot.starts_at <= now:
                raise SlotError(SlotRefused.STARTED)
            doctor = await session.get(DutyDoctor, slot.doctor_id)
            live = await session.scalar(
                select(Consultation).where(
                    Consultation.slot_id == slot.id, Consultation.status.in_(LIVE)
                )
            )
            if live is not None and not booking_confirmed:
                raise SlotError(SlotRefused.BOOKED)
            dto = self._slot_dto(
                slot, doctor.display_name if doctor else "", live.patient_id if live else None
            )
            if live is not None:
                live.status = ConsultationStatus.CANCELLED
                live.cancel_reason = SLOT_REMOVED_REASON
                live.cancelled_at = now
                live.slot_id = None
                await ReminderPlan.unschedule(session, live.id)
                patient = await session.get(Patient, live.patient_id)
                if patient is not None:
                    Outbox.job(
                        session,
                        kind=SLOT_REMOVED,
                        payload={"consultation_id": live.id},
                        chat_id=patient.telegram_id,
                        patient_id=patient.id,
                        dedup_key=f"slot_removed:{live.id}",
                        now=now,
                    )
            # Whatever else still points at the slot (a finished or cancelled consultation)
            # keeps its record without it.
            await session.execute(
                update(Consultation).where(Consultation.slot_id == slot.id).values(slot_id=None)
            )
            await session.flush()
            await session.delete(slot)
            record(
                session,
                by,
                Action.DUTY_SLOT_REMOVED,
                now,
                patient_id=live.patient_id if live is not None else None,
                consultation_id=live.id if live is not None else None,
                object_id=slot_id,
            )
            log.info(
                "duty slot removed slot=%s consultation=%s",
                slot_id,
                live.id if live is not None else None,
            )
            return RemovedSlot(dto, live.id if live is not None else None)

    async def removal_notice(self, consultation_id: int) -> RemovalNotice | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(Consultation, Patient, DutyDoctor)
                    .join(Patient, Patient.id == Consultation.patient_id)
                    .outerjoin(DutyDoctor, DutyDoctor.id == Consultation.doctor_id)
                    .where(Consultation.id == consultation_id)
                )
            ).first()
        if row is None:
            return None
        consultation, patient, doctor = row
        if consultation.cancel_reason != SLOT_REMOVED_REASON:
            return None
        return RemovalNotice(
            telegram_id=patient.telegram_id,
            locale=patient.locale,
            time_zone=patient.time_zone,
            starts_at=consultation.starts_at,
            doctor_id=doctor.id if doctor else None,
            doctor_name=doctor.display_name if doctor else None,
            doctor_active=bool(doctor and doctor.active),
        )

    # --- CSV ---------------------------------------------------------------------------------

    async def import_csv(self, data: bytes, *, by: Actor | None = None) -> CsvReport:
        """Rows: doctor (name or id); date dd.mm.yyyy; time hh:mm; duration in minutes; time
        zone (optional, Moscow when empty). UTF-8 or Windows-1251; semicolon, comma or tab. Good
        rows are imported, each bad one is reported with its line number; a header row is
        allowed."""
        rows = read_csv(data)
        doctors = await self.doctors()
        by_id = {d.id: d for d in doctors}
        by_name: dict[str, list[DutyDoctorDTO]] = {}
        for doctor in doctors:
            by_name.setdefault(normalize_text(doctor.name), []).append(doctor)
        now = self._clock()
        errors: list[RowError] = []
        candidates: list[NewSlot] = []
        for index, (line, cells) in enumerate(rows):
            if index == 0 and _is_header(cells):
                continue
            parsed = self._parse_row(cells, by_id, by_name, now)
            if isinstance(parsed, NewSlot):
                candidates.append(parsed)
            else:
                errors.append(RowError(line, parsed[0], parsed[1]))
        created = (
            await self._insert(candidates, (by, Action.DUTY_SLOTS_IMPORTED, None))
            if candidates
            else 0
        )
        log.info("duty slots imported created=%s bad_rows=%s", created, len(errors))
        return CsvReport(created=created, skipped=len(candidates) - created, errors=errors)

    def _parse_row(
        self,
        cells: list[str],
        by_id: dict[int, DutyDoctorDTO],
        by_name: dict[str, list[DutyDoctorDTO]],
        now: datetime,
    ) -> NewSlot | tuple[RowProblem, str]:
        if len(cells) not in (4, 5):
            return RowProblem.COLUMNS, str(len(cells))
        who, day_text, time_text, minutes_text = cells[:4]
        zone_text = cells[4] if len(cells) == 5 else ""
        matches = ([by_id[int(who)]] if who.isdigit() and int(who) in by_id else []) or by_name.get(
            normalize_text(who), []
        )
        if not matches:
            return RowProblem.DOCTOR_UNKNOWN, who
        if len(matches) > 1:
            return RowProblem.DOCTOR_AMBIGUOUS, who
        doctor = matches[0]
        if not doctor.active:
            return RowProblem.DOCTOR_INACTIVE, who
        found = re.fullmatch(_DATE, day_text)
        day = _date(*found.groups()) if found else None
        if day is None:
            return RowProblem.DATE, day_text
        at = parse_time(time_text)
        if at is None:
            return RowProblem.TIME, time_text
        if not minutes_text.isdigit() or not (
            MIN_SLOT_MINUTES <= int(minutes_text) <= MAX_SLOT_MINUTES
        ):
            return RowProblem.DURATION, minutes_text
        zone = iana_zone(zone_text) if zone_text else DEFAULT_TIME_ZONE
        if zone is None:
            region = self._catalog.match_region(zone_text)
            if region is None or len(region.time_zones) != 1:
                return RowProblem.TIME_ZONE, zone_text
            zone = region.time_zones[0].tz
        local = datetime.combine(day, at).replace(tzinfo=ZoneInfo(zone))
        if not _exists(local):
            return RowProblem.NO_SUCH_LOCAL_TIME, f"{day_text} {time_text}"
        starts_at = local.astimezone(UTC)
        if starts_at <= now:
            return RowProblem.PAST, f"{day_text} {time_text}"
        return NewSlot(doctor.id, starts_at, int(minutes_text), zone)


def read_csv(data: bytes) -> list[tuple[int, list[str]]]:
    """The non-empty rows of a CSV file with their line numbers, cells stripped (trailing
    empty ones dropped: a spreadsheet's extra delimiters).

    CsvError when it is too big, has too many rows, or is not a text table by the rules of
    ``bot.services.tables`` (a workbook is not taken here: the coordinator is asked for CSV)."""
    if len(data) > MAX_CSV_BYTES:
        raise CsvError(CsvRefused.TOO_BIG)
    rows: list[tuple[int, list[str]]] = []
    try:
        with open_table(data, workbooks=False) as table:
            for line, cells in table.rows:
                stripped = [str(cell).strip() for cell in cells]
                while not stripped[-1]:
                    stripped.pop()
                rows.append((line, stripped))
                if len(rows) > MAX_CSV_ROWS:
                    raise CsvError(CsvRefused.TOO_MANY_ROWS)
    except UnreadableTableError as unreadable:
        raise CsvError(_UNREADABLE[unreadable.reason]) from None
    if not rows:
        raise CsvError(CsvRefused.EMPTY)
    return rows


def _is_header(cells: list[str]) -> bool:
    """A first row with no digit in its date and time columns names the columns."""
    return len(cells) >= 3 and not any(ch.isdigit() for ch in cells[1] + cells[2])


class _Intervals:
    """Slots of one doctor as sorted (start, end) pairs, for the overlap check."""

    def __init__(self, items: Iterable[tuple[datetime, int]]) -> None:
        pairs = sorted((s, s + timedelta(minutes=m)) for s, m in items)
        self._starts = [s for s, _ in pairs]
        self._ends = [e for _, e in pairs]

    def overlaps(self, start: datetime, minutes: int) -> bool:
        end = start + timedelta(minutes=minutes)
        # Only slots starting before our end and at most MAX_SLOT_MINUTES before our start
        # can reach into it.
        low = bisect.bisect_left(self._starts, start - timedelta(minutes=MAX_SLOT_MINUTES))
        high = bisect.bisect_left(self._starts, end)
        return any(self._ends[i] > start for i in range(low, high))

    def add(self, start: datetime, minutes: int) -> None:
        index = bisect.bisect_left(self._starts, start)
        self._starts.insert(index, start)
        self._ends.insert(index, start + timedelta(minutes=minutes))
