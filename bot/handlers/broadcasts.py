"""Broadcasts for coordinators: /broadcast writes a message (text, photo or document), previews
it as patients will see it, picks the audience, shows the count and, once confirmed, turns the
question into a live progress message with pause / resume / stop. The coordinators' parent
router lets only them in."""

from __future__ import annotations

import contextlib
import secrets

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from pydantic import BaseModel

from bot.callbacks import (
    BroadcastAction,
    BroadcastCb,
    BroadcastStep,
    BroadcastStepCb,
)
from bot.catalog import Catalog
from bot.fsm.states import BroadcastForm
from bot.handlers.flow import Flow
from bot.handlers.utils import drop_buttons, edit_or_send
from bot.i18n import N_, menu_texts
from bot.keyboards import broadcasts as kb
from bot.services.broadcasts import (
    UPCOMING_DAYS,
    Audience,
    AudienceKind,
    BroadcastError,
    BroadcastService,
    Content,
    ContentKind,
    Progress,
    Refusal,
)
from bot.views import audience_text, progress_text

REFUSAL_KEYS = {
    Refusal.NOT_FOUND: N_("broadcast.not_found"),
    Refusal.FINISHED: N_("broadcast.already_finished"),
    Refusal.NOT_PAUSED: N_("broadcast.not_paused"),
    Refusal.NOT_SENDING: N_("broadcast.not_sending"),
}
#: Audience kinds chosen by their button alone (the others ask for a region, center or days).
PLAIN_KINDS = frozenset({AudienceKind.ALL, AudienceKind.REGISTERED, AudienceKind.APPLIED})


class BroadcastDraft(BaseModel):
    """What the coordinator's dialogue has collected so far."""

    token: str
    kind: ContentKind | None = None
    text: str = ""
    file_id: str | None = None
    audience: AudienceKind | None = None
    value: str | int | None = None

    def content(self) -> Content | None:
        if self.kind is None:
            return None
        return Content(self.kind, self.text, self.file_id)

    def chosen(self) -> Audience | None:
        return None if self.audience is None else Audience(self.audience, self.value)


_KEY = "broadcast"


async def load_draft(flow: Flow) -> BroadcastDraft:
    raw = (await flow.state.get_data()).get(_KEY)
    return BroadcastDraft.model_validate(raw) if raw else BroadcastDraft(token=new_token())


async def save_draft(flow: Flow, draft: BroadcastDraft) -> None:
    await flow.state.update_data({_KEY: draft.model_dump(mode="json")})


def new_token() -> str:
    return secrets.token_hex(16)


def step(pressed: BroadcastStep) -> CallbackQueryFilter:
    """A button of the broadcast dialogue for this step."""
    return BroadcastStepCb.filter(F.step == pressed)


def kind(*kinds: AudienceKind) -> CallbackQueryFilter:
    """An audience kind button of one of these kinds."""
    return BroadcastStepCb.filter((F.step == BroadcastStep.KIND) & F.code.in_(kinds))


def on(action: BroadcastAction) -> CallbackQueryFilter:
    """A button of a progress message with this action."""
    return BroadcastCb.filter(F.action == action)


def router(i18n: I18n) -> Router:
    """Only registration; the coordinators' parent router carries the role filter."""
    r = Router(name="broadcasts")
    # a menu button or another command leaves the dialogue (to the router that has it)
    not_menu = ~F.text.in_(menu_texts(i18n)) & ~F.text.startswith("/")
    message, button = r.message.register, r.callback_query.register
    message(start, Command("broadcast"))
    # the message
    message(text_content, BroadcastForm.content, F.text, not_menu)
    message(photo_content, BroadcastForm.content, F.photo)
    message(document_content, BroadcastForm.content, F.document)
    message(unsupported_content, BroadcastForm.content, not_menu)
    message(use_buttons, StateFilter(BroadcastForm.audience, BroadcastForm.confirm), not_menu)
    # dialogue buttons
    in_dialogue = StateFilter(BroadcastForm)
    from_sub_list = BroadcastStepCb.filter((F.step == BroadcastStep.BACK) & (F.value == 1))
    button(cancel, in_dialogue, step(BroadcastStep.CANCEL))
    button(back_to_audience, BroadcastForm.confirm, step(BroadcastStep.BACK))
    button(back_to_audience, in_dialogue, from_sub_list)
    button(back_to_content, in_dialogue, step(BroadcastStep.BACK))
    button(to_audience, BroadcastForm.content, step(BroadcastStep.AUDIENCE))
    button(ask_region, BroadcastForm.audience, kind(AudienceKind.REGION))
    button(ask_center, BroadcastForm.audience, kind(AudienceKind.CENTER))
    button(ask_days, BroadcastForm.audience, kind(AudienceKind.UPCOMING))
    button(plain_kind, BroadcastForm.audience, kind(*PLAIN_KINDS))
    button(region_chosen, BroadcastForm.audience, step(BroadcastStep.REGION))
    button(center_chosen, BroadcastForm.audience, step(BroadcastStep.CENTER))
    days = BroadcastStepCb.filter((F.step == BroadcastStep.DAYS) & F.value.in_(UPCOMING_DAYS))
    button(days_chosen, BroadcastForm.audience, days)
    button(stale_choice, BroadcastForm.audience, step(BroadcastStep.KIND))
    button(stale_choice, BroadcastForm.audience, step(BroadcastStep.DAYS))
    button(send, BroadcastForm.confirm, step(BroadcastStep.CONFIRM))
    button(confirm_again, step(BroadcastStep.CONFIRM))
    button(stale_step, BroadcastStepCb.filter())
    # the progress message: pause, resume and refresh edit it; "stop" asks in a message of its
    # own (the progress message keeps being edited meanwhile), and the answer edits both
    button(pause, on(BroadcastAction.PAUSE))
    button(resume, on(BroadcastAction.RESUME))
    button(refresh, on(BroadcastAction.REFRESH))
    button(stop_question, on(BroadcastAction.CANCEL))
    button(stop, on(BroadcastAction.CANCEL_YES))
    button(keep, on(BroadcastAction.KEEP))
    return r


async def start(_message: Message, flow: Flow) -> None:
    await flow.state.clear()
    await flow.state.set_state(BroadcastForm.content)
    await save_draft(flow, BroadcastDraft(token=new_token()))
    await flow.send(_("broadcast.ask_content"), reply_markup=kb.content_step(has_content=False))


# --- the message ------------------------------------------------------------------------------


async def text_content(message: Message, flow: Flow) -> None:
    await take_content(message, flow, ContentKind.TEXT, None)


async def photo_content(message: Message, flow: Flow) -> None:
    assert message.photo
    await take_content(message, flow, ContentKind.PHOTO, message.photo[-1].file_id)


async def document_content(message: Message, flow: Flow) -> None:
    assert message.document is not None
    await take_content(message, flow, ContentKind.DOCUMENT, message.document.file_id)


async def unsupported_content(_message: Message, flow: Flow) -> None:
    draft = await load_draft(flow)
    await flow.send(
        _("broadcast.unsupported_content"),
        reply_markup=kb.content_step(has_content=draft.kind is not None),
    )


async def use_buttons(_message: Message, flow: Flow, broadcasts: BroadcastService) -> None:
    await flow.send(_("broadcast.use_buttons"))
    draft = await load_draft(flow)
    if await flow.state.get_state() == BroadcastForm.confirm.state:
        await ask_confirm(flow, draft, broadcasts, None)
    else:
        await flow.send(_("broadcast.ask_audience"), reply_markup=kb.audience_menu())


# --- dialogue buttons -------------------------------------------------------------------------


async def cancel(query: CallbackQuery, flow: Flow) -> None:
    await flow.state.clear()
    await show(query, _("broadcast.cancelled"), None)


async def back_to_audience(query: CallbackQuery, flow: Flow) -> None:
    """ "Back" from the confirmation or from a sub-list (regions, centers, days)."""
    await flow.state.set_state(BroadcastForm.audience)
    await show(query, _("broadcast.ask_audience"), kb.audience_menu())


async def back_to_content(query: CallbackQuery, flow: Flow) -> None:
    draft = await load_draft(flow)
    await flow.state.set_state(BroadcastForm.content)
    await show(
        query, _("broadcast.ask_content_again"), kb.content_step(has_content=bool(draft.kind))
    )


async def to_audience(query: CallbackQuery, flow: Flow) -> None:
    draft = await load_draft(flow)
    if draft.kind is None:
        await show(query, _("broadcast.ask_content"), kb.content_step(has_content=False))
        return
    await flow.state.set_state(BroadcastForm.audience)
    await show(query, _("broadcast.ask_audience"), kb.audience_menu())


async def ask_region(
    query: CallbackQuery, flow: Flow, broadcasts: BroadcastService, catalog: Catalog
) -> None:
    found = await broadcasts.regions_with_patients()
    text = _("broadcast.ask_region") if found else _("broadcast.no_regions")
    await show(query, text, kb.regions(found, catalog, flow.locale))


async def ask_center(query: CallbackQuery, flow: Flow, catalog: Catalog) -> None:
    await show(query, _("broadcast.ask_center"), kb.centers(catalog, flow.locale))


async def ask_days(query: CallbackQuery) -> None:
    await show(query, _("broadcast.ask_days"), kb.days())


async def plain_kind(
    query: CallbackQuery, callback_data: BroadcastStepCb, flow: Flow, broadcasts: BroadcastService
) -> None:
    await audience_chosen(query, flow, broadcasts, Audience(AudienceKind(callback_data.code)))


async def region_chosen(
    query: CallbackQuery,
    callback_data: BroadcastStepCb,
    flow: Flow,
    broadcasts: BroadcastService,
    catalog: Catalog,
    callback_answer: CallbackAnswer,
) -> None:
    if catalog.region(callback_data.value) is None:
        callback_answer.text = _("common.stale_button")
        return
    chosen = Audience(AudienceKind.REGION, callback_data.value)
    await audience_chosen(query, flow, broadcasts, chosen)


async def center_chosen(
    query: CallbackQuery,
    callback_data: BroadcastStepCb,
    flow: Flow,
    broadcasts: BroadcastService,
    catalog: Catalog,
    callback_answer: CallbackAnswer,
) -> None:
    if catalog.center(callback_data.code) is None:
        callback_answer.text = _("common.stale_button")
        return
    chosen = Audience(AudienceKind.CENTER, callback_data.code)
    await audience_chosen(query, flow, broadcasts, chosen)


async def days_chosen(
    query: CallbackQuery, callback_data: BroadcastStepCb, flow: Flow, broadcasts: BroadcastService
) -> None:
    chosen = Audience(AudienceKind.UPCOMING, callback_data.value)
    await audience_chosen(query, flow, broadcasts, chosen)


async def stale_choice(_query: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    """An audience kind or a number of days this bot does not offer (any more)."""
    callback_answer.text = _("common.stale_button")


async def send(
    query: CallbackQuery,
    flow: Flow,
    broadcasts: BroadcastService,
    callback_answer: CallbackAnswer,
    catalog: Catalog,
) -> None:
    draft = await load_draft(flow)
    content, audience = draft.content(), draft.chosen()
    if content is None or audience is None:
        await flow.state.set_state(BroadcastForm.content)
        await show(query, _("broadcast.ask_content"), kb.content_step(has_content=False))
        return
    message_id = query.message.message_id if isinstance(query.message, Message) else None
    progress, created = await broadcasts.start(
        token=draft.token,
        author_id=flow.user_id,
        chat_id=flow.chat_id,
        message_id=message_id,
        content=content,
        audience=audience,
    )
    await flow.state.clear()
    if not created:
        callback_answer.text = _("broadcast.already_started")
    await show(query, progress_text(progress, catalog, flow.locale), kb.progress(progress))


async def confirm_again(_query: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    """ "Send" pressed again (a double click): its message is the progress message now, so its
    buttons stay."""
    callback_answer.show_alert = True
    callback_answer.text = _("broadcast.already_started")


async def stale_step(query: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    """A button of a dialogue that is over."""
    callback_answer.show_alert = True
    callback_answer.text = _("common.stale_button")
    await drop_buttons(query)


# --- the progress message ---------------------------------------------------------------------


async def pause(
    query: CallbackQuery,
    callback_data: BroadcastCb,
    flow: Flow,
    broadcasts: BroadcastService,
    catalog: Catalog,
    callback_answer: CallbackAnswer,
) -> None:
    try:
        found = await broadcasts.pause(callback_data.broadcast, flow.user_id)
    except BroadcastError as refused:
        await refuse(query, callback_data, flow, broadcasts, catalog, callback_answer, refused)
        return
    callback_answer.text = _("broadcast.paused")
    await show_progress(flow, found, catalog, query)


async def resume(
    query: CallbackQuery,
    callback_data: BroadcastCb,
    flow: Flow,
    broadcasts: BroadcastService,
    catalog: Catalog,
    callback_answer: CallbackAnswer,
) -> None:
    try:
        found = await broadcasts.resume(callback_data.broadcast, flow.user_id)
    except BroadcastError as refused:
        await refuse(query, callback_data, flow, broadcasts, catalog, callback_answer, refused)
        return
    callback_answer.text = _("broadcast.resumed")
    await show_progress(flow, found, catalog, query)


async def refresh(
    query: CallbackQuery,
    callback_data: BroadcastCb,
    flow: Flow,
    broadcasts: BroadcastService,
    catalog: Catalog,
    callback_answer: CallbackAnswer,
) -> None:
    try:
        found = await broadcasts.own_progress(callback_data.broadcast, flow.user_id, live=True)
    except BroadcastError as refused:
        await refuse(query, callback_data, flow, broadcasts, catalog, callback_answer, refused)
        return
    await show_progress(flow, found, catalog, query)


async def stop_question(
    query: CallbackQuery,
    callback_data: BroadcastCb,
    flow: Flow,
    broadcasts: BroadcastService,
    catalog: Catalog,
    callback_answer: CallbackAnswer,
) -> None:
    try:
        found = await broadcasts.own_progress(callback_data.broadcast, flow.user_id, live=True)
    except BroadcastError as refused:
        await refuse(query, callback_data, flow, broadcasts, catalog, callback_answer, refused)
        return
    await flow.send(
        _("broadcast.stop_question").format(id=found.id, left=found.left),
        reply_markup=kb.stop_confirm(found.id),
    )


async def stop(
    query: CallbackQuery,
    callback_data: BroadcastCb,
    flow: Flow,
    broadcasts: BroadcastService,
    catalog: Catalog,
    callback_answer: CallbackAnswer,
) -> None:
    """ "Yes, stop" under the stop question: the question says so, the progress message shows
    it."""
    try:
        found = await broadcasts.cancel(callback_data.broadcast, flow.user_id)
    except BroadcastError as refused:
        await refuse_question(
            query, callback_data, flow, broadcasts, catalog, callback_answer, refused
        )
        return
    callback_answer.text = _("broadcast.stopped")
    await show(query, _("broadcast.stopped_note").format(id=found.id), None)
    await show_progress(flow, found, catalog, None)


async def keep(
    query: CallbackQuery,
    callback_data: BroadcastCb,
    flow: Flow,
    broadcasts: BroadcastService,
    catalog: Catalog,
    callback_answer: CallbackAnswer,
) -> None:
    """ "No, go on" under the stop question."""
    try:
        found = await broadcasts.own_progress(callback_data.broadcast, flow.user_id, live=True)
    except BroadcastError as refused:
        await refuse_question(
            query, callback_data, flow, broadcasts, catalog, callback_answer, refused
        )
        return
    await show(query, _("broadcast.stop_kept").format(id=found.id), None)
    await show_progress(flow, found, catalog, None)


async def refuse(
    query: CallbackQuery,
    callback_data: BroadcastCb,
    flow: Flow,
    broadcasts: BroadcastService,
    catalog: Catalog,
    callback_answer: CallbackAnswer,
    refused: BroadcastError,
) -> None:
    """A button of the progress message refused: say why and show the numbers as they are."""
    current = await refused_progress(callback_data, flow, broadcasts, callback_answer, refused)
    if current is None:
        await drop_buttons(query)
    else:
        await show_progress(flow, current, catalog, query)


async def refuse_question(
    query: CallbackQuery,
    callback_data: BroadcastCb,
    flow: Flow,
    broadcasts: BroadcastService,
    catalog: Catalog,
    callback_answer: CallbackAnswer,
    refused: BroadcastError,
) -> None:
    """An answer to the stop question refused: the question loses its buttons, the progress
    message shows the numbers as they are."""
    current = await refused_progress(callback_data, flow, broadcasts, callback_answer, refused)
    await drop_buttons(query)
    if current is not None:
        await show_progress(flow, current, catalog, None)


async def refused_progress(
    callback_data: BroadcastCb,
    flow: Flow,
    broadcasts: BroadcastService,
    callback_answer: CallbackAnswer,
    refused: BroadcastError,
) -> Progress | None:
    """Say why (an alert) and return the broadcast as it is now, if it is still the user's."""
    callback_answer.text = _(REFUSAL_KEYS[refused.reason])
    callback_answer.show_alert = True
    if refused.progress is not None or refused.reason is Refusal.NOT_FOUND:
        return refused.progress
    return await broadcasts.own_progress(callback_data.broadcast, flow.user_id)


async def show_progress(
    flow: Flow, found: Progress, catalog: Catalog, query: CallbackQuery | None
) -> None:
    """Put the current numbers on the progress message (the one pressed, or found by id)."""
    text, markup = progress_text(found, catalog, flow.locale), kb.progress(found)
    if query is not None:
        await show(query, text, markup)
        return
    if found.message_id is None:
        return
    # unchanged, or too old to edit: the numbers are there already or cannot be
    with contextlib.suppress(TelegramBadRequest):
        await flow.bot.edit_message_text(
            text=text, chat_id=found.chat_id, message_id=found.message_id, reply_markup=markup
        )


async def take_content(
    message: Message, flow: Flow, kind: ContentKind, file_id: str | None
) -> None:
    """Keep the message (as HTML, formatting included) and show the preview, or say why not."""
    draft = await load_draft(flow)
    plain = message.text if kind is ContentKind.TEXT else message.caption
    content = Content(kind, message.html_text if plain else "", file_id)
    if len(plain or "") > content.limit:
        key = (
            N_("broadcast.text_too_long")
            if kind is ContentKind.TEXT
            else N_("broadcast.caption_too_long")
        )
        await flow.send(
            _(key).format(length=len(plain or ""), limit=content.limit),
            reply_markup=kb.content_step(has_content=draft.kind is not None),
        )
        return
    draft.kind, draft.text, draft.file_id = kind, content.text, file_id
    await save_draft(flow, draft)
    await flow.send(_("broadcast.preview_title"))
    await send_preview(flow.bot, flow.chat_id, content)
    await flow.send(_("broadcast.preview_done"), reply_markup=kb.content_step(has_content=True))


async def send_preview(bot: Bot, chat_id: int, content: Content) -> None:
    """Exactly what the patients will get (the same call the outbox makes)."""
    caption = content.text or None
    if content.kind is ContentKind.PHOTO:
        assert content.file_id is not None
        await bot.send_photo(chat_id, content.file_id, caption=caption, parse_mode="HTML")
    elif content.kind is ContentKind.DOCUMENT:
        assert content.file_id is not None
        await bot.send_document(chat_id, content.file_id, caption=caption, parse_mode="HTML")
    else:
        await bot.send_message(chat_id, content.text, parse_mode="HTML")


async def audience_chosen(
    query: CallbackQuery, flow: Flow, broadcasts: BroadcastService, audience: Audience
) -> None:
    draft = await load_draft(flow)
    draft.audience, draft.value = audience.kind, audience.value
    await save_draft(flow, draft)
    await ask_confirm(flow, draft, broadcasts, query)


async def ask_confirm(
    flow: Flow, draft: BroadcastDraft, broadcasts: BroadcastService, query: CallbackQuery | None
) -> None:
    audience = draft.chosen()
    if audience is None:
        await flow.state.set_state(BroadcastForm.audience)
        await flow.send(_("broadcast.ask_audience"), reply_markup=kb.audience_menu())
        return
    await flow.state.set_state(BroadcastForm.confirm)
    counted = await broadcasts.count(audience)
    lines = [
        _("broadcast.confirm").format(
            audience=audience_text(audience, flow.catalog, flow.locale), count=counted.recipients
        )
    ]
    if counted.unreachable:
        lines.append(_("broadcast.confirm_unreachable").format(count=counted.unreachable))
    if not counted.recipients:
        lines.append(_("broadcast.confirm_nobody"))
    text, markup = "\n".join(lines), kb.confirm(counted.recipients)
    if query is not None:
        await show(query, text, markup)
    else:
        await flow.send(text, reply_markup=markup)


async def show(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Edit the message the button was on (unchanged content is fine: a second press of the
    same button); a message too old to edit gets a new one."""
    await edit_or_send(query, text, markup)
