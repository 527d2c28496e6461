"""THE MAX ADAPTER: the one place where the bot meets aiogram-max (Python >= 3.12, extra ``max``).

aiogram-max 1.3.0 runs an aiogram bot on MAX by replacing the session. What it lacks or gets wrong
is worked around here, in :class:`MaxBotSession` (a subclass of its ``MaxSession``); each override
says what it fixes and is written so it could be offered upstream as it is:

1. Polling busy-loop: aiogram's ``offset`` rewound the session's ``marker`` past events it does
   not map (edits, removals…), so ``GET /updates`` returned them again at once, forever. And the
   marker moved on as soon as a batch was fetched, so a batch fetched but not yet stored was
   lost in a crash (MAX takes every event before the marker it is given as read). Now the
   marker moves on when the caller acknowledges (the next ``offset``, as Telegram's getUpdates
   does), or at once past a batch with nothing to hand over (no busy loop either way); an
   event that cannot be converted is logged by its type and skipped, and an answer that is not
   JSON is a network error (polling backs off), neither raised into polling as anything else.
2. Reply keyboards: ``ReplyKeyboardMarkup`` / ``ReplyKeyboardRemove`` raised ``AttributeError``.
   A reply keyboard becomes inline ``message`` buttons (pressing one sends its text, as in
   Telegram) and ``request_contact`` buttons; a removal sends nothing (MAX has none to remove).
3. Contacts: an incoming ``contact`` attachment arrived with neither ``message.contact`` nor text;
   it becomes ``Message.contact`` (phone from the vCard, ``user_id`` of the contact's MAX user).
4. Albums: MAX sends several files as one message and aiogram-max kept the first file only;
   each file becomes its own message of one ``media_group_id``, as a Telegram album arrives.
5. Edits: ``edit_message_text(reply_markup=…)`` kept the old buttons; they are replaced now.
6. Messages returned by the session were not bound to the bot ("not mounted"); they are now.
7. Admins: ``get_chat_member`` of an admin and ``get_chat_administrators`` failed aiogram 3.31's
   validation (fields aiogram added since); the required ``can_*`` are filled with ``False``.
8. ``callback.answer(show_alert=True)``: MAX has no modal alert; the text goes as a notification
   and the loss is logged, never silent.
9. HTML: a parse mode given as aiogram's ``ParseMode.HTML`` (as ``DefaultBotProperties`` holds
   it) was compared as ``str()`` ("ParseMode.HTML"), taken for Markdown, and the tags escaped.
10. Errors: MAX's HTTP errors came as the library's own ``MaxApiError``, which code written for
    Telegram does not catch; they are raised as aiogram's (429, 403, 404, 5xx, bad request).

Known and not fixable here (platform): no forum topics, no ``copy_message`` or ``send_contact``,
video and audio from a user arrive as documents, one command list without scopes or languages,
the message-id map lives in memory (old messages cannot be edited after a restart).
"""

from __future__ import annotations

import asyncio
import logging
import re
from contextvars import ContextVar
from typing import Any, TypeVar

import httpx
from aiogram import Bot
from aiogram.client.default import Default, DefaultBotProperties
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageText,
    GetChatAdministrators,
    GetChatMember,
    GetUpdates,
    TelegramMethod,
)
from aiogram.types import (
    ChatMemberAdministrator,
    Contact,
    ForceReply,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    TelegramObject,
    Update,
)
from aiogram_max import MAX_API_URL, MaxApiError, MaxSession
from aiogram_max import converters as max_converters

logger = logging.getLogger("bot.messengers.max")

JSON = dict[str, Any]

#: Every MAX event gets this many aiogram update ids, so the files of one MAX message can arrive
#: as separate messages (an album) and ids stay stable across restarts (from the marker).
IDS_PER_EVENT = 32
FILE_KINDS = ("image", "file", "video", "audio")

#: A keyboard converted from a reply keyboard, waiting for the message being sent (fix 2).
_pending_keyboard: ContextVar[JSON | None] = ContextVar("max_pending_keyboard", default=None)

_T = TypeVar("_T", bound=TelegramObject)
_TEL = re.compile(r"^TEL[^:]*:(.+)$", re.MULTILINE | re.IGNORECASE)


def reply_keyboard_to_attachment(markup: ReplyKeyboardMarkup) -> JSON | None:
    """A Telegram reply keyboard as MAX inline buttons: ``request_contact`` stays a contact
    request; any other button becomes a ``message`` button, which sends its text when pressed
    (what a reply-keyboard button does in Telegram). Location and poll requests are dropped."""
    rows: list[list[JSON]] = []
    for row in markup.keyboard:
        buttons: list[JSON] = []
        for button in row:
            text = button if isinstance(button, str) else button.text
            if not isinstance(button, str) and button.request_contact:
                buttons.append({"type": "request_contact", "text": text})
            elif not isinstance(button, str) and button.request_location:
                buttons.append({"type": "request_geo_location", "text": text})
            else:
                buttons.append({"type": "message", "text": text})
        if buttons:
            rows.append(buttons)
    if not rows:
        return None
    return {"type": "inline_keyboard", "payload": {"buttons": rows}}


def contact_from_attachment(attachment: JSON, sender: JSON | None) -> Contact | None:
    """MAX ``contact`` attachment → aiogram ``Contact`` (fix 3). The phone comes from the vCard;
    ``user_id`` is the MAX user the card belongs to, so "is it your own number" can be checked
    as in Telegram (``contact.user_id == from_user.id``)."""
    payload = attachment.get("payload") or {}
    match = _TEL.search(str(payload.get("vcf_info") or ""))
    if match is None:
        return None
    owner = payload.get("max_info") or {}
    first_name = owner.get("first_name") or (sender or {}).get("first_name") or "MAX user"
    return Contact(
        phone_number=match.group(1).strip(),
        first_name=first_name,
        last_name=owner.get("last_name"),
        user_id=owner.get("user_id"),
    )


class MaxBotSession(MaxSession):
    """aiogram-max's session with the fixes listed in the module docstring."""

    _marker: int | None
    _last_update_id: int

    # --- fix 1 (busy loop) and fixes 3, 4 (contacts, albums): the feed -----------------------

    async def _get_updates(self, bot: Bot, method: GetUpdates) -> list[Update]:
        # aiogram acknowledges with offset = last update id + 1; events this session skips
        # never move it, so it must not move the marker back (that re-fetched them at once).
        if method.offset:
            acknowledged = (method.offset - 1) // IDS_PER_EVENT + 1
            if self._marker is None or acknowledged > self._marker:
                self._marker = acknowledged
        params: JSON = {}
        if method.timeout is not None:
            params["timeout"] = method.timeout
        if method.limit is not None:
            params["limit"] = method.limit
        if self._marker is not None:
            params["marker"] = self._marker
        try:
            data = await self._request("GET", "/updates", params=params)
        except ValueError as error:  # not JSON (a proxy's page): polling backs off and retries
            raise TelegramNetworkError(method, "MAX: unreadable /updates answer") from error
        raws: list[JSON] = data.get("updates", [])
        marker = data.get("marker", self._marker)
        # An event's ids come from its place in the feed (marker - batch size + index), so they
        # are stable across restarts and the acknowledgement above maps back to the marker.
        first = self._last_update_id // IDS_PER_EVENT + 1 if marker is None else marker - len(raws)
        updates: list[Update] = []
        for position, raw in enumerate(raws, start=first):
            self._last_update_id = position * IDS_PER_EVENT
            self._remember_mid(raw)
            try:
                converted = self._convert(raw, position * IDS_PER_EVENT)
            except Exception as error:  # noqa: BLE001 - one odd event must not stop polling
                logger.warning(
                    "MAX event %s not converted: %s", raw.get("update_type"), type(error).__name__
                )
                continue
            for part, update in enumerate(converted):
                updates.append(update.model_copy(update={"update_id": update.update_id + part}))
        if not updates:
            # Nothing to hand over (none, or none mapped): nothing to store, so move on now; the
            # events skipped are not fetched again (that was the busy loop).
            self._marker = marker
            if raws and not method.timeout:  # no long-poll wait asked: don't spin on a busy feed
                await asyncio.sleep(0.05)
        # Else the marker stays until the caller acknowledges (its next offset): a batch not
        # stored yet is fetched again, with the same update ids.
        return [mount(update, bot) for update in updates]

    def _convert(self, raw: JSON, update_id: int) -> list[Update]:
        update = max_converters.to_update(raw, update_id)
        if update is None:
            logger.debug("MAX event not mapped: %s", raw.get("update_type"))
            return []
        message = update.message
        raw_message = raw.get("message") or {}
        attachments: list[JSON] = (raw_message.get("body") or {}).get("attachments") or []
        if message is None or not attachments:
            return [update]
        if message.text and (message.photo or message.document):
            # A file's text is its caption in aiogram (handlers read ``caption``).
            message = message.model_copy(update={"caption": message.text, "text": None})
            update = update.model_copy(update={"message": message})
        contacts = [a for a in attachments if a.get("type") == "contact"]
        if contacts:
            contact = contact_from_attachment(contacts[0], raw_message.get("sender"))
            with_contact = message.model_copy(update={"contact": contact})
            return [update.model_copy(update={"message": with_contact})]
        files = [a for a in attachments if a.get("type") in FILE_KINDS]
        if len(files) <= 1:
            return [update]
        group = str((raw_message.get("body") or {}).get("mid"))
        split: list[Update] = []
        for index, attachment in enumerate(files[:IDS_PER_EVENT]):
            fields = max_converters.to_attachments([attachment])
            part = message.model_copy(
                update={
                    "photo": None,
                    "document": None,
                    **fields,
                    "media_group_id": group,
                    # Telegram's album parts have ids of their own (uploads are keyed by them);
                    # the first keeps the MAX seq (edits, replies), the others get negative ids
                    # that no MAX message has.
                    "message_id": message.message_id
                    if index == 0
                    else -(message.message_id * IDS_PER_EVENT + index),
                    "text": None,
                    "caption": message.caption if index == 0 else None,
                }
            )
            split.append(Update(update_id=update_id, message=part))
        return split

    # --- fix 2 (reply keyboards) ------------------------------------------------------------

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's signature
    ) -> Any:
        markup = getattr(method, "reply_markup", None)
        pending = None
        if isinstance(markup, ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply):
            method = method.model_copy(update={"reply_markup": None})
            if isinstance(markup, ReplyKeyboardMarkup):
                pending = reply_keyboard_to_attachment(markup)
        token = _pending_keyboard.set(pending)
        try:
            # aiogram-max dispatches through a table of its own functions, so a subclass's
            # overrides are reached only through this one (upstream: look them up on self).
            override = _OVERRIDES.get(type(method))
            if override is not None:
                result = await getattr(self, override)(bot, method)
            else:
                result = await super().make_request(bot, method, timeout)
        except MaxApiError as error:
            raise as_aiogram_error(method, error) from error
        except httpx.TransportError as error:
            raise TelegramNetworkError(method, f"MAX: {type(error).__name__}") from error
        finally:
            _pending_keyboard.reset(token)
        # fix 6: what the session returns is bound to the bot, as aiogram's own session does.
        if isinstance(result, TelegramObject):
            return mount(result, bot)
        if isinstance(result, list):
            return [mount(r, bot) if isinstance(r, TelegramObject) else r for r in result]
        return result

    async def _post_message(
        self, chat_id: Any, payload: JSON, *, wait_attachment: bool = False
    ) -> Any:
        keyboard = _pending_keyboard.get()
        if keyboard is not None:
            payload = {**payload, "attachments": [*payload.get("attachments", []), keyboard]}
        return await super()._post_message(chat_id, payload, wait_attachment=wait_attachment)

    # --- fix 9 (parse modes given as aiogram's enum) -----------------------------------------

    def _render_markup(
        self, bot: Bot, text: str | None, parse_mode: Any, entities: Any
    ) -> tuple[str, str | None]:
        # aiogram-max compares str(parse_mode) with "HTML"; str(ParseMode.HTML) is
        # "ParseMode.HTML" on Python >= 3.11, so HTML was taken for Markdown and escaped.
        if isinstance(parse_mode, Default):
            parse_mode = bot.default.parse_mode
        if isinstance(parse_mode, ParseMode):
            parse_mode = parse_mode.value
        rendered: tuple[str, str | None] = super()._render_markup(bot, text, parse_mode, entities)
        return rendered

    # --- fix 5 (edits keep the old buttons) --------------------------------------------------

    async def _edit_message_text(self, bot: Bot, method: EditMessageText) -> Any:
        if method.reply_markup is None:
            return await super()._edit_message_text(bot, method)
        mid = self._require_mid(method.message_id)
        text, fmt = self._render_markup(bot, method.text, method.parse_mode, method.entities)
        keyboard = max_converters.keyboard_to_attachment(method.reply_markup, self._degrade)
        body: JSON = {"text": text, "attachments": [keyboard] if keyboard else []}
        if fmt is not None:
            body["format"] = fmt
        await self._request("PUT", "/messages", params={"message_id": mid}, json=body)
        return True

    # --- fix 7 (admins) ---------------------------------------------------------------------

    async def _get_chat_member(self, bot: Bot, method: GetChatMember) -> Any:
        if bot.id and int(method.user_id) == int(bot.id):
            raw = await self._request("GET", f"/chats/{method.chat_id}/members/me")
            return chat_member(raw)
        data = await self._request("GET", f"/chats/{method.chat_id}/members")
        for raw in data.get("members", []):
            if int(raw.get("user_id", 0)) == int(method.user_id):
                return chat_member(raw)
        return await super()._get_chat_member(bot, method)  # its "not found" error

    async def _get_chat_administrators(self, bot: Bot, method: GetChatAdministrators) -> Any:
        data = await self._request("GET", f"/chats/{method.chat_id}/members/admins")
        return [chat_member(raw) for raw in data.get("members", [])]

    # --- fix 8 (alerts) ---------------------------------------------------------------------

    async def _answer_callback(self, bot: Bot, method: AnswerCallbackQuery) -> bool:
        if method.show_alert and method.text:
            self._degrade("show_alert", "MAX has no modal alert: shown as a notification")
        return bool(await super()._answer_callback(bot, method))


def as_aiogram_error(method: TelegramMethod[Any], error: MaxApiError) -> TelegramAPIError:
    """MAX's HTTP errors as aiogram's exceptions (fix 10), so code written for Telegram (the
    outbox's retries and 429 pauses, "blocked" on 403, "not delivered" on a bad request) works
    on MAX too. The text is MAX's error code, never the message body."""
    code = _error_code(error.body)
    if error.status == 429:
        return TelegramRetryAfter(method, f"MAX: {code}", retry_after=1)
    if error.status == 403:
        return TelegramForbiddenError(method, f"MAX: {code}")
    if error.status == 404:
        return TelegramNotFound(method, f"MAX: {code}")
    if error.status >= 500:
        return TelegramServerError(method, f"MAX: {code}")
    return TelegramBadRequest(method, f"MAX: {code} {error.body[:200]}")


def _error_code(body: str) -> str:
    match = re.search(r'"code"\s*:\s*"([^"]+)"', body)
    return match.group(1) if match else "error"


_OVERRIDES: dict[type[TelegramMethod[Any]], str] = {
    GetUpdates: "_get_updates",
    EditMessageText: "_edit_message_text",
    GetChatMember: "_get_chat_member",
    GetChatAdministrators: "_get_chat_administrators",
    AnswerCallbackQuery: "_answer_callback",
}


def mount(obj: _T, bot: Bot) -> _T:
    """Bind an object and everything inside it to the bot (fix 6), the way aiogram's own
    session does: by validating with the bot in the context."""
    data = obj.model_dump(mode="python", by_alias=True, exclude_none=True)
    return type(obj).model_validate(data, context={"bot": bot})


def chat_member(raw: JSON) -> Any:
    """aiogram-max's conversion, with the admin fields newer aiogram requires set to False
    (MAX gives only ``is_admin``; claiming fewer rights is the safe side)."""
    if raw.get("is_admin") and not raw.get("is_owner"):
        required: dict[str, Any] = {
            name: False
            for name, info in ChatMemberAdministrator.model_fields.items()
            if info.is_required() and name.startswith("can_")
        }
        return ChatMemberAdministrator.model_validate(
            {
                **required,
                "status": "administrator",
                "user": max_converters.to_user(raw),
                "is_anonymous": False,
                "can_manage_chat": True,
            }
        )
    return max_converters.to_chat_member(raw)


def create_max_bot(token: str, api_base: str = MAX_API_URL, *, bot_id: int = 0) -> Bot:
    """A Bot talking to MAX at ``api_base`` (``MAX_API_BASE``), HTML by default like ours."""
    session = MaxBotSession(token, api_url=api_base)
    return Bot(
        token=f"{bot_id}:max",
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


async def connect_max_bot(token: str, api_base: str = MAX_API_URL) -> Bot:
    """:func:`create_max_bot` with the real bot id from ``GET /me`` (the dialogue storage keys
    by the bot id, so MAX dialogues never share a key with Telegram's)."""
    probe = create_max_bot(token, api_base)
    try:
        me = await probe.get_me()
    finally:
        await probe.session.close()
    return create_max_bot(token, api_base, bot_id=me.id)


def is_max_bot(bot: Bot) -> bool:
    return isinstance(bot.session, MaxSession)


__all__ = [
    "MAX_API_URL",
    "MaxBotSession",
    "connect_max_bot",
    "create_max_bot",
    "is_max_bot",
]
