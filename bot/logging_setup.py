"""Logging for the bot's processes: ids only; libraries that would print SQL parameters or
request payloads at DEBUG are held at INFO."""

from __future__ import annotations

import logging
import sys

# aiosqlite logs every call with its SQL parameters at DEBUG; SQLAlchemy's engine would print
# every statement. They stay at WARNING whatever LOG_LEVEL says.
QUIET_LOGGERS = ("aiosqlite", "sqlalchemy", "asyncio", "asyncpg", "apscheduler.executors")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger().setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def trace_safe(exc: BaseException) -> bool:
    """Tracebacks show the exception's message; our own and SQLAlchemy's (parameters hidden)
    carry no personal data. Validation errors of third parties may quote input: no trace."""
    return not isinstance(exc, ValueError) or type(exc).__module__.startswith("bot.")
