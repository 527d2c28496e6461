"""Outbox job handlers of the consultation day: the .ics calendar file, the patient's reminders,
the doctors' heads-up (patient card and video link), the patient's answers shown to the doctors,
and the coordinators' no-show alert. Texts are rendered at delivery, in the recipient's
language, from the current state: a reminder of a consultation no longer live is skipped."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from html import escape
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile
from aiogram.utils.i18n import I18n, ngettext
from aiogram.utils.i18n import gettext as _
from icalendar import Alarm, Calendar, Event

from bot.catalog import Catalog
from bot.delivery import JobRow
from bot.delivery.documents import send_patient_documents
from bot.delivery.relay import DutyDesk
from bot.i18n import N_
from bot.keyboards import reminders as kb
from bot.services.clock import Clock, local_date
from bot.services.documents import DocumentService
from bot.services.outbox import SkipDelivery
from bot.services.patients import PatientService
from bot.services.relay import RelayService
from bot.services.reminder_plan import (
    ANSWER_NOTICE,
    CALENDAR,
    CONSULTATION_DOCUMENTS,
    HEADSUP,
    NO_SHOW_ALERT,
    REMINDER,
)
from bot.services.reminders import Answer, DayConsultation, ReminderService
from bot.services.validation import age_on, format_phone
from bot.views import MOSCOW, format_local_moment, region_name

ICS_DOMAIN = "oblako-zdorovia.bot"


def ics_uid(consultation_id: int) -> str:
    """Stable per consultation: a calendar that imports the file twice keeps one event."""
    return f"consultation-{consultation_id}@{ICS_DOMAIN}"


def moscow(moment: datetime) -> str:
    return f"{moment.astimezone(MOSCOW):%d.%m.%Y %H:%M}"


def time_left(left: timedelta, nominal: timedelta | None = None) -> str:
    """'через 24 ч', 'через 1 ч 56 мин', 'сейчас' (in the current locale). A reminder sent a
    little late (within a tenth of its offset) still says its nominal time."""
    if nominal is not None and left >= nominal * 0.9:
        left = nominal
    minutes = round(left.total_seconds() / 60)
    if minutes <= 0:
        return _("day.left_now")
    hours, rest = divmod(minutes, 60)
    if not hours:
        return _("day.left_minutes").format(minutes=rest)
    if not rest:
        return _("day.left_hours").format(hours=hours)
    return _("day.left_hours_minutes").format(hours=hours, minutes=rest)


class ConsultationDayNotifier:
    def __init__(
        self,
        reminders: ReminderService,
        relay: RelayService,
        patients: PatientService,
        catalog: Catalog,
        i18n: I18n,
        clock: Clock,
        staff_locale: str,
        documents: DocumentService | None = None,
    ) -> None:
        self._documents = documents
        self._reminders = reminders
        self._relay = relay
        self._patients = patients
        self._catalog = catalog
        self._i18n = i18n
        self._clock = clock
        self._staff_locale = staff_locale

    def handlers(self) -> dict[str, Any]:
        return {
            CALENDAR: self.send_calendar,
            REMINDER: self.send_reminder,
            HEADSUP: self.send_headsup,
            ANSWER_NOTICE: self.send_answer,
            NO_SHOW_ALERT: self.send_no_show_alert,
            CONSULTATION_DOCUMENTS: self.send_documents,
        }

    @contextlib.contextmanager
    def _locale(self, locale: str | None) -> Iterator[None]:
        wanted = locale if locale in self._i18n.available_locales else self._staff_locale
        with self._i18n.context(), self._i18n.use_locale(wanted):
            yield

    async def _live(self, row: JobRow) -> DayConsultation:
        day = await self._reminders.get(int(row.payload["consultation_id"]))
        if day is None:
            raise SkipDelivery("gone")
        if not day.live:
            raise SkipDelivery("not_live")
        return day

    def _who(self, day: DayConsultation, locale: str) -> str:
        if day.doctor_name:
            return _("day.with_doctor").format(name=escape(day.doctor_name))
        center = self._catalog.center(day.center_code) if day.center_code else None
        name = center.short_name.get(locale) if center else "—"
        return _("day.with_center").format(center=escape(name))

    # --- the patient -------------------------------------------------------------------------

    async def send_calendar(self, row: JobRow, bot: Bot) -> int | None:
        day = await self._live(row)
        locale = day.patient_locale or self._staff_locale
        with self._locale(locale):
            data = self.calendar_file(day, locale)
            caption = _("day.ics_caption").format(
                local=format_local_moment(day.starts_at, day.patient_time_zone),
                moscow=moscow(day.starts_at),
            )
        message = await bot.send_document(
            day.patient_telegram_id,
            BufferedInputFile(data, filename=f"consultation-{day.id}.ics"),
            caption=caption,
        )
        return message.message_id

    def calendar_file(self, day: DayConsultation, locale: str) -> bytes:
        """An iCalendar file (RFC 5545) with one event in UTC and a 15-minute alarm."""
        calendar = Calendar()
        calendar.add("prodid", "-//Oblako zdorovia//Telegram bot//RU")
        calendar.add("version", "2.0")
        calendar.add("method", "PUBLISH")
        event = Event()
        event.add("uid", ics_uid(day.id))
        event.add("dtstamp", self._clock())
        event.add("dtstart", day.starts_at)
        event.add("dtend", day.ends_at)
        summary = _("day.ics_summary")
        event.add("summary", summary)
        description = _("day.ics_description").format(who=self._who(day, locale), url=day.video_url)
        event.add("description", description)
        event.add("location", day.video_url)
        event.add("url", day.video_url)
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", summary)
        alarm.add("trigger", timedelta(minutes=-15))
        event.add_component(alarm)
        calendar.add_component(event)
        return bytes(calendar.to_ical())

    async def send_reminder(self, row: JobRow, bot: Bot) -> int | None:
        day = await self._live(row)
        minutes = int(row.payload["minutes"])
        locale = day.patient_locale or self._staff_locale
        with self._locale(locale):
            values = {
                "left": time_left(day.starts_at - self._clock(), timedelta(minutes=minutes)),
                "local": format_local_moment(day.starts_at, day.patient_time_zone),
                "moscow": moscow(day.starts_at),
                "who": self._who(day, locale),
            }
            if row.payload.get("link"):
                text = _("day.reminder_link").format(url=day.video_url, **values)
                text += "\n\n" + _("day.checklist")
                markup = kb.join(day.video_url)
            else:
                text = _("day.reminder").format(**values)
                markup = kb.answers(day.id, minutes)
        message = await bot.send_message(day.patient_telegram_id, text, reply_markup=markup)
        return message.message_id

    # --- the doctors -------------------------------------------------------------------------

    async def _staff_place(self, day: DayConsultation, bot: Bot) -> tuple[int, int | None]:
        """Where the doctors read about this consultation: the application's topic, or the
        patient's topic in the duty chat."""
        if day.staff_chat_id is None:
            raise SkipDelivery("no_staff_chat")
        if not day.duty:
            return day.staff_chat_id, day.staff_thread_id
        desk = DutyDesk(
            bot=bot,
            relay=self._relay,
            patients=self._patients,
            i18n=self._i18n,
            catalog=self._catalog,
            clock=self._clock,
            staff_locale=self._staff_locale,
        )
        with self._locale(self._staff_locale):
            thread_id = await desk.topic_for(day.patient_id)
        return day.staff_chat_id, thread_id

    def staff_card(self, day: DayConsultation) -> str:
        """The patient card of the heads-up (in the staff locale)."""
        now = self._clock()
        years = age_on(day.patient_birth_date, local_date(now, day.patient_time_zone))
        lines = [
            _("day.card_patient").format(
                name=escape(day.patient_name),
                id=day.patient_id,
                age=ngettext("relay.age", "relay.age_plural", years).format(age=years),
                region=escape(region_name(self._catalog, day.patient_region, self._staff_locale)),
                tz=day.patient_time_zone,
            )
        ]
        if day.application_id is not None:
            lines.append(
                _("day.card_application").format(
                    id=day.application_id, diagnosis=escape(day.diagnosis or "—")
                )
            )
        else:
            lines.append(_("day.card_duty").format(doctor=escape(day.doctor_name or "—")))
        return "\n".join(lines)

    async def send_headsup(self, row: JobRow, bot: Bot) -> int | None:
        day = await self._live(row)
        chat_id, thread_id = await self._staff_place(day, bot)
        patient = await self._patients.get(day.patient_telegram_id)
        with self._locale(self._staff_locale):
            text = _("day.headsup").format(
                left=time_left(day.starts_at - self._clock(), self._reminders.plan.headsup),
                time=moscow(day.starts_at),
                card=self.staff_card(day),
                phone=format_phone(patient.phone) if patient else "—",
                url=day.video_url,
            )
            markup = kb.headsup(day.id, day.video_url)
        return await self._post(bot, chat_id, thread_id, text, markup)

    async def send_documents(self, row: JobRow, bot: Bot) -> int | None:
        """The patient's documents, asked for on the heads-up, into the same topic."""
        day = await self._reminders.get(int(row.payload["consultation_id"]))
        if day is None or self._documents is None:
            raise SkipDelivery("gone")
        chat_id, thread_id = await self._staff_place(day, bot)
        with self._locale(self._staff_locale):
            text = _("day.documents").format(name=escape(day.patient_name), id=day.patient_id)
        message_id = await self._post(bot, chat_id, thread_id, text, None)
        await send_patient_documents(
            bot,
            self._documents,
            self._catalog,
            self._staff_locale,
            day.patient_id,
            chat_id,
            thread_id,
        )
        return message_id

    async def send_answer(self, row: JobRow, bot: Bot) -> int | None:
        day = await self._reminders.get(int(row.payload["consultation_id"]))
        if day is None:
            raise SkipDelivery("gone")
        chat_id, thread_id = await self._staff_place(day, bot)
        key = (
            N_("day.answer_attend")
            if row.payload["answer"] == Answer.ATTEND
            else N_("day.answer_cannot")
        )
        with self._locale(self._staff_locale):
            text = _(key).format(
                name=escape(day.patient_name), id=day.patient_id, time=moscow(day.starts_at)
            )
        return await self._post(bot, chat_id, thread_id, text, None)

    async def _post(
        self, bot: Bot, chat_id: int, thread_id: int | None, text: str, markup: Any
    ) -> int:
        try:
            message = await bot.send_message(
                chat_id, text, message_thread_id=thread_id, reply_markup=markup
            )
        except TelegramBadRequest as error:
            if thread_id is None or "thread not found" not in error.message.lower():
                raise
            # The topic is gone: the general chat still gets it (the card names the patient).
            message = await bot.send_message(chat_id, text, reply_markup=markup)
        return message.message_id

    # --- the coordinators --------------------------------------------------------------------

    async def send_no_show_alert(self, row: JobRow, bot: Bot) -> int | None:
        patient_id = int(row.payload["patient_id"])
        missed = await self._reminders.missed_count(patient_id)
        found = await self._reminders.patient(patient_id)
        if found is None:
            raise SkipDelivery("gone")
        name, phone = found
        with self._locale(self._staff_locale):
            text = _("day.no_show_alert").format(
                name=escape(name), id=patient_id, phone=format_phone(phone), count=missed
            )
        message = await bot.send_message(row.chat_id, text)
        return message.message_id
