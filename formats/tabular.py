"""Tables for spreadsheets: CSV (UTF-8 with BOM) and XLSX, with formula injection defused."""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook

#: First characters that make Excel or LibreOffice read a text cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def defuse(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula, prefixed with ``'`` (OWASP CSV injection);
    numbers and other text unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def cell(value: Any) -> Any:
    """A value as a spreadsheet cell: times as ISO text (Excel holds no time zones), bytes dropped, defused."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return None
    return defuse(value)


def csv_bytes(table: Sequence[Sequence[Any]]) -> bytes:
    """A table (header first) as UTF-8 CSV with a byte-order mark, so Excel shows the Chinese."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerows([["" if v is None else cell(v) for v in row] for row in table])
    return buf.getvalue().encode("utf-8-sig")


def xlsx_bytes(table: Sequence[Sequence[Any]], *, sheet: str, notes: Sequence[str]) -> bytes:
    """A table (header first) as an XLSX workbook, with a second sheet ``说明 About`` holding ``notes``."""
    wb = Workbook()
    ws = wb.active
    ws.title = sheet[:31]
    for row in table:
        ws.append([cell(v) for v in row])
    ws.freeze_panes = "A2"
    about = wb.create_sheet("说明 About")
    for line in notes:
        about.append([line])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
