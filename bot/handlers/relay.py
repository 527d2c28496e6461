"""The chat with the duty doctors. A patient's messages are copied to the duty chat (into their own
forum topic, or under a header line in a chat without topics); a doctor's answer there goes back
to the patient. Replies and edits follow the stored message pairs. A message that cannot be
delivered is always said so, to whoever sent it: nothing is dropped silently. The routers are
here; the sending is ``bot.delivery.relay``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, F, Router
from aiogram.filters import Command, Filter
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import Message, TelegramObject
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.delivery.relay import DutyDesk
from bot.filters.staff import StaffMember
from bot.fsm.states import Relay
from bot.handlers.flow import Flow
from bot.i18n import variants
from bot.keyboards import menu as menu_kb
from bot.services.patients import PatientDTO
from bot.services.relay import RelayService

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

#: What a patient may send to the doctors; anything else is answered "not delivered".
FROM_PATIENT = F.text | F.photo | F.document | F.voice
#: What a doctor's message may carry back (service messages and the like are not relayed).
FROM_DOCTOR = (
    F.text
    | F.photo
    | F.document
    | F.voice
    | F.audio
    | F.video
    | F.animation
    | F.video_note
    | F.sticker
)


# --- filters and the middleware --------------------------------------------------------------


class InDutyChat(Filter):
    """The message is in the duty doctors' chat (DUTY_CHAT_ID)."""

    async def __call__(self, message: Message, relay: RelayService | None = None) -> bool:
        return relay is not None and message.chat.id == relay.duty_chat_id


class DeskMiddleware(BaseMiddleware):
    """Gives the relay handlers a ``desk`` bound to this update's bot and services."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        data["desk"] = DutyDesk(
            bot=data["bot"],
            relay=data["relay"],
            patients=data["patients"],
            i18n=data["i18n"],
            catalog=data["catalog"],
            clock=data["clock"],
            staff_locale=data["settings"].default_locale,
        )
        return await handler(event, data)


# --- the routers ---------------------------------------------------------------------------


def router(i18n: I18n) -> Router:
    """The patient's side (private chat; the parent router lets registered patients only)."""
    r = Router(name="relay")
    r.message.middleware(DeskMiddleware())
    r.edited_message.middleware(DeskMiddleware())
    r.message.register(open_chat, F.text.in_(variants(i18n, "menu.ask_doctor")))
    r.message.register(to_doctors, Relay.chatting, FROM_PATIENT)
    r.message.register(not_deliverable, Relay.chatting)
    r.edited_message.register(patient_edited, F.chat.type == "private")
    return r


def duty_router() -> Router:
    """The doctors' side: the duty chat, members only."""
    r = Router(name="relay_duty")
    r.message.filter(InDutyChat(), StaffMember())
    r.edited_message.filter(InDutyChat(), StaffMember())
    r.message.middleware(DeskMiddleware())
    r.edited_message.middleware(DeskMiddleware())
    r.message.register(show_profile, Command("profile"))
    r.message.register(show_consultations, Command("consultations"))
    r.message.register(close, Command("close"))
    r.message.register(to_patient, FROM_DOCTOR)
    r.edited_message.register(doctor_edited, FROM_DOCTOR)
    return r


# --- the patient ---------------------------------------------------------------------------


async def open_chat(_message: Message, flow: Flow, relay: RelayService) -> None:
    if relay.duty_chat_id is None:
        await flow.state.clear()
        await flow.send(_("relay.unavailable"), reply_markup=menu_kb.main_menu())
        return
    await flow.state.set_state(Relay.chatting)
    await flow.send(_("relay.intro"), reply_markup=menu_kb.main_menu())


async def to_doctors(message: Message, flow: Flow, patient: PatientDTO, desk: DutyDesk) -> None:
    if not await desk.from_patient(message, patient):
        await flow.state.clear()
        await flow.send(_("relay.unavailable"), reply_markup=menu_kb.main_menu())


async def not_deliverable(message: Message) -> None:
    await message.reply(_("relay.unsupported"))


async def patient_edited(
    message: Message, desk: DutyDesk, patient: PatientDTO | None = None
) -> None:
    if patient is not None:
        await desk.patient_edited(message, patient)


# --- the duty doctors ----------------------------------------------------------------------


async def show_profile(message: Message, desk: DutyDesk) -> None:
    if patient := await desk.command_target(message):
        await desk.show_card(message, patient)


async def show_consultations(message: Message, desk: DutyDesk) -> None:
    if patient := await desk.command_target(message):
        await desk.show_consultations(message, patient)


async def close(message: Message, desk: DutyDesk, fsm_storage: BaseStorage) -> None:
    if patient := await desk.command_target(message):
        await desk.close(message, patient, fsm_storage)


async def to_patient(message: Message, desk: DutyDesk) -> None:
    if not _is_command(message):
        await desk.from_doctor(message)


async def doctor_edited(message: Message, desk: DutyDesk) -> None:
    await desk.doctor_edited(message)


# --- small helpers -------------------------------------------------------------------------


def _is_command(message: Message) -> bool:
    entities = message.entities or []
    return any(e.type == "bot_command" and e.offset == 0 for e in entities)
