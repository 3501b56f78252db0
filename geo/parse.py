"""Pure parsing and geometry helpers for incoming facility data.

Numbers as Chinese agencies type them: full-width digits (``１１７．５``),
stray and ideographic spaces, Chinese commas, and degrees-minutes-seconds
(``117°33′12.00″E``, ``34°52'5"N``, ``117度33分12秒``, ``北纬34度52分5秒``).
Geometry helpers convert whole arrays of shapely geometries between CRSs
(see :mod:`geo.crs`) and keep the polygonal part of a repaired polygon.

Nothing here knows about files, layers or the database.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from geo.crs import in_china, normalise_crs, to_wgs84

# Full-width ASCII (U+FF01..U+FF5E) to half-width, plus the ideographic space,
# the ideographic full stop (typed for a decimal point) and the minus sign.
_HALFWIDTH: dict[int, int | str] = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_HALFWIDTH.update({0x3000: " ", 0x3002: ".", 0x2212: "-", 0x00A0: " ", 0xFE50: ",", 0xFF64: ","})

_HEMI = r"(?:北纬|南纬|东经|西经|[NSEWnsew北南东西])"
_NUM = r"\d+(?:\.\d+)?"
_DMS = re.compile(
    rf"""^\s*(?P<h1>{_HEMI})?\s*(?P<sign>[-+])?\s*
    (?P<d>{_NUM})\s*(?:[°º˚度]|(?=[\s:]|$))\s*:?\s*
    (?:(?P<m>{_NUM})\s*(?:[′'’‘分]|(?=[\s:]|$))\s*:?\s*
       (?:(?P<s>{_NUM})\s*(?:″|"|”|“|''|′′|秒)?\s*)?
    )?
    (?P<h2>{_HEMI})?\s*$""",
    re.VERBOSE,
)
_NEGATIVE_HEMI = {"s", "w", "南", "西", "南纬", "西经"}
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_UNIT_SUFFIX = re.compile(r"(?:个车位|个泊位|车位|泊位|个|位|辆)$")

DMS_EXAMPLES = "decimal degrees such as 34.87 or DMS such as 34°52′5″N / 34度52分5秒"


def to_halfwidth(text: str) -> str:
    """``text`` with full-width digits, letters and punctuation made ASCII."""
    return text.translate(_HALFWIDTH)


def _plain_number(text: str) -> float | None:
    """A decimal number with spaces and thousands/decimal commas allowed."""
    compact = re.sub(r"\s+", "", text)
    if _THOUSANDS.fullmatch(compact):
        compact = compact.replace(",", "")
    elif compact.count(",") == 1 and "." not in compact:
        compact = compact.replace(",", ".")  # a decimal comma: 117,5
    try:
        value = float(compact)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_dms(text: str) -> float | None:
    """Degrees-minutes-seconds text to decimal degrees (S and W negative).

    Parameters
    ----------
    text : str
        E.g. ``117°33′12.00″E``, ``34°52'5"N``, ``117度33分12秒``,
        ``东经117°33.2′``, ``-34 52 05``; already half-width.

    Returns
    -------
    float or None
        Decimal degrees, or ``None`` when ``text`` is not DMS, minutes or
        seconds are 60 or more, or two hemisphere letters disagree.
    """
    match = _DMS.match(text)
    if not match:
        return None
    minutes = float(match["m"] or 0.0)
    seconds = float(match["s"] or 0.0)
    if minutes >= 60 or seconds >= 60:
        return None
    h1, h2 = (match["h1"] or "").lower(), (match["h2"] or "").lower()
    if h1 and h2 and h1 != h2:
        return None
    value = float(match["d"]) + minutes / 60.0 + seconds / 3600.0
    negative = (match["sign"] == "-") != ((h1 or h2) in _NEGATIVE_HEMI)
    return -value if negative else value


def parse_coordinate(text: object) -> float | None:
    """One coordinate as typed by a person, or ``None`` when it cannot be read.

    Accepts decimal numbers with full-width digits, spaces, Chinese commas and
    thousands separators (``3,852,140.65`` metres), and DMS (see
    :func:`parse_dms`). The unit is whatever the source CRS uses (degrees or
    metres); nothing is converted here.
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text) if math.isfinite(text) else None
    half = to_halfwidth(str(text)).strip()
    if not half:
        return None
    if re.search(r"\d\s+\d", half):  # "117 33 12": space-separated DMS
        value = parse_dms(half)
        if value is not None:
            return value
    value = _plain_number(half)
    return value if value is not None else parse_dms(half)


def is_blank(values: pd.Series) -> np.ndarray:
    """Boolean array: the cell is missing or only whitespace."""
    text = values.astype(object).where(values.notna(), "")
    return np.asarray((text.astype(str).str.strip() == "").to_numpy(), dtype=bool)


def parse_coordinates(values: pd.Series) -> np.ndarray:
    """Vectorised :func:`parse_coordinate`: float array, NaN where unreadable.

    The common case (plain decimals) goes through :func:`pandas.to_numeric`;
    only the cells that fail take the per-cell path (full-width, DMS ...).
    """
    fast = np.array(pd.to_numeric(values, errors="coerce"), dtype=float)
    fast[~np.isfinite(fast)] = np.nan
    slow = np.flatnonzero(np.isnan(fast) & values.notna().to_numpy())
    if len(slow):
        parsed = [parse_coordinate(v) for v in values.iloc[slow]]
        fast[slow] = np.array([np.nan if p is None else p for p in parsed], dtype=float)
    return fast


def parse_integer(text: object) -> int | None:
    """A whole number such as ``120``, ``１２０``, ``1,200``, ``120个`` or ``120.0``.

    Returns ``None`` when ``text`` is not a whole number (the caller decides
    whether that is an error).
    """
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return text
    if isinstance(text, float):
        return int(text) if math.isfinite(text) and text.is_integer() else None
    half = _UNIT_SUFFIX.sub("", to_halfwidth(str(text)).strip()).strip()
    value = _plain_number(half)
    if value is None or not value.is_integer():
        return None
    return int(value)


def geographic_area_ok(lon: np.ndarray, lat: np.ndarray, crs: str) -> np.ndarray:
    """Whether WGS-84 ``lon``/``lat`` (degrees) converted from ``crs`` are plausible.

    Plausible means finite and inside the area where ``crs`` is used: mainland
    China for GCJ-02 / BD-09, the CRS's EPSG area of use (1 degree margin) for
    EPSG codes, the globe for WGS-84. Used to detect swapped axes.
    """
    finite = np.isfinite(lon) & np.isfinite(lat)
    globe = finite & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    name = normalise_crs(crs)
    if name in ("gcj02", "bd09"):
        return np.asarray(globe & in_china(lon, lat), dtype=bool)
    if name == "wgs84":
        return np.asarray(globe, dtype=bool)
    area = CRS.from_user_input(name).area_of_use
    if area is None:
        return np.asarray(globe, dtype=bool)
    return np.asarray(globe & (lon >= area.west - 1) & (lon <= area.east + 1)
                      & (lat >= area.south - 1) & (lat <= area.north + 1), dtype=bool)


def plausible_position(x: np.ndarray, y: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                       crs: str) -> np.ndarray:
    """Whether source ``x``/``y`` in ``crs``, converted to ``lon``/``lat``, are plausible.

    GCJ-02 and BD-09 are only defined in China, so the raw values must lie in
    the China box too; for other systems the converted WGS-84 position (degrees)
    must lie in the CRS's area of use (see :func:`geographic_area_ok`). Used to
    detect swapped axes before anything else looks at the data.
    """
    ok = geographic_area_ok(lon, lat, crs)
    if normalise_crs(crs) in ("gcj02", "bd09"):
        ok &= in_china(np.nan_to_num(x), np.nan_to_num(y))
    return ok


def geometries_to_wgs84(geoms: np.ndarray, crs: str) -> np.ndarray:
    """Convert an object array of shapely geometries (or None) from ``crs`` to WGS-84.

    All vertices of all geometries are converted in one vectorised call, so
    polygons are converted vertex by vertex. Z values are dropped. Returns a
    new array; ``None`` entries stay ``None``.
    """
    out = shapely.force_2d(np.asarray(geoms, dtype=object))
    coords = shapely.get_coordinates(out)
    if len(coords) == 0:
        return np.asarray(out, dtype=object)
    lon, lat = to_wgs84(coords[:, 0], coords[:, 1], crs)
    return np.asarray(shapely.set_coordinates(out, np.column_stack([lon, lat])), dtype=object)


def swap_xy(geom: BaseGeometry) -> BaseGeometry:
    """The same geometry with x and y exchanged at every vertex."""
    return shapely.transform(geom, lambda c: c[:, ::-1])


def polygonal_part(geom: BaseGeometry) -> BaseGeometry | None:
    """The Polygon/MultiPolygon part of ``geom`` (e.g. after ``make_valid``), or None."""
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
        polys = [p for part in parts for p in shapely.get_parts(part)]
        if not polys:
            return None
        return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)
    return None


def repair_polygon(geom: BaseGeometry) -> tuple[BaseGeometry | None, str]:
    """``make_valid`` an invalid polygon and keep its polygonal part.

    Returns
    -------
    (geometry or None, reason)
        The repaired polygonal geometry (None when nothing polygonal remains)
        and the reason shapely gave for the original being invalid.
    """
    reason = shapely.is_valid_reason(geom)
    return polygonal_part(shapely.make_valid(geom)), reason

