"""Coordinate systems used for Chinese facility data, and conversion to WGS-84.

The database stores WGS-84 (EPSG:4326). Data arrives in:

* WGS-84 / CGCS2000 (EPSG:4326 / EPSG:4490): GPS, OSM, Tianditu. CGCS2000 and
  WGS-84 agree to a few centimetres, far below what facility data resolves.
* GCJ-02: AMap (高德), Tencent, DataV boundaries. WGS-84 with a deliberate,
  non-linear offset of about 500 m in Zaozhuang.
* BD-09: Baidu. GCJ-02 with a further offset.
* Any projected EPSG code, e.g. EPSG:4548 (CGCS2000 3-degree Gauss-Kruger CM
  117E, metres).

GCJ-02 and BD-09 are not EPSG systems: the forward formulas are public, the
inverse is solved here by fixed-point iteration to well below 1 cm.

All functions accept scalars or numpy arrays of longitudes and latitudes in
degrees and return numpy arrays (or floats for scalar input).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError as _PyprojCRSError

from geo.errors import CRSError, UnitsError

ArrayLike = float | np.ndarray

# Krasovsky 1940 ellipsoid parameters used by the GCJ-02 formula.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0

#: Projected CRS used for metric work over Zaozhuang: CGCS2000 / 3-degree
#: Gauss-Kruger CM 117E. Units: metres.
METRIC_EPSG = 4548
WGS84_EPSG = 4326

#: Canonical names of the non-EPSG systems, with accepted spellings.
_ALIASES = {
    "wgs84": "wgs84", "wgs-84": "wgs84", "wgs_84": "wgs84", "epsg:4326": "wgs84",
    "4326": "wgs84", "crs84": "wgs84", "ogc:crs84": "wgs84",
    "cgcs2000": "wgs84", "epsg:4490": "wgs84", "4490": "wgs84",
    "gcj02": "gcj02", "gcj-02": "gcj02", "gcj_02": "gcj02", "mars": "gcj02",
    "amap": "gcj02", "tencent": "gcj02",
    "bd09": "bd09", "bd-09": "bd09", "bd_09": "bd09", "baidu": "bd09", "bd09ll": "bd09",
}

#: What :func:`normalise_crs` accepts, for error messages.
ALLOWED_CRS = "wgs84, cgcs2000, gcj02, bd09, or EPSG:<code>"

#: The systems a phone or a Chinese map app reports positions in (what APIs accept as ``crs=``).
POSITION_CRS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

#: Metres in one degree of latitude (mean); only for sizing tolerances, never for distances.
METRES_PER_DEGREE = 111_000.0


def metres_to_degrees(metres: float) -> float:
    """A rough angular size for ``metres`` (for simplification tolerances only, not distances)."""
    return metres / METRES_PER_DEGREE


def _asarrays(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray, bool]:
    scalar = np.isscalar(lon) and np.isscalar(lat)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), scalar


def _ret(lon: np.ndarray, lat: np.ndarray, scalar: bool) -> tuple[Any, Any]:
    if scalar:
        return float(lon), float(lat)
    return lon, lat


class _Maths:
    """The functions the GCJ-02 and BD-09 formulas use: numpy's for arrays, the ``math`` module's for one
    position (the same formula; a scalar through numpy costs a microsecond per operation)."""

    def __init__(self, sin: Callable[..., Any], cos: Callable[..., Any], sqrt: Callable[..., Any],
                 fabs: Callable[..., Any], atan2: Callable[..., Any]) -> None:
        self.sin, self.cos, self.sqrt, self.fabs, self.atan2 = sin, cos, sqrt, fabs, atan2


_ARRAYS = _Maths(np.sin, np.cos, np.sqrt, np.fabs, np.arctan2)
_SCALARS = _Maths(math.sin, math.cos, math.sqrt, math.fabs, math.atan2)


def _delta(lon: Any, lat: Any, m: _Maths = _ARRAYS) -> tuple[Any, Any]:
    """GCJ-02 offset (degrees) to add to a WGS-84 position (arrays, or floats with ``m=_SCALARS``)."""
    x = lon - 105.0
    y = lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y
            + 0.2 * m.sqrt(m.fabs(x)))
    dlat += (20.0 * m.sin(6.0 * x * math.pi) + 20.0 * m.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat += (20.0 * m.sin(y * math.pi) + 40.0 * m.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * m.sin(y / 12.0 * math.pi) + 320 * m.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * m.sqrt(m.fabs(x)))
    dlon += (20.0 * m.sin(6.0 * x * math.pi) + 20.0 * m.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlon += (20.0 * m.sin(x * math.pi) + 40.0 * m.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlon += (150.0 * m.sin(x / 12.0 * math.pi) + 300.0 * m.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * m.sin(radlat) ** 2
    sqrtmagic = m.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * m.cos(radlat) * math.pi)
    return dlon, dlat


def _scalar(lon: Any, lat: Any) -> bool:
    """Whether ``lon`` and ``lat`` are one finite position given as plain numbers (the ``math`` path)."""
    return isinstance(lon, float | int) and isinstance(lat, float | int) and math.isfinite(lon) \
        and math.isfinite(lat)


#: The box (west, east, south, north; degrees) inside which GCJ-02 applies the offset.
_CHINA = (72.004, 137.8347, 0.8293, 55.8271)


def in_china(lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
    """Rough mainland-China box inside which GCJ-02 applies the offset."""
    lon_a, lat_a, _ = _asarrays(lon, lat)
    west, east, south, north = _CHINA
    return (lon_a > west) & (lon_a < east) & (lat_a > south) & (lat_a < north)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """WGS-84 to GCJ-02 (the published forward formula)."""
    if _scalar(lon, lat):
        lon, lat = float(lon), float(lat)
        west, east, south, north = _CHINA
        if not (west < lon < east and south < lat < north):
            return lon, lat
        dlon, dlat = _delta(lon, lat, _SCALARS)
        return lon + dlon, lat + dlat
    lon_a, lat_a, scalar = _asarrays(lon, lat)
    dlon, dlat = _delta(lon_a, lat_a)
    inside = in_china(lon_a, lat_a)
    return _ret(np.where(inside, lon_a + dlon, lon_a), np.where(inside, lat_a + dlat, lat_a), scalar)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike, *, tol_deg: float = 1e-9,
                  max_iter: int = 30) -> tuple[Any, Any]:
    """GCJ-02 to WGS-84, solved by fixed-point iteration.

    Converges to ``tol_deg`` (1e-9 degrees is about 0.1 mm) in a handful of
    iterations; the offset field is smooth, so the map is a contraction.
    """
    lon_a, lat_a, scalar = _asarrays(lon, lat)
    wlon, wlat = lon_a.copy(), lat_a.copy()
    for _ in range(max_iter):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = glon - lon_a, glat - lat_a
        wlon = wlon - elon
        wlat = wlat - elat
        if np.nanmax(np.abs(np.concatenate([np.ravel(elon), np.ravel(elat)])), initial=0.0) < tol_deg:
            break
    return _ret(wlon, wlat, scalar)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """GCJ-02 to BD-09 (Baidu's published forward formula)."""
    if _scalar(lon, lat):
        return _to_bd09(float(lon), float(lat), _SCALARS)
    lon_a, lat_a, scalar = _asarrays(lon, lat)
    return _ret(*_to_bd09(lon_a, lat_a, _ARRAYS), scalar)


def _to_bd09(lon: Any, lat: Any, m: _Maths) -> tuple[Any, Any]:
    z = m.sqrt(lon * lon + lat * lat) + 0.00002 * m.sin(lat * _X_PI)
    theta = m.atan2(lat, lon) + 0.000003 * m.cos(lon * _X_PI)
    return z * m.cos(theta) + 0.0065, z * m.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike, *, tol_deg: float = 1e-10,
                  max_iter: int = 30) -> tuple[Any, Any]:
    """BD-09 to GCJ-02: the closed-form inverse refined by iteration."""
    lon_a, lat_a, scalar = _asarrays(lon, lat)
    x = lon_a - 0.0065
    y = lat_a - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    glon, glat = z * np.cos(theta), z * np.sin(theta)
    for _ in range(max_iter):
        blon, blat = gcj02_to_bd09(glon, glat)
        elon, elat = blon - lon_a, blat - lat_a
        glon, glat = glon - elon, glat - elat
        if np.nanmax(np.abs(np.concatenate([np.ravel(elon), np.ravel(elat)])), initial=0.0) < tol_deg:
            break
    return _ret(glon, glat, scalar)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """WGS-84 to BD-09."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """BD-09 to WGS-84."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def normalise_crs(value: str | int | None) -> str:
    """Canonical CRS name: ``wgs84``, ``gcj02``, ``bd09`` or ``EPSG:<code>``.

    Raises
    ------
    CRSError
        When ``value`` is empty or names no known system.
    """
    if value is None or str(value).strip() == "":
        raise CRSError(f"a CRS is required; expected one of {ALLOWED_CRS}")
    text = str(value).strip().lower().replace(" ", "")
    if text in _ALIASES:
        return _ALIASES[text]
    match = re.fullmatch(r"(?:epsg:)?(\d{4,6})", text)
    if match:
        code = int(match.group(1))
        try:
            crs = CRS.from_epsg(code)
        except _PyprojCRSError as exc:
            raise CRSError(f"CRS was {value!r}, an EPSG code that is not known: {exc}") from None
        if code in (4326, 4490):
            return "wgs84"
        return f"EPSG:{crs.to_epsg() or code}"
    raise CRSError(f"CRS was {value!r} but is expected to be one of {ALLOWED_CRS}")


def crs_from_wkt(wkt: str) -> str:
    """Canonical CRS name for a WKT string, e.g. a shapefile's ``.prj``."""
    try:
        crs = CRS.from_wkt(wkt)
    except _PyprojCRSError as exc:
        raise CRSError(f"the .prj could not be read as a CRS: {exc}") from None
    epsg = crs.to_epsg(min_confidence=60)
    if epsg is None:
        raise CRSError(f"the CRS {crs.name!r} has no EPSG code; give one with --crs")
    return normalise_crs(epsg)


def _transformer(src_epsg: str, dst_epsg: int) -> Transformer:
    return _cached_transformer(src_epsg, dst_epsg)


_TRANSFORMERS: dict[tuple[str, int], Transformer] = {}


def _cached_transformer(src: str, dst: int) -> Transformer:
    """The transformer from ``src`` to EPSG ``dst`` (lon/lat order), made once per process.

    pyproj sets a transformer up again in each thread that uses it: from two
    CRS that means searching PROJ's database for the operation (about 80 ms),
    which every new server thread would pay on its first request. When the
    search finds one operation, the transformer is made from that operation's
    pipeline instead, which sets up in well under a millisecond and gives the
    same numbers; when it leaves PROJ to choose per point among several, the
    search is kept.
    """
    key = (src, dst)
    if key not in _TRANSFORMERS:
        found = Transformer.from_crs(src, f"EPSG:{dst}", always_xy=True)
        definition = found.definition
        one = definition.startswith("proj=") and "unavailable" not in definition
        _TRANSFORMERS[key] = Transformer.from_pipeline(definition) if one else found
    return _TRANSFORMERS[key]


def to_wgs84(x: ArrayLike, y: ArrayLike, crs: str) -> tuple[Any, Any]:
    """Convert coordinates in ``crs`` (see :func:`normalise_crs`) to WGS-84 lon/lat."""
    name = normalise_crs(crs)
    if name == "wgs84":
        xa, ya, scalar = _asarrays(x, y)
        return _ret(xa, ya, scalar)
    if name == "gcj02":
        return gcj02_to_wgs84(x, y)
    if name == "bd09":
        return bd09_to_wgs84(x, y)
    xa, ya, scalar = _asarrays(x, y)
    lon, lat = _transformer(name, WGS84_EPSG).transform(xa, ya)
    return _ret(np.asarray(lon), np.asarray(lat), scalar)


def from_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str) -> tuple[Any, Any]:
    """Convert WGS-84 lon/lat to ``crs`` (see :func:`normalise_crs`)."""
    name = normalise_crs(crs)
    if name == "wgs84":
        xa, ya, scalar = _asarrays(lon, lat)
        return _ret(xa, ya, scalar)
    if name == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if name == "bd09":
        return wgs84_to_bd09(lon, lat)
    xa, ya, scalar = _asarrays(lon, lat)
    x, y = _cached_transformer("EPSG:4326", int(name.split(":")[1])).transform(xa, ya)
    return _ret(np.asarray(x), np.asarray(y), scalar)


def to_metric(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """WGS-84 lon/lat to EPSG:4548 metres (x east, y north); the transformer is made once (per-request paths)."""
    xa, ya, scalar = _asarrays(lon, lat)
    x, y = _cached_transformer("EPSG:4326", METRIC_EPSG).transform(xa, ya)
    return _ret(np.asarray(x), np.asarray(y), scalar)


def from_metric(x: ArrayLike, y: ArrayLike) -> tuple[Any, Any]:
    """EPSG:4548 metres to WGS-84 lon/lat; the transformer is made once."""
    xa, ya, scalar = _asarrays(x, y)
    lon, lat = _cached_transformer(f"EPSG:{METRIC_EPSG}", WGS84_EPSG).transform(xa, ya)
    return _ret(np.asarray(lon), np.asarray(lat), scalar)


def transform_geometry(geom: Any, func: Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]) -> Any:
    """Apply a vectorised ``func(lon, lat) -> (lon, lat)`` to a shapely geometry."""

    def _apply(coords: np.ndarray) -> np.ndarray:
        lon, lat = func(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geom, _apply)


def assert_projected_metres(crs: Any) -> None:
    """Raise :class:`geo.errors.UnitsError` unless ``crs`` is projected in metres."""

    if crs is None:
        raise UnitsError("the CRS is missing; distances need a projected CRS in metres such as EPSG:4548")
    crs_obj = CRS.from_user_input(crs)
    if not crs_obj.is_projected:
        raise UnitsError(
            f"the CRS {crs_obj.to_string()} is in degrees; distances need a projected CRS "
            "in metres such as EPSG:4548 or EPSG:32650")
    unit = crs_obj.axis_info[0].unit_name if crs_obj.axis_info else ""
    if unit not in ("metre", "meter"):
        raise UnitsError(f"the CRS {crs_obj.to_string()} has units {unit!r}; metres are required")
