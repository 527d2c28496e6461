"""Statistics, the applications export and the audit trail for coordinators: /stats, /export
(a date range typed or chosen by buttons, answered with an .xlsx) and /audit. The coordinators'
parent router lets only them in."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from html import escape

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.callbacks import ExportCb, ExportPeriod
from bot.catalog import Catalog
from bot.fsm.states import ExportForm
from bot.handlers.flow import Flow
from bot.handlers.utils import edit_or_send
from bot.i18n import N_, menu_texts
from bot.keyboards import stats as kb
from bot.services.audit import MAX_AUDIT_ROWS, Actor, AuditRow, AuditService, day_range
from bot.services.stats import (
    MAX_EXPORT_DAYS,
    PROGRAMME_ZONE,
    ExportRow,
    RangeError,
    RangeProblem,
    Stats,
    StatsService,
    build_xlsx,
    month_of,
    parse_range,
)

RANGE_KEYS = {
    RangeProblem.FORMAT: N_("export.problem_format"),
    RangeProblem.NO_SUCH_DATE: N_("export.problem_no_such_date"),
    RangeProblem.REVERSED: N_("export.problem_reversed"),
    RangeProblem.TOO_LONG: N_("export.problem_too_long"),
}
APPLICATION_STATUS_KEYS = {
    "submitted": N_("stats.status_submitted"),
    "under_review": N_("stats.status_under_review"),
    "documents_requested": N_("stats.status_documents_requested"),
    "time_assigned": N_("stats.status_time_assigned"),
    "declined": N_("stats.status_declined"),
    "invited": N_("stats.status_invited"),
    "withdrawn": N_("stats.status_withdrawn"),
    "completed": N_("stats.status_completed"),
}
CONSULTATION_STATUS_KEYS = {
    "scheduled": N_("stats.consultation_scheduled"),
    "confirmed": N_("stats.consultation_confirmed"),
    "reschedule_requested": N_("stats.consultation_reschedule_requested"),
    "cancelled": N_("stats.consultation_cancelled"),
    "done": N_("stats.consultation_done"),
    "no_show": N_("stats.consultation_no_show"),
}
EXPORT_HEADERS = (
    N_("export.col_application"),
    N_("export.col_patient"),
    N_("export.col_submitted"),
    N_("export.col_center"),
    N_("export.col_group"),
    N_("export.col_status"),
    N_("export.col_decided"),
    N_("export.col_consultation"),
    N_("export.col_consultation_status"),
    N_("export.col_updated"),
    N_("export.col_region"),
)
TOP_REGIONS = 15
AUDIT_HEADERS = (
    N_("audit.col_at"),
    N_("audit.col_actor"),
    N_("audit.col_role"),
    N_("audit.col_action"),
    N_("audit.col_chat"),
    N_("audit.col_patient"),
    N_("audit.col_application"),
    N_("audit.col_consultation"),
    N_("audit.col_object"),
    N_("audit.col_detail"),
)


def router(i18n: I18n) -> Router:
    """Only registration; the coordinators' parent router carries the role filter."""
    r = Router(name="stats")
    # a menu button or another command leaves the dialogue (to the router that has it)
    not_menu = ~F.text.in_(menu_texts(i18n)) & ~F.text.startswith("/")
    r.message.register(show_stats, Command("stats"))
    r.message.register(audit_trail, Command("audit"))
    r.message.register(export, Command("export"))
    r.message.register(typed_period, ExportForm.period, F.text, not_menu)
    r.message.register(not_a_period, ExportForm.period, not_menu)
    cancelled = ExportCb.filter(F.period == ExportPeriod.CANCEL)
    r.callback_query.register(cancel_export, ExportForm.period, cancelled)
    r.callback_query.register(month_chosen, ExportForm.period, ExportCb.filter())
    return r


async def show_stats(_message: Message, flow: Flow, statistics: StatsService) -> None:
    await flow.state.clear()
    await flow.send(stats_text(await statistics.stats(), flow.catalog, flow.locale))


async def audit_trail(
    _message: Message, command: CommandObject, flow: Flow, audit: AuditService, coordinator: Actor
) -> None:
    await flow.state.clear()
    try:
        first, last = parse_range(command.args or "")
    except RangeError as problem:
        if problem.problem is RangeProblem.FORMAT:
            await flow.send(_("audit.usage"))
        else:
            await flow.send(_(RANGE_KEYS[problem.problem]).format(days=MAX_EXPORT_DAYS))
        return
    await send_audit(flow, audit, first, last, coordinator)


async def export(_message: Message, flow: Flow) -> None:
    await flow.state.clear()
    await flow.state.set_state(ExportForm.period)
    await flow.send(_("export.ask_period"), reply_markup=kb.export_periods())


async def typed_period(
    message: Message, flow: Flow, statistics: StatsService, coordinator: Actor
) -> None:
    try:
        first, last = parse_range(message.text or "")
    except RangeError as problem:
        text = _(RANGE_KEYS[problem.problem]).format(days=MAX_EXPORT_DAYS)
        await flow.send(text, reply_markup=kb.export_periods())
        return
    await send_export(flow, statistics, first, last, coordinator)


async def not_a_period(_message: Message, flow: Flow) -> None:
    await flow.send(_("export.need_text"), reply_markup=kb.export_periods())


async def cancel_export(query: CallbackQuery, flow: Flow) -> None:
    await flow.state.clear()
    await edit_or_send(query, _("export.cancelled"), None)


async def month_chosen(
    query: CallbackQuery,
    callback_data: ExportCb,
    flow: Flow,
    statistics: StatsService,
    coordinator: Actor,
) -> None:
    """This month or the last one (Moscow days)."""
    previous = callback_data.period is ExportPeriod.LAST_MONTH
    first, last = month_of(statistics.today(), previous=previous)
    await edit_or_send(query, _("export.ask_period"), None)
    await send_export(flow, statistics, first, last, coordinator)


async def send_audit(flow: Flow, audit: AuditService, first: date, last: date, by: Actor) -> None:
    """The audit rows of a period (Moscow days) as an .xlsx; the export is audited too."""
    start, end = day_range(first, last, PROGRAMME_ZONE)
    rows = await audit.export(start, end, by)
    period = f"{first:%d.%m.%Y}–{last:%d.%m.%Y}"
    if not rows:
        await flow.send(_("audit.empty").format(period=period))
        return
    content = build_xlsx(
        [_(key) for key in AUDIT_HEADERS], [audit_cells(row) for row in rows], _("audit.sheet")
    )
    await flow.bot.send_document(
        flow.chat_id,
        BufferedInputFile(content, filename=f"audit_{first:%Y%m%d}-{last:%Y%m%d}.xlsx"),
        caption=_("audit.done").format(period=period, count=len(rows))
        + ("\n" + _("audit.truncated") if len(rows) >= MAX_AUDIT_ROWS else ""),
    )


def audit_cells(row: AuditRow) -> list[object]:
    """Ids and codes only (the trail holds nothing else); times in Moscow time."""
    return [
        _local(row.at),
        row.actor,
        row.role,
        row.action,
        row.chat or "",
        row.patient or "",
        row.application_id or "",
        row.consultation_id or "",
        row.object_id or "",
        row.detail or "",
    ]


async def send_export(
    flow: Flow, statistics: StatsService, first: date, last: date, by: Actor
) -> None:
    rows = await statistics.export_rows(first, last, by=by)
    await flow.state.clear()
    period = f"{first:%d.%m.%Y}–{last:%d.%m.%Y}"
    if not rows:
        await flow.send(_("export.empty").format(period=period))
        return
    content = build_xlsx(
        [_(key) for key in EXPORT_HEADERS],
        [export_cells(row, flow.catalog, flow.locale) for row in rows],
        _("export.sheet"),
    )
    name = f"applications_{first:%Y%m%d}-{last:%Y%m%d}.xlsx"
    await flow.bot.send_document(
        flow.chat_id,
        BufferedInputFile(content, filename=name),
        caption=_("export.done").format(period=period, count=len(rows)),
    )


def _local(at: datetime | None) -> datetime | None:
    # openpyxl writes naive datetimes: Moscow time, as the column headers say
    return None if at is None else at.astimezone(PROGRAMME_ZONE).replace(tzinfo=None)


def export_cells(row: ExportRow, catalog: Catalog, locale: str) -> list[object]:
    center = catalog.center(row.center_code)
    group = center.disease_group(row.disease_group_code) if center else None
    region = catalog.region(row.region_code) if row.region_code is not None else None
    status_key = APPLICATION_STATUS_KEYS.get(row.status)
    consultation_key = CONSULTATION_STATUS_KEYS.get(row.consultation_status or "")
    return [
        row.application_id,
        row.patient_id,
        _local(row.created_at),
        center.short_name.get(locale) if center else row.center_code,
        group.name.get(locale) if group else row.disease_group_code,
        _(status_key) if status_key else row.status,
        _local(row.decided_at),
        _local(row.consultation_at),
        _(consultation_key) if consultation_key else (row.consultation_status or ""),
        _local(row.updated_at),
        region.name.get(locale) if region else (row.region_code or ""),
    ]


def duration_text(value: timedelta | None) -> str:
    if value is None:
        return "—"
    hours = value.total_seconds() / 3600
    if hours < 48:
        return _("stats.hours").format(hours=f"{hours:.1f}")
    return _("stats.days").format(days=f"{hours / 24:.1f}")


def stats_text(stats: Stats, catalog: Catalog, locale: str) -> str:
    lines = [
        _("stats.title"),
        _("stats.patients").format(count=stats.patients, unreachable=stats.unreachable),
    ]
    for code, count in stats.by_region[:TOP_REGIONS]:
        region = catalog.region(code)
        name = region.name.get(locale) if region else str(code)
        lines.append(f"  • {escape(name)}: {count}")
    if len(stats.by_region) > TOP_REGIONS:
        rest = sum(count for _code, count in stats.by_region[TOP_REGIONS:])
        lines.append(
            _("stats.other_regions").format(regions=len(stats.by_region) - TOP_REGIONS, count=rest)
        )
    lines.append("")
    lines.append(_("stats.applications"))
    if not stats.applications:
        lines.append(_("stats.none"))
    centers = sorted({center for center, _status in stats.applications})
    for center_code in centers:
        center = catalog.center(center_code)
        counts = {s: n for (c, s), n in stats.applications.items() if c == center_code}
        parts = ", ".join(
            f"{_(APPLICATION_STATUS_KEYS.get(status, status))}: {n}"
            for status, n in sorted(counts.items())
        )
        title = center.short_name.get(locale) if center else center_code
        lines.append(f"  • <b>{escape(title)}</b> ({sum(counts.values())}): {parts}")
    lines.append(
        _("stats.median_decision").format(
            median=duration_text(stats.median_decision), decided=stats.decided
        )
    )
    lines.append(_("stats.overdue").format(count=stats.overdue))
    if stats.overdue_ids:
        lines.append(
            _("stats.overdue_ids").format(ids=", ".join(f"№{i}" for i in stats.overdue_ids))
        )
    lines.append("")
    week = ", ".join(
        f"{_(CONSULTATION_STATUS_KEYS.get(status, status))}: {n}"
        for status, n in sorted(stats.week_consultations.items())
    )
    lines.append(
        _("stats.week").format(
            start=f"{stats.week_start:%d.%m.%Y}",
            count=sum(stats.week_consultations.values()),
            details=week or "—",
        )
    )
    lines.append(_("stats.no_shows").format(count=stats.no_shows_30_days))
    if stats.staff_failed:
        codes = ", ".join(f"{escape(code)}: {n}" for code, n in sorted(stats.staff_failed.items()))
        lines.append("")
        lines.append(
            _("stats.staff_failed").format(count=sum(stats.staff_failed.values()), codes=codes)
        )
    return "\n".join(lines)
