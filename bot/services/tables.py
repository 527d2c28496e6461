"""The one reader of the tables coordinators send (referral lists, duty slots): an .xlsx workbook
or a CSV, the kind decided by the bytes whatever the file is called, rows streamed with their
numbers so a large file costs memory that does not grow with its rows.

What counts as a table:

* nothing but whitespace is EMPTY;
* a ZIP is a workbook (its first sheet) when openpyxl reads it, else NOT_TABLE;
* a known binary format (PDF, images, old Office files, archives, media) or a control character
  other than tab and line ends anywhere in the file is NOT_TABLE;
* anything else is a CSV: UTF-8 (with or without BOM) when the whole file is valid UTF-8, else
  Windows-1251 (whose one undefined byte is replaced, not refused); the delimiter is the most
  frequent of ``;``, ``,`` and tab on the first non-empty line, and a line with none of them
  is NOT_TABLE.

Rows with nothing in them are skipped. A row's number is the one a spreadsheet shows: the line
of the file, unless a quoted cell spans lines."""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from types import TracebackType

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

Cell = str | int | float | date | datetime | None
Row = tuple[int, Sequence[Cell]]  # (the row's number, its cells)

_ZIP = b"PK\x03\x04"
_BINARY_SIGNATURES = (
    b"%PDF",
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"\xd0\xcf\x11\xe0",  # OLE2: an old .xls or .doc
    b"Rar!",
    b"\x1f\x8b",
    b"7z\xbc\xaf",
    b"RIFF",
    b"OggS",
    b"ID3",
)
# The same bytes in UTF-8 and Windows-1251, so the raw file is searched without decoding it.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_DELIMITERS = (";", ",", "\t")
_HEAD = 65536


class Unreadable(StrEnum):
    NOT_TABLE = "not_table"
    EMPTY = "empty"


class UnreadableTableError(Exception):
    """The file is not a table (raised when it is opened, or by a CSV broken further on)."""

    def __init__(self, reason: Unreadable) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass
class Table:
    """The rows of an opened table, header included; close it (or use ``with``) when done."""

    rows: Iterator[Row]
    estimate: int | None  # how many rows there probably are (None: unknown)
    close: Callable[[], None] = field(default=lambda: None)

    def __enter__(self) -> Table:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_table(data: bytes, *, workbooks: bool = True) -> Table:
    """The table in ``data`` (see the module's rules); ``workbooks=False`` takes CSV only."""
    if not data.strip():
        raise UnreadableTableError(Unreadable.EMPTY)
    if data.startswith(_ZIP) and workbooks:
        return _open_xlsx(data)
    if data.startswith((_ZIP, *_BINARY_SIGNATURES)) or _CONTROL.search(data):
        raise UnreadableTableError(Unreadable.NOT_TABLE)
    return _open_csv(data)


def is_blank(cells: Iterable[object]) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


def _open_xlsx(data: bytes) -> Table:
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, IndexError):
        raise UnreadableTableError(Unreadable.NOT_TABLE) from None
    # The size comes from the sheet's <dimension>, which streaming writers leave out (or write
    # as just "A1"): then the number of rows is unknown until they are read.
    estimate = sheet.max_row if isinstance(sheet.max_row, int) and sheet.max_row > 1 else None
    rows = (
        (number, values)
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)
        if not is_blank(values)
    )
    # data_only: the values read are those of Cell (openpyxl's own type is wider)
    return Table(rows, estimate, workbook.close)  # type: ignore[arg-type]


def _encoding(data: bytes) -> str:
    """UTF-8 (with or without BOM) when the bytes are valid UTF-8, else Windows-1251. Checked
    piece by piece, so the whole text is never held decoded."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(data), _HEAD):
            decoder.decode(view[start : start + _HEAD])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8-sig"


def _open_csv(data: bytes) -> Table:
    encoding = _encoding(data)
    head = data[:_HEAD].decode(encoding, errors="replace")
    first = next((line for line in head.splitlines() if line.strip()), "")
    delimiter = max(_DELIMITERS, key=first.count)
    if first.count(delimiter) == 0:
        raise UnreadableTableError(Unreadable.NOT_TABLE)
    # cp1251 leaves one byte (0x98) undefined: replaced rather than refusing the whole file.
    text = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, errors="replace", newline="")
    reader = csv.reader(text, delimiter=delimiter)

    def rows() -> Iterator[Row]:
        try:
            # an empty line is a row of no cells: counted, then skipped
            for number, values in enumerate(reader, start=1):
                if not is_blank(values):
                    yield number, values
        except csv.Error:  # e.g. a cell over the csv module's size limit
            raise UnreadableTableError(Unreadable.NOT_TABLE) from None

    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    return Table(rows(), lines)
