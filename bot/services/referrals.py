"""Referrals of regional attending doctors (the letter's third path): a coordinator's spreadsheet
becomes pre-registered patients, each with a personal, single-use deep link; the patient
activates by the link and confirms their phone with their Telegram contact.

The import streams the file (openpyxl read-only, the csv reader) and writes to the database in
chunks, so a 10,000-row table costs seconds and memory that does not grow with the rows. The
code of a link is never stored, only its SHA-256."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import logging
import secrets
import zipfile
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.catalog import Catalog, normalize_text
from bot.messengers.identity import new_patient_identity
from bot.pseudonyms import tg
from bot.services.audit import Action, Actor, Role, record
from bot.services.clock import EARLIEST_ZONE, Clock, local_date
from bot.services.patients import (
    AlreadyRegisteredError,
    NewPatient,
    PatientDTO,
    patient_dto,
)
from bot.services.validation import InputProblem, parse_birth_date, parse_full_name, parse_phone
from bot.storage.db import SessionFactory
from bot.storage.models import Patient
from bot.storage.referral_models import Referral

logger = logging.getLogger("bot.referrals")

LINK_PREFIX = "ref_"  # /start ref_<code>: Telegram allows A-Z a-z 0-9 _ - and 64 characters
CHUNK_ROWS = 500  # rows written to the database in one transaction
MAX_ROWS = 50_000
MAX_TEXT = 500
MAX_NAME_FIELD = 200


class Column(StrEnum):
    """The columns of a referral table, in the template's order."""

    FULL_NAME = "full_name"
    BIRTH_DATE = "birth_date"
    PHONE = "phone"
    REGION = "region"
    CENTER = "center"
    GROUP = "group"
    DIAGNOSIS = "diagnosis"
    ORGANIZATION = "organization"
    DOCTOR = "doctor"
    COMMENT = "comment"


COLUMNS: tuple[Column, ...] = tuple(Column)
OPTIONAL_COLUMNS = frozenset({Column.DOCTOR, Column.COMMENT})
REQUIRED_COLUMNS: tuple[Column, ...] = tuple(c for c in COLUMNS if c not in OPTIONAL_COLUMNS)


class TableRefused(StrEnum):
    NOT_TABLE = "not_table"
    EMPTY = "empty"
    HEADERS = "headers"
    TOO_MANY_ROWS = "too_many_rows"


class TableError(Exception):
    """The file as a whole cannot be imported; nothing was written."""

    def __init__(self, reason: TableRefused, missing: Sequence[Column] = ()) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.missing = tuple(missing)


class RowStatus(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class RowNote(StrEnum):
    """What a duplicate row did."""

    UPDATED = "updated"  # a waiting referral of the same person: its data replaced
    ALREADY_ACTIVATED = "already_activated"  # the patient already activated: left as it was
    ALREADY_REGISTERED = "already_registered"  # a registered patient: the referral is added
    REPEATED_IN_FILE = "repeated_in_file"  # the same person earlier in this file


class RowProblem(StrEnum):
    MISSING = "missing"  # a required cell is empty (``column`` names it)
    NAME = "name"
    DATE_FORMAT = "date_format"
    DATE_IMPOSSIBLE = "date_impossible"
    DATE_FUTURE = "date_future"
    DATE_TOO_OLD = "date_too_old"
    PHONE = "phone"
    REGION = "region"
    CENTER = "center"
    GROUP = "group"
    TOO_LONG = "too_long"  # ``column`` names it


@dataclass(frozen=True, slots=True)
class Problem:
    code: RowProblem
    column: Column


@dataclass(frozen=True, slots=True)
class RowResult:
    """One line of the import report, for one data row of the table."""

    line: int
    status: RowStatus
    full_name: str
    referral_id: int | None = None
    code: str | None = None  # the link's code, only when a new link was made
    note: RowNote | None = None
    problems: tuple[Problem, ...] = ()


@dataclass(slots=True)
class ImportSummary:
    created: int = 0
    duplicates: int = 0
    rejected: int = 0

    @property
    def rows(self) -> int:
        return self.created + self.duplicates + self.rejected


class ReportSink(Protocol):
    def add(self, result: RowResult) -> None: ...


#: (rows done, rows expected or None when the table does not say how many it has)
Progress = Callable[[int, int | None], Awaitable[None]]


class LinkRefused(StrEnum):
    NOT_FOUND = "not_found"
    USED = "used"
    EXPIRED = "expired"


class LinkError(Exception):
    def __init__(self, reason: LinkRefused) -> None:
        super().__init__(reason.value)
        self.reason = reason


class RelinkRefused(StrEnum):
    NOT_FOUND = "not_found"
    ACTIVATED = "activated"
    PHONE_TAKEN = "phone_taken"  # another referral has this phone and birth date


class RelinkError(Exception):
    def __init__(self, reason: RelinkRefused) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ReferralDTO:
    id: int
    full_name: str
    birth_date: date
    phone: str
    region_code: int
    center_code: str
    disease_group_code: str
    diagnosis: str
    referring_organization: str
    referring_doctor: str
    comment: str
    status: str
    patient_id: int | None


def _dto(r: Referral) -> ReferralDTO:
    return ReferralDTO(
        id=r.id,
        full_name=r.full_name,
        birth_date=r.birth_date,
        phone=r.phone,
        region_code=r.region_code,
        center_code=r.center_code,
        disease_group_code=r.disease_group_code,
        diagnosis=r.diagnosis,
        referring_organization=r.referring_organization,
        referring_doctor=r.referring_doctor,
        comment=r.comment,
        status=r.status,
        patient_id=r.patient_id,
    )


PENDING = "pending"
ACTIVATED = "activated"


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def new_code() -> str:
    """32 URL-safe characters from 24 random bytes: unguessable, fits a /start payload."""
    return secrets.token_urlsafe(24)


def link_payload(code: str) -> str:
    return LINK_PREFIX + code


# ---------------------------------------------------------------------------------------------
# Reading a table: the kind decided by the bytes, rows streamed
# ---------------------------------------------------------------------------------------------

_BINARY_SIGNATURES = (
    b"%PDF",
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"\xd0\xcf\x11\xe0",  # OLE2: an old .xls or .doc
    b"Rar!",
    b"\x1f\x8b",
    b"7z\xbc\xaf",
    b"RIFF",
    b"OggS",
    b"ID3",
    b"\x00\x00\x00",
)
_ZIP = b"PK\x03\x04"


Cell = str | int | float | date | datetime | None


@dataclass
class OpenedTable:
    rows: Iterator[tuple[int, Sequence[Cell]]]  # (line number, cells), header included
    estimate: int | None  # how many lines there probably are (None: unknown)
    close: Callable[[], None] = field(default=lambda: None)


def open_table(data: bytes) -> OpenedTable:
    """An .xlsx or a CSV (UTF-8 or Windows-1251, comma, semicolon or tab), whatever the file
    is called: a ZIP that openpyxl reads is a workbook; text without control characters is a
    CSV; anything else is not a table."""
    if not data.strip():
        raise TableError(TableRefused.EMPTY)
    if data.startswith(_ZIP):
        return _open_xlsx(data)
    if data.startswith(_BINARY_SIGNATURES) or b"\x00" in data[:65536]:
        raise TableError(TableRefused.NOT_TABLE)
    return _open_csv(data)


def _open_xlsx(data: bytes) -> OpenedTable:
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, IndexError):
        raise TableError(TableRefused.NOT_TABLE) from None
    # The size comes from the sheet's <dimension>, which streaming writers leave out (or write
    # as just "A1"): then the number of rows is unknown until they are read.
    estimate = sheet.max_row if isinstance(sheet.max_row, int) and sheet.max_row > 1 else None

    rows = enumerate(sheet.iter_rows(values_only=True), start=1)
    return OpenedTable(rows, estimate, workbook.close)  # type: ignore[arg-type]


def _encoding(data: bytes) -> str:
    """UTF-8 (with or without BOM) when the bytes are valid UTF-8, else Windows-1251. Checked
    piece by piece, so the whole text is never held decoded."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(data), 65536):
            decoder.decode(view[start : start + 65536])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8-sig"


def _open_csv(data: bytes) -> OpenedTable:
    encoding = _encoding(data)
    head = data[:65536].decode(encoding, errors="replace")
    if any(ord(ch) < 32 and ch not in "\t\r\n" for ch in head):
        raise TableError(TableRefused.NOT_TABLE)
    first = next((line for line in head.splitlines() if line.strip()), "")
    delimiter = max((";", ",", "\t"), key=first.count)
    if first.count(delimiter) == 0:
        raise TableError(TableRefused.NOT_TABLE)
    # cp1251 leaves one byte (0x98) undefined: replaced rather than refusing the whole file.
    text = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, errors="replace", newline="")
    reader = csv.reader(text, delimiter=delimiter)

    def rows() -> Iterator[tuple[int, Sequence[Cell]]]:
        for values in reader:
            yield reader.line_num, values

    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    return OpenedTable(rows(), lines)


def _cell_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone typed into a number cell: 79001234567.0
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return " ".join(str(value).split())


# ---------------------------------------------------------------------------------------------
# Checking a row
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValidRow:
    full_name: str
    birth_date: date
    phone: str
    region_code: int
    center_code: str
    disease_group_code: str
    diagnosis: str
    organization: str
    doctor: str
    comment: str

    @property
    def key(self) -> tuple[str, date]:
        return self.phone, self.birth_date


_DATE_PROBLEMS = {
    "date_format": RowProblem.DATE_FORMAT,
    "date_impossible": RowProblem.DATE_IMPOSSIBLE,
    "date_future": RowProblem.DATE_FUTURE,
    "date_too_old": RowProblem.DATE_TOO_OLD,
}


def check_row(
    cells: dict[Column, Cell], catalog: Catalog, today: date
) -> ValidRow | tuple[Problem, ...]:
    """A row of the table as a referral, or every problem it has."""
    text = {column: _cell_text(cells.get(column)) for column in COLUMNS}
    problems: list[Problem] = [
        Problem(RowProblem.MISSING, column) for column in REQUIRED_COLUMNS if not text[column]
    ]
    limits = {Column.DIAGNOSIS: MAX_TEXT, Column.COMMENT: MAX_TEXT}
    for column in (Column.DIAGNOSIS, Column.ORGANIZATION, Column.DOCTOR, Column.COMMENT):
        if len(text[column]) > limits.get(column, MAX_NAME_FIELD):
            problems.append(Problem(RowProblem.TOO_LONG, column))
    name = born = phone = None
    if text[Column.FULL_NAME]:
        try:
            name = parse_full_name(text[Column.FULL_NAME])
        except InputProblem:
            problems.append(Problem(RowProblem.NAME, Column.FULL_NAME))
    raw_born = cells.get(Column.BIRTH_DATE)
    if isinstance(raw_born, datetime | date):
        born_day = raw_born.date() if isinstance(raw_born, datetime) else raw_born
        raw_text = f"{born_day:%d.%m.%Y}"
    else:
        raw_text = text[Column.BIRTH_DATE]
    if raw_text:
        try:
            born = parse_birth_date(raw_text, today)
        except InputProblem as problem:
            problems.append(Problem(_DATE_PROBLEMS[problem.code], Column.BIRTH_DATE))
    if text[Column.PHONE]:
        try:
            phone = parse_phone(text[Column.PHONE])
        except InputProblem:
            problems.append(Problem(RowProblem.PHONE, Column.PHONE))
    region = catalog.match_region(text[Column.REGION]) if text[Column.REGION] else None
    if text[Column.REGION] and region is None:
        problems.append(Problem(RowProblem.REGION, Column.REGION))
    center = catalog.match_center(text[Column.CENTER]) if text[Column.CENTER] else None
    if text[Column.CENTER] and center is None:
        problems.append(Problem(RowProblem.CENTER, Column.CENTER))
    group = None
    if center is not None and text[Column.GROUP]:
        group = catalog.match_disease_group(center, text[Column.GROUP])
        if group is None:
            problems.append(Problem(RowProblem.GROUP, Column.GROUP))
    if problems:
        return tuple(problems)
    assert name and born and phone and region and center and group
    return ValidRow(
        full_name=name,
        birth_date=born,
        phone=phone,
        region_code=region.code,
        center_code=center.code,
        disease_group_code=group.code,
        diagnosis=text[Column.DIAGNOSIS],
        organization=text[Column.ORGANIZATION],
        doctor=text[Column.DOCTOR],
        comment=text[Column.COMMENT],
    )


# ---------------------------------------------------------------------------------------------
# The service
# ---------------------------------------------------------------------------------------------


@dataclass
class _Pending:
    """A row waiting in the current chunk: checked, not yet written."""

    line: int
    given_name: str
    row: ValidRow | None
    problems: tuple[Problem, ...] = ()


class ReferralService:
    def __init__(
        self,
        sessions: SessionFactory,
        catalog: Catalog,
        clock: Clock,
        *,
        link_days: int,
        header_names: dict[Column, Iterable[str]],
    ) -> None:
        self._sessions = sessions
        self._catalog = catalog
        self._clock = clock
        self._link_life = timedelta(days=link_days)
        self._headers: dict[str, Column] = {}
        for column in COLUMNS:
            for name in (column.value, *header_names.get(column, ())):
                self._headers.setdefault(normalize_text(name), column)

    # --- import ------------------------------------------------------------------------------

    async def import_table(
        self,
        data: bytes,
        coordinator_id: int,
        sink: ReportSink,
        progress: Progress | None = None,
    ) -> ImportSummary:
        """Import every row; each gets a RowResult in ``sink`` in the table's order."""
        table = open_table(data)
        try:
            return await self._import(table, coordinator_id, sink, progress)
        finally:
            table.close()

    async def _import(
        self,
        table: OpenedTable,
        coordinator_id: int,
        sink: ReportSink,
        progress: Progress | None,
    ) -> ImportSummary:
        if table.estimate is not None and table.estimate > MAX_ROWS + 1:
            raise TableError(TableRefused.TOO_MANY_ROWS)
        header_line, positions = self._header(table.rows)
        expected = None if table.estimate is None else max(table.estimate - header_line, 0)
        summary = ImportSummary()
        seen: dict[tuple[str, date], int] = {}  # this import's people → their referral id
        chunk: list[_Pending] = []
        today = local_date(self._clock(), EARLIEST_ZONE)  # birth dates: as at registration
        for line, values in table.rows:
            if all(_cell_text(v) == "" for v in values):
                continue
            if summary.rows + len(chunk) >= MAX_ROWS:
                break
            cells = {
                column: values[index] if index < len(values) else None
                for column, index in positions.items()
            }
            checked = check_row(cells, self._catalog, today)
            given = _cell_text(cells.get(Column.FULL_NAME))
            if isinstance(checked, ValidRow):
                chunk.append(_Pending(line, given, checked))
            else:
                chunk.append(_Pending(line, given, None, checked))
            if len(chunk) >= CHUNK_ROWS:
                await self._write_chunk(chunk, coordinator_id, seen, summary, sink)
                chunk = []
                if progress is not None:
                    # an estimate the table has outgrown is no estimate any more
                    known = expected is not None and summary.rows <= expected
                    await progress(summary.rows, expected if known else None)
        if chunk:
            await self._write_chunk(chunk, coordinator_id, seen, summary, sink)
        if summary.rows == 0:
            raise TableError(TableRefused.EMPTY)
        logger.info(
            "referral import by %s: %s created, %s duplicates, %s rejected",
            tg(coordinator_id),
            summary.created,
            summary.duplicates,
            summary.rejected,
        )
        return summary

    def _header(self, rows: Iterator[tuple[int, Sequence[Cell]]]) -> tuple[int, dict[Column, int]]:
        """The header's line and where each known column is."""
        for line, values in rows:
            names = [_cell_text(v) for v in values]
            if not any(names):
                continue
            positions: dict[Column, int] = {}
            for index, name in enumerate(names):
                column = self._headers.get(normalize_text(name))
                if column is not None and column not in positions:
                    positions[column] = index
            missing = [c for c in REQUIRED_COLUMNS if c not in positions]
            if missing:
                raise TableError(TableRefused.HEADERS, missing)
            return line, positions
        raise TableError(TableRefused.EMPTY)

    async def _write_chunk(
        self,
        chunk: list[_Pending],
        coordinator_id: int,
        seen: dict[tuple[str, date], int],
        summary: ImportSummary,
        sink: ReportSink,
    ) -> None:
        for attempt in range(3):
            try:
                results = await self._write_once(chunk, coordinator_id, dict(seen))
                break
            except IntegrityError:
                # Another import wrote the same person meanwhile: read again and redo.
                if attempt == 2:
                    raise
        for result in results:
            if result.status is RowStatus.CREATED:
                summary.created += 1
            elif result.status is RowStatus.DUPLICATE:
                summary.duplicates += 1
            else:
                summary.rejected += 1
            sink.add(result)
        for pending, result in zip(chunk, results, strict=True):
            if pending.row is not None and result.referral_id is not None:
                seen.setdefault(pending.row.key, result.referral_id)

    async def _write_once(
        self, chunk: list[_Pending], coordinator_id: int, seen: dict[tuple[str, date], int]
    ) -> list[RowResult]:
        now = self._clock()
        phones = {p.row.phone for p in chunk if p.row is not None}
        written: list[tuple[_Pending, Referral | None, RowStatus, str | None, RowNote | None]] = []
        async with self._sessions.begin() as session:
            known: dict[tuple[str, date], Referral] = {}
            registered: set[tuple[str, date]] = set()
            if phones:
                for referral in await session.scalars(
                    select(Referral).where(Referral.phone.in_(phones))
                ):
                    known[(referral.phone, referral.birth_date)] = referral
                for phone, born in await session.execute(
                    select(Patient.phone, Patient.birth_date).where(Patient.phone.in_(phones))
                ):
                    registered.add((phone, born))
            for pending in chunk:
                row = pending.row
                if row is None:
                    written.append((pending, None, RowStatus.REJECTED, None, None))
                    continue
                existing = known.get(row.key)
                if existing is not None:
                    note = RowNote.REPEATED_IN_FILE if row.key in seen else RowNote.UPDATED
                    if existing.status == ACTIVATED:
                        note = RowNote.ALREADY_ACTIVATED
                    else:
                        _fill(existing, row, now)
                    written.append((pending, existing, RowStatus.DUPLICATE, None, note))
                    continue
                code = new_code()
                referral = Referral(
                    status=PENDING,
                    code_hash=hash_code(code),
                    code_expires_at=now + self._link_life,
                    imported_by=coordinator_id,
                    created_at=now,
                )
                _fill(referral, row, now)
                session.add(referral)
                known[row.key] = referral
                seen[row.key] = 0
                if row.key in registered:
                    written.append(
                        (pending, referral, RowStatus.DUPLICATE, code, RowNote.ALREADY_REGISTERED)
                    )
                else:
                    written.append((pending, referral, RowStatus.CREATED, code, None))
            await session.flush()
            # One audit row per chunk, committed with it: a chunk that fails leaves none.
            created = sum(
                1 for *_rest, status, _code, _note in written if status is RowStatus.CREATED
            )
            record(
                session,
                Actor(coordinator_id, Role.COORDINATOR, coordinator_id),
                Action.REFERRALS_IMPORTED,
                now,
                detail=f"rows={len(chunk)} created={created}",
            )
        return [
            RowResult(
                pending.line,
                status,
                pending.row.full_name if pending.row else pending.given_name,
                referral_id=referral.id if referral is not None else None,
                code=code,
                note=note,
                problems=pending.problems,
            )
            for pending, referral, status, code, note in written
        ]

    # --- links -------------------------------------------------------------------------------

    async def by_code(self, code: str) -> ReferralDTO:
        """The referral a link's code opens; refused when unknown, used or expired."""
        async with self._sessions() as session:
            referral = await session.scalar(
                select(Referral).where(Referral.code_hash == hash_code(code))
            )
            if referral is None:
                raise LinkError(LinkRefused.NOT_FOUND)
            if referral.status != PENDING:
                raise LinkError(LinkRefused.USED)
            expires = referral.code_expires_at
            if expires is not None and expires <= self._clock():
                raise LinkError(LinkRefused.EXPIRED)
            return _dto(referral)

    async def get(self, referral_id: int) -> ReferralDTO | None:
        async with self._sessions() as session:
            referral = await session.get(Referral, referral_id)
            return _dto(referral) if referral else None

    async def activate_new_patient(
        self, referral_id: int, telegram_id: int, new: NewPatient
    ) -> PatientDTO:
        """Register the patient and tie the referral to them, in one transaction."""
        now = self._clock()
        try:
            async with self._sessions.begin() as session:
                referral = await self._pending(session, referral_id, now)
                if await session.scalar(select(Patient).where(Patient.of_user(telegram_id))):
                    raise AlreadyRegisteredError
                patient = Patient(
                    **new_patient_identity(),
                    telegram_id=telegram_id,
                    full_name=new.full_name,
                    birth_date=new.birth_date,
                    phone=new.phone,
                    phone_verified=new.phone_verified,
                    region_code=new.region_code,
                    time_zone=new.time_zone,
                    locale=new.locale,
                    consent_version=new.consent_version,
                    consent_at=new.consent_at,
                    registered_at=now,
                    updated_at=now,
                )
                session.add(patient)
                await session.flush()
                _activated(referral, patient.id, now)
                record(
                    session,
                    Actor(telegram_id, Role.PATIENT, telegram_id),
                    Action.CONSENT_GIVEN,
                    new.consent_at,
                    patient_id=patient.id,
                    object_id=referral_id,
                    detail=new.consent_version,
                )
                logger.info("referral %s activated by new patient %s", referral_id, patient.id)
                return patient_dto(patient)
        except IntegrityError:
            raise AlreadyRegisteredError from None

    async def activate_for_patient(self, referral_id: int, patient_id: int) -> ReferralDTO:
        now = self._clock()
        async with self._sessions.begin() as session:
            referral = await self._pending(session, referral_id, now)
            _activated(referral, patient_id, now)
            logger.info("referral %s activated by patient %s", referral_id, patient_id)
            return _dto(referral)

    async def _pending(self, session: Any, referral_id: int, now: datetime) -> Referral:
        referral: Referral | None = await session.get(Referral, referral_id, with_for_update=True)
        if referral is None:
            raise LinkError(LinkRefused.NOT_FOUND)
        if referral.status != PENDING:
            raise LinkError(LinkRefused.USED)
        if referral.code_expires_at is not None and referral.code_expires_at <= now:
            raise LinkError(LinkRefused.EXPIRED)
        return referral

    async def relink(
        self, referral_id: int, phone: str | None = None, *, by: Actor | None = None
    ) -> tuple[ReferralDTO, str]:
        """A new link (the old one stops working), optionally with a corrected phone."""
        now = self._clock()
        code = new_code()
        try:
            async with self._sessions.begin() as session:
                referral = await session.get(Referral, referral_id, with_for_update=True)
                if referral is None:
                    raise RelinkError(RelinkRefused.NOT_FOUND)
                if referral.status != PENDING:
                    raise RelinkError(RelinkRefused.ACTIVATED)
                if phone is not None:
                    referral.phone = phone
                referral.code_hash = hash_code(code)
                referral.code_expires_at = now + self._link_life
                referral.updated_at = now
                await session.flush()
                record(
                    session,
                    by,
                    Action.REFERRAL_RELINKED,
                    now,
                    object_id=referral_id,
                    detail="phone" if phone is not None else None,
                )
                logger.info("referral %s: a new link issued", referral_id)
                return _dto(referral), code
        except IntegrityError:
            raise RelinkError(RelinkRefused.PHONE_TAKEN) from None


def _fill(referral: Referral, row: ValidRow, now: datetime) -> None:
    referral.full_name = row.full_name
    referral.birth_date = row.birth_date
    referral.phone = row.phone
    referral.region_code = row.region_code
    referral.center_code = row.center_code
    referral.disease_group_code = row.disease_group_code
    referral.diagnosis = row.diagnosis
    referral.referring_organization = row.organization
    referral.referring_doctor = row.doctor
    referral.comment = row.comment
    referral.updated_at = now


def _activated(referral: Referral, patient_id: int, now: datetime) -> None:
    referral.status = ACTIVATED
    referral.patient_id = patient_id
    referral.activated_at = now
    referral.updated_at = now
