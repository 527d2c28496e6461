"""The staff guard: who may act in a staff chat, and on what. callback_data is never trusted: the
object a button names is looked up and must belong to the chat it was pressed in, and the presser
must be a member of that chat. The handler receives the object, checked, as a parameter."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiogram import BaseMiddleware, Bot
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, Message, TelegramObject
from aiogram.utils.i18n import gettext as _

from bot.fsm.data import load_staff
from bot.i18n import N_
from bot.services.applications import ActionRefusedError, ApplicationDTO
from bot.services.reminders import DayConsultation
from bot.staff_access import StaffAccess

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class StaffMember(Filter):
    """A person (not a bot, a channel or an anonymous admin) who is a member of the chat."""

    async def __call__(self, message: Message, bot: Bot, access: StaffAccess) -> bool:
        user = message.from_user
        if user is None or user.is_bot or message.sender_chat is not None:
            return False
        return await access.is_member(bot, message.chat.id, user.id)


class Owned(Protocol):
    """Something that belongs to one staff chat (an application, a consultation)."""

    @property
    def staff_chat_id(self) -> int | None: ...


Finder = Callable[[TelegramObject, dict[str, Any]], Awaitable[Owned | None]]


@dataclass(frozen=True, slots=True)
class Guarded:
    """What a guard looks up, under which parameter name, and the alerts of a refusal."""

    key: str
    find: Finder
    not_member: str  # i18n key: the presser is not a member of the chat
    not_here: str  # i18n key: no such object, or not this chat's
    on_message_only: bool = False  # a button on an inaccessible (too old) message: no answer


class StaffGuard(BaseMiddleware):
    """Inner middleware of a staff router (runs once a handler's filters matched). A refused
    button gets an alert; a refused message in a staff dialogue ends that dialogue silently."""

    def __init__(self, guarded: Guarded) -> None:
        self.guarded = guarded

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, CallbackQuery):
            if self.guarded.on_message_only and not isinstance(event.message, Message):
                return None
            chat_id = event.message.chat.id if event.message is not None else None
        else:
            assert isinstance(event, Message)
            chat_id = event.chat.id
        user = getattr(event, "from_user", None)
        if chat_id is None or user is None:
            return None
        access: StaffAccess = data["access"]
        if not await access.is_member(data["bot"], chat_id, user.id):
            return await _refuse(event, data, self.guarded.not_member)
        found = await self.guarded.find(event, data)
        if found is None or found.staff_chat_id != chat_id:
            return await _refuse(event, data, self.guarded.not_here)
        data[self.guarded.key] = found
        return await handler(event, data)


async def _refuse(event: TelegramObject, data: dict[str, Any], text: str) -> None:
    if isinstance(event, CallbackQuery):
        data["callback_answer"].text = _(text)
        data["callback_answer"].show_alert = True
    else:
        await data["state"].clear()


async def _application(event: TelegramObject, data: dict[str, Any]) -> ApplicationDTO | None:
    """The application of a card's button, or of the staff dialogue a message continues."""
    if isinstance(event, CallbackQuery):
        application_id = int(data["callback_data"].app)
    else:
        draft = await load_staff(data["state"])
        if draft is None:
            return None
        application_id = draft.application_id
    try:
        found: ApplicationDTO = await data["applications"].get(application_id)
    except ActionRefusedError:
        return None
    return found


async def _consultation(_event: TelegramObject, data: dict[str, Any]) -> DayConsultation | None:
    """The consultation of a heads-up's button."""
    found: DayConsultation | None = await data["reminders"].get(int(data["callback_data"].id))
    return found


#: Application cards and the dialogues they start: ``application: ApplicationDTO``.
APPLICATION = Guarded(
    key="application",
    find=_application,
    not_member=N_("staff.not_allowed"),
    not_here=N_("staff.not_allowed"),
)
#: The buttons of a consultation's heads-up: ``consultation: DayConsultation``.
CONSULTATION = Guarded(
    key="consultation",
    find=_consultation,
    not_member=N_("day.staff_only"),
    not_here=N_("day.no_show_not_here"),
    on_message_only=True,
)
