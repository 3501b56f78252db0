"""Read a facility file as it arrives: CSV, XLSX, GeoJSON, Shapefile, GeoPackage.

:func:`read_source` returns a :class:`RawTable`: the attribute columns as
text under their original header names, the geometries for GIS formats, the
CRS the file declares (if any), the text encoding that was detected, and the
row number a person would see for each row. Nothing is interpreted here:
column meaning, numbers and CRS conversion are :mod:`etl.normalise`'s job.
"""
from __future__ import annotations

import codecs
import datetime as dt
import io
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from etl.errors import ETLError
from geo.crs import crs_from_wkt, normalise_crs
from geo.errors import CRSError

#: File extensions read, and the format name each maps to.
FORMATS: dict[str, str] = {
    ".csv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx", ".geojson": "geojson", ".json": "geojson",
    ".shp": "shapefile", ".gpkg": "gpkg",
}
ALLOWED_EXTENSIONS = ", ".join(FORMATS)

#: Text encodings tried for CSV and DBF, in order. UTF-8 first: GBK bytes are
#: almost never valid UTF-8, whereas UTF-8 bytes often decode as (wrong) GBK.
_TRIED_ENCODINGS = ("utf-8", "gbk", "gb18030")

#: DBF language-driver ids that name an East-Asian code page worth trusting.
_LDID = {0x4D: "gbk", 0x7A: "gbk", 0x4F: "big5", 0x78: "big5", 0x13: "cp932", 0x7B: "cp932"}


@dataclass
class RawTable:
    """A file's rows before interpretation.

    Attributes
    ----------
    frame : pandas.DataFrame
        Attribute columns under their original header names; values are
        ``str`` or ``None`` (object dtype).
    geometry : list or None
        One shapely geometry (or ``None``) per row for GIS formats, in the
        file's own CRS; ``None`` for tables.
    crs : str or None
        Canonical CRS name (:func:`geo.crs.normalise_crs`) the file declares,
        ``None`` when it says nothing.
    encoding : str or None
        Text encoding detected (``utf-8``, ``utf-8-sig``, ``gbk``, ``gb18030``...).
    format : str
        ``csv``, ``xlsx``, ``geojson``, ``shapefile`` or ``gpkg``.
    row_numbers : list of int
        The row a person sees: spreadsheet line for CSV/XLSX (header = 1, first
        data row = 2), 1-based feature index for GIS formats.
    notes : list of str
        What reading decided that a person should know (e.g. an encoding
        fallback).
    """

    frame: pd.DataFrame
    geometry: list | None
    crs: str | None
    encoding: str | None
    format: str
    row_numbers: list[int]
    notes: list[str] = field(default_factory=list)


def read_source(path: str | Path) -> RawTable:
    """Read a CSV, XLSX, GeoJSON, Shapefile or GeoPackage.

    Parameters
    ----------
    path : str or Path
        The file; for a shapefile, the ``.shp`` (``.dbf``, ``.prj``, ``.cpg``
        beside it are used).

    Raises
    ------
    ETLError
        Unknown extension (the message lists the allowed ones), a missing file,
        or text that is not UTF-8, GBK or GB18030.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ETLError(f"file type was {path.suffix or '(none)'!r} ({path.name}) "
                       f"but is expected to be one of {ALLOWED_EXTENSIONS}")
    if not path.is_file():
        raise ETLError(f"file {path.name!r} does not exist")
    if fmt == "csv":
        return _read_csv(path)
    if fmt == "xlsx":
        return _read_xlsx(path)
    return _read_gis(path, fmt)


def iter_source(path: str | Path, chunk_rows: int = 100_000) -> Iterator[RawTable]:
    """Read a file in pieces of at most ``chunk_rows`` rows (CSV), or whole (other formats).

    Row numbers keep counting across pieces, so a reject names the line a
    person sees in the file. Memory stays bounded for very large CSV files.
    """
    path = Path(path)
    if FORMATS.get(path.suffix.lower()) != "csv" or not path.is_file():
        yield read_source(path)
        return
    text, encoding = decode_text(path.read_bytes(), path.name)  # checks the whole file decodes
    if not text.strip():
        raise ETLError(f"{path.name} is empty; expected a header line and data rows")
    sep = _sniff_delimiter(text)
    del text  # then stream it, so the whole text is never held beside the rows
    first_row = 2
    with path.open(encoding=encoding, newline="") as handle:
        reader = pd.read_csv(handle, sep=sep, dtype=object, na_filter=False, skip_blank_lines=False,
                             chunksize=chunk_rows)
        try:
            for frame in reader:
                rows = np.arange(len(frame)) + first_row
                first_row += len(frame)
                yield _csv_table(frame, rows, encoding)
        except pd.errors.ParserError as exc:
            raise ETLError(f"{path.name} is not a well-formed CSV table: {exc}") from None


def _csv_table(frame: pd.DataFrame, rows: np.ndarray, encoding: str) -> RawTable:
    frame = _drop_unnamed_empty(frame)
    keep = ~_all_blank(frame)
    frame = frame.loc[keep].reset_index(drop=True)
    return RawTable(frame=frame, geometry=None, crs=None, encoding=encoding, format="csv",
                    row_numbers=[int(r) for r in rows[keep]])


# --- CSV -------------------------------------------------------------------

def decode_text(data: bytes, what: str = "the file") -> tuple[str, str]:
    """Decode bytes strictly; return ``(text, encoding)``.

    Tries UTF-8 (with or without BOM), UTF-16 with BOM, GBK, GB18030, then
    charset-normalizer's best guess. Never substitutes characters.
    """
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8):].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise ETLError(f"{what} starts with a UTF-8 byte-order mark but is not UTF-8 "
                           f"(bad byte at {exc.start}); save it as UTF-8") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    for encoding in _TRIED_ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return _decode_guess(data, what)


def _decode_guess(data: bytes, what: str) -> tuple[str, str]:
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        raise ETLError(f"the encoding of {what} could not be read; allowed: UTF-8 (with or "
                       "without BOM), GBK or GB18030")
    return str(best), best.encoding


def _sniff_delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    counts = {sep: header.count(sep) for sep in (",", "\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _read_csv(path: Path) -> RawTable:
    text, encoding = decode_text(path.read_bytes(), path.name)
    if not text.strip():
        raise ETLError(f"{path.name} is empty; expected a header line and data rows")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=_sniff_delimiter(text), dtype=object,
                            na_filter=False, skip_blank_lines=False)
    except pd.errors.ParserError as exc:
        raise ETLError(f"{path.name} is not a well-formed CSV table: {exc}") from None
    return _csv_table(frame, np.arange(len(frame)) + 2, encoding)


def _all_blank(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose every cell is the empty string (blank lines)."""
    blank = np.ones(len(frame), dtype=bool)
    for column in frame.columns:
        blank &= frame[column].to_numpy(dtype=object) == ""
    return blank


def _drop_unnamed_empty(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop columns pandas named ``Unnamed: n`` (trailing commas) that hold nothing."""
    drop = [c for c in frame.columns
            if str(c).startswith("Unnamed: ") and (frame[c].fillna("").astype(str).str.strip() == "").all()]
    return frame.drop(columns=drop)


# --- XLSX ------------------------------------------------------------------

def _cell_text(value: object) -> str | None:
    """A cell value as text: ints without ``.0``, dates as ISO 8601."""
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


def _header_index(rows: list[tuple]) -> int:
    """Index of the header row: the first with two or more filled cells.

    Chinese spreadsheets often carry a one-cell title row above the header.
    """
    for i, row in enumerate(rows[:20]):
        if sum(v is not None and str(v).strip() != "" for v in row) >= 2:
            return i
    return 0


def _read_xlsx(path: Path) -> RawTable:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a bad file
        raise ETLError(f"{path.name} could not be opened as an Excel .xlsx workbook: {exc}") from None
    try:
        for sheet in book.worksheets:
            rows = [tuple(_cell_text(v) for v in row)
                    for row in sheet.iter_rows(min_row=1, values_only=True)]
            if any(v is not None for row in rows for v in row):
                return _table_from_rows(rows, path)
    finally:
        book.close()
    raise ETLError(f"{path.name} has no sheet with data; expected a header row and data rows")


def _table_from_rows(rows: list[tuple], path: Path) -> RawTable:
    h = _header_index(rows)
    width = max(len(r) for r in rows)
    header = list(rows[h]) + [None] * (width - len(rows[h]))
    used = [i for i, name in enumerate(header) if name is not None
            or any(i < len(r) and r[i] is not None for r in rows[h + 1:])]
    names = [header[i] if header[i] is not None else f"column {i + 1}" for i in used]
    data, numbers = [], []
    for offset, row in enumerate(rows[h + 1:], start=h + 2):
        values = [row[i] if i < len(row) else None for i in used]
        if any(v is not None for v in values):
            data.append(values)
            numbers.append(offset)
    frame = pd.DataFrame(data, columns=[str(n).strip() for n in names], dtype=object)
    return RawTable(frame=frame, geometry=None, crs=None, encoding=None, format="xlsx",
                    row_numbers=numbers)


# --- GIS formats -----------------------------------------------------------

def _read_gis(path: Path, fmt: str) -> RawTable:
    import geopandas as gpd
    import pyogrio

    notes: list[str] = []
    kwargs: dict = {}
    encoding = None
    if fmt == "shapefile":
        encoding, note = shapefile_encoding(path)
        kwargs["encoding"] = encoding
        if note:
            notes.append(note)
    elif fmt == "gpkg":
        layers = pyogrio.list_layers(path)
        if len(layers) == 0:
            raise ETLError(f"{path.name} has no layers; expected at least one feature table")
        kwargs["layer"] = layers[0][0]
        if len(layers) > 1:
            notes.append(f"{path.name} has {len(layers)} layers; read the first, {layers[0][0]!r}")
    try:
        gdf = pyogrio.read_dataframe(path, **kwargs)
    except Exception as exc:  # GDAL errors come in several classes
        raise ETLError(f"{path.name} could not be read as {fmt}: {exc}") from None
    crs, crs_note = _gis_crs(gdf.crs, fmt)
    if crs_note:
        notes.append(crs_note)
    geom_column = gdf.geometry.name if isinstance(gdf, gpd.GeoDataFrame) else None
    geometry = list(gdf[geom_column].to_numpy()) if geom_column else None  # None: a plain table
    frame = pd.DataFrame({c: _as_text(gdf[c]) for c in gdf.columns if c != geom_column},
                         index=range(len(gdf)), dtype=object)
    return RawTable(frame=frame, geometry=geometry, crs=crs,
                    encoding=encoding or ("utf-8" if fmt in ("geojson", "gpkg") else None),
                    format=fmt, row_numbers=list(range(1, len(gdf) + 1)), notes=notes)


def _gis_crs(crs, fmt: str) -> tuple[str | None, str | None]:
    """Canonical name of a GIS file's CRS; GeoJSON without one is WGS-84 (RFC 7946)."""
    if crs is None:
        return ("wgs84", None) if fmt == "geojson" else (None, None)
    try:
        epsg = crs.to_epsg(min_confidence=60)
        return (normalise_crs(epsg) if epsg else crs_from_wkt(crs.to_wkt())), None
    except CRSError as exc:
        return None, f"the file's CRS could not be used ({exc}); give one with --crs"


def _as_text(series: pd.Series) -> list:
    """Values of an attribute column as ``str`` (or ``None`` when missing)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        stamps = pd.to_datetime(series)
        midnight = bool((stamps.dropna() == stamps.dropna().dt.normalize()).all())
        fmt = "%Y-%m-%d" if midnight else "%Y-%m-%dT%H:%M:%S"
        return [None if pd.isna(v) else v.strftime(fmt) for v in stamps]
    return [_cell_text(v.item() if isinstance(v, np.generic) else v) if not _missing(v) else None
            for v in series.tolist()]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


# --- Shapefile encodings ---------------------------------------------------

def _cpg_encoding(path: Path) -> str | None:
    cpg = next((p for p in (path.with_suffix(".cpg"), path.with_suffix(".CPG")) if p.is_file()), None)
    if cpg is None:
        return None
    text = cpg.read_text("ascii", errors="ignore").strip()
    if text.isdigit():
        text = "utf-8" if text == "65001" else f"cp{text}"
    try:
        return codecs.lookup(text).name
    except LookupError:
        return None


def _dbf_text_fields(dbf: Path, max_records: int = 20000) -> tuple[int, list[bytes]]:
    """The DBF's language-driver id and the raw bytes of its character fields."""
    data = dbf.read_bytes()
    if len(data) < 32:
        return 0, []
    count, header_len, record_len = struct.unpack("<IHH", data[4:12])
    ldid = data[29]
    fields, pos = [], 32
    offset = 1  # the deletion flag
    while pos + 32 <= header_len and data[pos] != 0x0D:
        ftype, flen = chr(data[pos + 11]), data[pos + 16]
        if ftype in "CM":
            fields.append((offset, flen))
        offset += flen
        pos += 32
    values = []
    for i in range(min(count, max_records)):
        start = header_len + i * record_len
        for off, flen in fields:
            values.append(data[start + off:start + off + flen].rstrip(b" \x00"))
    return ldid, values


def shapefile_encoding(shp: Path) -> tuple[str, str | None]:
    """Text encoding of a shapefile's DBF, and a note when it was not the declared one.

    The ``.cpg`` (or the DBF language-driver byte) is honoured when the text
    decodes with it; otherwise UTF-8, then GBK, then GB18030 are tried.

    Raises
    ------
    ETLError
        When no candidate decodes the text.
    """
    dbf = next((p for p in (shp.with_suffix(".dbf"), shp.with_suffix(".DBF")) if p.is_file()), None)
    declared = _cpg_encoding(shp)
    if dbf is None:
        return declared or "utf-8", None
    ldid, values = _dbf_text_fields(dbf)
    declared = declared or _LDID.get(ldid)
    candidates = ([declared] if declared else []) + [e for e in _TRIED_ENCODINGS if e != declared]
    for encoding in candidates:
        try:
            for value in values:
                value.decode(encoding)
        except UnicodeDecodeError:
            continue
        if declared and encoding != declared:
            return encoding, f"the DBF text is not {declared} as declared; read it as {encoding}"
        return encoding, None
    raise ETLError(f"the text in {dbf.name} is not {', '.join(candidates)}; "
                   "add a .cpg naming its encoding")
