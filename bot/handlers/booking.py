"""Booking a duty doctor (specialty → doctor or earliest → day → slot → confirm) and
"Мои консультации" (both paths: view, video link, cancel until the cutoff, reschedule)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from html import escape

from aiogram import F, Router
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.callbacks import ConsultAction, ConsultCb, DutyAction, DutyCb, DutyDoctorsPageCb
from bot.handlers.flow import Flow
from bot.handlers.utils import edit_or_send
from bot.i18n import variants
from bot.keyboards import booking as kb
from bot.keyboards.booking import REASON_KEYS, SPECIALTY_KEYS
from bot.keyboards.paging import page_of
from bot.services.booking import (
    SPECIALTIES,
    BookingError,
    BookingRefused,
    BookingService,
    MyConsultation,
)
from bot.services.patients import PatientDTO
from bot.views import MOSCOW, format_local_moment

LINK_OPENS_BEFORE = timedelta(minutes=15)


def _day(value: int) -> date | None:
    try:
        return date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        return None


def router(i18n: I18n) -> Router:
    r = Router(name="booking")

    @r.message(F.text.in_(variants(i18n, "menu.duty")))
    async def start(_message: Message, flow: Flow) -> None:
        await flow.state.clear()
        await flow.send(_("duty.intro"), reply_markup=kb.specialties())

    @r.callback_query(DutyDoctorsPageCb.filter(F.specialty.in_(SPECIALTIES)))
    async def doctors_page(
        query: CallbackQuery,
        callback_data: DutyDoctorsPageCb,
        patient: PatientDTO,
        booking: BookingService,
    ) -> None:
        await _doctors_page(
            query, booking, callback_data.specialty, callback_data.page, patient.time_zone
        )

    @r.callback_query(DutyCb.filter())
    async def step(
        query: CallbackQuery,
        callback_data: DutyCb,
        flow: Flow,
        patient: PatientDTO,
        booking: BookingService,
        callback_answer: CallbackAnswer,
    ) -> None:
        data = callback_data
        tz = patient.time_zone
        if data.action is DutyAction.START and data.doctor:
            doctor_specialty = await booking.doctors_specialty(data.doctor)
            if doctor_specialty is None:
                callback_answer.text = _("common.stale_button")
                return
            data = DutyCb(action=DutyAction.DOCTOR, specialty=doctor_specialty, doctor=data.doctor)
        if data.action is DutyAction.START:
            await edit_or_send(query, _("duty.intro"), kb.specialties())
            return
        if data.specialty not in SPECIALTIES:
            callback_answer.text = _("common.stale_button")
            return
        name = _(SPECIALTY_KEYS[data.specialty])
        if data.action is DutyAction.SPECIALTY:
            await _doctors_page(query, booking, data.specialty, 0, tz)
        elif data.action is DutyAction.DOCTOR:
            days = await booking.free_days(data.specialty, data.doctor, tz)
            if not days:
                callback_answer.text = _("duty.no_slots")
                callback_answer.show_alert = True
                return
            await edit_or_send(
                query,
                _("duty.choose_day").format(tz=tz),
                kb.days(data.specialty, data.doctor, days),
            )
        elif data.action is DutyAction.DAY:
            day = _day(data.day)
            slots = await booking.slots_on(data.specialty, data.doctor, day, tz) if day else []
            if not slots or day is None:
                callback_answer.text = _("duty.no_slots")
                return
            await edit_or_send(
                query,
                _("duty.choose_slot").format(day=f"{day:%d.%m.%Y}", tz=tz),
                kb.slots(data.specialty, data.doctor, data.day, slots, tz),
            )
        elif data.action is DutyAction.SLOT:
            found = await booking.slot(data.slot)
            if found is None or found[1] != data.specialty:
                callback_answer.text = _("common.stale_button")
                return
            slot = found[0]
            await edit_or_send(
                query,
                _("duty.confirm").format(
                    doctor=escape(slot.doctor_name),
                    specialty=name,
                    local=format_local_moment(slot.starts_at, tz),
                    moscow=f"{slot.starts_at.astimezone(MOSCOW):%d.%m.%Y %H:%M}",
                ),
                kb.confirm(data.specialty, data.doctor, data.day, data.slot),
            )
        elif data.action is DutyAction.CONFIRM:
            try:
                booked = await booking.book(patient.id, data.slot)
            except BookingError as refused:
                await _refused(query, flow, refused, data.specialty, tz, callback_answer)
                return
            await edit_or_send(
                query,
                _("duty.booked").format(
                    doctor=escape(booked.doctor_name or ""),
                    local=format_local_moment(booked.starts_at, tz),
                ),
                None,
            )

    # --- my consultations --------------------------------------------------------------------
    @r.message(F.text.in_(variants(i18n, "menu.consultations")))
    async def my_consultations(
        _message: Message, flow: Flow, patient: PatientDTO, booking: BookingService
    ) -> None:
        await flow.state.clear()
        text, markup = await _overview(flow, patient, booking)
        await flow.send(text, reply_markup=markup)

    @r.callback_query(ConsultCb.filter())
    async def consultation_action(
        query: CallbackQuery,
        callback_data: ConsultCb,
        flow: Flow,
        patient: PatientDTO,
        booking: BookingService,
        callback_answer: CallbackAnswer,
    ) -> None:
        data = callback_data
        tz = patient.time_zone
        if data.action is ConsultAction.LIST:
            text, markup = await _overview(flow, patient, booking)
            await edit_or_send(query, text, markup)
            return
        try:
            item = await booking.get_mine(patient.id, data.id)
        except BookingError:
            callback_answer.text = _("consult.not_found")
            callback_answer.show_alert = True
            return
        now = flow.clock()
        if data.action is ConsultAction.OPEN:
            await _show(query, item, tz, now)
            return
        if not item.current(now):  # cancelled, moved or over since the button was shown
            callback_answer.text = _("consult.not_live")
            callback_answer.show_alert = True
            return
        if data.action is ConsultAction.CANCEL:
            if item.starts_at - now < booking.cancel_cutoff:
                await edit_or_send(query, _too_late(booking), None)
                return
            await edit_or_send(query, _("consult.cancel_question"), kb.reasons(item.id))
        elif data.action is ConsultAction.CANCEL_REASON and data.reason is not None:
            try:
                await booking.cancel(patient.id, item.id, data.reason.value)
            except BookingError as refused:
                await edit_or_send(query, _refusal(refused, booking), None)
                return
            await edit_or_send(
                query,
                _("consult.cancelled").format(
                    local=format_local_moment(item.starts_at, tz),
                    reason=_(REASON_KEYS[data.reason]),
                ),
                None,
            )
        elif data.action is ConsultAction.RESCHEDULE and item.duty and item.doctor_id:
            specialty = await booking.doctors_specialty(item.doctor_id) or ""
            days = await booking.free_days(specialty, item.doctor_id, tz)
            if not days:
                callback_answer.text = _("duty.no_slots")
                callback_answer.show_alert = True
                return
            await edit_or_send(
                query, _("duty.choose_day").format(tz=tz), kb.reschedule_days(item.id, days)
            )
        elif data.action is ConsultAction.RESCHEDULE_DAY and item.doctor_id:
            specialty = await booking.doctors_specialty(item.doctor_id) or ""
            day = _day(data.day)
            slots = await booking.slots_on(specialty, item.doctor_id, day, tz) if day else []
            if not slots or day is None:
                callback_answer.text = _("duty.no_slots")
                return
            await edit_or_send(
                query,
                _("duty.choose_slot").format(day=f"{day:%d.%m.%Y}", tz=tz),
                kb.reschedule_slots(item.id, data.day, slots, tz),
            )
        elif data.action is ConsultAction.RESCHEDULE_SLOT:
            found = await booking.slot(data.slot)
            if found is None or found[0].doctor_id != item.doctor_id:
                callback_answer.text = _("common.stale_button")
                return
            await edit_or_send(
                query,
                _("consult.reschedule_question").format(
                    old=format_local_moment(item.starts_at, tz),
                    new=format_local_moment(found[0].starts_at, tz),
                ),
                kb.reschedule_confirm(item.id, data.day, data.slot),
            )
        elif data.action is ConsultAction.RESCHEDULE_CONFIRM:
            try:
                moved = await booking.reschedule(patient.id, item.id, data.slot)
            except BookingError as refused:
                if refused.reason is BookingRefused.TAKEN:
                    callback_answer.text = _("duty.taken")
                    callback_answer.show_alert = True
                    return
                await edit_or_send(query, _refusal(refused, booking), None)
                return
            await edit_or_send(
                query,
                _("consult.rescheduled").format(local=format_local_moment(moved.starts_at, tz)),
                None,
            )
        else:
            callback_answer.text = _("common.stale_button")

    return r


async def _doctors_page(
    query: CallbackQuery, booking: BookingService, specialty: str, page: int, tz: str
) -> None:
    """A specialty's doctors, a page at a time: the buttons and their "about" lines."""
    shown = page_of(await booking.doctors(specialty), page)
    text = _("duty.choose_doctor").format(specialty=_(SPECIALTY_KEYS[specialty]))
    for doctor in shown.items:
        if doctor.about:
            text += f"\n• <b>{escape(doctor.name)}</b> — {escape(doctor.about)}"
    text += "\n\n" + _("common.times_in_zone").format(zone=tz)  # the next free times
    await edit_or_send(query, text, kb.doctors(specialty, shown, tz))


async def _overview(
    flow: Flow, patient: PatientDTO, booking: BookingService
) -> tuple[str, InlineKeyboardMarkup | None]:
    now = flow.clock()
    items = await booking.mine(patient.id)
    upcoming = [i for i in items if i.current(now)]
    past = [i for i in items if i not in upcoming]
    tz = patient.time_zone
    if not items:
        return _("consult.none"), None
    lines = [_("consult.upcoming") if upcoming else _("consult.no_upcoming")]
    if upcoming:  # the buttons' times
        lines.append(_("common.times_in_zone").format(zone=tz))
    if past:
        lines.append("")
        lines.append(_("consult.past"))
        for item in past[:10]:
            who = escape(item.doctor_name or _("consult.center"))
            lines.append(f"• {format_local_moment(item.starts_at, tz)} — {who} — {_status(item)}")
    return "\n".join(lines), kb.my_list(list(reversed(upcoming)), tz) if upcoming else None


async def _show(query: CallbackQuery, item: MyConsultation, tz: str, now: datetime) -> None:
    link_active = item.current(
        now
    ) and item.starts_at - LINK_OPENS_BEFORE <= now < item.starts_at + timedelta(hours=2)
    text = _("consult.details").format(
        local=format_local_moment(item.starts_at, tz),
        moscow=f"{item.starts_at.astimezone(MOSCOW):%d.%m.%Y %H:%M}",
        who=escape(item.doctor_name or _("consult.center")),
        status=_status(item),
    )
    text += "\n" + (_("consult.link_ready") if link_active else _("consult.link_later"))
    await edit_or_send(query, text, kb.consultation(item, now, link_active))


def _status(item: MyConsultation) -> str:
    return {
        "scheduled": _("consult.status_scheduled"),
        "confirmed": _("consult.status_confirmed"),
        "reschedule_requested": _("consult.status_reschedule"),
        "cancelled": _("consult.status_cancelled"),
        "done": _("consult.status_done"),
        "no_show": _("consult.status_no_show"),
    }.get(item.status, item.status)


def _too_late(booking: BookingService) -> str:
    hours = int(booking.cancel_cutoff.total_seconds() // 3600)
    return _("consult.too_late").format(hours=hours)


def _refusal(refused: BookingError, booking: BookingService) -> str:
    if refused.reason is BookingRefused.TOO_LATE:
        return _too_late(booking)
    if refused.reason is BookingRefused.NOT_LIVE:
        return _("consult.not_live")
    return _("consult.not_found")


async def _refused(
    query: CallbackQuery,
    flow: Flow,
    refused: BookingError,
    specialty: str,
    tz: str,
    callback_answer: CallbackAnswer,
) -> None:
    if refused.reason is BookingRefused.TAKEN:
        text = _("duty.taken")
        markup = kb.nearest(specialty, refused.nearest, tz) if refused.nearest else None
        if not refused.nearest:
            text += "\n" + _("duty.no_slots")
        await edit_or_send(query, text, markup)
    elif refused.reason is BookingRefused.LIMIT:
        callback_answer.text = _("duty.limit")
        callback_answer.show_alert = True
    else:
        callback_answer.text = _("duty.slot_gone")
        callback_answer.show_alert = True
