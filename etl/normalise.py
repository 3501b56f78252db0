"""Normalise a :class:`etl.read.RawTable` into facility records in WGS-84.

:func:`normalise` decides the CRS (explicit > the file's own > default, never
a guess), finds the columns by their usual Chinese and English names, parses
numbers as people type them (full-width digits, DMS), converts every geometry
to WGS-84 lon/lat degrees, and turns rows whose position cannot be read into
:class:`etl.errors.Reject` rows with a reason. Checks that need the city or
the layer's rules (inside the city, capacity >= 0, duplicates) are
:mod:`etl.validate`'s job.
"""
from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely

from etl.columns import FIELD_NAMES, PAIR_NAMES, detect_columns
from etl.errors import ETLError, Reject
from etl.fields import column_text, extra_attrs, field_values, parse_dates
from etl.read import RawTable
from geo.crs import ALLOWED_CRS, normalise_crs, to_wgs84
from geo.errors import CRSError
from geo.parse import (
    DMS_EXAMPLES,
    geometries_to_wgs84,
    is_blank,
    parse_coordinates,
    plausible_position,
    to_halfwidth,
)
from layers import get_layer

# Column names (etl.columns) and field parsers (etl.fields) are re-exported: callers import them from here.
__all__ = ["FIELD_NAMES", "PAIR_NAMES", "Normalised", "crs_label", "detect_columns", "normalise", "parse_dates",
           "resolve_crs", "without_gc"]
_MAX_ROW_NOTES = 50
_CRS_LABEL = {"wgs84": "WGS-84", "gcj02": "GCJ-02", "bd09": "BD-09"}


@dataclass
class Normalised:
    """Records ready for :func:`etl.validate.validate`.

    Attributes
    ----------
    records : list of dict
        Keys ``row``, ``source_id``, ``name``, ``address``, ``phone``,
        ``opening_hours``, ``capacity`` (int, None, or the original text when
        it is not a whole number, which validate rejects), ``opened_on``
        (``datetime.date`` or None), ``kind``, ``attrs`` (unused columns) and
        ``geom`` (shapely, WGS-84 lon/lat degrees).
    rejects : list of Reject
        Rows whose position could not be read.
    notes : list of str
        Sentences on what was decided (CRS, columns, fixes).
    crs : str
        Canonical name of the source CRS used for conversion.
    columns : dict
        Field -> source column used, e.g. ``{"lon": "经度", "lat": "纬度"}``.
    """

    records: list[dict]
    rejects: list[Reject]
    notes: list[str]
    crs: str
    columns: dict[str, str]


@dataclass
class _Positions:
    geoms: np.ndarray  # object array of shapely geometries (WGS-84) or None
    ok: np.ndarray  # bool: usable position
    rejects: list[Reject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def normalise(raw: RawTable, layer: str, *, crs: str | None = None,
              default_crs: str | None = None) -> Normalised:
    """Turn a raw table into WGS-84 facility records.

    Parameters
    ----------
    raw : RawTable
        From :func:`etl.read.read_source`.
    layer : str
        A key of :data:`layers.registry.LAYERS` (used for ``kind`` labels).
    crs : str, optional
        The source CRS given by the user; wins over the file's own.
    default_crs : str, optional
        Used only when neither ``crs`` nor the file names one.

    Raises
    ------
    ETLError
        No CRS from any source, an unknown CRS name, a file whose own CRS
        cannot be read (a malformed ``.prj``) when ``crs`` is not given, or a
        table without coordinate columns.
    """
    layer_rec = get_layer(layer)
    given = crs is not None and str(crs).strip() != ""
    if raw.crs_problem and not given:
        raise ETLError(f"{raw.crs_problem}; fix it, or pass --crs with one of {ALLOWED_CRS}")
    source_crs, crs_note = resolve_crs(crs, raw.crs, default_crs)
    if raw.crs_problem:
        crs_note += f" ({raw.crs_problem}; --crs wins)"
    frame = raw.frame
    columns = detect_columns(list(frame.columns), need_coordinates=raw.geometry is None)
    notes = list(raw.notes) + [crs_note]
    if raw.encoding:
        notes.append(f"{raw.format} text read as {raw.encoding}")
    names = column_text(frame, columns.get("name"))
    ids = _ids(frame, columns, names, notes)
    rows = np.asarray(raw.row_numbers, dtype=np.int64)
    if raw.geometry is None:
        pos = _positions_from_columns(frame, columns, source_crs, rows, ids)
    else:
        pos = _positions_from_geometry(raw.geometry, source_crs, rows, ids)
    notes += pos.notes + [_columns_note(columns, source_crs)]
    fields, field_notes = field_values(frame, columns, layer_rec, rows)
    notes += field_notes
    with without_gc():  # millions of small dicts: the cyclic GC would rescan them all
        records = _records(rows, ids, names, fields, extra_attrs(frame, columns), pos)
    return Normalised(records=records, rejects=pos.rejects, notes=[n for n in notes if n],
                      crs=source_crs, columns=columns)


@contextmanager
def without_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of small dicts."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- CRS -------------------------------------------------------------------

def crs_label(name: str) -> str:
    """Human label of a canonical CRS name: ``GCJ-02``, ``BD-09``, ``WGS-84``, ``EPSG:4548``."""
    return _CRS_LABEL.get(name, name)


def resolve_crs(explicit: str | None, from_file: str | None,
                default: str | None) -> tuple[str, str]:
    """The CRS to use and a sentence saying where it came from.

    Precedence: ``explicit`` (the user's ``--crs``) > ``from_file`` (.prj,
    GeoJSON, GeoPackage) > ``default``. Never guessed.

    Raises
    ------
    ETLError
        When all three are empty or a name is not a known CRS.
    """
    for value, origin in ((explicit, "--crs"), (from_file, "the file"), (default, "the default")):
        if value is None or str(value).strip() == "":
            continue
        try:
            name = normalise_crs(value)
        except CRSError as exc:
            raise ETLError(f"{origin}: {exc}") from None
        note = f"CRS {crs_label(name)} from {origin}"
        if origin == "--crs" and from_file and _same_crs(from_file) != name:
            note += f" (the file says {crs_label(_same_crs(from_file))}; --crs wins)"
        return name, note
    raise ETLError(f"no CRS: the file does not name one; pass --crs with one of {ALLOWED_CRS} "
                   "(AMap/Tencent tools give gcj02, Baidu gives bd09, GPS gives wgs84)")


def _same_crs(value: str) -> str:
    try:
        return normalise_crs(value)
    except CRSError:
        return str(value)


# --- columns ---------------------------------------------------------------

def _columns_note(columns: dict[str, str], crs: str) -> str:
    if "lon" not in columns:
        where = f"coordinates from the file's geometry ({crs_label(crs)})"
    elif columns["lon"] == columns["lat"]:
        where = f"coordinates from column {columns['lon']} as lon,lat ({crs_label(crs)})"
    else:
        where = f"coordinates from columns {columns['lon']}/{columns['lat']} ({crs_label(crs)})"
    others = [f"{fld} from {col}" for fld, col in columns.items() if fld not in ("lon", "lat")
              and not (fld == "source_id" and col == columns.get("name"))]
    return where + ("; " + ", ".join(others) if others else "")


# --- positions -------------------------------------------------------------

def _row_label(row: int, source_id: str | None) -> str:
    return f"row {row}" + (f" ({source_id})" if source_id else "")


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= _MAX_ROW_NOTES:
        return lines
    return lines[:_MAX_ROW_NOTES] + [f"... and {len(lines) - _MAX_ROW_NOTES} more like these"]


def _coordinate_series(frame: pd.DataFrame, columns: dict[str, str]) -> tuple[pd.Series, pd.Series]:
    if columns["lon"] != columns["lat"]:
        return frame[columns["lon"]], frame[columns["lat"]]
    pairs = frame[columns["lon"]].map(_split_pair)
    return pairs.map(lambda p: p[0]), pairs.map(lambda p: p[1])


def _split_pair(value: object) -> tuple[str | None, str | None]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None, None
    text = to_halfwidth(str(value)).strip().strip("()[]")
    parts = re.split(r"\s*[,;]\s*", text) if re.search(r"[,;]", text) else text.split()
    return (parts[0], parts[1]) if len(parts) == 2 else (text, None)


def _positions_from_columns(frame: pd.DataFrame, columns: dict[str, str], crs: str,
                            rows: np.ndarray, ids: list) -> _Positions:
    """Parse the lon/lat columns, fix swapped axes, convert to WGS-84 points."""
    xs, ys = _coordinate_series(frame, columns)
    x, y = parse_coordinates(xs), parse_coordinates(ys)
    rejects = _coordinate_rejects(xs, ys, x, y, columns, crs, rows, ids)
    readable = np.isfinite(x) & np.isfinite(y)
    lon, lat = _convert(x, y, readable, crs)
    x, y, lon, lat, notes = _unswap(x, y, lon, lat, readable, crs, columns, rows, ids)
    converted = readable & np.isfinite(lon) & np.isfinite(lat)
    for i in np.flatnonzero(readable & ~converted):
        rejects.append(Reject(int(rows[i]), ids[i], f"{columns['lon']}/{columns['lat']} "
                              f"({x[i]}, {y[i]}) cannot be converted from {crs_label(crs)}"))
    geoms = np.full(len(x), None, dtype=object)
    geoms[converted] = shapely.points(lon[converted], lat[converted])
    rejects.sort(key=lambda r: r.row or 0)
    return _Positions(geoms=geoms, ok=converted, rejects=rejects, notes=notes)


def _convert(x: np.ndarray, y: np.ndarray, readable: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised conversion of source x/y to WGS-84 lon/lat degrees (NaN where unreadable)."""
    with np.errstate(invalid="ignore", over="ignore"):
        lon, lat = to_wgs84(np.where(readable, x, 0.0), np.where(readable, y, 0.0), crs)
    lon = np.where(readable, np.atleast_1d(np.asarray(lon, dtype=float)), np.nan)
    lat = np.where(readable, np.atleast_1d(np.asarray(lat, dtype=float)), np.nan)
    return lon, lat


def _coordinate_rejects(xs: pd.Series, ys: pd.Series, x: np.ndarray, y: np.ndarray,
                        columns: dict[str, str], crs: str, rows: np.ndarray, ids: list) -> list[Reject]:
    """One Reject per row whose lon or lat is empty or unreadable, naming column and value."""
    expected = DMS_EXAMPLES if crs in _CRS_LABEL else f"a number in the units of {crs}"
    bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)))
    if len(bad) == 0:
        return []
    xs, ys = xs.iloc[bad], ys.iloc[bad]
    values = {"lon": (xs, is_blank(xs), x[bad]), "lat": (ys, is_blank(ys), y[bad])}
    rejects = []
    for k, i in enumerate(bad):
        problems = []
        for fld in ("lon", "lat"):
            text, blank, parsed = values[fld]
            if blank[k]:
                problems.append(f"{columns[fld]} is empty")
            elif not np.isfinite(parsed[k]):
                problems.append(f"{columns[fld]} is {text.iloc[k]!r}; expected {expected}")
        rejects.append(Reject(int(rows[i]), ids[i], "; ".join(problems)))
    return rejects


def _unswap(x: np.ndarray, y: np.ndarray, lon: np.ndarray, lat: np.ndarray, readable: np.ndarray,
            crs: str, columns: dict[str, str], rows: np.ndarray, ids: list):
    """Swap x/y where they are impossible as given and plausible swapped.

    E.g. a latitude of 117.46 in GCJ-02: no such place, while (117.46, 34.78)
    is in China. Done before conversion is final, since GCJ-02/BD-09 offsets
    depend on the true position. Returns ``x, y, lon, lat, notes``.
    """
    bad = np.flatnonzero(readable & ~plausible_position(x, y, lon, lat, crs))
    if len(bad) == 0:
        return x, y, lon, lat, []
    slon, slat = _convert(y[bad], x[bad], np.ones(len(bad), dtype=bool), crs)
    good = plausible_position(y[bad], x[bad], slon, slat, crs)
    fix = bad[good]
    x, y, lon, lat = x.copy(), y.copy(), lon.copy(), lat.copy()
    x[fix], y[fix] = y[fix], x[fix].copy()
    lon[fix], lat[fix] = slon[good], slat[good]
    notes = [f"{_row_label(int(rows[i]), ids[i])}: {columns['lon']}/{columns['lat']} were swapped "
             f"({y[i]}, {x[i]} is not a {crs_label(crs)} position); used ({x[i]}, {y[i]})" for i in fix]
    return x, y, lon, lat, _capped(notes)


def _positions_from_geometry(geometry: list, crs: str, rows: np.ndarray, ids: list) -> _Positions:
    """Convert GIS geometries to WGS-84; null or empty geometries become Rejects."""
    geoms = np.empty(len(geometry), dtype=object)
    geoms[:] = geometry
    missing = shapely.is_missing(geoms)
    empty = ~missing & shapely.is_empty(np.where(missing, shapely.Point(), geoms))
    rejects = [Reject(int(rows[i]), ids[i], "geometry is null") for i in np.flatnonzero(missing)]
    rejects += [Reject(int(rows[i]), ids[i], "geometry is empty") for i in np.flatnonzero(empty)]
    geoms[missing | empty] = None
    converted = geometries_to_wgs84(geoms, crs)
    finite = np.array([g is not None and bool(np.isfinite(shapely.get_coordinates(g)).all())
                       for g in converted], dtype=bool)
    for i in np.flatnonzero(~missing & ~empty & ~finite):
        rejects.append(Reject(int(rows[i]), ids[i], f"geometry cannot be converted from {crs_label(crs)}"))
    rejects.sort(key=lambda r: r.row or 0)
    return _Positions(geoms=converted, ok=finite, rejects=rejects)


# --- other fields ----------------------------------------------------------

def _ids(frame: pd.DataFrame, columns: dict[str, str], names: list, notes: list[str]) -> list:
    if "source_id" in columns:
        return column_text(frame, columns["source_id"])
    if "name" in columns:
        columns["source_id"] = columns["name"]
        notes.append(f"no id column (looked for {', '.join(FIELD_NAMES['source_id'][:8])}); "
                     f"the name in {columns['name']} is used as source_id")
    return list(names)


def _records(rows: np.ndarray, ids: list, names: list, fields: dict[str, list], attrs: list[dict],
             pos: _Positions) -> list[dict]:
    keep = np.flatnonzero(pos.ok)
    columns = [rows.tolist(), ids, names, fields["address"], fields["phone"], fields["opening_hours"],
               fields["capacity"], fields["opened_on"], fields["kind"], attrs, pos.geoms.tolist()]
    if len(keep) < len(rows):
        columns = [[col[i] for i in keep.tolist()] for col in columns]
    return [{"row": row, "source_id": sid, "name": name, "address": address, "phone": phone,
             "opening_hours": hours, "capacity": capacity, "opened_on": opened, "kind": kind,
             "attrs": attr, "geom": geom}
            for row, sid, name, address, phone, hours, capacity, opened, kind, attr, geom
            in zip(*columns, strict=True)]
