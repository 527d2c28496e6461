"""Outbox job ``duty_slot_removed``: the patient is told (in their language) that the doctor's
time they booked was cancelled, and is offered another time."""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.delivery import JobRow
from bot.keyboards import schedule as kb
from bot.services.schedule import ScheduleService


class SlotRemovedNotifier:
    def __init__(self, schedule: ScheduleService, i18n: I18n, default_locale: str) -> None:
        self._schedule = schedule
        self._i18n = i18n
        self._default_locale = default_locale

    async def notify(self, row: JobRow, bot: Bot) -> int | None:
        notice = await self._schedule.removal_notice(int(row.payload["consultation_id"]))
        if notice is None:
            return None  # the patient erased their data meanwhile
        locale = notice.locale or self._default_locale
        if locale not in self._i18n.available_locales:
            locale = self._default_locale
        local = notice.starts_at.astimezone(ZoneInfo(notice.time_zone))
        with self._i18n.context(), self._i18n.use_locale(locale):
            text = _("schedule.notice_slot_removed").format(
                doctor=escape(notice.doctor_name or "—"),
                time=f"{local:%d.%m.%Y %H:%M}",
                zone=notice.time_zone,
            )
            message = await bot.send_message(
                notice.telegram_id,
                text,
                reply_markup=kb.another_time(notice.doctor_id if notice.doctor_active else None),
            )
        return message.message_id
