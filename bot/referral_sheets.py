"""Spreadsheets of the referral import: the template a coordinator fills in and the report sent
back (one line per row: status, reason, personal link). Texts in the current i18n locale."""

from __future__ import annotations

import io

from aiogram.utils.i18n import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font

from bot.catalog import Catalog
from bot.i18n import N_
from bot.services.referrals import (
    COLUMNS,
    OPTIONAL_COLUMNS,
    Column,
    Problem,
    RowNote,
    RowProblem,
    RowResult,
    RowStatus,
    link_payload,
)

HEADER_KEYS = {
    Column.FULL_NAME: N_("referral.col.full_name"),
    Column.BIRTH_DATE: N_("referral.col.birth_date"),
    Column.PHONE: N_("referral.col.phone"),
    Column.REGION: N_("referral.col.region"),
    Column.CENTER: N_("referral.col.center"),
    Column.GROUP: N_("referral.col.group"),
    Column.DIAGNOSIS: N_("referral.col.diagnosis"),
    Column.ORGANIZATION: N_("referral.col.organization"),
    Column.DOCTOR: N_("referral.col.doctor"),
    Column.COMMENT: N_("referral.col.comment"),
}
HELP_KEYS = {
    Column.FULL_NAME: N_("referral.help.full_name"),
    Column.BIRTH_DATE: N_("referral.help.birth_date"),
    Column.PHONE: N_("referral.help.phone"),
    Column.REGION: N_("referral.help.region"),
    Column.CENTER: N_("referral.help.center"),
    Column.GROUP: N_("referral.help.group"),
    Column.DIAGNOSIS: N_("referral.help.diagnosis"),
    Column.ORGANIZATION: N_("referral.help.organization"),
    Column.DOCTOR: N_("referral.help.doctor"),
    Column.COMMENT: N_("referral.help.comment"),
}
STATUS_KEYS = {
    RowStatus.CREATED: N_("referral.status.created"),
    RowStatus.DUPLICATE: N_("referral.status.duplicate"),
    RowStatus.REJECTED: N_("referral.status.rejected"),
}
NOTE_KEYS = {
    RowNote.UPDATED: N_("referral.note.updated"),
    RowNote.ALREADY_ACTIVATED: N_("referral.note.already_activated"),
    RowNote.ALREADY_REGISTERED: N_("referral.note.already_registered"),
    RowNote.REPEATED_IN_FILE: N_("referral.note.repeated_in_file"),
}
PROBLEM_KEYS = {
    RowProblem.MISSING: N_("referral.problem.missing"),
    RowProblem.NAME: N_("referral.problem.name"),
    RowProblem.DATE_FORMAT: N_("referral.problem.date_format"),
    RowProblem.DATE_IMPOSSIBLE: N_("referral.problem.date_impossible"),
    RowProblem.DATE_FUTURE: N_("referral.problem.date_future"),
    RowProblem.DATE_TOO_OLD: N_("referral.problem.date_too_old"),
    RowProblem.PHONE: N_("referral.problem.phone"),
    RowProblem.REGION: N_("referral.problem.region"),
    RowProblem.CENTER: N_("referral.problem.center"),
    RowProblem.GROUP: N_("referral.problem.group"),
    RowProblem.TOO_LONG: N_("referral.problem.too_long"),
}
_BOLD = Font(bold=True)


def header(column: Column) -> str:
    return _(HEADER_KEYS[column])


def problem_text(problem: Problem) -> str:
    return _(PROBLEM_KEYS[problem.code]).format(column=header(problem.column))


def link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username}?start={link_payload(code)}"


def template_xlsx(catalog: Catalog, locale: str) -> bytes:
    """The table to fill in, a sheet explaining each column, a sheet of allowed values."""
    workbook = Workbook()
    patients = workbook.active
    assert patients is not None
    patients.title = _("referral.sheet.patients")
    patients.append([header(c) for c in COLUMNS])
    for cell in patients[1]:
        cell.font = _BOLD
    for index, column in enumerate(COLUMNS):
        letter = chr(ord("A") + index)
        patients.column_dimensions[letter].width = 28 if column is not Column.COMMENT else 40
    patients.freeze_panes = "A2"

    help_sheet = workbook.create_sheet(_("referral.sheet.help"))
    help_sheet.append(
        [_("referral.help.column"), _("referral.help.required"), _("referral.help.meaning")]
    )
    for cell in help_sheet[1]:
        cell.font = _BOLD
    for column in COLUMNS:
        optional = column in OPTIONAL_COLUMNS
        required = (
            _("referral.help.optional_mark") if optional else _("referral.help.required_mark")
        )
        help_sheet.append([header(column), required, _(HELP_KEYS[column])])
    help_sheet.column_dimensions["A"].width = 34
    help_sheet.column_dimensions["B"].width = 16
    help_sheet.column_dimensions["C"].width = 100

    values = workbook.create_sheet(_("referral.sheet.values"))
    values.append(
        [
            _("referral.values.region_code"),
            header(Column.REGION),
            "",
            header(Column.CENTER),
            header(Column.GROUP),
        ]
    )
    for cell in values[1]:
        cell.font = _BOLD
    regions = sorted(catalog.regions, key=lambda r: r.code)
    groups = [
        (center.short_name.get(locale), group.name.get(locale))
        for center in catalog.centers
        for group in center.disease_groups
    ]
    for index in range(max(len(regions), len(groups))):
        region = regions[index] if index < len(regions) else None
        pair = groups[index] if index < len(groups) else ("", "")
        values.append(
            [
                region.code if region else None,
                region.name.get(locale) if region else None,
                None,
                pair[0] or None,
                pair[1] or None,
            ]
        )
    for letter, width in (("A", 10), ("B", 50), ("C", 3), ("D", 45), ("E", 60)):
        values.column_dimensions[letter].width = width

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


class ReportWriter:
    """The report workbook, written row by row (openpyxl write-only: bounded memory)."""

    def __init__(self, bot_username: str) -> None:
        self._username = bot_username
        self._workbook = Workbook(write_only=True)
        self._sheet = self._workbook.create_sheet(_("referral.sheet.report"))
        self._sheet.append(
            [
                _("referral.report.line"),
                header(Column.FULL_NAME),
                _("referral.report.status"),
                _("referral.report.reason"),
                _("referral.report.link"),
                _("referral.report.referral_id"),
            ]
        )
        self._texts = {status: _(key) for status, key in STATUS_KEYS.items()}
        self._notes = {note: _(key) for note, key in NOTE_KEYS.items()}
        self._rows = 0

    def add(self, result: RowResult) -> None:
        self._rows += 1
        if result.problems:
            reason = "; ".join(problem_text(p) for p in result.problems)
        else:
            reason = self._notes[result.note] if result.note else ""
        self._sheet.append(
            [
                result.line,
                result.full_name,
                self._texts[result.status],
                reason,
                link(self._username, result.code) if result.code else "",
                result.referral_id,
            ]
        )

    @property
    def used(self) -> bool:
        """Rows were written: finish() must follow."""
        return self._rows > 0

    def discard(self) -> None:
        """The import was refused: close the sheet and remove its temporary file."""
        self._sheet.close()
        writer = getattr(self._sheet, "_writer", None)
        if writer is not None:
            writer.cleanup()

    def finish(self) -> bytes:
        buffer = io.BytesIO()
        self._workbook.save(buffer)
        return buffer.getvalue()
