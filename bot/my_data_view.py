"""«Мои данные» as one HTML file: readable in any browser or Telegram's viewer, printable, with
the patient's texts escaped and every time in the patient's own zone (the zone is named).

HTML (not PDF or .xlsx): it opens on any phone without an app, Cyrillic needs no embedded
fonts, screen readers read it, and a timeline reads as text rather than as spreadsheet cells.
The document is well-formed XHTML, so any HTML or XML parser reads it back."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from bot.catalog import Catalog
from bot.i18n import N_
from bot.messengers.identity import current_messenger
from bot.services.applications import Status
from bot.services.my_data import MyData
from bot.services.validation import format_phone
from bot.views import format_date, format_time_zone, region_name, status_name

CONSULTATION_STATUS_KEYS = {
    "scheduled": N_("stats.consultation_scheduled"),
    "confirmed": N_("stats.consultation_confirmed"),
    "reschedule_requested": N_("stats.consultation_reschedule_requested"),
    "cancelled": N_("stats.consultation_cancelled"),
    "done": N_("stats.consultation_done"),
    "no_show": N_("stats.consultation_no_show"),
}

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:52em;margin:1em auto;padding:0 1em;"
    "line-height:1.4}table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}"
    "th{background:#eee}.muted{color:#666}"
)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


class _Page:
    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.parts: list[str] = []

    def at(self, moment: datetime | None) -> str:
        if moment is None:
            return "—"
        local = moment.astimezone(self.zone)
        return f"{local:%d.%m.%Y %H:%M}"

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{_e(text)}</h2>")

    def table(self, headers: list[str], rows: list[list[str]]) -> None:
        if not rows:
            none = _("mydata.none")
            self.parts.append(f'<p class="muted">{_e(none)}</p>')
            return
        head = "".join(f"<th>{_e(h)}</th>" for h in headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows
        )
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def render_my_data(data: MyData, catalog: Catalog, locale: str) -> bytes:
    p = data.profile
    page = _Page(ZoneInfo(p.time_zone))
    zone = format_time_zone(p.time_zone, data.made_at)
    page.parts.append(f"<h1>{_e(_('mydata.title'))}</h1>")
    page.parts.append(
        "<p>"
        + _e(_("mydata.made_at").format(time=page.at(data.made_at), zone=zone))
        + "</p><p>"
        + _e(_("mydata.files_note"))
        + "</p>"
    )

    page.heading(_("mydata.profile"))
    page.table(
        [_("mydata.field"), _("mydata.value")],
        [
            [_("mydata.full_name"), p.full_name],
            [_("mydata.birth_date"), format_date(p.birth_date)],
            [_("mydata.phone"), format_phone(p.phone)],
            [_("mydata.region"), region_name(catalog, p.region_code, locale)],
            [_("mydata.time_zone"), zone],
            [_("mydata.registered"), page.at(p.registered_at)],
            [
                _("mydata.telegram_id").format(messenger=current_messenger().label),
                str(p.telegram_id),
            ],
        ],
    )

    page.heading(_("mydata.consents"))
    page.table(
        [_("mydata.consent_version"), _("mydata.when")],
        [[c.version, page.at(c.at)] for c in data.consents],
    )

    page.heading(_("mydata.documents"))
    rows = []
    for d in data.documents:
        doc_type = catalog.document_type(d.type_code)
        name = doc_type.name.get(locale) if doc_type else d.type_code
        rows.append([f"№{d.id}", name, page.at(d.created_at), str(d.files)])
    page.table([_("mydata.number"), _("mydata.type"), _("mydata.when"), _("mydata.files")], rows)

    page.heading(_("mydata.applications"))
    if not data.applications:
        page.table([], [])
    for a in data.applications:
        center = catalog.center(a.center_code)
        group = center.disease_group(a.disease_group_code) if center else None
        page.parts.append(
            "<h3>"
            + _e(
                _("mydata.application").format(
                    id=a.id,
                    center=center.short_name.get(locale) if center else a.center_code,
                    date=page.at(a.created_at),
                )
            )
            + "</h3>"
        )
        page.table(
            [_("mydata.field"), _("mydata.value")],
            [
                [_("mydata.group"), group.name.get(locale) if group else a.disease_group_code],
                [_("mydata.diagnosis"), a.diagnosis],
                [_("mydata.complaints"), a.complaints],
                [_("mydata.status"), _status(a.status)],
            ],
        )
        page.table(
            [_("mydata.when"), _("mydata.step"), _("mydata.note")],
            [[page.at(s.at), _status(s.status), s.note or ""] for s in a.timeline],
        )

    page.heading(_("mydata.consultations"))
    page.table(
        [_("mydata.number"), _("mydata.when"), _("mydata.kind"), _("mydata.status")],
        [
            [
                f"№{c.id}",
                page.at(c.starts_at),
                _("mydata.by_application").format(id=c.application_id)
                if c.application_id is not None
                else _("mydata.duty_doctor").format(name=c.doctor_name or "—"),
                _(CONSULTATION_STATUS_KEYS[c.status])
                if c.status in CONSULTATION_STATUS_KEYS
                else c.status,
            ]
            for c in data.consultations
        ],
    )

    page.heading(_("mydata.conclusions"))
    page.table(
        [_("mydata.when"), _("mydata.author"), _("mydata.text")],
        [
            [
                page.at(c.created_at),
                c.author,
                (c.text or "") + (("\n" + _("mydata.pdf_attached")) if c.has_pdf else ""),
            ]
            for c in data.conclusions
        ],
    )

    if data.referrals:
        page.heading(_("mydata.referrals"))
        page.table(
            [_("mydata.when"), _("mydata.organization"), _("mydata.diagnosis"), _("mydata.note")],
            [
                [
                    page.at(r.created_at),
                    r.organization + (f", {r.doctor}" if r.doctor else ""),
                    r.diagnosis,
                    r.comment,
                ]
                for r in data.referrals
            ],
        )

    title = _e(_("mydata.title"))
    html = (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        f'<html xmlns="http://www.w3.org/1999/xhtml" lang="{_e(locale)}">'
        f'<head><meta charset="utf-8"/><title>{title}</title><style>{STYLE}</style></head>'
        "<body>" + "".join(page.parts) + "</body></html>\n"
    )
    return html.encode("utf-8")


def _status(value: str) -> str:
    try:
        return status_name(Status(value))
    except ValueError:
        return value
