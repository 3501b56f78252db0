"""Read an .xlsx workbook in pieces, streaming, whatever its ``<dimension>`` tag says.

openpyxl's read-only mode parses the sheet's XML as a stream, so memory does
not grow with the rows. Its row iterator trusts the sheet's ``<dimension>``
tag, which other tools often leave stale (``A1:B2`` on a sheet of 11 rows:
one row read, silently) or set to the whole sheet (a 5 KB file that makes a
million padded rows): :func:`iter_xlsx` calls ``reset_dimensions()`` and reads
the cells that are there. python-calamine is ten times faster but builds the
whole sheet as one dense block in memory, sized by the farthest cell: one
cell at ``XFD200000`` asks for billions of cells and aborts the process,
which no ``except`` can turn into a clear refusal.

Caps (:mod:`etl.limits`): the rows a sheet can hold, checked on the raw XML
before parsing; columns and cell length, checked row by row; the unpacked
size of the shared strings, which openpyxl holds in memory.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import zipfile
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import pandas as pd
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from etl.errors import ETLError
from etl.limits import MAX_CELL_CHARS, MAX_COLUMNS, MAX_SHEET_ROWS, MAX_XLSX_STRINGS_BYTES, piece_rows

#: Rows looked at, from the first filled one, for the header (title rows may come first).
_HEAD_ROWS = 20
_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s>/]")
_ROW_NUMBER = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row\s[^>]*?\br=\"(\d+)\"")


def cell_text(value: object) -> str | None:
    """A cell value as text: ints without ``.0``, dates as ISO 8601, blanks as None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    text = str(value)
    return text if text.strip() else None


def iter_xlsx(path: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, list[int]]]:
    """``(frame, row numbers)`` per piece of the first sheet with data.

    The header is the first row with two or more filled cells among the
    first :data:`_HEAD_ROWS` filled rows (a one-cell title row above it is
    skipped). Row numbers are the sheet's own. Values are ``str`` or None.

    Raises
    ------
    ETLError
        Not a workbook; shared strings or rows past their caps; a row with a
        value past :data:`etl.limits.MAX_COLUMNS`; a cell longer than
        :data:`etl.limits.MAX_CELL_CHARS`; no sheet with data.
    """
    _check_archive(path)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a bad file
        raise ETLError(f"{path.name} could not be opened as an Excel .xlsx workbook: {exc}") from None
    try:
        for sheet in book.worksheets:
            where = f"{path.name}, sheet {sheet.title!r}"
            _check_row_count(path, getattr(sheet, "_worksheet_path", None), where)
            sheet.reset_dimensions()  # a stale <dimension> must not truncate or pad the rows
            rows = _rows(sheet, where)
            head = _head(rows)
            if head:
                yield from _pieces(head, rows, chunk_rows)
                return
    except ETLError:
        raise
    except Exception as exc:  # a broken part of the archive shows up while streaming
        raise ETLError(f"{path.name} could not be read as an Excel .xlsx workbook: {exc}") from None
    finally:
        book.close()
    raise ETLError(f"{path.name} has no sheet with data; expected a header row and data rows")


def _check_archive(path: Path) -> None:
    """Refuse shared strings that would unpack past their cap (sizes from the zip directory)."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ETLError(f"{path.name} could not be opened as an Excel .xlsx workbook: {exc}") from None
    for part in parts:
        if part.filename.lower().endswith("sharedstrings.xml") and part.file_size > MAX_XLSX_STRINGS_BYTES:
            raise ETLError(f"{path.name}: its shared strings unpack to {part.file_size:,} bytes; at most "
                           f"{MAX_XLSX_STRINGS_BYTES:,} are read (MAX_XLSX_STRINGS_BYTES)")


def _check_row_count(path: Path, part: str | None, where: str) -> None:
    """Refuse a sheet with rows past :data:`MAX_SHEET_ROWS`, from its raw XML, before parsing it.

    Unpacking and matching row tags is about ten times faster than parsing
    the cells, so a 3-million-row sheet is refused in seconds, not minutes.
    """
    if part is None:
        return
    last = count = 0
    tail = b""
    with zipfile.ZipFile(path) as archive, archive.open(part.lstrip("/")) as source:
        while data := source.read(8 << 20):
            buffer = tail + data
            cut = buffer.rfind(b"<")
            chunk, tail = buffer[:cut], buffer[cut:]
            count += len(_ROW_TAG.findall(chunk))
            numbers = _ROW_NUMBER.findall(chunk)
            last = max(last, max(map(int, numbers), default=0))
    count += len(_ROW_TAG.findall(tail))
    last = max(last, max(map(int, _ROW_NUMBER.findall(tail)), default=0))
    if max(last, count) > MAX_SHEET_ROWS:
        raise _too_many_rows(where, max(last, count))


def _too_many_rows(where: str, row: int) -> ETLError:
    return ETLError(f"{where} has a row {row:,}; a sheet holds at most {MAX_SHEET_ROWS:,} rows "
                    "(MAX_SHEET_ROWS). Split it, or save it as CSV")


def _rows(sheet, where: str) -> Iterator[tuple[int, list]]:
    """``(row number, values as text)`` per filled row, with the column, cell and row caps."""
    for number, row in enumerate(sheet.iter_rows(min_row=1, min_col=1, values_only=True), start=1):
        if number > MAX_SHEET_ROWS:
            raise _too_many_rows(where, number)
        if not row:
            continue
        if len(row) > MAX_COLUMNS:
            extra = row[MAX_COLUMNS:]
            if extra.count(None) != len(extra):
                column = MAX_COLUMNS + next(i for i, v in enumerate(extra) if v is not None) + 1
                raise ETLError(f"{where}, row {number:,} has a value in column {get_column_letter(column)} "
                               f"(column {column:,}); a table may have at most {MAX_COLUMNS:,} columns (MAX_COLUMNS)")
            row = row[:MAX_COLUMNS]
        values = [cell_text(v) for v in row]
        if any(v is not None for v in values):
            _check_cells(values, number, where)
            yield number, values


def _check_cells(values: list, number: int, where: str) -> None:
    for i, value in enumerate(values):
        if value is not None and len(value) > MAX_CELL_CHARS:
            raise ETLError(f"{where}, cell {get_column_letter(i + 1)}{number}: {len(value):,} characters; "
                           f"a cell may have at most {MAX_CELL_CHARS:,} (MAX_CELL_CHARS)")


def _head(rows: Iterator[tuple[int, list]]) -> list[tuple[int, list]]:
    head = []
    for item in rows:
        head.append(item)
        if len(head) == _HEAD_ROWS:
            break
    return head


def _pieces(head: list[tuple[int, list]], rest: Iterator[tuple[int, list]],
            chunk_rows: int) -> Iterator[tuple[pd.DataFrame, list[int]]]:
    h = next((i for i, (_, row) in enumerate(head) if sum(v is not None for v in row) >= 2), 0)
    header = head[h][1]
    size = piece_rows(chunk_rows, len(header))
    batch: list[list] = []
    numbers: list[int] = []
    for number, values in chain(head[h + 1:], rest):
        batch.append(values)
        numbers.append(number)
        if len(batch) == size:
            yield _frame(header, batch), numbers
            batch, numbers = [], []
    if batch:
        yield _frame(header, batch), numbers


def _frame(header: list, batch: list[list]) -> pd.DataFrame:
    """The piece as a frame: named columns, plus unnamed ones (``column 7``) that hold a value."""
    width = max(len(header), max(len(row) for row in batch))
    header = list(header) + [None] * (width - len(header))
    data = [row + [None] * (width - len(row)) for row in batch]
    frame = pd.DataFrame(data, columns=range(width), dtype=object)
    used = [i for i in range(width) if header[i] is not None or frame[i].notna().any()]
    frame = frame[used]
    frame.columns = [str(header[i]).strip() if header[i] is not None else f"column {i + 1}" for i in used]
    return frame
