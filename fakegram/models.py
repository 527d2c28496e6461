"""State kept by the fake Telegram server (plain dataclasses, no I/O)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ApiCall",
    "ApiError",
    "BotState",
    "CallbackAnswer",
    "CallbackQueryRecord",
    "ChatState",
    "Download",
    "Member",
    "MessageEvent",
    "StoredFile",
    "StoredMessage",
    "Topic",
    "UpdateSink",
]

JSON = dict[str, Any]
UpdateSink = Callable[[JSON], Awaitable[Any]]

MEDIA_KINDS = (
    "photo",
    "document",
    "video",
    "audio",
    "voice",
    "video_note",
    "animation",
    "sticker",
)

SERVICE_KEYS = (
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "new_chat_members",
    "left_chat_member",
    "pinned_message",
)


class ApiError(Exception):
    """An error answer the way Telegram sends it."""

    def __init__(
        self,
        error_code: int,
        description: str,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def payload(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.error_code, "description": self.description}
        parameters: JSON = {}
        if self.retry_after is not None:
            parameters["retry_after"] = self.retry_after
        if self.migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = self.migrate_to_chat_id
        if parameters:
            body["parameters"] = parameters
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


@dataclass
class ApiCall:
    """One HTTP request the bot made to the fake API."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    at: float
    token: str = ""
    index: int = -1
    file_names: dict[str, str] = field(default_factory=dict)
    status: int = 200
    response: JSON | None = None  # None: the connection was dropped
    finished_at: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.response and self.response.get("ok"))

    @property
    def result(self) -> Any:
        return None if self.response is None else self.response.get("result")

    @property
    def error_code(self) -> int | None:
        return None if self.response is None else self.response.get("error_code")

    @property
    def description(self) -> str | None:
        return None if self.response is None else self.response.get("description")

    @property
    def chat_id(self) -> int | str | None:
        value = self.params.get("chat_id")
        return value if isinstance(value, int | str) else None

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.params.items() if k not in ("media",)}
        state = "dropped" if self.response is None else ("ok" if self.ok else self.description)
        return f"ApiCall({self.method!r}, {shown!r}, files={sorted(self.files)}, -> {state})"


@dataclass
class Download:
    token: str
    file_path: str
    at: float
    status: int


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    kind: str
    file_size: int
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None
    file_path: str | None = None
    from_bot: bool = True
    photo_sizes: list[str] | None = None  # for photos: all size file_ids, smallest first
    extra: dict[str, Any] = field(default_factory=dict)  # performer, title, emoji, length...


@dataclass
class MessageEvent:
    seq: int
    chat_id: int
    message_id: int
    kind: str  # "new" | "edit" | "delete"
    from_bot: bool


@dataclass
class StoredMessage:
    """A message in a chat, as the fake stores it (bot's and users')."""

    chat_id: int
    message_id: int
    data: JSON
    from_bot: bool
    method: str = ""
    reply_markup: JSON | None = None  # as sent (any markup type); edits change data only
    parse_mode: str | None = None
    raw_text: str | None = None
    link_preview_options: JSON | None = None
    deleted: bool = False
    history: list[JSON] = field(default_factory=list)
    sent_at: float = 0.0

    # --------------------------------------------------------------- reading
    @property
    def text(self) -> str | None:
        value = self.data.get("text")
        return value if isinstance(value, str) else None

    @property
    def caption(self) -> str | None:
        value = self.data.get("caption")
        return value if isinstance(value, str) else None

    @property
    def content(self) -> str:
        """Text, or caption for media, or ``""``."""
        return self.text or self.caption or ""

    @property
    def entities(self) -> list[JSON]:
        value = self.data.get("entities") or self.data.get("caption_entities") or []
        return list(value)

    @property
    def media_type(self) -> str | None:
        for kind in MEDIA_KINDS:
            if kind in self.data:
                return kind
        for kind in ("location", "contact", "venue", "poll", "dice"):
            if kind in self.data:
                return kind
        return None

    @property
    def is_service(self) -> bool:
        return any(key in self.data for key in SERVICE_KEYS)

    @property
    def file_id(self) -> str | None:
        kind = self.media_type
        if kind is None or kind not in MEDIA_KINDS:
            return None
        value = self.data[kind]
        if kind == "photo":
            return str(value[-1]["file_id"])
        return str(value["file_id"])

    @property
    def message_thread_id(self) -> int | None:
        value = self.data.get("message_thread_id")
        return int(value) if value is not None else None

    @property
    def media_group_id(self) -> str | None:
        value = self.data.get("media_group_id")
        return str(value) if value is not None else None

    @property
    def reply_to_message_id(self) -> int | None:
        reply = self.data.get("reply_to_message")
        if not reply or reply.get("forum_topic_created") is not None:
            return None
        return int(reply["message_id"])

    @property
    def edited(self) -> bool:
        return bool(self.history)

    @property
    def inline_keyboard(self) -> list[list[JSON]]:
        """The inline keyboard the message shows now (after edits)."""
        markup = self.data.get("reply_markup") or {}
        rows = markup.get("inline_keyboard") or []
        return [list(row) for row in rows]

    @property
    def inline_buttons(self) -> list[list[str]]:
        return [[str(b.get("text", "")) for b in row] for row in self.inline_keyboard]

    @property
    def reply_keyboard(self) -> list[list[str]] | None:
        """Reply keyboard sent with this message (``reply_markup`` as sent)."""
        markup = self.reply_markup or {}
        rows = markup.get("keyboard")
        if rows is None:
            return None
        return [[str(b.get("text", "")) for b in row] for row in rows]

    def snapshot(self) -> JSON:
        return {
            "data": copy.deepcopy(self.data),
            "reply_markup": copy.deepcopy(self.reply_markup),
            "raw_text": self.raw_text,
            "parse_mode": self.parse_mode,
        }

    def __repr__(self) -> str:
        who = "bot" if self.from_bot else "user"
        flags = " deleted" if self.deleted else ""
        kind = self.media_type or "text"
        return (
            f"<StoredMessage #{self.message_id} chat={self.chat_id} {who} {kind}"
            f" {self.content!r} buttons={self.inline_buttons or self.reply_keyboard}{flags}>"
        )


@dataclass
class Topic:
    chat_id: int
    thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False
    deleted: bool = False
    created_by_bot: bool = True

    def to_api(self) -> JSON:
        body: JSON = {
            "message_thread_id": self.thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
        }
        if self.icon_custom_emoji_id:
            body["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return body


@dataclass
class Member:
    user: JSON
    status: str = "member"
    custom_title: str | None = None
    until_date: int = 0


@dataclass
class ChatState:
    chat: JSON
    next_message_id: int = 1
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    topics: dict[int, Topic] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    bot_status: str = "administrator"
    # The bot's administrator rights that differ from "all granted" (e.g. can_manage_topics).
    bot_rights: dict[str, bool] = field(default_factory=dict)
    actions: list[tuple[str, int | None]] = field(default_factory=list)
    started: bool = True  # private chats: False until the user writes to the bot

    @property
    def id(self) -> int:
        return int(self.chat["id"])

    @property
    def type(self) -> str:
        return str(self.chat["type"])

    @property
    def is_private(self) -> bool:
        return self.type == "private"

    @property
    def is_forum(self) -> bool:
        return bool(self.chat.get("is_forum"))

    def allocate_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


@dataclass
class CallbackAnswer:
    text: str | None = None
    show_alert: bool = False
    url: str | None = None
    cache_time: int | None = None


@dataclass
class CallbackQueryRecord:
    id: str
    user_id: int
    chat_id: int | None
    message_id: int | None
    data: str | None
    answered: bool = False
    answer: CallbackAnswer | None = None


@dataclass
class BotState:
    token: str
    bot_id: int
    user: JSON
    next_update_id: int = 100_000_001
    queue: list[JSON] = field(default_factory=list)
    consumed_below: int = 0
    allowed_updates: list[str] | None = None
    webhook: JSON | None = None
    commands: dict[tuple[str, str], list[JSON]] = field(default_factory=dict)
    menu_button: JSON | None = None
    chats: dict[int, ChatState] = field(default_factory=dict)
    users: dict[int, JSON] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    files_by_path: dict[str, StoredFile] = field(default_factory=dict)
    callback_queries: dict[str, CallbackQueryRecord] = field(default_factory=dict)
    events: list[MessageEvent] = field(default_factory=list)
    update_log: list[JSON] = field(default_factory=list)
    update_sink: UpdateSink | None = None
    poller: asyncio.Future[str] | None = None
    #: getUpdates requests received so far (counted when they arrive, not when they return).
    polls: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
