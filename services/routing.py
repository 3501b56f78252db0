"""Distances along the roads from one position: the network side of nearest, and isochrones.

The graph of a travel mode comes from :func:`services.roads.graph` (in
memory, cached until the network changes); the maths is :mod:`geo.network`
and :mod:`geo.routes`. Positions are WGS-84 degrees at the edges of this
module and EPSG:4548 metres inside it.

The rules, stated once (the answers quote them):

* **Joining the network.** The position and each facility join the network
  at the nearest point of the nearest road of the mode (not the nearest
  junction); the straight walk to it, the access leg, is part of the distance.
* **Areas.** A park (any facility stored as a polygon) is reached at its
  boundary: the boundary is sampled every :data:`AREA_SAMPLE_M` metres (and
  at its corners), each sample joins the network as above, and the nearest
  sample by road counts. A position inside the polygon is at it: 0 m.
* **Search.** One bounded Dijkstra from the position (scipy on the cached
  graph), its limit widened when fewer than ``k`` are reached.
* **Isochrones.** Every part of every road reachable within the budget
  (the access leg counted), widened by :data:`geo.network.ISOCHRONE_BUFFER_M`
  and dissolved: roads across a river without a bridge stay outside.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from sqlalchemy.engine import Engine

from db import facilities as db_facilities
from geo import network, routes
from geo.crs import from_metric, to_metric, to_wgs84, transform_geometry
from geo.errors import GeoError
from layers.modes import MODES
from services import roads
from services.cache import memo
from services.errors import InvalidRequest

#: Spacing (metres) of the samples along an area's boundary that join the network.
AREA_SAMPLE_M = 25.0
#: The first search limit: this many times the farthest k-th straight distance, plus :data:`_LIMIT_PAD_M`.
_LIMIT_FACTOR = 1.5
_LIMIT_PAD_M = 1000.0
#: Each widening multiplies the limit by this; after :data:`_WIDENINGS` the search is unbounded.
_WIDEN = 4.0
_WIDENINGS = 3

#: Isochrones: at most this many budgets, each from 1 to :data:`MAX_MINUTES` minutes.
MAX_BUDGETS = 6
MAX_MINUTES = 60
#: Isochrone outlines are simplified by this many metres (a tenth of the 50 m widening: not visible).
OUTLINE_TOLERANCE_M = 5.0

ISOCHRONE_RULE = ("every part of every road reachable within the time at the stated speed (the straight walk "
                  "from the position to the nearest road counted), widened by "
                  f"{network.ISOCHRONE_BUFFER_M:g} m and dissolved, the outline simplified by "
                  f"{OUTLINE_TOLERANCE_M:g} m; roads across a barrier without a crossing stay outside")
NETWORK_RULE = ("the position and each facility join the road network at the nearest point of the nearest road "
                "(the straight access leg is counted); a park or other area is reached at its boundary, sampled "
                f"every {AREA_SAMPLE_M:g} m, whichever sample is nearest by road, and a position inside it is 0 m "
                "away")

Row = dict[str, Any]


@dataclass(frozen=True)
class RoadNetwork:
    """A travel mode's graph and where every active facility joins it (by the rules above), EPSG:4548.

    ``facility_id`` is ascending; the access points of facility ``i`` are
    ``access[first[i]:first[i + 1]]`` (one for a point, the boundary samples
    of an area). ``route_index`` serves route recovery (``geo.routes``).
    """

    mode: str
    graph: network.Graph
    facility_id: np.ndarray
    first: np.ndarray
    access: network.Snapped
    route_index: routes.RouteIndex


def road_network(engine: Engine, mode: str, *, versions: tuple[Any, ...] | None = None) -> RoadNetwork:
    """The :class:`RoadNetwork` of ``mode``, built once per version of the roads and the facilities.

    ``versions``: the data versions the caller's data was read at (``services.cache.memo``), when known.
    """
    roads.check_mode(mode)
    return memo(engine, "routing.road_network", mode, lambda: _road_network(engine, mode),
                families=("roads", "facility"), versions=versions)


def _road_network(engine: Engine, mode: str) -> RoadNetwork:
    graph = roads.graph(engine, mode)
    with engine.connect() as conn:
        ids, wkbs = db_facilities.metric_geometries(conn)
    xy, owner = access_points(shapely.from_wkb(wkbs) if wkbs else np.empty(0, dtype=object))
    access = network.snap(graph, xy) if graph.n_edges else network.Snapped(
        xy, np.full(len(xy), -1, dtype=np.int64), np.zeros(len(xy)), np.full(len(xy), np.inf), xy)
    first = np.searchsorted(owner, np.arange(len(ids) + 1))
    return RoadNetwork(mode, graph, np.asarray(ids, dtype=np.int64), first, access, routes.route_index(graph))


def access_points(geometries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each geometry (EPSG:4548) joins the network: a point itself; an area's boundary (a line itself)
    sampled every :data:`AREA_SAMPLE_M` metres and at its vertices. Returns ``(xy, owner index)``."""
    if not len(geometries):
        return np.empty((0, 2)), np.empty(0, dtype=np.int64)
    kind = shapely.get_type_id(geometries)
    areas = (kind == shapely.GeometryType.POLYGON) | (kind == shapely.GeometryType.MULTIPOLYGON)
    outline = np.where(areas, shapely.boundary(geometries), geometries)
    lines = (kind != shapely.GeometryType.POINT) & (kind != shapely.GeometryType.MULTIPOINT)
    outline = np.where(lines, shapely.segmentize(outline, AREA_SAMPLE_M), outline)
    xy, owner = shapely.get_coordinates(outline, return_index=True)
    return np.asarray(xy, dtype=float), np.asarray(owner, dtype=np.int64)


class RoadDistances:
    """Metres along one mode's roads from one WGS-84 position to facility rows, widening its search on demand.

    Parameters
    ----------
    roads_of_mode : RoadNetwork
        The mode's graph and facility access points (:func:`road_network`).
    lon, lat : float
        The position, WGS-84 degrees.
    """

    def __init__(self, roads_of_mode: RoadNetwork, lon: float, lat: float) -> None:
        graph = roads_of_mode.graph
        if graph.n_edges == 0:
            raise InvalidRequest(f"the road network has no road for {roads_of_mode.mode}; use by=straight",
                                 parameter="by")
        self.net = roads_of_mode
        x, y = to_metric(lon, lat)
        self.origin = network.snap(graph, np.array([[x, y]]))
        self.limit_m = math.inf
        self.widened = 0
        self.tree: network.Tree | None = None
        self._ends: network.Snapped | None = None

    def start(self, farthest_straight_m: float) -> None:
        """Search up to a first limit sized on the farthest straight distance that has to be beaten."""
        first = _LIMIT_FACTOR * farthest_straight_m + _LIMIT_PAD_M
        self.limit_m = first if math.isfinite(first) else math.inf
        self.tree = network.shortest_paths(self.net.graph, self.origin, limit_m=self.limit_m)

    def widen(self) -> None:
        """Search further (``limit_m`` × :data:`_WIDEN`; unbounded after :data:`_WIDENINGS` widenings)."""
        self.widened += 1
        self.limit_m = math.inf if self.widened >= _WIDENINGS else self.limit_m * _WIDEN
        self.tree = network.shortest_paths(self.net.graph, self.origin, limit_m=self.limit_m)

    @property
    def exhaustive(self) -> bool:
        return math.isinf(self.limit_m)

    def measure(self, rows: Sequence[Row]) -> None:
        """Set each row's ``distance_m``: metres by road to its nearest access point (inf beyond the limit
        or unreachable; 0 inside an area, ``straight_m`` 0). Rows need ``id``, ``lon``/``lat``, ``straight_m``."""
        if self.tree is None:
            raise RuntimeError("start() the search before measuring")
        if not rows:
            return
        ends, owner = self._access(rows)
        dist = routes.distances_to(self.net.graph, self.tree, ends)
        order = np.lexsort((dist, owner))
        best = order[np.concatenate([[True], owner[order][1:] != owner[order][:-1]])]
        self._ends = ends
        for row, j in zip(rows, best.tolist(), strict=True):
            inside = row["area_m"] is not None and row["straight_m"] == 0.0
            row["distance_m"] = 0.0 if inside else float(dist[j])
            row["_end"] = None if inside else j

    def _access(self, rows: Sequence[Row]) -> tuple[network.Snapped, np.ndarray]:
        """The snapped access points of ``rows`` and the row each belongs to: from the cache, or for a
        facility newer than the cache, its representative point joined now."""
        net, n = self.net, len(self.net.facility_id)
        ids = np.array([r["id"] for r in rows], dtype=np.int64)
        pos = np.minimum(np.searchsorted(net.facility_id, ids), n)
        start = net.first[pos]
        count = net.first[np.minimum(pos + 1, n)] - start
        known = (pos < n) & (count > 0)
        known[known] = net.facility_id[pos[known]] == ids[known]
        count = np.where(known, count, 1)
        owner = np.repeat(np.arange(len(rows)), count)
        index = np.repeat(start, count) + np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        if known.all():
            return net.access.take(index), owner
        lonlat = np.array([(rows[i]["lon"], rows[i]["lat"]) for i in owner.tolist()], dtype=float).reshape(-1, 2)
        fresh = network.snap(net.graph, np.column_stack(to_metric(lonlat[:, 0], lonlat[:, 1])))
        if not known.any():
            return fresh, owner
        cached, use = net.access.take(np.where(np.repeat(known, count), index, 0)), np.repeat(known, count)
        return network.Snapped(*(np.where(use.reshape(-1, *([1] * (getattr(cached, f).ndim - 1))),
                                          getattr(cached, f), getattr(fresh, f))
                                 for f in ("point_xy", "edge", "along_m", "access_m", "xy"))), owner

    def routes(self, rows: Sequence[Row]) -> None:
        """Set each measured row's ``route_xy``: EPSG:4548 coordinates from the position to where it reaches
        the facility (the position alone, twice, inside an area)."""
        if not rows:  # nothing was found (e.g. an empty layer): nothing to route
            return
        if self.tree is None or self._ends is None:
            raise RuntimeError("measure() the rows before routing them")
        reached = [r for r in rows if r.get("_end") is not None and math.isfinite(r["distance_m"])]
        ends = self._ends.take(np.array([r["_end"] for r in reached], dtype=np.int64))
        for row, xy in zip(reached, routes.route_lines(self.net.graph, self.tree, ends, self.net.route_index),
                           strict=True):
            row["route_xy"] = xy
        here = self.origin.point_xy[0]
        for row in rows:
            if row.get("_end") is None:
                row["route_xy"] = np.array([here, here])


def routes_geojson(lines: Sequence[np.ndarray | None]) -> list[dict[str, Any] | None]:
    """Routes' EPSG:4548 coordinates as GeoJSON LineStrings in WGS-84 (7 decimals; None stays None),
    converted in one call."""
    sizes = [0 if xy is None else len(xy) for xy in lines]
    if not sum(sizes):
        return [None] * len(lines)
    xy = np.concatenate([a for a in lines if a is not None and len(a)])
    lon, lat = from_metric(xy[:, 0], xy[:, 1])
    coords = np.round(np.column_stack([lon, lat]), 7).tolist()
    out: list[dict[str, Any] | None] = []
    at = 0
    for size in sizes:
        out.append({"type": "LineString", "coordinates": coords[at:at + size]} if size else None)
        at += size
    return out


# --------------------------------------------------------------------------
# isochrones
# --------------------------------------------------------------------------

def isochrone_collection(engine: Engine, lon: float, lat: float, *, minutes: str | Sequence[int], by: str = "walk",
                         crs: str = "wgs84", walk_speed_m_per_min: float | None = None) -> dict[str, Any]:
    """What can be reached from a position within each of ``minutes``, along the roads of mode ``by``.

    Parameters
    ----------
    engine : Engine
    lon, lat : float
        The position, degrees in ``crs`` (wgs84, gcj02, bd09).
    minutes : str or sequence of int
        1 to :data:`MAX_BUDGETS` budgets, each 1 to :data:`MAX_MINUTES` whole
        minutes (a string: separated by commas, as ``5,10,15``).
    by : str
        ``walk`` or ``drive``.
    walk_speed_m_per_min : float, optional
        The walking speed (the deployment's); driving uses ``layers.modes``.

    Returns
    -------
    dict
        A GeoJSON FeatureCollection, one (Multi)Polygon (WGS-84) per budget,
        smallest first, each with ``minutes``, ``by``, ``speed_m_per_min``,
        ``rule`` and ``synthetic_network``.

    Raises
    ------
    InvalidRequest
        Bad budgets or mode, or no road network loaded (``parameter="by"``).
    """
    budgets = check_minutes(minutes)
    mode = roads.check_mode(by)
    speed = travel_speed(mode, walk_speed_m_per_min)
    record = roads.loaded_network(engine)
    if record is None:
        raise InvalidRequest("no road network is loaded, so there is no isochrone; load one with "
                             "`flask etl roads FILE`", parameter="by", allowed=[])
    wlon, wlat = to_wgs84(lon, lat, crs)
    net = road_network(engine, mode)
    graph = net.graph
    origin = RoadDistances(net, wlon, wlat).origin
    try:
        areas = network.isochrones(graph, origin, [b * speed for b in budgets])
    except GeoError as exc:
        raise InvalidRequest(str(exc), parameter="minutes") from None
    features = [{"type": "Feature", "geometry": _outline(area),
                 "properties": {"minutes": b, "by": mode, "speed_m_per_min": speed, "rule": ISOCHRONE_RULE,
                                "synthetic_network": bool(record["synthetic"])}}
                for b, area in zip(budgets, areas, strict=True)]
    return {"type": "FeatureCollection",
            "query": {"lon": lon, "lat": lat, "crs": crs, "by": mode, "minutes": budgets,
                      "coordinates_wgs84": [round(wlon, 7), round(wlat, 7)]},
            "rule": ISOCHRONE_RULE, "synthetic_network": bool(record["synthetic"]), "features": features}


def _outline(area: shapely.Geometry) -> dict[str, Any]:
    """An isochrone (EPSG:4548) as GeoJSON in WGS-84: simplified by :data:`OUTLINE_TOLERANCE_M`, 7 decimals."""
    wgs84 = transform_geometry(shapely.simplify(area, OUTLINE_TOLERANCE_M), from_metric)
    return dict(shapely.geometry.mapping(shapely.transform(wgs84, lambda xy: np.round(xy, 7))))


def check_minutes(minutes: str | Sequence[int]) -> list[int]:
    """The budgets (whole minutes) sorted, each once.

    Raises
    ------
    InvalidRequest
        ``parameter="minutes"`` unless 1 to :data:`MAX_BUDGETS` whole numbers
        from 1 to :data:`MAX_MINUTES` (a string: separated by commas).
    """
    allowed = {"min": 1, "max": MAX_MINUTES, "max_items": MAX_BUDGETS}
    said = minutes if isinstance(minutes, str) else ",".join(str(v) for v in minutes)
    parts = [p.strip() for p in said.split(",")]
    if not 1 <= len(parts) <= MAX_BUDGETS or not all(p.isdigit() and 1 <= int(p) <= MAX_MINUTES for p in parts):
        raise InvalidRequest(f"minutes was {said[:40]!r} but must be 1 to {MAX_BUDGETS} whole numbers of minutes, "
                             f"each from 1 to {MAX_MINUTES}, separated by commas", parameter="minutes",
                             allowed=allowed)
    return sorted({int(p) for p in parts})


def travel_speed(mode: str, walk_speed_m_per_min: float | None = None) -> float:
    """Metres per minute of a travel mode: the deployment's walking speed when given, else ``layers.modes``."""
    if mode == "walk" and walk_speed_m_per_min is not None:
        return float(walk_speed_m_per_min)
    return MODES[mode].speed_m_per_min
