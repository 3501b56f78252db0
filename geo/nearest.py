"""Nearest-facility maths: geodesic distance, walking time, navigation links.

Pure functions (no Flask, no database). Positions are WGS-84 longitude and
latitude in degrees unless a name says otherwise; distances are metres on the
WGS-84 ellipsoid (pyproj's ``Geod``, Karney's algorithm, accurate to
nanometres), never degrees.

The database finds candidates with the PostGIS KNN operator ``<->``, which
orders by *planar* distance in degrees. A degree of longitude is shorter than
a degree of latitude away from the equator (about 0.82 of it at Zaozhuang), so
the planar order is not the ground order. :func:`knn_is_exact` says whether a
candidate set fetched in planar order is guaranteed to hold the true ``k``
nearest (the "filter and refine" rule), :func:`planar_radius_deg` sizes the
second fetch when it is not, and :func:`rank_by_distance` does the refine
step (``services.nearest`` runs the rounds). Walking speeds are the caller's:
this module holds none.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import quote

import numpy as np
from pyproj import Geod

from geo.crs import gcj02_to_bd09, wgs84_to_bd09, wgs84_to_gcj02
from geo.errors import GeoError

ArrayLike = float | np.ndarray

#: The WGS-84 ellipsoid (EPSG:7030), as GPS, PostGIS geography and the database use.
GEOD = Geod(ellps="WGS84")

#: Shortest ground length of one degree of latitude (at the equator), metres.
_MIN_M_PER_DEG_LAT = 110_574.0
#: Length of one degree of longitude at the equator, metres.
_M_PER_DEG_LON_EQUATOR = 111_320.0
#: Beyond this planar radius (degrees) the bound of :func:`knn_is_exact` is not
#: trusted (geodesics bulge towards the pole), so the caller ranks the whole layer.
_MAX_BOUND_RADIUS_DEG = 5.0
#: Safety margin on the lower bound (covers ellipsoid and linearisation error).
_BOUND_SAFETY = 0.99

#: Who opens AMap / Baidu links (both ask for the calling app's name).
APP_SOURCE = "minsheng-map"


def geodesic_distance_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> np.ndarray | float:
    """Ellipsoidal (WGS-84) distance between two positions, in metres.

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : float or array
        WGS-84 longitudes and latitudes in degrees; arrays broadcast.

    Returns
    -------
    float or numpy.ndarray
        Geodesic distance in metres (a float for scalar input).
    """
    a = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (lon1, lat1, lon2, lat2)))
    if not all(np.all(np.isfinite(v)) for v in a):
        raise GeoError("positions must be finite longitudes and latitudes in degrees")
    if np.any(np.abs(a[1]) > 90) or np.any(np.abs(a[3]) > 90):
        raise GeoError("latitudes must be from -90 to 90 degrees")
    _, _, dist = GEOD.inv(a[0], a[1], a[2], a[3])
    dist = np.asarray(dist, dtype=float)
    return float(dist) if dist.ndim == 0 else dist


def minutes_at(distance_m: ArrayLike, speed_m_per_min: float) -> int | np.ndarray:
    """Whole minutes to cover ``distance_m`` metres at ``speed_m_per_min``, rounded up (at least 1 above 0 m).

    The speed is the caller's (``layers.modes``, or a deployment's walking
    setting); this module holds no speed of its own.

    Parameters
    ----------
    distance_m : float or array
        Distance in metres (>= 0).
    speed_m_per_min : float
        Speed in metres per minute (> 0).

    Returns
    -------
    int or numpy.ndarray of int
    """
    if not (math.isfinite(speed_m_per_min) and speed_m_per_min > 0):
        raise GeoError(f"speed was {speed_m_per_min!r} but must be a positive number of metres per minute")
    d = np.asarray(distance_m, dtype=float)
    if np.any(~np.isfinite(d)) or np.any(d < 0):
        raise GeoError("distances must be finite and not negative (metres)")
    minutes = np.ceil(d / speed_m_per_min).astype(int)
    return int(minutes) if minutes.ndim == 0 else minutes


def walking_minutes(distance_m: ArrayLike, speed_m_per_min: float) -> int | np.ndarray:
    """Whole minutes to walk ``distance_m`` metres at ``speed_m_per_min`` (:func:`minutes_at`).

    A straight-line distance understates a real route: minutes from it are a floor.
    """
    return minutes_at(distance_m, speed_m_per_min)


def planar_bound_m(radius_deg: float, lat: float) -> float:
    """Smallest ground distance (metres) of any point at planar distance >= ``radius_deg``.

    ``radius_deg`` is the Euclidean distance in the longitude/latitude plane
    (degrees), the quantity PostGIS ``<->`` orders by for SRID 4326 points.
    A path between two positions covers at least ``radius_deg`` degrees of
    that plane, and every degree of it is at least ``min(110,574 m, 111,320 m
    × cos φ)`` on the ground, where φ is the highest latitude the path reaches
    (at most ``|lat| + radius_deg`` for short paths).

    Returns ``0.0`` when the bound is not trusted (``radius_deg`` above 5° or
    too near a pole), so a caller falls back to ranking everything.
    """
    if radius_deg <= 0 or radius_deg > _MAX_BOUND_RADIUS_DEG:
        return 0.0
    phi = abs(lat) + radius_deg + 0.1
    if phi >= 89.0:
        return 0.0
    per_deg = min(_MIN_M_PER_DEG_LAT, _M_PER_DEG_LON_EQUATOR * math.cos(math.radians(phi)))
    return _BOUND_SAFETY * radius_deg * per_deg


#: How far (degrees of the scaled plane of :func:`scaled_bound_slope_m`) its bound reaches.
SCALED_REACH_DEG = 1.0


def scaled_bound_slope_m(lon: float, lat: float, scale: float) -> float:
    """Metres of ground any path from (lon, lat) covers per degree it moves in the *scaled* plane (0: no bound).

    The scaled plane puts a position at ``(scale × lon, lat)`` degrees, with
    ``scale`` the cosine of a latitude near the data (a degree of longitude
    there is about ``scale`` of a degree of latitude on the ground), so its
    distances are close to ground distances in proportion, unlike plain
    degrees. The bound: a path that stays within :data:`SCALED_REACH_DEG` of
    the start in that plane stays within ``φ = |lat| + SCALED_REACH_DEG``
    of latitude, where a degree of latitude is at least 110,574 m (the
    meridian's shortest, at the equator) and a degree of longitude at least
    111,320 m × cos φ. Its length is the integral of
    ``sqrt((M dφ)² + (N cos φ dλ)²)``, which is at least
    ``sqrt((110,574 Δφ)² + (111,320 cos φ Δλ)²)`` (the length of an integral
    of vectors is at most the integral of their lengths), and so at least
    ``slope × d`` for the scaled distance ``d`` it moved, with ``slope`` =
    110,574 × min(1, 111,320 cos φ / (110,574 × scale)) × 0.99 (the margin
    covers the rounding of these constants). A path to anything farther than
    :data:`SCALED_REACH_DEG` first crosses that circle, so
    :func:`scaled_bound_m` caps the distance there.

    Returns 0.0 near a pole or where the circle would cross the 180th
    meridian (longitudes wrap there), so a caller ranks more.
    """
    phi = abs(lat) + SCALED_REACH_DEG
    if not 0 < scale <= 1 or phi >= 89.0 or abs(lon) + SCALED_REACH_DEG / scale >= 180.0:
        return 0.0
    parallel = _M_PER_DEG_LON_EQUATOR * math.cos(math.radians(phi))
    return _BOUND_SAFETY * _MIN_M_PER_DEG_LAT * min(1.0, parallel / (_MIN_M_PER_DEG_LAT * scale))


def scaled_bound_m(distance_deg: float, slope_m: float) -> float:
    """Fewest metres of ground to anything at least ``distance_deg`` away in the scaled plane (see
    :func:`scaled_bound_slope_m`, whose slope this takes)."""
    return slope_m * min(distance_deg, SCALED_REACH_DEG)


def planar_radius_deg(distance_m: float, lat: float) -> float | None:
    """A planar radius (degrees) that surely holds every point within ``distance_m`` on the ground.

    The inverse of :func:`planar_bound_m`: any point whose ground distance is
    at most ``distance_m`` lies within the returned planar distance. ``None``
    when no bound can be trusted (then rank everything).
    """
    radius = distance_m / (_BOUND_SAFETY * _M_PER_DEG_LON_EQUATOR * math.cos(math.radians(min(abs(lat), 80.0))))
    for _ in range(3):  # the bound depends on the latitudes the path reaches: settle it
        bound = planar_bound_m(radius, lat)
        if bound <= 0:
            return None
        if bound >= distance_m:
            return radius
        radius *= distance_m / bound * 1.0001
    return radius if planar_bound_m(radius, lat) >= distance_m else None


def knn_is_exact(kth_distance_m: float, farthest_candidate_deg: float, lat: float) -> bool:
    """Whether candidates fetched in planar order surely contain the true k nearest.

    Parameters
    ----------
    kth_distance_m : float
        Ground distance (metres) of the k-th nearest candidate after re-ranking.
    farthest_candidate_deg : float
        Planar distance (degrees) of the last candidate fetched; every point not
        fetched is at least this far in the plane.
    lat : float
        Latitude of the query position, degrees.
    """
    return kth_distance_m <= planar_bound_m(farthest_candidate_deg, lat)


def rank_by_distance(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray,
                     k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances (metres) of the ``k`` candidates nearest (lon, lat).

    Ties are broken by input order, so the result is deterministic.
    """
    lons = np.asarray(lons, dtype=float)
    lats = np.asarray(lats, dtype=float)
    if len(lons) == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    dist = np.atleast_1d(geodesic_distance_m(lon, lat, lons, lats))
    order = np.argsort(dist, kind="stable")[:k]
    return order, dist[order]


def coordinates_for_apps(lon: float, lat: float) -> dict[str, list[float]]:
    """A WGS-84 position in the three systems phones use: WGS-84, GCJ-02 (AMap), BD-09 (Baidu).

    Each value is ``[lon, lat]`` in degrees, rounded to 7 decimals (about 1 cm).
    """
    glon, glat = wgs84_to_gcj02(float(lon), float(lat))
    blon, blat = gcj02_to_bd09(glon, glat)  # BD-09 is GCJ-02 shifted: one offset computed, not two
    return {"wgs84": [round(float(lon), 7), round(float(lat), 7)],
            "gcj02": [round(glon, 7), round(glat, 7)],
            "bd09": [round(blon, 7), round(blat, 7)]}


def _clean_label(name: str) -> str:
    """A place name safe inside the comma/pipe-separated fields of map URIs."""
    return " ".join(str(name).replace(",", " ").replace("|", " ").replace(":", " ").split())[:80]


@lru_cache(maxsize=65_536)
def _label(name: str) -> str:
    """``name`` cleaned and percent-encoded once (UTF-8), for any of the links: it holds none of ``,:|``."""
    return quote(_clean_label(name), safe="")


#: Per travel mode, the ``mode`` value of AMap's and Baidu's URIs (straight-line answers get walking links).
APP_MODES = {"walk": ("walk", "walking"), "drive": ("car", "driving")}
_HERE = quote("我的位置", safe="")
_REGION = quote("枣庄", safe="")


def _amap_head(ogcj: tuple[float, float] | None) -> str:
    """The start of an AMap link, up to where the destination goes (the origin, GCJ-02, if any)."""
    start = "" if ogcj is None else f"from={ogcj[0]:.6f},{ogcj[1]:.6f},{_HERE}&"
    return f"https://uri.amap.com/navigation?{start}"


def _amap_tail(glon: float, glat: float, name: str, mode: str) -> str:
    return (f"to={glon:.6f},{glat:.6f},{_label(name)}"
            f"&mode={APP_MODES[mode][0]}&policy=1&src={APP_SOURCE}&coordinate=gaode&callnative=1")


def _baidu_head(obd: tuple[float, float]) -> str:
    """The start of a Baidu directions link, up to where the destination goes (the origin, BD-09)."""
    return f"https://api.map.baidu.com/direction?origin=latlng:{obd[1]:.6f},{obd[0]:.6f}|name:{_HERE}&destination="


def _baidu_tail(blon: float, blat: float, name: str, mode: str) -> str:
    return (f"latlng:{blat:.6f},{blon:.6f}|name:{_label(name)}&mode={APP_MODES[mode][1]}&region={_REGION}"
            f"&coord_type=bd09ll&output=html&src={APP_SOURCE}")


def _baidu_marker(blon: float, blat: float, name: str) -> str:
    label = _label(name)
    return (f"https://api.map.baidu.com/marker?location={blat:.6f},{blon:.6f}&title={label}&content={label}"
            f"&coord_type=bd09ll&output=html&src={APP_SOURCE}")


def _amap(glon: float, glat: float, name: str, ogcj: tuple[float, float] | None, mode: str = "walk") -> str:
    return _amap_head(ogcj) + _amap_tail(glon, glat, name, mode)


def _baidu(blon: float, blat: float, name: str, obd: tuple[float, float] | None, mode: str = "walk") -> str:
    if obd is None:
        return _baidu_marker(blon, blat, name)
    return _baidu_head(obd) + _baidu_tail(blon, blat, name, mode)


def amap_link(lon: float, lat: float, name: str, origin: tuple[float, float] | None = None) -> str:
    """AMap (高德) walking-navigation URI to a WGS-84 position, sent as GCJ-02.

    AMap's URI API (``uri.amap.com/navigation``) reads ``lon,lat,name`` in
    GCJ-02 when ``coordinate=gaode``; on a phone with AMap installed
    ``callnative=1`` opens the app. ``origin`` (WGS-84) is where the walk starts.
    """
    ogcj = wgs84_to_gcj02(float(origin[0]), float(origin[1])) if origin is not None else None
    glon, glat = wgs84_to_gcj02(float(lon), float(lat))
    return _amap(glon, glat, name, ogcj)


def baidu_link(lon: float, lat: float, name: str, origin: tuple[float, float] | None = None) -> str:
    """Baidu Maps walking-directions URI to a WGS-84 position, sent as BD-09.

    Baidu's URI API (``api.map.baidu.com/direction``) takes ``latlng:lat,lon``
    (latitude first) in BD-09 when ``coord_type=bd09ll``. Without an origin it
    shows the place as a marker instead.
    """
    obd = wgs84_to_bd09(float(origin[0]), float(origin[1])) if origin is not None else None
    blon, blat = wgs84_to_bd09(float(lon), float(lat))
    return _baidu(blon, blat, name, obd)


def geo_uri(lon: float, lat: float, name: str | None = None) -> str:
    """RFC 5870 ``geo:`` URI (WGS-84, latitude first) that any map app on a phone can open."""
    uri = f"geo:{float(lat):.6f},{float(lon):.6f}"
    if name:
        uri += f"?q={float(lat):.6f},{float(lon):.6f}({_label(name)})"
    return uri


def navigation_links(lon: float, lat: float, name: str, origin: tuple[float, float] | None = None) -> dict[str, str]:
    """AMap, Baidu and ``geo:`` links to a WGS-84 position (see the three builders)."""
    return {"amap": amap_link(lon, lat, name, origin), "baidu": baidu_link(lon, lat, name, origin),
            "geo": geo_uri(lon, lat, name)}


def links_and_coordinates(lons: Sequence[float] | np.ndarray, lats: Sequence[float] | np.ndarray,
                          names: Sequence[str], origin: tuple[float, float] | None = None, mode: str = "walk",
                          ) -> list[tuple[dict[str, list[float]], dict[str, str]]]:
    """For many WGS-84 positions at once: ``(coordinates_for_apps, navigation_links)`` of each.

    The same results as calling the two functions per position. What depends
    on the facility alone (its GCJ-02/BD-09 position, its ``geo:`` URI, the
    destination's part of each link) is worked out once per position, name
    and mode and remembered (:func:`_destination`); per call only the origin
    is converted and put at the head of each link (this is the hot path of
    ``/api/nearest``). ``mode`` (a key of :data:`APP_MODES`) is how the apps
    are asked to route.
    """
    if len(lons) == 0:
        return []
    amap_head, baidu_head = _amap_head(None), None
    if origin is not None:
        ogcj = wgs84_to_gcj02(float(origin[0]), float(origin[1]))
        amap_head, baidu_head = _amap_head(ogcj), _baidu_head(gcj02_to_bd09(*ogcj))
    out = []
    for x, y, name in zip(lons, lats, names, strict=True):
        (wgs84, gcj02, bd09), geo, (amap, baidu, marker) = _destination(float(x), float(y), name, mode)
        coords = {"wgs84": list(wgs84), "gcj02": list(gcj02), "bd09": list(bd09)}
        links = {"amap": amap_head + amap, "baidu": marker if baidu_head is None else baidu_head + baidu, "geo": geo}
        out.append((coords, links))
    return out


@lru_cache(maxsize=65_536)
def _destination(lon: float, lat: float, name: str, mode: str) -> tuple[
        tuple[tuple[float, float], ...], str, tuple[str, str, str]]:
    """What a facility's links and app coordinates need, from its WGS-84 position (degrees), name and the mode.

    Returns its WGS-84, GCJ-02 and BD-09 ``(lon, lat)`` as :func:`coordinates_for_apps`
    gives them (7 decimals), its ``geo:`` URI, and the destination's part of
    its AMap and Baidu directions links and its whole Baidu marker link. Pure
    in its arguments, so remembering it is always right: a moved or renamed
    facility is a new key.
    """
    glon, glat = wgs84_to_gcj02(lon, lat)
    blon, blat = gcj02_to_bd09(glon, glat)
    rounded = ((round(lon, 7), round(lat, 7)), (round(glon, 7), round(glat, 7)), (round(blon, 7), round(blat, 7)))
    return rounded, geo_uri(lon, lat, name), (_amap_tail(glon, glat, name, mode), _baidu_tail(blon, blat, name, mode),
                                              _baidu_marker(blon, blat, name))
