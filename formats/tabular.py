"""Tables for spreadsheets: CSV (UTF-8 with BOM) and XLSX, with formula injection defused.

Small tables (a report) are written whole with :func:`csv_bytes` and
:func:`xlsx_bytes`; a layer's rows are written batch by batch with
:func:`csv_stream` (text chunks) and :func:`write_xlsx` (openpyxl's
write-only mode, to a file). Positions are ``longitude``/``latitude`` columns
in WGS-84 degrees; polygons travel as a ``wkt`` column (:func:`with_wkt`).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import shapely
from openpyxl import Workbook

from formats.errors import FormatError

#: First characters that make Excel or LibreOffice read a text cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

CSV_MIMETYPE = "text/csv; charset=utf-8"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Rows an XLSX sheet can hold below its header (Excel's limit is 1,048,576 rows in all).
XLSX_MAX_ROWS = 1_048_575
#: Decimal places of WKT coordinates (1e-7 degrees ≈ 1 cm).
WKT_DECIMALS = 7

Rows = list[dict[str, Any]]


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


def csv_stream(row_batches: Iterable[Rows], columns: Sequence[str] | None = None) -> Iterator[str]:
    """CSV text chunks, UTF-8 with a BOM (so Excel shows Chinese), header first, one chunk per batch.

    Text cells that a spreadsheet would run as formulas are prefixed with ``'``.
    ``columns`` fixes the column order; by default the first row's keys (minus
    ``wkb``). With no rows and no columns, only the BOM is written.
    """
    yield "\ufeff"
    names = list(columns) if columns else None
    writer: csv.DictWriter[str] | None = None
    buf = io.StringIO()
    for rows in row_batches:
        for row in rows:
            if writer is None:
                names = names or [k for k in row if k != "wkb"]
                writer = csv.DictWriter(buf, fieldnames=names, extrasaction="ignore", lineterminator="\r\n")
                writer.writeheader()
            writer.writerow({k: cell(row.get(k)) for k in writer.fieldnames})
        if buf.tell():
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    if writer is None and names:
        csv.writer(buf, lineterminator="\r\n").writerow(names)
        yield buf.getvalue()


def with_wkt(row_batches: Iterable[Rows]) -> Iterator[Rows]:
    """The same batches with a ``wkt`` column (WGS-84 degrees, 1e-7°) made from each row's ``wkb``."""
    for rows in row_batches:
        if rows:
            wkts = shapely.to_wkt(shapely.from_wkb([bytes(r["wkb"]) for r in rows]),
                                  rounding_precision=WKT_DECIMALS)
            for r, w in zip(rows, wkts, strict=True):
                r["wkt"] = w
        yield rows


def write_xlsx(row_batches: Iterable[Rows], path: Path, *, columns: Sequence[str], sheet: str,
               notes: Sequence[str]) -> int:
    """Write rows to an XLSX file with openpyxl's write-only mode (memory stays flat); return the row count.

    A second sheet, ``说明 About``, carries ``notes`` (CRS, synthetic data,
    date). Raises :class:`~formats.errors.FormatError` past
    :data:`XLSX_MAX_ROWS` rows (the file is then incomplete: discard it).
    """
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet[:31])
    ws.append(list(columns))
    n = 0
    for rows in row_batches:
        if n + len(rows) > XLSX_MAX_ROWS:
            ws.close()  # finish the sheet's temporary file now rather than when the collector finds it
            raise FormatError(f"XLSX holds at most {XLSX_MAX_ROWS:,} rows; this export has more: "
                              "use csv, gpkg or geojson")
        for row in rows:
            ws.append([cell(row.get(c)) for c in columns])
        n += len(rows)
    about = wb.create_sheet(title="说明 About")
    for line in notes:
        about.append([line])
    wb.save(path)
    return n
