"""The consultation day in the chats: the patient's answers to a reminder ("Буду", "Не смогу" →
the cancel flow of «Мои консультации», "Перенести" → the reschedule of the duty path or "ask
for another time" of a center consultation) and the doctors' "did not attend" mark."""

from __future__ import annotations

from html import escape

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.callbacks import ConsultDocsCb, NoShowCb, RemindAction, RemindCb
from bot.handlers.flow import Flow
from bot.handlers.utils import drop_buttons, edit_or_send
from bot.i18n import N_
from bot.keyboards import booking as booking_kb
from bot.services.applications import ActionRefusedError, ApplicationService
from bot.services.audit import Actor, Role
from bot.services.booking import BookingError, BookingService
from bot.services.patients import PatientDTO
from bot.services.reminders import Answer, DayError, Refusal, ReminderService
from bot.staff_access import StaffAccess

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

    @r.callback_query(RemindCb.filter())
    async def answer(
        query: CallbackQuery,
        callback_data: RemindCb,
        flow: Flow,
        patient: PatientDTO,
        reminders: ReminderService,
        booking: BookingService,
        applications: ApplicationService,
        callback_answer: CallbackAnswer,
    ) -> None:
        data = callback_data
        if data.action is RemindAction.MOVE:
            await _move(
                query, data.id, flow, patient, reminders, booking, applications, callback_answer
            )
            return
        given = Answer.ATTEND if data.action is RemindAction.ATTEND else Answer.CANNOT
        try:
            result = await reminders.answer(patient.id, data.id, data.minutes, given)
        except DayError as refused:
            callback_answer.text = _(PATIENT_REFUSALS.get(refused.reason, "consult.not_found"))
            callback_answer.show_alert = True
            return
        if given is Answer.ATTEND:
            if not result.first:
                callback_answer.text = _("day.attend_again")
                return
            await drop_buttons(query)
            callback_answer.text = _("day.attend_thanks")
            if isinstance(query.message, Message):
                await query.message.answer(_("day.attend_thanks"))
            return
        # "Не смогу": the cancel flow of «Мои консультации» (the doctors are told already).
        if result.consultation.starts_at - flow.clock() < booking.cancel_cutoff:
            await edit_or_send(query, _too_late(booking), None)
            return
        await edit_or_send(query, _("consult.cancel_question"), booking_kb.reasons(data.id))

    return r


async def _move(
    query: CallbackQuery,
    consultation_id: int,
    flow: Flow,
    patient: PatientDTO,
    reminders: ReminderService,
    booking: BookingService,
    applications: ApplicationService,
    callback_answer: CallbackAnswer,
) -> None:
    """ "Перенести": a duty booking offers the doctor's free days (the reschedule of «Мои
    консультации»); a center consultation asks the doctors for another time."""
    day = await reminders.get(consultation_id)
    now = flow.clock()
    refusal = None
    if day is None or day.patient_id != patient.id:
        refusal = Refusal.NOT_FOUND
    elif not day.live:
        refusal = Refusal.NOT_LIVE
    elif day.starts_at <= now:
        refusal = Refusal.STARTED
    if refusal is not None or day is None:
        callback_answer.text = _(PATIENT_REFUSALS[refusal or Refusal.NOT_FOUND])
        callback_answer.show_alert = True
        return
    if day.starts_at - now < booking.cancel_cutoff:
        await edit_or_send(query, _too_late(booking), None)
        return
    if not day.duty:
        try:
            await applications.answer_time(patient.id, consultation_id, confirm=False)
        except ActionRefusedError:
            callback_answer.text = _("day.not_live")
            callback_answer.show_alert = True
            return
        await drop_buttons(query)
        callback_answer.text = _("app.time_other_sent")
        if isinstance(query.message, Message):
            await query.message.answer(_("app.time_other_sent"))
        return
    try:
        item = await booking.get_mine(patient.id, consultation_id)
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


def staff_router() -> Router:
    """The doctors' side: "did not attend" on the heads-up, members of that chat only."""
    r = Router(name="reminders_staff")
    r.callback_query.filter(F.message.chat.type.in_({"group", "supergroup"}))

    @r.callback_query(NoShowCb.filter())
    async def no_show(
        query: CallbackQuery,
        callback_data: NoShowCb,
        bot: Bot,
        access: StaffAccess,
        reminders: ReminderService,
        callback_answer: CallbackAnswer,
    ) -> None:
        message = query.message
        if not isinstance(message, Message):
            return
        if not await access.is_member(bot, message.chat.id, query.from_user.id):
            callback_answer.text = _("day.staff_only")
            callback_answer.show_alert = True
            return
        try:
            await reminders.mark_no_show(
                callback_data.id,
                message.chat.id,
                by=Actor(telegram_id=query.from_user.id, role=Role.DOCTOR, chat_id=message.chat.id),
            )
        except DayError as refused:
            callback_answer.text = _(STAFF_REFUSALS.get(refused.reason, "day.no_show_not_here"))
            callback_answer.show_alert = True
            return
        marked = _("day.no_show_marked").format(actor=escape(query.from_user.full_name[:120]))
        await edit_or_send(query, f"{message.html_text}\n\n{marked}", None)
        callback_answer.text = _("day.no_show_done")

    @r.callback_query(ConsultDocsCb.filter())
    async def documents(
        query: CallbackQuery,
        callback_data: ConsultDocsCb,
        bot: Bot,
        access: StaffAccess,
        reminders: ReminderService,
        callback_answer: CallbackAnswer,
    ) -> None:
        message = query.message
        if not isinstance(message, Message):
            return
        if not await access.is_member(bot, message.chat.id, query.from_user.id):
            callback_answer.text = _("day.staff_only")
            callback_answer.show_alert = True
            return
        by = Actor(telegram_id=query.from_user.id, role=Role.DOCTOR, chat_id=message.chat.id)
        try:
            count = await reminders.resend_documents(callback_data.id, message.chat.id, by)
        except DayError:
            callback_answer.text = _("day.no_show_not_here")
            callback_answer.show_alert = True
            return
        callback_answer.text = _("staff.documents_coming") if count else _("staff.documents_none")

    return r
