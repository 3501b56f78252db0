"""How much of a file the readers accept, declared once.

A facility table is small and regular: tens of columns, short cells, lines
of a few hundred bytes. These caps turn a file far outside that shape (one
line of 200 MB, a million columns, a spreadsheet that unpacks to gigabytes)
into a clear refusal before the work that would exhaust the machine. Each
refusal names its cap. Field lengths (names, addresses...) are a different
fact, the admin API's, and live in :mod:`etl.validate`.
"""
from __future__ import annotations

#: Most columns a table may have (CSV header fields, spreadsheet columns with
#: a name or a value). A facility table has tens.
MAX_COLUMNS = 1_000

#: Longest line of a text file, in bytes (a CSV line, before decoding).
MAX_LINE_BYTES = 1 << 20

#: Longest cell, in characters: Excel's own limit for one cell.
MAX_CELL_CHARS = 32_767

#: Most rows an .xlsx sheet can hold (the format's limit, ECMA-376).
MAX_SHEET_ROWS = 1_048_576

#: Most bytes the shared-strings part of an .xlsx may unpack to: the readers
#: hold all shared strings in memory at once.
MAX_XLSX_STRINGS_BYTES = 256 << 20

#: Most cells (rows x columns) and bytes of text held in one piece of a file
#: read in pieces: the piece shrinks for wide or long-lined tables, so memory
#: stays bounded whatever the shape.
MAX_PIECE_CELLS = 2_000_000
MAX_PIECE_BYTES = 64 << 20


def piece_rows(wanted: int, columns: int, bytes_per_row: float = 0.0) -> int:
    """Rows per piece: at most ``wanted``, fewer for wide or long rows (never below 1).

    Parameters
    ----------
    wanted : int
        The caller's piece size in rows.
    columns : int
        Columns per row.
    bytes_per_row : float
        Mean encoded size of a row in bytes (0 when unknown).
    """
    rows = min(wanted, MAX_PIECE_CELLS // max(columns, 1))
    if bytes_per_row > 0:
        rows = min(rows, int(MAX_PIECE_BYTES / bytes_per_row))
    return max(rows, 1)
