"""Logging for the bot's processes: ids only; libraries that would print SQL parameters or
request payloads at DEBUG are held at INFO."""

from __future__ import annotations

import logging
import sys
from types import TracebackType

from bot.pseudonyms import configure_log_ids

# aiosqlite logs every call with its SQL parameters at DEBUG; SQLAlchemy's engine would print
# every statement. They stay at WARNING whatever LOG_LEVEL says.
QUIET_LOGGERS = ("aiosqlite", "sqlalchemy", "asyncio", "asyncpg", "apscheduler.executors")


def configure_logging(
    level: str, *, pseudonym_key: bytes | None = None, plain_ids: bool = False
) -> None:
    """Log format and levels; Telegram ids in log lines (passed through ``bot.pseudonyms.tg``)
    become keyed pseudonyms unless ``plain_ids`` (LOG_PLAIN_IDS, for debugging)."""
    if pseudonym_key is not None:
        configure_log_ids(pseudonym_key, plain=plain_ids)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger().setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class MessageWithheld(Exception):
    """Stands in, in a logged traceback, for an exception whose message may quote personal
    data: the type's name and the frames stay, the message (and its chain) does not."""


def trace_safe(exc: BaseException) -> bool:
    """Tracebacks show the exception's message; our own and SQLAlchemy's (parameters hidden)
    carry no personal data. Validation errors of third parties may quote input, and Telegram's
    error descriptions may quote a text (e.g. a tag of a message that could not be parsed)."""
    module = type(exc).__module__
    if module.startswith("aiogram."):  # TelegramAPIError and its kin carry the description
        return False
    return not isinstance(exc, ValueError) or module.startswith("bot.")


def safe_exc_info(exc: BaseException) -> ExcInfo:
    """``exc_info`` for a log call: the exception itself when its message is safe, else a
    stand-in with the same frames that says which type it was."""
    if trace_safe(exc):
        return type(exc), exc, exc.__traceback__
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    stand_in = MessageWithheld(f"{name} (message withheld: it may quote personal data)")
    return MessageWithheld, stand_in, exc.__traceback__
