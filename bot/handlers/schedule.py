"""The duty schedule for coordinators in a private chat: /schedule, duty doctors, slots made by
a dialogue or from a CSV, listing and removal of slots. The coordinators' parent router lets
only them in; everyone else falls through."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, time
from html import escape
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from pydantic import BaseModel

from bot.callbacks import ScheduleAction, ScheduleCb, ScheduleStep, ScheduleStepCb
from bot.catalog import Region, utc_offset_label
from bot.fsm.states import Schedule
from bot.handlers.flow import Flow
from bot.handlers.utils import drop_buttons, edit_or_send
from bot.i18n import N_, menu_texts
from bot.keyboards import schedule as kb
from bot.services.audit import Actor
from bot.services.booking import SPECIALTIES
from bot.services.schedule import (
    DEFAULT_TIME_ZONE,
    MAX_CSV_BYTES,
    MAX_CSV_ROWS,
    MAX_RANGE_DAYS,
    SLOT_LENGTHS,
    CsvError,
    CsvRefused,
    CsvReport,
    DutyDoctorDTO,
    InputProblem,
    RowProblem,
    ScheduleInputError,
    ScheduleService,
    ScheduleSlotDTO,
    SlotError,
    SlotPlan,
    SlotRefused,
    clean_about,
    clean_name,
    parse_date_range,
    parse_hours,
)

PROBLEM_KEYS = {
    InputProblem.DATE_FORMAT: N_("schedule.problem_date_format"),
    InputProblem.NO_SUCH_DATE: N_("schedule.problem_no_such_date"),
    InputProblem.END_BEFORE_START: N_("schedule.problem_end_before_start"),
    InputProblem.PAST_DATE: N_("schedule.problem_past_date"),
    InputProblem.RANGE_TOO_LONG: N_("schedule.problem_range_too_long"),
    InputProblem.HOURS_FORMAT: N_("schedule.problem_hours_format"),
    InputProblem.END_NOT_AFTER_START: N_("schedule.problem_end_not_after_start"),
    InputProblem.NAME_LENGTH: N_("schedule.problem_name_length"),
    InputProblem.ABOUT_LENGTH: N_("schedule.problem_about_length"),
    InputProblem.UNKNOWN_TIME_ZONE: N_("schedule.problem_unknown_time_zone"),
    InputProblem.TOO_MANY_SLOTS: N_("schedule.problem_too_many_slots"),
}
ROW_KEYS = {
    RowProblem.COLUMNS: N_("schedule.row_columns"),
    RowProblem.DOCTOR_UNKNOWN: N_("schedule.row_doctor_unknown"),
    RowProblem.DOCTOR_AMBIGUOUS: N_("schedule.row_doctor_ambiguous"),
    RowProblem.DOCTOR_INACTIVE: N_("schedule.row_doctor_inactive"),
    RowProblem.DATE: N_("schedule.row_date"),
    RowProblem.TIME: N_("schedule.row_time"),
    RowProblem.DURATION: N_("schedule.row_duration"),
    RowProblem.TIME_ZONE: N_("schedule.row_time_zone"),
    RowProblem.NO_SUCH_LOCAL_TIME: N_("schedule.row_no_such_local_time"),
    RowProblem.PAST: N_("schedule.row_past"),
}
CSV_KEYS = {
    CsvRefused.NOT_CSV: N_("schedule.csv_not_csv"),
    CsvRefused.TOO_BIG: N_("schedule.csv_too_big"),
    CsvRefused.EMPTY: N_("schedule.csv_empty"),
    CsvRefused.TOO_MANY_ROWS: N_("schedule.csv_too_many_rows"),
}
SLOT_REFUSED_KEYS = {
    SlotRefused.NOT_FOUND: N_("schedule.slot_not_found"),
    SlotRefused.STARTED: N_("schedule.slot_started"),
    SlotRefused.BOOKED: N_("schedule.slot_booked_meanwhile"),
    SlotRefused.DOCTOR_NOT_FOUND: N_("schedule.doctor_not_found"),
    SlotRefused.DOCTOR_INACTIVE: N_("schedule.doctor_inactive"),
}
MAX_ERRORS_SHOWN = 30

# Where "back" goes from each step; None: out of the dialogue, to the menu.
BACK: dict[str | None, State | None] = {
    Schedule.doctor_name.state: None,
    Schedule.doctor_specialty.state: Schedule.doctor_name,
    Schedule.doctor_about.state: Schedule.doctor_specialty,
    Schedule.doctor_confirm.state: Schedule.doctor_about,
    Schedule.slots_doctor.state: None,
    Schedule.slots_dates.state: Schedule.slots_doctor,
    Schedule.slots_weekdays.state: Schedule.slots_dates,
    Schedule.slots_hours.state: Schedule.slots_weekdays,
    Schedule.slots_length.state: Schedule.slots_hours,
    Schedule.slots_time_zone.state: Schedule.slots_length,
    Schedule.slots_preview.state: Schedule.slots_time_zone,
    Schedule.csv_upload.state: None,
}
TEXT_STEPS = (
    Schedule.doctor_name,
    Schedule.doctor_about,
    Schedule.slots_dates,
    Schedule.slots_hours,
    Schedule.slots_time_zone,
)
BUTTON_STEPS = (
    Schedule.doctor_specialty,
    Schedule.doctor_confirm,
    Schedule.slots_doctor,
    Schedule.slots_weekdays,
    Schedule.slots_length,
    Schedule.slots_preview,
)
WORKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))


class ScheduleDraft(BaseModel):
    """What a coordinator's dialogue has collected so far."""

    name: str | None = None
    specialty: str | None = None
    about: str = ""
    doctor_id: int | None = None
    first_day: date | None = None
    last_day: date | None = None
    weekdays: list[int] = [0, 1, 2, 3, 4]
    start: time | None = None
    end: time | None = None
    end_is_midnight: bool = False
    length: int | None = None
    time_zone: str = DEFAULT_TIME_ZONE

    def plan(self) -> SlotPlan | None:
        if None in (self.doctor_id, self.first_day, self.last_day, self.start, self.length):
            return None
        if self.end is None and not self.end_is_midnight:
            return None
        assert self.doctor_id and self.first_day and self.last_day and self.start and self.length
        return SlotPlan(
            doctor_id=self.doctor_id,
            first_day=self.first_day,
            last_day=self.last_day,
            weekdays=frozenset(self.weekdays),
            start=self.start,
            end=self.end,
            length_minutes=self.length,
            time_zone=self.time_zone,
        )


_KEY = "schedule"


async def load_draft(state: FSMContext) -> ScheduleDraft:
    raw = (await state.get_data()).get(_KEY)
    return ScheduleDraft.model_validate(raw) if raw else ScheduleDraft()


async def save_draft(state: FSMContext, draft: ScheduleDraft) -> None:
    await state.update_data({_KEY: draft.model_dump(mode="json")})


def on(action: ScheduleAction) -> CallbackQueryFilter:
    """A button of the schedule (outside the dialogues) with this action."""
    return ScheduleCb.filter(F.action == action)


def pressed(step: ScheduleStep) -> CallbackQueryFilter:
    """A button of a schedule dialogue for this step."""
    return ScheduleStepCb.filter(F.step == step)


def router(i18n: I18n) -> Router:
    """Only registration; the coordinators' parent router carries the role filter."""
    r = Router(name="schedule")
    not_menu = ~F.text.in_(menu_texts(i18n))
    message, button = r.message.register, r.callback_query.register
    message(open_menu, Command("schedule"))
    # the menu, doctors, slots (buttons outside the dialogues)
    button(back_to_menu, on(ScheduleAction.MENU))
    button(list_doctors, on(ScheduleAction.DOCTORS))
    button(open_doctor, on(ScheduleAction.DOCTOR))
    button(deactivate_ask, on(ScheduleAction.DEACTIVATE))
    button(deactivate, on(ScheduleAction.DEACTIVATE_YES))
    button(activate, on(ScheduleAction.ACTIVATE))
    button(add_doctor, on(ScheduleAction.ADD_DOCTOR))
    button(start_slots, on(ScheduleAction.CREATE))
    button(start_upload, on(ScheduleAction.UPLOAD))
    button(slots_of_whom, on(ScheduleAction.SLOTS))
    button(slot_list, on(ScheduleAction.SLOT_LIST))
    button(ask_removal, on(ScheduleAction.REMOVE))
    button(remove_slot, on(ScheduleAction.REMOVE_YES))
    # dialogue buttons
    in_dialogue = StateFilter(Schedule)
    button(cancel_dialogue, in_dialogue, pressed(ScheduleStep.CANCEL))
    from_sub_list = ScheduleStepCb.filter((F.step == ScheduleStep.BACK) & (F.value == 1))
    button(back_to_step, in_dialogue, from_sub_list)
    button(step_back, in_dialogue, pressed(ScheduleStep.BACK))
    button(choose_specialty, Schedule.doctor_specialty, pressed(ScheduleStep.SPECIALTY))
    button(skip_about, Schedule.doctor_about, pressed(ScheduleStep.SKIP))
    button(save_doctor, Schedule.doctor_confirm, pressed(ScheduleStep.SAVE))
    button(slots_doctor_page, Schedule.slots_doctor, pressed(ScheduleStep.DOCTOR_PAGE))
    button(slots_doctor, Schedule.slots_doctor, pressed(ScheduleStep.DOCTOR))
    button(toggle_weekday, Schedule.slots_weekdays, pressed(ScheduleStep.WEEKDAY))
    button(workdays, Schedule.slots_weekdays, pressed(ScheduleStep.WORKDAYS))
    button(every_day, Schedule.slots_weekdays, pressed(ScheduleStep.EVERY_DAY))
    button(weekdays_done, Schedule.slots_weekdays, pressed(ScheduleStep.NEXT))
    button(choose_length, Schedule.slots_length, pressed(ScheduleStep.LENGTH))
    button(choose_moscow, Schedule.slots_time_zone, pressed(ScheduleStep.MOSCOW))
    button(region_list, Schedule.slots_time_zone, pressed(ScheduleStep.REGIONS))
    button(choose_region, Schedule.slots_time_zone, pressed(ScheduleStep.REGION))
    button(choose_zone, Schedule.slots_time_zone, pressed(ScheduleStep.ZONE))
    button(create_slots, Schedule.slots_preview, pressed(ScheduleStep.CREATE))
    # dialogue texts
    message(typed_doctor_name, Schedule.doctor_name, F.text, not_menu)
    message(typed_about, Schedule.doctor_about, F.text, not_menu)
    message(typed_dates, Schedule.slots_dates, F.text, not_menu)
    message(typed_hours, Schedule.slots_hours, F.text, not_menu)
    message(typed_zone, Schedule.slots_time_zone, F.text, not_menu)
    message(csv_file, Schedule.csv_upload, F.document)
    message(csv_not_a_file, Schedule.csv_upload, not_menu)
    message(need_text, StateFilter(*TEXT_STEPS), not_menu)
    message(use_buttons, StateFilter(*BUTTON_STEPS), not_menu)
    return r


# --- the menu, doctors, slots (buttons outside the dialogues) --------------------------------


async def open_menu(_message: Message, flow: Flow) -> None:
    await flow.state.clear()
    await flow.send(_("schedule.menu"), reply_markup=kb.menu())


async def back_to_menu(query: CallbackQuery, flow: Flow) -> None:
    await flow.state.clear()
    await show(query, _("schedule.menu"), kb.menu())


async def list_doctors(
    query: CallbackQuery, callback_data: ScheduleCb, schedule: ScheduleService
) -> None:
    items = await schedule.doctors()
    text = _("schedule.doctors") if items else _("schedule.no_doctors")
    await show(query, text, kb.doctors(items, callback_data.page))


async def open_doctor(
    query: CallbackQuery,
    callback_data: ScheduleCb,
    schedule: ScheduleService,
    callback_answer: CallbackAnswer,
) -> None:
    found = await schedule.doctor(callback_data.doctor)
    if found is None:
        callback_answer.text = _("schedule.doctor_not_found")
        return
    await show_doctor(query, found, schedule)


async def deactivate_ask(
    query: CallbackQuery,
    callback_data: ScheduleCb,
    schedule: ScheduleService,
    callback_answer: CallbackAnswer,
) -> None:
    found = await schedule.doctor(callback_data.doctor)
    if found is None:
        callback_answer.text = _("schedule.doctor_not_found")
        return
    if not found.active:  # already off (another coordinator): the card as it is now
        callback_answer.text = _("schedule.deactivated")
        await show_doctor(query, found, schedule)
        return
    await show(query, _("schedule.deactivate_question"), kb.deactivate_confirm(found.id))


async def deactivate(
    query: CallbackQuery,
    callback_data: ScheduleCb,
    schedule: ScheduleService,
    callback_answer: CallbackAnswer,
    coordinator: Actor,
) -> None:
    await set_active(query, callback_data.doctor, False, schedule, callback_answer, coordinator)


async def activate(
    query: CallbackQuery,
    callback_data: ScheduleCb,
    schedule: ScheduleService,
    callback_answer: CallbackAnswer,
    coordinator: Actor,
) -> None:
    await set_active(query, callback_data.doctor, True, schedule, callback_answer, coordinator)


async def set_active(
    query: CallbackQuery,
    doctor_id: int,
    active: bool,
    schedule: ScheduleService,
    callback_answer: CallbackAnswer,
    coordinator: Actor,
) -> None:
    try:
        changed = await schedule.set_active(doctor_id, active, by=coordinator)
    except SlotError:
        callback_answer.text = _("schedule.doctor_not_found")
        return
    callback_answer.text = _("schedule.activated") if active else _("schedule.deactivated")
    await show_doctor(query, changed, schedule)


async def add_doctor(query: CallbackQuery, flow: Flow, schedule: ScheduleService) -> None:
    await flow.state.clear()
    await save_draft(flow.state, ScheduleDraft())
    await ask(flow, schedule, Schedule.doctor_name, query)


async def start_slots(
    query: CallbackQuery, callback_data: ScheduleCb, flow: Flow, schedule: ScheduleService
) -> None:
    await flow.state.clear()
    chosen = await schedule.doctor(callback_data.doctor) if callback_data.doctor else None
    draft = ScheduleDraft(doctor_id=chosen.id if chosen and chosen.active else None)
    await save_draft(flow.state, draft)
    step = Schedule.slots_dates if draft.doctor_id else Schedule.slots_doctor
    await ask(flow, schedule, step, query)


async def start_upload(query: CallbackQuery, flow: Flow, schedule: ScheduleService) -> None:
    await flow.state.clear()
    await ask(flow, schedule, Schedule.csv_upload, query)


async def slots_of_whom(
    query: CallbackQuery, callback_data: ScheduleCb, schedule: ScheduleService
) -> None:
    items = await schedule.doctors()
    text = _("schedule.slots_pick_doctor") if items else _("schedule.no_doctors")
    await show(query, text, kb.doctors_for_listing(items, callback_data.page))


async def slot_list(
    query: CallbackQuery,
    callback_data: ScheduleCb,
    schedule: ScheduleService,
    callback_answer: CallbackAnswer,
) -> None:
    found = await schedule.doctor(callback_data.doctor)
    if found is None:
        callback_answer.text = _("schedule.doctor_not_found")
        return
    await show_slots(query, found, callback_data.page, schedule)


async def ask_removal(
    query: CallbackQuery,
    callback_data: ScheduleCb,
    schedule: ScheduleService,
    callback_answer: CallbackAnswer,
) -> None:
    slot = await schedule.slot(callback_data.slot)
    if slot is None:
        callback_answer.text = _("schedule.slot_not_found")
        callback_answer.show_alert = True
        return
    await show_remove_question(query, slot, callback_data.page)


async def remove_slot(
    query: CallbackQuery,
    callback_data: ScheduleCb,
    schedule: ScheduleService,
    callback_answer: CallbackAnswer,
    coordinator: Actor,
) -> None:
    try:
        removed = await schedule.remove_slot(
            callback_data.slot, booking_confirmed=callback_data.booked, by=coordinator
        )
    except SlotError as refused:
        callback_answer.text = _(SLOT_REFUSED_KEYS[refused.reason])
        callback_answer.show_alert = True
        slot = await schedule.slot(callback_data.slot)
        if refused.reason is SlotRefused.BOOKED and slot is not None:
            await show_remove_question(query, slot, callback_data.page)
        else:
            await drop_buttons(query)
        return
    text = _("schedule.slot_removed").format(slot=slot_line(removed.slot))
    if removed.consultation_id is not None:
        text += "\n" + _("schedule.booking_cancelled").format(patient=removed.slot.patient_id)
    await show(query, text, kb.back_to_slots(removed.slot.doctor_id, callback_data.page))


# --- dialogue buttons ------------------------------------------------------------------------


async def cancel_dialogue(query: CallbackQuery, flow: Flow) -> None:
    await flow.state.clear()
    await show(query, _("schedule.cancelled"), kb.to_menu())


async def back_to_step(query: CallbackQuery, flow: Flow, schedule: ScheduleService) -> None:
    """ "Back" from a sub-list of a step: the step itself."""
    await ask(flow, schedule, await flow.state.get_state(), query)


async def step_back(query: CallbackQuery, flow: Flow, schedule: ScheduleService) -> None:
    target = BACK.get(await flow.state.get_state() or "")
    if target is None:
        await flow.state.clear()
        await show(query, _("schedule.menu"), kb.menu())
        return
    await ask(flow, schedule, target, query)


async def choose_specialty(
    query: CallbackQuery,
    callback_data: ScheduleStepCb,
    flow: Flow,
    callback_answer: CallbackAnswer,
    schedule: ScheduleService,
) -> None:
    if callback_data.code not in SPECIALTIES:
        callback_answer.text = _("common.stale_button")
        return
    draft = await load_draft(flow.state)
    draft.specialty = callback_data.code
    await save_draft(flow.state, draft)
    await ask(flow, schedule, Schedule.doctor_about, query)


async def skip_about(query: CallbackQuery, flow: Flow, schedule: ScheduleService) -> None:
    draft = await load_draft(flow.state)
    draft.about = ""
    await save_draft(flow.state, draft)
    await ask(flow, schedule, Schedule.doctor_confirm, query)


async def save_doctor(
    query: CallbackQuery, flow: Flow, schedule: ScheduleService, coordinator: Actor
) -> None:
    draft = await load_draft(flow.state)
    if draft.name is None or draft.specialty is None:
        await ask(flow, schedule, Schedule.doctor_name, query)
        return
    added = await schedule.add_doctor(draft.name, draft.specialty, draft.about, by=coordinator)
    await flow.state.clear()
    await drop_buttons(query)
    await flow.send(
        _("schedule.doctor_added").format(name=escape(added.name)),
        reply_markup=kb.doctor_card(added),
    )


async def slots_doctor_page(
    query: CallbackQuery, callback_data: ScheduleStepCb, schedule: ScheduleService
) -> None:
    active = await schedule.doctors(active_only=True)
    text = _("schedule.ask_doctor") if active else _("schedule.no_active_doctors")
    await show(query, text, kb.pick_doctor(active, callback_data.value))


async def slots_doctor(
    query: CallbackQuery,
    callback_data: ScheduleStepCb,
    flow: Flow,
    schedule: ScheduleService,
    callback_answer: CallbackAnswer,
) -> None:
    chosen = await schedule.doctor(callback_data.value)
    if chosen is None or not chosen.active:
        callback_answer.text = _("schedule.doctor_inactive")
        return
    draft = await load_draft(flow.state)
    draft.doctor_id = chosen.id
    await save_draft(flow.state, draft)
    await ask(flow, schedule, Schedule.slots_dates, query)


async def toggle_weekday(
    query: CallbackQuery, callback_data: ScheduleStepCb, flow: Flow, schedule: ScheduleService
) -> None:
    draft = await load_draft(flow.state)
    await choose_weekdays(query, flow, schedule, set(draft.weekdays) ^ {callback_data.value % 7})


async def workdays(query: CallbackQuery, flow: Flow, schedule: ScheduleService) -> None:
    await choose_weekdays(query, flow, schedule, WORKDAYS)


async def every_day(query: CallbackQuery, flow: Flow, schedule: ScheduleService) -> None:
    await choose_weekdays(query, flow, schedule, EVERY_DAY)


async def weekdays_done(
    query: CallbackQuery, flow: Flow, callback_answer: CallbackAnswer, schedule: ScheduleService
) -> None:
    draft = await load_draft(flow.state)
    if not draft.weekdays:
        callback_answer.text = _("schedule.problem_no_weekdays")
        callback_answer.show_alert = True
        return
    await ask(flow, schedule, Schedule.slots_hours, query)


async def choose_length(
    query: CallbackQuery,
    callback_data: ScheduleStepCb,
    flow: Flow,
    callback_answer: CallbackAnswer,
    schedule: ScheduleService,
) -> None:
    if callback_data.value not in SLOT_LENGTHS:
        callback_answer.text = _("common.stale_button")
        return
    draft = await load_draft(flow.state)
    draft.length = callback_data.value
    await save_draft(flow.state, draft)
    await ask(flow, schedule, Schedule.slots_time_zone, query)


async def choose_moscow(query: CallbackQuery, flow: Flow, schedule: ScheduleService) -> None:
    await zone_chosen(flow, schedule, DEFAULT_TIME_ZONE, query)


async def region_list(query: CallbackQuery, callback_data: ScheduleStepCb, flow: Flow) -> None:
    regions = sorted(flow.catalog.regions, key=lambda region: region.name.get(flow.locale))
    await show(
        query, _("schedule.ask_region"), kb.regions(regions, callback_data.value, flow.locale)
    )


async def choose_region(
    query: CallbackQuery,
    callback_data: ScheduleStepCb,
    flow: Flow,
    schedule: ScheduleService,
    callback_answer: CallbackAnswer,
) -> None:
    """A region chosen: its zone, or the question which of its zones."""
    chosen = pressed_region(callback_data, flow)
    if chosen is None:
        callback_answer.text = _("common.stale_button")
    elif len(chosen.time_zones) > 1:
        await ask_region_zone(flow, chosen, query)
    else:
        await zone_chosen(flow, schedule, chosen.time_zones[callback_data.index].tz, query)


async def choose_zone(
    query: CallbackQuery,
    callback_data: ScheduleStepCb,
    flow: Flow,
    schedule: ScheduleService,
    callback_answer: CallbackAnswer,
) -> None:
    """One of a region's zones chosen."""
    chosen = pressed_region(callback_data, flow)
    if chosen is None:
        callback_answer.text = _("common.stale_button")
        return
    await zone_chosen(flow, schedule, chosen.time_zones[callback_data.index].tz, query)


async def create_slots(
    query: CallbackQuery,
    flow: Flow,
    schedule: ScheduleService,
    callback_answer: CallbackAnswer,
    coordinator: Actor,
) -> None:
    plan = (await load_draft(flow.state)).plan()
    if plan is None:
        await ask(flow, schedule, Schedule.slots_dates, query)
        return
    try:
        result = await schedule.create_slots(plan, by=coordinator)
    except SlotError as refused:
        callback_answer.text = _(SLOT_REFUSED_KEYS[refused.reason])
        callback_answer.show_alert = True
        await ask(flow, schedule, Schedule.slots_doctor, query)
        return
    except ScheduleInputError as problem:
        await flow.send(_(PROBLEM_KEYS[problem.problem]))
        await ask(flow, schedule, Schedule.slots_dates, None)
        return
    await flow.state.clear()
    text = _("schedule.created").format(created=result.created, skipped=result.skipped)
    await show(query, text, kb.to_menu())


# --- dialogue texts --------------------------------------------------------------------------


async def typed_doctor_name(message: Message, flow: Flow, schedule: ScheduleService) -> None:
    draft = await load_draft(flow.state)
    try:
        draft.name = clean_name(message.text or "")
    except ScheduleInputError as problem:
        await refuse(flow, schedule, problem)
        return
    await save_draft(flow.state, draft)
    await ask(flow, schedule, Schedule.doctor_specialty, None)


async def typed_about(message: Message, flow: Flow, schedule: ScheduleService) -> None:
    draft = await load_draft(flow.state)
    try:
        draft.about = clean_about(message.text or "")
    except ScheduleInputError as problem:
        await refuse(flow, schedule, problem)
        return
    await save_draft(flow.state, draft)
    await ask(flow, schedule, Schedule.doctor_confirm, None)


async def typed_dates(message: Message, flow: Flow, schedule: ScheduleService) -> None:
    draft = await load_draft(flow.state)
    try:
        draft.first_day, draft.last_day = parse_date_range(message.text or "", schedule.today())
    except ScheduleInputError as problem:
        await refuse(flow, schedule, problem)
        return
    await save_draft(flow.state, draft)
    await ask(flow, schedule, Schedule.slots_weekdays, None)


async def typed_hours(message: Message, flow: Flow, schedule: ScheduleService) -> None:
    draft = await load_draft(flow.state)
    try:
        draft.start, draft.end = parse_hours(message.text or "")
    except ScheduleInputError as problem:
        await refuse(flow, schedule, problem)
        return
    draft.end_is_midnight = draft.end is None
    await save_draft(flow.state, draft)
    await ask(flow, schedule, Schedule.slots_length, None)


async def typed_zone(message: Message, flow: Flow, schedule: ScheduleService) -> None:
    try:
        found = schedule.resolve_time_zone(message.text or "", flow.locale)
    except ScheduleInputError as problem:
        await refuse(flow, schedule, problem)
        return
    if not isinstance(found, list):
        await zone_chosen(flow, schedule, found, None)
    elif len(found) == 1:
        await ask_region_zone(flow, found[0], None)
    else:
        await flow.send(_("schedule.ask_region"), reply_markup=kb.regions(found, 0, flow.locale))


async def csv_file(
    message: Message, flow: Flow, bot: Bot, schedule: ScheduleService, coordinator: Actor
) -> None:
    assert message.document is not None
    if (message.document.file_size or 0) > MAX_CSV_BYTES:
        await flow.send(_(CSV_KEYS[CsvRefused.TOO_BIG]).format(limit=MAX_CSV_BYTES // 1024))
        return
    file = await bot.get_file(message.document.file_id)
    buffer = await bot.download_file(file.file_path) if file.file_path else None
    try:
        report = await schedule.import_csv(buffer.read() if buffer else b"", by=coordinator)
    except CsvError as refused:
        await flow.send(
            _(CSV_KEYS[refused.reason]).format(limit=MAX_CSV_BYTES // 1024, rows=MAX_CSV_ROWS),
            reply_markup=kb.csv_step(),
        )
        return
    await flow.state.clear()
    await flow.send(csv_report_text(report), reply_markup=kb.to_menu())


async def csv_not_a_file(_message: Message, flow: Flow) -> None:
    await flow.send(_("schedule.csv_need_file"), reply_markup=kb.csv_step())


async def need_text(_message: Message, flow: Flow, schedule: ScheduleService) -> None:
    await flow.send(_("schedule.need_text"))
    await ask(flow, schedule, await flow.state.get_state(), None)


async def use_buttons(_message: Message, flow: Flow, schedule: ScheduleService) -> None:
    await flow.send(_("schedule.use_buttons"))
    await ask(flow, schedule, await flow.state.get_state(), None)


async def show(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Edit the message the button was on (unchanged content is fine: a second press of the
    same button); a message too old to edit gets a new one."""
    await edit_or_send(query, text, markup)


# --- asking ----------------------------------------------------------------------------------


async def ask(
    flow: Flow, schedule: ScheduleService, step: State | str | None, query: CallbackQuery | None
) -> None:
    """Ask for ``step`` and make it the current state (editing the message of the button
    pressed, if any); a step that is no dialogue's goes back to the menu."""
    name = step.state if isinstance(step, State) else step
    await flow.state.set_state(name)
    prompt = PROMPTS.get(name)
    markup: InlineKeyboardMarkup | None
    if prompt is None:
        await flow.state.clear()
        text, markup = _("schedule.menu"), kb.menu()
    else:
        text, markup = await prompt(flow, schedule, await load_draft(flow.state))
    if query is not None:
        await show(query, text, markup)
    else:
        await flow.send(text, reply_markup=markup)


Prompt = tuple[str, InlineKeyboardMarkup | None]
Asker = Callable[[Flow, ScheduleService, ScheduleDraft], Awaitable[Prompt]]


def plain(key: str, markup: Callable[[], InlineKeyboardMarkup]) -> Asker:
    """A step asked by a text and a keyboard that do not depend on the dialogue."""

    async def prompt(_flow: Flow, _schedule: ScheduleService, _draft: ScheduleDraft) -> Prompt:
        return _(key), markup()

    return prompt


async def ask_doctor_confirm(
    _flow: Flow, _schedule: ScheduleService, draft: ScheduleDraft
) -> Prompt:
    return doctor_summary(draft), kb.doctor_summary()


async def ask_slots_doctor(_flow: Flow, schedule: ScheduleService, _draft: ScheduleDraft) -> Prompt:
    active = await schedule.doctors(active_only=True)
    text = _("schedule.ask_doctor") if active else _("schedule.no_active_doctors")
    return text, kb.pick_doctor(active)


async def ask_dates(_flow: Flow, _schedule: ScheduleService, _draft: ScheduleDraft) -> Prompt:
    return _("schedule.ask_dates").format(days=MAX_RANGE_DAYS), kb.step_nav()


async def ask_weekdays(_flow: Flow, _schedule: ScheduleService, draft: ScheduleDraft) -> Prompt:
    return _("schedule.ask_weekdays"), kb.weekdays(set(draft.weekdays))


async def ask_preview(flow: Flow, schedule: ScheduleService, draft: ScheduleDraft) -> Prompt:
    return await preview(flow, draft, schedule)


async def ask_csv(_flow: Flow, _schedule: ScheduleService, _draft: ScheduleDraft) -> Prompt:
    return _("schedule.ask_csv").format(limit=MAX_CSV_BYTES // 1024), kb.csv_step()


#: What each step of the dialogues asks.
PROMPTS: dict[str | None, Asker] = {
    Schedule.doctor_name.state: plain(N_("schedule.ask_doctor_name"), kb.step_nav),
    Schedule.doctor_specialty.state: plain(N_("schedule.ask_specialty"), kb.specialties),
    Schedule.doctor_about.state: plain(N_("schedule.ask_about"), kb.about_step),
    Schedule.doctor_confirm.state: ask_doctor_confirm,
    Schedule.slots_doctor.state: ask_slots_doctor,
    Schedule.slots_dates.state: ask_dates,
    Schedule.slots_weekdays.state: ask_weekdays,
    Schedule.slots_hours.state: plain(N_("schedule.ask_hours"), kb.step_nav),
    Schedule.slots_length.state: plain(N_("schedule.ask_length"), kb.lengths),
    Schedule.slots_time_zone.state: plain(N_("schedule.ask_time_zone"), kb.time_zones),
    Schedule.slots_preview.state: ask_preview,
    Schedule.csv_upload.state: ask_csv,
}


async def refuse(flow: Flow, schedule: ScheduleService, problem: ScheduleInputError) -> None:
    """Say what is wrong with the answer and ask the same step again."""
    await flow.send(_(PROBLEM_KEYS[problem.problem]))
    await ask(flow, schedule, await flow.state.get_state(), None)


async def choose_weekdays(
    query: CallbackQuery, flow: Flow, schedule: ScheduleService, chosen: set[int] | frozenset[int]
) -> None:
    draft = await load_draft(flow.state)
    if chosen == set(draft.weekdays):
        return
    draft.weekdays = sorted(chosen)
    await save_draft(flow.state, draft)
    await ask(flow, schedule, Schedule.slots_weekdays, query)


def pressed_region(callback_data: ScheduleStepCb, flow: Flow) -> Region | None:
    """The region of a region or zone button, if it still has the zone it names."""
    chosen = flow.catalog.region(callback_data.value)
    if chosen is None or callback_data.index >= len(chosen.time_zones):
        return None
    return chosen


async def ask_region_zone(flow: Flow, region: Region, query: CallbackQuery | None) -> None:
    text = _("schedule.ask_region_zone").format(region=escape(region.name.get(flow.locale)))
    markup = kb.region_zones(region, flow.locale)
    if query is not None:
        await show(query, text, markup)
    else:
        await flow.send(text, reply_markup=markup)


async def zone_chosen(
    flow: Flow, schedule: ScheduleService, zone: str, query: CallbackQuery | None
) -> None:
    draft = await load_draft(flow.state)
    draft.time_zone = zone
    await save_draft(flow.state, draft)
    await ask(flow, schedule, Schedule.slots_preview, query)


def zone_text(zone: str, locale: str, at: datetime) -> str:
    return f"{zone}, {utc_offset_label(zone, locale, at)}"


def weekday_names(days: list[int]) -> str:
    return ", ".join(_(kb.WEEKDAY_KEYS[day]) for day in sorted(days) if 0 <= day < 7)


def doctor_summary(draft: ScheduleDraft) -> str:
    specialty = kb.SPECIALTY_KEYS.get(draft.specialty or "")
    return _("schedule.doctor_summary").format(
        name=escape(draft.name or "—"),
        specialty=_(specialty) if specialty else "—",
        about=escape(draft.about) if draft.about else "—",
    )


async def preview(
    flow: Flow, draft: ScheduleDraft, schedule: ScheduleService
) -> tuple[str, InlineKeyboardMarkup]:
    plan = draft.plan()
    doctor = await schedule.doctor(draft.doctor_id) if draft.doctor_id else None
    if plan is None or doctor is None or draft.first_day is None or draft.last_day is None:
        return _("schedule.preview_incomplete"), kb.preview(0)
    try:
        counts = await schedule.preview(plan)
    except ScheduleInputError as problem:
        return _(PROBLEM_KEYS[problem.problem]), kb.preview(0)
    lines = [
        _("schedule.preview").format(
            doctor=escape(doctor.name),
            first=f"{draft.first_day:%d.%m.%Y}",
            last=f"{draft.last_day:%d.%m.%Y}",
            days=weekday_names(draft.weekdays),
            start=f"{plan.start:%H:%M}",
            end=f"{plan.end:%H:%M}" if plan.end else "24:00",
            length=plan.length_minutes,
            zone=zone_text(plan.time_zone, flow.locale, flow.clock()),
            count=counts.new,
        )
    ]
    if counts.existing:
        lines.append(_("schedule.preview_existing").format(count=counts.existing))
    if counts.past:
        lines.append(_("schedule.preview_past").format(count=counts.past))
    if not counts.new:
        lines.append(_("schedule.preview_nothing"))
    return "\n".join(lines), kb.preview(counts.new)


# --- doctors and slots -----------------------------------------------------------------------


async def show_doctor(
    query: CallbackQuery, doctor: DutyDoctorDTO, schedule: ScheduleService
) -> None:
    total, booked = await schedule.upcoming_counts(doctor.id)
    text = _("schedule.doctor_card").format(
        name=escape(doctor.name),
        specialty=_(kb.SPECIALTY_KEYS.get(doctor.specialty, doctor.specialty)),
        about=escape(doctor.about) if doctor.about else "—",
        status=_("schedule.status_active") if doctor.active else _("schedule.status_inactive"),
        slots=total,
        booked=booked,
    )
    await show(query, text, kb.doctor_card(doctor))


def slot_line(slot: ScheduleSlotDTO) -> str:
    local = slot.starts_at.astimezone(ZoneInfo(slot.time_zone))
    return _("schedule.slot_line").format(
        time=f"{local:%d.%m.%Y %H:%M}", zone=slot.time_zone, minutes=slot.duration_minutes
    )


async def show_slots(
    query: CallbackQuery, doctor: DutyDoctorDTO, page: int, schedule: ScheduleService
) -> None:
    found = await schedule.upcoming_slots(doctor.id, page)
    if not found.items:
        text = _("schedule.no_slots").format(name=escape(doctor.name))
    else:
        lines = [
            _("schedule.slots_title").format(
                name=escape(doctor.name), page=found.page + 1, pages=found.pages, total=found.total
            )
        ]
        for slot in found.items:
            state = (
                _("schedule.slot_booked").format(patient=slot.patient_id)
                if slot.booked
                else _("schedule.slot_free")
            )
            lines.append(f"{slot_line(slot)} — {state}")
        lines.append(_("schedule.slots_hint"))
        text = "\n".join(lines)
    await show(query, text, kb.slots_page(doctor.id, found))


async def show_remove_question(query: CallbackQuery, slot: ScheduleSlotDTO, page: int) -> None:
    key = N_("schedule.remove_booked_question") if slot.booked else N_("schedule.remove_question")
    text = _(key).format(
        slot=slot_line(slot), doctor=escape(slot.doctor_name), patient=slot.patient_id
    )
    await show(query, text, kb.remove_confirm(slot, page))


def csv_report_text(report: CsvReport) -> str:
    lines = [_("schedule.csv_done").format(created=report.created, skipped=report.skipped)]
    if report.errors:
        lines.append(_("schedule.csv_errors").format(count=len(report.errors)))
        for error in report.errors[:MAX_ERRORS_SHOWN]:
            reason = _(ROW_KEYS[error.problem]).format(value=escape(error.value[:60]))
            lines.append(_("schedule.csv_error_line").format(line=error.line, reason=reason))
        if len(report.errors) > MAX_ERRORS_SHOWN:
            lines.append(
                _("schedule.csv_more_errors").format(count=len(report.errors) - MAX_ERRORS_SHOWN)
            )
    return "\n".join(lines)
