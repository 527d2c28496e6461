"""Keyboards of the coordinator's duty schedule, and the patient's "another time" button."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.callbacks import (
    DutyAction,
    DutyCb,
    ScheduleAction,
    ScheduleCb,
    ScheduleStep,
    ScheduleStepCb,
)
from bot.catalog import Region
from bot.i18n import N_
from bot.keyboards.builder import InlineKeyboardBuilder
from bot.keyboards.paging import add_pager, page_of
from bot.services.schedule import SLOT_LENGTHS, DutyDoctorDTO, ScheduleSlotDTO, SlotPage

SPECIALTY_KEYS = {
    "cardiology": N_("schedule.specialty_cardiology"),
    "obgyn": N_("schedule.specialty_obgyn"),
    "general": N_("schedule.specialty_general"),
}
WEEKDAY_KEYS = (
    N_("schedule.wd_mon"),
    N_("schedule.wd_tue"),
    N_("schedule.wd_wed"),
    N_("schedule.wd_thu"),
    N_("schedule.wd_fri"),
    N_("schedule.wd_sat"),
    N_("schedule.wd_sun"),
)
REGIONS_PER_PAGE = 10


def _nav(kb: InlineKeyboardBuilder, *, back_value: int = 0) -> None:
    kb.button(
        text=_("schedule.btn_back"),
        callback_data=ScheduleStepCb(step=ScheduleStep.BACK, value=back_value),
    )
    kb.button(text=_("schedule.btn_cancel"), callback_data=ScheduleStepCb(step=ScheduleStep.CANCEL))


def menu() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("schedule.btn_doctors"), callback_data=ScheduleCb(action=ScheduleAction.DOCTORS)
    )
    kb.button(text=_("schedule.btn_create"), callback_data=ScheduleCb(action=ScheduleAction.CREATE))
    kb.button(text=_("schedule.btn_upload"), callback_data=ScheduleCb(action=ScheduleAction.UPLOAD))
    kb.button(text=_("schedule.btn_slots"), callback_data=ScheduleCb(action=ScheduleAction.SLOTS))
    kb.adjust(1)
    return kb.as_markup()


def to_menu() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("schedule.btn_menu"), callback_data=ScheduleCb(action=ScheduleAction.MENU))
    return kb.as_markup()


def doctor_label(doctor: DutyDoctorDTO) -> str:
    mark = "" if doctor.active else "🚫 "
    return f"{mark}{doctor.name} · {_(SPECIALTY_KEYS.get(doctor.specialty, doctor.specialty))}"


def doctors(items: list[DutyDoctorDTO], page: int = 0) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    shown = page_of(items, page)
    for doctor in shown.items:
        kb.button(
            text=doctor_label(doctor),
            callback_data=ScheduleCb(action=ScheduleAction.DOCTOR, doctor=doctor.id),
        )
    pager = add_pager(kb, shown, lambda p: ScheduleCb(action=ScheduleAction.DOCTORS, page=p))
    kb.button(
        text=_("schedule.btn_add_doctor"),
        callback_data=ScheduleCb(action=ScheduleAction.ADD_DOCTOR),
    )
    kb.button(text=_("schedule.btn_menu"), callback_data=ScheduleCb(action=ScheduleAction.MENU))
    kb.adjust(*([1] * len(shown.items)), *pager, 1, 1)
    return kb.as_markup()


def doctor_card(doctor: DutyDoctorDTO) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("schedule.btn_slots_of_doctor"),
        callback_data=ScheduleCb(action=ScheduleAction.SLOT_LIST, doctor=doctor.id),
    )
    if doctor.active:
        kb.button(
            text=_("schedule.btn_create"),
            callback_data=ScheduleCb(action=ScheduleAction.CREATE, doctor=doctor.id),
        )
        kb.button(
            text=_("schedule.btn_deactivate"),
            callback_data=ScheduleCb(action=ScheduleAction.DEACTIVATE, doctor=doctor.id),
        )
    else:
        kb.button(
            text=_("schedule.btn_activate"),
            callback_data=ScheduleCb(action=ScheduleAction.ACTIVATE, doctor=doctor.id),
        )
    kb.button(
        text=_("schedule.btn_to_doctors"), callback_data=ScheduleCb(action=ScheduleAction.DOCTORS)
    )
    kb.adjust(1)
    return kb.as_markup()


def deactivate_confirm(doctor_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("schedule.btn_deactivate_yes"),
        callback_data=ScheduleCb(action=ScheduleAction.DEACTIVATE_YES, doctor=doctor_id),
    )
    kb.button(
        text=_("schedule.btn_no"),
        callback_data=ScheduleCb(action=ScheduleAction.DOCTOR, doctor=doctor_id),
    )
    kb.adjust(1)
    return kb.as_markup()


def doctors_for_listing(items: list[DutyDoctorDTO], page: int = 0) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    shown = page_of(items, page)
    for doctor in shown.items:
        kb.button(
            text=doctor_label(doctor),
            callback_data=ScheduleCb(action=ScheduleAction.SLOT_LIST, doctor=doctor.id),
        )
    pager = add_pager(kb, shown, lambda p: ScheduleCb(action=ScheduleAction.SLOTS, page=p))
    kb.button(text=_("schedule.btn_menu"), callback_data=ScheduleCb(action=ScheduleAction.MENU))
    kb.adjust(*([1] * len(shown.items)), *pager, 1)
    return kb.as_markup()


# --- dialogue steps --------------------------------------------------------------------------


def step_nav() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    _nav(kb)
    return kb.as_markup()


def specialties() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for code, key in SPECIALTY_KEYS.items():
        kb.button(text=_(key), callback_data=ScheduleStepCb(step=ScheduleStep.SPECIALTY, code=code))
    _nav(kb)
    kb.adjust(1, 1, 1, 2)
    return kb.as_markup()


def about_step() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("schedule.btn_skip"), callback_data=ScheduleStepCb(step=ScheduleStep.SKIP))
    _nav(kb)
    kb.adjust(1, 2)
    return kb.as_markup()


def doctor_summary() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("schedule.btn_save"), callback_data=ScheduleStepCb(step=ScheduleStep.SAVE))
    _nav(kb)
    kb.adjust(1, 2)
    return kb.as_markup()


def pick_doctor(items: list[DutyDoctorDTO], page: int = 0) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    shown = page_of(items, page)
    for doctor in shown.items:
        kb.button(
            text=doctor_label(doctor),
            callback_data=ScheduleStepCb(step=ScheduleStep.DOCTOR, value=doctor.id),
        )
    pager = add_pager(kb, shown, lambda p: ScheduleStepCb(step=ScheduleStep.DOCTOR_PAGE, value=p))
    _nav(kb)
    kb.adjust(*([1] * len(shown.items)), *pager, 2)
    return kb.as_markup()


def weekdays(selected: set[int]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for day, key in enumerate(WEEKDAY_KEYS):
        mark = "✅" if day in selected else "▫️"
        kb.button(
            text=f"{mark} {_(key)}",
            callback_data=ScheduleStepCb(step=ScheduleStep.WEEKDAY, value=day),
        )
    kb.button(
        text=_("schedule.btn_workdays"), callback_data=ScheduleStepCb(step=ScheduleStep.WORKDAYS)
    )
    kb.button(
        text=_("schedule.btn_every_day"), callback_data=ScheduleStepCb(step=ScheduleStep.EVERY_DAY)
    )
    kb.button(text=_("schedule.btn_next"), callback_data=ScheduleStepCb(step=ScheduleStep.NEXT))
    _nav(kb)
    kb.adjust(4, 3, 2, 1, 2)
    return kb.as_markup()


def lengths() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for minutes in SLOT_LENGTHS:
        kb.button(
            text=_("schedule.minutes").format(minutes=minutes),
            callback_data=ScheduleStepCb(step=ScheduleStep.LENGTH, value=minutes),
        )
    _nav(kb)
    kb.adjust(len(SLOT_LENGTHS), 2)
    return kb.as_markup()


def time_zones() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("schedule.btn_moscow"), callback_data=ScheduleStepCb(step=ScheduleStep.MOSCOW))
    kb.button(
        text=_("schedule.btn_regions"), callback_data=ScheduleStepCb(step=ScheduleStep.REGIONS)
    )
    _nav(kb)
    kb.adjust(1, 1, 2)
    return kb.as_markup()


def regions(items: list[Region], page: int, locale: str) -> InlineKeyboardMarkup:
    pages = max(1, -(-len(items) // REGIONS_PER_PAGE))
    page = min(max(page, 0), pages - 1)
    kb = InlineKeyboardBuilder()
    chunk = items[page * REGIONS_PER_PAGE : (page + 1) * REGIONS_PER_PAGE]
    for region in chunk:
        kb.button(
            text=region.name.get(locale),
            callback_data=ScheduleStepCb(step=ScheduleStep.REGION, value=region.code),
        )
    sizes = [1] * len(chunk)
    if pages > 1:
        for target, text in (((page - 1) % pages, "◀️"), (page, f"{page + 1}/{pages}")):
            kb.button(
                text=text, callback_data=ScheduleStepCb(step=ScheduleStep.REGIONS, value=target)
            )
        kb.button(
            text="▶️",
            callback_data=ScheduleStepCb(step=ScheduleStep.REGIONS, value=(page + 1) % pages),
        )
        sizes.append(3)
    _nav(kb, back_value=1)  # back to the time zone question itself
    sizes.append(2)
    kb.adjust(*sizes)
    return kb.as_markup()


def region_zones(region: Region, locale: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for index, choice in enumerate(region.time_zones):
        kb.button(
            text=choice.label.get(locale),
            callback_data=ScheduleStepCb(step=ScheduleStep.ZONE, value=region.code, index=index),
        )
    _nav(kb, back_value=1)
    kb.adjust(*([1] * len(region.time_zones)), 2)
    return kb.as_markup()


def preview(new: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    if new:
        kb.button(
            text=_("schedule.btn_create_n").format(count=new),
            callback_data=ScheduleStepCb(step=ScheduleStep.CREATE),
        )
    _nav(kb)
    kb.adjust(*([1] if new else []), 2)
    return kb.as_markup()


def csv_step() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("schedule.btn_cancel"), callback_data=ScheduleStepCb(step=ScheduleStep.CANCEL))
    return kb.as_markup()


# --- slots -----------------------------------------------------------------------------------


def slot_label(slot: ScheduleSlotDTO) -> str:
    local = slot.starts_at.astimezone(ZoneInfo(slot.time_zone))
    if slot.patient_id is None:
        return f"🟢 {local:%d.%m %H:%M}"
    return f"🔴 {local:%d.%m %H:%M} · #{slot.patient_id}"


def slots_page(doctor_id: int, page: SlotPage) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for slot in page.items:
        kb.button(
            text=slot_label(slot),
            callback_data=ScheduleCb(
                action=ScheduleAction.REMOVE, doctor=doctor_id, slot=slot.id, page=page.page
            ),
        )
    sizes = [2] * (len(page.items) // 2) + [1] * (len(page.items) % 2)
    if page.pages > 1:
        for target, text in (
            ((page.page - 1) % page.pages, "◀️"),
            (page.page, f"{page.page + 1}/{page.pages}"),
            ((page.page + 1) % page.pages, "▶️"),
        ):
            kb.button(
                text=text,
                callback_data=ScheduleCb(
                    action=ScheduleAction.SLOT_LIST, doctor=doctor_id, page=target
                ),
            )
        sizes.append(3)
    kb.button(
        text=_("schedule.btn_to_doctor"),
        callback_data=ScheduleCb(action=ScheduleAction.DOCTOR, doctor=doctor_id),
    )
    sizes.append(1)
    kb.adjust(*sizes)
    return kb.as_markup()


def remove_confirm(slot: ScheduleSlotDTO, page: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("schedule.btn_remove_booked") if slot.booked else _("schedule.btn_remove"),
        callback_data=ScheduleCb(
            action=ScheduleAction.REMOVE_YES,
            doctor=slot.doctor_id,
            slot=slot.id,
            page=page,
            booked=slot.booked,
        ),
    )
    kb.button(
        text=_("schedule.btn_no"),
        callback_data=ScheduleCb(action=ScheduleAction.SLOT_LIST, doctor=slot.doctor_id, page=page),
    )
    kb.adjust(1)
    return kb.as_markup()


def back_to_slots(doctor_id: int, page: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("schedule.btn_to_slots"),
        callback_data=ScheduleCb(action=ScheduleAction.SLOT_LIST, doctor=doctor_id, page=page),
    )
    return kb.as_markup()


def another_time(doctor_id: int | None) -> InlineKeyboardMarkup:
    """For the patient whose booking was cancelled: book the same doctor (or anyone)."""
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("schedule.btn_another_time"),
        callback_data=DutyCb(action=DutyAction.START, doctor=doctor_id or 0),
    )
    return kb.as_markup()
