"""A lean, fast fake Bot API for load measurements, and the users who walk the bot through it.

The test double of the suite (``tests``' fakegram) checks every call like Telegram does, which
costs more CPU than the bots being measured; this one answers just what a polling bot needs
(getMe, getUpdates, send/edit, answers) and times the first visible reply to each update. It runs
in the benchmark's own process, so the bots under test are measured alone."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_ID = 123_456_789  # the id in the benchmark token (aiogram reads it from there)
VISIBLE = {
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "editMessageCaption",
    "sendDocument",
    "sendPhoto",
    "sendMediaGroup",
}


@dataclass
class Chat:
    """What one user's chat looks like: replies so far, the keyboards last shown."""

    replies: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    inline: list[tuple[str, str, int]] = field(default_factory=list)  # text, data, message id
    # every button seen in the chat, the latest of each text: a later edit that drops the
    # buttons of another message (two replies racing to the user) does not hide it
    buttons: dict[str, tuple[str, int]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)


class LeanTelegram:
    def __init__(self) -> None:
        self._updates: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self.chats: dict[int, Chat] = defaultdict(Chat)
        self.polls = 0
        self.calls: dict[str, int] = defaultdict(int)
        self.fail_until = 0.0  # answer 500 to sends until this monotonic time
        self._runner: web.AppRunner | None = None
        self.port = 0
        # Webhook mode: the workers that registered, posted to in turn (as a round-robin proxy
        # in front of them would); each update is posted once its POST gets a 200.
        self.webhooks: list[tuple[str, str]] = []  # url, secret
        self._turn = itertools.count()
        self._posting: set[asyncio.Task[None]] = set()
        self._last_post: dict[int, asyncio.Task[None]] = {}  # per person: their latest update
        self._http: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def reset(self) -> None:
        self._updates.clear()
        self.chats.clear()
        self.polls = 0
        self.calls.clear()
        self.webhooks.clear()
        self._last_post.clear()

    @property
    def queued(self) -> int:
        return len(self._updates)

    # --- users' side ---------------------------------------------------------------------------

    async def push(self, event: str, body: dict[str, Any]) -> None:
        update = {"update_id": next(self._update_ids), event: body}
        if self.webhooks:
            # One person's updates go out one after another, each once the previous one got its
            # 200 (as Telegram does); other people's go out meanwhile.
            person = body.get("from", {}).get("id", 0)
            previous = self._last_post.get(person)
            task = asyncio.create_task(self._post(update, after=previous))
            self._last_post[person] = task
            self._posting.add(task)
            task.add_done_callback(self._posting.discard)
            return
        async with self._arrived:
            self._updates.append(update)
            self._arrived.notify_all()

    async def _post(self, update: dict[str, Any], after: asyncio.Task[None] | None = None) -> None:
        import aiohttp

        if after is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(after)

        if self._http is None:
            self._http = aiohttp.ClientSession()
        while True:
            url, secret = self.webhooks[next(self._turn) % len(self.webhooks)]
            try:
                async with self._http.post(
                    url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}
                ) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)

    def next_message_id(self) -> int:
        return next(self._message_ids)

    # --- the bot's side ------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.calls[method] += 1
        params: dict[str, Any] = {}
        if request.content_type == "application/json":  # the bot: JSON bodies
            params = {
                key: json.dumps(value) if isinstance(value, dict | list) else value
                for key, value in (await request.json()).items()
            }
        elif request.can_read_body:  # the bare bot: aiogram's form data
            params = dict(await request.post())
        if method == "getUpdates":
            return await self._get_updates(params)
        if method in VISIBLE and time.monotonic() < self.fail_until:
            return web.json_response(
                {"ok": False, "error_code": 500, "description": "Internal Server Error"},
                status=500,
            )
        return web.json_response({"ok": True, "result": self._answer(method, params)})

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        self.polls += 1
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        async with self._arrived:
            if offset:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            if not self._updates and timeout:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), min(timeout, 5))
            batch = self._updates[:limit]
        return web.json_response({"ok": True, "result": batch})

    def _answer(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Bench",
                "username": "bench_bot",
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if method == "setWebhook":
            entry = (str(params["url"]), str(params.get("secret_token", "")))
            if entry not in self.webhooks:
                self.webhooks.append(entry)
            return True
        if method == "getChat":  # a staff chat, as the bot's start-up check wants it
            chat_id = int(params.get("chat_id", 0))
            return {
                "id": chat_id,
                "type": "supergroup",
                "title": "Staff",
                "is_forum": True,
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        if method == "getChatMember":
            user_id = int(params.get("user_id", 0))
            user = {"id": user_id, "is_bot": user_id == BOT_ID, "first_name": "U"}
            if user_id != BOT_ID:
                return {"status": "member", "user": user}
            return {"status": "creator", "user": user, "is_anonymous": False}
        if method not in VISIBLE:
            return True
        chat_id = int(params.get("chat_id", 0))
        chat = self.chats[chat_id]
        markup = json.loads(params["reply_markup"]) if params.get("reply_markup") else None
        message_id = (
            int(params["message_id"]) if params.get("message_id") else self.next_message_id()
        )
        text = str(params.get("text") or params.get("caption") or "")
        if markup and "inline_keyboard" in markup:
            chat.inline = [
                (button["text"], button.get("callback_data", ""), message_id)
                for row in markup["inline_keyboard"]
                for button in row
            ]
            for text, data, mid in chat.inline:
                chat.buttons[text] = (data, mid)
        chat.texts.append(text)
        chat.replies += 1
        chat.changed.set()
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "U"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bench"},
            "text": text or "…",
        }
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        if method == "sendMediaGroup":
            return [message]
        return message


class BenchUser:
    """One patient: sends an update, waits for the first visible reply, clicks buttons by text."""

    def __init__(self, api: LeanTelegram, user_id: int) -> None:
        self.api = api
        self.id = user_id
        self.latencies: list[float] = []

    @property
    def chat(self) -> Chat:
        return self.api.chats[self.id]

    def _person(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": False, "first_name": "Мария", "language_code": "ru"}

    def _message(self, **content: Any) -> dict[str, Any]:
        return {
            "message_id": self.api.next_message_id(),
            "date": int(time.time()),
            "chat": {"id": self.id, "type": "private", "first_name": "Мария"},
            "from": self._person(),
            **content,
        }

    async def send_text(self, text: str) -> None:
        body: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
        await self.api.push("message", self._message(**body))

    async def send_contact(self, phone: str) -> None:
        contact = {"phone_number": phone, "first_name": "Мария", "user_id": self.id}
        await self.api.push("message", self._message(contact=contact))

    async def click(self, label: str) -> bool:
        """Press the inline button whose text contains ``label``; False if none is shown (the
        press still goes out, with data of its own, as a stale button would)."""
        found = next((b for t, b in self.chat.buttons.items() if label in t), None)
        data, message_id = found if found else ("stale", 1)
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": self.id, "type": "private", "first_name": "Мария"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bench"},
            "text": "…",
        }
        body = {
            "id": str(self.api.next_message_id()),
            "from": self._person(),
            "chat_instance": str(self.id),
            "message": message,
            "data": data,
        }
        await self.api.push("callback_query", body)
        return found is not None

    async def wait_reply(self, seen: int, within: float) -> float | None:
        """Seconds until the chat has more than ``seen`` replies (None: none in time)."""
        started = time.monotonic()
        deadline = started + within
        while self.chat.replies <= seen:
            self.chat.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self.chat.changed.wait(), remaining)
            except TimeoutError:
                return None
        return time.monotonic() - started
