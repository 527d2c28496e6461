"""Texts assembled from i18n messages and data: summaries, profile, dates and time zones,
statuses, a broadcast's progress. Handlers and delivery (``bot.delivery``) both render with them."""

from __future__ import annotations

from datetime import date, datetime
from html import escape
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.catalog import Catalog
from bot.fsm.data import RegistrationDraft
from bot.i18n import N_
from bot.services.applications import Status
from bot.services.broadcasts import Audience, AudienceKind, BroadcastStatus, Progress
from bot.services.clock import local_date, local_time
from bot.services.documents import DocumentSummary
from bot.services.patients import PatientDTO
from bot.services.validation import age_on, format_phone

MOSCOW = ZoneInfo("Europe/Moscow")


def format_date(value: date) -> str:
    return value.strftime("%d.%m.%Y")


def format_local_date(moment: datetime, tz: str) -> str:
    """A stored moment's day as the reader's calendar shows it (the patient's zone for
    patients, the center's zone or Moscow for staff)."""
    return format_date(local_date(moment, tz))


def format_local_moment(moment: datetime, tz: str) -> str:
    """'28.11.2026 19:30 (Asia/Irkutsk)': a time shown to someone always names its zone."""
    return f"{local_time(moment, tz):%d.%m.%Y %H:%M} ({tz})"


def _offset(seconds: float) -> str:
    sign = "+" if seconds >= 0 else "-"
    seconds = abs(int(seconds))
    hours, minutes = divmod(seconds // 60, 60)
    return f"{sign}{hours}" if minutes == 0 else f"{sign}{hours}:{minutes:02d}"


def _utc_offset_seconds(now: datetime, zone: ZoneInfo) -> float:
    offset = now.astimezone(zone).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def format_time_zone(tz: str, now: datetime) -> str:
    """'Asia/Irkutsk' → 'UTC+8, МСК+5 (Asia/Irkutsk)'."""
    utc = _utc_offset_seconds(now, ZoneInfo(tz))
    moscow = _utc_offset_seconds(now, MOSCOW)
    relative = _("tz.moscow") + ("" if utc == moscow else _offset(utc - moscow))
    return f"UTC{_offset(utc)}, {relative} ({tz})"


def _age(years: int) -> str:
    return ngettext("summary.age", "summary.age_plural", years).format(age=years)


def polite_name(full_name: str) -> str:
    """'Иванова Мария Петровна' → 'Мария Петровна' (first name and patronymic)."""
    words = full_name.split()
    return " ".join(words[1:3]) if len(words) > 1 else full_name


def region_name(catalog: Catalog, code: int | None, locale: str) -> str:
    region = catalog.region(code) if code is not None else None
    return region.name.get(locale) if region else "—"


def registration_summary(
    draft: RegistrationDraft, catalog: Catalog, locale: str, now: datetime
) -> str:
    born = draft.birth_date
    today = local_date(now, draft.time_zone or MOSCOW.key)  # the zone may not be chosen yet
    age = _age(age_on(born, today)) if born else ""
    phone = format_phone(draft.phone) if draft.phone else "—"
    if draft.phone and not draft.phone_verified:
        phone += " " + _("summary.phone_unverified")
    return _("summary.text").format(
        full_name=escape(draft.full_name or "—"),
        birth_date=(format_date(born) + age) if born else "—",
        phone=escape(phone),
        region=escape(region_name(catalog, draft.region_code, locale)),
        time_zone=format_time_zone(draft.time_zone, now) if draft.time_zone else "—",
    )


def profile_text(patient: PatientDTO, catalog: Catalog, locale: str, now: datetime) -> str:
    phone = format_phone(patient.phone)
    if not patient.phone_verified:
        phone += " " + _("summary.phone_unverified")
    return _("profile.text").format(
        full_name=escape(patient.full_name),
        birth_date=format_date(patient.birth_date) + _age(patient.age(now)),
        phone=escape(phone),
        region=escape(region_name(catalog, patient.region_code, locale)),
        time_zone=format_time_zone(patient.time_zone, now),
        language=_("language.name"),
        consent=_("profile.consent").format(
            version=patient.consent_version,
            date=format_local_date(patient.consent_at, patient.time_zone),
        ),
    )


def documents_list_text(
    items: list[DocumentSummary], catalog: Catalog, locale: str, tz: str
) -> str:
    """The patient's documents grouped by type: type, then each document's date (in the
    patient's zone) and files."""
    if not items:
        return _("doc.list_empty")
    lines = [_("doc.list_title")]
    by_type: dict[str, list[DocumentSummary]] = {}
    for item in items:
        by_type.setdefault(item.type_code, []).append(item)
    for doc_type in catalog.document_types:
        group = by_type.pop(doc_type.code, [])
        if group:
            lines.append(_document_group(doc_type.name.get(locale), group, tz))
    for code, group in by_type.items():  # types no longer in the catalog
        lines.append(_document_group(code, group, tz))
    return "\n".join(lines)


def _document_group(name: str, group: list[DocumentSummary], tz: str) -> str:
    entries = ", ".join(
        f"{format_local_date(d.created_at, tz)} ("
        + ngettext("doc.files", "doc.files_plural", d.files).format(count=d.files)
        + ")"
        for d in group
    )
    return f"\n<b>{escape(name)}</b>: {entries}"


def status_name(status: Status) -> str:
    names = {
        Status.SUBMITTED: _("status.submitted"),
        Status.UNDER_REVIEW: _("status.under_review"),
        Status.DOCUMENTS_REQUESTED: _("status.documents_requested"),
        Status.TIME_ASSIGNED: _("status.time_assigned"),
        Status.DECLINED: _("status.declined"),
        Status.INVITED: _("status.invited"),
        Status.WITHDRAWN: _("status.withdrawn"),
        Status.COMPLETED: _("status.completed"),
    }
    return names[status]


# --- a broadcast's progress (the coordinator's live message) ---------------------------------

BROADCAST_STATUS_KEYS = {
    BroadcastStatus.SENDING: N_("broadcast.status_sending"),
    BroadcastStatus.PAUSED: N_("broadcast.status_paused"),
    BroadcastStatus.CANCELLED: N_("broadcast.status_cancelled"),
    BroadcastStatus.DONE: N_("broadcast.status_done"),
}
AUDIENCE_KEYS = {
    AudienceKind.ALL: N_("broadcast.audience_all"),
    AudienceKind.REGION: N_("broadcast.audience_region"),
    AudienceKind.CENTER: N_("broadcast.audience_center"),
    AudienceKind.REGISTERED: N_("broadcast.audience_registered"),
    AudienceKind.APPLIED: N_("broadcast.audience_applied"),
    AudienceKind.UPCOMING: N_("broadcast.audience_upcoming"),
}
BAR_WIDTH = 10


def audience_text(audience: Audience, catalog: Catalog, locale: str) -> str:
    key = AUDIENCE_KEYS[audience.kind]
    if audience.kind is AudienceKind.REGION:
        region = catalog.region(int(audience.value or 0))
        name = region.name.get(locale) if region else str(audience.value)
        return _(key).format(region=escape(name))
    if audience.kind is AudienceKind.CENTER:
        center = catalog.center(str(audience.value))
        name = center.short_name.get(locale) if center else str(audience.value)
        return _(key).format(center=escape(name))
    if audience.kind is AudienceKind.UPCOMING:
        return _(key).format(days=audience.value)
    return _(key)


def progress_bar(done: int, total: int) -> str:
    filled = BAR_WIDTH if not total else round(BAR_WIDTH * done / total)
    return "▓" * filled + "░" * (BAR_WIDTH - filled)


def progress_text(progress: Progress, catalog: Catalog, locale: str) -> str:
    total = progress.sent + progress.failed + progress.blocked + progress.skipped + progress.left
    done = total - progress.left
    percent = 100 if not total else done * 100 // total
    lines = [
        _("broadcast.progress").format(
            id=progress.id,
            status=_(BROADCAST_STATUS_KEYS[progress.status]),
            audience=audience_text(progress.audience, catalog, locale),
            bar=progress_bar(done, total),
            percent=percent,
            sent=progress.sent,
            failed=progress.failed,
            blocked=progress.blocked,
            left=progress.left,
        )
    ]
    if progress.skipped:
        lines.append(_("broadcast.progress_skipped").format(count=progress.skipped))
    return "\n".join(lines)
