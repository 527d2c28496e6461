"""Parsing and checking of what a patient types. Each failure carries a code for the message."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers


class InputProblem(ValueError):
    """The input is not acceptable; ``code`` picks the explanation shown to the user."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


MAX_AGE_YEARS = 120
_NAME_WORD = re.compile(r"^[^\W\d_]+(?:[-'’][^\W\d_]+)*\.?$")


def parse_full_name(text: str) -> str:
    """A full name: two or more words of letters (hyphen and apostrophe allowed inside)."""
    cleaned = " ".join(text.split())
    if any(ch.isdigit() for ch in cleaned):
        raise InputProblem("name_digits")
    if len(cleaned) > 150:
        raise InputProblem("name_too_long")
    words = cleaned.split(" ")
    if not all(_NAME_WORD.match(word) for word in words):
        raise InputProblem("name_symbols")
    if len(words) < 2 or sum(len(w.strip(".")) >= 2 for w in words) < 2:
        raise InputProblem("name_short")
    return " ".join(_capitalise(word) for word in words)


def _capitalise(word: str) -> str:
    return re.sub(r"[^\W\d_]+", lambda m: m.group(0)[:1].upper() + m.group(0)[1:].lower(), word)


_DMY = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")


def parse_birth_date(text: str, today: date) -> date:
    """Accepts 05.03.1980, 5.3.1980 and 1980-03-05; refuses impossible, future and >120 years."""
    value = text.strip()
    if match := _ISO.match(value):
        year, month, day = (int(g) for g in match.groups())
    elif match := _DMY.match(value):
        day, month, year = (int(g) for g in match.groups())
    else:
        raise InputProblem("date_format")
    try:
        born = date(year, month, day)
    except ValueError:
        raise InputProblem("date_impossible") from None
    if born > today:
        raise InputProblem("date_future")
    if age_on(born, today) > MAX_AGE_YEARS:
        raise InputProblem("date_too_old")
    return born


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def parse_phone(text: str, default_region: str = "RU") -> str:
    """A phone number in E.164 (+79001234567); Russian numbers may start with 8."""
    value = text.strip()
    if not value or re.search(r"[^\d\s()+\-.]", value):
        raise InputProblem("phone_invalid")
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        raise InputProblem("phone_invalid") from None
    if not phonenumbers.is_valid_number(number):
        raise InputProblem("phone_invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str) -> str:
    """+79001234567 → +7 900 123-45-67 for display."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


_STAFF_TIME = re.compile(r"^\s*(\d{1,2})\.(\d{1,2})(?:\.(\d{4}))?\s+(\d{1,2})[:.](\d{2})\s*$")


def parse_staff_time(text: str, tz: str, now: datetime) -> datetime:
    """'28.11 14:30' or '28.11.2026 14:30' in the center's zone → an aware UTC datetime.

    Without a year: this year, or the next one when the date is more than two months past
    (typing 10.01 in December). A past moment and an impossible date are refused."""
    match = _STAFF_TIME.match(text)
    if not match:
        raise InputProblem("time_format")
    day, month, year_text, hour, minute = match.groups()
    local_now = now.astimezone(ZoneInfo(tz))
    year = int(year_text) if year_text else local_now.year
    try:
        moment = datetime(year, int(month), int(day), int(hour), int(minute), tzinfo=ZoneInfo(tz))
    except ValueError:
        raise InputProblem("time_impossible") from None
    if year_text is None and moment < local_now - timedelta(days=60):
        try:
            moment = moment.replace(year=year + 1)
        except ValueError:
            raise InputProblem("time_impossible") from None
    if moment <= local_now:
        raise InputProblem("time_past")
    return moment.astimezone(UTC)
