"""Keyboards of applications: the patient's dialogue and the staff card."""

from __future__ import annotations

import calendar
from datetime import date

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot.callbacks import (
    AppAction,
    AppCb,
    AppListPageCb,
    CalendarCb,
    ConclusionCb,
    ConclusionPageCb,
    DocMenuAction,
    DocMenuCb,
    RequestDocCb,
    StaffAction,
    StaffCb,
    TimeAnswer,
    TimeAnswerCb,
    TimeSlotCb,
)
from bot.catalog import Catalog, Center
from bot.i18n import N_
from bot.keyboards.builder import InlineKeyboardBuilder
from bot.keyboards.paging import add_pager, page_of
from bot.services.applications import (
    BEFORE_TIME,
    OPEN,
    ApplicationDTO,
    ConclusionDTO,
    Status,
)
from bot.views import format_local_date, status_name

SLOT_START_MINUTES = 8 * 60
SLOT_END_MINUTES = 20 * 60
SLOT_STEP_MINUTES = 30


def _cancel_row(kb: InlineKeyboardBuilder) -> None:
    kb.button(text=_("btn.back"), callback_data=AppCb(action=AppAction.BACK))
    kb.button(text=_("btn.cancel"), callback_data=AppCb(action=AppAction.CANCEL))


def centers(catalog: Catalog, locale: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for center in catalog.centers:
        kb.button(
            text=center.short_name.get(locale),
            callback_data=AppCb(action=AppAction.CENTER, code=center.code),
        )
    kb.button(text=_("btn.cancel"), callback_data=AppCb(action=AppAction.CANCEL))
    kb.adjust(1)
    return kb.as_markup()


def groups(center: Center, locale: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for group in center.disease_groups:
        kb.button(
            text=group.name.get(locale),
            callback_data=AppCb(action=AppAction.GROUP, code=group.code),
        )
    _cancel_row(kb)
    kb.adjust(*([1] * len(center.disease_groups)), 2)
    return kb.as_markup()


def text_step() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    _cancel_row(kb)
    return kb.as_markup()


def checklist(missing: bool) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("btn.app_upload"), callback_data=AppCb(action=AppAction.UPLOAD))
    kb.button(text=_("btn.app_refresh"), callback_data=AppCb(action=AppAction.CHECK))
    if missing:
        kb.button(
            text=_("btn.app_submit_anyway"), callback_data=AppCb(action=AppAction.SUBMIT_ANYWAY)
        )
    else:
        kb.button(text=_("btn.app_next"), callback_data=AppCb(action=AppAction.SUBMIT_ANYWAY))
    _cancel_row(kb)
    kb.adjust(1, 1, 1, 2)
    return kb.as_markup()


def summary() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("btn.app_submit"), callback_data=AppCb(action=AppAction.SUBMIT))
    _cancel_row(kb)
    kb.adjust(1, 2)
    return kb.as_markup()


def my_applications(
    items: list[ApplicationDTO], catalog: Catalog, locale: str, page: int = 0
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    shown = page_of(items, page)
    for item in shown.items:
        center = catalog.center(item.center_code)
        name = center.short_name.get(locale) if center else item.center_code
        kb.button(
            text=f"№{item.id} · {name} · {status_name(item.status)}",
            callback_data=AppCb(action=AppAction.OPEN, id=item.id),
        )
    pager = add_pager(kb, shown, lambda p: AppListPageCb(page=p))
    kb.adjust(*([1] * len(shown.items)), *pager)
    return kb.as_markup()


def application(item: ApplicationDTO) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    if item.may_withdraw:
        kb.button(
            text=_("btn.app_withdraw"), callback_data=AppCb(action=AppAction.WITHDRAW, id=item.id)
        )
    kb.button(text=_("btn.app_list"), callback_data=AppCb(action=AppAction.LIST))
    kb.adjust(1)
    return kb.as_markup()


def withdraw_confirm(application_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("btn.app_withdraw_yes"),
        callback_data=AppCb(action=AppAction.WITHDRAW_YES, id=application_id),
    )
    kb.button(
        text=_("btn.delete_no"), callback_data=AppCb(action=AppAction.OPEN, id=application_id)
    )
    kb.adjust(1)
    return kb.as_markup()


def time_answer(consultation_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("btn.time_confirm"),
        callback_data=TimeAnswerCb(consultation=consultation_id, answer=TimeAnswer.CONFIRM),
    )
    kb.button(
        text=_("btn.time_other"),
        callback_data=TimeAnswerCb(consultation=consultation_id, answer=TimeAnswer.OTHER),
    )
    kb.adjust(1)
    return kb.as_markup()


def upload_button() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("btn.doc_upload"), callback_data=DocMenuCb(action=DocMenuAction.UPLOAD))
    return kb.as_markup()


def conclusions(items: list[ConclusionDTO], tz: str, page: int = 0) -> InlineKeyboardMarkup:
    """A page of the patient's conclusions, dated on the patient's calendar."""
    kb = InlineKeyboardBuilder()
    shown = page_of(items, page)
    for item in shown.items:
        kb.button(
            text=f"{format_local_date(item.created_at, tz)} · {item.author}",
            callback_data=ConclusionCb(id=item.id),
        )
    pager = add_pager(kb, shown, lambda p: ConclusionPageCb(page=p))
    kb.adjust(*([1] * len(shown.items)), *pager)
    return kb.as_markup()


# --- staff -----------------------------------------------------------------------------------


def staff_card(
    item: ApplicationDTO, reschedule_requested: bool = False
) -> InlineKeyboardMarkup | None:
    if item.status not in OPEN:
        return None
    kb = InlineKeyboardBuilder()

    def add(key: str, action: StaffAction) -> None:
        kb.button(text=_(key), callback_data=StaffCb(action=action, app=item.id))

    if item.status is Status.SUBMITTED:
        add(N_("btn.staff_take"), StaffAction.TAKE)
    if item.status in BEFORE_TIME:
        add(N_("btn.staff_assign"), StaffAction.ASSIGN)
        add(N_("btn.staff_request_docs"), StaffAction.REQUEST_DOCS)
    else:
        add(N_("btn.staff_reassign"), StaffAction.ASSIGN)
        add(N_("btn.staff_conclude"), StaffAction.CONCLUDE)
    add(N_("btn.staff_invite"), StaffAction.INVITE)
    add(N_("btn.staff_decline"), StaffAction.DECLINE)
    add(N_("btn.staff_documents"), StaffAction.DOCUMENTS)
    kb.adjust(1)
    return kb.as_markup()


def month_calendar(application_id: int, year: int, month: int, today: date) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    shown = year * 100 + month
    prev_month = (year * 12 + month - 2) // 12 * 100 + (year * 12 + month - 2) % 12 + 1
    next_month = (year * 12 + month) // 12 * 100 + (year * 12 + month) % 12 + 1
    sizes = [3, 7]
    kb.button(text="◀️", callback_data=CalendarCb(app=application_id, month=prev_month))
    kb.button(text=f"{month:02d}.{year}", callback_data=CalendarCb(app=application_id, month=shown))
    kb.button(text="▶️", callback_data=CalendarCb(app=application_id, month=next_month))
    for name in _("calendar.weekdays").split():
        kb.button(text=name, callback_data=CalendarCb(app=application_id, month=shown))
    for week in calendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
        for day in week:
            if day.month != month or day < today:
                kb.button(text=" ", callback_data=CalendarCb(app=application_id, month=shown))
            else:
                kb.button(
                    text=str(day.day),
                    callback_data=CalendarCb(
                        app=application_id, month=shown, day=int(day.strftime("%Y%m%d"))
                    ),
                )
        sizes.append(7)
    kb.button(
        text=_("btn.cancel"), callback_data=StaffCb(action=StaffAction.CANCEL, app=application_id)
    )
    sizes.append(1)
    kb.adjust(*sizes)
    return kb.as_markup()


def time_slots(application_id: int, day: int, earliest_minutes: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for minutes in range(SLOT_START_MINUTES, SLOT_END_MINUTES, SLOT_STEP_MINUTES):
        if minutes < earliest_minutes:
            continue
        kb.button(
            text=f"{minutes // 60:02d}:{minutes % 60:02d}",
            callback_data=TimeSlotCb(app=application_id, day=day, minutes=minutes),
        )
    kb.adjust(4)
    back = InlineKeyboardBuilder()
    back.button(text=_("btn.back"), callback_data=CalendarCb(app=application_id, month=day // 100))
    kb.attach(back)
    return kb.as_markup()


def time_confirm(application_id: int, day: int, minutes: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("btn.staff_assign_confirm"),
        callback_data=TimeSlotCb(app=application_id, day=day, minutes=minutes, confirm=True),
    )
    kb.button(text=_("btn.back"), callback_data=CalendarCb(app=application_id, month=day // 100))
    kb.adjust(1)
    return kb.as_markup()


def request_documents(
    application_id: int, catalog: Catalog, locale: str, chosen: set[str]
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for doc_type in catalog.document_types:
        mark = "☑️ " if doc_type.code in chosen else "▫️ "
        kb.button(
            text=mark + doc_type.short_name.get(locale),
            callback_data=RequestDocCb(app=application_id, type=doc_type.code),
        )
    kb.button(text=_("btn.staff_request_done"), callback_data=RequestDocCb(app=application_id))
    kb.button(
        text=_("btn.cancel"), callback_data=StaffCb(action=StaffAction.CANCEL, app=application_id)
    )
    kb.adjust(*([2] * ((len(catalog.document_types) + 1) // 2)), 1, 1)
    return kb.as_markup()


def staff_cancel(application_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("btn.cancel"), callback_data=StaffCb(action=StaffAction.CANCEL, app=application_id)
    )
    return kb.as_markup()
