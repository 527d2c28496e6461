"""A small JSON control API, for driving a standalone fake (``python -m fakegram``).

All routes live under ``/_fakegram/`` (Telegram has nothing there):

``GET  /_fakegram/calls?method=&chat_id=&after=``
    recorded Bot API calls
``GET  /_fakegram/bot{token}/chats/{chat_id}/messages``
    the bot's messages in a chat (``?all=1``: users' and deleted ones too)
``POST /_fakegram/bot{token}/users/{user_id}/{action}``
    a user acts; ``action`` is ``send`` ``{"text"}``, ``click`` ``{"button", "message_id"?}``,
    ``press`` ``{"button"}``, ``contact`` ``{"phone_number"?}``, ``location``
    ``{"latitude", "longitude"}``, ``photo`` / ``document`` (base64 ``"data"``,
    ``"file_name"``, ``"caption"``), ``block`` or ``unblock``.  The body may carry
    ``first_name``/``last_name``/``username``/``language_code`` the first time.
``POST /_fakegram/bot{token}/updates``
    push a raw Update (without ``update_id``)
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .models import ApiCall, StoredMessage

if TYPE_CHECKING:
    from .client import FakeUser
    from .server import FakeTelegram

JSON = dict[str, Any]


def _message_json(msg: StoredMessage) -> JSON:
    return {
        "message_id": msg.message_id,
        "from_bot": msg.from_bot,
        "text": msg.content,
        "media_type": msg.media_type,
        "inline_buttons": msg.inline_buttons,
        "reply_keyboard": msg.reply_keyboard,
        "message_thread_id": msg.message_thread_id,
        "edited": msg.edited,
        "deleted": msg.deleted,
        "data": msg.data,
    }


def _call_json(call: ApiCall) -> JSON:
    return {
        "index": call.index,
        "method": call.method,
        "params": call.params,
        "files": {name: len(data) for name, data in call.files.items()},
        "at": call.at,
        "ok": call.ok,
        "error_code": call.error_code,
        "description": call.description,
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=repr)


class _Control:
    def __init__(self, server: FakeTelegram) -> None:
        self.server = server
        self.users: dict[tuple[str, int], FakeUser] = {}

    def user(self, token: str, user_id: int, body: JSON) -> FakeUser:
        from .client import FakeUser

        key = (token, user_id)
        if key not in self.users:
            self.users[key] = FakeUser(
                self.server,
                user_id,
                first_name=str(body.get("first_name") or "Иван"),
                last_name=body.get("last_name"),
                username=body.get("username"),
                language_code=body.get("language_code", "ru"),
                bot=token,
            )
        return self.users[key]

    async def calls(self, request: web.Request) -> web.Response:
        method = request.query.get("method") or None
        chat_id = request.query.get("chat_id") or None
        after = int(request.query.get("after", "0") or 0)
        found = [c for c in self.server.calls(method, chat_id) if c.index >= after]
        return web.json_response([_call_json(c) for c in found], dumps=_dumps)

    async def messages(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        chat_id = int(request.match_info["chat_id"])
        everything = request.query.get("all") in ("1", "true")
        try:
            found = self.server.messages(
                chat_id,
                token=token,
                from_bot=None if everything else True,
                include_deleted=everything,
            )
        except LookupError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        return web.json_response([_message_json(m) for m in found], dumps=_dumps)

    async def push(self, request: web.Request) -> web.Response:
        update = await request.json()
        if not isinstance(update, dict):
            raise web.HTTPBadRequest(text="an Update object is expected")
        update_id = await self.server.push_update(update, token=request.match_info["token"])
        return web.json_response({"update_id": update_id})

    async def act(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        try:
            self.server.bot_state(token)
        except LookupError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        body: JSON = {}
        if request.can_read_body:
            loaded = await request.json()
            body = loaded if isinstance(loaded, dict) else {}
        user = self.user(token, int(request.match_info["user_id"]), body)
        action = request.match_info["action"]
        try:
            pushed = await self._do(user, action, body)
        except (AssertionError, KeyError, ValueError, binascii.Error) as exc:
            raise web.HTTPBadRequest(text=f"{type(exc).__name__}: {exc}") from None
        return web.json_response(
            {"update_id": pushed.update_id, "message_id": pushed.message_id}, dumps=_dumps
        )

    async def _do(self, user: FakeUser, action: str, body: JSON) -> Any:
        if action == "send":
            return await user.send(str(body["text"]))
        if action == "click":
            return await user.click(str(body["button"]), message_id=body.get("message_id"))
        if action == "press":
            return await user.press(str(body["button"]))
        if action == "contact":
            return await user.send_contact(body.get("phone_number"))
        if action == "location":
            return await user.send_location(float(body["latitude"]), float(body["longitude"]))
        if action == "photo":
            data = base64.b64decode(body["data"])
            return await user.send_photo(data, caption=body.get("caption"))
        if action == "document":
            data = base64.b64decode(body["data"])
            return await user.send_document(
                data,
                str(body.get("file_name") or "document.pdf"),
                str(body.get("mime_type") or "application/pdf"),
                caption=body.get("caption"),
            )
        if action == "block":
            return await user.block_bot()
        if action == "unblock":
            return await user.unblock_bot()
        raise ValueError(f"unknown action {action!r}")


def add_control_routes(app: web.Application, server: FakeTelegram) -> None:
    control = _Control(server)
    app.router.add_get("/_fakegram/calls", control.calls)
    app.router.add_get("/_fakegram/bot{token}/chats/{chat_id}/messages", control.messages)
    app.router.add_post("/_fakegram/bot{token}/updates", control.push)
    app.router.add_post("/_fakegram/bot{token}/users/{user_id}/{action}", control.act)
