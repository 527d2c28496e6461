"""Outbox job ``staff_alert``: the coordinators are told that a staff chat failed (a card that
could not get a topic, a row to a group that failed for good) and what to click to fix it."""

from __future__ import annotations

from html import escape

from aiogram import Bot
from aiogram.utils.i18n import I18n

from bot.catalog import Catalog
from bot.delivery import JobRow
from bot.services.staff_alerts import NO_TOPIC
from bot.staff_chats import DUTY, Problem, advice, role_name


class StaffAlertNotifier:
    def __init__(self, catalog: Catalog, i18n: I18n, locale: str, duty_chat_id: int | None) -> None:
        self._catalog = catalog
        self._i18n = i18n
        self._locale = locale
        self._duty_chat_id = duty_chat_id

    def chat_name(self, chat_id: int) -> str:
        roles = [c.code for c in self._catalog.centers if c.staff_chat_id == chat_id]
        if chat_id == self._duty_chat_id:
            roles.append(DUTY)
        names = [role_name(self._catalog, r, self._i18n, self._locale) for r in roles]
        return ", ".join(names) or str(chat_id)

    async def notify(self, row: JobRow, bot: Bot) -> int | None:
        chat_id = int(row.payload["chat_id"])
        code = str(row.payload["code"])
        gettext = self._i18n.gettext
        name = escape(self.chat_name(chat_id))
        if code == NO_TOPIC:
            username = (await bot.me()).username or ""
            text = gettext("staffalert.no_topic", locale=self._locale).format(
                id=row.payload.get("application_id") or "—",
                chat=name,
                chat_id=chat_id,
                advice=escape(
                    advice(Problem.NO_TOPICS_RIGHT, self._i18n, self._locale, bot_username=username)
                ),
            )
        else:
            text = gettext("staffalert.failed", locale=self._locale).format(
                chat=name,
                chat_id=chat_id,
                cause=escape(code),
                advice=gettext("staffalert.check", locale=self._locale),
            )
        sent = await bot.send_message(row.chat_id, text)
        return sent.message_id
