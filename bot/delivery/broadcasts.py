"""Outbox job ``broadcast_progress``: the coordinator's progress message edited with the numbers
as they are at delivery (an edit repeated after a crash does no harm)."""

from __future__ import annotations

from aiogram import Bot
from aiogram.utils.i18n import I18n

from bot.catalog import Catalog
from bot.delivery import JobRow
from bot.keyboards import broadcasts as kb
from bot.services.broadcasts import BroadcastService
from bot.views import progress_text


class BroadcastProgressNotifier:
    def __init__(
        self, broadcasts: BroadcastService, catalog: Catalog, i18n: I18n, locale: str
    ) -> None:
        self._broadcasts = broadcasts
        self._catalog = catalog
        self._i18n = i18n
        self._locale = locale

    async def notify(self, row: JobRow, bot: Bot) -> int | None:
        found = await self._broadcasts.progress(int(row.payload["broadcast_id"]))
        if found is None or found.message_id is None:
            return None
        with self._i18n.context(), self._i18n.use_locale(self._locale):
            await bot.edit_message_text(
                text=progress_text(found, self._catalog, self._locale),
                chat_id=found.chat_id,
                message_id=found.message_id,
                reply_markup=kb.progress(found),
            )
        return found.message_id
