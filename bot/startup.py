"""What every start does after the settings are read: refuse the catalog's placeholder chat ids,
check the staff chats live (``--check-config`` prints the result; a start logs it), and set the
bot's description and short description in every language."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import I18n

from bot.catalog import Catalog
from bot.config import Settings, SettingsError
from bot.staff_chats import (
    SEVERITY,
    ChatReport,
    Problem,
    Severity,
    advice,
    apply_staff_chat_ids,
    check_all,
    describe,
    placeholders,
    role_name,
    staff_chats,
)

log = logging.getLogger(__name__)


def configured_catalog(catalog: Catalog, settings: Settings) -> Catalog:
    """The catalog with STAFF_CHAT_IDS applied; SettingsError for an unknown center."""
    return apply_staff_chat_ids(catalog, settings.staff_chat_ids)


def refuse_placeholders(catalog: Catalog, settings: Settings, i18n: I18n) -> None:
    """SettingsError naming every staff chat that still has the catalog's placeholder id."""
    found = placeholders(staff_chats(catalog, settings))
    if not found:
        return
    locale = settings.default_locale
    names = ", ".join(
        f"{role_name(catalog, chat.role, i18n, locale)} ({chat.role}: {chat.chat_id})"
        for chat in found
    )
    text = advice(Problem.PLACEHOLDER, i18n, locale, bot_username="")
    raise SettingsError(f"configuration error: staff chat ids are placeholders: {names} — {text}")


async def check_staff_chats(
    bot: Bot, catalog: Catalog, settings: Settings, i18n: I18n
) -> tuple[list[ChatReport], list[str]]:
    """Every staff chat checked live; the reports and the lines describing them."""
    reports = await check_all(bot, staff_chats(catalog, settings))
    me = await bot.me()
    lines: list[str] = []
    for report in reports:
        lines.extend(
            describe(report, catalog, i18n, settings.default_locale, bot_username=me.username or "")
        )
    return reports, lines


async def log_staff_chats(bot: Bot, catalog: Catalog, settings: Settings, i18n: I18n) -> None:
    """At start: each staff chat's problems in the log (the bot runs on: a group can be fixed
    while it runs, and the bot tells the group what it lacks when its rights change)."""
    try:
        reports, _lines = await check_staff_chats(bot, catalog, settings, i18n)
    except TelegramAPIError as error:
        log.warning("staff chats not checked: %s", type(error).__name__)
        return
    for report in reports:
        for problem in report.problems:
            level = logging.ERROR if SEVERITY[problem] is Severity.ERROR else logging.WARNING
            log.log(
                level,
                "staff chat %s (%s): %s — run --check-config for what to click in Telegram",
                report.chat.chat_id,
                report.chat.role,
                problem.value,
            )
        if not report.problems:
            log.info("staff chat %s (%s): ready", report.chat.chat_id, report.chat.role)


async def set_descriptions(bot: Bot, i18n: I18n) -> None:
    """The description (shown in an empty chat) and the short description (the profile), in the
    default language for everyone and in each language for its speakers."""
    for language in (None, *i18n.available_locales):
        locale = language or i18n.default_locale
        try:
            await bot.set_my_description(
                i18n.gettext("about.description", locale=locale), language_code=language
            )
            await bot.set_my_short_description(
                i18n.gettext("about.short_description", locale=locale), language_code=language
            )
        except TelegramAPIError as error:
            log.warning("bot description (%s) not set: %s", locale, type(error).__name__)
