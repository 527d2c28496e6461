"""The patient's side of applications: the dialogue "Заявка в центр", "Мои заявки" with the
timeline and withdrawal, answers to an assigned time, "Мои заключения"."""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.filters import StateFilter
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.callbacks import (
    AppAction,
    AppCb,
    AppListPageCb,
    ConclusionCb,
    ConclusionPageCb,
    TimeAnswer,
    TimeAnswerCb,
)
from bot.fsm.data import ApplicationDraft, load_application, save_application
from bot.fsm.states import ApplicationForm
from bot.handlers.flow import Flow
from bot.handlers.utils import alert, drop_buttons, edit_or_send
from bot.i18n import menu_texts, variants
from bot.keyboards import applications as kb
from bot.keyboards import menu as menu_kb
from bot.services.applications import (
    ActionRefusedError,
    ApplicationDTO,
    ApplicationService,
    ConsultationDTO,
    Draft,
    EventDTO,
    Refused,
)
from bot.services.documents import DocumentService
from bot.services.patients import PatientDTO
from bot.views import format_local_date, region_name, status_name

STEPS = (
    ApplicationForm.center,
    ApplicationForm.group,
    ApplicationForm.diagnosis,
    ApplicationForm.complaints,
    ApplicationForm.checklist,
    ApplicationForm.summary,
)


def router(i18n: I18n) -> Router:
    r = Router(name="applications")
    not_menu = ~F.text.in_(menu_texts(i18n))
    # --- the dialogue "Заявка в центр" ---
    r.message.register(start, F.text.in_(variants(i18n, "menu.apply")))
    r.callback_query.register(center, ApplicationForm.center, _app(AppAction.CENTER))
    r.callback_query.register(group, ApplicationForm.group, _app(AppAction.GROUP))
    r.message.register(diagnosis, ApplicationForm.diagnosis, F.text, not_menu)
    r.message.register(complaints, ApplicationForm.complaints, F.text, not_menu)
    r.message.register(
        not_text, StateFilter(ApplicationForm.diagnosis, ApplicationForm.complaints), not_menu
    )
    r.callback_query.register(refresh, ApplicationForm.checklist, _app(AppAction.CHECK))
    r.callback_query.register(upload, ApplicationForm.checklist, _app(AppAction.UPLOAD))
    r.callback_query.register(to_summary, ApplicationForm.checklist, _app(AppAction.SUBMIT_ANYWAY))
    r.callback_query.register(submit, ApplicationForm.summary, _app(AppAction.SUBMIT))
    r.callback_query.register(back, StateFilter(*STEPS), _app(AppAction.BACK))
    r.callback_query.register(cancel, StateFilter(*STEPS), _app(AppAction.CANCEL))
    r.message.register(
        use_buttons,
        StateFilter(ApplicationForm.center, ApplicationForm.group, ApplicationForm.summary),
        not_menu,
    )
    # --- my applications ---
    r.message.register(my_applications, F.text.in_(variants(i18n, "menu.my_applications")))
    r.callback_query.register(list_again, _app(AppAction.LIST))
    r.callback_query.register(list_page, AppListPageCb.filter())
    r.callback_query.register(open_application, _app(AppAction.OPEN))
    r.callback_query.register(withdraw_ask, _app(AppAction.WITHDRAW))
    r.callback_query.register(withdraw, _app(AppAction.WITHDRAW_YES))
    r.callback_query.register(time_answer, TimeAnswerCb.filter())
    # --- conclusions ---
    r.message.register(conclusions, F.text.in_(variants(i18n, "menu.conclusions")))
    r.callback_query.register(conclusions_page, ConclusionPageCb.filter())
    r.callback_query.register(open_conclusion, ConclusionCb.filter())
    return r


def _app(action: AppAction) -> CallbackQueryFilter:
    return AppCb.filter(F.action == action)


async def start(_message: Message, flow: Flow) -> None:
    await flow.state.clear()
    await save_application(flow.state, ApplicationDraft())
    await ask(flow, ApplicationForm.center, None)


async def center(
    query: CallbackQuery,
    callback_data: AppCb,
    flow: Flow,
    patient: PatientDTO,
    applications: ApplicationService,
    callback_answer: CallbackAnswer,
) -> None:
    chosen = flow.catalog.center(callback_data.code)
    if chosen is None:
        callback_answer.text = _("common.stale_button")
        return
    if chosen.code in await applications.open_centers(patient.id):
        alert(callback_answer, _("app.already_open"))
        return
    draft = await load_application(flow.state)
    draft.center_code = chosen.code
    await save_application(flow.state, draft)
    await ask(flow, ApplicationForm.group, query)


async def group(
    query: CallbackQuery, callback_data: AppCb, flow: Flow, callback_answer: CallbackAnswer
) -> None:
    draft = await load_application(flow.state)
    chosen_center = flow.catalog.center(draft.center_code or "")
    if chosen_center is None or chosen_center.disease_group(callback_data.code) is None:
        callback_answer.text = _("common.stale_button")
        return
    draft.group_code = callback_data.code
    await save_application(flow.state, draft)
    await drop_buttons(query)
    await ask(flow, ApplicationForm.diagnosis, None)


async def diagnosis(message: Message, flow: Flow) -> None:
    await _free_text(flow, message, ApplicationService.MAX_DIAGNOSIS, "diagnosis")


async def complaints(message: Message, flow: Flow) -> None:
    await _free_text(flow, message, ApplicationService.MAX_COMPLAINTS, "complaints")


async def not_text(_message: Message, flow: Flow) -> None:
    await flow.send(_("reg.need_text"))
    await ask(flow, await flow.state.get_state(), None)


async def refresh(query: CallbackQuery, flow: Flow) -> None:
    # A new message: uploads' acknowledgements came after the old checklist.
    await drop_buttons(query)
    await ask(flow, ApplicationForm.checklist, None)


async def upload(_query: CallbackQuery, flow: Flow, documents: DocumentService) -> None:
    limit = documents.max_bytes // (1024 * 1024)
    await flow.send(_("app.upload_here").format(limit=limit))


async def to_summary(query: CallbackQuery, flow: Flow) -> None:
    await drop_buttons(query)
    await ask(flow, ApplicationForm.summary, None)


async def submit(
    query: CallbackQuery,
    flow: Flow,
    patient: PatientDTO,
    applications: ApplicationService,
    callback_answer: CallbackAnswer,
) -> None:
    submission = await _submission(await load_application(flow.state), patient, applications)
    if submission is None:  # an old summary's button: a step is missing
        await ask(flow, ApplicationForm.center, None)
        return
    try:
        created = await applications.submit(patient.id, submission)
    except ActionRefusedError:
        alert(callback_answer, _("app.already_open"))
        return
    await drop_buttons(query)
    await flow.state.clear()
    chosen = flow.catalog.center(created.center_code)
    await flow.send(
        _("app.submitted").format(
            id=created.id, center=escape(chosen.short_name.get(flow.locale) if chosen else "")
        ),
        reply_markup=menu_kb.main_menu(),
    )


async def back(query: CallbackQuery, flow: Flow) -> None:
    current = await flow.state.get_state()
    names = [s.state for s in STEPS]
    position = names.index(current) if current in names else 0
    await drop_buttons(query)
    if position == 0:
        await _cancel(flow)
        return
    await ask(flow, STEPS[position - 1], None)


async def cancel(query: CallbackQuery, flow: Flow) -> None:
    await drop_buttons(query)
    await _cancel(flow)


async def use_buttons(_message: Message, flow: Flow) -> None:
    await flow.send(_("reg.use_buttons"))
    await ask(flow, await flow.state.get_state(), None)


async def my_applications(
    _message: Message, flow: Flow, patient: PatientDTO, applications: ApplicationService
) -> None:
    await flow.leave_chat_with_doctor()
    items = await applications.for_patient(patient.id)
    if not items:
        await flow.send(_("app.none"))
        return
    await flow.send(
        _("app.list_title"), reply_markup=kb.my_applications(items, flow.catalog, flow.locale)
    )


async def list_again(
    query: CallbackQuery, flow: Flow, patient: PatientDTO, applications: ApplicationService
) -> None:
    items = await applications.for_patient(patient.id)
    await edit_or_send(
        query, _("app.list_title"), kb.my_applications(items, flow.catalog, flow.locale)
    )


async def list_page(
    query: CallbackQuery,
    callback_data: AppListPageCb,
    flow: Flow,
    patient: PatientDTO,
    applications: ApplicationService,
) -> None:
    items = await applications.for_patient(patient.id)
    markup = kb.my_applications(items, flow.catalog, flow.locale, callback_data.page)
    await edit_or_send(query, _("app.list_title"), markup)


async def open_application(
    query: CallbackQuery,
    callback_data: AppCb,
    flow: Flow,
    patient: PatientDTO,
    applications: ApplicationService,
    callback_answer: CallbackAnswer,
) -> None:
    try:
        item = await applications.get(callback_data.id, patient_id=patient.id)
    except ActionRefusedError:
        alert(callback_answer, _("app.not_found"))
        return
    events = await applications.timeline(item.id)
    consultation = await applications.consultation_for(item.id)
    text = _application_text(item, events, consultation, patient.time_zone)
    await edit_or_send(query, text, kb.application(item))


async def withdraw_ask(
    query: CallbackQuery,
    callback_data: AppCb,
    patient: PatientDTO,
    applications: ApplicationService,
    callback_answer: CallbackAnswer,
) -> None:
    try:  # refused at this first press once the application moved on (or is not theirs)
        item = await applications.get(callback_data.id, patient_id=patient.id)
    except ActionRefusedError:
        alert(callback_answer, _("app.not_found"))
        return
    if not item.may_withdraw:
        alert(callback_answer, _("app.cannot_withdraw"))
        return
    await edit_or_send(query, _("app.withdraw_question"), kb.withdraw_confirm(item.id))


async def withdraw(
    query: CallbackQuery,
    callback_data: AppCb,
    patient: PatientDTO,
    applications: ApplicationService,
    callback_answer: CallbackAnswer,
) -> None:
    try:
        item = await applications.withdraw(patient.id, callback_data.id)
    except ActionRefusedError as refused:
        callback_answer.text = (
            _("app.not_found") if refused.reason is Refused.NOT_FOUND else _("app.cannot_withdraw")
        )
        callback_answer.show_alert = True
        return
    await edit_or_send(query, _("app.withdrawn").format(id=item.id), None)


async def time_answer(
    query: CallbackQuery,
    callback_data: TimeAnswerCb,
    patient: PatientDTO,
    applications: ApplicationService,
    callback_answer: CallbackAnswer,
) -> None:
    confirm = callback_data.answer is TimeAnswer.CONFIRM
    try:
        await applications.answer_time(patient.id, callback_data.consultation, confirm)
    except ActionRefusedError as refused:
        callback_answer.text = (
            _("app.not_found") if refused.reason is Refused.NOT_FOUND else _("common.stale_button")
        )
        callback_answer.show_alert = True
        return
    await drop_buttons(query)
    callback_answer.text = _("app.time_confirmed") if confirm else _("app.time_other_sent")
    if isinstance(query.message, Message):
        await query.message.answer(callback_answer.text)


async def conclusions(
    _message: Message, flow: Flow, patient: PatientDTO, applications: ApplicationService
) -> None:
    await flow.leave_chat_with_doctor()
    items = await applications.conclusions(patient.id)
    if not items:
        await flow.send(_("conclusion.none"))
        return
    await flow.send(
        _("conclusion.list_title"), reply_markup=kb.conclusions(items, patient.time_zone)
    )


async def conclusions_page(
    query: CallbackQuery,
    callback_data: ConclusionPageCb,
    patient: PatientDTO,
    applications: ApplicationService,
) -> None:
    items = await applications.conclusions(patient.id)
    markup = kb.conclusions(items, patient.time_zone, callback_data.page)
    await edit_or_send(query, _("conclusion.list_title"), markup)


async def open_conclusion(
    _query: CallbackQuery,
    callback_data: ConclusionCb,
    flow: Flow,
    patient: PatientDTO,
    applications: ApplicationService,
    callback_answer: CallbackAnswer,
    bot: Bot,
) -> None:
    try:
        item = await applications.conclusion(patient.id, callback_data.id)
    except ActionRefusedError:
        alert(callback_answer, _("app.not_found"))
        return
    header = _("conclusion.header").format(
        date=format_local_date(item.created_at, patient.time_zone), author=escape(item.author)
    )
    await flow.send(header + ("\n\n" + escape(item.text) if item.text else ""))
    if item.telegram_file_id:
        await bot.send_document(flow.chat_id, item.telegram_file_id)


async def ask(flow: Flow, step: object, query: CallbackQuery | None) -> None:
    """Ask for ``step`` of the application dialogue (editing the message when from a button)."""
    name = getattr(step, "state", step)
    await flow.state.set_state(name)  # type: ignore[arg-type]
    draft = await load_application(flow.state)
    center = flow.catalog.center(draft.center_code or "")
    markup: InlineKeyboardMarkup | None
    if name == ApplicationForm.center.state:
        text, markup = _("app.ask_center"), kb.centers(flow.catalog, flow.locale)
    elif name == ApplicationForm.group.state and center is not None:
        text = _("app.ask_group").format(center=escape(center.full_name.get(flow.locale)))
        markup = kb.groups(center, flow.locale)
    elif name == ApplicationForm.diagnosis.state:
        text, markup = _("app.ask_diagnosis"), kb.text_step()
    elif name == ApplicationForm.complaints.state:
        text, markup = _("app.ask_complaints"), kb.text_step()
    elif name == ApplicationForm.checklist.state and center is not None:
        text, missing = await checklist_text(flow, draft)
        markup = kb.checklist(bool(missing))
    elif name == ApplicationForm.summary.state and center is not None:
        text, markup = await summary_text(flow, draft), kb.summary()
    else:
        await flow.state.clear()
        return
    if query is not None and isinstance(query.message, Message):
        await edit_or_send(query, text, markup)
    else:
        await flow.send(text, reply_markup=markup)


def _application_text(
    item: ApplicationDTO, events: list[EventDTO], consultation: ConsultationDTO | None, tz: str
) -> str:
    """An application's status, its timeline and its consultation time, in the patient's zone."""
    zone = ZoneInfo(tz)
    lines = [_("app.details").format(id=item.id, status=status_name(item.status))]
    for event in events:
        line = f"• {event.at.astimezone(zone):%d.%m.%Y %H:%M} — {status_name(event.status)}"
        if event.note:
            line += f": {escape(event.note)}"
        lines.append(line)
    if events:  # the events' times above are the patient's own
        lines.append(_("common.times_in_zone").format(zone=tz))
    if consultation is not None:
        local = consultation.starts_at.astimezone(zone)
        lines.append(_("app.consultation_at").format(time=f"{local:%d.%m.%Y %H:%M}", tz=tz))
    return "\n".join(lines)


async def checklist_text(flow: Flow, draft: ApplicationDraft) -> tuple[str, list[str]]:
    center = flow.catalog.center(draft.center_code or "")
    assert center is not None
    assert flow.documents is not None and flow.patient_id is not None
    present = await flow.documents.types_present(flow.patient_id)
    lines = [_("app.checklist_title").format(center=escape(center.short_name.get(flow.locale)))]
    missing = []
    for code in center.required_documents_for(draft.group_code):
        doc_type = flow.catalog.document_type(code)
        name = escape(doc_type.name.get(flow.locale) if doc_type else code)
        if code in present:
            lines.append(f"✅ {name}")
        else:
            missing.append(code)
            lines.append(f"❌ {name}")
    for code in center.optional_documents:
        doc_type = flow.catalog.document_type(code)
        name = escape(doc_type.name.get(flow.locale) if doc_type else code)
        mark = "✅" if code in present else "▫️"
        lines.append(f"{mark} {name} " + _("app.optional"))
    lines.append("")
    lines.append(_("app.checklist_missing") if missing else _("app.checklist_complete"))
    return "\n".join(lines), missing


async def summary_text(flow: Flow, draft: ApplicationDraft) -> str:
    patient = await flow.patients.get(flow.user_id)
    center = flow.catalog.center(draft.center_code or "")
    assert patient is not None and center is not None
    group = center.disease_group(draft.group_code or "")
    _checklist, missing = await checklist_text(flow, draft)
    text = _("app.summary").format(
        name=escape(patient.full_name),
        age=patient.age(flow.clock()),
        region=escape(region_name(flow.catalog, patient.region_code, flow.locale)),
        center=escape(center.short_name.get(flow.locale)),
        group=escape(group.name.get(flow.locale) if group else "—"),
        diagnosis=escape(draft.diagnosis or ""),
        complaints=escape(draft.complaints or ""),
    )
    if missing:
        names = []
        for code in missing:
            doc_type = flow.catalog.document_type(code)
            names.append(escape(doc_type.name.get(flow.locale) if doc_type else code))
        text += "\n\n" + _("app.summary_missing").format(documents=", ".join(names))
    return text


async def _submission(
    draft: ApplicationDraft, patient: PatientDTO, applications: ApplicationService
) -> Draft | None:
    """The dialogue's answers as the service takes them, with the documents still missing."""
    if None in (draft.center_code, draft.group_code, draft.diagnosis, draft.complaints):
        return None
    assert draft.center_code and draft.group_code and draft.diagnosis and draft.complaints
    missing = await applications.missing_documents(patient.id, draft.center_code, draft.group_code)
    return Draft(
        draft.center_code,
        draft.group_code,
        draft.diagnosis,
        draft.complaints,
        tuple(missing),
        referral_id=draft.referral_id,
    )


async def _free_text(flow: Flow, message: Message, limit: int, field: str) -> None:
    text = (message.text or "").strip()
    if len(text) > limit:
        await flow.send(_("app.too_long").format(limit=limit, length=len(text)))
        return
    if len(text) < 2:
        await flow.send(_("app.too_short"))
        return
    draft = await load_application(flow.state)
    setattr(draft, field, text)
    await save_application(flow.state, draft)
    following = ApplicationForm.complaints if field == "diagnosis" else ApplicationForm.checklist
    await ask(flow, following, None)


async def _cancel(flow: Flow) -> None:
    await flow.state.clear()
    await flow.send(_("app.cancelled"), reply_markup=menu_kb.main_menu())
