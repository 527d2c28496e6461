"""What a patient types at each registration step: accepted forms and refusals."""

from datetime import date

import pytest

from bot.services.validation import (
    InputProblem,
    age_on,
    parse_birth_date,
    parse_full_name,
    parse_phone,
)

TODAY = date(2026, 11, 25)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("иванова мария петровна", "Иванова Мария Петровна"),
        ("  Салтыков-Щедрин   Михаил  ", "Салтыков-Щедрин Михаил"),
        ("O'Neil John", "O'Neil John"),
        ("Ким Ён Сук", "Ким Ён Сук"),
    ],
)
def test_full_name_accepted_and_tidied(typed: str, expected: str) -> None:
    assert parse_full_name(typed) == expected


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("Иванов2 Иван", "name_digits"),
        ("Иван", "name_short"),
        ("И", "name_short"),
        ("А Б", "name_short"),
        ("Иванов @ Иван", "name_symbols"),
        ("Иванов " + "Я" * 160, "name_too_long"),
    ],
)
def test_full_name_refused(typed: str, code: str) -> None:
    with pytest.raises(InputProblem) as problem:
        parse_full_name(typed)
    assert problem.value.code == code


@pytest.mark.parametrize("typed", ["05.03.1980", "5.3.1980", "1980-03-05", " 05/03/1980 "])
def test_birth_date_formats(typed: str) -> None:
    assert parse_birth_date(typed, TODAY) == date(1980, 3, 5)


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("31.02.1990", "date_impossible"),
        ("31.11.1990", "date_impossible"),
        ("01.01.2027", "date_future"),
        ("24.11.1905", "date_too_old"),
        ("вчера", "date_format"),
        ("5 марта 1980", "date_format"),
        ("05.03.80", "date_format"),
    ],
)
def test_birth_date_refused(typed: str, code: str) -> None:
    with pytest.raises(InputProblem) as problem:
        parse_birth_date(typed, TODAY)
    assert problem.value.code == code


def test_age_counts_the_birthday() -> None:
    assert age_on(date(1980, 11, 26), TODAY) == 45
    assert age_on(date(1980, 11, 25), TODAY) == 46


@pytest.mark.parametrize(
    "typed", ["+7 900 123-45-67", "89001234567", "8 (900) 123-45-67", "+79001234567"]
)
def test_russian_phone_normalised(typed: str) -> None:
    assert parse_phone(typed) == "+79001234567"


@pytest.mark.parametrize("typed", ["12345", "+7 900 ABC-45-67", "телефон", "", "+7 000 000-00-00"])
def test_phone_refused(typed: str) -> None:
    with pytest.raises(InputProblem):
        parse_phone(typed)
