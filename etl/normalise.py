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

from etl.errors import ETLError, Reject
from etl.read import RawTable
from geo.crs import ALLOWED_CRS, normalise_crs, to_wgs84
from geo.errors import CRSError
from geo.parse import (
    DMS_EXAMPLES,
    geometries_to_wgs84,
    is_blank,
    parse_coordinates,
    parse_integer,
    plausible_position,
    to_halfwidth,
)
from layers import Layer, get_layer

#: Usual header names per field, most specific first. Matching ignores case,
#: spaces, underscores, hyphens and full-width forms; a bracketed suffix such
#: as ``经度(GCJ-02)`` is ignored on a second pass.
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "lon": ("经度", "lng", "lon", "long", "longitude", "x", "x坐标", "东经", "经度坐标", "坐标x",
            "pointx", "xcoord", "gcj经度", "gcj02经度", "wgs84经度", "百度经度", "bd09经度"),
    "lat": ("纬度", "lat", "latitude", "y", "y坐标", "北纬", "纬度坐标", "坐标y",
            "pointy", "ycoord", "gcj纬度", "gcj02纬度", "wgs84纬度", "百度纬度", "bd09纬度"),
    "source_id": ("机构编号", "站点编号", "设施编号", "编号", "机构代码", "代码", "编码", "id", "code",
                  "sourceid", "uid", "poiid"),
    "name": ("机构名称", "站点名称", "公园名称", "停车场名称", "卫生室名称", "警务站名称", "网点名称",
             "单位名称", "设施名称", "场所名称", "名称", "名字", "name", "title"),
    "address": ("地址", "详细地址", "所在地址", "位置", "address", "addr"),
    "phone": ("联系电话", "电话", "电话号码", "办公电话", "联系方式", "phone", "tel", "telephone"),
    "opening_hours": ("办公时间", "开放时间", "营业时间", "开放时段", "服务时间", "工作时间",
                      "openinghours", "hours"),
    "capacity": ("车位数", "泊位数", "停车位数", "车位", "泊位", "容量", "capacity", "spaces"),
    "opened_on": ("建成时间", "建成日期", "开放日期", "启用时间", "启用日期", "opened", "openedon",
                  "日期"),
    "kind": ("类型", "类别", "种类", "分类", "kind", "type"),
}
#: One column holding "lon,lat" together.
PAIR_NAMES = ("经纬度", "经纬度坐标", "坐标", "lnglat", "lonlat", "coordinates", "location")

_YES = {"是", "有", "yes", "y", "true", "√", "✓", "t"}
_NO = {"否", "无", "没有", "no", "n", "false", "×", "✗", "f"}
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
    names = _text(frame, columns.get("name"))
    ids = _ids(frame, columns, names, notes)
    rows = np.asarray(raw.row_numbers, dtype=np.int64)
    if raw.geometry is None:
        pos = _positions_from_columns(frame, columns, source_crs, rows, ids)
    else:
        pos = _positions_from_geometry(raw.geometry, source_crs, rows, ids)
    notes += pos.notes + [_columns_note(columns, source_crs)]
    fields, field_notes = _fields(frame, columns, layer_rec, rows)
    notes += field_notes
    with without_gc():  # millions of small dicts: the cyclic GC would rescan them all
        records = _records(rows, ids, names, fields, _attrs(frame, columns), pos)
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

def _header_key(header: object, drop_brackets: bool = False) -> str:
    text = to_halfwidth(str(header)).strip().lower()
    if drop_brackets:
        text = re.sub(r"[(\[【].*?[)\]】]", "", text)
    return re.sub(r"[\s_\-.]+", "", text)


def detect_columns(headers: list[str], *, need_coordinates: bool = True) -> dict[str, str]:
    """Map each field (lon, lat, name, source_id, ...) to a header, by usual names.

    Parameters
    ----------
    headers : list of str
        The file's header names, as read.
    need_coordinates : bool
        True for tables: a lon/lat pair (or one combined ``经纬度`` column) must
        be found.

    Raises
    ------
    ETLError
        When coordinates are needed and not found; the message lists the
        headers seen and the names looked for.
    """
    found: dict[str, str] = {}
    taken: set[str] = set()
    for drop_brackets in (False, True):
        keys = {h: _header_key(h, drop_brackets) for h in headers}
        for fld, candidates in FIELD_NAMES.items():
            if fld in found:
                continue
            for cand in candidates:
                match = next((h for h in headers if h not in taken and keys[h] == _header_key(cand)), None)
                if match is not None:
                    found[fld] = match
                    taken.add(match)
                    break
    if need_coordinates:
        _require_coordinates(headers, found, taken)
    return found


def _require_coordinates(headers: list[str], found: dict[str, str], taken: set[str]) -> None:
    if "lon" in found and "lat" in found:
        return
    pair = next((h for h in headers if h not in taken
                 and _header_key(h, True) in {_header_key(p) for p in PAIR_NAMES}), None)
    if pair is not None and "lon" not in found and "lat" not in found:
        found["lon"] = found["lat"] = pair
        return
    raise ETLError(
        f"no coordinate columns found among {', '.join(map(str, headers))}; expected a longitude "
        f"column named one of {', '.join(FIELD_NAMES['lon'][:7])} and a latitude column named one "
        f"of {', '.join(FIELD_NAMES['lat'][:7])} (or one column {PAIR_NAMES[0]} holding 'lon,lat')")


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
    rejects.sort(key=lambda r: r.row)
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
    rejects.sort(key=lambda r: r.row)
    return _Positions(geoms=converted, ok=finite, rejects=rejects)


# --- other fields ----------------------------------------------------------

def _text(frame: pd.DataFrame, column: str | None) -> list:
    """Column values with surrounding whitespace removed; blanks become None."""
    if column is None:
        return [None] * len(frame)
    out: list = []
    append = out.append
    for value in frame[column].tolist():
        if value is None or value != value:  # None or NaN
            append(None)
            continue
        text = value.strip() if isinstance(value, str) else str(value).strip()
        append(text or None)
    return out


def _ids(frame: pd.DataFrame, columns: dict[str, str], names: list, notes: list[str]) -> list:
    if "source_id" in columns:
        return _text(frame, columns["source_id"])
    if "name" in columns:
        columns["source_id"] = columns["name"]
        notes.append(f"no id column (looked for {', '.join(FIELD_NAMES['source_id'][:8])}); "
                     f"the name in {columns['name']} is used as source_id")
    return list(names)


def _capacity(values: list) -> list:
    """Whole numbers as int; other text kept as given for validate to reject.

    Plain integers take a vectorised path; only the rest (``１２０``, ``120个``,
    ``1,200``, ``abc``) are parsed one by one.
    """
    series = pd.Series(values, dtype=object)
    fast = np.array(pd.to_numeric(series, errors="coerce"), dtype=float)
    whole = np.isfinite(fast) & (np.mod(fast, 1) == 0)
    out = np.empty(len(values), dtype=object)
    out[:] = None
    out[whole] = [int(v) for v in fast[whole]]
    for i in np.flatnonzero(~whole & series.notna().to_numpy()):
        parsed = parse_integer(values[i])
        out[i] = values[i] if parsed is None else parsed
    return out.tolist()


def parse_dates(values: list) -> tuple[list, list[int]]:
    """Dates such as 2022-03-01, 2022/3/1, 2022年3月1日, 20220301, 2022-03 (first day).

    Returns the dates (``datetime.date`` or None) and the indices of non-empty
    values that are not dates.
    """
    text = pd.Series(values, dtype=object).map(lambda v: None if v is None else to_halfwidth(str(v)).strip())
    clean = (text.fillna("").str.replace(r"[年月/.]", "-", regex=True)
             .str.replace(r"(日|[T ]\d{1,2}:\d{2}.*)$", "", regex=True).str.strip("-"))
    parsed = pd.to_datetime(clean, format="%Y-%m-%d", errors="coerce")
    compact = parsed.isna() & clean.str.fullmatch(r"\d{8}")
    parsed[compact] = pd.to_datetime(clean[compact], format="%Y%m%d", errors="coerce")
    month = parsed.isna() & clean.str.fullmatch(r"\d{4}-\d{1,2}")
    parsed[month] = pd.to_datetime(clean[month] + "-1", format="%Y-%m-%d", errors="coerce")
    dates = [None if pd.isna(ts) else ts.date() for ts in parsed]
    bad = np.flatnonzero(parsed.isna().to_numpy() & (clean != "").to_numpy()).tolist()
    return dates, bad


def _kinds(values: list, layer: Layer) -> list:
    """Kind labels mapped to the layer's kind keys where they match; other text kept."""
    lookup = {}
    for key, (zh, en) in layer.kinds.items():
        lookup.update({key.lower(): key, zh.lower(): key, en.lower(): key})
    return [None if v is None else lookup.get(v.lower(), v) for v in values]


def _fields(frame: pd.DataFrame, columns: dict[str, str], layer: Layer,
            rows: np.ndarray) -> tuple[dict[str, list], list[str]]:
    notes: list[str] = []
    fields = {f: _text(frame, columns.get(f)) for f in ("address", "phone", "opening_hours")}
    capacity, kind = _text(frame, columns.get("capacity")), _text(frame, columns.get("kind"))
    fields["capacity"] = _capacity(capacity) if "capacity" in columns else capacity
    fields["kind"] = _kinds(kind, layer) if "kind" in columns else kind
    raw_dates = _text(frame, columns.get("opened_on"))
    fields["opened_on"], bad = parse_dates(raw_dates) if "opened_on" in columns else (raw_dates, [])
    if bad:
        shown = ", ".join(f"row {rows[i]} {raw_dates[i]!r}" for i in bad[:5])
        notes.append(f"{columns['opened_on']}: {len(bad)} value(s) are not dates ({shown}); left empty")
    return fields, notes


def _bool_column(values: list) -> list | None:
    """The column as booleans when every filled cell is 是/否, yes/no...; else None."""
    filled = {str(v).strip().lower() for v in values if v is not None}
    if not filled or not filled <= (_YES | _NO):
        return None
    return [None if v is None else str(v).strip().lower() in _YES for v in values]


def _attrs(frame: pd.DataFrame, columns: dict[str, str]) -> list[dict]:
    """Unused columns per row, keyed by original header; 是/否 columns as booleans."""
    used = set(columns.values())
    unused = [c for c in frame.columns if c not in used]
    if not unused:
        return [{} for _ in range(len(frame))]
    lists = []
    for column in unused:
        values = _text(frame, column)
        lists.append(_bool_column(values) or values)
    keys = [str(c) for c in unused]
    return [dict(zip(keys, vals, strict=True)) for vals in zip(*lists, strict=True)]


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
