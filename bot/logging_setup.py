"""Logging for the bot's processes: ids only; libraries that would print SQL parameters or
request payloads at DEBUG are held at INFO."""

from __future__ import annotations

import logging
import sys

# aiosqlite logs every call with its SQL parameters; SQLAlchemy's engine echo prints them too.
QUIET_LOGGERS = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "asyncio", "asyncpg")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger().setLevel(level)
    floor = max(logging.INFO, logging.getLevelName(level))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(floor)
