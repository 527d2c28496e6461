"""Outbox job handlers of the SLA: an overdue application's escalation (to its center's chat
and to coordinators) and the coordinators' daily digest. Rendered at delivery, in the staff
language; an escalation of an application handled meanwhile is dropped, not sent."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.utils.i18n import I18n

from bot.catalog import Catalog
from bot.delivery import JobRow
from bot.i18n import N_
from bot.services.sla import (
    DIGEST,
    SLA_ESCALATION,
    STAFF,
    ApplicationBrief,
    ConsultationBrief,
    Digest,
    SlaService,
)
from bot.views import region_name

#: Lines per section of the digest; the rest is counted ("and N more"), within Telegram's 4096.
DIGEST_LINES = 25


class SlaNotifier:
    def __init__(self, sla: SlaService, catalog: Catalog, i18n: I18n, locale: str) -> None:
        self._sla = sla
        self._catalog = catalog
        self._i18n = i18n
        self._locale = locale

    def handlers(self) -> dict[str, Any]:
        return {SLA_ESCALATION: self.escalate, DIGEST: self.send_digest}

    def _(self, key: str) -> str:
        return self._i18n.gettext(key, locale=self._locale)

    def _status(self, status: str) -> str:
        key = f"status.{status}"  # the ids are marked where bot.views.status_name lists them
        return self._(key)

    async def escalate(self, row: JobRow, bot: Bot) -> int | None:
        application = await self._sla.is_waiting(int(row.payload["application_id"]))
        if application is None:
            return None  # handled since: nothing to escalate
        waiting = self._status(application.status)
        since = self._moment(application.created_at)
        # the center's chat: the application's topic, if it has one
        if row.payload.get("to") == STAFF:
            text = self._("sla.staff").format(id=application.id, since=since, status=waiting)
            thread = await self._sla.thread_of(application.id)
            try:
                sent = await bot.send_message(row.chat_id, text, message_thread_id=thread)
            except TelegramBadRequest as error:
                if thread is None or "thread not found" not in error.message.lower():
                    raise
                sent = await bot.send_message(row.chat_id, text)  # the topic was deleted
        else:
            text = self._("sla.coordinator").format(
                id=application.id,
                since=since,
                status=waiting,
                days=self._sla.sla.days,
                center=escape(self._center(application.center_code)),
                region=escape(self._region(application.region_code)),
            )
            sent = await bot.send_message(row.chat_id, text)
        return sent.message_id

    async def send_digest(self, row: JobRow, bot: Bot) -> int | None:
        digest = await self._sla.digest(datetime.fromisoformat(str(row.payload["at"])))
        sent = await bot.send_message(row.chat_id, self.digest_text(digest))
        return sent.message_id

    def digest_text(self, digest: Digest) -> str:
        local = digest.at.astimezone(self._sla.zone)
        parts = [
            self._("digest.title").format(
                date=f"{local:%d.%m.%Y}", time=f"{local:%H:%M}", zone=self._sla.zone.key
            ),
            self._("digest.new").format(count=len(digest.new)),
            *self._lines([self._application_line(a) for a in digest.new]),
            self._("digest.overdue").format(count=len(digest.overdue), days=self._sla.sla.days),
            *self._lines([self._application_line(a, waiting=True) for a in digest.overdue]),
            self._("digest.consultations").format(count=len(digest.consultations)),
            *self._lines([self._consultation_line(c) for c in digest.consultations]),
        ]
        return "\n".join(parts)

    def _lines(self, lines: list[str]) -> list[str]:
        if len(lines) <= DIGEST_LINES:
            return lines
        rest = self._("digest.more").format(count=len(lines) - DIGEST_LINES)
        return [*lines[:DIGEST_LINES], rest]

    def _application_line(self, application: ApplicationBrief, *, waiting: bool = False) -> str:
        key = N_("digest.overdue_line") if waiting else N_("digest.application_line")
        return self._(key).format(
            id=application.id,
            center=escape(self._center(application.center_code)),
            region=escape(self._region(application.region_code)),
            since=self._moment(application.created_at),
            status=self._status(application.status),
        )

    def _consultation_line(self, consultation: ConsultationBrief) -> str:
        where = (
            self._center(consultation.center_code)
            if consultation.center_code
            else self._("digest.duty")
        )
        return self._("digest.consultation_line").format(
            id=consultation.id,
            time=f"{consultation.starts_at.astimezone(self._sla.zone):%H:%M}",
            center=escape(where),
            region=escape(self._region(consultation.region_code)),
        )

    def _center(self, code: str | None) -> str:
        center = self._catalog.center(code) if code else None
        return center.short_name.get(self._locale) if center else (code or "—")

    def _region(self, code: int | None) -> str:
        return region_name(self._catalog, code, self._locale)

    def _moment(self, moment: datetime) -> str:
        local = moment.astimezone(self._sla.zone)
        return f"{local:%d.%m.%Y %H:%M} ({self._sla.zone.key})"
