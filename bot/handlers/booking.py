"""Booking a duty doctor (specialty → doctor or earliest → day → slot → confirm) and
"Мои консультации" (both paths: view, video link, cancel until the cutoff, reschedule).

One handler per button; the rules (cutoff, link window, what is still current) are asked of
``MyConsultation`` and ``BookingService``, never computed here."""

from __future__ import annotations

from datetime import date, datetime
from html import escape

from aiogram import F, Router
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.callbacks import ConsultAction, ConsultCb, DutyAction, DutyCb, DutyDoctorsPageCb
from bot.handlers.flow import Flow
from bot.handlers.utils import alert, edit_or_send
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
    SlotDTO,
)
from bot.services.patients import PatientDTO
from bot.views import MOSCOW, format_local_moment


def router(i18n: I18n) -> Router:
    r = Router(name="booking")
    # --- booking a duty doctor ---
    r.message.register(start, F.text.in_(variants(i18n, "menu.duty")))
    r.callback_query.register(doctors_page, DutyDoctorsPageCb.filter(F.specialty.in_(SPECIALTIES)))
    r.callback_query.register(
        this_doctor, DutyCb.filter((F.action == DutyAction.START) & (F.doctor != 0))
    )
    r.callback_query.register(specialties, DutyCb.filter(F.action == DutyAction.START))
    r.callback_query.register(specialty, _duty(DutyAction.SPECIALTY))
    r.callback_query.register(doctor, _duty(DutyAction.DOCTOR))
    r.callback_query.register(day, _duty(DutyAction.DAY))
    r.callback_query.register(slot, _duty(DutyAction.SLOT))
    r.callback_query.register(confirm, _duty(DutyAction.CONFIRM))
    r.callback_query.register(stale_duty_button, DutyCb.filter())  # a specialty not offered
    # --- my consultations ---
    r.message.register(my_consultations, F.text.in_(variants(i18n, "menu.consultations")))
    r.callback_query.register(consultations_again, _consult(ConsultAction.LIST))
    r.callback_query.register(open_consultation, _consult(ConsultAction.OPEN))
    r.callback_query.register(cancel_ask, _consult(ConsultAction.CANCEL))
    r.callback_query.register(cancel, _consult(ConsultAction.CANCEL_REASON))
    r.callback_query.register(reschedule, _consult(ConsultAction.RESCHEDULE))
    r.callback_query.register(reschedule_day, _consult(ConsultAction.RESCHEDULE_DAY))
    r.callback_query.register(reschedule_slot, _consult(ConsultAction.RESCHEDULE_SLOT))
    r.callback_query.register(reschedule_confirm, _consult(ConsultAction.RESCHEDULE_CONFIRM))
    return r


def _duty(action: DutyAction) -> CallbackQueryFilter:
    """A booking step's button, for a specialty that is offered."""
    return DutyCb.filter((F.action == action) & F.specialty.in_(SPECIALTIES))


def _consult(action: ConsultAction) -> CallbackQueryFilter:
    return ConsultCb.filter(F.action == action)


# --- booking a duty doctor --------------------------------------------------------------------


async def start(_message: Message, flow: Flow) -> None:
    await flow.state.clear()
    await flow.send(_("duty.intro"), reply_markup=kb.specialties())


async def specialties(query: CallbackQuery) -> None:
    await edit_or_send(query, _("duty.intro"), kb.specialties())


async def doctors_page(
    query: CallbackQuery,
    callback_data: DutyDoctorsPageCb,
    patient: PatientDTO,
    booking: BookingService,
) -> None:
    await _doctors_page(
        query, booking, callback_data.specialty, callback_data.page, patient.time_zone
    )


async def specialty(
    query: CallbackQuery, callback_data: DutyCb, patient: PatientDTO, booking: BookingService
) -> None:
    await _doctors_page(query, booking, callback_data.specialty, 0, patient.time_zone)


async def this_doctor(
    query: CallbackQuery,
    callback_data: DutyCb,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> None:
    """A button naming one doctor (the notice of a removed slot): that doctor's free days."""
    doctors_specialty = await booking.doctors_specialty(callback_data.doctor)
    if doctors_specialty is None or doctors_specialty not in SPECIALTIES:
        callback_answer.text = _("common.stale_button")
        return
    await _free_days(
        query, booking, doctors_specialty, callback_data.doctor, patient, callback_answer
    )


async def doctor(
    query: CallbackQuery,
    callback_data: DutyCb,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> None:
    await _free_days(
        query, booking, callback_data.specialty, callback_data.doctor, patient, callback_answer
    )


async def day(
    query: CallbackQuery,
    callback_data: DutyCb,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> None:
    data, tz = callback_data, patient.time_zone
    found = await _day_slots(booking, data.specialty, data.doctor, data.day, tz)
    if found is None:
        callback_answer.text = _("duty.no_slots")
        return
    chosen, slots = found
    await edit_or_send(
        query,
        _("duty.choose_slot").format(day=f"{chosen:%d.%m.%Y}", tz=tz),
        kb.slots(data.specialty, data.doctor, data.day, slots, tz),
    )


async def slot(
    query: CallbackQuery,
    callback_data: DutyCb,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> None:
    data, tz = callback_data, patient.time_zone
    found = await booking.slot(data.slot)
    if found is None or found[1] != data.specialty:
        callback_answer.text = _("common.stale_button")
        return
    chosen = found[0]
    await edit_or_send(
        query,
        _("duty.confirm").format(
            doctor=escape(chosen.doctor_name),
            specialty=_(SPECIALTY_KEYS[data.specialty]),
            local=format_local_moment(chosen.starts_at, tz),
            moscow=_moscow(chosen.starts_at),
        ),
        kb.confirm(data.specialty, data.doctor, data.day, data.slot),
    )


async def confirm(
    query: CallbackQuery,
    callback_data: DutyCb,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> None:
    tz = patient.time_zone
    try:
        booked = await booking.book(patient.id, callback_data.slot)
    except BookingError as refused:
        await _refused(query, refused, callback_data.specialty, tz, callback_answer)
        return
    text = _("duty.booked").format(
        doctor=escape(booked.doctor_name or ""), local=format_local_moment(booked.starts_at, tz)
    )
    await edit_or_send(query, text, None)


async def stale_duty_button(_query: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    callback_answer.text = _("common.stale_button")


# --- my consultations -------------------------------------------------------------------------


async def my_consultations(
    _message: Message, flow: Flow, patient: PatientDTO, booking: BookingService
) -> None:
    await flow.state.clear()
    text, markup = await _overview(flow, patient, booking)
    await flow.send(text, reply_markup=markup)


async def consultations_again(
    query: CallbackQuery, flow: Flow, patient: PatientDTO, booking: BookingService
) -> None:
    text, markup = await _overview(flow, patient, booking)
    await edit_or_send(query, text, markup)


async def open_consultation(
    query: CallbackQuery,
    callback_data: ConsultCb,
    flow: Flow,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> None:
    item = await _mine(callback_data, patient, booking, callback_answer)
    if item is not None:
        await _show(query, item, patient.time_zone, flow.clock())


async def cancel_ask(
    query: CallbackQuery,
    callback_data: ConsultCb,
    flow: Flow,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> None:
    item = await _current(callback_data, flow, patient, booking, callback_answer)
    if item is None:
        return
    if not item.may_cancel(flow.clock()):
        await edit_or_send(query, _too_late(booking), None)
        return
    await edit_or_send(query, _("consult.cancel_question"), kb.reasons(item.id))


async def cancel(
    query: CallbackQuery,
    callback_data: ConsultCb,
    flow: Flow,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> None:
    item = await _current(callback_data, flow, patient, booking, callback_answer)
    reason = callback_data.reason
    if item is None:
        return
    if reason is None:
        callback_answer.text = _("common.stale_button")
        return
    try:
        await booking.cancel(patient.id, item.id, reason.value)
    except BookingError as refused:
        await edit_or_send(query, _refusal(refused, booking), None)
        return
    text = _("consult.cancelled").format(
        local=format_local_moment(item.starts_at, patient.time_zone),
        reason=_(REASON_KEYS[reason]),
    )
    await edit_or_send(query, text, None)


async def reschedule(
    query: CallbackQuery,
    callback_data: ConsultCb,
    flow: Flow,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> None:
    """A duty booking's "Перенести": the same doctor's free days."""
    item = await _current(callback_data, flow, patient, booking, callback_answer)
    if item is None:
        return
    if not item.duty or not item.doctor_id:  # a center's time is moved by its doctors
        callback_answer.text = _("common.stale_button")
        return
    tz = patient.time_zone
    specialty_code = await booking.doctors_specialty(item.doctor_id) or ""
    days = await booking.free_days(specialty_code, item.doctor_id, tz)
    if not days:
        alert(callback_answer, _("duty.no_slots"))
        return
    await edit_or_send(query, _("duty.choose_day").format(tz=tz), kb.reschedule_days(item.id, days))


async def reschedule_day(
    query: CallbackQuery,
    callback_data: ConsultCb,
    flow: Flow,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> None:
    item = await _current(callback_data, flow, patient, booking, callback_answer)
    if item is None:
        return
    if not item.doctor_id:
        callback_answer.text = _("common.stale_button")
        return
    tz = patient.time_zone
    specialty_code = await booking.doctors_specialty(item.doctor_id) or ""
    found = await _day_slots(booking, specialty_code, item.doctor_id, callback_data.day, tz)
    if found is None:
        callback_answer.text = _("duty.no_slots")
        return
    chosen, slots = found
    await edit_or_send(
        query,
        _("duty.choose_slot").format(day=f"{chosen:%d.%m.%Y}", tz=tz),
        kb.reschedule_slots(item.id, callback_data.day, slots, tz),
    )


async def reschedule_slot(
    query: CallbackQuery,
    callback_data: ConsultCb,
    flow: Flow,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> None:
    item = await _current(callback_data, flow, patient, booking, callback_answer)
    if item is None:
        return
    found = await booking.slot(callback_data.slot)
    if found is None or found[0].doctor_id != item.doctor_id:
        callback_answer.text = _("common.stale_button")
        return
    tz = patient.time_zone
    await edit_or_send(
        query,
        _("consult.reschedule_question").format(
            old=format_local_moment(item.starts_at, tz),
            new=format_local_moment(found[0].starts_at, tz),
        ),
        kb.reschedule_confirm(item.id, callback_data.day, callback_data.slot),
    )


async def reschedule_confirm(
    query: CallbackQuery,
    callback_data: ConsultCb,
    flow: Flow,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> None:
    item = await _current(callback_data, flow, patient, booking, callback_answer)
    if item is None:
        return
    try:
        moved = await booking.reschedule(patient.id, item.id, callback_data.slot)
    except BookingError as refused:
        if refused.reason is BookingRefused.TAKEN:
            alert(callback_answer, _("duty.taken"))
            return
        await edit_or_send(query, _refusal(refused, booking), None)
        return
    local = format_local_moment(moved.starts_at, patient.time_zone)
    await edit_or_send(query, _("consult.rescheduled").format(local=local), None)


# --- shared steps and texts -------------------------------------------------------------------


def _day(value: int) -> date | None:
    try:
        return date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        return None


def _moscow(moment: datetime) -> str:
    return f"{moment.astimezone(MOSCOW):%d.%m.%Y %H:%M}"


async def _doctors_page(
    query: CallbackQuery, booking: BookingService, specialty_code: str, page: int, tz: str
) -> None:
    """A specialty's doctors, a page at a time: the buttons and their "about" lines."""
    shown = page_of(await booking.doctors(specialty_code), page)
    text = _("duty.choose_doctor").format(specialty=_(SPECIALTY_KEYS[specialty_code]))
    for item in shown.items:
        if item.about:
            text += f"\n• <b>{escape(item.name)}</b> — {escape(item.about)}"
    text += "\n\n" + _("common.times_in_zone").format(zone=tz)  # the next free times
    await edit_or_send(query, text, kb.doctors(specialty_code, shown, tz))


async def _free_days(
    query: CallbackQuery,
    booking: BookingService,
    specialty_code: str,
    doctor_id: int,
    patient: PatientDTO,
    callback_answer: CallbackAnswer,
) -> None:
    """The days with a free slot of one doctor (or of any, doctor 0)."""
    tz = patient.time_zone
    days = await booking.free_days(specialty_code, doctor_id, tz)
    if not days:
        alert(callback_answer, _("duty.no_slots"))
        return
    markup = kb.days(specialty_code, doctor_id, days)
    await edit_or_send(query, _("duty.choose_day").format(tz=tz), markup)


async def _day_slots(
    booking: BookingService, specialty_code: str, doctor_id: int, value: int, tz: str
) -> tuple[date, list[SlotDTO]] | None:
    """The free slots of a day given as yyyymmdd in the patient's zone; None if none."""
    chosen = _day(value)
    if chosen is None:
        return None
    slots = await booking.slots_on(specialty_code, doctor_id, chosen, tz)
    return (chosen, slots) if slots else None


async def _mine(
    callback_data: ConsultCb,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> MyConsultation | None:
    """The patient's own consultation named by the button (forged or foreign ids: refused)."""
    try:
        return await booking.get_mine(patient.id, callback_data.id)
    except BookingError:
        alert(callback_answer, _("consult.not_found"))
        return None


async def _current(
    callback_data: ConsultCb,
    flow: Flow,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> MyConsultation | None:
    """As ``_mine``, and still current: cancelled, moved or over since the button was shown
    is refused at once."""
    item = await _mine(callback_data, patient, booking, callback_answer)
    if item is not None and not item.current(flow.clock()):
        alert(callback_answer, _("consult.not_live"))
        return None
    return item


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
    text = _("consult.details").format(
        local=format_local_moment(item.starts_at, tz),
        moscow=_moscow(item.starts_at),
        who=escape(item.doctor_name or _("consult.center")),
        status=_status(item),
    )
    text += "\n" + (_("consult.link_ready") if item.link_open(now) else _("consult.link_later"))
    await edit_or_send(query, text, kb.consultation(item, now))


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
    refused: BookingError,
    specialty_code: str,
    tz: str,
    callback_answer: CallbackAnswer,
) -> None:
    if refused.reason is BookingRefused.TAKEN:
        text = _("duty.taken")
        markup = kb.nearest(specialty_code, refused.nearest, tz) if refused.nearest else None
        if not refused.nearest:
            text += "\n" + _("duty.no_slots")
        await edit_or_send(query, text, markup)
    elif refused.reason is BookingRefused.LIMIT:
        alert(callback_answer, _("duty.limit"))
    else:
        alert(callback_answer, _("duty.slot_gone"))
