"""Broadcasts for coordinators (COORDINATOR_IDS): /broadcast writes a message (text, photo or
document), previews it as patients will see it, picks the audience, shows the count and, once
confirmed, turns the question into a live progress message with pause / resume / stop.
Everyone else falls through this router untouched."""

from __future__ import annotations

import contextlib
import secrets

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, StateFilter
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
from bot.handlers.schedule import Coordinator
from bot.handlers.utils import drop_buttons, edit_or_send
from bot.i18n import N_, menu_texts
from bot.keyboards import broadcasts as kb
from bot.services.broadcasts import (
    FINISHED,
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


def router(i18n: I18n) -> Router:
    r = Router(name="broadcasts")
    r.message.filter(Coordinator())
    r.callback_query.filter(Coordinator())
    # a menu button or another command leaves the dialogue (to the router that has it)
    not_menu = ~F.text.in_(menu_texts(i18n)) & ~F.text.startswith("/")

    @r.message(Command("broadcast"))
    async def start(_message: Message, flow: Flow) -> None:
        await flow.state.clear()
        await flow.state.set_state(BroadcastForm.content)
        await save_draft(flow, BroadcastDraft(token=new_token()))
        await flow.send(_("broadcast.ask_content"), reply_markup=kb.content_step(has_content=False))

    # --- the message --------------------------------------------------------------------------
    @r.message(BroadcastForm.content, F.text, not_menu)
    async def text_content(message: Message, flow: Flow) -> None:
        await take_content(message, flow, ContentKind.TEXT, None)

    @r.message(BroadcastForm.content, F.photo)
    async def photo_content(message: Message, flow: Flow) -> None:
        assert message.photo
        await take_content(message, flow, ContentKind.PHOTO, message.photo[-1].file_id)

    @r.message(BroadcastForm.content, F.document)
    async def document_content(message: Message, flow: Flow) -> None:
        assert message.document is not None
        await take_content(message, flow, ContentKind.DOCUMENT, message.document.file_id)

    @r.message(BroadcastForm.content, not_menu)
    async def unsupported_content(_message: Message, flow: Flow) -> None:
        draft = await load_draft(flow)
        await flow.send(
            _("broadcast.unsupported_content"),
            reply_markup=kb.content_step(has_content=draft.kind is not None),
        )

    @r.message(StateFilter(BroadcastForm.audience, BroadcastForm.confirm), not_menu)
    async def use_buttons(_message: Message, flow: Flow, broadcasts: BroadcastService) -> None:
        await flow.send(_("broadcast.use_buttons"))
        draft = await load_draft(flow)
        if await flow.state.get_state() == BroadcastForm.confirm.state:
            await ask_confirm(flow, draft, broadcasts, None)
        else:
            await flow.send(_("broadcast.ask_audience"), reply_markup=kb.audience_menu())

    # --- dialogue buttons ---------------------------------------------------------------------
    @r.callback_query(
        StateFilter(BroadcastForm), BroadcastStepCb.filter(F.step == BroadcastStep.CANCEL)
    )
    async def cancel(query: CallbackQuery, flow: Flow) -> None:
        await flow.state.clear()
        await show(query, _("broadcast.cancelled"), None)

    @r.callback_query(
        StateFilter(BroadcastForm), BroadcastStepCb.filter(F.step == BroadcastStep.BACK)
    )
    async def back(query: CallbackQuery, callback_data: BroadcastStepCb, flow: Flow) -> None:
        current = await flow.state.get_state()
        if current == BroadcastForm.confirm.state or callback_data.value == 1:
            await flow.state.set_state(BroadcastForm.audience)
            await show(query, _("broadcast.ask_audience"), kb.audience_menu())
            return
        draft = await load_draft(flow)
        await flow.state.set_state(BroadcastForm.content)
        await show(
            query, _("broadcast.ask_content_again"), kb.content_step(has_content=bool(draft.kind))
        )

    @r.callback_query(
        BroadcastForm.content, BroadcastStepCb.filter(F.step == BroadcastStep.AUDIENCE)
    )
    async def to_audience(query: CallbackQuery, flow: Flow) -> None:
        draft = await load_draft(flow)
        if draft.kind is None:
            await show(query, _("broadcast.ask_content"), kb.content_step(has_content=False))
            return
        await flow.state.set_state(BroadcastForm.audience)
        await show(query, _("broadcast.ask_audience"), kb.audience_menu())

    @r.callback_query(BroadcastForm.audience, BroadcastStepCb.filter(F.step == BroadcastStep.KIND))
    async def audience_kind(
        query: CallbackQuery,
        callback_data: BroadcastStepCb,
        flow: Flow,
        broadcasts: BroadcastService,
        catalog: Catalog,
        callback_answer: CallbackAnswer,
    ) -> None:
        try:
            kind = AudienceKind(callback_data.code)
        except ValueError:
            callback_answer.text = _("common.stale_button")
            return
        if kind is AudienceKind.REGION:
            found = await broadcasts.regions_with_patients()
            text = _("broadcast.ask_region") if found else _("broadcast.no_regions")
            await show(query, text, kb.regions(found, catalog, flow.locale))
        elif kind is AudienceKind.CENTER:
            await show(query, _("broadcast.ask_center"), kb.centers(catalog, flow.locale))
        elif kind is AudienceKind.UPCOMING:
            await show(query, _("broadcast.ask_days"), kb.days())
        else:
            await audience_chosen(query, flow, broadcasts, Audience(kind))

    @r.callback_query(
        BroadcastForm.audience,
        BroadcastStepCb.filter(
            F.step.in_({BroadcastStep.REGION, BroadcastStep.CENTER, BroadcastStep.DAYS})
        ),
    )
    async def audience_value(
        query: CallbackQuery,
        callback_data: BroadcastStepCb,
        flow: Flow,
        broadcasts: BroadcastService,
        catalog: Catalog,
        callback_answer: CallbackAnswer,
    ) -> None:
        step = callback_data.step
        if step is BroadcastStep.REGION and catalog.region(callback_data.value) is not None:
            chosen = Audience(AudienceKind.REGION, callback_data.value)
        elif step is BroadcastStep.CENTER and catalog.center(callback_data.code) is not None:
            chosen = Audience(AudienceKind.CENTER, callback_data.code)
        elif step is BroadcastStep.DAYS and callback_data.value in UPCOMING_DAYS:
            chosen = Audience(AudienceKind.UPCOMING, callback_data.value)
        else:
            callback_answer.text = _("common.stale_button")
            return
        await audience_chosen(query, flow, broadcasts, chosen)

    @r.callback_query(
        BroadcastForm.confirm, BroadcastStepCb.filter(F.step == BroadcastStep.CONFIRM)
    )
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

    @r.callback_query(BroadcastStepCb.filter())
    async def stale_step(
        query: CallbackQuery, callback_data: BroadcastStepCb, callback_answer: CallbackAnswer
    ) -> None:
        # A button of a dialogue that is over. "Send" pressed again (a double click): its
        # message is the progress message now, so its buttons stay.
        callback_answer.show_alert = True
        if callback_data.step is BroadcastStep.CONFIRM:
            callback_answer.text = _("broadcast.already_started")
            return
        callback_answer.text = _("common.stale_button")
        await drop_buttons(query)

    # --- the progress message -----------------------------------------------------------------
    # Pause, resume and refresh edit the progress message. "Stop" asks in a message of its own
    # (the progress message keeps being edited meanwhile); the answer edits both.
    @r.callback_query(BroadcastCb.filter())
    async def progress_button(
        query: CallbackQuery,
        callback_data: BroadcastCb,
        flow: Flow,
        broadcasts: BroadcastService,
        catalog: Catalog,
        callback_answer: CallbackAnswer,
    ) -> None:
        action, broadcast_id = callback_data.action, callback_data.broadcast
        question = action in (BroadcastAction.CANCEL_YES, BroadcastAction.KEEP)
        try:
            if action is BroadcastAction.PAUSE:
                found = await broadcasts.pause(broadcast_id, flow.user_id)
                callback_answer.text = _("broadcast.paused")
            elif action is BroadcastAction.RESUME:
                found = await broadcasts.resume(broadcast_id, flow.user_id)
                callback_answer.text = _("broadcast.resumed")
            elif action is BroadcastAction.CANCEL_YES:
                found = await broadcasts.cancel(broadcast_id, flow.user_id)
                callback_answer.text = _("broadcast.stopped")
            else:
                found = await owned_progress(broadcasts, broadcast_id, flow.user_id)
                if found.status in FINISHED:
                    raise BroadcastError(Refusal.FINISHED, found)
        except BroadcastError as refused:
            callback_answer.text = _(REFUSAL_KEYS[refused.reason])
            callback_answer.show_alert = True
            current = refused.progress
            if current is None and refused.reason is not Refusal.NOT_FOUND:
                current = await owned_progress(broadcasts, broadcast_id, flow.user_id)
            if question or current is None:
                await drop_buttons(query)
            if current is not None:
                await show_progress(flow, current, catalog, None if question else query)
            return
        if action is BroadcastAction.CANCEL:
            await flow.send(
                _("broadcast.stop_question").format(id=found.id, left=found.left),
                reply_markup=kb.stop_confirm(found.id),
            )
            return
        if action is BroadcastAction.KEEP:
            await show(query, _("broadcast.stop_kept").format(id=found.id), None)
        elif action is BroadcastAction.CANCEL_YES:
            await show(query, _("broadcast.stopped_note").format(id=found.id), None)
        await show_progress(flow, found, catalog, None if question else query)

    return r


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


async def owned_progress(broadcasts: BroadcastService, broadcast_id: int, user_id: int) -> Progress:
    found = await broadcasts.progress(broadcast_id)
    if found is None or found.author_id != user_id:
        raise BroadcastError(Refusal.NOT_FOUND)
    return found


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
