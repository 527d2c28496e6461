"""A fake Telegram Bot API server for tests and demos.

Point aiogram at it with ``TelegramAPIServer.from_base(server.base_url)``.
Requests arrive as ``POST {base}/bot{token}/{method}`` (multipart form data,
url-encoded form, JSON body or query string) and file downloads as
``GET {base}/file/bot{token}/{file_path}``.  Answers have the same JSON shapes
and the same error texts as the real Bot API.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import functools
import itertools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from aiohttp import BodyPartReader, web

from .formatting import EntityParseError, parse_text, utf16_len
from .media import (
    file_extension,
    file_folder,
    guess_mime,
    image_size,
    make_file_id,
    make_unique_id,
    photo_dimensions,
)
from .models import (
    MEDIA_KINDS,
    ApiCall,
    ApiError,
    BotState,
    CallbackAnswer,
    CallbackQueryRecord,
    ChatState,
    Download,
    Member,
    MessageEvent,
    StoredFile,
    StoredMessage,
    Topic,
    UpdateSink,
    bad_request,
)

__all__ = ["FakeTelegram", "FakegramTimeout"]

log = logging.getLogger("fakegram")

JSON = dict[str, Any]
T = TypeVar("T")

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
WRONG_FILE_ID = "wrong file identifier/HTTP URL specified"

DEFAULT_DESCRIPTIONS: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

# Update types delivered when allowed_updates is empty / never set.
DEFAULT_EXCLUDED_UPDATES = {"chat_member", "message_reaction", "message_reaction_count"}

CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}

FORUM_ICON_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)

# Multipart fields that are always plain strings (never JSON-decoded).
STRING_FIELDS = {
    "text",
    "caption",
    "parse_mode",
    "name",
    "callback_query_id",
    "url",
    "file_id",
    "photo",
    "document",
    "video",
    "audio",
    "voice",
    "video_note",
    "sticker",
    "animation",
    "thumbnail",
    "action",
    "language_code",
    "title",
    "description",
    "short_description",
    "icon_custom_emoji_id",
    "emoji",
    "business_connection_id",
    "message_effect_id",
    "inline_message_id",
    "secret_token",
    "ip_address",
    "phone_number",
    "first_name",
    "last_name",
    "vcard",
    "address",
    "custom_title",
    "performer",
    "query_id",
    "start_parameter",
    "payload",
    "currency",
}
CHAT_ID_FIELDS = {"chat_id", "from_chat_id", "sender_chat_id"}

_int_re = re.compile(r"^-?\d+$")


#: Command scopes that name a chat (which must exist).
CHAT_SCOPES = frozenset({"chat", "chat_administrators", "chat_member"})


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to post an update to the bot's webhook."""

    update_id: int
    status: int  # the webhook's HTTP status; 0 when it did not answer
    at: float


class FakegramTimeout(AssertionError, TimeoutError):
    """Waiting for something from the bot took too long."""


# ----------------------------------------------------------------- helpers


class _Signal:
    """Wakes everybody waiting for "something changed"."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def fire(self) -> None:
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def wait_for(
        self,
        probe: Callable[[], T | None],
        timeout: float,  # noqa: ASYNC109 - a deadline for a condition, not for I/O
        what: Callable[[], str],
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = probe()
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise FakegramTimeout(f"timed out after {timeout}s waiting for {what()}")
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.add(fut)
            try:
                await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                pass
            finally:
                self._waiters.discard(fut)


@dataclass
class _Fault:
    method: str
    remaining: int
    error_code: int = 0
    description: str = ""
    retry_after: int | None = None
    chat_id: int | str | None = None
    token: str | None = None
    drop: bool = False
    #: ``time.monotonic()`` deadline of a time-window fault (``remaining`` is then ignored)
    until: float | None = None

    def matches(self, method: str, params: JSON, token: str) -> bool:
        if self.method not in ("*", method.lower()):
            return False
        if self.token is not None and self.token != token:
            return False
        return self.chat_id is None or str(params.get("chat_id")) == str(self.chat_id)


class Params:
    """Request parameters with Telegram-like coercion and error texts."""

    def __init__(
        self,
        values: JSON,
        files: dict[str, bytes] | None = None,
        file_names: dict[str, str] | None = None,
        file_types: dict[str, str] | None = None,
    ) -> None:
        self.values = values
        self.files = files or {}
        self.file_names = file_names or {}
        self.file_types = file_types or {}

    def get(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name)
        return default if value is None or value == "" else value

    def has(self, name: str) -> bool:
        return self.get(name) is not None

    def string(self, name: str) -> str | None:
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    def integer(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _int_re.match(value.strip()):
            return int(value.strip())
        raise bad_request(f"{name} is invalid")

    def require_int(self, name: str) -> int:
        value = self.integer(name)
        if value is None:
            raise bad_request(f"{name} is empty")
        return value

    def flag(self, name: str) -> bool:
        value = self.get(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1", "yes")
        return bool(value)

    def json(self, name: str) -> Any:
        value = self.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {name} JSON object") from None
        return value


def _decode_form_value(name: str, value: str) -> Any:
    if name in STRING_FIELDS:
        return value
    if name in CHAT_ID_FIELDS:
        return int(value) if _int_re.match(value.strip()) else value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _strip_reply(data: JSON) -> JSON:
    return {k: copy.deepcopy(v) for k, v in data.items() if k != "reply_to_message"}


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


# ------------------------------------------------------------------ server


class FakeTelegram:
    """In-process fake of ``api.telegram.org`` (see module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        download_limit: int = 20 * 1024 * 1024,
        upload_limit: int = 50 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
        control_api: bool = True,
    ) -> None:
        self.host = host
        self.control_api = control_api
        self.port = port
        self.download_limit = download_limit
        self.upload_limit = upload_limit
        self.clock = clock
        self.update_sink: UpdateSink | None = None
        #: bytes served for ``http(s)://`` URLs bots pass instead of uploads
        self.url_contents: dict[str, bytes] = {}
        self.downloads: list[Download] = []
        self._bots: dict[str, BotState] = {}
        self._calls: list[ApiCall] = []
        self._faults: list[_Fault] = []
        self._blocked: set[int] = set()
        self._signal = _Signal()
        self._event_seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        #: webhook delivery: pause between attempts of an update the bot did not accept
        self.webhook_retry_delay = 0.3
        self.webhook_timeout = 10.0
        #: every attempt to post an update to a webhook, in order
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._webhook_tasks: dict[str, asyncio.Task[None]] = {}
        self._webhook_wake: dict[str, asyncio.Event] = {}
        self._holds: dict[str, asyncio.Event] = {}
        self._held = 0
        self._handlers: dict[str, tuple[str, Callable[[BotState, Params], Awaitable[Any]]]] = {}
        for attr in dir(self):
            if attr.startswith("_m_"):
                name = attr[3:]
                self._handlers[name.lower()] = (name, getattr(self, attr))

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application(client_max_size=self.upload_limit + 10 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        if self.control_api:
            from .control import add_control_routes

            add_control_routes(app, self)
        app.router.add_route("*", "/{tail:.*}", self._handle_not_found)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break
        log.debug("fakegram listening on %s", self.base_url)

    async def stop(self) -> None:
        for task in self._webhook_tasks.values():
            task.cancel()
        await asyncio.gather(*self._webhook_tasks.values(), return_exceptions=True)
        self._webhook_tasks.clear()
        for bot in self._bots.values():
            if bot.poller is not None and not bot.poller.done():
                bot.poller.set_result("stop")
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ bots
    def add_bot(
        self,
        token: str,
        username: str = "oblako_test_bot",
        first_name: str = "Облако здоровья",
    ) -> int:
        """Register a bot token; returns the bot's user id."""
        if token in self._bots:
            return self._bots[token].bot_id
        head = token.split(":", 1)[0]
        bot_id = int(head) if head.isdigit() else 7_000_000_000 + len(self._bots) + 1
        user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": first_name,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._bots[token] = BotState(token=token, bot_id=bot_id, user=user)
        return bot_id

    def bot_state(self, token: str | int | None = None) -> BotState:
        """State of the bot with that token/id (the first added one by default)."""
        if not self._bots:
            raise LookupError("no bot registered: call server.add_bot(token) first")
        if token is None:
            return next(iter(self._bots.values()))
        if isinstance(token, int):
            for bot in self._bots.values():
                if bot.bot_id == token:
                    return bot
        elif token in self._bots:
            return self._bots[token]
        raise LookupError(f"unknown bot {token!r}")

    def bot_user(self, token: str | int | None = None) -> JSON:
        bot = self.bot_state(token)
        return {k: bot.user[k] for k in ("id", "is_bot", "first_name", "username")}

    # ----------------------------------------------------------------- chats
    def register_user(
        self, user: JSON, *, token: str | int | None = None, started: bool = True
    ) -> ChatState:
        """Make a user (and their private chat with the bot) known.

        ``started=False``: the user has never written to the bot, so until they
        do the bot gets 403 "bot can't initiate conversation with a user".
        """
        bot = self.bot_state(token)
        uid = int(user["id"])
        bot.users[uid] = dict(user)
        chat = bot.chats.get(uid)
        chat_json = {"id": uid, "type": "private", "first_name": user.get("first_name", "")}
        for key in ("last_name", "username"):
            if user.get(key):
                chat_json[key] = user[key]
        if chat is None:
            chat = ChatState(chat=chat_json, bot_status="member", started=started)
            bot.chats[uid] = chat
        else:
            chat.chat.update(chat_json)
        return chat

    def add_chat(
        self,
        chat: JSON,
        *,
        token: str | int | None = None,
        bot_status: str = "administrator",
    ) -> ChatState:
        """Make a group/supergroup/channel known (``chat`` is a Chat dict)."""
        bot = self.bot_state(token)
        cid = int(chat["id"])
        state = bot.chats.get(cid)
        if state is None:
            state = ChatState(chat=dict(chat), bot_status=bot_status)
            if state.is_forum:
                # id 1 is the General topic (the chat's creation) in a real forum
                state.next_message_id = 2
            bot.chats[cid] = state
        else:
            state.chat.update(chat)
            state.bot_status = bot_status
        return state

    def chat(self, chat_id: int, *, token: str | int | None = None) -> ChatState:
        bot = self.bot_state(token)
        try:
            return bot.chats[chat_id]
        except KeyError:
            raise LookupError(f"chat {chat_id} is unknown to the fake") from None

    def messages(
        self,
        chat_id: int,
        *,
        token: str | int | None = None,
        from_bot: bool | None = True,
        include_deleted: bool = False,
        thread_id: int | None = None,
    ) -> list[StoredMessage]:
        """Messages of a chat in id order (bot's only by default)."""
        state = self.chat(chat_id, token=token)
        found = []
        for msg in sorted(state.messages.values(), key=lambda m: m.message_id):
            if from_bot is not None and msg.from_bot != from_bot:
                continue
            if msg.deleted and not include_deleted:
                continue
            if thread_id is not None and msg.message_thread_id != thread_id:
                continue
            found.append(msg)
        return found

    def commands(
        self,
        scope: JSON | None = None,
        language_code: str = "",
        *,
        token: str | int | None = None,
    ) -> list[JSON]:
        """Commands stored by setMyCommands for that scope and language."""
        bot = self.bot_state(token)
        return list(bot.commands.get((self._scope_key(scope), language_code or ""), []))

    def file(self, file_id: str, *, token: str | int | None = None) -> StoredFile:
        bot = self.bot_state(token)
        return bot.files[file_id]

    # ------------------------------------------------------ fault injection
    def fail_next(
        self,
        method: str,
        *,
        error_code: int,
        description: str | None = None,
        retry_after: int | None = None,
        chat_id: int | str | None = None,
        times: int = 1,
        token: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (``"*"``: any) with an error."""
        if error_code == 429:
            retry_after = 1 if retry_after is None else retry_after
            description = description or f"Too Many Requests: retry after {retry_after}"
        elif description is None:
            description = DEFAULT_DESCRIPTIONS.get(error_code, "Bad Request")
        self._faults.append(
            _Fault(
                method=method.lower(),
                remaining=times,
                error_code=error_code,
                description=description,
                retry_after=retry_after,
                chat_id=chat_id,
                token=token,
            )
        )

    def fail_for(
        self,
        methods: str | Iterable[str],
        seconds: float,
        *,
        error_code: int,
        description: str | None = None,
        retry_after: int | None = None,
        chat_id: int | str | None = None,
        token: str | None = None,
    ) -> None:
        """Answer every call of ``methods`` (``"*"``: any) with an error for the next
        ``seconds`` (an outage: each call in the window fails, however often it is repeated)."""
        until = time.monotonic() + seconds
        for method in [methods] if isinstance(methods, str) else list(methods):
            self.fail_next(
                method,
                error_code=error_code,
                description=description,
                retry_after=retry_after,
                chat_id=chat_id,
                token=token,
            )
            self._faults[-1].until = until

    def network_drop_next(
        self,
        method: str,
        times: int = 1,
        *,
        chat_id: int | str | None = None,
        token: str | None = None,
    ) -> None:
        """Close the connection of the next ``times`` calls without any answer."""
        self._faults.append(
            _Fault(method=method.lower(), remaining=times, chat_id=chat_id, token=token, drop=True)
        )

    def hold(self, method: str) -> None:
        """Calls of ``method`` wait (unanswered, not yet recorded) until ``release``. A call
        whose bot disconnected meanwhile (a killed process) is then dropped, never executed."""
        self._holds.setdefault(method.lower(), asyncio.Event())

    def release(self, method: str | None = None) -> None:
        for name in [method.lower()] if method else list(self._holds):
            gate = self._holds.pop(name, None)
            if gate is not None:
                gate.set()

    async def wait_for_held(
        self,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109 - part of the test-facing API
    ) -> None:
        """Wait until at least ``count`` calls are waiting at a hold."""

        def probe() -> bool | None:
            return True if self._held >= count else None

        await self._signal.wait_for(probe, timeout, lambda: f"{count} held call(s)")

    def clear_faults(self) -> None:
        self._faults.clear()

    def block(self, user_id: int) -> None:
        """The user blocked the bot: sends to them get 403."""
        self._blocked.add(user_id)

    def unblock(self, user_id: int) -> None:
        self._blocked.discard(user_id)

    def is_blocked(self, user_id: int) -> bool:
        return user_id in self._blocked

    # ------------------------------------------------------------ recording
    def calls(
        self,
        method: str | None = None,
        chat_id: int | str | None = None,
        *,
        token: str | None = None,
    ) -> list[ApiCall]:
        """Recorded API calls (in the order their answers were sent)."""
        found = []
        for call in self._calls:
            if method is not None and call.method.lower() != method.lower():
                continue
            if chat_id is not None and str(call.params.get("chat_id")) != str(chat_id):
                continue
            if token is not None and call.token != token:
                continue
            found.append(call)
        return found

    def calls_since(self, index: int) -> list[ApiCall]:
        """Recorded calls from log position ``index`` on (to follow the log incrementally)."""
        return self._calls[index:]

    @property
    def call_count(self) -> int:
        """Number of recorded calls; pass it as ``after_index`` to wait for newer ones."""
        return len(self._calls)

    def last_call(self, method: str | None = None) -> ApiCall | None:
        found = self.calls(method)
        return found[-1] if found else None

    async def wait_for_call(
        self,
        method: str | None,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - part of the test-facing API
        after_index: int | None = None,
    ) -> ApiCall:
        """First call of ``method`` (None: any) at log position >= ``after_index``
        that matches ``predicate``; waits for it up to ``timeout`` seconds."""
        start = after_index or 0

        def probe() -> ApiCall | None:
            for call in self._calls[start:]:
                if method not in (None, "*", "") and call.method.lower() != method.lower():
                    continue
                if predicate is None or predicate(call):
                    return call
            return None

        def what() -> str:
            recent = "\n  ".join(repr(c) for c in self._calls[-10:]) or "(none)"
            return f"a {method!r} call; recent calls:\n  {recent}"

        return await self._signal.wait_for(probe, timeout, what)

    # --------------------------------------------------------------- updates
    async def push_update(self, update: JSON, *, token: str | int | None = None) -> int:
        """Give the bot an update (``update_id`` is assigned here).

        With an update sink set, awaits it (the bot handled the update when
        this returns); otherwise queues it for ``getUpdates``.
        """
        bot = self.bot_state(token)
        update = self._stamp(bot, update)
        sink = bot.update_sink or self.update_sink
        if sink is not None:
            try:
                await sink(update)
            finally:
                bot.consumed_below = max(bot.consumed_below, update["update_id"] + 1)
                self._signal.fire()
        else:
            self._enqueue(bot, update)
        return int(update["update_id"])

    async def push_updates(
        self,
        updates: Iterable[JSON],
        *,
        token: str | int | None = None,
        concurrent: bool = True,
    ) -> list[int]:
        """Push several updates; with a sink and ``concurrent`` they are handled
        concurrently (like an album arriving at once), started in order."""
        bot = self.bot_state(token)
        stamped = [self._stamp(bot, u) for u in updates]
        sink = bot.update_sink or self.update_sink
        if sink is None:
            for update in stamped:
                self._enqueue(bot, update)
        elif concurrent:
            try:
                await asyncio.gather(*(sink(u) for u in stamped))
            finally:
                if stamped:
                    last = stamped[-1]["update_id"]
                    bot.consumed_below = max(bot.consumed_below, last + 1)
                self._signal.fire()
        else:
            for update in stamped:
                try:
                    await sink(update)
                finally:
                    bot.consumed_below = max(bot.consumed_below, update["update_id"] + 1)
        return [int(u["update_id"]) for u in stamped]

    def _stamp(self, bot: BotState, update: JSON) -> JSON:
        update_id = bot.next_update_id
        bot.next_update_id += 1
        stamped = {"update_id": update_id}
        stamped.update({k: v for k, v in update.items() if k != "update_id"})
        bot.update_log.append(stamped)
        return stamped

    def _enqueue(self, bot: BotState, update: JSON) -> None:
        bot.queue.append(update)
        self._kick_webhook(bot)
        if bot.poller is not None and not bot.poller.done():
            bot.poller.set_result("update")
        self._signal.fire()

    def redeliver(self, update_id: int, *, token: str | int | None = None) -> None:
        """Send an update again with the same update_id, as Telegram does when it did not get
        (or did not believe) the bot's acknowledgement."""
        bot = self.bot_state(token)
        update = next(u for u in bot.update_log if u["update_id"] == update_id)
        self._enqueue(bot, copy.deepcopy(update))

    def webhook_statuses(self, update_id: int) -> list[int]:
        """HTTP statuses of every attempt to post ``update_id`` to the webhook (0: no answer)."""
        return [d.status for d in self.webhook_deliveries if d.update_id == update_id]

    async def wait_until_delivered(
        self,
        update_ids: Iterable[int],
        timeout: float = 10.0,  # noqa: ASYNC109 - part of the test-facing API
    ) -> None:
        """Wait until the webhook accepted (200) each of ``update_ids``."""
        wanted = set(update_ids)

        def probe() -> bool | None:
            ok = {d.update_id for d in self.webhook_deliveries if d.status == 200}
            return True if wanted <= ok else None

        await self._signal.wait_for(probe, timeout, lambda: f"updates {sorted(wanted)} accepted")

    def _kick_webhook(self, bot: BotState) -> None:
        if bot.webhook is None or self._runner is None:
            return
        task = self._webhook_tasks.get(bot.token)
        if task is None or task.done():
            self._webhook_wake[bot.token] = asyncio.Event()
            self._webhook_tasks[bot.token] = asyncio.get_running_loop().create_task(
                self._deliver_webhook(bot)
            )
        self._webhook_wake[bot.token].set()

    def _stop_webhook(self, bot: BotState) -> None:
        task = self._webhook_tasks.pop(bot.token, None)
        if task is not None:
            task.cancel()

    async def _deliver_webhook(self, bot: BotState) -> None:
        """Post queued updates to the webhook like Telegram: up to max_connections at once,
        an update leaves the queue only on a 200, anything else is retried after a pause."""
        wake = self._webhook_wake[bot.token]
        in_flight: dict[int, asyncio.Task[None]] = {}
        retry_at: dict[int, float] = {}
        async with aiohttp.ClientSession() as session:
            try:
                while bot.webhook is not None:
                    wake.clear()
                    self._filter_queue(bot)
                    hook = bot.webhook
                    now = time.monotonic()
                    room = int(hook["max_connections"]) - len(in_flight)
                    for update in list(bot.queue):
                        if room <= 0:
                            break
                        uid = update["update_id"]
                        if uid in in_flight or retry_at.get(uid, 0.0) > now:
                            continue
                        in_flight[uid] = asyncio.create_task(
                            self._post_update(session, bot, hook, update, retry_at)
                        )
                        room -= 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), 0.05)
                    for uid in [u for u, t in in_flight.items() if t.done()]:
                        in_flight.pop(uid)
            finally:
                for task in in_flight.values():
                    task.cancel()
                await asyncio.gather(*in_flight.values(), return_exceptions=True)

    async def _post_update(
        self,
        session: aiohttp.ClientSession,
        bot: BotState,
        hook: JSON,
        update: JSON,
        retry_at: dict[int, float],
    ) -> None:
        headers = {"Content-Type": "application/json"}
        if hook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(hook["secret_token"])
        uid = int(update["update_id"])
        error = ""
        try:
            async with session.post(
                str(hook["url"]),
                data=json.dumps(update, ensure_ascii=False).encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
            ) as response:
                status = response.status
                error = "" if status == 200 else f"Wrong response from the webhook: {status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            status, error = 0, f"Connection failed: {type(exc).__name__}"
        self.webhook_deliveries.append(WebhookDelivery(uid, status, self.clock()))
        if status == 200:
            bot.queue = [u for u in bot.queue if u["update_id"] != uid]
            lowest = min((u["update_id"] for u in bot.queue), default=bot.next_update_id)
            bot.consumed_below = max(bot.consumed_below, lowest)
            retry_at.pop(uid, None)
        else:
            hook["last_error_date"] = int(self.clock())
            hook["last_error_message"] = error
            retry_at[uid] = time.monotonic() + self.webhook_retry_delay
        self._signal.fire()
        wake = self._webhook_wake.get(bot.token)
        if wake is not None:
            wake.set()

    def pending_updates(self, *, token: str | int | None = None) -> list[JSON]:
        return list(self.bot_state(token).queue)

    async def wait_until_consumed(
        self,
        update_id: int,
        timeout: float = 10.0,  # noqa: ASYNC109 - part of the test-facing API
        *,
        token: str | int | None = None,
    ) -> None:
        """Wait until a getUpdates call confirmed ``update_id`` (offset > id)."""
        bot = self.bot_state(token)

        def probe() -> bool | None:
            return True if bot.consumed_below > update_id else None

        await self._signal.wait_for(
            probe, timeout, lambda: f"update {update_id} to be confirmed by getUpdates"
        )

    async def wait_for_polling(
        self,
        timeout: float = 10.0,  # noqa: ASYNC109 - part of the test-facing API
        *,
        token: str | int | None = None,
        after: int | None = None,
    ) -> None:
        """Wait until the bot has a getUpdates long poll waiting (it is ready for updates); with
        ``after`` (a ``poll_count()`` taken before), until a getUpdates request arrived since
        then: a bot started anew is polling (a long poll is logged as a call only when it
        returns, up to its timeout later, and a killed process's poll may still be waiting)."""
        bot = self.bot_state(token)

        def probe() -> bool | None:
            if after is not None:
                return True if bot.polls > after else None
            return True if bot.poller is not None and not bot.poller.done() else None

        await self._signal.wait_for(probe, timeout, lambda: "a waiting getUpdates long poll")

    def poll_count(self, *, token: str | int | None = None) -> int:
        """getUpdates requests received so far (see ``wait_for_polling``)."""
        return self.bot_state(token).polls

    # --------------------------------------------------------------- events
    def event_seq(self, *, token: str | int | None = None) -> int:
        """Sequence number of the newest message event (0 if none)."""
        events = self.bot_state(token).events
        return events[-1].seq if events else 0

    async def wait_for_event(
        self,
        probe: Callable[[], T | None],
        timeout: float,  # noqa: ASYNC109 - part of the test-facing API
        what: Callable[[], str],
    ) -> T:
        return await self._signal.wait_for(probe, timeout, what)

    def _emit(self, bot: BotState, msg: StoredMessage, kind: str) -> None:
        bot.events.append(
            MessageEvent(
                seq=next(self._event_seq),
                chat_id=msg.chat_id,
                message_id=msg.message_id,
                kind=kind,
                from_bot=msg.from_bot,
            )
        )
        self._signal.fire()

    # ------------------------------------------------- client-side helpers
    def now(self) -> int:
        return int(self.clock())

    def store_user_message(
        self,
        chat_id: int,
        sender: JSON,
        content: JSON,
        *,
        token: str | int | None = None,
        thread_id: int | None = None,
        reply_to: int | None = None,
        media_group_id: str | None = None,
    ) -> StoredMessage:
        """Record a message a user sends (gets the next id of the chat)."""
        bot = self.bot_state(token)
        chat = self.chat(chat_id, token=token)
        chat.started = True
        data: JSON = {"message_id": chat.allocate_id(), "from": dict(sender), "chat": chat.chat}
        data["date"] = self.now()
        target = chat.messages.get(reply_to) if reply_to is not None else None
        if reply_to is not None and target is None:
            raise AssertionError(f"message {reply_to} does not exist in chat {chat_id}")
        if target is not None and thread_id is None:
            thread_id = target.message_thread_id
        if thread_id is not None and chat.is_forum:
            topic = chat.topics.get(thread_id)
            if topic is None or topic.deleted:
                raise AssertionError(f"topic {thread_id} does not exist in chat {chat_id}")
            data["message_thread_id"] = thread_id
            data["is_topic_message"] = True
            root = chat.messages.get(thread_id)
            if target is None and root is not None:
                data["reply_to_message"] = _strip_reply(root.data)
        if target is not None:
            data["reply_to_message"] = _strip_reply(target.data)
        if media_group_id is not None:
            data["media_group_id"] = media_group_id
        data.update(content)
        msg = StoredMessage(
            chat_id=chat_id,
            message_id=data["message_id"],
            data=data,
            from_bot=False,
            method="user",
            raw_text=content.get("text") or content.get("caption"),
            sent_at=self.clock(),
        )
        chat.messages[msg.message_id] = msg
        self._emit(bot, msg, "new")
        return msg

    def edit_user_message(
        self, chat_id: int, message_id: int, text: str, *, token: str | int | None = None
    ) -> StoredMessage:
        bot = self.bot_state(token)
        chat = self.chat(chat_id, token=token)
        msg = chat.messages.get(message_id)
        if msg is None or msg.from_bot or msg.deleted:
            raise AssertionError(f"no user message {message_id} in chat {chat_id} to edit")
        msg.history.append(msg.snapshot())
        key = "text" if "text" in msg.data else "caption"
        msg.data[key] = text
        msg.data.pop("entities" if key == "text" else "caption_entities", None)
        msg.data["edit_date"] = self.now()
        msg.raw_text = text
        self._emit(bot, msg, "edit")
        return msg

    def register_user_file(
        self,
        data: bytes,
        kind: str,
        *,
        token: str | int | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
        file_size: int | None = None,
        **extra: Any,
    ) -> StoredFile:
        """A file a user sends (the bot can getFile/download/re-send it)."""
        bot = self.bot_state(token)
        return self._register_file(
            bot,
            data,
            kind,
            file_name=file_name,
            mime_type=mime_type,
            from_bot=False,
            claimed_size=file_size,
            **extra,
        )

    def register_user_photo(
        self,
        data: bytes,
        *,
        token: str | int | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> list[JSON]:
        """Register a user's photo; returns its PhotoSize list (smallest first)."""
        bot = self.bot_state(token)
        largest = self._register_photo(bot, data, from_bot=False, width=width, height=height)
        return self._photo_json(bot, largest)

    def new_callback_query(
        self,
        user: JSON,
        message: StoredMessage | None,
        data: str | None,
        *,
        chat_id: int | None = None,
        message_id: int | None = None,
        token: str | int | None = None,
    ) -> JSON:
        """Build a CallbackQuery dict (and remember it for answerCallbackQuery)."""
        bot = self.bot_state(token)
        query_id = str(4_000_000_000_000_000_000 + next(self._ids) * 7_919)
        chat_id = message.chat_id if message is not None else chat_id
        message_id = message.message_id if message is not None else message_id
        bot.callback_queries[query_id] = CallbackQueryRecord(
            id=query_id,
            user_id=int(user["id"]),
            chat_id=chat_id,
            message_id=message_id,
            data=data,
        )
        query: JSON = {
            "id": query_id,
            "from": dict(user),
            "chat_instance": str((abs(chat_id or 0) * 2_654_435_761) % 10**19),
        }
        if message is not None:
            query["message"] = copy.deepcopy(message.data)
        elif chat_id is not None and message_id is not None:
            chat = bot.chats.get(chat_id)
            chat_json = chat.chat if chat else {"id": chat_id, "type": "private"}
            query["message"] = {"chat": chat_json, "message_id": message_id, "date": 0}
        if data is not None:
            query["data"] = data
        return query

    def callback_answer(
        self, query_id: str, *, token: str | int | None = None
    ) -> CallbackAnswer | None:
        record = self.bot_state(token).callback_queries.get(query_id)
        return record.answer if record else None

    def create_topic(
        self,
        chat_id: int,
        name: str,
        *,
        icon_color: int = FORUM_ICON_COLORS[0],
        token: str | int | None = None,
        by: JSON | None = None,
    ) -> Topic:
        """Create a forum topic directly (as if a user made it)."""
        bot = self.bot_state(token)
        chat = self.chat(chat_id, token=token)
        return self._create_topic(bot, chat, name, icon_color, None, by=by)

    # ------------------------------------------------------------- HTTP glue
    async def _read_params(self, request: web.Request) -> Params:
        values: JSON = {}
        for key, value in request.query.items():
            values[key] = _decode_form_value(key, value)
        files: dict[str, bytes] = {}
        names: dict[str, str] = {}
        types: dict[str, str] = {}
        ctype = request.content_type
        if request.method == "POST" and request.can_read_body:
            if ctype == "multipart/form-data":
                reader = await request.multipart()
                while True:
                    part = await reader.next()
                    if part is None:
                        break
                    if not isinstance(part, BodyPartReader) or part.name is None:
                        continue
                    raw = await part.read(decode=True)
                    if part.filename is not None:
                        files[part.name] = bytes(raw)
                        names[part.name] = part.filename
                        types[part.name] = part.headers.get("Content-Type", "")
                    else:
                        text = bytes(raw).decode(part.get_charset(default="utf-8"))
                        values[part.name] = _decode_form_value(part.name, text)
            elif ctype == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise bad_request("can't parse JSON object")
                for key, item in body.items():
                    if key in CHAT_ID_FIELDS and isinstance(item, str) and _int_re.match(item):
                        values[key] = int(item)
                    else:
                        values[key] = item
            elif ctype == "application/x-www-form-urlencoded":
                form = await request.post()
                for key, field_value in form.items():
                    if isinstance(field_value, str):
                        values[key] = _decode_form_value(key, field_value)
        return Params(values, files, names, types)

    def _respond(self, status: int, payload: JSON) -> web.Response:
        return web.json_response(
            payload, status=status, dumps=functools.partial(json.dumps, ensure_ascii=False)
        )

    async def _handle_not_found(self, request: web.Request) -> web.Response:
        return self._respond(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        raw_method = request.match_info["method"]
        at = self.clock()
        entry = self._handlers.get(raw_method.lower())
        method = entry[0] if entry else raw_method
        try:
            params = await self._read_params(request)
        except ApiError as exc:
            call = ApiCall(method=method, params={}, files={}, at=at, token=token)
            return self._finish(call, exc.error_code, exc.payload())
        call = ApiCall(
            method=method,
            params=params.values,
            files=params.files,
            at=at,
            token=token,
            file_names=params.file_names,
        )
        bot = self._bots.get(token)
        if bot is None:
            return self._finish(
                call, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            )
        gate = self._holds.get(method.lower())
        if gate is not None:
            self._held += 1
            self._signal.fire()
            try:
                await gate.wait()
            finally:
                self._held -= 1
            if request.transport is None or request.transport.is_closing():
                # The bot went away while the call was held: the call never happened.
                self._record(call, 0, None)
                return web.Response(status=500)
        fault = self._take_fault(method, params.values, token)
        if fault is not None and fault.drop:
            self._record(call, 0, None)
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        if fault is not None:
            error = ApiError(fault.error_code, fault.description, retry_after=fault.retry_after)
            return self._finish(call, fault.error_code, error.payload())
        if entry is None:
            return self._finish(
                call,
                404,
                {"ok": False, "error_code": 404, "description": "Not Found: method not found"},
            )
        try:
            result = await entry[1](bot, params)
        except ApiError as exc:
            return self._finish(call, exc.error_code, exc.payload())
        except Exception as exc:  # a gap in the fake: say so loudly, in Telegram's format
            log.exception("fakegram failed to handle %s", method)
            description = f"Internal Server Error: fakegram could not handle {method}: {exc!r}"
            return self._finish(
                call, 500, {"ok": False, "error_code": 500, "description": description}
            )
        return self._finish(call, 200, {"ok": True, "result": result})

    def _finish(self, call: ApiCall, status: int, payload: JSON) -> web.Response:
        self._record(call, status, payload)
        return self._respond(status, payload)

    def _record(self, call: ApiCall, status: int, payload: JSON | None) -> None:
        call.status = status
        call.response = payload
        call.finished_at = self.clock()
        call.index = len(self._calls)
        self._calls.append(call)
        if payload is not None and not payload.get("ok"):
            log.debug("fakegram %s -> %s", call.method, payload.get("description"))
        self._signal.fire()

    def _take_fault(self, method: str, params: JSON, token: str) -> _Fault | None:
        now = time.monotonic()
        self._faults = [f for f in self._faults if f.until is None or f.until > now]
        for fault in self._faults:
            if fault.matches(method, params, token):
                if fault.until is not None:
                    return fault
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        path = request.match_info["path"]
        bot = self._bots.get(token)
        stored = bot.files_by_path.get(path) if bot else None
        self.downloads.append(
            Download(token=token, file_path=path, at=self.clock(), status=200 if stored else 404)
        )
        if stored is None:
            return self._respond(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    # ------------------------------------------------------- shared checks
    def _resolve_chat(self, bot: BotState, value: Any) -> ChatState:
        if value is None or value == "":
            raise bad_request("chat_id is empty")
        if isinstance(value, str):
            if value.startswith("@"):
                wanted = value[1:].lower()
                for known in bot.chats.values():
                    if str(known.chat.get("username", "")).lower() == wanted:
                        return known
                raise bad_request("chat not found")
            if not _int_re.match(value):
                raise bad_request("chat not found")
            value = int(value)
        if not isinstance(value, int):
            raise bad_request("chat not found")
        chat = bot.chats.get(value)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _check_can_write(self, chat: ChatState) -> None:
        if chat.is_private:
            if chat.id in self._blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if not chat.started:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            return
        kind = "supergroup chat" if chat.type == "supergroup" else f"{chat.type} chat"
        if chat.type == "channel":
            kind = "channel chat"
        if chat.bot_status == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {kind}")
        if chat.bot_status == "left":
            raise ApiError(403, f"Forbidden: bot is not a member of the {kind}")

    def _target_chat(self, bot: BotState, p: Params, name: str = "chat_id") -> ChatState:
        chat = self._resolve_chat(bot, p.get(name))
        self._check_can_write(chat)
        return chat

    def _bot_is_admin(self, chat: ChatState) -> bool:
        return chat.is_private or chat.bot_status in ("administrator", "creator")

    def _bot_may_manage_topics(self, chat: ChatState) -> bool:
        if chat.bot_status == "creator":
            return True
        return chat.bot_status == "administrator" and chat.bot_rights.get("can_manage_topics", True)

    def _format(self, raw: str, parse_mode: str | None, entities: Any) -> tuple[str, list[JSON]]:
        if parse_mode:
            try:
                return parse_text(raw, parse_mode)
            except EntityParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from None
            except ValueError:
                raise bad_request("unsupported parse_mode") from None
        if isinstance(entities, list):
            return raw, [dict(e) for e in entities if isinstance(e, dict)]
        return raw, []

    def _caption(self, p: Params | JSON) -> tuple[JSON, str | None]:
        get = p.get
        raw = get("caption")
        if raw is None or raw == "":
            return {}, None
        raw = str(raw)
        entities = get("caption_entities")
        if isinstance(entities, str):
            try:
                entities = json.loads(entities)
            except ValueError:
                raise bad_request("can't parse caption_entities JSON object") from None
        text, ents = self._format(raw, get("parse_mode"), entities)
        if utf16_len(text) > 1024:
            raise bad_request("message caption is too long")
        content: JSON = {"caption": text}
        if ents:
            content["caption_entities"] = ents
        return content, raw

    def _markup(self, value: Any, *, inline_only: bool = False) -> JSON | None:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise bad_request("can't parse reply keyboard markup JSON object") from None
        if not isinstance(value, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in value:
            rows = value["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request("can't parse inline keyboard markup JSON object")
            return {"inline_keyboard": [[self._inline_button(b) for b in row] for row in rows]}
        if inline_only:
            raise bad_request("inline keyboard expected")
        if "keyboard" in value:
            rows = value["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request("can't parse reply keyboard markup JSON object")
            norm = [[{"text": b} if isinstance(b, str) else dict(b) for b in row] for row in rows]
            for row in norm:
                for button in row:
                    if not button.get("text"):
                        raise bad_request("can't parse keyboard button: text is empty")
            markup = dict(value)
            markup["keyboard"] = norm
            return markup
        if value.get("remove_keyboard") or value.get("force_reply"):
            return dict(value)
        raise bad_request("can't parse reply keyboard markup JSON object")

    def _inline_button(self, button: Any) -> JSON:
        if not isinstance(button, dict) or not button.get("text"):
            raise bad_request("can't parse inline keyboard button: Text is empty")
        actions = [
            k
            for k in (
                "callback_data",
                "url",
                "web_app",
                "login_url",
                "switch_inline_query",
                "switch_inline_query_current_chat",
                "switch_inline_query_chosen_chat",
                "copy_text",
                "callback_game",
                "pay",
            )
            if k in button and button[k] is not None
        ]
        if not actions:
            raise bad_request(
                "can't parse inline keyboard button: Text buttons are unallowed in the "
                "inline keyboard"
            )
        data = button.get("callback_data")
        if data is not None and not (1 <= len(str(data).encode()) <= 64):
            raise bad_request("BUTTON_DATA_INVALID")
        url = button.get("url")
        if url is not None and not re.match(r"^(https?|tg)://\S+$", str(url)):
            raise bad_request("BUTTON_URL_INVALID")
        return dict(button)

    # -------------------------------------------------------------- sending
    def _prepare_send(self, chat: ChatState, p: Params) -> tuple[int | None, StoredMessage | None]:
        thread_id = p.integer("message_thread_id")
        reply = p.json("reply_parameters")
        reply_id: int | None = None
        allow_missing = p.flag("allow_sending_without_reply")
        if isinstance(reply, dict) and reply.get("message_id") is not None:
            reply_id = int(reply["message_id"])
            allow_missing = bool(reply.get("allow_sending_without_reply", allow_missing))
            other = reply.get("chat_id")
            if other is not None and str(other) != str(chat.id):
                raise bad_request("message to be replied not found")
        elif p.has("reply_to_message_id"):
            reply_id = p.require_int("reply_to_message_id")
        target: StoredMessage | None = None
        if reply_id is not None:
            target = chat.messages.get(reply_id)
            if target is None or target.deleted:
                if not allow_missing:
                    raise bad_request("message to be replied not found")
                target = None
        if chat.is_forum:
            if thread_id is None and target is not None:
                thread_id = target.message_thread_id
            if thread_id is not None and thread_id != 1:
                topic = chat.topics.get(thread_id)
                if topic is None or topic.deleted:
                    raise bad_request("message thread not found")
                if topic.closed and not self._bot_is_admin(chat):
                    raise bad_request("TOPIC_CLOSED")
            if thread_id == 1:
                thread_id = None
        return thread_id, target

    def _store_bot_message(
        self,
        bot: BotState,
        chat: ChatState,
        content: JSON,
        *,
        method: str,
        thread_id: int | None = None,
        reply_to: StoredMessage | None = None,
        markup: JSON | None = None,
        raw_text: str | None = None,
        parse_mode: str | None = None,
        link_preview_options: JSON | None = None,
        media_group_id: str | None = None,
        protect: bool = False,
    ) -> StoredMessage:
        data: JSON = {
            "message_id": chat.allocate_id(),
            "from": self._bot_from(bot),
            "chat": chat.chat,
            "date": self.now(),
        }
        if thread_id is not None and chat.is_forum:
            data["message_thread_id"] = thread_id
            data["is_topic_message"] = True
        elif thread_id is not None:
            data["message_thread_id"] = thread_id
        if reply_to is not None:
            data["reply_to_message"] = _strip_reply(reply_to.data)
        elif thread_id is not None and chat.is_forum:
            root = chat.messages.get(thread_id)
            if root is not None:
                data["reply_to_message"] = _strip_reply(root.data)
        if media_group_id is not None:
            data["media_group_id"] = media_group_id
        if protect:
            data["has_protected_content"] = True
        data.update(content)
        if markup is not None and "inline_keyboard" in markup:
            data["reply_markup"] = copy.deepcopy(markup)
        msg = StoredMessage(
            chat_id=chat.id,
            message_id=data["message_id"],
            data=data,
            from_bot=True,
            method=method,
            reply_markup=copy.deepcopy(markup),
            parse_mode=parse_mode,
            raw_text=raw_text,
            link_preview_options=link_preview_options,
            sent_at=self.clock(),
        )
        chat.messages[msg.message_id] = msg
        self._emit(bot, msg, "new")
        return msg

    def _bot_from(self, bot: BotState) -> JSON:
        return {k: bot.user[k] for k in ("id", "is_bot", "first_name", "username")}

    # ---------------------------------------------------------------- files
    def _register_file(
        self,
        bot: BotState,
        data: bytes,
        kind: str,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        from_bot: bool = True,
        claimed_size: int | None = None,
        variant: str = "",
        **extra: Any,
    ) -> StoredFile:
        width = extra.pop("width", None)
        height = extra.pop("height", None)
        duration = extra.pop("duration", None)
        stored = StoredFile(
            file_id=make_file_id(kind, bot.bot_id),
            file_unique_id=make_unique_id(data, variant),
            data=data,
            kind=kind,
            file_size=claimed_size if claimed_size is not None else len(data),
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
            duration=duration,
            from_bot=from_bot,
            extra={k: v for k, v in extra.items() if v is not None},
        )
        bot.files[stored.file_id] = stored
        return stored

    def _register_photo(
        self,
        bot: BotState,
        data: bytes,
        *,
        from_bot: bool,
        width: int | None = None,
        height: int | None = None,
    ) -> StoredFile:
        if width is None or height is None:
            width, height = image_size(data) or (1280, 960)
        ladder = photo_dimensions(width, height)
        sizes: list[StoredFile] = []
        for index, (w, h, letter) in enumerate(ladder):
            last = index == len(ladder) - 1
            share = (w * h) / max(1, width * height)
            sizes.append(
                self._register_file(
                    bot,
                    data,
                    "photo",
                    mime_type="image/jpeg",
                    from_bot=from_bot,
                    claimed_size=len(data) if last else max(1, int(len(data) * share)),
                    variant="" if last else f"{letter}{index}",
                    width=w,
                    height=h,
                )
            )
        ids = [s.file_id for s in sizes]
        for size in sizes:
            size.photo_sizes = ids
        return sizes[-1]

    def _photo_json(self, bot: BotState, stored: StoredFile) -> list[JSON]:
        ids = stored.photo_sizes or [stored.file_id]
        out = []
        for file_id in ids:
            f = bot.files[file_id]
            out.append(
                {
                    "file_id": f.file_id,
                    "file_unique_id": f.file_unique_id,
                    "file_size": f.file_size,
                    "width": f.width or 0,
                    "height": f.height or 0,
                }
            )
        return out

    def file_json(self, f: StoredFile) -> JSON:
        """The Document/Voice/Sticker/... object for a stored file."""
        return self._file_json(f)

    def _file_json(self, f: StoredFile) -> JSON:
        body: JSON = {"file_id": f.file_id, "file_unique_id": f.file_unique_id}
        kind = f.kind
        if kind in ("video", "animation", "sticker", "thumbnail", "photo"):
            body["width"] = f.width or (512 if kind == "sticker" else 640)
            body["height"] = f.height or (512 if kind == "sticker" else 360)
        if kind in ("video", "animation", "audio", "voice", "video_note"):
            body["duration"] = f.duration or 1
        if kind == "video_note":
            body["length"] = int(f.extra.get("length", 240))
        if kind == "sticker":
            body["type"] = "regular"
            body["is_animated"] = False
            body["is_video"] = False
            if f.extra.get("emoji"):
                body["emoji"] = f.extra["emoji"]
        if kind == "audio":
            for key in ("performer", "title"):
                if f.extra.get(key):
                    body[key] = f.extra[key]
        if kind in ("document", "video", "audio", "animation") and f.file_name:
            body["file_name"] = f.file_name
        if kind in ("document", "video", "audio", "animation", "voice") and f.mime_type:
            body["mime_type"] = f.mime_type
        body["file_size"] = f.file_size
        return body

    def _resolve_input_file(
        self,
        bot: BotState,
        value: Any,
        p: Params,
        field: str,
        kind: str,
    ) -> StoredFile:
        upload: tuple[bytes, str | None, str | None] | None = None
        if field in p.files and not isinstance(value, str):
            upload = (p.files[field], p.file_names.get(field), p.file_types.get(field))
        elif isinstance(value, str) and value.startswith("attach://"):
            name = value[len("attach://") :]
            if name not in p.files:
                raise bad_request(WRONG_FILE_ID)
            upload = (p.files[name], p.file_names.get(name), p.file_types.get(name))
        elif isinstance(value, str) and re.match(r"^https?://", value):
            content = self.url_contents.get(value)
            if content is None:
                raise bad_request("failed to get HTTP URL content")
            base = value.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or None
            upload = (content, base, None)
        elif isinstance(value, str) and value:
            existing = bot.files.get(value)
            if existing is None:
                raise bad_request(WRONG_FILE_ID)
            if (existing.kind == "photo") != (kind == "photo") and kind != "thumbnail":
                have = existing.kind.replace("_", " ").title().replace(" ", "")
                want = kind.replace("_", " ").title().replace(" ", "")
                raise bad_request(f"can't use file of type {have} as {want}")
            if existing.kind == "photo" and existing.photo_sizes:
                return bot.files[existing.photo_sizes[-1]]
            return existing
        else:
            raise bad_request(f"there is no {field} in the request")
        data, file_name, declared = upload
        if len(data) > self.upload_limit:
            raise ApiError(413, "Request Entity Too Large")
        if not data:
            raise bad_request("file must be non-empty")
        if kind == "photo":
            return self._register_photo(bot, data, from_bot=True)
        mime = guess_mime(file_name, declared)
        if kind == "voice" and mime == "application/octet-stream":
            mime = "audio/ogg"
        return self._register_file(bot, data, kind, file_name=file_name, mime_type=mime)

    def _media_content(
        self,
        bot: BotState,
        kind: str,
        value: Any,
        p: Params,
        field: str,
        options: Params,
    ) -> JSON:
        stored = self._resolve_input_file(bot, value, p, field, kind)
        if kind == "photo":
            content: JSON = {"photo": self._photo_json(bot, stored)}
        else:
            if stored.from_bot and stored.kind == kind:
                for key in ("width", "height", "duration"):
                    given = options.integer(key)
                    if given is not None:
                        setattr(stored, key, given)
                for key in ("performer", "title", "emoji"):
                    if options.string(key):
                        stored.extra[key] = options.string(key)
                if kind == "video_note" and options.integer("length") is not None:
                    stored.extra["length"] = options.integer("length")
            body = self._file_json(stored)
            if kind != stored.kind:
                body = self._file_json(dataclasses.replace(stored, kind=kind))
            thumb_value = options.get("thumbnail")
            if thumb_value is not None and kind != "sticker":
                thumb = self._resolve_input_file(bot, thumb_value, p, "thumbnail", "thumbnail")
                size = image_size(thumb.data) or (320, 320)
                thumb.width, thumb.height = size
                body["thumbnail"] = {
                    "file_id": thumb.file_id,
                    "file_unique_id": thumb.file_unique_id,
                    "file_size": thumb.file_size,
                    "width": size[0],
                    "height": size[1],
                }
            content = {kind: body}
        if options.flag("has_spoiler") and kind in ("photo", "video", "animation"):
            content["has_media_spoiler"] = True
        return content

    async def _send_media(self, bot: BotState, p: Params, kind: str, method: str) -> JSON:
        chat = self._target_chat(bot, p)
        caption, raw_caption = (
            self._caption(p) if kind not in ("sticker", "video_note") else ({}, None)
        )
        thread_id, reply_to = self._prepare_send(chat, p)
        markup = self._markup(p.get("reply_markup"))
        content = self._media_content(bot, kind, p.get(kind), p, kind, p)
        content.update(caption)
        msg = self._store_bot_message(
            bot,
            chat,
            content,
            method=method,
            thread_id=thread_id,
            reply_to=reply_to,
            markup=markup,
            raw_text=raw_caption,
            parse_mode=p.string("parse_mode"),
            protect=p.flag("protect_content"),
        )
        return msg.data

    # ========================================================== API methods
    async def _m_getMe(self, bot: BotState, p: Params) -> JSON:
        return dict(bot.user)

    # ------------------------------------------------------------ updates
    async def _m_getUpdates(self, bot: BotState, p: Params) -> list[JSON]:
        if bot.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        bot.polls += 1
        self._signal.fire()
        offset = p.integer("offset")
        limit = p.integer("limit") or 100
        limit = max(1, min(100, limit))
        timeout = max(0, p.integer("timeout") or 0)
        allowed = p.json("allowed_updates")
        if isinstance(allowed, list):
            bot.allowed_updates = [str(a) for a in allowed] or None
        if bot.poller is not None and not bot.poller.done():
            bot.poller.set_result("conflict")
        if offset is not None:
            self._confirm(bot, offset)
        self._filter_queue(bot)
        if not bot.queue and timeout > 0:
            fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            bot.poller = fut
            self._signal.fire()
            try:
                outcome = await asyncio.wait_for(asyncio.shield(fut), timeout)
            except TimeoutError:
                outcome = "timeout"
            finally:
                if bot.poller is fut:
                    bot.poller = None
            if outcome == "conflict":
                raise ApiError(409, DEFAULT_DESCRIPTIONS[409])
            self._filter_queue(bot)
        return [copy.deepcopy(u) for u in bot.queue[:limit]]

    def _confirm(self, bot: BotState, offset: int) -> None:
        if offset > 0:
            bot.queue = [u for u in bot.queue if u["update_id"] >= offset]
            bot.consumed_below = max(bot.consumed_below, offset)
        elif offset < 0:
            keep = bot.queue[offset:]
            dropped = bot.queue[: len(bot.queue) + offset] if len(bot.queue) > -offset else []
            if dropped:
                bot.consumed_below = max(bot.consumed_below, dropped[-1]["update_id"] + 1)
            bot.queue = keep
        self._signal.fire()

    def _filter_queue(self, bot: BotState) -> None:
        allowed = set(bot.allowed_updates) if bot.allowed_updates else None

        def wanted(update: JSON) -> bool:
            kinds = [k for k in update if k != "update_id"]
            kind = kinds[0] if kinds else ""
            if allowed is None:
                return kind not in DEFAULT_EXCLUDED_UPDATES
            return kind in allowed

        bot.queue = [u for u in bot.queue if wanted(u)]

    async def _m_setWebhook(self, bot: BotState, p: Params) -> bool:
        url = p.string("url") or ""
        if not url:
            bot.webhook = None
            self._stop_webhook(bot)
            return True
        if not url.startswith("https://") and not url.startswith("http://"):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        allowed = p.json("allowed_updates")
        if isinstance(allowed, list):
            bot.allowed_updates = [str(a) for a in allowed] or None
        bot.webhook = {
            "url": url,
            "secret_token": p.string("secret_token"),
            "max_connections": p.integer("max_connections") or 40,
            "ip_address": p.string("ip_address"),
        }
        if p.flag("drop_pending_updates"):
            self._drop_pending(bot)
        self._kick_webhook(bot)
        return True

    async def _m_deleteWebhook(self, bot: BotState, p: Params) -> bool:
        bot.webhook = None
        self._stop_webhook(bot)
        if p.flag("drop_pending_updates"):
            self._drop_pending(bot)
        return True

    def _drop_pending(self, bot: BotState) -> None:
        if bot.queue:
            bot.consumed_below = max(bot.consumed_below, bot.queue[-1]["update_id"] + 1)
        bot.queue = []
        self._signal.fire()

    async def _m_getWebhookInfo(self, bot: BotState, p: Params) -> JSON:
        info: JSON = {
            "url": bot.webhook["url"] if bot.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(bot.queue),
        }
        if bot.webhook:
            info["max_connections"] = bot.webhook["max_connections"]
            for name in ("ip_address", "last_error_date", "last_error_message"):
                if bot.webhook.get(name):
                    info[name] = bot.webhook[name]
        if bot.allowed_updates:
            info["allowed_updates"] = list(bot.allowed_updates)
        return info

    # ----------------------------------------------------------- commands
    @staticmethod
    def _scope_key(scope: Any) -> str:
        if not scope:
            return json.dumps({"type": "default"})
        if isinstance(scope, str):
            try:
                scope = json.loads(scope)
            except ValueError:
                raise bad_request("can't parse BotCommandScope JSON object") from None
        if not isinstance(scope, dict) or "type" not in scope:
            raise bad_request("can't parse BotCommandScope JSON object")
        return json.dumps(scope, sort_keys=True)

    async def _m_setMyCommands(self, bot: BotState, p: Params) -> bool:
        commands = p.json("commands")
        if not isinstance(commands, list):
            raise bad_request('parameter "commands" is required')
        clean: list[JSON] = []
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand JSON object")
            command = str(item.get("command", "")).lstrip("/")
            description = str(item.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": command, "description": description})
        if len(clean) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        scope = p.json("scope")
        if isinstance(scope, dict) and scope.get("type") in CHAT_SCOPES:
            self._resolve_chat(bot, scope.get("chat_id"))  # "chat not found" as Telegram says
        key = (self._scope_key(scope), p.string("language_code") or "")
        bot.commands[key] = clean
        return True

    async def _m_getMyCommands(self, bot: BotState, p: Params) -> list[JSON]:
        key = (self._scope_key(p.json("scope")), p.string("language_code") or "")
        return [dict(c) for c in bot.commands.get(key, [])]

    async def _m_setMyDescription(self, bot: BotState, p: Params) -> bool:
        bot.settings[f"description:{p.string('language_code') or ''}"] = (
            p.string("description") or ""
        )
        return True

    async def _m_setMyShortDescription(self, bot: BotState, p: Params) -> bool:
        key = f"short_description:{p.string('language_code') or ''}"
        bot.settings[key] = p.string("short_description") or ""
        return True

    # ----------------------------------------------------------- messages
    async def _m_sendMessage(self, bot: BotState, p: Params) -> JSON:
        chat = self._target_chat(bot, p)
        raw = p.string("text") or ""
        parse_mode = p.string("parse_mode")
        text, entities = self._format(raw, parse_mode, p.json("entities"))
        if not text.strip():
            raise bad_request("message text is empty")
        if utf16_len(text) > 4096:
            raise bad_request("message is too long")
        thread_id, reply_to = self._prepare_send(chat, p)
        markup = self._markup(p.get("reply_markup"))
        preview = p.json("link_preview_options")
        if preview is None and p.flag("disable_web_page_preview"):
            preview = {"is_disabled": True}
        content: JSON = {"text": text}
        if entities:
            content["entities"] = entities
        msg = self._store_bot_message(
            bot,
            chat,
            content,
            method="sendMessage",
            thread_id=thread_id,
            reply_to=reply_to,
            markup=markup,
            raw_text=raw,
            parse_mode=parse_mode,
            link_preview_options=preview if isinstance(preview, dict) else None,
            protect=p.flag("protect_content"),
        )
        return msg.data

    async def _m_sendPhoto(self, bot: BotState, p: Params) -> JSON:
        return await self._send_media(bot, p, "photo", "sendPhoto")

    async def _m_sendDocument(self, bot: BotState, p: Params) -> JSON:
        return await self._send_media(bot, p, "document", "sendDocument")

    async def _m_sendVoice(self, bot: BotState, p: Params) -> JSON:
        return await self._send_media(bot, p, "voice", "sendVoice")

    async def _m_sendVideoNote(self, bot: BotState, p: Params) -> JSON:
        return await self._send_media(bot, p, "video_note", "sendVideoNote")

    async def _m_sendSticker(self, bot: BotState, p: Params) -> JSON:
        return await self._send_media(bot, p, "sticker", "sendSticker")

    async def _m_sendLocation(self, bot: BotState, p: Params) -> JSON:
        chat = self._target_chat(bot, p)
        lat, lon = p.get("latitude"), p.get("longitude")
        if lat is None or lon is None:
            raise bad_request('parameter "latitude" is required')
        thread_id, reply_to = self._prepare_send(chat, p)
        markup = self._markup(p.get("reply_markup"))
        content = {"location": {"latitude": float(lat), "longitude": float(lon)}}
        msg = self._store_bot_message(
            bot,
            chat,
            content,
            method="sendLocation",
            thread_id=thread_id,
            reply_to=reply_to,
            markup=markup,
        )
        return msg.data

    async def _m_sendContact(self, bot: BotState, p: Params) -> JSON:
        chat = self._target_chat(bot, p)
        phone, first = p.string("phone_number"), p.string("first_name")
        if not phone or not first:
            raise bad_request("phone_number and first_name must be non-empty")
        thread_id, reply_to = self._prepare_send(chat, p)
        markup = self._markup(p.get("reply_markup"))
        contact: JSON = {"phone_number": phone, "first_name": first}
        if p.string("last_name"):
            contact["last_name"] = p.string("last_name")
        msg = self._store_bot_message(
            bot,
            chat,
            {"contact": contact},
            method="sendContact",
            thread_id=thread_id,
            reply_to=reply_to,
            markup=markup,
        )
        return msg.data

    async def _m_sendMediaGroup(self, bot: BotState, p: Params) -> list[JSON]:
        chat = self._target_chat(bot, p)
        media = p.json("media")
        if not isinstance(media, list) or not media:
            raise bad_request('parameter "media" is required')
        if len(media) > 10:
            raise bad_request("too many messages to send as an album")
        thread_id, reply_to = self._prepare_send(chat, p)
        prepared: list[tuple[JSON, str | None, str | None]] = []
        for item in media:
            if not isinstance(item, dict):
                raise bad_request("can't parse InputMedia JSON object")
            kind = item.get("type")
            if kind not in ("photo", "video", "document", "audio"):
                raise bad_request("can't parse InputMedia: unsupported media type")
            if not item.get("media"):
                raise bad_request("can't parse InputMedia: media not found")
            options = Params(dict(item))
            content = self._media_content(bot, str(kind), item["media"], p, "media", options)
            caption, raw_caption = self._caption(item)
            content.update(caption)
            prepared.append((content, raw_caption, item.get("parse_mode")))
        kinds = {next(iter(k for k in c if k in MEDIA_KINDS)) for c, _, _ in prepared}
        if len(prepared) > 1 and (("document" in kinds or "audio" in kinds) and len(kinds) > 1):
            raise bad_request("documents and audio can't be mixed with other media types")
        group_id = str(13_000_000_000_000_000 + next(self._ids))
        out = []
        for content, raw_caption, parse_mode in prepared:
            msg = self._store_bot_message(
                bot,
                chat,
                content,
                method="sendMediaGroup",
                thread_id=thread_id,
                reply_to=reply_to,
                raw_text=raw_caption,
                parse_mode=parse_mode,
                media_group_id=group_id if len(prepared) > 1 else None,
                protect=p.flag("protect_content"),
            )
            out.append(msg.data)
        return out

    def _bot_message_for_edit(self, bot: BotState, p: Params) -> tuple[ChatState, StoredMessage]:
        if p.has("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._target_chat(bot, p)
        message_id = p.integer("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        msg = chat.messages.get(message_id)
        if msg is None or msg.deleted:
            raise bad_request("message to edit not found")
        if not msg.from_bot or msg.is_service:
            raise bad_request("message can't be edited")
        return chat, msg

    def _apply_edit(
        self,
        bot: BotState,
        msg: StoredMessage,
        changes: JSON,
        remove: Iterable[str],
        markup: JSON | None,
        **meta: Any,
    ) -> JSON:
        old = {k: msg.data.get(k) for k in [*changes, *remove]}
        new = dict(changes)
        for key in remove:
            new[key] = None
        same_content = all((old.get(k) or None) == (new.get(k) or None) for k in new)
        old_inline = msg.data.get("reply_markup")
        if same_content and old_inline == markup:
            raise bad_request(NOT_MODIFIED)
        msg.history.append(msg.snapshot())
        for key in remove:
            msg.data.pop(key, None)
        msg.data.update(changes)
        if markup is not None:
            msg.data["reply_markup"] = copy.deepcopy(markup)
        else:
            msg.data.pop("reply_markup", None)
        msg.data["edit_date"] = self.now()
        for key, value in meta.items():
            setattr(msg, key, value)
        self._emit(bot, msg, "edit")
        return msg.data

    async def _m_editMessageText(self, bot: BotState, p: Params) -> JSON:
        _chat, msg = self._bot_message_for_edit(bot, p)
        if "text" not in msg.data:
            raise bad_request("there is no text in the message to edit")
        raw = p.string("text") or ""
        parse_mode = p.string("parse_mode")
        text, entities = self._format(raw, parse_mode, p.json("entities"))
        if not text.strip():
            raise bad_request("message text is empty")
        if utf16_len(text) > 4096:
            raise bad_request("MESSAGE_TOO_LONG")
        markup = self._markup(p.get("reply_markup"), inline_only=True)
        changes: JSON = {"text": text}
        remove: list[str] = []
        if entities:
            changes["entities"] = entities
        else:
            remove.append("entities")
        preview = p.json("link_preview_options")
        return self._apply_edit(
            bot,
            msg,
            changes,
            remove,
            markup,
            raw_text=raw,
            parse_mode=parse_mode,
            link_preview_options=preview if isinstance(preview, dict) else msg.link_preview_options,
        )

    async def _m_editMessageCaption(self, bot: BotState, p: Params) -> JSON:
        _chat, msg = self._bot_message_for_edit(bot, p)
        if msg.media_type not in MEDIA_KINDS or msg.media_type in ("sticker", "video_note"):
            raise bad_request("there is no caption in the message to edit")
        caption, raw = self._caption(p)
        markup = self._markup(p.get("reply_markup"), inline_only=True)
        remove = [k for k in ("caption", "caption_entities") if k not in caption]
        return self._apply_edit(
            bot, msg, caption, remove, markup, raw_text=raw, parse_mode=p.string("parse_mode")
        )

    async def _m_editMessageReplyMarkup(self, bot: BotState, p: Params) -> JSON:
        _chat, msg = self._bot_message_for_edit(bot, p)
        markup = self._markup(p.get("reply_markup"), inline_only=True)
        return self._apply_edit(bot, msg, {}, [], markup)

    async def _m_editMessageMedia(self, bot: BotState, p: Params) -> JSON:
        _chat, msg = self._bot_message_for_edit(bot, p)
        if msg.media_type not in MEDIA_KINDS:
            raise bad_request("there is no media in the message to edit")
        media = p.json("media")
        if not isinstance(media, dict) or not media.get("media"):
            raise bad_request("can't parse InputMedia JSON object")
        kind = str(media.get("type"))
        if kind not in ("photo", "video", "document", "audio", "animation"):
            raise bad_request("can't parse InputMedia: unsupported media type")
        content = self._media_content(bot, kind, media["media"], p, "media", Params(dict(media)))
        caption, raw = self._caption(media)
        content.update(caption)
        markup = self._markup(p.get("reply_markup"), inline_only=True)
        remove = [k for k in (*MEDIA_KINDS, "caption", "caption_entities") if k not in content]
        remove = [k for k in remove if k in msg.data]
        return self._apply_edit(bot, msg, content, remove, markup, raw_text=raw)

    async def _m_deleteMessage(self, bot: BotState, p: Params) -> bool:
        chat = self._target_chat(bot, p)
        message_id = p.require_int("message_id")
        msg = chat.messages.get(message_id)
        if msg is None or msg.deleted:
            raise bad_request("message to delete not found")
        if msg.is_service and "forum_topic_created" in msg.data:
            raise bad_request("message can't be deleted")
        if not msg.from_bot and not chat.is_private and not self._bot_is_admin(chat):
            raise bad_request("message can't be deleted")
        msg.deleted = True
        self._emit(bot, msg, "delete")
        return True

    async def _m_deleteMessages(self, bot: BotState, p: Params) -> bool:
        chat = self._target_chat(bot, p)
        ids = p.json("message_ids")
        if not isinstance(ids, list) or not ids:
            raise bad_request('parameter "message_ids" is required')
        for message_id in ids:
            msg = chat.messages.get(int(message_id))
            if msg is not None and not msg.deleted and not msg.is_service:
                msg.deleted = True
                self._emit(bot, msg, "delete")
        return True

    def _source_message(
        self, bot: BotState, p: Params, message_id: int, verb: str
    ) -> StoredMessage:
        source_chat = self._resolve_chat(bot, p.get("from_chat_id"))
        msg = source_chat.messages.get(message_id)
        if msg is None or msg.deleted:
            raise bad_request(f"message to {verb} not found")
        if msg.is_service:
            raise bad_request(f"message can't be {'copied' if verb == 'copy' else 'forwarded'}")
        return msg

    @staticmethod
    def _copyable(data: JSON) -> JSON:
        keys = (
            *MEDIA_KINDS,
            "text",
            "entities",
            "caption",
            "caption_entities",
            "has_media_spoiler",
            "location",
            "contact",
            "venue",
            "dice",
            "poll",
        )
        return {k: copy.deepcopy(data[k]) for k in keys if k in data}

    def _copy_one(
        self,
        bot: BotState,
        chat: ChatState,
        p: Params,
        source: StoredMessage,
        *,
        thread_id: int | None,
        reply_to: StoredMessage | None,
        markup: JSON | None,
        caption_override: bool,
    ) -> StoredMessage:
        content = self._copyable(source.data)
        raw = source.raw_text
        if caption_override and source.media_type in MEDIA_KINDS:
            caption, raw = self._caption(p)
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(caption)
        return self._store_bot_message(
            bot,
            chat,
            content,
            method="copyMessage",
            thread_id=thread_id,
            reply_to=reply_to,
            markup=markup,
            raw_text=raw,
            protect=p.flag("protect_content"),
        )

    async def _m_copyMessage(self, bot: BotState, p: Params) -> JSON:
        chat = self._target_chat(bot, p)
        source = self._source_message(bot, p, p.require_int("message_id"), "copy")
        thread_id, reply_to = self._prepare_send(chat, p)
        markup = self._markup(p.get("reply_markup"))
        msg = self._copy_one(
            bot,
            chat,
            p,
            source,
            thread_id=thread_id,
            reply_to=reply_to,
            markup=markup,
            caption_override="caption" in p.values,
        )
        return {"message_id": msg.message_id}

    def _forward_one(
        self,
        bot: BotState,
        chat: ChatState,
        p: Params,
        source: StoredMessage,
        thread_id: int | None,
    ) -> StoredMessage:
        content = self._copyable(source.data)
        origin = source.data.get("forward_origin")
        if origin is None:
            source_chat = source.data.get("chat", {})
            if source_chat.get("type") == "channel":
                origin = {
                    "type": "channel",
                    "chat": copy.deepcopy(source_chat),
                    "message_id": source.message_id,
                    "date": source.data["date"],
                }
            else:
                origin = {
                    "type": "user",
                    "sender_user": copy.deepcopy(source.data.get("from", {})),
                    "date": source.data["date"],
                }
        content["forward_origin"] = origin
        return self._store_bot_message(
            bot,
            chat,
            content,
            method="forwardMessage",
            thread_id=thread_id,
            raw_text=source.raw_text,
            protect=p.flag("protect_content"),
        )

    async def _m_forwardMessage(self, bot: BotState, p: Params) -> JSON:
        chat = self._target_chat(bot, p)
        source = self._source_message(bot, p, p.require_int("message_id"), "forward")
        thread_id, _ = self._prepare_send(chat, p)
        return self._forward_one(bot, chat, p, source, thread_id).data

    async def _m_sendChatAction(self, bot: BotState, p: Params) -> bool:
        chat = self._target_chat(bot, p)
        action = p.string("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        thread_id = p.integer("message_thread_id")
        if chat.is_forum and thread_id is not None and thread_id != 1:
            topic = chat.topics.get(thread_id)
            if topic is None or topic.deleted:
                raise bad_request("message thread not found")
        chat.actions.append((action, thread_id))
        return True

    async def _m_pinChatMessage(self, bot: BotState, p: Params) -> bool:
        chat = self._target_chat(bot, p)
        msg = chat.messages.get(p.require_int("message_id"))
        if msg is None or msg.deleted:
            raise bad_request("message to pin not found")
        bot.settings.setdefault(f"pinned:{chat.id}", []).append(msg.message_id)
        return True

    async def _m_unpinChatMessage(self, bot: BotState, p: Params) -> bool:
        chat = self._target_chat(bot, p)
        pinned: list[int] = bot.settings.setdefault(f"pinned:{chat.id}", [])
        message_id = p.integer("message_id")
        if message_id is None and pinned:
            pinned.pop()
        elif message_id in pinned:
            pinned.remove(message_id)
        return True

    async def _m_setMessageReaction(self, bot: BotState, p: Params) -> bool:
        chat = self._target_chat(bot, p)
        msg = chat.messages.get(p.require_int("message_id"))
        if msg is None or msg.deleted:
            raise bad_request("message to react not found")
        reaction = p.json("reaction") or []
        bot.settings[f"reaction:{chat.id}:{msg.message_id}"] = reaction
        return True

    # ----------------------------------------------------------- callbacks
    async def _m_answerCallbackQuery(self, bot: BotState, p: Params) -> bool:
        query_id = p.string("callback_query_id")
        record = bot.callback_queries.get(query_id or "")
        if record is None or record.answered:
            raise bad_request(QUERY_TOO_OLD)
        text = p.string("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        record.answered = True
        record.answer = CallbackAnswer(
            text=text,
            show_alert=p.flag("show_alert"),
            url=p.string("url"),
            cache_time=p.integer("cache_time"),
        )
        self._signal.fire()
        return True

    # --------------------------------------------------------------- files
    async def _m_getFile(self, bot: BotState, p: Params) -> JSON:
        file_id = p.string("file_id")
        if not file_id:
            raise bad_request("file_id is empty")
        stored = bot.files.get(file_id)
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.file_size > self.download_limit:
            raise bad_request("file is too big")
        if stored.file_path is None:
            ext = file_extension(stored.kind, stored.file_name, stored.mime_type)
            stored.file_path = f"{file_folder(stored.kind)}/file_{len(bot.files_by_path)}.{ext}"
            bot.files_by_path[stored.file_path] = stored
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }

    # ------------------------------------------------------------- topics
    def _forum(self, bot: BotState, p: Params) -> ChatState:
        chat = self._target_chat(bot, p)
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")
        return chat

    def _topic(self, chat: ChatState, p: Params) -> Topic:
        thread_id = p.require_int("message_thread_id")
        topic = chat.topics.get(thread_id)
        if topic is None or topic.deleted:
            raise bad_request("message thread not found")
        return topic

    def _service(
        self,
        bot: BotState,
        chat: ChatState,
        thread_id: int,
        content: JSON,
        method: str,
        by: JSON | None = None,
    ) -> StoredMessage:
        data: JSON = {
            "message_id": chat.allocate_id(),
            "from": dict(by) if by else self._bot_from(bot),
            "chat": chat.chat,
            "date": self.now(),
            "message_thread_id": thread_id,
            "is_topic_message": True,
        }
        root = chat.messages.get(thread_id)
        if root is not None:
            data["reply_to_message"] = _strip_reply(root.data)
        data.update(content)
        msg = StoredMessage(
            chat_id=chat.id,
            message_id=data["message_id"],
            data=data,
            from_bot=by is None,
            method=method,
            sent_at=self.clock(),
        )
        chat.messages[msg.message_id] = msg
        self._emit(bot, msg, "new")
        return msg

    def _create_topic(
        self,
        bot: BotState,
        chat: ChatState,
        name: str,
        icon_color: int,
        icon_custom_emoji_id: str | None,
        *,
        by: JSON | None = None,
    ) -> Topic:
        thread_id = chat.allocate_id()
        created: JSON = {"name": name, "icon_color": icon_color}
        if icon_custom_emoji_id:
            created["icon_custom_emoji_id"] = icon_custom_emoji_id
        data: JSON = {
            "message_id": thread_id,
            "from": dict(by) if by else self._bot_from(bot),
            "chat": chat.chat,
            "date": self.now(),
            "message_thread_id": thread_id,
            "is_topic_message": True,
            "forum_topic_created": created,
        }
        msg = StoredMessage(
            chat_id=chat.id,
            message_id=thread_id,
            data=data,
            from_bot=by is None,
            method="createForumTopic",
            sent_at=self.clock(),
        )
        chat.messages[thread_id] = msg
        topic = Topic(
            chat_id=chat.id,
            thread_id=thread_id,
            name=name,
            icon_color=icon_color,
            icon_custom_emoji_id=icon_custom_emoji_id,
            created_by_bot=by is None,
        )
        chat.topics[thread_id] = topic
        self._emit(bot, msg, "new")
        return topic

    async def _m_createForumTopic(self, bot: BotState, p: Params) -> JSON:
        chat = self._forum(bot, p)
        if not self._bot_may_manage_topics(chat):
            raise bad_request("not enough rights to create a topic")
        name = p.string("name") or ""
        if not name.strip():
            raise bad_request("TOPIC_TITLE_EMPTY")
        if len(name) > 128:
            raise bad_request("TOPIC_TITLE_TOO_LONG")
        icon_color = p.integer("icon_color") or FORUM_ICON_COLORS[0]
        if icon_color not in FORUM_ICON_COLORS:
            raise bad_request("TOPIC_ICON_COLOR_INVALID")
        topic = self._create_topic(bot, chat, name, icon_color, p.string("icon_custom_emoji_id"))
        return topic.to_api()

    async def _m_editForumTopic(self, bot: BotState, p: Params) -> bool:
        chat = self._forum(bot, p)
        topic = self._topic(chat, p)
        name = p.string("name")
        emoji = p.string("icon_custom_emoji_id") if "icon_custom_emoji_id" in p.values else None
        changed: JSON = {}
        if name is not None and name != topic.name:
            if len(name) > 128:
                raise bad_request("TOPIC_TITLE_TOO_LONG")
            changed["name"] = name
        if "icon_custom_emoji_id" in p.values and (emoji or None) != topic.icon_custom_emoji_id:
            changed["icon_custom_emoji_id"] = emoji or ""
        if not changed:
            raise bad_request("TOPIC_NOT_MODIFIED")
        if "name" in changed:
            topic.name = str(changed["name"])
        if "icon_custom_emoji_id" in changed:
            topic.icon_custom_emoji_id = emoji or None
        self._service(bot, chat, topic.thread_id, {"forum_topic_edited": changed}, "editForumTopic")
        return True

    async def _m_closeForumTopic(self, bot: BotState, p: Params) -> bool:
        chat = self._forum(bot, p)
        topic = self._topic(chat, p)
        if topic.closed:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.closed = True
        self._service(bot, chat, topic.thread_id, {"forum_topic_closed": {}}, "closeForumTopic")
        return True

    async def _m_reopenForumTopic(self, bot: BotState, p: Params) -> bool:
        chat = self._forum(bot, p)
        topic = self._topic(chat, p)
        if not topic.closed:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.closed = False
        self._service(bot, chat, topic.thread_id, {"forum_topic_reopened": {}}, "reopenForumTopic")
        return True

    async def _m_deleteForumTopic(self, bot: BotState, p: Params) -> bool:
        chat = self._forum(bot, p)
        topic = self._topic(chat, p)
        topic.deleted = True
        for msg in chat.messages.values():
            if msg.message_thread_id == topic.thread_id and not msg.deleted:
                msg.deleted = True
                self._emit(bot, msg, "delete")
        return True

    # -------------------------------------------------------- chats/users
    def _member_json(self, user: JSON, status: str, member: Member | None = None) -> JSON:
        if status == "creator":
            body: JSON = {"status": "creator", "user": user, "is_anonymous": False}
            if member is not None and member.custom_title:
                body["custom_title"] = member.custom_title
            return body
        if status == "administrator":
            rights = dict.fromkeys(
                (
                    "can_manage_chat",
                    "can_delete_messages",
                    "can_manage_video_chats",
                    "can_restrict_members",
                    "can_change_info",
                    "can_invite_users",
                    "can_post_stories",
                    "can_edit_stories",
                    "can_delete_stories",
                    "can_pin_messages",
                    "can_manage_topics",
                ),
                True,
            )
            body = {
                "status": "administrator",
                "user": user,
                "can_be_edited": False,
                "is_anonymous": False,
                "can_promote_members": False,
                "can_send_welcome_messages": False,
                **rights,
            }
            if member is not None and member.custom_title:
                body["custom_title"] = member.custom_title
            return body
        if status == "restricted":
            perms = dict.fromkeys(
                (
                    "can_send_messages",
                    "can_send_audios",
                    "can_send_documents",
                    "can_send_photos",
                    "can_send_videos",
                    "can_send_video_notes",
                    "can_send_voice_notes",
                    "can_send_polls",
                    "can_send_other_messages",
                    "can_add_web_page_previews",
                    "can_react_to_messages",
                    "can_edit_tag",
                    "can_change_info",
                    "can_invite_users",
                    "can_pin_messages",
                    "can_manage_topics",
                ),
                False,
            )
            until = member.until_date if member is not None else 0
            return {
                "status": "restricted",
                "user": user,
                "is_member": True,
                "until_date": until,
                **perms,
            }
        if status == "kicked":
            until = member.until_date if member is not None else 0
            return {"status": "kicked", "user": user, "until_date": until}
        if status == "left":
            return {"status": "left", "user": user}
        return {"status": "member", "user": user}

    def bot_member_json(self, bot: BotState, chat: ChatState, status: str | None = None) -> JSON:
        """The bot's own ChatMember in ``chat`` (its status and rights there)."""
        status = status or ("member" if chat.is_private else chat.bot_status)
        body = self._member_json(self._bot_from(bot), status)
        if status == "administrator":
            body.update(chat.bot_rights)
        return body

    async def _m_getChatMember(self, bot: BotState, p: Params) -> JSON:
        chat = self._resolve_chat(bot, p.get("chat_id"))
        user_id = p.require_int("user_id")
        if user_id == bot.bot_id:
            return self.bot_member_json(bot, chat)
        if chat.is_private:
            if user_id != chat.id:
                raise bad_request("user not found")
            user = bot.users.get(user_id) or {"id": user_id, "is_bot": False, "first_name": ""}
            return self._member_json(dict(user), "member")
        member = chat.members.get(user_id)
        if member is not None:
            return self._member_json(dict(member.user), member.status, member)
        known = bot.users.get(user_id)
        if known is None:
            raise bad_request("user not found")
        return self._member_json(dict(known), "left")

    async def _m_getChat(self, bot: BotState, p: Params) -> JSON:
        chat = self._resolve_chat(bot, p.get("chat_id"))
        info: JSON = {k: v for k, v in chat.chat.items() if not k.startswith("_")}
        info.update(
            {
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
        )
        if not chat.is_private:
            info.setdefault(
                "permissions",
                {"can_send_messages": True, "can_send_photos": True, "can_send_documents": True},
            )
        return info
