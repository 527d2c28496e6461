"""A lean fake of the MAX Bot API (platform-api.max.ru) for tests: what the bot calls through
aiogram-max, with the shapes of MAX's public reference.

Endpoints: ``GET /me``, ``PATCH /me`` (commands), ``GET /updates`` (long polling by ``marker``),
``POST /messages?chat_id=``, ``PUT``/``DELETE /messages?message_id=``, ``POST /answers``,
``POST /uploads`` and the upload URL it hands out, ``GET /files/<token>`` (the attachment URLs),
``POST /chats/<id>/actions``, ``GET /chats/<id>``, ``GET``/``POST``/``DELETE /subscriptions``.

What MAX does and Telegram does not is kept, since the adapter exists because of it: a dialog's
``chat_id`` is not the user's id (sending to a user id is a 404 here), ``POST /answers`` needs a
``notification`` or a ``message``, an attachment is referred to by an upload token, there are no
reply keyboards (only ``inline_keyboard`` with callback/link/message/request_contact buttons),
a text has at most 4000 characters, and every event has a place in the feed (``marker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

JSON = dict[str, Any]

MAX_TEXT = 4000
#: MAX's file limit for bots is far above Telegram's 20 MB download; the fake keeps one to test.
MAX_FILE_BYTES = 4 * 1024 * 1024 * 1024
BUTTON_TYPES = {"callback", "link", "message", "request_contact", "request_geo_location"}
MARKER_BASE = 7_000_000
#: A dialog's chat id is far from its user's id, as on MAX.
DIALOG_OFFSET = 90_000_000_000


def dialog_chat_id(user_id: int) -> int:
    return DIALOG_OFFSET + user_id


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class MaxMessage:
    """A message in a dialog, as MAX stores it."""

    mid: str
    seq: int
    chat_id: int
    sender: JSON
    text: str | None
    attachments: list[JSON]
    format: str | None = None
    link: JSON | None = None
    timestamp: int = field(default_factory=now_ms)
    deleted: bool = False
    edits: int = 0

    @property
    def visible_text(self) -> str:
        """What the person sees: an html message without its tags."""
        if self.format != "html":
            return self.text or ""
        return html.unescape(re.sub(r"<[^>]+>", "", self.text or ""))

    @property
    def from_bot(self) -> bool:
        return bool(self.sender.get("is_bot"))

    def keyboard(self) -> list[list[JSON]]:
        for attachment in self.attachments:
            if attachment.get("type") == "inline_keyboard":
                rows: list[list[JSON]] = attachment["payload"]["buttons"]
                return rows
        return []

    def to_json(self, recipient_user: int | None = None) -> JSON:
        body: JSON = {
            "mid": self.mid,
            "seq": self.seq,
            "text": self.text,
            "attachments": self.attachments,
        }
        message: JSON = {
            "sender": self.sender,
            "recipient": {"chat_id": self.chat_id, "chat_type": "dialog"},
            "timestamp": self.timestamp,
            "body": body,
        }
        if recipient_user is not None:
            message["recipient"]["user_id"] = recipient_user
        if self.link is not None:
            message["link"] = self.link
        return message


class FakeMax:
    """The fake server. ``async with FakeMax() as server:`` serves on 127.0.0.1, a free port."""

    def __init__(self, token: str = "max-test-token", *, bot_user_id: int = 5550001) -> None:
        self.token = token
        self.bot_user: JSON = {
            "user_id": bot_user_id,
            "first_name": "Облако здоровья",
            "username": "oblako_max_bot",
            "is_bot": True,
        }
        self.commands: list[JSON] = []
        self.events: list[JSON] = []  # the feed; an event's place in it is its marker
        self.messages: dict[str, MaxMessage] = {}
        self.answers: list[JSON] = []  # POST /answers bodies, with their callback_id
        self.calls: list[tuple[str, str, JSON]] = []  # (http method, path, query)
        self.files: dict[str, tuple[str, bytes]] = {}  # token -> (file name, bytes)
        self.users: dict[int, JSON] = {}  # user_id -> user, for /chats/<id>
        self.subscriptions: list[JSON] = []
        self._seq = itertools.count(1)
        self._uploads = itertools.count(1)
        self._new_event = asyncio.Condition()
        #: In-process tests: awaited after each pushed event (the harness polls and handles it),
        #: so ``await user.send(...)`` returns after the bot answered.
        self.after_push: Callable[[], Awaitable[None]] | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> FakeMax:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._auth])
        app.router.add_get("/me", self._get_me)
        app.router.add_patch("/me", self._patch_me)
        app.router.add_get("/updates", self._get_updates)
        app.router.add_post("/messages", self._post_message)
        app.router.add_put("/messages", self._put_message)
        app.router.add_delete("/messages", self._delete_message)
        app.router.add_post("/answers", self._post_answer)
        app.router.add_post("/uploads", self._post_uploads)
        app.router.add_post("/upload/{slot}", self._upload)
        app.router.add_get("/files/{token}", self._download)
        app.router.add_post("/chats/{chat_id}/actions", self._chat_action)
        app.router.add_get("/chats/{chat_id}", self._get_chat)
        app.router.add_get("/subscriptions", self._get_subscriptions)
        app.router.add_post("/subscriptions", self._post_subscription)
        app.router.add_delete("/subscriptions", self._delete_subscription)
        # A long poll still waiting when the test ends is not waited for (as in fakegram).
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- used by the client -----------------------------------------------------------------

    def next_seq(self) -> int:
        return next(self._seq)

    def store(self, message: MaxMessage) -> MaxMessage:
        self.messages[message.mid] = message
        return message

    async def push(self, event: JSON) -> int:
        """Append an event to the feed (then run ``after_push``); returns its position."""
        async with self._new_event:
            self.events.append(event)
            self._new_event.notify_all()
            position = len(self.events) - 1
        if self.after_push is not None:
            await self.after_push()
        return position

    def chat_messages(self, chat_id: int) -> list[MaxMessage]:
        return [
            m
            for m in sorted(self.messages.values(), key=lambda m: m.seq)
            if m.chat_id == chat_id and not m.deleted
        ]

    def file_url(self, token: str) -> str:
        return f"{self.base_url}/files/{token}"

    def count_calls(self, http_method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.calls if m == http_method and p == path)

    # --- handlers ---------------------------------------------------------------------------

    @web.middleware
    async def _auth(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(("/upload/", "/files/")):
            return await handler(request)  # signed URLs on MAX: no bot token
        if request.headers.get("Authorization") != self.token:
            return _error(401, "verify.token", "Invalid access_token")
        self.calls.append((request.method, request.path, dict(request.query)))
        return await handler(request)

    async def _get_me(self, _request: web.Request) -> web.Response:
        return web.json_response({**self.bot_user, "commands": self.commands})

    async def _patch_me(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "commands" in body:
            self.commands = list(body["commands"])
        return web.json_response({**self.bot_user, "commands": self.commands})

    async def _get_updates(self, request: web.Request) -> web.Response:
        # A marker is an opaque position on MAX, a large number; here MARKER_BASE + index.
        marker = max(int(request.query.get("marker") or MARKER_BASE) - MARKER_BASE, 0)
        timeout = min(float(request.query.get("timeout") or 30), 90)
        limit = int(request.query.get("limit") or 100)
        async with self._new_event:
            if marker >= len(self.events) and timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._new_event.wait_for(lambda: len(self.events) > marker), timeout
                    )
            batch = self.events[marker : marker + limit]
        return web.json_response({"updates": batch, "marker": MARKER_BASE + marker + len(batch)})

    def _dialog_user(self, chat_id: int) -> int | None:
        for user_id in self.users:
            if dialog_chat_id(user_id) == chat_id:
                return user_id
        return None

    async def _post_message(self, request: web.Request) -> web.Response:
        chat = request.query.get("chat_id")
        if chat is None:
            return _error(400, "proto.payload", "chat_id or user_id required")
        chat_id = int(chat)
        user_id = self._dialog_user(chat_id)
        if user_id is None:
            # A user id is not a dialog's chat id on MAX.
            return _error(404, "chat.not.found", f"Chat {chat_id} not found")
        body = await request.json()
        problem = self._check_body(body)
        if problem:
            return _error(400, "proto.payload", problem)
        if not body.get("text") and not body.get("attachments") and not body.get("link"):
            return _error(400, "proto.payload", "text or attachments required")
        message = self.store(
            MaxMessage(
                mid=f"mid.{self.next_seq():016x}",
                seq=self.next_seq(),
                chat_id=chat_id,
                sender=self.bot_user,
                text=body.get("text"),
                attachments=self._resolve(body.get("attachments") or []),
                format=body.get("format"),
                link=body.get("link"),
            )
        )
        return web.json_response({"message": message.to_json(recipient_user=user_id)})

    def _check_body(self, body: JSON) -> str | None:
        text = body.get("text")
        if text is not None and len(text) > MAX_TEXT:
            return f"text: size must be between 0 and {MAX_TEXT}"
        if body.get("format") not in (None, "html", "markdown"):
            return f"format: unknown {body.get('format')!r}"
        for attachment in body.get("attachments") or []:
            kind = attachment.get("type")
            if kind == "inline_keyboard":
                for row in attachment["payload"]["buttons"]:
                    for button in row:
                        if button.get("type") not in BUTTON_TYPES:
                            return f"button type {button.get('type')!r} unknown"
            elif kind in {"image", "file", "video", "audio"}:
                token = (attachment.get("payload") or {}).get("token")
                if token is not None and token not in self.files:
                    return "attachment token unknown"
            elif kind not in {"location", "sticker", "contact"}:
                return f"attachment type {kind!r} unknown"
        return None

    def _resolve(self, attachments: list[JSON]) -> list[JSON]:
        """Upload tokens become what a MAX client receives: a URL to the file, its name."""
        resolved: list[JSON] = []
        for attachment in attachments:
            token = (attachment.get("payload") or {}).get("token")
            if token in self.files:
                name, data = self.files[token]
                resolved.append(
                    {
                        "type": attachment["type"],
                        "payload": {"token": token, "url": self.file_url(token)},
                        "filename": name,
                        "size": len(data),
                    }
                )
            else:
                resolved.append(attachment)
        return resolved

    async def _put_message(self, request: web.Request) -> web.Response:
        message = self.messages.get(request.query.get("message_id", ""))
        if message is None or message.deleted:
            return _error(404, "not.found", "Message not found")
        body = await request.json()
        problem = self._check_body(body)
        if problem:
            return _error(400, "proto.payload", problem)
        if "text" in body:
            message.text = body["text"]
            message.format = body.get("format")
        if "attachments" in body:
            message.attachments = self._resolve(body["attachments"] or [])
        message.edits += 1
        return web.json_response({"success": True})

    async def _delete_message(self, request: web.Request) -> web.Response:
        message = self.messages.get(request.query.get("message_id", ""))
        if message is None or message.deleted:
            return _error(404, "not.found", "Message not found")
        message.deleted = True
        return web.json_response({"success": True})

    async def _post_answer(self, request: web.Request) -> web.Response:
        callback_id = request.query.get("callback_id")
        if not callback_id:
            return _error(400, "proto.payload", "callback_id required")
        body = await request.json()
        if not body.get("notification") and not body.get("message"):
            return _error(400, "proto.payload", "`message` or `notification` required")
        self.answers.append({"callback_id": callback_id, **body})
        return web.json_response({"success": True})

    async def _post_uploads(self, request: web.Request) -> web.Response:
        kind = request.query.get("type")
        if kind not in {"image", "file", "video", "audio"}:
            return _error(400, "proto.payload", "type must be image, file, video or audio")
        slot = next(self._uploads)
        answer: JSON = {"url": f"{self.base_url}/upload/{slot}?type={kind}"}
        if kind in {"video", "audio"}:
            answer["token"] = f"tok-{kind}-{slot}"
        return web.json_response(answer)

    async def _upload(self, request: web.Request) -> web.Response:
        kind = request.query.get("type", "file")
        slot = request.match_info["slot"]
        expected = "file" if kind in {"video", "audio"} else "data"
        reader = await request.multipart()
        part = await reader.next()
        if part is None or getattr(part, "name", None) != expected:
            return web.Response(status=415, text="Unsupported Media Type")
        data = await part.read()  # type: ignore[union-attr]
        if len(data) > MAX_FILE_BYTES:
            return _error(400, "file.too.big", "File is too big")
        token = f"tok-{kind}-{slot}"
        self.files[token] = (getattr(part, "filename", None) or "file", bytes(data))
        if kind in {"video", "audio"}:
            return web.Response(text="<retval>1</retval>")
        if kind == "image":
            return web.json_response({"photos": {"p": {"token": token}}})
        return web.json_response({"token": token})

    async def _download(self, request: web.Request) -> web.Response:
        stored = self.files.get(request.match_info["token"])
        if stored is None:
            return web.Response(status=404)
        return web.Response(body=stored[1])

    async def _chat_action(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True})

    async def _get_chat(self, request: web.Request) -> web.Response:
        chat_id = int(request.match_info["chat_id"])
        if self._dialog_user(chat_id) is None:
            return _error(404, "chat.not.found", f"Chat {chat_id} not found")
        return web.json_response(
            {"chat_id": chat_id, "type": "dialog", "status": "active", "participants_count": 2}
        )

    async def _get_subscriptions(self, _request: web.Request) -> web.Response:
        return web.json_response({"subscriptions": self.subscriptions})

    async def _post_subscription(self, request: web.Request) -> web.Response:
        self.subscriptions.append(await request.json())
        return web.json_response({"success": True})

    async def _delete_subscription(self, request: web.Request) -> web.Response:
        url = request.query.get("url")
        self.subscriptions = [s for s in self.subscriptions if s.get("url") != url]
        return web.json_response({"success": True})


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)
