"""The registration flow's steps: what is asked at each one, and where "next" and "back" go.

The same field steps serve three modes (registration, an edit from its summary, an edit of the
profile), so each field has one handler and one prompt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove, TelegramObject
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.callbacks import Field
from bot.catalog import Catalog
from bot.config import Settings
from bot.fsm.data import Mode, RegistrationDraft, load_draft, save_draft
from bot.fsm.states import Registration, Relay
from bot.keyboards import menu as menu_kb
from bot.keyboards import registration as kb
from bot.messengers.routing import move_target
from bot.services.clock import Clock
from bot.services.documents import DocumentService
from bot.services.patients import PatientService
from bot.views import profile_text, registration_summary

FIELD_ORDER: tuple[State, ...] = (
    Registration.full_name,
    Registration.birth_date,
    Registration.phone,
    Registration.region,
)
_FIELD_NAMES: tuple[str | None, ...] = tuple(s.state for s in FIELD_ORDER)
#: The step that asks each field again (an edit from the summary or from the profile).
FIELD_STATES: dict[Field, State] = {
    Field.FULL_NAME: Registration.full_name,
    Field.BIRTH_DATE: Registration.birth_date,
    Field.PHONE: Registration.phone,
    Field.REGION: Registration.region,
}


@dataclass(slots=True)
class Flow:
    """Everything a step needs to ask, advance or go back, for one chat."""

    bot: Bot
    chat_id: int
    user_id: int
    state: FSMContext
    catalog: Catalog
    patients: PatientService
    settings: Settings
    clock: Clock
    locale: str
    documents: DocumentService | None = None
    patient_id: int | None = None

    @classmethod
    def from_event(cls, event: Message | CallbackQuery, data: dict[str, Any]) -> Flow | None:
        """Built by a middleware for every private-chat update that has a user and a chat."""
        user = data.get("event_from_user")
        chat = data.get("event_chat")
        if user is None or chat is None or "state" not in data:
            return None
        i18n: I18n = data["i18n"]
        return cls(
            bot=data["bot"],
            chat_id=chat.id,
            user_id=user.id,
            state=data["state"],
            catalog=data["catalog"],
            patients=data["patients"],
            settings=data["settings"],
            clock=data["clock"],
            locale=i18n.current_locale,
            documents=data.get("documents"),
            patient_id=patient.id if (patient := data.get("patient")) is not None else None,
        )

    async def send(self, text: str, **kwargs: object) -> None:
        await self.bot.send_message(self.chat_id, text, **kwargs)  # type: ignore[arg-type]

    async def welcome(self) -> None:
        await self.state.set_state(Registration.consent)
        await save_draft(self.state, RegistrationDraft())
        await self.send(_("welcome.text"), reply_markup=ReplyKeyboardRemove())
        await self.send(_("consent.short"), reply_markup=kb.consent(full_text_shown=False))

    async def ask(self, step: State | str | None, draft: RegistrationDraft | None = None) -> None:
        """Ask (again) for ``step`` and make it the current state."""
        draft = draft or await load_draft(self.state)
        name = step.state if isinstance(step, State) else step
        await self.state.set_state(name)
        if name == Registration.consent.state:
            await self.send(_("consent.short"), reply_markup=kb.consent(full_text_shown=False))
        elif name == Registration.full_name.state:
            await self.send(_("reg.ask_name"), reply_markup=kb.step_nav())
        elif name == Registration.birth_date.state:
            await self.send(_("reg.ask_birth_date"), reply_markup=kb.step_nav())
        elif name == Registration.phone.state:
            await self.send(_("reg.ask_phone"), reply_markup=kb.phone_request())
        elif name == Registration.region.state:
            regions = self.catalog.regions_by_name(self.locale)
            await self.send(
                _("reg.ask_region"),
                reply_markup=kb.region_page(regions, draft.region_page, self.locale),
            )
        elif name == Registration.time_zone.state:
            region = self.catalog.region(draft.region_code) if draft.region_code else None
            if region is None:
                await self.ask(Registration.region, draft)
                return
            await self.send(
                _("reg.ask_time_zone").format(region=region.name.get(self.locale)),
                reply_markup=kb.time_zones(region, self.locale),
            )
        elif name == Registration.summary.state:
            text = registration_summary(draft, self.catalog, self.locale, self.clock())
            await self.send(text, reply_markup=kb.summary())
        elif name == Registration.cancel_confirm.state:
            await self.send(_("reg.cancel_question"), reply_markup=kb.cancel_confirm())
        else:  # no dialogue: nothing to ask
            await self.state.clear()

    async def advance(self, draft: RegistrationDraft, done: State) -> None:
        """A field was accepted: save it and go to the next step for the current mode."""
        if done is Registration.region:
            region = self.catalog.region(draft.region_code) if draft.region_code else None
            if region is not None and len(region.time_zones) > 1:
                await save_draft(self.state, draft)
                await self.ask(Registration.time_zone, draft)
                return
            if region is not None:
                draft.time_zone = region.time_zones[0].tz
            done = Registration.time_zone
        if draft.mode is Mode.PROFILE_EDIT:
            await self._save_profile_field(draft, done)
            return
        await save_draft(self.state, draft)
        if draft.mode is Mode.SUMMARY_EDIT or done is Registration.time_zone:
            await self.ask(Registration.summary, draft)
            return
        position = FIELD_ORDER.index(done)
        await self.ask(FIELD_ORDER[position + 1], draft)

    async def leave_chat_with_doctor(self) -> None:
        """A menu section opened while chatting with the duty doctors ends that mode: the next
        text is not silently sent to the doctors. Other dialogues are left as they are."""
        if await self.state.get_state() == Relay.chatting.state:
            await self.state.clear()

    async def back(self) -> None:
        draft = await load_draft(self.state)
        current = await self.state.get_state()
        if current == Registration.phone.state:
            await self.send(_("reg.going_back"), reply_markup=ReplyKeyboardRemove())
        if draft.mode is Mode.PROFILE_EDIT:
            await self.state.clear()
            await self.show_profile(restore_menu=current == Registration.phone.state)
            return
        if current in (Registration.time_zone.state, Registration.summary.state):
            await self.ask(Registration.region, draft)
        elif draft.mode is Mode.SUMMARY_EDIT:
            await self.ask(Registration.summary, draft)
        elif current in _FIELD_NAMES[1:]:
            await self.ask(FIELD_ORDER[_FIELD_NAMES.index(current) - 1], draft)
        else:
            await self.ask(Registration.consent, draft)

    async def ask_cancel(self) -> None:
        """ "Отмена" inside the registration steps: registration asks whether to drop what was
        given (and remembers the step to come back to); a profile edit just ends."""
        draft = await load_draft(self.state)
        if draft.mode is Mode.PROFILE_EDIT:
            await self.state.clear()
            await self.send(_("profile.edit_cancelled"), reply_markup=menu_kb.main_menu())
            await self.show_profile()
            return
        current = await self.state.get_state()
        if current != Registration.cancel_confirm.state:
            draft.resume_state = current
            await save_draft(self.state, draft)
        if current == Registration.phone.state:
            await self.send(_("reg.cancel_title"), reply_markup=ReplyKeyboardRemove())
        await self.ask(Registration.cancel_confirm, draft)

    async def _save_profile_field(self, draft: RegistrationDraft, done: State) -> None:
        changes: dict[str, object]
        if done is Registration.full_name:
            changes = {"full_name": draft.full_name}
        elif done is Registration.birth_date:
            changes = {"birth_date": draft.birth_date}
        elif done is Registration.phone:
            changes = {"phone": draft.phone, "phone_verified": draft.phone_verified}
        else:
            changes = {"region_code": draft.region_code, "time_zone": draft.time_zone}
        await self.patients.update_profile(self.user_id, **changes)
        await self.state.clear()
        await self.send(_("profile.saved"), reply_markup=menu_kb.main_menu())
        await self.show_profile()

    async def show_profile(self, restore_menu: bool = False) -> None:
        patient = await self.patients.get(self.user_id)
        if patient is None:
            await self.send(_("common.not_registered"), reply_markup=ReplyKeyboardRemove())
            return
        if restore_menu:
            await self.send(_("profile.title"), reply_markup=menu_kb.main_menu())
        text = profile_text(patient, self.catalog, self.locale, self.clock())
        await self.send(text, reply_markup=menu_kb.profile(move_target(self.bot)))

    async def start_edit(self, field: Field, mode: Mode) -> None:
        draft = await load_draft(self.state)
        draft.mode = mode
        if mode is Mode.PROFILE_EDIT:
            draft = RegistrationDraft(mode=mode)
        await save_draft(self.state, draft)
        await self.ask(FIELD_STATES[field], draft)


Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class FlowMiddleware(BaseMiddleware):
    """Gives private-chat handlers a ``flow`` bound to the chat (the private router uses it)."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, Message | CallbackQuery):
            data["flow"] = Flow.from_event(event, data)
        return await handler(event, data)
