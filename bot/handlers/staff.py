"""Doctors in a center's staff chat: the buttons of an application card and what follows them
(calendar and time, requested documents, reasons, the conclusion). Every press is checked:
the card's chat must be the application's center chat and the presser a member of it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, User
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from bot.callbacks import CalendarCb, RequestDocCb, StaffAction, StaffCb, TimeSlotCb
from bot.catalog import Catalog
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
)
from bot.services.audit import Actor, Role
from bot.services.clock import Clock
from bot.services.documents import DocumentService
from bot.services.filetypes import FileKind, detect
from bot.services.validation import InputProblem, parse_staff_time
from bot.staff_access import StaffAccess
from bot.views import status_name

STEPS = {
    StaffAction.ASSIGN: StaffStep.ASSIGN,
    StaffAction.REQUEST_DOCS: StaffStep.REQUEST_DOCUMENTS,
    StaffAction.DECLINE: StaffStep.DECLINE,
    StaffAction.INVITE: StaffStep.INVITE,
    StaffAction.CONCLUDE: StaffStep.CONCLUDE,
}
PROMPTS = {
    StaffAction.DECLINE: (StaffFlow.decline_reason, N_("staff.ask_decline_reason")),
    StaffAction.INVITE: (StaffFlow.invite_comment, N_("staff.ask_invite_comment")),
    StaffAction.CONCLUDE: (StaffFlow.conclusion, N_("staff.ask_conclusion")),
}
TIME_PROBLEMS = {
    "time_format": N_("problem.time_format"),
    "time_impossible": N_("problem.time_impossible"),
    "time_past": N_("problem.time_past"),
}


def actor_name(user: User) -> str:
    return user.full_name[:120]


def staff_actor(user: User, chat_id: int) -> Actor:
    """The doctor pressing or writing in a staff chat, for the audit trail."""
    return Actor(telegram_id=user.id, role=Role.DOCTOR, chat_id=chat_id)


async def authorize(
    bot: Bot,
    chat_id: int,
    user: User,
    application_id: int,
    applications: ApplicationService,
    access: StaffAccess,
) -> ApplicationDTO | None:
    try:
        application = await applications.get(application_id)
    except ActionRefusedError:
        return None
    if chat_id != application.staff_chat_id:
        return None
    if not await access.is_member(bot, chat_id, user.id):
        return None
    return application


def refusal_text(refused: ActionRefusedError) -> str:
    if refused.reason is Refused.PAST_TIME:
        return _("problem.time_past")
    if refused.reason is Refused.WRONG_STATUS and refused.status:
        from bot.services.applications import Status

        text = _("staff.already_done").format(status=status_name(Status(refused.status)))
        if refused.actor:
            text += " — " + refused.actor
        return text
    return _("common.stale_button")


def router() -> Router:
    r = Router(name="staff")
    r.message.filter(F.chat.type.in_({"group", "supergroup"}))
    r.callback_query.filter(F.message.chat.type.in_({"group", "supergroup"}))

    async def guard(
        query: CallbackQuery,
        app_id: int,
        bot: Bot,
        applications: ApplicationService,
        access: StaffAccess,
        callback_answer: CallbackAnswer,
        step: StaffStep | None = None,
    ) -> ApplicationDTO | None:
        """The presser may act on the application (and, given a step, its status allows it)."""
        assert query.message is not None
        application = await authorize(
            bot, query.message.chat.id, query.from_user, app_id, applications, access
        )
        if application is None:
            callback_answer.text = _("staff.not_allowed")
            callback_answer.show_alert = True
            return None
        if step is not None:
            try:
                await applications.check_step(application.id, step)
            except ActionRefusedError as refused:
                callback_answer.text = refusal_text(refused)
                callback_answer.show_alert = True
                await drop_buttons(query)
                return None
        return application

    @r.callback_query(StaffCb.filter())
    async def card_button(
        query: CallbackQuery,
        callback_data: StaffCb,
        state: FSMContext,
        bot: Bot,
        applications: ApplicationService,
        access: StaffAccess,
        catalog: Catalog,
        clock: Clock,
        callback_answer: CallbackAnswer,
    ) -> None:
        application = await guard(
            query, callback_data.app, bot, applications, access, callback_answer
        )
        if application is None:
            return
        action = callback_data.action
        actor = actor_name(query.from_user)
        assert query.message is not None
        by = staff_actor(query.from_user, query.message.chat.id)
        thread_id = query.message.message_thread_id if query.message else None  # type: ignore[union-attr]
        if action is StaffAction.CANCEL:
            await state.clear()
            await edit_or_send(query, _("staff.cancelled"), None)
            return
        if action is StaffAction.DOCUMENTS:
            count = await applications.resend_documents(application.id, by)
            callback_answer.text = (
                _("staff.documents_coming") if count else _("staff.documents_none")
            )
            return
        if action is StaffAction.TAKE:
            try:
                await applications.take(application.id, actor, by=by)
            except ActionRefusedError as refused:
                callback_answer.text = refusal_text(refused)
                callback_answer.show_alert = True
                return
            callback_answer.text = _("staff.taken")
            return
        try:  # a card's button after the application moved on: refused at this first press
            await applications.check_step(application.id, STEPS[action])
        except ActionRefusedError as refused:
            callback_answer.text = refusal_text(refused)
            callback_answer.show_alert = True
            return
        await state.set_state(None)
        await save_staff(state, StaffDraft(application_id=application.id))
        assert query.message is not None
        if action is StaffAction.ASSIGN:
            await state.set_state(StaffFlow.assign_time)
            center = catalog.center(application.center_code)
            tz = center.time_zone if center else "Europe/Moscow"
            today = clock().astimezone(ZoneInfo(tz)).date()
            await bot.send_message(
                query.message.chat.id,
                _("staff.ask_time").format(id=application.id, tz=tz),
                message_thread_id=thread_id,
                reply_markup=kb.month_calendar(application.id, today.year, today.month, today),
            )
        elif action is StaffAction.REQUEST_DOCS:
            await state.set_state(StaffFlow.request_documents)
            await bot.send_message(
                query.message.chat.id,
                _("staff.ask_documents").format(id=application.id),
                message_thread_id=thread_id,
                reply_markup=kb.request_documents(application.id, catalog, "ru", set()),
            )
        else:
            step, prompt = PROMPTS[action]
            await state.set_state(step)
            await bot.send_message(
                query.message.chat.id,
                _(prompt).format(id=application.id),
                message_thread_id=thread_id,
                reply_markup=kb.staff_cancel(application.id),
            )

    # --- assigning a time --------------------------------------------------------------------
    @r.callback_query(CalendarCb.filter())
    async def calendar_day(
        query: CallbackQuery,
        callback_data: CalendarCb,
        bot: Bot,
        applications: ApplicationService,
        access: StaffAccess,
        catalog: Catalog,
        clock: Clock,
        callback_answer: CallbackAnswer,
    ) -> None:
        application = await guard(
            query, callback_data.app, bot, applications, access, callback_answer, StaffStep.ASSIGN
        )
        if application is None:
            return
        tz = _center_tz(catalog, application)
        now_local = clock().astimezone(ZoneInfo(tz))
        if callback_data.day == 0:
            year, month = divmod(callback_data.month, 100)
            if not 1 <= month <= 12:
                return
            markup = kb.month_calendar(application.id, year, month, now_local.date())
            await edit_or_send(query, _("staff.ask_time").format(id=application.id, tz=tz), markup)
            return
        day = _day(callback_data.day)
        if day is None or day < now_local.date():
            callback_answer.text = _("problem.time_past")
            return
        earliest = 0
        if day == now_local.date():
            earliest = now_local.hour * 60 + now_local.minute + 15
        await edit_or_send(
            query,
            _("staff.ask_slot").format(day=f"{day:%d.%m.%Y}", tz=tz),
            kb.time_slots(application.id, callback_data.day, earliest),
        )

    @r.callback_query(TimeSlotCb.filter())
    async def time_slot(
        query: CallbackQuery,
        callback_data: TimeSlotCb,
        state: FSMContext,
        bot: Bot,
        applications: ApplicationService,
        access: StaffAccess,
        catalog: Catalog,
        callback_answer: CallbackAnswer,
    ) -> None:
        application = await guard(
            query, callback_data.app, bot, applications, access, callback_answer, StaffStep.ASSIGN
        )
        if application is None:
            return
        tz = _center_tz(catalog, application)
        day = _day(callback_data.day)
        if day is None or not 0 <= callback_data.minutes < 24 * 60:
            callback_answer.text = _("common.stale_button")
            return
        local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)) + timedelta(
            minutes=callback_data.minutes
        )
        if not callback_data.confirm:
            await edit_or_send(
                query,
                _("staff.confirm_time").format(
                    id=application.id, time=f"{local:%d.%m.%Y %H:%M}", tz=tz
                ),
                kb.time_confirm(application.id, callback_data.day, callback_data.minutes),
            )
            return
        await _assign(query, state, applications, application, local, callback_answer)

    @r.message(StaffFlow.assign_time, F.text)
    async def typed_time(
        message: Message,
        state: FSMContext,
        bot: Bot,
        applications: ApplicationService,
        access: StaffAccess,
        catalog: Catalog,
        clock: Clock,
    ) -> None:
        draft = await load_staff(state)
        assert message.from_user is not None
        application = draft and await authorize(
            bot, message.chat.id, message.from_user, draft.application_id, applications, access
        )
        if not application:
            await state.clear()
            return
        tz = _center_tz(catalog, application)
        try:
            moment = parse_staff_time(message.text or "", tz, clock())
        except InputProblem as problem:
            await message.reply(_(TIME_PROBLEMS[problem.code]))
            return
        local = moment.astimezone(ZoneInfo(tz))
        minutes = local.hour * 60 + local.minute
        await message.reply(
            _("staff.confirm_time").format(
                id=application.id, time=f"{local:%d.%m.%Y %H:%M}", tz=tz
            ),
            reply_markup=kb.time_confirm(application.id, int(f"{local:%Y%m%d}"), minutes),
        )

    # --- requesting documents ----------------------------------------------------------------
    @r.callback_query(StaffFlow.request_documents, RequestDocCb.filter())
    async def request_toggle(
        query: CallbackQuery,
        callback_data: RequestDocCb,
        state: FSMContext,
        bot: Bot,
        applications: ApplicationService,
        access: StaffAccess,
        catalog: Catalog,
        callback_answer: CallbackAnswer,
    ) -> None:
        application = await guard(
            query,
            callback_data.app,
            bot,
            applications,
            access,
            callback_answer,
            StaffStep.REQUEST_DOCUMENTS,
        )
        draft = await load_staff(state)
        if application is None or draft is None or draft.application_id != application.id:
            if application is not None:
                callback_answer.text = _("common.stale_button")
            return
        if callback_data.type:
            if catalog.document_type(callback_data.type) is None:
                return
            chosen = set(draft.chosen_documents) ^ {callback_data.type}
            draft.chosen_documents = sorted(chosen)
            await save_staff(state, draft)
            await edit_or_send(
                query,
                _("staff.ask_documents").format(id=application.id),
                kb.request_documents(application.id, catalog, "ru", chosen),
            )
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

    @r.message(
        StateFilter(
            StaffFlow.request_comment,
            StaffFlow.decline_reason,
            StaffFlow.invite_comment,
            StaffFlow.conclusion,
        )
    )
    async def staff_text(
        message: Message,
        state: FSMContext,
        bot: Bot,
        applications: ApplicationService,
        access: StaffAccess,
        documents: DocumentService,
    ) -> None:
        draft = await load_staff(state)
        assert message.from_user is not None
        application = draft and await authorize(
            bot, message.chat.id, message.from_user, draft.application_id, applications, access
        )
        if not application or draft is None:
            await state.clear()
            return
        current = await state.get_state()
        actor = actor_name(message.from_user)
        by = staff_actor(message.from_user, message.chat.id)
        text = (message.text or message.caption or "").strip()
        try:
            if current == StaffFlow.conclusion.state:
                file_id = None
                if message.document is not None:
                    if not await _is_pdf(bot, message.document.file_id, documents.max_bytes):
                        await message.reply(_("staff.conclusion_not_pdf"))
                        return
                    file_id = message.document.file_id
                if not text and file_id is None:
                    await message.reply(_("staff.ask_conclusion").format(id=application.id))
                    return
                await applications.conclude(application.id, actor, text or None, file_id, by=by)
                done = _("staff.conclusion_sent")
            elif not text:
                await message.reply(_("staff.need_text"))
                return
            elif current == StaffFlow.request_comment.state:
                comment = None if text in {"-", "—"} else text
                await applications.request_documents(
                    application.id, actor, draft.chosen_documents, comment, by=by
                )
                done = _("staff.documents_requested")
            elif current == StaffFlow.decline_reason.state:
                await applications.decline(application.id, actor, text, by=by)
                done = _("staff.declined")
            else:
                await applications.invite(application.id, actor, text, by=by)
                done = _("staff.invited")
        except ActionRefusedError as refused:
            await state.clear()
            await message.reply(refusal_text(refused))
            return
        await state.clear()
        await message.reply(done.format(id=application.id))

    return r


async def _assign(
    query: CallbackQuery,
    state: FSMContext,
    applications: ApplicationService,
    application: ApplicationDTO,
    local: datetime,
    callback_answer: CallbackAnswer,
) -> None:
    try:
        assert query.message is not None
        await applications.assign_time(
            application.id,
            actor_name(query.from_user),
            local,
            by=staff_actor(query.from_user, query.message.chat.id),
        )
    except ActionRefusedError as refused:
        callback_answer.text = refusal_text(refused)
        callback_answer.show_alert = True
        await drop_buttons(query)
        return
    await state.clear()
    await edit_or_send(
        query,
        _("staff.assigned").format(
            id=application.id, time=f"{local:%d.%m.%Y %H:%M}", tz=str(local.tzinfo)
        ),
        None,
    )


async def _is_pdf(bot: Bot, file_id: str, max_bytes: int) -> bool:
    file = await bot.get_file(file_id)
    if file.file_path is None or (file.file_size or 0) > max_bytes:
        return False
    buffer = await bot.download_file(file.file_path)
    return buffer is not None and detect(buffer.read()).kind is FileKind.PDF


def _center_tz(catalog: Catalog, application: ApplicationDTO) -> str:
    center = catalog.center(application.center_code)
    return center.time_zone if center else "Europe/Moscow"


def _day(value: int) -> date | None:
    try:
        return date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        return None
