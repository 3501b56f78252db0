"""Read a CSV file in pieces, after one streaming pass that checks it is a table.

The pass (:func:`scan_csv`) reads the bytes in blocks, never a whole line
into memory unchecked: it finds the encoding line by line
(:class:`etl.encodings.EncodingScan`, so a file mixing UTF-8 and GBK is
refused with the line), the longest line (refused past
:data:`etl.limits.MAX_LINE_BYTES`), and the header (refused past
:data:`etl.limits.MAX_COLUMNS` columns). Only then does pandas parse the file,
in pieces sized so that wide or long-lined tables stay within
:data:`etl.limits.MAX_PIECE_CELLS` and :data:`etl.limits.MAX_PIECE_BYTES`.
"""
from __future__ import annotations

import codecs
import csv
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from etl.encodings import TRIED_ENCODINGS, EncodingScan, UnknownEncoding, decode_text, guess_encoding
from etl.errors import ETLError
from etl.limits import MAX_CELL_CHARS, MAX_COLUMNS, MAX_LINE_BYTES, piece_rows

_BLOCK_BYTES = 8 << 20
_DELIMITERS = (",", "\t", ";", "|")


@dataclass
class CSVScan:
    """What the streaming pass learnt of a CSV file.

    Attributes
    ----------
    encoding : str
        Python codec name to read it with (``utf-8-sig`` when it has a BOM).
    header : str
        The first line, decoded, without its line end.
    lines : int
        Lines in the file.
    size : int
        Bytes in the file.
    longest : int
        Bytes in its longest line.
    """

    encoding: str
    header: str
    lines: int
    size: int
    longest: int


def scan_csv(path: Path) -> CSVScan:
    """Check a CSV file's encoding, line lengths and emptiness in one pass of bounded memory.

    Raises
    ------
    ETLError
        A line longer than :data:`etl.limits.MAX_LINE_BYTES`, text in no
        known encoding or in two (naming the first line that does not fit),
        or a file with nothing in it.
    """
    with path.open("rb") as handle:
        start = handle.read(3)
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _scan_utf16(path)
    if start == codecs.BOM_UTF8:
        scan = _scan_bytes(path, EncodingScan(path.name, ("utf-8",), origin="its UTF-8 byte-order mark"))
        scan.encoding, scan.header = "utf-8-sig", scan.header.removeprefix("\ufeff")
        return scan
    encodings = EncodingScan(path.name)
    try:
        return _scan_bytes(path, encodings)
    except UnknownEncoding as exc:
        with path.open("rb") as handle:
            guessed = guess_encoding(handle.read(1 << 20))
        # A guess only for a file whose first non-ASCII line is in none of the usual encodings.
        if encodings.origin is not None or guessed is None or guessed in TRIED_ENCODINGS:
            raise ETLError(f"{exc}; save the file as UTF-8") from None
        return _scan_bytes(path, EncodingScan(path.name, (guessed,), origin="the detected encoding"))


def _scan_bytes(path: Path, encodings: EncodingScan) -> CSVScan:
    lines = longest = size = 0
    header: bytes | None = None
    content = False
    carry = b""
    with path.open("rb") as handle:
        while True:
            data = handle.read(_BLOCK_BYTES)
            size += len(data)
            buffer = carry + data
            cut = buffer.rfind(b"\n") + 1 if data else len(buffer)
            block, carry = buffer[:cut], buffer[cut:]
            if len(carry) > MAX_LINE_BYTES:
                raise _too_long(path, lines + block.count(b"\n") + 1, f"more than {MAX_LINE_BYTES:,}")
            if block:
                header = block.split(b"\n", 1)[0] if header is None else header
                longest = max(longest, _longest_line(path, block, lines + 1))
                encodings.feed(block, lines + 1)
                content = content or bool(block.strip())
                lines += block.count(b"\n") + (not block.endswith(b"\n"))
            if not data:
                break
    if not content:
        raise ETLError(f"{path.name} is empty; expected a header line and data rows")
    text = (header or b"").decode(encodings.encoding).rstrip("\r")
    return CSVScan(encoding=encodings.encoding, header=text, lines=lines, size=size, longest=longest)


def _scan_utf16(path: Path) -> CSVScan:
    text, encoding = decode_text(path.read_bytes(), path.name)
    lengths = [len(line.encode("utf-16-le")) for line in text.split("\n")]
    longest = max(lengths)
    if longest > MAX_LINE_BYTES:
        raise _too_long(path, lengths.index(longest) + 1, f"{longest:,}")
    if not text.strip():
        raise ETLError(f"{path.name} is empty; expected a header line and data rows")
    return CSVScan(encoding=encoding, header=text.split("\n", 1)[0].rstrip("\r"), lines=len(lengths),
                   size=path.stat().st_size, longest=longest)


def _longest_line(path: Path, block: bytes, first_line: int) -> int:
    lengths = [len(line) for line in block.split(b"\n")]
    longest = max(lengths)
    if longest > MAX_LINE_BYTES:
        raise _too_long(path, first_line + lengths.index(longest), f"{longest:,}")
    return longest


def _too_long(path: Path, line: int, size: str) -> ETLError:
    return ETLError(f"{path.name}: line {line:,} is {size} bytes long; a line may have at most "
                    f"{MAX_LINE_BYTES:,} bytes (MAX_LINE_BYTES). Is it a CSV table of facilities?")


def sniff_delimiter(header: str) -> str:
    """The delimiter a header line uses: the most frequent of ``, \\t ; |`` (comma when none)."""
    counts = {sep: header.count(sep) for sep in _DELIMITERS}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def iter_csv(path: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, np.ndarray, str]]:
    """``(frame, row numbers, encoding)`` per piece of at most ``chunk_rows`` rows.

    Row numbers are the spreadsheet lines a person sees (header = 1, first
    data row = 2), counted across pieces. Values are ``str`` (object dtype).

    Raises
    ------
    ETLError
        Everything :func:`scan_csv` refuses; a header with more than
        :data:`etl.limits.MAX_COLUMNS` columns; a cell longer than
        :data:`etl.limits.MAX_CELL_CHARS`; a table pandas cannot parse.
    """
    scan = scan_csv(path)
    sep = sniff_delimiter(scan.header)
    columns = len(next(csv.reader([scan.header], delimiter=sep), []))
    if columns > MAX_COLUMNS:
        raise ETLError(f"{path.name} has {columns:,} columns in its header; a table may have at most "
                       f"{MAX_COLUMNS:,} (MAX_COLUMNS)")
    rows = piece_rows(chunk_rows, columns, scan.size / max(scan.lines, 1))
    check_cells = scan.longest > MAX_CELL_CHARS  # a cell cannot be longer than its line
    first_row = 2
    # Bytes in, decoded by pandas' parser: 2.7 times as fast as a text handle for UTF-8, which pandas
    # then reads through a Python-level wrapper.
    with path.open("rb") as handle:
        # index_col=False: a first data line with one field too many must not become an index
        # (which shifts every column by one, silently).
        reader = pd.read_csv(handle, sep=sep, dtype=object, na_filter=False, skip_blank_lines=False,
                             index_col=False, chunksize=rows, encoding=scan.encoding)
        while (frame := _next_piece(path, reader, columns)) is not None:
            numbers = np.arange(len(frame)) + first_row
            first_row += len(frame)
            if check_cells:
                _check_cells(path, frame, numbers)
            yield frame, numbers, scan.encoding


def _next_piece(path: Path, reader, columns: int) -> pd.DataFrame | None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return next(reader)
        except StopIteration:
            return None
        except pd.errors.ParserWarning:  # pandas would drop the extra fields of the first data line
            raise ETLError(f"{path.name} is not a well-formed CSV table: line 2 has more fields than the "
                           f"header's {columns}; is a value with the delimiter in it missing its quotes?") from None
        except pd.errors.ParserError as exc:
            raise ETLError(f"{path.name} is not a well-formed CSV table: {exc}") from None


def _check_cells(path: Path, frame: pd.DataFrame, numbers: np.ndarray) -> None:
    for column in frame.columns:
        lengths = frame[column].fillna("").astype(str).str.len().to_numpy()
        if len(lengths) and lengths.max() > MAX_CELL_CHARS:
            i = int(lengths.argmax())
            raise ETLError(f"{path.name}: row {int(numbers[i]):,}, column {column}: the cell has "
                           f"{int(lengths[i]):,} characters; a cell may have at most {MAX_CELL_CHARS:,} "
                           "(MAX_CELL_CHARS)")
