"""Outbox job ``booking_notice``: the duty doctors are told about a booking, a move or a
cancellation, in the patient's topic of the duty chat when there is one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape

from aiogram import Bot
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.catalog import Catalog
from bot.config import Settings
from bot.delivery import JobRow
from bot.i18n import N_
from bot.services.booking import BookingService
from bot.views import MOSCOW, polite_name

#: Posts a text about a patient in their duty-chat topic: (bot, patient id, text) -> message id.
TopicPoster = Callable[[Bot, int, str], Awaitable[int | None]]


class BookingNotifier:
    """Tells the duty doctors' chat about bookings, moves and cancellations."""

    def __init__(
        self,
        booking: BookingService,
        catalog: Catalog,
        i18n: I18n,
        settings: Settings,
        post: TopicPoster | None = None,
    ) -> None:
        self._booking = booking
        self._catalog = catalog
        self._i18n = i18n
        self._locale = settings.default_locale
        self._post = post

    async def notify(self, row: JobRow, bot: Bot) -> int | None:
        found = await self._booking.booking_notice_data(int(row.payload["consultation_id"]))
        if found is None:
            return None
        consultation, patient = found
        keys = {
            "booked": N_("duty_notice.booked"),
            "rescheduled": N_("duty_notice.rescheduled"),
            "cancelled": N_("duty_notice.cancelled"),
        }
        with self._i18n.context(), self._i18n.use_locale(self._locale):
            text = _(keys.get(str(row.payload["event"]), N_("duty_notice.booked"))).format(
                patient=escape(polite_name(patient.full_name)),
                id=patient.id,
                doctor=escape(consultation.doctor_name or "—"),
                time=f"{consultation.starts_at.astimezone(MOSCOW):%d.%m.%Y %H:%M}",
            )
            if self._post is not None:
                # In the patient's topic, next to their questions, so the doctor sees it all.
                return await self._post(bot, patient.id, text)
            message = await bot.send_message(row.chat_id, text)
            return message.message_id
