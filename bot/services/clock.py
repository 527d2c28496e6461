"""The one source of "now", replaceable in tests, and a stored moment seen in a time zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]

#: Where a new calendar day begins first (UTC+14): a day is "in the future" for an unknown
#: zone only after it has begun there.
EARLIEST_ZONE = "Etc/GMT-14"


def utc_now() -> datetime:
    return datetime.now(UTC)


def local_time(moment: datetime, tz: str) -> datetime:
    """A stored (UTC) moment as the clock on the wall in ``tz`` shows it."""
    return moment.astimezone(ZoneInfo(tz))


def local_date(moment: datetime, tz: str) -> date:
    """The calendar day of a stored moment in ``tz`` (an upload at 02:00 on 03.12 in Kamchatka
    is on 03.12, though it is still 02.12 in UTC)."""
    return local_time(moment, tz).date()
