"""The one reader of coordinators' tables (referral lists and duty slots): what is a table, the
encodings and delimiters taken, the row numbers given, and the two services' answers built on it.
The end-to-end uploads are in test_referrals.py and test_schedule.py."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from bot.services.schedule import CsvError, CsvRefused, read_csv
from bot.services.tables import Unreadable, UnreadableTableError, open_table
from tests.test_documents import pdf


def rows_of(data: bytes, *, workbooks: bool = True) -> list[tuple[int, list[object]]]:
    with open_table(data, workbooks=workbooks) as table:
        return [(number, list(cells)) for number, cells in table.rows]


def workbook(*rows: list[object]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", Unreadable.EMPTY),
        (b" \r\n\t\n", Unreadable.EMPTY),
        (pdf("not a table"), Unreadable.NOT_TABLE),
        (b"\x89PNG\r\n\x1a\n", Unreadable.NOT_TABLE),
        (b"PK\x03\x04broken zip", Unreadable.NOT_TABLE),
        (b"some words\nwithout columns\n", Unreadable.NOT_TABLE),
        (b"a;b\n" + b"c;d\n" * 40_000 + b"e;\x0bf\n", Unreadable.NOT_TABLE),  # far down too
        (b"a;b\nc;\x00d\n", Unreadable.NOT_TABLE),
    ],
)
def test_what_is_not_a_table(data: bytes, reason: Unreadable) -> None:
    with pytest.raises(UnreadableTableError) as refused:
        rows_of(data)
    assert refused.value.reason is reason


def test_encodings_delimiters_and_row_numbers() -> None:
    # the delimiter most used on the first line; blank lines skipped but counted
    assert rows_of("Имя;Дата\n\nАнна;01.02.2026\n".encode("cp1251")) == [
        (1, ["Имя", "Дата"]),
        (3, ["Анна", "01.02.2026"]),
    ]
    assert rows_of("\ufeffa,b,c;d\n1,2,3;4\n".encode()) == [
        (1, ["a", "b", "c;d"]),
        (2, ["1", "2", "3;4"]),
    ]
    assert rows_of(b"a\tb\n1\t2\n") == [(1, ["a", "b"]), (2, ["1", "2"])]
    # a quoted cell over two lines is one row: the next row is numbered as a spreadsheet would
    assert rows_of(b'a;b\n"x\ny";1\nz;2\n') == [
        (1, ["a", "b"]),
        (2, ["x\ny", "1"]),
        (3, ["z", "2"]),
    ]
    # Windows-1251's one undefined byte is replaced, not a reason to refuse the file
    assert rows_of(b"a;b\n\xc0\x98;1\n") == [(1, ["a", "b"]), (2, ["А\ufffd", "1"])]


def test_workbooks_only_where_they_are_taken() -> None:
    data = workbook(["a", "b"], [None, None], ["c", 2])
    assert rows_of(data) == [(1, ["a", "b"]), (3, ["c", 2])]
    with pytest.raises(UnreadableTableError) as refused:
        rows_of(data, workbooks=False)
    assert refused.value.reason is Unreadable.NOT_TABLE


def test_the_schedule_answers_in_its_own_terms() -> None:
    # (the referral import's answers are in test_referrals.test_files_that_cannot_be_imported)
    with pytest.raises(CsvError) as not_csv:
        read_csv(workbook(["Иванов", "01.12.2026", "09:00", 30]))
    assert not_csv.value.reason is CsvRefused.NOT_CSV
    with pytest.raises(CsvError) as empty:
        read_csv(b"\n\n")
    assert empty.value.reason is CsvRefused.EMPTY
    assert read_csv(b"  Ivanov ;01.12.2026;09:00;30;;\n") == [
        (1, ["Ivanov", "01.12.2026", "09:00", "30"])
    ]
