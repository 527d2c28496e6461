"""Registration: consent, full name, birth date, phone, region and time zone, summary."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.callbacks import (
    ConsentAction,
    ConsentCb,
    RegAction,
    RegionPageCb,
    RegionPickCb,
    RegNavCb,
    SummaryAction,
    SummaryCb,
    TimeZonePickCb,
)
from bot.config import Settings
from bot.fsm.data import Mode, RegistrationDraft, load_draft, save_draft
from bot.fsm.states import Registration
from bot.handlers.flow import Flow
from bot.handlers.utils import drop_buttons, edit_markup
from bot.i18n import N_, menu_texts, variants
from bot.keyboards import menu as menu_kb
from bot.keyboards import registration as kb
from bot.messengers.identity import current_messenger
from bot.services.clock import EARLIEST_ZONE, Clock, local_date
from bot.services.patients import AlreadyRegisteredError, NewPatient
from bot.services.validation import InputProblem, parse_birth_date, parse_full_name, parse_phone

MAX_REGION_MATCHES = 8
PROBLEMS = {
    "name_digits": N_("problem.name_digits"),
    "name_too_long": N_("problem.name_too_long"),
    "name_symbols": N_("problem.name_symbols"),
    "name_short": N_("problem.name_short"),
    "date_format": N_("problem.date_format"),
    "date_impossible": N_("problem.date_impossible"),
    "date_future": N_("problem.date_future"),
    "date_too_old": N_("problem.date_too_old"),
    "phone_invalid": N_("problem.phone_invalid"),
}


def router(i18n: I18n) -> Router:
    r = Router(name="registration")
    # A main-menu button is never an answer to a step: it goes on to its own handler.
    r.message.filter(~F.text.in_(menu_texts(i18n)))
    consent = Registration.consent
    r.callback_query.register(full_consent, consent, _consent(ConsentAction.FULL_TEXT))
    r.callback_query.register(short_consent, consent, _consent(ConsentAction.SHORT_TEXT))
    r.callback_query.register(decline_consent, consent, _consent(ConsentAction.DECLINE))
    r.callback_query.register(consent_given, consent, _consent(ConsentAction.ACCEPT))
    # navigation: back, cancel, resume/restart
    in_registration = StateFilter(Registration)
    r.callback_query.register(back, in_registration, _nav(RegAction.BACK))
    r.callback_query.register(cancel_ask, in_registration, _nav(RegAction.CANCEL))
    r.callback_query.register(cancel_yes, in_registration, _nav(RegAction.CANCEL_YES))
    r.callback_query.register(cancel_no, in_registration, _nav(RegAction.CANCEL_NO))
    r.callback_query.register(resume, in_registration, _nav(RegAction.RESUME))
    r.callback_query.register(restart, in_registration, _nav(RegAction.RESTART))
    r.message.register(phone_back, Registration.phone, F.text.in_(variants(i18n, "btn.back")))
    r.message.register(phone_cancel, Registration.phone, F.text.in_(variants(i18n, "btn.cancel")))
    # fields
    r.message.register(full_name, Registration.full_name, F.text)
    r.message.register(birth_date, Registration.birth_date, F.text)
    r.message.register(phone_contact, Registration.phone, F.contact)
    r.message.register(phone_typed, Registration.phone, F.text)
    r.message.register(region_typed, Registration.region, F.text)
    r.callback_query.register(region_page, Registration.region, RegionPageCb.filter())
    r.callback_query.register(region_pick, Registration.region, RegionPickCb.filter())
    r.callback_query.register(time_zone_pick, Registration.time_zone, TimeZonePickCb.filter())
    # summary
    r.callback_query.register(
        summary_edit,
        Registration.summary,
        SummaryCb.filter((F.action == SummaryAction.EDIT) & F.field.is_not(None)),
    )
    r.callback_query.register(
        summary_confirm, Registration.summary, SummaryCb.filter(F.action == SummaryAction.CONFIRM)
    )
    # anything else during registration: say what is expected, ask again
    r.message.register(
        not_text,
        StateFilter(Registration.full_name, Registration.birth_date, Registration.region),
    )
    r.message.register(phone_other, Registration.phone)
    r.message.register(use_buttons, StateFilter(Registration))
    return r


def _consent(action: ConsentAction) -> CallbackQueryFilter:
    return ConsentCb.filter(F.action == action)


def _nav(action: RegAction) -> CallbackQueryFilter:
    return RegNavCb.filter(F.action == action)


# --- consent (the referral activation asks it too, through answer_consent) -------------------


async def full_consent(query: CallbackQuery) -> None:
    await _consent_text(query, full=True)


async def short_consent(query: CallbackQuery) -> None:
    await _consent_text(query, full=False)


async def _consent_text(query: CallbackQuery, *, full: bool) -> None:
    assert isinstance(query.message, Message)
    text = (
        _("consent.full").format(messenger=current_messenger().label)
        if full
        else _("consent.short")
    )
    await query.message.edit_text(text, reply_markup=kb.consent(full))


async def decline_consent(query: CallbackQuery, flow: Flow) -> None:
    """Declined: nothing was stored, the dialogue ends."""
    assert isinstance(query.message, Message)
    await flow.state.clear()
    await query.message.edit_text(_("consent.declined"))


async def accept_consent(query: CallbackQuery, flow: Flow, settings: Settings) -> RegistrationDraft:
    """Accepted: the version and moment go into the draft, which is returned so that the
    caller asks its next step."""
    assert isinstance(query.message, Message)
    draft = await load_draft(flow.state)
    draft.consent_version = settings.consent_version
    draft.consent_at = flow.clock()
    await save_draft(flow.state, draft)
    await query.message.edit_text(_("consent.accepted").format(version=settings.consent_version))
    return draft


async def answer_consent(
    query: CallbackQuery, callback_data: ConsentCb, flow: Flow, settings: Settings
) -> RegistrationDraft | None:
    """Any consent button, for a dialogue that registers one handler for all of them (the
    referral activation); the draft when consent was given, else None."""
    if callback_data.action is ConsentAction.ACCEPT:
        return await accept_consent(query, flow, settings)
    if callback_data.action is ConsentAction.DECLINE:
        await decline_consent(query, flow)
    else:
        await _consent_text(query, full=callback_data.action is ConsentAction.FULL_TEXT)
    return None


async def consent_given(query: CallbackQuery, flow: Flow, settings: Settings) -> None:
    draft = await accept_consent(query, flow, settings)
    await flow.ask(Registration.full_name, draft)


# --- navigation ------------------------------------------------------------------------------


async def back(query: CallbackQuery, flow: Flow) -> None:
    await drop_buttons(query)
    await flow.back()


async def cancel_ask(query: CallbackQuery, flow: Flow) -> None:
    await drop_buttons(query)
    await flow.ask_cancel()


async def cancel_yes(query: CallbackQuery, flow: Flow) -> None:
    await drop_buttons(query)
    await flow.state.clear()
    await flow.send(_("reg.cancelled"), reply_markup=ReplyKeyboardRemove())


async def cancel_no(query: CallbackQuery, flow: Flow) -> None:
    await drop_buttons(query)
    draft = await load_draft(flow.state)
    await flow.ask(draft.resume_state or Registration.full_name, draft)


async def resume(query: CallbackQuery, flow: Flow) -> None:
    await drop_buttons(query)
    await flow.ask(await flow.state.get_state())


async def restart(query: CallbackQuery, flow: Flow) -> None:
    await drop_buttons(query)
    await flow.state.clear()
    await flow.welcome()


async def phone_back(_message: Message, flow: Flow) -> None:
    await flow.back()


async def phone_cancel(_message: Message, flow: Flow) -> None:
    await flow.ask_cancel()


# --- fields ----------------------------------------------------------------------------------


async def full_name(message: Message, flow: Flow) -> None:
    try:
        name = parse_full_name(message.text or "")
    except InputProblem as problem:
        await _refuse(flow, problem, Registration.full_name)
        return
    draft = await load_draft(flow.state)
    draft.full_name = name
    await flow.advance(draft, Registration.full_name)


async def birth_date(message: Message, flow: Flow, clock: Clock) -> None:
    try:
        # The region (so the zone) comes later: a date is in the future only once it is
        # after today everywhere (a baby born today in Kamchatka is born "tomorrow" in UTC).
        born = parse_birth_date(message.text or "", local_date(clock(), EARLIEST_ZONE))
    except InputProblem as problem:
        await _refuse(flow, problem, Registration.birth_date)
        return
    draft = await load_draft(flow.state)
    draft.birth_date = born
    await flow.advance(draft, Registration.birth_date)


async def phone_contact(message: Message, flow: Flow) -> None:
    contact = message.contact
    assert contact is not None and message.from_user is not None
    if contact.user_id != message.from_user.id:
        await flow.send(_("phone.not_own"), reply_markup=kb.phone_request())
        return
    try:
        phone = parse_phone(contact.phone_number)
    except InputProblem:
        # Telegram verified this number, even if libphonenumber does not know its range.
        digits = "".join(ch for ch in contact.phone_number if ch.isdigit())
        phone = "+" + digits
    await _phone_accepted(flow, phone, verified=True)


async def phone_typed(message: Message, flow: Flow) -> None:
    try:
        phone = parse_phone(message.text or "")
    except InputProblem as problem:
        await _refuse(flow, problem, Registration.phone)
        return
    await _phone_accepted(flow, phone, verified=False)


async def region_typed(message: Message, flow: Flow) -> None:
    matches = flow.catalog.search_regions(message.text or "", flow.locale)
    if len(matches) == 1:
        await _region_chosen(flow, matches[0].code)
    elif matches:
        await flow.send(
            _("region.several"),
            reply_markup=kb.region_matches(matches[:MAX_REGION_MATCHES], flow.locale),
        )
    else:
        await flow.send(_("region.not_found"))
        await flow.ask(Registration.region)


async def region_page(query: CallbackQuery, callback_data: RegionPageCb, flow: Flow) -> None:
    regions = flow.catalog.regions_by_name(flow.locale)
    draft = await load_draft(flow.state)
    draft.region_page = callback_data.page
    await save_draft(flow.state, draft)
    markup = kb.region_page(regions, callback_data.page, flow.locale)
    assert isinstance(query.message, Message)
    if query.message.text == _("reg.ask_region"):
        await edit_markup(query.message, markup)
    else:
        await query.message.edit_text(_("reg.ask_region"), reply_markup=markup)


async def region_pick(
    query: CallbackQuery, callback_data: RegionPickCb, flow: Flow, callback_answer: CallbackAnswer
) -> None:
    if flow.catalog.region(callback_data.code) is None:
        callback_answer.text = _("common.stale_button")
        return
    await drop_buttons(query)
    await _region_chosen(flow, callback_data.code)


async def time_zone_pick(
    query: CallbackQuery,
    callback_data: TimeZonePickCb,
    flow: Flow,
    callback_answer: CallbackAnswer,
) -> None:
    draft = await load_draft(flow.state)
    region = flow.catalog.region(callback_data.region)
    if (
        region is None
        or draft.region_code != region.code
        or not 0 <= callback_data.index < len(region.time_zones)
    ):
        callback_answer.text = _("common.stale_button")
        return
    await drop_buttons(query)
    draft.time_zone = region.time_zones[callback_data.index].tz
    await flow.advance(draft, Registration.time_zone)


# --- summary ---------------------------------------------------------------------------------


async def summary_edit(query: CallbackQuery, callback_data: SummaryCb, flow: Flow) -> None:
    assert callback_data.field is not None  # the filter
    await drop_buttons(query)
    await flow.start_edit(callback_data.field, Mode.SUMMARY_EDIT)


async def summary_confirm(
    query: CallbackQuery, flow: Flow, callback_answer: CallbackAnswer
) -> None:
    draft = await load_draft(flow.state)
    new = new_patient(draft)
    if new is None:
        await flow.ask(Registration.summary, draft)
        return
    try:
        await flow.patients.register(flow.user_id, new)
    except AlreadyRegisteredError:
        callback_answer.text = _("reg.already_registered")
    await drop_buttons(query)
    await flow.state.clear()
    await flow.send(_("reg.done"), reply_markup=menu_kb.main_menu())


# --- anything else during registration: say what is expected, ask again ----------------------


async def not_text(_message: Message, flow: Flow) -> None:
    await flow.send(_("reg.need_text"))
    await flow.ask(await flow.state.get_state())


async def phone_other(_message: Message, flow: Flow) -> None:
    await flow.send(_("phone.need_contact"))
    await flow.ask(Registration.phone)


async def use_buttons(_message: Message, flow: Flow) -> None:
    await flow.send(_("reg.use_buttons"))
    await flow.ask(await flow.state.get_state())


def new_patient(draft: RegistrationDraft) -> NewPatient | None:
    """The patient a complete draft describes (None: a step is missing); the referral's
    pre-filled profile is confirmed through it too."""
    if not draft.complete:
        return None
    assert draft.full_name and draft.birth_date and draft.phone and draft.time_zone
    assert draft.region_code is not None and draft.consent_at and draft.consent_version
    return NewPatient(
        full_name=draft.full_name,
        birth_date=draft.birth_date,
        phone=draft.phone,
        phone_verified=draft.phone_verified,
        region_code=draft.region_code,
        time_zone=draft.time_zone,
        consent_version=draft.consent_version,
        consent_at=draft.consent_at,
    )


async def _refuse(flow: Flow, problem: InputProblem, step: object) -> None:
    markup = kb.phone_request() if step is Registration.phone else kb.step_nav()
    await flow.send(_(PROBLEMS[problem.code]), reply_markup=markup)


async def _phone_accepted(flow: Flow, phone: str, *, verified: bool) -> None:
    draft = await load_draft(flow.state)
    draft.phone = phone
    draft.phone_verified = verified
    key = N_("phone.saved_verified") if verified else N_("phone.saved_unverified")
    await flow.send(_(key), reply_markup=ReplyKeyboardRemove())
    await flow.advance(draft, Registration.phone)


async def _region_chosen(flow: Flow, code: int) -> None:
    draft = await load_draft(flow.state)
    draft.region_code = code
    draft.time_zone = None
    await flow.advance(draft, Registration.region)
