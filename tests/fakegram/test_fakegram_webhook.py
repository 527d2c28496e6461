"""The fake's webhook: updates are POSTed with the secret header, retried until a 200, and can be
sent again with the same update_id; held calls of a bot that went away are never executed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from fakegram import FakeTelegram, FakeUser

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


class Receiver:
    """A webhook endpoint that fails its first ``failures`` requests with 500."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[dict[str, Any], str | None]] = []
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(
            (await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        )
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=500)
        return web.json_response({})


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        fake.add_bot(TOKEN)
        fake.webhook_retry_delay = 0.05
        yield fake


async def api(server: FakeTelegram, method: str, **params: Any) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.base_url}/bot{TOKEN}/{method}", json=params) as response,
    ):
        return await response.json()


async def test_updates_are_posted_with_the_secret_and_retried_until_accepted(
    server: FakeTelegram,
) -> None:
    receiver = Receiver(failures=2)
    await receiver.start()
    try:
        await api(server, "setWebhook", url=receiver.url, secret_token="abc", max_connections=3)
        user = FakeUser(server, 501)
        pushed = await user.send("hello")
        await server.wait_until_delivered([pushed.update_id], timeout=5)
        assert server.webhook_statuses(pushed.update_id) == [500, 500, 200]
        assert [secret for _u, secret in receiver.received] == ["abc"] * 3
        assert receiver.received[-1][0]["message"]["text"] == "hello"
        info = (await api(server, "getWebhookInfo"))["result"]
        assert info["url"] == receiver.url
        assert info["pending_update_count"] == 0
        assert "500" in info["last_error_message"]

        server.redeliver(pushed.update_id)  # the same update_id once more
        for _ in range(100):
            if len(receiver.received) == 4:
                break
            await asyncio.sleep(0.02)
        assert receiver.received[-1][0]["update_id"] == pushed.update_id

        conflict = await api(server, "getUpdates")
        assert conflict["error_code"] == 409
        await api(server, "deleteWebhook")
        later = await user.send("after")
        updates = (await api(server, "getUpdates"))["result"]
        assert [u["update_id"] for u in updates] == [later.update_id]
    finally:
        await receiver.stop()


async def test_a_held_call_of_a_bot_that_went_away_is_never_executed(
    server: FakeTelegram,
) -> None:
    user = FakeUser(server, 502)
    await user.send("hi")
    server.hold("sendMessage")
    url = f"{server.base_url}/bot{TOKEN}/sendMessage"
    async with aiohttp.ClientSession() as http:
        call = asyncio.create_task(http.post(url, json={"chat_id": 502, "text": "held"}))
        await server.wait_for_held(1, timeout=5)
        call.cancel()  # the bot's connection goes away
        await asyncio.gather(call, return_exceptions=True)
    await asyncio.sleep(0.05)
    server.release()
    await asyncio.sleep(0.1)
    assert [m.text for m in server.messages(502) if m.from_bot] == []
    assert [c.status for c in server.calls("sendMessage")] == [0]
