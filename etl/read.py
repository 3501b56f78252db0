"""Read a facility file as it arrives: CSV, XLSX, GeoJSON, Shapefile, GeoPackage.

:func:`read_source` returns a :class:`RawTable`: the attribute columns as
text under their original header names, the geometries for GIS formats, the
CRS the file declares (if any), the text encoding that was detected, and the
row number a person would see for each row. Nothing is interpreted here:
column meaning, numbers and CRS conversion are :mod:`etl.normalise`'s job.
"""
from __future__ import annotations

import codecs
import math
import os
import re
import struct
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import pyproj.exceptions

from etl.csvfile import iter_csv
from etl.encodings import TRIED_ENCODINGS, EncodingScan, UnknownEncoding, decode_text
from etl.errors import ETLError
from etl.xlsxfile import cell_text, iter_xlsx
from geo.crs import crs_from_wkt, normalise_crs
from geo.errors import CRSError

#: File extensions read, and the format name each maps to.
FORMATS: dict[str, str] = {
    ".csv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx", ".geojson": "geojson", ".json": "geojson",
    ".shp": "shapefile", ".gpkg": "gpkg",
}
ALLOWED_EXTENSIONS = ", ".join(FORMATS)

__all__ = ["ALLOWED_EXTENSIONS", "FORMATS", "RawTable", "decode_text", "iter_source", "read_source",
           "shapefile_encoding"]

#: GDAL's warning when a file's CRS definition cannot be parsed (the file is then read without one).
_UNPARSED_SRS = re.compile(r"unable to parse|failed to parse|cannot parse", re.IGNORECASE)
#: A GeoJSON ``"crs": {..."name": "..."}`` member, looked for in the first bytes of the file.
_GEOJSON_CRS_NAME = re.compile(r'"crs"\s*:\s*\{[^{}]*"properties"\s*:\s*\{[^{}]*"name"\s*:\s*"([^"]*)"')
_GEOJSON_HEAD_BYTES = 1 << 16

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
    crs_problem : str or None
        Why the CRS the file declares could not be used (a malformed
        ``.prj``...); then ``crs`` is None and the user's ``--crs`` is needed.
    """

    frame: pd.DataFrame
    geometry: list | None
    crs: str | None
    encoding: str | None
    format: str
    row_numbers: list[int]
    notes: list[str] = field(default_factory=list)
    crs_problem: str | None = None


def read_source(path: str | Path) -> RawTable:
    """Read a CSV, XLSX, GeoJSON, Shapefile or GeoPackage whole.

    The same checks as :func:`iter_source`, whose pieces it joins.

    Parameters
    ----------
    path : str or Path
        The file; for a shapefile, the ``.shp`` (``.dbf``, ``.prj``, ``.cpg``
        beside it are used).

    Raises
    ------
    ETLError
        Unknown extension (the message lists the allowed ones), a missing file,
        text that is not UTF-8, GBK or GB18030 or mixes them, a file past a
        cap of :mod:`etl.limits`, or a file without data rows.
    """
    return _joined(list(iter_source(path, chunk_rows=1 << 62)))


def iter_source(path: str | Path, chunk_rows: int = 100_000) -> Iterator[RawTable]:
    """Read a file in pieces of at most ``chunk_rows`` rows (CSV, XLSX), or whole (GIS formats).

    Row numbers keep counting across pieces, so a reject names the line a
    person sees in the file. Memory stays bounded for very large tables:
    pieces shrink for wide or long-lined ones (:func:`etl.limits.piece_rows`).
    Checks that need one pass over the bytes refuse before the first piece:
    a CSV's encoding, line lengths and header width, a sheet's row count.
    Those met while parsing (a cell too long, a malformed line, a value past
    the column cap in a sheet, no data rows) refuse when reached; a loader
    reading the pieces inside one transaction then writes nothing.

    Raises
    ------
    ETLError
        As :func:`read_source`.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ETLError(f"file type was {path.suffix or '(none)'!r} ({path.name}) "
                       f"but is expected to be one of {ALLOWED_EXTENSIONS}")
    if not path.is_file():
        raise ETLError(f"file {path.name!r} does not exist")
    pieces: Iterator[RawTable]
    if fmt == "csv":
        pieces = (_csv_table(frame, rows, encoding) for frame, rows, encoding in iter_csv(path, chunk_rows))
    elif fmt == "xlsx":
        pieces = (RawTable(frame=frame, geometry=None, crs=None, encoding=None, format="xlsx", row_numbers=rows)
                  for frame, rows in iter_xlsx(path, chunk_rows))
    else:
        pieces = iter([_read_gis(path, fmt)])
    found = False
    for table in pieces:
        if len(table.frame):
            found = True
            yield table
    if not found:
        what = "features" if fmt not in ("csv", "xlsx") else "data rows (only a header)"
        raise ETLError(f"{path.name} has no {what}; nothing to load")


def _joined(tables: list[RawTable]) -> RawTable:
    """One table from the pieces of one file."""
    if len(tables) == 1:
        return tables[0]
    first = tables[0]
    frame = pd.concat([t.frame for t in tables], ignore_index=True).astype(object)
    frame = frame.where(frame.notna(), None)
    notes = list(dict.fromkeys(n for t in tables for n in t.notes))
    return RawTable(frame=frame, geometry=None, crs=first.crs, encoding=first.encoding, format=first.format,
                    row_numbers=[r for t in tables for r in t.row_numbers], notes=notes)


def _csv_table(frame: pd.DataFrame, rows: np.ndarray, encoding: str) -> RawTable:
    frame = _drop_unnamed_empty(frame)
    keep = ~_all_blank(frame)
    frame = frame.loc[keep].reset_index(drop=True)
    return RawTable(frame=frame, geometry=None, crs=None, encoding=encoding, format="csv",
                    row_numbers=[int(r) for r in rows[keep]])


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


# --- GIS formats -----------------------------------------------------------

def _read_gis(path: Path, fmt: str) -> RawTable:
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
    prj = _sidecar(path, ".prj") if fmt == "shapefile" else None
    crs_problem = _geojson_crs_problem(path) if fmt == "geojson" else None
    try:
        gdf, unparsed = _read_frame(path, fmt, kwargs)
    except (pyogrio.errors.CRSError, pyproj.exceptions.CRSError) as exc:
        if prj is None:
            raise ETLError(f"{path.name}: its CRS could not be read ({exc})") from None
        crs_problem = f"{prj.name} could not be read as a CRS ({exc})"
        gdf, unparsed = _read_without_prj(path, fmt, kwargs)
    crs_problem = crs_problem or (f"the CRS in {path.name} could not be read ({unparsed})" if unparsed else None)
    crs, problem = _gis_crs(gdf.crs, fmt, prj.name if prj else path.name)
    crs_problem = crs_problem or problem
    crs = None if crs_problem else crs  # what GDAL fell back to is not what the file said
    geom_column = gdf.geometry.name if isinstance(gdf, gpd.GeoDataFrame) else None
    geometry = list(gdf[geom_column].to_numpy()) if geom_column else None  # None: a plain table
    frame = pd.DataFrame({c: _as_text(gdf[c]) for c in gdf.columns if c != geom_column},
                         index=range(len(gdf)), dtype=object)
    return RawTable(frame=frame, geometry=geometry, crs=crs,
                    encoding=encoding or ("utf-8" if fmt in ("geojson", "gpkg") else None),
                    format=fmt, row_numbers=list(range(1, len(gdf) + 1)), notes=notes,
                    crs_problem=crs_problem)


def _read_frame(path: Path, fmt: str, kwargs: dict) -> tuple[pd.DataFrame, str | None]:
    """The file as a frame, and GDAL's complaint when it could not parse the CRS the file declares
    (GDAL then reads the file as if it declared none)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            frame = pyogrio.read_dataframe(path, **kwargs)
    except (pyogrio.errors.CRSError, pyproj.exceptions.CRSError):
        raise
    except Exception as exc:  # GDAL errors come in several classes
        raise ETLError(f"{path.name} could not be read as {fmt}: {exc}") from None
    unparsed = next((str(w.message) for w in caught if _UNPARSED_SRS.search(str(w.message))), None)
    return frame, unparsed


def _geojson_crs_problem(path: Path) -> str | None:
    """Why the ``crs`` member a GeoJSON file declares (pre-RFC 7946 style) cannot be used, if it cannot.

    GDAL reads a file whose ``crs`` names no known CRS as WGS-84 without a
    word; a producer who wrote one meant another CRS, so that is a problem to
    report, not a default to take.
    """
    with path.open("rb") as handle:
        head = handle.read(_GEOJSON_HEAD_BYTES).decode("utf-8", errors="replace")
    found = _GEOJSON_CRS_NAME.search(head)
    if found is None:
        return None
    name = found.group(1)
    try:
        pyproj.CRS.from_user_input(name)
    except pyproj.exceptions.CRSError:
        return f"the crs member of {path.name} names {name!r}, which is not a CRS"
    return None


def _sidecar(path: Path, suffix: str) -> Path | None:
    """A shapefile's sidecar (``.prj``, ``.cpg``, ``.dbf``) in either case, or None."""
    return next((p for p in (path.with_suffix(suffix), path.with_suffix(suffix.upper())) if p.is_file()), None)


def _read_without_prj(path: Path, fmt: str, kwargs: dict) -> tuple[pd.DataFrame, str | None]:
    """Read a shapefile as if its unreadable ``.prj`` were absent (links to the other parts)."""
    with tempfile.TemporaryDirectory(prefix="minsheng-shp-") as folder:
        for part in path.parent.iterdir():
            if part.stem == path.stem and part.suffix.lower() != ".prj":
                os.symlink(part.resolve(), Path(folder) / part.name)
        return _read_frame(Path(folder) / path.name, fmt, kwargs)


def _gis_crs(crs, fmt: str, where: str) -> tuple[str | None, str | None]:
    """Canonical name of a GIS file's CRS, or why it cannot be used; GeoJSON without one is WGS-84 (RFC 7946)."""
    if crs is None:
        return ("wgs84", None) if fmt == "geojson" else (None, None)
    try:
        epsg = crs.to_epsg(min_confidence=60)
        return (normalise_crs(epsg) if epsg else crs_from_wkt(crs.to_wkt())), None
    except CRSError as exc:
        return None, f"the CRS in {where} could not be used ({exc})"


def _as_text(series: pd.Series) -> list:
    """Values of an attribute column as ``str`` (or ``None`` when missing)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        stamps = pd.to_datetime(series)
        midnight = bool((stamps.dropna() == stamps.dropna().dt.normalize()).all())
        fmt = "%Y-%m-%d" if midnight else "%Y-%m-%dT%H:%M:%S"
        return [None if pd.isna(v) else v.strftime(fmt) for v in stamps]
    return [cell_text(v.item() if isinstance(v, np.generic) else v) if not _missing(v) else None
            for v in series.tolist()]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


# --- Shapefile encodings ---------------------------------------------------

def _cpg_encoding(path: Path) -> str | None:
    cpg = _sidecar(path, ".cpg")
    if cpg is None:
        return None
    text = cpg.read_text("ascii", errors="ignore").strip()
    if text.isdigit():
        text = "utf-8" if text == "65001" else f"cp{text}"
    try:
        return codecs.lookup(text).name
    except LookupError:
        return None


def _dbf_text_fields(dbf: Path, max_records: int = 20000) -> tuple[int, list[tuple[int, bytes]]]:
    """The DBF's language-driver id and ``(record number, raw bytes)`` of its character fields."""
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
            values.append((i + 1, data[start + off:start + off + flen].rstrip(b" \x00")))
    return ldid, values


def shapefile_encoding(shp: Path) -> tuple[str, str | None]:
    """Text encoding of a shapefile's DBF, and a note when it was not the declared one.

    The ``.cpg`` (or the DBF language-driver byte) is preferred when the text
    decodes with it; otherwise UTF-8, then GBK, then GB18030. Every
    non-ASCII value is checked (:class:`etl.encodings.EncodingScan`), so a
    DBF whose records mix UTF-8 and GBK is refused, naming the record.

    Raises
    ------
    ETLError
        When no candidate decodes the text, or the records mix encodings.
    """
    dbf = _sidecar(shp, ".dbf")
    declared = _cpg_encoding(shp)
    if dbf is None:
        return declared or "utf-8", None
    ldid, values = _dbf_text_fields(dbf)
    declared = declared or _LDID.get(ldid)
    candidates = ([declared] if declared else []) + [e for e in TRIED_ENCODINGS if e != declared]
    scan = EncodingScan(dbf.name, tuple(candidates))
    try:
        for record, value in values:
            if not value.isascii():
                scan.check(value, f"record {record:,}")
    except UnknownEncoding as exc:
        raise ETLError(f"{exc}; add a .cpg naming its encoding") from None
    if declared and scan.encoding != declared:
        return scan.encoding, f"the DBF text is not {declared} as declared; read it as {scan.encoding}"
    return scan.encoding, None
