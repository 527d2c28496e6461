"""Test-side client: people who talk to the bot through the fake server.

Every action builds the Update Telegram would send and pushes it to the
bot.  With ``server.update_sink`` set (in-process Dispatcher) an ``await`` on
an action returns after the bot handled it; in getUpdates mode it returns
once the update is queued (use :meth:`FakeUser.wait_for_message` or
:meth:`PushedUpdate.consumed`).

Reading methods return *snapshots* (copies) of the stored messages, so a
message you looked at keeps showing what it showed then, even after the bot
edits it.
"""

from __future__ import annotations

import bisect
import copy
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import EllipsisType
from typing import Any

from .formatting import detect_entities
from .models import MEDIA_KINDS, ChatState, Member, StoredFile, StoredMessage, Topic
from .server import FakeTelegram

__all__ = [
    "AlbumDocument",
    "AlbumPhoto",
    "CallbackAnswerText",
    "FakeGroup",
    "FakeUser",
    "PushedUpdate",
    "ReceivedFile",
]

JSON = dict[str, Any]
ButtonMatcher = str | re.Pattern[str]
BotRef = str | int | None

# Minimal but real headers, so "is this really an image/voice" checks pass.
_PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8ffff3f0005fe02fea7d6a4c800"
    "00000049454e44ae426082"
)
_OGG_VOICE = b"OggS\x00\x02" + b"\x00" * 20 + b"OpusHead" + b"\x01\x01" + b"\x00" * 32
_MP4_NOTE = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 32
_WEBP_STICKER = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + b"\x00" * 10 + b"\x00\x02\x00\x02"

_OWN_ID = object()


class CallbackAnswerText(str):
    """The text of an ``answerCallbackQuery`` (a ``str``), plus its options."""

    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None

    def __new__(
        cls,
        text: str | None,
        *,
        show_alert: bool = False,
        url: str | None = None,
        cache_time: int | None = None,
    ) -> CallbackAnswerText:
        obj = super().__new__(cls, text or "")
        obj.text = text
        obj.show_alert = show_alert
        obj.url = url
        obj.cache_time = cache_time
        return obj

    def __repr__(self) -> str:
        return f"CallbackAnswerText({self.text!r}, show_alert={self.show_alert})"


@dataclass
class PushedUpdate:
    """What a user action produced: the update (with its id) as the bot got it."""

    server: FakeTelegram
    update: JSON
    token: BotRef = None

    @property
    def update_id(self) -> int:
        return int(self.update["update_id"])

    @property
    def message(self) -> JSON | None:
        for key in ("message", "edited_message"):
            if key in self.update:
                value: JSON = self.update[key]
                return value
        return None

    @property
    def message_id(self) -> int | None:
        message = self.message
        return int(message["message_id"]) if message else None

    @property
    def callback_query_id(self) -> str | None:
        query = self.update.get("callback_query")
        return str(query["id"]) if query else None

    async def consumed(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - part of the test-facing API
        """(getUpdates mode) wait until the bot confirmed this update."""
        await self.server.wait_until_consumed(self.update_id, timeout, token=self.token)


@dataclass
class AlbumPhoto:
    data: bytes = _PNG_1x1
    caption: str | None = None


@dataclass
class AlbumDocument:
    data: bytes = b"%PDF-1.4\n%fake\n"
    file_name: str = "document.pdf"
    mime_type: str = "application/pdf"
    caption: str | None = None
    file_size: int | None = None


AlbumItem = bytes | AlbumPhoto | AlbumDocument


@dataclass
class ReceivedFile:
    """A file the bot sent (photo: the largest size)."""

    message_id: int
    kind: str
    file_id: str
    file_unique_id: str
    data: bytes
    file_name: str | None = None
    mime_type: str | None = None
    caption: str | None = None
    file_size: int | None = None
    media_group_id: str | None = None


def _matches(text: str, wanted: ButtonMatcher) -> bool:
    if isinstance(wanted, re.Pattern):
        return wanted.search(text) is not None
    return text == wanted


def _describe_keyboards(messages: Sequence[StoredMessage]) -> str:
    lines = []
    for msg in messages[-5:]:
        if msg.inline_keyboard:
            lines.append(f"  #{msg.message_id} {msg.content[:60]!r}: {msg.inline_buttons}")
    return "\n".join(lines) or "  (no message with an inline keyboard)"


class _Person:
    """Shared plumbing of users and groups."""

    server: FakeTelegram
    token: BotRef

    def _bot_messages(self, chat_id: int, *, include_deleted: bool = False) -> list[StoredMessage]:
        return self.server.messages(chat_id, token=self.token, include_deleted=include_deleted)


class FakeUser(_Person):
    """A Telegram user with a private chat with the bot (chat id == user id)."""

    def __init__(
        self,
        server: FakeTelegram,
        user_id: int,
        first_name: str = "Иван",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
        *,
        phone_number: str | None = None,
        is_premium: bool = False,
        has_started_bot: bool = True,
        bot: BotRef = None,
    ) -> None:
        self.server = server
        self.user_id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        self.is_premium = is_premium
        self.phone_number = phone_number or f"+7999{user_id % 10_000_000:07d}"
        self.token = bot
        server.register_user(self.user_json, token=bot, started=has_started_bot)
        self._cursor = server.event_seq(token=bot)
        self._last_query_id: str | None = None
        # The forum topic this person has open in each group (where their next message goes
        # unless a test names a topic): the one they last clicked or wrote in.
        self._viewing: dict[int, int | None] = {}

    # ---------------------------------------------------------------- identity
    @property
    def user_json(self) -> JSON:
        """The ``User`` object Telegram puts in ``from``."""
        user: JSON = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        if self.is_premium:
            user["is_premium"] = True
        return user

    @property
    def chat_id(self) -> int:
        return self.user_id

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)

    def __repr__(self) -> str:
        return f"<FakeUser {self.user_id} {self.full_name!r}>"

    # ----------------------------------------------------------------- pushing
    async def _push(self, update: JSON) -> PushedUpdate:
        self._cursor = self.server.event_seq(token=self.token)
        update_id = await self.server.push_update(update, token=self.token)
        return PushedUpdate(self.server, {"update_id": update_id, **update}, self.token)

    def _store(
        self,
        content: JSON,
        *,
        chat_id: int | None = None,
        thread_id: int | None = None,
        reply_to: int | None = None,
        media_group_id: str | None = None,
    ) -> StoredMessage:
        return self.server.store_user_message(
            self.user_id if chat_id is None else chat_id,
            self.user_json,
            content,
            token=self.token,
            thread_id=thread_id,
            reply_to=reply_to,
            media_group_id=media_group_id,
        )

    async def _send_content(self, content: JSON, **where: Any) -> PushedUpdate:
        chat_id = where.get("chat_id")
        if chat_id is not None and chat_id != self.user_id:  # a group: the topic open there
            if "thread_id" not in where:
                where["thread_id"] = self._viewing.get(chat_id)
            self._viewing[chat_id] = where["thread_id"]
        stored = self._store(content, **where)
        return await self._push({"message": copy.deepcopy(stored.data)})

    @staticmethod
    def _text_content(text: str) -> JSON:
        content: JSON = {"text": text}
        entities = detect_entities(text)
        if entities:
            content["entities"] = entities
        return content

    @staticmethod
    def _caption_content(caption: str | None) -> JSON:
        if not caption:
            return {}
        content: JSON = {"caption": caption}
        entities = detect_entities(caption)
        if entities:
            content["caption_entities"] = entities
        return content

    def _file(self, data: bytes, kind: str, **extra: Any) -> StoredFile:
        return self.server.register_user_file(data, kind, token=self.token, **extra)

    # ----------------------------------------------------------- user actions
    async def send(self, text: str) -> PushedUpdate:
        """Type ``text`` and send it (``/commands`` get ``bot_command`` entities)."""
        return await self._send_content(self._text_content(text))

    async def forward(
        self, texts: Sequence[str], *, from_name: str = "Иван Петров", concurrent: bool = True
    ) -> list[int]:
        """Forward several text messages at once (one update each, with ``forward_origin``),
        the way a selection of messages is forwarded in Telegram. Returns the update ids."""
        updates = []
        for text in texts:
            content = self._text_content(text)
            content["forward_origin"] = {
                "type": "hidden_user",
                "sender_user_name": from_name,
                "date": self.server.now() - 3600,
            }
            updates.append({"message": copy.deepcopy(self._store(content).data)})
        self._cursor = self.server.event_seq(token=self.token)
        return await self.server.push_updates(updates, token=self.token, concurrent=concurrent)

    async def start(self, payload: str | None = None) -> PushedUpdate:
        """Press START, optionally through a deep link ``t.me/bot?start=payload``."""
        return await self.send(f"/start {payload}" if payload else "/start")

    async def reply_to(self, message_id: int, text: str) -> PushedUpdate:
        return await self._send_content(self._text_content(text), reply_to=message_id)

    async def edit_message(self, message_id: int, new_text: str) -> PushedUpdate:
        """Edit one of this user's messages (an ``edited_message`` update)."""
        stored = self.server.edit_user_message(self.user_id, message_id, new_text, token=self.token)
        entities = detect_entities(new_text)
        key = "entities" if "text" in stored.data else "caption_entities"
        if entities:
            stored.data[key] = entities
        return await self._push({"edited_message": copy.deepcopy(stored.data)})

    async def send_sticker(self, emoji: str = "👍", data: bytes = _WEBP_STICKER) -> PushedUpdate:
        stored = self._file(data, "sticker", width=512, height=512, emoji=emoji)
        body = self.server.file_json(stored)
        body["set_name"] = "FakegramStickers"
        return await self._send_content({"sticker": body})

    async def send_voice(
        self,
        data: bytes | None = None,
        *,
        duration: int = 2,
        bytes: bytes | None = None,  # alias: send_voice(bytes=...)
    ) -> PushedUpdate:
        payload = data if data is not None else bytes if bytes is not None else _OGG_VOICE
        stored = self._file(payload, "voice", mime_type="audio/ogg", duration=duration)
        return await self._send_content({"voice": self.server.file_json(stored)})

    async def send_video_note(
        self, data: bytes = _MP4_NOTE, *, duration: int = 3, length: int = 240
    ) -> PushedUpdate:
        stored = self._file(data, "video_note", duration=duration, length=length)
        return await self._send_content({"video_note": self.server.file_json(stored)})

    async def send_location(self, latitude: float, longitude: float) -> PushedUpdate:
        location = {"latitude": float(latitude), "longitude": float(longitude)}
        return await self._send_content({"location": location})

    async def send_contact(
        self,
        phone_number: str | None = None,
        *,
        user_id: Any = _OWN_ID,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> PushedUpdate:
        """Share a contact card; by default this user's own (``user_id`` = own id).

        Pass another ``user_id`` (or ``None``) to forge someone else's card.
        """
        contact: JSON = {
            "phone_number": phone_number or self.phone_number,
            "first_name": first_name if first_name is not None else self.first_name,
        }
        last = last_name if last_name is not None else self.last_name
        if last:
            contact["last_name"] = last
        owner = self.user_id if user_id is _OWN_ID else user_id
        if owner is not None:
            contact["user_id"] = int(owner)
        return await self._send_content({"contact": contact})

    def _photo_content(self, data: bytes, caption: str | None) -> JSON:
        sizes = self.server.register_user_photo(data, token=self.token)
        return {"photo": sizes, **self._caption_content(caption)}

    def _document_content(
        self,
        data: bytes,
        file_name: str,
        mime_type: str,
        caption: str | None,
        file_size: int | None,
    ) -> JSON:
        stored = self._file(
            data, "document", file_name=file_name, mime_type=mime_type, file_size=file_size
        )
        return {"document": self.server.file_json(stored), **self._caption_content(caption)}

    async def send_photo(
        self,
        data: bytes = _PNG_1x1,
        caption: str | None = None,
        media_group_id: str | None = None,
    ) -> PushedUpdate:
        """Send a photo (a PhotoSize ladder; every size is a downloadable file)."""
        return await self._send_content(
            self._photo_content(data, caption), media_group_id=media_group_id
        )

    async def send_document(
        self,
        data: bytes,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        media_group_id: str | None = None,
        file_size: int | None = None,
    ) -> PushedUpdate:
        """Send a file; ``file_size`` overrides the size Telegram reports (and
        the size getFile checks against the 20 MB download limit)."""
        content = self._document_content(data, file_name, mime_type, caption, file_size)
        return await self._send_content(content, media_group_id=media_group_id)

    async def send_album(
        self,
        items: Sequence[AlbumItem],
        caption: str | None = None,
        *,
        shuffle: bool | random.Random = False,
        concurrent: bool = True,
    ) -> list[PushedUpdate]:
        """Send 2-10 photos/documents as one album: one update per item sharing
        a ``media_group_id``; ``caption`` goes on the first item, as in Telegram.

        ``shuffle`` delivers the updates out of order (message ids stay in
        album order).  With an update sink the items are handled concurrently
        (``concurrent=False`` feeds them one after another).
        """
        if not items:
            raise ValueError("an album needs at least one item")
        group_id = str(12_000_000_000_000_000 + random.randrange(10**15))
        updates: list[JSON] = []
        for index, item in enumerate(items):
            item_caption = caption if index == 0 else None
            if isinstance(item, bytes):
                content = self._photo_content(item, item_caption)
            elif isinstance(item, AlbumPhoto):
                content = self._photo_content(item.data, item.caption or item_caption)
            else:
                content = self._document_content(
                    item.data,
                    item.file_name,
                    item.mime_type,
                    item.caption or item_caption,
                    item.file_size,
                )
            stored = self._store(content, media_group_id=group_id)
            updates.append({"message": copy.deepcopy(stored.data)})
        order = list(range(len(updates)))
        if shuffle:
            rng = shuffle if isinstance(shuffle, random.Random) else random.Random()
            while len(order) > 1 and order == sorted(order):
                rng.shuffle(order)
        self._cursor = self.server.event_seq(token=self.token)
        ids = await self.server.push_updates(
            [updates[i] for i in order], token=self.token, concurrent=concurrent
        )
        by_position = dict(zip(order, ids, strict=True))
        return [
            PushedUpdate(self.server, {"update_id": by_position[i], **updates[i]}, self.token)
            for i in range(len(updates))
        ]

    # ---------------------------------------------------------------- buttons
    def _find_inline(
        self,
        chat_id: int,
        wanted: ButtonMatcher,
        message_id: int | None,
        thread_id: int | None = None,
    ) -> tuple[StoredMessage, JSON]:
        messages = self._bot_messages(chat_id)
        if thread_id is not None:
            messages = [m for m in messages if m.message_thread_id == thread_id]
        candidates = list(reversed(messages))
        if message_id is not None:
            candidates = [m for m in candidates if m.message_id == message_id]
            if not candidates:
                raise AssertionError(
                    f"{self!r}: bot message #{message_id} is not in chat {chat_id} (or was deleted)"
                )
        for msg in candidates:
            for row in msg.inline_keyboard:
                for button in row:
                    if _matches(str(button.get("text", "")), wanted):
                        return msg, button
        where = f"message #{message_id}" if message_id is not None else f"chat {chat_id}"
        raise AssertionError(
            f"{self!r}: no inline button {wanted!r} in {where}; visible buttons:\n"
            + _describe_keyboards(candidates[::-1] if message_id is None else candidates)
        )

    async def _click_button(self, msg: StoredMessage, button: JSON) -> PushedUpdate:
        if "callback_data" not in button:
            kinds = [k for k in button if k != "text"]
            raise AssertionError(
                f"button {button.get('text')!r} is not a callback button ({kinds}): {button}"
            )
        query = self.server.new_callback_query(
            self.user_json, msg, str(button["callback_data"]), token=self.token
        )
        self._last_query_id = str(query["id"])
        return await self._push({"callback_query": query})

    async def click(self, button: ButtonMatcher, *, message_id: int | None = None) -> PushedUpdate:
        """Press an inline button (exact text or regex) on the newest bot message
        that has it (or on ``message_id``)."""
        msg, found = self._find_inline(self.user_id, button, message_id)
        return await self._click_button(msg, found)

    async def click_data(self, callback_data: str, message_id: int) -> PushedUpdate:
        """Forge a callback query with any data, as if from ``message_id``."""
        chat = self.server.chat(self.user_id, token=self.token)
        msg = chat.messages.get(message_id)
        query = self.server.new_callback_query(
            self.user_json,
            msg,
            callback_data,
            chat_id=self.user_id,
            message_id=message_id,
            token=self.token,
        )
        self._last_query_id = str(query["id"])
        return await self._push({"callback_query": query})

    def _reply_markup_shown(self, chat_id: int) -> JSON | None:
        shown: JSON | None = None
        for msg in self._bot_messages(chat_id, include_deleted=True):
            markup = msg.reply_markup or {}
            if "keyboard" in markup:
                shown = markup
            elif markup.get("remove_keyboard"):
                shown = None
        return shown

    async def press(self, button: ButtonMatcher) -> PushedUpdate:
        """Press a button of the reply keyboard the bot currently shows.

        A ``request_contact`` button shares this user's own contact, a
        ``request_location`` one sends a location; others send their text.
        """
        shown = self._reply_markup_shown(self.user_id)
        if shown is None:
            raise AssertionError(f"{self!r}: the bot shows no reply keyboard")
        for row in shown["keyboard"]:
            for item in row:
                text = str(item.get("text", ""))
                if not _matches(text, button):
                    continue
                if item.get("request_contact"):
                    return await self.send_contact()
                if item.get("request_location"):
                    return await self.send_location(52.2869, 104.3050)
                return await self.send(text)
        rows = [[str(b.get("text", "")) for b in row] for row in shown["keyboard"]]
        raise AssertionError(f"{self!r}: no reply button {button!r}; the keyboard is {rows}")

    async def block_bot(self) -> PushedUpdate:
        """Block the bot: later sends get 403, the bot gets ``my_chat_member``."""
        self.server.block(self.user_id)
        return await self._push(self._my_chat_member("member", "kicked"))

    async def unblock_bot(self) -> PushedUpdate:
        self.server.unblock(self.user_id)
        return await self._push(self._my_chat_member("kicked", "member"))

    def _my_chat_member(self, old: str, new: str) -> JSON:
        bot_user = self.server.bot_user(self.token)
        chat = self.server.chat(self.user_id, token=self.token).chat

        def member(status: str) -> JSON:
            body: JSON = {"status": status, "user": bot_user}
            if status == "kicked":
                body["until_date"] = 0
            return body

        return {
            "my_chat_member": {
                "chat": dict(chat),
                "from": self.user_json,
                "date": self.server.now(),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            }
        }

    # ----------------------------------------------------------------- groups
    async def send_in_group(
        self,
        group: FakeGroup,
        text: str,
        thread_id: int | EllipsisType | None = ...,
        reply_to: int | None = None,
    ) -> PushedUpdate:
        """Write in the group: in ``thread_id`` (None: the General topic), by default in the
        topic this person has open — the one they last clicked or wrote in, as in Telegram."""
        where: dict[str, Any] = {} if thread_id is ... else {"thread_id": thread_id}
        return await self._send_content(
            self._text_content(text), chat_id=group.chat_id, reply_to=reply_to, **where
        )

    async def click_in_group(
        self,
        group: FakeGroup,
        button_text: ButtonMatcher,
        message_id: int | None = None,
        *,
        thread_id: int | None = None,
    ) -> PushedUpdate:
        msg, found = self._find_inline(group.chat_id, button_text, message_id, thread_id)
        self._viewing[group.chat_id] = msg.message_thread_id
        return await self._click_button(msg, found)

    # ---------------------------------------------------------------- reading
    def messages(self) -> list[StoredMessage]:
        """Bot messages in this chat as they look now (edited, not deleted); copies."""
        return [copy.deepcopy(m) for m in self._bot_messages(self.user_id)]

    def last_message(self) -> StoredMessage:
        messages = self._bot_messages(self.user_id)
        if not messages:
            raise AssertionError(f"the bot has not sent anything (visible) to {self!r}")
        return copy.deepcopy(messages[-1])

    def last_text(self) -> str:
        """Text (or caption) of the newest bot message in this chat."""
        return self.last_message().content

    def inline_buttons(self, message: StoredMessage | int | None = None) -> list[list[str]]:
        """Button texts of a message's inline keyboard (default: the newest message)."""
        if message is None:
            return self.last_message().inline_buttons
        message_id = message if isinstance(message, int) else message.message_id
        msg = self.server.chat(self.user_id, token=self.token).messages.get(message_id)
        if msg is None:
            raise AssertionError(f"no message #{message_id} in chat {self.user_id}")
        return msg.inline_buttons

    def reply_keyboard(self) -> list[list[str]] | None:
        """Texts of the reply keyboard shown now (None once removed)."""
        shown = self._reply_markup_shown(self.user_id)
        if shown is None:
            return None
        return [[str(b.get("text", "")) for b in row] for row in shown["keyboard"]]

    def last_callback_answer(self) -> CallbackAnswerText | None:
        """How the bot answered this user's last button press (None: not answered)."""
        if self._last_query_id is None:
            return None
        answer = self.server.callback_answer(self._last_query_id, token=self.token)
        if answer is None:
            return None
        return CallbackAnswerText(
            answer.text, show_alert=answer.show_alert, url=answer.url, cache_time=answer.cache_time
        )

    async def wait_for_callback_answer(
        self,
        timeout: float = 10.0,  # noqa: ASYNC109 - part of the test-facing API
    ) -> CallbackAnswerText:
        def probe() -> CallbackAnswerText | None:
            return self.last_callback_answer()

        return await self.server.wait_for_event(
            probe, timeout, lambda: f"an answer to {self!r}'s button press"
        )

    async def wait_for_message(
        self,
        predicate: Callable[[StoredMessage], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - part of the test-facing API
        *,
        fresh: bool = False,
    ) -> StoredMessage:
        """The next bot message or edit in this chat (matching ``predicate``).

        "Next" means after this user's last action or after the message the
        previous ``wait_for_message`` returned, whichever is later, so replies
        that already arrived are not missed.  ``fresh=True``: only events after
        this call started.
        """
        return await self._wait_in_chat(self.user_id, predicate, timeout, fresh=fresh)

    async def _wait_in_chat(
        self,
        chat_id: int,
        predicate: Callable[[StoredMessage], bool] | None,
        timeout: float,  # noqa: ASYNC109 - part of the test-facing API
        *,
        fresh: bool,
        thread_id: int | None = None,
    ) -> StoredMessage:
        bot = self.server.bot_state(self.token)
        if fresh:
            self._cursor = self.server.event_seq(token=self.token)

        def probe() -> StoredMessage | None:
            events = bot.events
            start = bisect.bisect_right([e.seq for e in events], self._cursor)
            for event in events[start:]:
                if event.chat_id != chat_id or not event.from_bot or event.kind == "delete":
                    continue
                chat = bot.chats[chat_id]
                msg = chat.messages.get(event.message_id)
                if msg is None or msg.deleted or msg.is_service:
                    continue
                if thread_id is not None and msg.message_thread_id != thread_id:
                    continue
                snapshot = copy.deepcopy(msg)
                if predicate is None or predicate(snapshot):
                    self._cursor = event.seq
                    return snapshot
            return None

        def what() -> str:
            recent = self._bot_messages(chat_id)[-3:]
            return f"a bot message in chat {chat_id}; the latest are: {recent}"

        return await self.server.wait_for_event(probe, timeout, what)

    def files_received(self) -> list[ReceivedFile]:
        """Documents, photos and other files the bot sent to this chat."""
        return _files_in(self.server, self._bot_messages(self.user_id), self.token)


def _files_in(
    server: FakeTelegram, messages: Sequence[StoredMessage], token: BotRef
) -> list[ReceivedFile]:
    found = []
    for msg in messages:
        kind = msg.media_type
        if kind not in MEDIA_KINDS or msg.file_id is None:
            continue
        stored = server.file(msg.file_id, token=token)
        found.append(
            ReceivedFile(
                message_id=msg.message_id,
                kind=kind,
                file_id=stored.file_id,
                file_unique_id=stored.file_unique_id,
                data=stored.data,
                file_name=stored.file_name,
                mime_type=stored.mime_type,
                caption=msg.caption,
                file_size=stored.file_size,
                media_group_id=msg.media_group_id,
            )
        )
    return found


class FakeGroup(_Person):
    """A group/supergroup (``chat_id`` negative) the bot is in; optionally a forum."""

    def __init__(
        self,
        server: FakeTelegram,
        chat_id: int,
        title: str,
        is_forum: bool = False,
        *,
        username: str | None = None,
        chat_type: str = "supergroup",
        bot_status: str = "administrator",
        bot: BotRef = None,
    ) -> None:
        if chat_id >= 0:
            raise ValueError("group chat ids are negative, e.g. -1001234567890")
        self.server = server
        self.chat_id = chat_id
        self.title = title
        self.is_forum = is_forum
        self.token = bot
        chat: JSON = {"id": chat_id, "type": chat_type, "title": title}
        if is_forum:
            chat["is_forum"] = True
        if username:
            chat["username"] = username
        server.add_chat(chat, token=bot, bot_status=bot_status)

    def __repr__(self) -> str:
        return f"<FakeGroup {self.chat_id} {self.title!r}>"

    @property
    def _state(self) -> ChatState:
        return self.server.chat(self.chat_id, token=self.token)

    def add_member(
        self, user: FakeUser, status: str = "member", *, custom_title: str | None = None
    ) -> None:
        """Put ``user`` in the member list (member/administrator/creator/restricted/left/kicked)."""
        self._state.members[user.user_id] = Member(
            user=user.user_json, status=status, custom_title=custom_title
        )
        self.server.bot_state(self.token).users.setdefault(user.user_id, user.user_json)

    def remove_member(self, user: FakeUser, status: str = "left") -> None:
        self.add_member(user, status)

    def set_bot_status(self, status: str) -> None:
        """The bot's own membership: administrator (default), member, left, kicked."""
        self._state.bot_status = status

    def set_bot_rights(self, **rights: bool) -> None:
        """The bot's administrator rights that differ from all granted (can_manage_topics=False)."""
        self._state.bot_rights.update(rights)

    async def bot_added(self, by: FakeUser, status: str = "member", **rights: bool) -> PushedUpdate:
        """``by`` adds the bot to the group (or changes its status, e.g. makes it an
        administrator with ``rights``): the bot gets ``my_chat_member``."""
        state = self._state
        server_bot = self.server.bot_state(self.token)
        old = self.server.bot_member_json(server_bot, state)
        state.bot_status = status
        state.bot_rights.update(rights)
        new = self.server.bot_member_json(server_bot, state)
        update: JSON = {
            "my_chat_member": {
                "chat": dict(state.chat),
                "from": by.user_json,
                "date": self.server.now(),
                "old_chat_member": old,
                "new_chat_member": new,
            }
        }
        return await by._push(update)

    def create_topic(self, name: str, *, by: FakeUser | None = None) -> Topic:
        """A topic created by a person (the bot gets no update for it)."""
        if not self.is_forum:
            raise AssertionError(f"{self!r} is not a forum")
        return self.server.create_topic(
            self.chat_id, name, token=self.token, by=by.user_json if by else None
        )

    def topics(self, *, include_deleted: bool = False) -> list[Topic]:
        topics = sorted(self._state.topics.values(), key=lambda t: t.thread_id)
        return [copy.copy(t) for t in topics if include_deleted or not t.deleted]

    def topic(self, name: str) -> Topic:
        for topic in self.topics():
            if topic.name == name:
                return topic
        names = [t.name for t in self.topics()]
        raise AssertionError(f"no topic {name!r} in {self!r}; topics: {names}")

    def messages(self, thread_id: int | None = None) -> list[StoredMessage]:
        """Bot messages in the group (or one topic), not deleted; copies."""
        return [
            copy.deepcopy(m)
            for m in self.server.messages(self.chat_id, token=self.token, thread_id=thread_id)
            if not m.is_service
        ]

    def all_messages(
        self, thread_id: int | None = None, *, include_deleted: bool = False
    ) -> list[StoredMessage]:
        """Everybody's messages, service messages included; copies."""
        return [
            copy.deepcopy(m)
            for m in self.server.messages(
                self.chat_id,
                token=self.token,
                from_bot=None,
                include_deleted=include_deleted,
                thread_id=thread_id,
            )
        ]

    def last_message(self, thread_id: int | None = None) -> StoredMessage:
        messages = self.messages(thread_id)
        if not messages:
            raise AssertionError(f"the bot has not posted anything in {self!r}")
        return messages[-1]

    def last_text(self, thread_id: int | None = None) -> str:
        return self.last_message(thread_id).content

    def files_received(self, thread_id: int | None = None) -> list[ReceivedFile]:
        return _files_in(self.server, self.messages(thread_id), self.token)

    async def wait_for_message(
        self,
        watcher: FakeUser,
        predicate: Callable[[StoredMessage], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - part of the test-facing API
        *,
        thread_id: int | None = None,
        fresh: bool = False,
    ) -> StoredMessage:
        """The next bot message in this group, as seen by ``watcher`` (whose
        last action is the starting point)."""
        return await watcher._wait_in_chat(
            self.chat_id, predicate, timeout, fresh=fresh, thread_id=thread_id
        )
