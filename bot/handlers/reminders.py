"""The consultation day in the chats: the patient's answers to a reminder ("Буду", "Не смогу" →
the cancel flow of «Мои консультации», "Перенести" → the reschedule of the duty path or "ask
for another time" of a center consultation) and the doctors' "did not attend" mark."""

from __future__ import annotations

from html import escape

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.callbacks import ConsultDocsCb, NoShowCb, RemindAction, RemindCb
from bot.filters.staff import CONSULTATION, StaffGuard
from bot.handlers.flow import Flow
from bot.handlers.utils import drop_buttons, edit_or_send
from bot.i18n import N_
from bot.keyboards import booking as booking_kb
from bot.services.applications import ActionRefusedError, ApplicationService
from bot.services.audit import Actor, Role
from bot.services.booking import BookingError, BookingService
from bot.services.patients import PatientDTO
from bot.services.reminders import (
    Answer,
    AnswerResult,
    DayConsultation,
    DayError,
    Refusal,
    ReminderService,
)

PATIENT_REFUSALS = {
    Refusal.NOT_FOUND: N_("consult.not_found"),
    Refusal.NOT_LIVE: N_("day.not_live"),
    Refusal.STARTED: N_("day.started"),
}
STAFF_REFUSALS = {
    Refusal.NOT_FOUND: N_("day.no_show_not_here"),
    Refusal.NOT_LIVE: N_("day.no_show_not_live"),
    Refusal.ALREADY: N_("day.no_show_already"),
    Refusal.TOO_EARLY: N_("day.no_show_too_early"),
}


def router(i18n: I18n) -> Router:
    """The patient's side (private chat, registered patients: the parent router's filters)."""
    r = Router(name="reminders")
    r.callback_query.register(attend, RemindCb.filter(F.action == RemindAction.ATTEND))
    r.callback_query.register(cannot, RemindCb.filter(F.action == RemindAction.CANNOT))
    r.callback_query.register(move, RemindCb.filter(F.action == RemindAction.MOVE))
    return r


def staff_router() -> Router:
    """The doctors' side: "did not attend" and the documents on the heads-up, members of the
    consultation's own chat only (the staff guard)."""
    r = Router(name="reminders_staff")
    r.callback_query.filter(F.message.chat.type.in_({"group", "supergroup"}))
    r.callback_query.middleware(StaffGuard(CONSULTATION))
    r.callback_query.register(no_show, NoShowCb.filter())
    r.callback_query.register(send_documents, ConsultDocsCb.filter())
    return r


# --- the patient -----------------------------------------------------------------------------


async def attend(
    query: CallbackQuery,
    callback_data: RemindCb,
    patient: PatientDTO,
    reminders: ReminderService,
    callback_answer: CallbackAnswer,
) -> None:
    result = await _answer(callback_data, Answer.ATTEND, patient, reminders, callback_answer)
    if result is None:
        return
    if not result.first:
        callback_answer.text = _("day.attend_again")
        return
    await drop_buttons(query)
    callback_answer.text = _("day.attend_thanks")
    if isinstance(query.message, Message):
        await query.message.answer(_("day.attend_thanks"))


async def cannot(
    query: CallbackQuery,
    callback_data: RemindCb,
    flow: Flow,
    patient: PatientDTO,
    reminders: ReminderService,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> None:
    """ "Не смогу": the cancel flow of «Мои консультации» (the doctors are told already)."""
    result = await _answer(callback_data, Answer.CANNOT, patient, reminders, callback_answer)
    if result is None:
        return
    if not booking.before_cancel_cutoff(result.consultation.starts_at, flow.clock()):
        await edit_or_send(query, _too_late(booking), None)
        return
    await edit_or_send(query, _("consult.cancel_question"), booking_kb.reasons(callback_data.id))


async def _answer(
    callback_data: RemindCb,
    given: Answer,
    patient: PatientDTO,
    reminders: ReminderService,
    callback_answer: CallbackAnswer,
) -> AnswerResult | None:
    try:
        return await reminders.answer(patient.id, callback_data.id, callback_data.minutes, given)
    except DayError as refused:
        callback_answer.text = _(PATIENT_REFUSALS.get(refused.reason, "consult.not_found"))
        callback_answer.show_alert = True
        return None


async def move(
    query: CallbackQuery,
    callback_data: RemindCb,
    flow: Flow,
    patient: PatientDTO,
    reminders: ReminderService,
    booking: BookingService,
    applications: ApplicationService,
    callback_answer: CallbackAnswer,
) -> None:
    """ "Перенести": a duty booking offers the doctor's free days (the reschedule of «Мои
    консультации»); a center consultation asks the doctors for another time."""
    day = await reminders.get(callback_data.id)
    now = flow.clock()
    refusal = Refusal.NOT_FOUND if day is None else day.refusal_to_move(patient.id, now)
    if refusal is not None or day is None:
        callback_answer.text = _(PATIENT_REFUSALS[refusal or Refusal.NOT_FOUND])
        callback_answer.show_alert = True
        return
    if not booking.before_cancel_cutoff(day.starts_at, now):
        await edit_or_send(query, _too_late(booking), None)
        return
    if day.duty:
        await _offer_duty_days(query, day, patient, booking, callback_answer)
    else:
        await _ask_center_for_another_time(query, day, patient, applications, callback_answer)


async def _ask_center_for_another_time(
    query: CallbackQuery,
    day: DayConsultation,
    patient: PatientDTO,
    applications: ApplicationService,
    callback_answer: CallbackAnswer,
) -> None:
    try:
        await applications.answer_time(patient.id, day.id, confirm=False)
    except ActionRefusedError:
        callback_answer.text = _("day.not_live")
        callback_answer.show_alert = True
        return
    await drop_buttons(query)
    callback_answer.text = _("app.time_other_sent")
    if isinstance(query.message, Message):
        await query.message.answer(_("app.time_other_sent"))


async def _offer_duty_days(
    query: CallbackQuery,
    day: DayConsultation,
    patient: PatientDTO,
    booking: BookingService,
    callback_answer: CallbackAnswer,
) -> None:
    try:
        item = await booking.get_mine(patient.id, day.id)
    except BookingError:
        callback_answer.text = _("consult.not_found")
        callback_answer.show_alert = True
        return
    specialty = await booking.doctors_specialty(item.doctor_id or 0) or ""
    days = await booking.free_days(specialty, item.doctor_id or 0, patient.time_zone)
    if not days or not item.doctor_id:
        callback_answer.text = _("duty.no_slots")
        callback_answer.show_alert = True
        return
    await edit_or_send(
        query,
        _("duty.choose_day").format(tz=patient.time_zone),
        booking_kb.reschedule_days(item.id, days),
    )


def _too_late(booking: BookingService) -> str:
    hours = int(booking.cancel_cutoff.total_seconds() // 3600)
    return _("consult.too_late").format(hours=hours)


# --- the doctors -----------------------------------------------------------------------------


async def no_show(
    query: CallbackQuery,
    consultation: DayConsultation,
    reminders: ReminderService,
    callback_answer: CallbackAnswer,
) -> None:
    message = query.message
    if not isinstance(message, Message):
        return
    try:
        await reminders.mark_no_show(consultation.id, message.chat.id, by=_doctor(query, message))
    except DayError as refused:
        callback_answer.text = _(STAFF_REFUSALS.get(refused.reason, "day.no_show_not_here"))
        callback_answer.show_alert = True
        return
    marked = _("day.no_show_marked").format(actor=escape(query.from_user.full_name[:120]))
    await edit_or_send(query, f"{message.html_text}\n\n{marked}", None)
    callback_answer.text = _("day.no_show_done")


async def send_documents(
    query: CallbackQuery,
    consultation: DayConsultation,
    reminders: ReminderService,
    callback_answer: CallbackAnswer,
) -> None:
    message = query.message
    if not isinstance(message, Message):
        return
    by = _doctor(query, message)
    try:
        count = await reminders.resend_documents(consultation.id, message.chat.id, by)
    except DayError:
        callback_answer.text = _("day.no_show_not_here")
        callback_answer.show_alert = True
        return
    callback_answer.text = _("staff.documents_coming") if count else _("staff.documents_none")


def _doctor(query: CallbackQuery, message: Message) -> Actor:
    return Actor(telegram_id=query.from_user.id, role=Role.DOCTOR, chat_id=message.chat.id)
