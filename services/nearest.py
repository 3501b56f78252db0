"""The residents' use cases: the nearest facilities to a position, search by name or address, the map's points.

Each public function opens one connection, reads rows with :mod:`db.facilities`
and does the maths with :mod:`geo.nearest`. Answers are GeoJSON
FeatureCollections as plain dicts, geometry in WGS-84 (RFC 7946); each
feature also carries its position in GCJ-02 and BD-09 for Chinese map apps,
and AMap / Baidu / ``geo:`` navigation links.

Nearest is "filter and refine". The PostGIS KNN operator ``point <-> q``
walks the GiST index in planar (degree) order, which is close to, but not,
the ground order. Each layer is fetched with a margin of candidates
(:func:`candidates_per_layer`) and re-ranked by geodesic metres on the
WGS-84 ellipsoid. When the margin could have missed one
(:func:`geo.nearest.knn_is_exact` says no), every facility within a planar
radius that surely holds all points as near on the ground as the k-th found
is fetched through the index and ranked: two rounds at most. Distances are
to the facility's representative point (a park's ``point``, not its edge).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection, Engine

from db import facilities as db_facilities
from geo.crs import POSITION_CRS, from_wgs84, to_wgs84
from geo.nearest import (
    coordinates_for_apps,
    knn_is_exact,
    links_and_coordinates,
    planar_radius_deg,
    rank_by_distance,
    walking_minutes,
)
from layers import LAYERS, layer_keys
from layers.modes import WALK_SPEED_M_PER_MIN
from services.errors import InvalidRequest

#: ``layer=`` value meaning every layer.
ALL_LAYERS = "all"
#: Facilities per layer a nearest request may ask for, and the default.
MAX_K = 50
DEFAULT_K = 5
#: Longest search text, characters.
MAX_QUERY_CHARS = 50
#: Most search results, and the default.
MAX_SEARCH_LIMIT = 50
DEFAULT_SEARCH_LIMIT = 10

#: First fetch per layer: ``max(k * _MARGIN, k + _EXTRA)`` candidates in planar order.
_MARGIN = 3
_EXTRA = 8

DISTANCE_NOTE = ("distance_m: geodesic metres on the WGS-84 ellipsoid from the query position to the "
                 "facility's representative point (a park's centre point, not its edge); walk_minutes: "
                 "that straight-line distance at walk_speed_m_per_min, rounded up (real routes are longer)")
SYNTHETIC_NOTE = {"zh": "演示数据：设施为合成数据（非真实位置）",
                  "en": "Demo data: these facilities are SYNTHETIC (not real places)"}
OUTSIDE_NOTE = {"zh": "该位置在枣庄市范围之外；仍列出最近的设施，但可能很远",
                "en": "This position is outside Zaozhuang City; the nearest facilities are still listed "
                      "but may be far away"}

Row = dict[str, Any]


@dataclass
class NearestResult:
    """Facilities nearest a WGS-84 position, per layer, each row with ``distance_m`` (geodesic metres)."""

    lon: float
    lat: float
    district: Row | None
    by_layer: dict[str, list[Row]] = field(default_factory=dict)
    rounds: int = 0

    @property
    def inside_city(self) -> bool:
        return self.district is not None

    def ordered(self) -> list[Row]:
        """All facilities, nearest first (ties by layer order, then id)."""
        rows = [r for key in self.by_layer for r in self.by_layer[key]]
        return sorted(rows, key=lambda r: (r["distance_m"], layer_keys().index(r["layer"]), r["id"]))


# --------------------------------------------------------------------------
# the use cases
# --------------------------------------------------------------------------

def nearest_collection(engine: Engine, lon: float, lat: float, *, crs: str = "wgs84", layer: str = ALL_LAYERS,
                       k: int = DEFAULT_K, walk_speed_m_per_min: float = WALK_SPEED_M_PER_MIN) -> dict[str, Any]:
    """GeoJSON FeatureCollection of the ``k`` nearest of ``layer`` (of each layer for ``all``).

    Parameters
    ----------
    engine : Engine
    lon, lat : float
        The position, degrees in ``crs``.
    crs : str
        One of :data:`geo.crs.POSITION_CRS` (wgs84, gcj02, bd09).
    layer : str
        A layer key, or ``all``.
    k : int
        Facilities per layer, 1 to :data:`MAX_K`.
    walk_speed_m_per_min : float
        Walking speed for ``walk_minutes``, metres per minute.

    Returns
    -------
    dict
        Features ordered by ``distance_m`` (geodesic metres on WGS-84), each
        with ``walk_minutes``, app coordinates and navigation links; ``query``
        echoes the request with the WGS-84 position and the district there.
    """
    _check_choice("crs", crs, POSITION_CRS)
    _check_choice("layer", layer, (*layer_keys(), ALL_LAYERS))
    _check_range("k", k, 1, MAX_K)
    wlon, wlat = to_wgs84(lon, lat, crs)
    result = nearest(engine, wlon, wlat, list(layer_keys()) if layer == ALL_LAYERS else [layer], k)
    features = _features(result.ordered(), speed=walk_speed_m_per_min, origin=(wlon, wlat))
    query: dict[str, Any] = {
        "lon": lon, "lat": lat, "crs": crs, "layer": layer, "k": k,
        "coordinates": coordinates_for_apps(wlon, wlat),
        "inside_city": result.inside_city,
        "district": {key: result.district[key] for key in ("adcode", "name_zh", "name_en")}
        if result.district else None,
    }
    if not result.inside_city:
        query["notice"] = OUTSIDE_NOTE
    return {"type": "FeatureCollection", "query": query, "walk_speed_m_per_min": walk_speed_m_per_min,
            "distance_note": DISTANCE_NOTE, "synthetic": any(f["properties"]["synthetic"] for f in features),
            "synthetic_note": SYNTHETIC_NOTE, "numberReturned": len(features), "features": features}


def search_collection(engine: Engine, q: str, *, layer: str | None = None,
                      limit: int = DEFAULT_SEARCH_LIMIT) -> dict[str, Any]:
    """GeoJSON FeatureCollection of facilities whose name or address contains ``q``, best first.

    ``q`` (1 to :data:`MAX_QUERY_CHARS` characters) is taken literally; each
    feature says whether it ``matched`` by name or by address. Positions are
    WGS-84 degrees.
    """
    _check_length("q", q, 1, MAX_QUERY_CHARS)
    if layer is not None:
        _check_choice("layer", layer, layer_keys())
    _check_range("limit", limit, 1, MAX_SEARCH_LIMIT)
    with engine.connect() as conn:
        rows = db_facilities.search(conn, q, layer=layer, limit=limit)
    features = _features(rows)
    for f, row in zip(features, rows, strict=True):
        f["properties"]["matched"] = "name" if row["name_pos"] > 0 else "address"
    return {"type": "FeatureCollection", "query": {"q": q, "layer": layer, "limit": limit},
            "synthetic": any(f["properties"]["synthetic"] for f in features),
            "synthetic_note": SYNTHETIC_NOTE, "numberReturned": len(features), "features": features}


def map_points(engine: Engine, crs: str = "wgs84") -> dict[str, list[list[Any]]]:
    """Per layer, every active facility as ``[id, lon, lat, name, kind, synthetic (0/1)]`` for the map.

    ``lon``/``lat`` are degrees in ``crs`` (one of :data:`geo.crs.POSITION_CRS`;
    ``gcj02`` puts markers on AMap's tiles), rounded to 6 decimals (about
    10 cm). ``kind`` is ``""`` unless the layer's record knows it. Addresses
    are left out to keep the page small (nearest and search answers carry them).
    """
    _check_choice("crs", crs, POSITION_CRS)
    with engine.connect() as conn:
        rows = db_facilities.map_points(conn)
    out: dict[str, list[list[Any]]] = {key: [] for key in LAYERS}
    if not rows:
        return out
    lons, lats = from_wgs84(np.array([r["lon"] for r in rows]), np.array([r["lat"] for r in rows]), crs)
    for r, x, y in zip(rows, lons, lats, strict=True):
        kind = r["kind"] if r["kind"] in LAYERS[r["layer"]].kinds else ""
        out[r["layer"]].append([r["id"], round(float(x), 6), round(float(y), 6), r["name"], kind,
                                1 if r["synthetic"] else 0])
    return out


def nearest(engine: Engine, lon: float, lat: float, layers: Sequence[str], k: int) -> NearestResult:
    """The ``k`` facilities of each of ``layers`` nearest a WGS-84 position, in one connection.

    Parameters
    ----------
    engine : Engine
    lon, lat : float
        WGS-84 degrees.
    layers : sequence of str
        Layer keys.
    k : int
        Facilities per layer, 1 to :data:`MAX_K`.

    Returns
    -------
    NearestResult
        Per layer (in the order given), up to ``k`` rows nearest first, each
        with ``distance_m`` (geodesic metres on WGS-84) and the facility's
        fields; the district at the position; how many rounds it took.
    """
    for key in layers:
        _check_choice("layer", key, layer_keys())
    _check_range("k", k, 1, MAX_K)
    with engine.connect() as conn:
        result = NearestResult(lon=lon, lat=lat, district=db_facilities.district_at(conn, lon, lat), rounds=1)
        unsure = _first_round(conn, result, layers, k)
        if unsure:
            result.rounds = 2
            _second_round(conn, result, unsure, k)
    result.by_layer = {key: result.by_layer[key] for key in layers}
    return result


def candidates_per_layer(k: int) -> int:
    """How many facilities per layer the first KNN round fetches for ``k`` nearest."""
    return max(k * _MARGIN, k + _EXTRA)


# --------------------------------------------------------------------------
# the two rounds
# --------------------------------------------------------------------------

def _first_round(conn: Connection, result: NearestResult, layers: Sequence[str], k: int) -> dict[str, float | None]:
    """Fetch and rank each layer's candidates; settle the layers whose ``k`` nearest are surely among them.

    Returns the unsettled layers with the planar radius (degrees) that holds
    every facility as near as their k-th candidate (``None``: no trusted bound).
    """
    m = candidates_per_layer(k)
    fetched: dict[str, list[Row]] = {key: [] for key in layers}
    for row in db_facilities.knn(conn, layers, result.lon, result.lat, m):
        fetched[row["layer"]].append(row)
    unsure: dict[str, float | None] = {}
    for key, rows in fetched.items():
        best = _refine(rows, result.lon, result.lat, k)
        if len(rows) < m or not best or knn_is_exact(best[-1]["distance_m"], float(rows[-1]["deg"]), result.lat):
            result.by_layer[key] = best
        else:
            unsure[key] = planar_radius_deg(best[-1]["distance_m"], result.lat)
    return unsure


def _second_round(conn: Connection, result: NearestResult, unsure: dict[str, float | None], k: int) -> None:
    """Planar order could have missed one: rank every facility that could be as near on the ground as the
    k-th found (or, with no trusted bound, the whole layer)."""
    for key, radius in unsure.items():
        if radius is None:
            rows = db_facilities.knn(conn, [key], result.lon, result.lat, None)
        else:
            rows = db_facilities.knn_within(conn, [key], result.lon, result.lat, radius)
        result.by_layer[key] = _refine(rows, result.lon, result.lat, k)


def _refine(rows: list[Row], lon: float, lat: float, k: int) -> list[Row]:
    """The ``k`` rows nearest (lon, lat) on the ellipsoid, each with ``distance_m``."""
    idx, dist = rank_by_distance(lon, lat, np.array([r["lon"] for r in rows]), np.array([r["lat"] for r in rows]), k)
    return [{**rows[int(i)], "distance_m": float(d)} for i, d in zip(idx, dist, strict=True)]


# --------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------

def _features(rows: list[Row], *, speed: float | None = None,
              origin: tuple[float, float] | None = None) -> list[dict[str, Any]]:
    extras = links_and_coordinates([r["lon"] for r in rows], [r["lat"] for r in rows], [r["name"] for r in rows],
                                   origin)
    return [_feature(row, coords, links, speed) for row, (coords, links) in zip(rows, extras, strict=True)]


def _feature(row: Row, coords: dict[str, list[float]], links: dict[str, str], speed: float | None) -> dict[str, Any]:
    layer = LAYERS[row["layer"]]
    kind = layer.kinds.get(row["kind"] or "")
    props: dict[str, Any] = {
        "id": row["id"], "layer": layer.key, "layer_name_zh": layer.name_zh, "layer_name_en": layer.name_en,
        "kind": row["kind"], "kind_name_zh": kind[0] if kind else None, "kind_name_en": kind[1] if kind else None,
        "name": row["name"], "address": row["address"], "phone": row["phone"],
        "opening_hours": row["opening_hours"],
        "district": row["district_adcode"], "district_zh": row["district_zh"], "district_en": row["district_en"],
        "synthetic": bool(row["synthetic"]),
    }
    if layer.capacity_field or row["capacity"] is not None:
        props.update(capacity=row["capacity"], capacity_unit_zh=layer.capacity_unit_zh,
                     capacity_unit_en=layer.capacity_unit_en)
    if "distance_m" in row:
        props["distance_m"] = round(row["distance_m"], 1)
        if speed is not None:
            props["walk_minutes"] = walking_minutes(row["distance_m"], speed)
    props["coordinates"] = coords
    props["navigation"] = links
    return {"type": "Feature", "id": row["id"], "geometry": {"type": "Point", "coordinates": coords["wgs84"]},
            "properties": props}


# --------------------------------------------------------------------------
# checks (the views check the same bounds first; these keep other callers honest)
# --------------------------------------------------------------------------

def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise InvalidRequest(f"{name} was {str(value)[:40]!r} but is expected to be one of {', '.join(allowed)}",
                             parameter=name, allowed=list(allowed))


def _check_range(name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise InvalidRequest(f"{name} was {value} but must be a whole number from {lo} to {hi}", parameter=name,
                             allowed={"min": lo, "max": hi})


def _check_length(name: str, value: str, lo: int, hi: int) -> None:
    if not lo <= len(value) <= hi:
        raise InvalidRequest(f"{name} must be {lo} to {hi} characters long (it was {len(value)})", parameter=name,
                             allowed={"min_length": lo, "max_length": hi})
