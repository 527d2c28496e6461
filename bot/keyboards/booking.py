"""Keyboards of booking a duty doctor and of "Мои консультации"."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.callbacks import (
    CancelReason,
    ConsultAction,
    ConsultCb,
    DutyAction,
    DutyCb,
    DutyDoctorsPageCb,
)
from bot.i18n import N_
from bot.keyboards.builder import InlineKeyboardBuilder
from bot.keyboards.paging import Page, add_pager
from bot.services.booking import DoctorDTO, MyConsultation, SlotDTO

SPECIALTY_KEYS = {
    "cardiology": N_("duty.specialty_cardiology"),
    "obgyn": N_("duty.specialty_obgyn"),
    "general": N_("duty.specialty_general"),
}
REASON_KEYS = {
    CancelReason.CANNOT: N_("consult.reason_cannot"),
    CancelReason.ILL: N_("consult.reason_ill"),
    CancelReason.NOT_NEEDED: N_("consult.reason_not_needed"),
    CancelReason.OTHER: N_("consult.reason_other"),
}


def specialties() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for code, key in SPECIALTY_KEYS.items():
        kb.button(text=_(key), callback_data=DutyCb(action=DutyAction.SPECIALTY, specialty=code))
    kb.adjust(1)
    return kb.as_markup()


def doctors(specialty: str, shown: Page[DoctorDTO], tz: str) -> InlineKeyboardMarkup:
    """One page of a specialty's doctors (after "the earliest, any doctor")."""
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("btn.duty_earliest"),
        callback_data=DutyCb(action=DutyAction.DOCTOR, specialty=specialty, doctor=0),
    )
    for doctor in shown.items:
        when = (
            f"{doctor.next_free.astimezone(ZoneInfo(tz)):%d.%m %H:%M}"
            if doctor.next_free
            else _("duty.no_free")
        )
        kb.button(
            text=f"{doctor.name} — {when}",
            callback_data=DutyCb(action=DutyAction.DOCTOR, specialty=specialty, doctor=doctor.id),
        )
    pager = add_pager(
        kb,
        shown,
        lambda p: DutyDoctorsPageCb(specialty=specialty, page=p),
    )
    kb.button(text=_("btn.back"), callback_data=DutyCb(action=DutyAction.START))
    kb.adjust(*([1] * (1 + len(shown.items))), *pager, 1)
    return kb.as_markup()


def days(specialty: str, doctor: int, items: list[date]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for day in items[:21]:
        kb.button(
            text=f"{day:%d.%m}",
            callback_data=DutyCb(
                action=DutyAction.DAY,
                specialty=specialty,
                doctor=doctor,
                day=int(f"{day:%Y%m%d}"),
            ),
        )
    kb.adjust(4)
    back = InlineKeyboardBuilder()
    back.button(
        text=_("btn.back"), callback_data=DutyCb(action=DutyAction.SPECIALTY, specialty=specialty)
    )
    kb.attach(back)
    return kb.as_markup()


#: A day of one doctor's half-hour slots; "any doctor" shows that many of the day's earliest
#: (Telegram allows 100 buttons; a later time is one doctor's list away).
MAX_SLOT_BUTTONS = 48


def slots(
    specialty: str, doctor: int, day: int, items: list[SlotDTO], tz: str
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for slot in items[:MAX_SLOT_BUTTONS]:
        label = f"{slot.starts_at.astimezone(ZoneInfo(tz)):%H:%M}"
        if not doctor:
            label += f" · {slot.doctor_name}"
        kb.button(
            text=label,
            callback_data=DutyCb(
                action=DutyAction.SLOT, specialty=specialty, doctor=doctor, day=day, slot=slot.id
            ),
        )
    kb.adjust(1 if not doctor else 4)
    back = InlineKeyboardBuilder()
    back.button(
        text=_("btn.back"),
        callback_data=DutyCb(action=DutyAction.DOCTOR, specialty=specialty, doctor=doctor),
    )
    kb.attach(back)
    return kb.as_markup()


def confirm(specialty: str, doctor: int, day: int, slot: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("btn.duty_confirm"),
        callback_data=DutyCb(
            action=DutyAction.CONFIRM, specialty=specialty, doctor=doctor, slot=slot
        ),
    )
    kb.button(
        text=_("btn.back"),
        callback_data=DutyCb(action=DutyAction.DAY, specialty=specialty, doctor=doctor, day=day),
    )
    kb.adjust(1)
    return kb.as_markup()


def nearest(specialty: str, items: list[SlotDTO], tz: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for slot in items:
        kb.button(
            text=f"{slot.starts_at.astimezone(ZoneInfo(tz)):%d.%m %H:%M} · {slot.doctor_name}",
            callback_data=DutyCb(
                action=DutyAction.SLOT,
                specialty=specialty,
                doctor=slot.doctor_id,
                day=int(f"{slot.starts_at.astimezone(ZoneInfo(tz)):%Y%m%d}"),
                slot=slot.id,
            ),
        )
    kb.adjust(1)
    return kb.as_markup()


def my_list(items: list[MyConsultation], tz: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for item in items:
        kb.button(
            text=f"{item.starts_at.astimezone(ZoneInfo(tz)):%d.%m.%Y %H:%M} · "
            + (item.doctor_name or _("consult.center")),
            callback_data=ConsultCb(action=ConsultAction.OPEN, id=item.id),
        )
    kb.adjust(1)
    return kb.as_markup()


def consultation(item: MyConsultation, now: datetime) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    if item.link_open(now):
        kb.button(text=_("btn.consult_join"), url=item.video_url)
    if item.upcoming(now):  # nothing to cancel or move once begun
        kb.button(
            text=_("btn.consult_cancel"),
            callback_data=ConsultCb(action=ConsultAction.CANCEL, id=item.id),
        )
        if item.duty:
            kb.button(
                text=_("btn.consult_reschedule"),
                callback_data=ConsultCb(action=ConsultAction.RESCHEDULE, id=item.id),
            )
    kb.button(text=_("btn.consult_list"), callback_data=ConsultCb(action=ConsultAction.LIST, id=0))
    kb.adjust(1)
    return kb.as_markup()


def reasons(consultation_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for reason, key in REASON_KEYS.items():
        kb.button(
            text=_(key),
            callback_data=ConsultCb(
                action=ConsultAction.CANCEL_REASON, id=consultation_id, reason=reason
            ),
        )
    kb.button(
        text=_("btn.back"), callback_data=ConsultCb(action=ConsultAction.OPEN, id=consultation_id)
    )
    kb.adjust(1)
    return kb.as_markup()


def reschedule_days(consultation_id: int, items: list[date]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for day in items[:21]:
        kb.button(
            text=f"{day:%d.%m}",
            callback_data=ConsultCb(
                action=ConsultAction.RESCHEDULE_DAY, id=consultation_id, day=int(f"{day:%Y%m%d}")
            ),
        )
    kb.adjust(4)
    back = InlineKeyboardBuilder()
    back.button(
        text=_("btn.back"), callback_data=ConsultCb(action=ConsultAction.OPEN, id=consultation_id)
    )
    kb.attach(back)
    return kb.as_markup()


def reschedule_slots(
    consultation_id: int, day: int, items: list[SlotDTO], tz: str
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for slot in items:
        kb.button(
            text=f"{slot.starts_at.astimezone(ZoneInfo(tz)):%H:%M}",
            callback_data=ConsultCb(
                action=ConsultAction.RESCHEDULE_SLOT, id=consultation_id, day=day, slot=slot.id
            ),
        )
    kb.adjust(4)
    back = InlineKeyboardBuilder()
    back.button(
        text=_("btn.back"),
        callback_data=ConsultCb(action=ConsultAction.RESCHEDULE, id=consultation_id),
    )
    kb.attach(back)
    return kb.as_markup()


def reschedule_confirm(consultation_id: int, day: int, slot: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("btn.consult_reschedule_confirm"),
        callback_data=ConsultCb(
            action=ConsultAction.RESCHEDULE_CONFIRM, id=consultation_id, day=day, slot=slot
        ),
    )
    kb.button(
        text=_("btn.back"),
        callback_data=ConsultCb(action=ConsultAction.RESCHEDULE_DAY, id=consultation_id, day=day),
    )
    kb.adjust(1)
    return kb.as_markup()
