"""Doctors in a center's staff chat: the buttons of an application card and what follows them
(calendar and time, requested documents, reasons, the conclusion). Every press and every reply
passes the staff guard (bot.filters.staff): the handlers get the application already checked."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import BaseMiddleware, Bot, F, Router
from aiogram.dispatcher.flags import get_flag
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, TelegramObject, User
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.callbacks import CalendarCb, RequestDocCb, StaffAction, StaffCb, TimeSlotCb
from bot.catalog import Catalog
from bot.filters.staff import APPLICATION, Handler, StaffGuard
from bot.fsm.data import StaffDraft, load_staff, save_staff
from bot.fsm.states import StaffFlow
from bot.handlers.utils import drop_buttons, edit_or_send
from bot.i18n import N_
from bot.keyboards import applications as kb
from bot.services.applications import (
    ActionRefusedError,
    ApplicationDTO,
    ApplicationService,
    Refused,
    StaffStep,
    Status,
    first_offered_minute,
)
from bot.services.audit import Actor, Role
from bot.services.clock import Clock
from bot.services.documents import DocumentService
from bot.services.filetypes import FileKind, detect
from bot.services.validation import InputProblem, parse_staff_time
from bot.views import status_name

#: Handler flag: the application's status must still allow this step.
STEP = "staff_step"
#: The text (or caption) of a doctor's message, stripped, as ``said``; nothing said: no match.
SAID = F.func(lambda message: (message.text or message.caption or "").strip()).as_("said")
TIME_PROBLEMS = {
    "time_format": N_("problem.time_format"),
    "time_impossible": N_("problem.time_impossible"),
    "time_past": N_("problem.time_past"),
}


def router() -> Router:
    r = Router(name="staff")
    r.message.filter(F.chat.type.in_({"group", "supergroup"}))
    r.callback_query.filter(F.message.chat.type.in_({"group", "supergroup"}))
    r.message.middleware(StaffGuard(APPLICATION))
    r.callback_query.middleware(StaffGuard(APPLICATION))
    r.callback_query.middleware(StepAllowed())

    card = StaffCb.filter
    r.callback_query.register(cancel, card(F.action == StaffAction.CANCEL))
    r.callback_query.register(send_documents, card(F.action == StaffAction.DOCUMENTS))
    r.callback_query.register(take, card(F.action == StaffAction.TAKE))
    r.callback_query.register(
        ask_time, card(F.action == StaffAction.ASSIGN), flags={STEP: StaffStep.ASSIGN}
    )
    r.callback_query.register(
        ask_documents,
        card(F.action == StaffAction.REQUEST_DOCS),
        flags={STEP: StaffStep.REQUEST_DOCUMENTS},
    )
    r.callback_query.register(
        ask_decline_reason, card(F.action == StaffAction.DECLINE), flags={STEP: StaffStep.DECLINE}
    )
    r.callback_query.register(
        ask_invite_comment, card(F.action == StaffAction.INVITE), flags={STEP: StaffStep.INVITE}
    )
    r.callback_query.register(
        ask_conclusion, card(F.action == StaffAction.CONCLUDE), flags={STEP: StaffStep.CONCLUDE}
    )

    assign = {STEP: StaffStep.ASSIGN}
    r.callback_query.register(show_month, CalendarCb.filter(F.day == 0), flags=assign)
    r.callback_query.register(pick_day, CalendarCb.filter(F.day != 0), flags=assign)
    r.callback_query.register(propose_time, TimeSlotCb.filter(~F.confirm), flags=assign)
    r.callback_query.register(confirm_time, TimeSlotCb.filter(F.confirm), flags=assign)
    r.message.register(typed_time, StaffFlow.assign_time, F.text)

    request = {STEP: StaffStep.REQUEST_DOCUMENTS}
    choosing = StaffFlow.request_documents
    r.callback_query.register(
        toggle_document, choosing, RequestDocCb.filter(F.type != ""), flags=request
    )
    r.callback_query.register(
        documents_chosen, choosing, RequestDocCb.filter(F.type == ""), flags=request
    )
    r.message.register(request_comment, StaffFlow.request_comment, SAID)
    r.message.register(decline_reason, StaffFlow.decline_reason, SAID)
    r.message.register(invite_comment, StaffFlow.invite_comment, SAID)
    r.message.register(
        need_text,
        StateFilter(StaffFlow.request_comment, StaffFlow.decline_reason, StaffFlow.invite_comment),
    )
    r.message.register(conclusion, StaffFlow.conclusion)
    return r


class StepAllowed(BaseMiddleware):
    """A handler flagged with ``STEP`` runs only while the application's status allows that
    step; otherwise an alert says why. A card keeps its buttons (it is redrawn for its status);
    the calendar, the time and the document list lose theirs."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        step: StaffStep | None = get_flag(data, STEP)
        if step is None or not isinstance(event, CallbackQuery):
            return await handler(event, data)
        applications: ApplicationService = data["applications"]
        try:
            await applications.check_step(data["application"].id, step)
        except ActionRefusedError as refused:
            callback_answer: CallbackAnswer = data["callback_answer"]
            callback_answer.text = refusal_text(refused)
            callback_answer.show_alert = True
            if not isinstance(data.get("callback_data"), StaffCb):
                await drop_buttons(event)
            return None
        return await handler(event, data)


# --- the card's buttons ----------------------------------------------------------------------


async def cancel(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await edit_or_send(query, _("staff.cancelled"), None)


async def send_documents(
    query: CallbackQuery,
    application: ApplicationDTO,
    applications: ApplicationService,
    callback_answer: CallbackAnswer,
) -> None:
    count = await applications.resend_documents(application.id, staff_actor(query))
    callback_answer.text = _("staff.documents_coming") if count else _("staff.documents_none")


async def take(
    query: CallbackQuery,
    application: ApplicationDTO,
    applications: ApplicationService,
    callback_answer: CallbackAnswer,
) -> None:
    try:
        await applications.take(application.id, actor_name(query.from_user), by=staff_actor(query))
    except ActionRefusedError as refused:
        callback_answer.text = refusal_text(refused)
        callback_answer.show_alert = True
        return
    callback_answer.text = _("staff.taken")


async def ask_time(
    query: CallbackQuery,
    state: FSMContext,
    bot: Bot,
    application: ApplicationDTO,
    catalog: Catalog,
    clock: Clock,
) -> None:
    tz = _center_tz(catalog, application)
    today = clock().astimezone(ZoneInfo(tz)).date()
    text = _("staff.ask_time").format(id=application.id, tz=tz)
    markup = kb.month_calendar(application.id, today.year, today.month, today)
    await _start_dialogue(query, state, bot, application, StaffFlow.assign_time, text, markup)


async def ask_documents(
    query: CallbackQuery, state: FSMContext, bot: Bot, application: ApplicationDTO, catalog: Catalog
) -> None:
    text = _("staff.ask_documents").format(id=application.id)
    markup = kb.request_documents(application.id, catalog, "ru", set())
    await _start_dialogue(query, state, bot, application, StaffFlow.request_documents, text, markup)


async def ask_decline_reason(
    query: CallbackQuery, state: FSMContext, bot: Bot, application: ApplicationDTO
) -> None:
    text = _("staff.ask_decline_reason").format(id=application.id)
    markup = kb.staff_cancel(application.id)
    await _start_dialogue(query, state, bot, application, StaffFlow.decline_reason, text, markup)


async def ask_invite_comment(
    query: CallbackQuery, state: FSMContext, bot: Bot, application: ApplicationDTO
) -> None:
    text = _("staff.ask_invite_comment").format(id=application.id)
    markup = kb.staff_cancel(application.id)
    await _start_dialogue(query, state, bot, application, StaffFlow.invite_comment, text, markup)


async def ask_conclusion(
    query: CallbackQuery, state: FSMContext, bot: Bot, application: ApplicationDTO
) -> None:
    text = _("staff.ask_conclusion").format(id=application.id)
    markup = kb.staff_cancel(application.id)
    await _start_dialogue(query, state, bot, application, StaffFlow.conclusion, text, markup)


async def _start_dialogue(
    query: CallbackQuery,
    state: FSMContext,
    bot: Bot,
    application: ApplicationDTO,
    step: State,
    text: str,
    markup: InlineKeyboardMarkup,
) -> None:
    """A doctor's dialogue about one application, asked in the card's topic."""
    assert query.message is not None
    await state.set_state(None)
    await save_staff(state, StaffDraft(application_id=application.id))
    await state.set_state(step)
    thread_id = query.message.message_thread_id if isinstance(query.message, Message) else None
    await bot.send_message(
        query.message.chat.id, text, message_thread_id=thread_id, reply_markup=markup
    )


# --- assigning a time ------------------------------------------------------------------------


async def show_month(
    query: CallbackQuery,
    callback_data: CalendarCb,
    application: ApplicationDTO,
    catalog: Catalog,
    clock: Clock,
) -> None:
    year, month = divmod(callback_data.month, 100)
    if not 1 <= month <= 12:
        return
    tz = _center_tz(catalog, application)
    today = clock().astimezone(ZoneInfo(tz)).date()
    markup = kb.month_calendar(application.id, year, month, today)
    await edit_or_send(query, _("staff.ask_time").format(id=application.id, tz=tz), markup)


async def pick_day(
    query: CallbackQuery,
    callback_data: CalendarCb,
    application: ApplicationDTO,
    catalog: Catalog,
    clock: Clock,
    callback_answer: CallbackAnswer,
) -> None:
    tz = _center_tz(catalog, application)
    day = _day(callback_data.day)
    earliest = None if day is None else first_offered_minute(day, clock().astimezone(ZoneInfo(tz)))
    if day is None or earliest is None:
        callback_answer.text = _("problem.time_past")
        return
    await edit_or_send(
        query,
        _("staff.ask_slot").format(day=f"{day:%d.%m.%Y}", tz=tz),
        kb.time_slots(application.id, callback_data.day, earliest),
    )


async def propose_time(
    query: CallbackQuery,
    callback_data: TimeSlotCb,
    application: ApplicationDTO,
    catalog: Catalog,
    callback_answer: CallbackAnswer,
) -> None:
    tz = _center_tz(catalog, application)
    local = _slot_time(callback_data, tz)
    if local is None:
        callback_answer.text = _("common.stale_button")
        return
    await edit_or_send(
        query,
        _("staff.confirm_time").format(id=application.id, time=f"{local:%d.%m.%Y %H:%M}", tz=tz),
        kb.time_confirm(application.id, callback_data.day, callback_data.minutes),
    )


async def confirm_time(
    query: CallbackQuery,
    callback_data: TimeSlotCb,
    state: FSMContext,
    application: ApplicationDTO,
    applications: ApplicationService,
    catalog: Catalog,
    callback_answer: CallbackAnswer,
) -> None:
    local = _slot_time(callback_data, _center_tz(catalog, application))
    if local is None:
        callback_answer.text = _("common.stale_button")
        return
    try:
        await applications.assign_time(
            application.id, actor_name(query.from_user), local, by=staff_actor(query)
        )
    except ActionRefusedError as refused:
        callback_answer.text = refusal_text(refused)
        callback_answer.show_alert = True
        await drop_buttons(query)
        return
    await state.clear()
    when = f"{local:%d.%m.%Y %H:%M}"
    text = _("staff.assigned").format(id=application.id, time=when, tz=str(local.tzinfo))
    await edit_or_send(query, text, None)


async def typed_time(
    message: Message,
    application: ApplicationDTO,
    catalog: Catalog,
    clock: Clock,
) -> None:
    tz = _center_tz(catalog, application)
    try:
        moment = parse_staff_time(message.text or "", tz, clock())
    except InputProblem as problem:
        await message.reply(_(TIME_PROBLEMS[problem.code]))
        return
    local = moment.astimezone(ZoneInfo(tz))
    minutes = local.hour * 60 + local.minute
    await message.reply(
        _("staff.confirm_time").format(id=application.id, time=f"{local:%d.%m.%Y %H:%M}", tz=tz),
        reply_markup=kb.time_confirm(application.id, int(f"{local:%Y%m%d}"), minutes),
    )


# --- requesting documents --------------------------------------------------------------------


async def toggle_document(
    query: CallbackQuery,
    callback_data: RequestDocCb,
    state: FSMContext,
    application: ApplicationDTO,
    catalog: Catalog,
    callback_answer: CallbackAnswer,
) -> None:
    draft = await _draft_of(state, application, callback_answer)
    if draft is None or catalog.document_type(callback_data.type) is None:
        return
    chosen = set(draft.chosen_documents) ^ {callback_data.type}
    draft.chosen_documents = sorted(chosen)
    await save_staff(state, draft)
    await edit_or_send(
        query,
        _("staff.ask_documents").format(id=application.id),
        kb.request_documents(application.id, catalog, "ru", chosen),
    )


async def documents_chosen(
    query: CallbackQuery,
    state: FSMContext,
    application: ApplicationDTO,
    callback_answer: CallbackAnswer,
) -> None:
    draft = await _draft_of(state, application, callback_answer)
    if draft is None:
        return
    if not draft.chosen_documents:
        callback_answer.text = _("staff.choose_documents")
        callback_answer.show_alert = True
        return
    await state.set_state(StaffFlow.request_comment)
    await edit_or_send(
        query,
        _("staff.ask_request_comment").format(id=application.id),
        kb.staff_cancel(application.id),
    )


async def _draft_of(
    state: FSMContext, application: ApplicationDTO, callback_answer: CallbackAnswer
) -> StaffDraft | None:
    """This chat's dialogue about the application (a list left from another one is stale)."""
    draft = await load_staff(state)
    if draft is None or draft.application_id != application.id:
        callback_answer.text = _("common.stale_button")
        return None
    return draft


# --- the texts that finish a dialogue --------------------------------------------------------


async def request_comment(
    message: Message,
    state: FSMContext,
    said: str,
    application: ApplicationDTO,
    applications: ApplicationService,
) -> None:
    draft = await load_staff(state)
    chosen = draft.chosen_documents if draft else []
    comment = None if said in {"-", "—"} else said
    requested = applications.request_documents(
        application.id, _actor(message), chosen, comment, by=_message_actor(message)
    )
    await _finish(message, state, application, requested, N_("staff.documents_requested"))


async def decline_reason(
    message: Message,
    state: FSMContext,
    said: str,
    application: ApplicationDTO,
    applications: ApplicationService,
) -> None:
    declined = applications.decline(
        application.id, _actor(message), said, by=_message_actor(message)
    )
    await _finish(message, state, application, declined, N_("staff.declined"))


async def invite_comment(
    message: Message,
    state: FSMContext,
    said: str,
    application: ApplicationDTO,
    applications: ApplicationService,
) -> None:
    invited = applications.invite(application.id, _actor(message), said, by=_message_actor(message))
    await _finish(message, state, application, invited, N_("staff.invited"))


async def need_text(message: Message) -> None:
    await message.reply(_("staff.need_text"))


async def conclusion(
    message: Message,
    state: FSMContext,
    bot: Bot,
    application: ApplicationDTO,
    applications: ApplicationService,
    documents: DocumentService,
) -> None:
    text = _text_of(message)
    file_id = None
    if message.document is not None:
        if not await _is_pdf(bot, message.document.file_id, documents.max_bytes):
            await message.reply(_("staff.conclusion_not_pdf"))
            return
        file_id = message.document.file_id
    if not text and file_id is None:
        await message.reply(_("staff.ask_conclusion").format(id=application.id))
        return
    concluded = applications.conclude(
        application.id, _actor(message), text or None, file_id, by=_message_actor(message)
    )
    await _finish(message, state, application, concluded, N_("staff.conclusion_sent"))


async def _finish(
    message: Message,
    state: FSMContext,
    application: ApplicationDTO,
    step: Awaitable[object],
    done: str,
) -> None:
    """Run the step that ends the dialogue; the dialogue ends either way."""
    try:
        await step
    except ActionRefusedError as refused:
        await state.clear()
        await message.reply(refusal_text(refused))
        return
    await state.clear()
    await message.reply(_(done).format(id=application.id))


# --- small helpers ---------------------------------------------------------------------------


def actor_name(user: User) -> str:
    return user.full_name[:120]


def staff_actor(query: CallbackQuery) -> Actor:
    """The doctor pressing a button in a staff chat, for the audit trail."""
    assert query.message is not None
    return Actor(telegram_id=query.from_user.id, role=Role.DOCTOR, chat_id=query.message.chat.id)


def _actor(message: Message) -> str:
    assert message.from_user is not None
    return actor_name(message.from_user)


def _message_actor(message: Message) -> Actor:
    """The doctor writing in a staff chat, for the audit trail."""
    assert message.from_user is not None
    return Actor(telegram_id=message.from_user.id, role=Role.DOCTOR, chat_id=message.chat.id)


def _text_of(message: Message) -> str:
    return (message.text or message.caption or "").strip()


def refusal_text(refused: ActionRefusedError) -> str:
    if refused.reason is Refused.PAST_TIME:
        return _("problem.time_past")
    if refused.reason is Refused.WRONG_STATUS and refused.status:
        text = _("staff.already_done").format(status=status_name(Status(refused.status)))
        if refused.actor:
            text += " — " + refused.actor
        return text
    return _("common.stale_button")


async def _is_pdf(bot: Bot, file_id: str, max_bytes: int) -> bool:
    file = await bot.get_file(file_id)
    if file.file_path is None or (file.file_size or 0) > max_bytes:
        return False
    buffer = await bot.download_file(file.file_path)
    return buffer is not None and detect(buffer.read()).kind is FileKind.PDF


def _center_tz(catalog: Catalog, application: ApplicationDTO) -> str:
    center = catalog.center(application.center_code)
    return center.time_zone if center else "Europe/Moscow"


def _slot_time(callback_data: TimeSlotCb, tz: str) -> datetime | None:
    """The moment a time button stands for, in the center's zone; None for a forged one."""
    day = _day(callback_data.day)
    if day is None or not 0 <= callback_data.minutes < 24 * 60:
        return None
    midnight = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    return midnight + timedelta(minutes=callback_data.minutes)


def _day(value: int) -> date | None:
    try:
        return date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        return None
