"""The baseline of the update path: a bare aiogram bot (no database, no middlewares) that answers
every message and every button press with one message, run by aiogram's own long polling.

    BOT_TOKEN=… TELEGRAM_API_URL=http://127.0.0.1:PORT python -m benchmarks.bare_echo
"""

from __future__ import annotations

import asyncio
import os

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, Message


async def main() -> None:
    api = TelegramAPIServer.from_base(os.environ["TELEGRAM_API_URL"])
    bot = Bot(os.environ["BOT_TOKEN"], session=AiohttpSession(api=api))
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "ok")

    @dp.callback_query()
    async def pressed(callback: CallbackQuery) -> None:
        await callback.answer()
        if callback.message is not None:
            await bot.send_message(callback.message.chat.id, callback.data or "ok")

    await dp.start_polling(bot, polling_timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
