"""Requests without files go to the Bot API as one JSON document; files still as multipart."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import web

from bot.api_session import JsonBodySession

CHAT = 4242


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []  # method, content type, parameters

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params: Any = await request.json()
        else:
            form = await request.post()
            params = {k: v.file.read() if hasattr(v, "file") else v for k, v in form.items()}
        self.requests.append((method, request.content_type, params))
        if params.get("text") == "refused":
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
                status=400,
            )
        message = {
            "message_id": len(self.requests),
            "date": 1_800_000_000,
            "chat": {"id": CHAT, "type": "private"},
            "text": params.get("text", ""),
        }
        return web.json_response({"ok": True, "result": message})


@pytest.fixture
async def api() -> AsyncIterator[tuple[Recorder, Bot]]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server = TelegramAPIServer.from_base(f"http://127.0.0.1:{port}")
    bot = Bot(
        "42:TEST",
        session=JsonBodySession(api=server),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )
    try:
        yield recorder, bot
    finally:
        await bot.session.close()
        await runner.cleanup()


async def test_a_message_with_buttons_is_one_json_document(api: tuple[Recorder, Bot]) -> None:
    recorder, bot = api
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Всё верно", callback_data="reg:ok")]]
    )
    sent = await bot.send_message(CHAT, "Проверьте <b>данные</b>", reply_markup=keyboard)
    assert sent.message_id == 1
    method, content_type, params = recorder.requests[0]
    assert (method, content_type) == ("sendMessage", "application/json")
    assert params["chat_id"] == CHAT
    assert params["text"] == "Проверьте <b>данные</b>"
    assert params["parse_mode"] == "HTML"  # the bot's defaults are filled in
    assert params["link_preview_options"] == {"is_disabled": True}
    assert params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Всё верно", "callback_data": "reg:ok"}]]
    }


async def test_a_file_goes_as_multipart(api: tuple[Recorder, Bot]) -> None:
    recorder, bot = api
    await bot.send_document(CHAT, BufferedInputFile(b"%PDF-1.4 test", filename="a.pdf"))
    method, content_type, params = recorder.requests[0]
    assert (method, content_type) == ("sendDocument", "multipart/form-data")
    part = params["document"].removeprefix("attach://")
    assert params[part] == b"%PDF-1.4 test"


async def test_a_refusal_is_still_an_error(api: tuple[Recorder, Bot]) -> None:
    recorder, bot = api
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(CHAT, "refused")
    assert json.dumps(recorder.requests[0][2], ensure_ascii=False).count("refused") == 1
