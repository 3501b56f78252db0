"""The residents' use cases: the nearest facilities to a position (in a straight line or along the roads),
search by name or address, the map's points.

Each opens one connection and reads rows with :mod:`db.facilities`; the
maths is :mod:`geo.nearest` (geodesics) and :mod:`services.routing` (roads);
answers are GeoJSON FeatureCollections (:mod:`services.facility_features`).
Nearest is "filter and refine" (the rounds: :mod:`services.candidates`), exact
in both measures:

* **Candidates.** The district at the position, the road network's state
  and, per layer, the first candidates: from what the process holds in
  memory (:mod:`services.nearest_held`, no query; each layer's nearest in the
  scaled plane, whose bound on the ground distance is within a few per cent
  of it, so a straight answer is usually settled there), or else one
  statement (``geom <-> q`` on the (layer, geom) GiST index: the
  :func:`candidates_per_layer` nearest in planar degree order).
* **Straight.** Geodesic metres on the WGS-84 ellipsoid: to a point (pyproj,
  one vectorised call), to an area's nearest point (PostGIS ``geography``, 0
  inside). A layer's list is complete up to the ground distance
  :func:`geo.nearest.planar_bound_m` guarantees for its farthest candidate;
  when the k-th lies beyond, every facility within a planar radius that surely
  holds it is read (one more round trip).
* **Along the roads.** No road route is shorter than the straight line, so
  candidates are taken in straight-line order and the search stops when the
  next one is farther in a straight line than the k-th best by road (0.1 %
  margin): the list is widened until complete that far, the Dijkstra limit
  until ``k`` are reached.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from db import facilities as db_facilities
from geo.crs import POSITION_CRS, from_metric, from_wgs84, to_metric, to_wgs84
from geo.nearest import coordinates_for_apps
from layers import LAYERS, layer_keys
from layers.modes import WALK_SPEED_M_PER_MIN
from services import candidates, nearest_held
from services.checks import check_choice, check_length, check_range
from services.errors import InvalidRequest
from services.facility_features import SYNTHETIC_NOTE, features
from services.routing import NETWORK_RULE, RoadDistances, road_network, travel_speed

#: ``layer=`` value meaning every layer.
ALL_LAYERS = "all"
#: ``by=`` values: along the walking or driving network, or a straight line.
STRAIGHT = "straight"
TRAVEL_MODES = ("walk", "drive")
BY = (*TRAVEL_MODES, STRAIGHT)
#: Facilities per layer a nearest request may ask for, and the default.
MAX_K = 50
DEFAULT_K = 5

#: Longest search text, characters.
MAX_QUERY_CHARS = 50
#: Most search results, and the default.
MAX_SEARCH_LIMIT = 50
DEFAULT_SEARCH_LIMIT = 10

#: First fetch per layer: ``max(k * margin, k + extra)`` candidates in planar order; by road more, since a
#: road detour makes the k-th by road lie further down the straight-line order.
_MARGIN, _EXTRA = 3, 8
_ROAD_MARGIN, _ROAD_EXTRA = 5, 24

STRAIGHT_NOTE = ("distance_m and straight_m: geodesic metres on the WGS-84 ellipsoid from the query position to "
                 "the facility (to the nearest point of an area such as a park, 0 inside it); minutes and route: "
                 "null (no route is measured)")
ROAD_NOTE = ("distance_m: metres along the {mode} network; " + NETWORK_RULE + "; straight_m: geodesic metres on "
             "the WGS-84 ellipsoid; minutes: distance_m at speeds_m_per_min.{mode}, rounded up; route: the way "
             "taken, WGS-84. Exact: candidates are taken in straight-line order until the next is farther in a "
             "straight line than the k-th best by road")
OUTSIDE_NOTE = {"zh": "该位置在枣庄市范围之外；仍列出最近的设施，但可能很远",
                "en": "This position is outside Zaozhuang City; the nearest facilities are still listed "
                      "but may be far away"}

Row = dict[str, Any]


@dataclass
class NearestResult:
    """Facilities nearest a WGS-84 position, per layer, each row with ``distance_m`` (metres ``by`` the mode
    used) and ``straight_m`` (geodesic metres); the district there and the road network's state."""

    lon: float
    lat: float
    district: Row | None
    by: str = STRAIGHT
    network: dict[str, bool] = field(default_factory=lambda: {"loaded": False, "synthetic": False})
    by_layer: dict[str, list[Row]] = field(default_factory=dict)
    rounds: int = 1

    @property
    def inside_city(self) -> bool:
        return self.district is not None

    def ordered(self) -> list[Row]:
        """All facilities, nearest first (ties by layer order, then id)."""
        order = {key: i for i, key in enumerate(layer_keys())}
        rows = [r for key in self.by_layer for r in self.by_layer[key]]
        return sorted(rows, key=lambda r: (r["distance_m"], order.get(r["layer"], len(order)), r["id"]))


# --------------------------------------------------------------------------
# the use cases
# --------------------------------------------------------------------------

def nearest_collection(engine: Engine, lon: float, lat: float, *, crs: str = "wgs84", layer: str = ALL_LAYERS,
                       k: int = DEFAULT_K, by: str | None = None,
                       walk_speed_m_per_min: float = WALK_SPEED_M_PER_MIN) -> dict[str, Any]:
    """GeoJSON FeatureCollection of the ``k`` nearest of each layer asked for.

    Parameters
    ----------
    engine : Engine
    lon, lat : float
        The position, degrees in ``crs``.
    crs : str
        One of :data:`geo.crs.POSITION_CRS` (wgs84, gcj02, bd09).
    layer : str
        A layer key, ``all``, or layer keys separated by commas.
    k : int
        Facilities per layer, 1 to :data:`MAX_K`.
    by : str or None
        ``walk``, ``drive`` or ``straight``; None: ``walk`` when a road
        network is loaded, else ``straight``.
    walk_speed_m_per_min : float
        Walking speed for ``minutes``, metres per minute (driving: ``layers.modes``).

    Returns
    -------
    dict
        Features ordered by ``distance_m``, each with ``by``, ``distance_m``,
        ``straight_m``, ``minutes``, ``route``, app coordinates and navigation
        links; ``query`` echoes the request with ``by``, ``network`` and
        ``speeds_m_per_min``, the WGS-84 position and the district there.
    """
    check_choice("crs", crs, POSITION_CRS)
    layers = parse_layers(layer)
    check_range("k", k, 1, MAX_K)
    wlon, wlat = to_wgs84(lon, lat, crs)
    result = nearest(engine, wlon, wlat, layers, k, by=by)
    speeds = {"walk": travel_speed("walk", walk_speed_m_per_min), "drive": travel_speed("drive")}
    rows = result.ordered()
    found = features(rows, by=result.by, speed=speeds.get(result.by), origin=(wlon, wlat))
    query: dict[str, Any] = {
        "lon": lon, "lat": lat, "crs": crs, "layer": layer, "layers": layers, "k": k, "by": result.by,
        "network": result.network, "speeds_m_per_min": speeds,
        "coordinates": coordinates_for_apps(wlon, wlat), "inside_city": result.inside_city,
        "district": result.district,
    }
    if not result.inside_city:
        query["notice"] = OUTSIDE_NOTE
    note = STRAIGHT_NOTE if result.by == STRAIGHT else ROAD_NOTE.format(mode=result.by)
    return {"type": "FeatureCollection", "query": query, "distance_note": note,
            "synthetic": any(f["properties"]["synthetic"] for f in found), "synthetic_note": SYNTHETIC_NOTE,
            "numberReturned": len(found), "features": found}


def search_collection(engine: Engine, q: str, *, layer: str | None = None,
                      limit: int = DEFAULT_SEARCH_LIMIT) -> dict[str, Any]:
    """GeoJSON FeatureCollection of facilities whose name or address contains ``q``, best first.

    ``q`` (1 to :data:`MAX_QUERY_CHARS` characters) is taken literally; each
    feature says whether it ``matched`` by name or by address. Positions are
    WGS-84 degrees.
    """
    check_length("q", q, 1, MAX_QUERY_CHARS)
    if layer is not None:
        check_choice("layer", layer, layer_keys())
    check_range("limit", limit, 1, MAX_SEARCH_LIMIT)
    with engine.connect() as conn:
        rows = db_facilities.search(conn, q, layer=layer, limit=limit)
    found = features(rows)
    for f, row in zip(found, rows, strict=True):
        f["properties"]["matched"] = "name" if row["name_pos"] > 0 else "address"
    return {"type": "FeatureCollection", "query": {"q": q, "layer": layer, "limit": limit},
            "synthetic": any(f["properties"]["synthetic"] for f in found),
            "synthetic_note": SYNTHETIC_NOTE, "numberReturned": len(found), "features": found}


def map_points(engine: Engine, crs: str = "wgs84") -> dict[str, list[list[Any]]]:
    """Per layer, every active facility as ``[id, lon, lat, name, kind, synthetic (0/1)]`` for the map.

    ``lon``/``lat`` are degrees in ``crs`` (one of :data:`geo.crs.POSITION_CRS`;
    ``gcj02`` puts markers on AMap's tiles), rounded to 6 decimals (about
    10 cm). ``kind`` is ``""`` unless the layer's record knows it. Addresses
    are left out to keep the page small (nearest and search answers carry them).
    """
    check_choice("crs", crs, POSITION_CRS)
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


def hold(engine: Engine) -> str:
    """Read now what nearest answers from, so no resident's request pays for it (a light worker calls it as it
    starts); what is held, in words.

    The facilities (:func:`services.nearest_held.hold`) and, when a road
    network is loaded, each travel mode's graph with every facility joined to
    it (:func:`services.routing.road_network`: about 0.4 s per mode on the
    demo city, which the first click along the roads would otherwise wait for).
    """
    said = nearest_held.hold(engine)
    held = nearest_held.current(engine)
    if held is None or not held.network_edges:
        return said
    for mode in TRAVEL_MODES:
        road_network(engine, mode, versions=held.versions)
    if held.facilities:  # routes are found in metres and drawn in degrees: pyproj sets up each conversion
        first = held.facilities[0]  # once per process, in about 80 ms
        from_metric(*to_metric(first["lon"], first["lat"]))
    return f"{said}; the {' and '.join(TRAVEL_MODES)} networks ({held.network_edges:,} edges) joined to them"


def nearest(engine: Engine, lon: float, lat: float, layers: Sequence[str], k: int, *,
            by: str | None = None) -> NearestResult:
    """The ``k`` facilities of each of ``layers`` nearest a WGS-84 position, by ``by``, in one connection.

    Parameters
    ----------
    engine : Engine
    lon, lat : float
        WGS-84 degrees.
    layers : sequence of str
        Layer keys.
    k : int
        Facilities per layer, 1 to :data:`MAX_K`.
    by : str or None
        ``walk``, ``drive``, ``straight``; None: ``walk`` when a network is loaded, else ``straight``.

    Returns
    -------
    NearestResult
        Per layer (in the order given), up to ``k`` rows nearest first, each
        with ``distance_m``, ``straight_m`` and the facility's fields (along
        the roads also ``route_xy``, EPSG:4548); the district at the position;
        how many round trips it took. Facilities the roads do not reach are left out.
    """
    for key in layers:
        check_choice("layer", key, layer_keys())
    check_range("k", k, 1, MAX_K)
    if by is not None:
        check_choice("by", by, BY)
    m = candidates_per_layer(k, by_road=by != STRAIGHT)
    held = nearest_held.current(engine)
    if held is None:
        with engine.connect() as conn:
            first = db_facilities.nearest_candidates(conn, layers, lon, lat, m)
            return _settled(engine, first.district, first.network_edges, first.network_synthetic,
                            candidates.by_layer(first.rows, layers, lon, lat, m),
                            partial(db_facilities.candidates_within, conn), lon, lat, k, by)
    mode = _travel_mode(by, held.network_edges)
    district = held.district_at(lon, lat)
    if mode != STRAIGHT:  # each layer's first candidates from the scaled plane, then the rounds along the roads
        return _settled(engine, district, held.network_edges, held.network_synthetic,
                        held.pools(layers, lon, lat, k + nearest_held.FIRST_EXTRA_BY_ROAD), held.within, lon, lat, k,
                        mode, versions=held.versions)
    found = held.nearest_straight(layers, lon, lat, k)
    result = NearestResult(lon, lat, district, STRAIGHT,
                           {"loaded": held.network_edges > 0, "synthetic": held.network_synthetic})
    unsure = [key for key in layers if found[key] is None]
    if unsure:  # those layers' first candidates may not hold their k nearest: the rounds read more
        more = _settled(engine, district, held.network_edges, held.network_synthetic,
                        held.pools(unsure, lon, lat, m), held.within, lon, lat, k, STRAIGHT)
        found.update(more.by_layer)
        result.rounds = more.rounds
    result.by_layer = {key: found[key] or [] for key in layers}
    return result


def _settled(engine: Engine, district: Row | None, network_edges: int, network_synthetic: bool,
             pools: dict[str, candidates.LayerCandidates], read_within: candidates.ReadWithin, lon: float,
             lat: float, k: int, by: str | None, *, versions: tuple[Any, ...] | None = None) -> NearestResult:
    """Nearest's rounds from each layer's first candidates, reading more with ``read_within`` (``versions``: what
    the candidates were read at, when known, so the road graph's cache needs no query)."""
    mode = _travel_mode(by, network_edges)
    result = NearestResult(lon, lat, district, mode, {"loaded": network_edges > 0, "synthetic": network_synthetic})
    if mode == STRAIGHT:
        result.rounds += candidates.settle_straight(read_within, pools, lon, lat, k)
        result.by_layer = {key: pool.rows[:k] for key, pool in pools.items()}
    else:
        road = RoadDistances(road_network(engine, mode, versions=versions), lon, lat)
        result.rounds += candidates.settle_by_road(read_within, pools, road, lon, lat, k)
        result.by_layer = {key: candidates.nearest_by_road(pool.rows, k) for key, pool in pools.items()}
        road.routes([r for rows in result.by_layer.values() for r in rows])
    return result


def candidates_per_layer(k: int, *, by_road: bool = False) -> int:
    """How many facilities per layer the first KNN round fetches for ``k`` nearest (in a straight line, or by road)."""
    if by_road:
        return max(k * _ROAD_MARGIN, k + _ROAD_EXTRA)
    return max(k * _MARGIN, k + _EXTRA)


def parse_layers(layer: str) -> list[str]:
    """The layer keys ``layer`` names: a key, ``all``, or keys separated by commas (each once, in order).

    Raises
    ------
    InvalidRequest
        ``parameter="layer"``, naming the keys allowed, for an empty or unknown one.
    """
    keys = list(layer_keys())
    if layer == ALL_LAYERS:
        return keys
    names = [part.strip() for part in str(layer).split(",")]
    bad = [n for n in names if n not in keys]
    if bad:
        raise InvalidRequest(f"layer was {str(layer)[:60]!r} but is expected to be one of {', '.join(keys)}, "
                             f"{ALL_LAYERS}, or several keys separated by commas ({bad[0][:40]!r} is not a layer)",
                             parameter="layer", allowed=[*keys, ALL_LAYERS])
    return list(dict.fromkeys(names))


def _travel_mode(by: str | None, network_edges: int) -> str:
    if by is None:
        return "walk" if network_edges > 0 else STRAIGHT
    if by != STRAIGHT and network_edges == 0:
        raise InvalidRequest(f"by was {by!r} but no road network is loaded; use by={STRAIGHT}, or load one with "
                             "`flask etl roads FILE`", parameter="by", allowed=[STRAIGHT])
    return by
