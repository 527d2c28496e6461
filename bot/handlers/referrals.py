"""Referrals of attending doctors. Coordinators (behind their parent router's filter):
/template, a table sent as a file (or after /import) becomes pre-registered patients with
personal links, /relink issues a new link. Patients: /start ref_<code> → consent → their
contact (the phone must be the table's) → the pre-filled profile to confirm → the center's
documents checklist and the application."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from html import escape

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, CommandStart, Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    Message,
    ReplyKeyboardRemove,
    TelegramObject,
)
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.callbacks import MAX_NUMBER, ConsentCb, SummaryAction, SummaryCb
from bot.config import Settings
from bot.fsm.data import (
    ApplicationDraft,
    RegistrationDraft,
    load_draft,
    save_application,
    save_draft,
)
from bot.fsm.states import ApplicationForm, ReferralActivation, ReferralImport, Registration
from bot.handlers import applications as application_steps
from bot.handlers.flow import Flow
from bot.handlers.registration import answer_consent, new_patient
from bot.handlers.utils import drop_buttons
from bot.i18n import N_, menu_texts, variants
from bot.keyboards import menu as menu_kb
from bot.keyboards import registration as kb
from bot.messengers.identity import current_messenger
from bot.pseudonyms import tg
from bot.referral_sheets import ReportWriter, header, link, template_xlsx
from bot.services.audit import Actor
from bot.services.patients import AlreadyRegisteredError, PatientDTO
from bot.services.referrals import (
    LINK_PREFIX,
    MAX_ROWS,
    REQUIRED_COLUMNS,
    ImportSummary,
    LinkError,
    LinkRefused,
    ReferralDTO,
    ReferralService,
    RelinkError,
    RelinkRefused,
    TableError,
    TableRefused,
)
from bot.services.validation import InputProblem, parse_phone

logger = logging.getLogger("bot.referrals")

PROGRESS_EVERY_SECONDS = 2.0  # the progress message is edited at most this often
TABLE_KEYS = {
    TableRefused.NOT_TABLE: N_("referral.import_not_table"),
    TableRefused.EMPTY: N_("referral.import_empty"),
    TableRefused.HEADERS: N_("referral.import_headers"),
    TableRefused.TOO_MANY_ROWS: N_("referral.import_too_many_rows"),
}
LINK_KEYS = {
    LinkRefused.NOT_FOUND: N_("referral.link_not_found"),
    LinkRefused.USED: N_("referral.link_used"),
    LinkRefused.EXPIRED: N_("referral.link_expired"),
    LinkRefused.PHONE_MISMATCH: N_("referral.phone_mismatch"),
}
RELINK_KEYS = {
    RelinkRefused.NOT_FOUND: N_("referral.relink_not_found"),
    RelinkRefused.ACTIVATED: N_("referral.relink_activated"),
    RelinkRefused.PHONE_TAKEN: N_("referral.relink_phone_taken"),
}


class ActivatingReferral(Filter):
    """The registration draft came from a referral's link (its confirmation is ours)."""

    async def __call__(self, event: TelegramObject, state: FSMContext) -> bool:
        return (await load_draft(state)).referral_id is not None


# --- coordinators --------------------------------------------------------------------------------


def coordinator_router(i18n: I18n) -> Router:
    """Only registration; the coordinators' parent router carries the role filter."""
    r = Router(name="referrals_coordinator")
    # a menu button or another command leaves the upload step (to the router that has it)
    not_menu = ~F.text.in_(menu_texts(i18n)) & ~F.text.startswith("/")
    r.message.register(template, Command("template"))
    r.message.register(ask_file, Command("import"))
    r.message.register(table, StateFilter(None, ReferralImport.upload), F.document)
    r.message.register(not_a_file, ReferralImport.upload, not_menu)
    r.message.register(relink, Command("relink"))
    return r


async def template(message: Message, flow: Flow) -> None:
    data = template_xlsx(flow.catalog, flow.locale)
    await message.answer_document(
        BufferedInputFile(data, filename=_("referral.template_file_name")),
        caption=_("referral.template_caption"),
    )


async def ask_file(_message: Message, flow: Flow) -> None:
    await flow.state.set_state(ReferralImport.upload)
    await flow.send(_("referral.import_ask"))


async def table(
    message: Message,
    flow: Flow,
    bot: Bot,
    settings: Settings,
    referrals: ReferralService,
    coordinator: Actor,
) -> None:
    """A table sent (after /import or just so): its rows become referrals, with a report."""
    document = message.document
    assert document is not None
    if (document.file_size or 0) > settings.max_download_bytes:
        await flow.send(_("referral.import_too_big").format(limit=settings.max_download_mb))
        return
    data = await _download(bot, document.file_id)
    me = await bot.me()
    status = await message.answer(_("referral.import_started"))
    writer = ReportWriter(me.username or "")
    try:
        summary = await referrals.import_table(
            data, coordinator.telegram_id, writer, _Progress(status).update
        )
    except TableError as refused:
        await _edit(status, _table_refused_text(refused))
        return
    finally:
        if not writer.used:
            writer.discard()
    await flow.state.clear()
    await _edit(status, _import_done_text(summary, settings))
    await message.answer_document(
        BufferedInputFile(writer.finish(), filename=_("referral.report_file_name")),
        caption=_("referral.report_caption"),
    )


async def not_a_file(_message: Message, flow: Flow) -> None:
    await flow.send(_("referral.import_need_file"))


async def relink(
    _message: Message,
    command: CommandObject,
    flow: Flow,
    bot: Bot,
    settings: Settings,
    referrals: ReferralService,
    coordinator: Actor,
) -> None:
    """/relink <id> [phone]: a new link for a referral not activated yet."""
    parts = (command.args or "").split(maxsplit=1)
    number = parts[0].lstrip("#") if parts else ""
    # ASCII digits of an id a table can hold (a huge number would overflow the query)
    if not (number.isascii() and number.isdigit()) or int(number) > MAX_NUMBER:
        await flow.send(_("referral.relink_usage"))
        return
    try:
        phone = parse_phone(parts[1]) if len(parts) > 1 else None
    except InputProblem:
        await flow.send(_("referral.relink_bad_phone"))
        return
    try:
        referral, code = await referrals.relink(int(number), phone, by=coordinator)
    except RelinkError as refused:
        await flow.send(_(RELINK_KEYS[refused.reason]))
        return
    me = await bot.me()
    await flow.send(
        _("referral.relinked").format(
            id=referral.id,
            name=escape(referral.full_name),
            link=link(me.username or "", code),
            days=settings.referral_link_days,
        )
    )


async def _download(bot: Bot, file_id: str) -> bytes:
    file = await bot.get_file(file_id)
    buffer = await bot.download_file(file.file_path) if file.file_path else None
    return buffer.read() if buffer else b""


def _table_refused_text(refused: TableError) -> str:
    return _(TABLE_KEYS[refused.reason]).format(
        limit=MAX_ROWS,
        expected=escape(", ".join(header(c) for c in REQUIRED_COLUMNS)),
        missing=escape(", ".join(header(c) for c in refused.missing)),
    )


def _import_done_text(summary: ImportSummary, settings: Settings) -> str:
    return _("referral.import_done").format(
        created=summary.created,
        duplicates=summary.duplicates,
        rejected=summary.rejected,
        days=settings.referral_link_days,
    )


class _Progress:
    """Edits one message with the progress, never more often than every few seconds (the final
    report replaces it anyway). Without a trustworthy total only the rows done are shown."""

    def __init__(self, message: Message, clock: Callable[[], float] = time.monotonic) -> None:
        self._message = message
        self._clock = clock
        self._last = clock()

    async def update(self, done: int, total: int | None) -> None:
        now = self._clock()
        if now - self._last < PROGRESS_EVERY_SECONDS:
            return
        self._last = now
        if total is None:
            text = _("referral.import_progress_unknown").format(done=done)
        else:
            text = _("referral.import_progress").format(done=done, total=total)
        await _edit(self._message, text)


async def _edit(message: Message, text: str) -> None:
    try:
        await message.edit_text(text)
    except TelegramBadRequest:  # deleted meanwhile: the report still comes
        logger.debug("progress message %s not edited", message.message_id)


# --- patients: activation by the link -------------------------------------------------------------


def activation_router(i18n: I18n) -> Router:
    """Only registration. It comes before the plain /start; /cancel, /start, /help and the menu
    go on to the routers that have them (otherwise the activation would swallow them)."""
    r = Router(name="referrals_activation")
    not_menu = ~F.text.in_(menu_texts(i18n)) & ~F.text.startswith("/")
    message, button = r.message.register, r.callback_query.register
    message(open_link, CommandStart(deep_link=True, magic=F.args.startswith(LINK_PREFIX)))
    button(consent, ReferralActivation.consent, ConsentCb.filter())
    message(contact, ReferralActivation.contact, F.contact)
    message(contact_cancel, ReferralActivation.contact, F.text.in_(variants(i18n, "btn.back")))
    message(contact_cancel, ReferralActivation.contact, F.text.in_(variants(i18n, "btn.cancel")))
    message(help_, StateFilter(ReferralActivation), F.text.in_(variants(i18n, "menu.help")))
    message(help_, StateFilter(ReferralActivation), Command("help"))
    message(contact_other, ReferralActivation.contact, not_menu)
    message(consent_other, ReferralActivation.consent, not_menu)
    confirmed = SummaryCb.filter(F.action == SummaryAction.CONFIRM)
    button(confirm, Registration.summary, confirmed, ActivatingReferral())
    return r


async def open_link(
    _message: Message,
    command: CommandObject,
    flow: Flow,
    patient: PatientDTO | None,
    referrals: ReferralService,
) -> None:
    """/start ref_<code>: a new person gives their consent first, a patient goes on to their
    contact."""
    code = (command.args or "")[len(LINK_PREFIX) :]
    try:
        referral = await referrals.by_code(code)
    except LinkError as refused:
        logger.info("a referral link refused: %s (user %s)", refused.reason, tg(flow.user_id))
        await flow.state.clear()
        await flow.send(_link_refused(refused.reason), reply_markup=_menu_or_nothing(patient))
        return
    await flow.state.clear()
    await save_draft(flow.state, RegistrationDraft(referral_id=referral.id))
    if patient is None:
        await flow.send(_("referral.welcome"), reply_markup=ReplyKeyboardRemove())
        await flow.state.set_state(ReferralActivation.consent)
        await flow.send(_("consent.short"), reply_markup=kb.consent(full_text_shown=False))
    else:
        await flow.send(_("referral.welcome_registered"))
        await _ask_contact(flow)


async def consent(
    query: CallbackQuery, callback_data: ConsentCb, flow: Flow, settings: Settings
) -> None:
    if await answer_consent(query, callback_data, flow, settings) is not None:
        await _ask_contact(flow)


async def contact(
    message: Message, flow: Flow, patient: PatientDTO | None, referrals: ReferralService
) -> None:
    """The person's own contact, whose phone must be the referral's."""
    shared = message.contact
    assert shared is not None and message.from_user is not None
    if shared.user_id != message.from_user.id:
        await flow.send(_("phone.not_own"), reply_markup=kb.phone_request())
        return
    draft = await load_draft(flow.state)
    try:
        referral = await referrals.check_contact(draft.referral_id, shared.phone_number)
    except LinkError as refused:
        await flow.state.clear()
        await flow.send(_link_refused(refused.reason), reply_markup=_menu_or_nothing(patient))
        return
    await flow.send(_("referral.phone_matched"), reply_markup=ReplyKeyboardRemove())
    if patient is not None:
        await _attach(flow, referrals, referral, patient.id)
        return
    region = flow.catalog.region(referral.region_code)
    draft.full_name = referral.full_name
    draft.birth_date = referral.birth_date
    draft.phone = referral.phone
    draft.phone_verified = True
    draft.region_code = referral.region_code
    draft.time_zone = region.default_time_zone if region else None
    await save_draft(flow.state, draft)
    await flow.send(_("referral.check_profile"))
    await flow.ask(Registration.summary, draft)


async def contact_cancel(_message: Message, flow: Flow, patient: PatientDTO | None) -> None:
    await flow.state.clear()
    await flow.send(_("referral.cancelled"), reply_markup=_menu_or_nothing(patient))


async def help_(_message: Message, flow: Flow) -> None:
    """The help, then the step again (with its keyboard: the contact button is on it)."""
    await flow.send(_("help.text"))
    if await flow.state.get_state() == ReferralActivation.consent.state:
        await flow.send(_("consent.short"), reply_markup=kb.consent(full_text_shown=False))
    else:
        await _ask_contact(flow)


async def contact_other(_message: Message, flow: Flow) -> None:
    await flow.send(_("referral.need_contact"), reply_markup=kb.phone_request())


async def consent_other(_message: Message, flow: Flow) -> None:
    await flow.send(_("reg.use_buttons"))
    await flow.send(_("consent.short"), reply_markup=kb.consent(full_text_shown=False))


async def confirm(
    query: CallbackQuery,
    flow: Flow,
    referrals: ReferralService,
    callback_answer: CallbackAnswer,
) -> None:
    """The pre-filled profile confirmed: the patient is registered and the referral theirs."""
    draft = await load_draft(flow.state)
    new = new_patient(draft)
    if new is None or draft.referral_id is None:
        await flow.ask(Registration.summary, draft)
        return
    try:
        created = await referrals.activate_new_patient(draft.referral_id, flow.user_id, new)
    except AlreadyRegisteredError:
        callback_answer.text = _("reg.already_registered")
        await drop_buttons(query)
        await flow.state.clear()
        return
    except LinkError as refused:
        await drop_buttons(query)
        await flow.state.clear()
        await flow.send(_link_refused(refused.reason), reply_markup=ReplyKeyboardRemove())
        return
    await drop_buttons(query)
    await flow.send(_("reg.done"), reply_markup=menu_kb.main_menu())
    referral = await referrals.get(draft.referral_id)
    if referral is not None:
        await _to_checklist(flow, referral, created.id)


async def _attach(
    flow: Flow, referrals: ReferralService, referral: ReferralDTO, patient_id: int
) -> None:
    """A registered patient's contact matched: the referral is theirs, on to the checklist."""
    try:
        await referrals.activate_for_patient(referral.id, patient_id)
    except LinkError as refused:
        await flow.state.clear()
        await flow.send(_link_refused(refused.reason), reply_markup=menu_kb.main_menu())
        return
    await flow.send(_("referral.attached"), reply_markup=menu_kb.main_menu())
    await _to_checklist(flow, referral, patient_id)


async def _ask_contact(flow: Flow) -> None:
    await flow.state.set_state(ReferralActivation.contact)
    messenger = current_messenger().label
    await flow.send(
        _("referral.ask_contact").format(messenger=messenger), reply_markup=kb.phone_request()
    )


async def _to_checklist(flow: Flow, referral: ReferralDTO, patient_id: int) -> None:
    """The application from the referral: its center's documents checklist, then submit."""
    await flow.state.clear()
    await save_application(
        flow.state,
        ApplicationDraft(
            center_code=referral.center_code,
            group_code=referral.disease_group_code,
            diagnosis=referral.diagnosis,
            complaints=referral.comment or "—",
            referral_id=referral.id,
        ),
    )
    flow.patient_id = patient_id
    center = flow.catalog.center(referral.center_code)
    await flow.send(
        _("referral.documents_intro").format(
            center=escape(center.short_name.get(flow.locale) if center else referral.center_code)
        )
    )
    await application_steps.ask(flow, ApplicationForm.checklist, None)


def _menu_or_nothing(patient: PatientDTO | None) -> object:
    return menu_kb.main_menu() if patient else ReplyKeyboardRemove()


def _link_refused(reason: LinkRefused) -> str:
    """Said to the person opening the link, in the messenger they use ("номер вашего MAX")."""
    return _(LINK_KEYS[reason]).format(messenger=current_messenger().label)
