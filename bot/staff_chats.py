"""The staff chats (each center's and the duty doctors'), checked live against Telegram: at
start, by ``--check-config``, and in a group the bot has just been added to.

A chat is ready when it exists, is a supergroup with topics on (without topics the bot works in
the fallback mode: cards and questions under a header line, which is announced) and the bot is
an administrator that may post and manage topics. Each problem is named with what to click in
Telegram. The catalog's placeholder ids are refused before anything is asked of Telegram."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from enum import StrEnum
from html import escape

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
)
from aiogram.types import ChatMemberAdministrator, ChatMemberOwner, ChatMemberRestricted
from aiogram.utils.i18n import I18n

from bot.catalog import Catalog
from bot.config import Settings, SettingsError
from bot.i18n import N_

log = logging.getLogger(__name__)

#: The ids the shipped catalog carries until an operator puts in the real ones.
PLACEHOLDER_CHAT_IDS = frozenset({-1001000000001, -1001000000002})
DUTY = "duty"


class Severity(StrEnum):
    ERROR = "error"  # the chat does not work as a staff chat
    NOTICE = "notice"  # it works, in a reduced way (no topics: the fallback mode)


class Problem(StrEnum):
    PLACEHOLDER = "placeholder"
    NOT_FOUND = "not_found"
    NOT_MEMBER = "not_member"
    NOT_SUPERGROUP = "not_supergroup"
    TOPICS_OFF = "topics_off"
    NOT_ADMIN = "not_admin"
    CANNOT_POST = "cannot_post"
    NO_TOPICS_RIGHT = "no_topics_right"
    UNREACHABLE = "unreachable"


SEVERITY = dict.fromkeys(Problem, Severity.ERROR) | {Problem.TOPICS_OFF: Severity.NOTICE}

#: What to do, in Telegram's own words (message ids of the i18n catalogs).
ADVICE = {
    Problem.PLACEHOLDER: N_("staffchat.placeholder"),
    Problem.NOT_FOUND: N_("staffchat.not_found"),
    Problem.NOT_MEMBER: N_("staffchat.not_member"),
    Problem.NOT_SUPERGROUP: N_("staffchat.not_supergroup"),
    Problem.TOPICS_OFF: N_("staffchat.topics_off"),
    Problem.NOT_ADMIN: N_("staffchat.not_admin"),
    Problem.CANNOT_POST: N_("staffchat.cannot_post"),
    Problem.NO_TOPICS_RIGHT: N_("staffchat.no_topics_right"),
    Problem.UNREACHABLE: N_("staffchat.unreachable"),
}


@dataclass(frozen=True, slots=True)
class StaffChat:
    """A chat the bot writes to staff in: ``role`` is a center code or ``"duty"``."""

    role: str
    chat_id: int


@dataclass(slots=True)
class ChatReport:
    chat: StaffChat
    problems: list[Problem]
    title: str | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if SEVERITY[p] is Severity.ERROR]


def apply_staff_chat_ids(catalog: Catalog, chat_ids: dict[str, int]) -> Catalog:
    """The catalog with the centers' staff chats given in settings (STAFF_CHAT_IDS)."""
    known = {center.code for center in catalog.centers}
    unknown = sorted(set(chat_ids) - known)
    if unknown:
        raise SettingsError(
            f"configuration error: STAFF_CHAT_IDS names unknown centers {', '.join(unknown)} "
            f"(the catalog has {', '.join(sorted(known))})"
        )
    centers = tuple(
        dataclasses.replace(c, staff_chat_id=chat_ids[c.code]) if c.code in chat_ids else c
        for c in catalog.centers
    )
    return dataclasses.replace(catalog, centers=centers)


def staff_chats(catalog: Catalog, settings: Settings) -> list[StaffChat]:
    chats = [StaffChat(center.code, center.staff_chat_id) for center in catalog.centers]
    if settings.duty_chat_id is not None:
        chats.append(StaffChat(DUTY, settings.duty_chat_id))
    return chats


def placeholders(chats: list[StaffChat]) -> list[StaffChat]:
    return [chat for chat in chats if chat.chat_id in PLACEHOLDER_CHAT_IDS]


async def check_chat(bot: Bot, chat_id: int) -> tuple[list[Problem], str | None]:
    """The problems of one chat as Telegram sees it now, and its title."""
    if chat_id in PLACEHOLDER_CHAT_IDS:
        return [Problem.PLACEHOLDER], None
    try:
        chat = await bot.get_chat(chat_id)
    except TelegramForbiddenError:
        return [Problem.NOT_MEMBER], None
    except TelegramBadRequest:
        return [Problem.NOT_FOUND], None
    except (TelegramNetworkError, TelegramAPIError, ClientDecodeError) as error:
        log.warning("staff chat %s: check failed: %s", chat_id, type(error).__name__)
        return [Problem.UNREACHABLE], None
    problems: list[Problem] = []
    if chat.type != "supergroup":
        problems.append(Problem.NOT_SUPERGROUP)
    elif not chat.is_forum:
        problems.append(Problem.TOPICS_OFF)
    try:
        member = await bot.get_chat_member(chat_id, bot.id)
    except (TelegramAPIError, ClientDecodeError) as error:  # the start goes on regardless
        log.warning("staff chat %s: member check failed: %s", chat_id, type(error).__name__)
        problems.append(Problem.UNREACHABLE)
        return problems, chat.title
    if isinstance(member, ChatMemberOwner):
        return problems, chat.title
    if isinstance(member, ChatMemberAdministrator):
        if chat.is_forum and not member.can_manage_topics:
            problems.append(Problem.NO_TOPICS_RIGHT)
        return problems, chat.title
    if member.status in ("left", "kicked"):
        return [Problem.NOT_MEMBER], chat.title
    if isinstance(member, ChatMemberRestricted) and not member.can_send_messages:
        problems.append(Problem.CANNOT_POST)
    problems.append(Problem.NOT_ADMIN)
    return problems, chat.title


async def check_all(bot: Bot, chats: list[StaffChat]) -> list[ChatReport]:
    reports = []
    for chat in chats:
        problems, title = await check_chat(bot, chat.chat_id)
        reports.append(ChatReport(chat, problems, title))
    return reports


def role_name(catalog: Catalog, role: str, i18n: I18n, locale: str) -> str:
    if role == DUTY:
        return i18n.gettext("staffchat.duty_label", locale=locale)
    center = catalog.center(role)
    return center.short_name.get(locale) if center else role


def advice(problem: Problem, i18n: I18n, locale: str, *, bot_username: str) -> str:
    return i18n.gettext(ADVICE[problem], locale=locale).format(bot=bot_username)


def describe(
    report: ChatReport, catalog: Catalog, i18n: I18n, locale: str, *, bot_username: str
) -> list[str]:
    """Lines for the operator's console: the chat, then each problem and what to click."""
    name = role_name(catalog, report.chat.role, i18n, locale)
    title = f" «{report.title}»" if report.title else ""
    head = f"{name}: {report.chat.chat_id}{title}"
    if not report.problems:
        return [head + " — " + i18n.gettext("staffchat.ready", locale=locale)]
    lines = [head]
    for problem in report.problems:
        mark = "ERROR" if SEVERITY[problem] is Severity.ERROR else "note"
        lines.append(f"  {mark}: " + advice(problem, i18n, locale, bot_username=bot_username))
    return lines


def group_greeting(
    chat_id: int,
    roles: list[str],
    problems: list[Problem],
    catalog: Catalog,
    i18n: I18n,
    locale: str,
    *,
    bot_username: str,
) -> str:
    """What the bot writes in a group it was added to (or whose rights changed): the chat's id,
    what it serves as, and what it still lacks."""
    lines = [i18n.gettext("staffchat.greeting", locale=locale).format(chat_id=chat_id)]
    if roles:
        names = ", ".join(escape(role_name(catalog, r, i18n, locale)) for r in roles)
        lines.append(i18n.gettext("staffchat.serves", locale=locale).format(roles=names))
    else:
        lines.append(
            i18n.gettext("staffchat.unassigned", locale=locale).format(
                chat_id=chat_id, center=catalog.centers[0].code if catalog.centers else "center"
            )
        )
    if problems:
        lines.append("")
        lines.append(i18n.gettext("staffchat.missing", locale=locale))
        lines.extend(
            "• " + escape(advice(p, i18n, locale, bot_username=bot_username)) for p in problems
        )
    else:
        lines.append(i18n.gettext("staffchat.all_set", locale=locale))
    return "\n".join(lines)
