"""The coordinators' role filter, carried by their parent router in ``bot.handlers``."""

from __future__ import annotations

from typing import Any

from aiogram.filters import Filter
from aiogram.types import Chat, TelegramObject, User

from bot.config import Settings
from bot.services.audit import Actor, Role


class Coordinator(Filter):
    """The user is a coordinator (COORDINATOR_IDS, read from the settings at each update).

    Handlers below it receive ``coordinator``: the :class:`Actor` their actions are audited as
    (the coordinator in their private chat)."""

    async def __call__(
        self,
        event: TelegramObject,
        settings: Settings,
        event_from_user: User | None = None,
        event_chat: Chat | None = None,
    ) -> bool | dict[str, Any]:
        if event_from_user is None or event_from_user.id not in settings.coordinator_ids:
            return False
        chat_id = event_chat.id if event_chat is not None else None
        actor = Actor(telegram_id=event_from_user.id, role=Role.COORDINATOR, chat_id=chat_id)
        return {"coordinator": actor}
