"""A synthetic road network for the demo city, written as an OpenStreetMap XML file.

The demo has no real roads, so it gets generated ones that the real importer
(``flask etl roads``) reads like any OSM extract. Every way is tagged
``synthetic=yes`` and named "…（合成）". The layout, in EPSG:4548 metres, all
drawn from one seed:

* **Street grids**: 250 m squares within 2 km of each district seat and
  750 m of each town, kept inside the districts.
* **Arterials** between the places (seats and towns): the minimum spanning
  tree of their Delaunay triangulation plus every seat-to-seat Delaunay edge,
  from the grid corner facing the other place, gently bowed.
* **Rural roads** to every village: the minimum spanning tree over villages
  and the road nodes already drawn (so each village joins the nearest
  road or village), plus half of the other links to neighbours within
  2.5 km, so that the countryside is a mesh, as real village roads are, not
  a tree (a tree makes neighbours tens of kilometres apart by road).
* **Barriers**: a river running west-east between the southernmost seat and
  the next, and a railway running north-south between the westernmost seat
  and the next. Roads cross them only on ``bridge=yes`` ways, where a real
  city has them (:mod:`demo.crossings`): on every arterial, on every fourth
  street of a town grid (one a kilometre) and on a county road every few
  kilometres in the countryside; so near a barrier, away from a crossing,
  the network distance is far longer than the straight line.
* Any piece left unconnected is joined to the rest by the shortest link that
  crosses no barrier.

:func:`build_demo_roads` is pure (plain inputs, a :class:`DemoRoads` out);
:func:`write_osm` writes it; :func:`write_demo_roads` does both.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import numpy as np
import shapely
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.spatial import Delaunay, cKDTree

from demo.city import DemoCity
from demo.crossings import GRID_CROSSING_EVERY, Barrier, barriers_crossed, rural_crossings
from geo.crs import from_metric, to_metric, transform_geometry

SPACING_M = 250.0
SEAT_HALF_M = 2000.0
TOWN_HALF_M = 750.0
ARTERIAL_STEP_M = 400.0
#: Neighbouring villages (Delaunay) within this many metres are linked with this probability, besides the tree.
EXTRA_LINK_M = 2500.0
EXTRA_LINK_SHARE = 0.5
MAX_RURAL_M = 8000.0
SUFFIX = "（合成）"


@dataclass(frozen=True)
class Place:
    """A named position, WGS-84 degrees."""

    name: str
    lon: float
    lat: float


@dataclass
class DemoRoads:
    """The generated network. Node ``i + 1`` is at ``lonlat[i]`` (WGS-84).

    ``ways`` are ``(node ids, tags)``; ``river`` and ``railway`` are WGS-84
    LineStrings; ``bridges`` are the WGS-84 midpoints of the road pieces that
    cross the river, ``rail_crossings`` those that cross the railway.
    """

    lonlat: np.ndarray
    ways: list[tuple[list[int], dict[str, str]]]
    river: shapely.LineString
    railway: shapely.LineString
    bridges: np.ndarray
    rail_crossings: np.ndarray


@dataclass
class _Builder:
    xy: list[tuple[float, float]] = field(default_factory=list)
    ways: list[tuple[list[int], dict[str, str]]] = field(default_factory=list)

    def node(self, x: float, y: float) -> int:
        self.xy.append((float(x), float(y)))
        return len(self.xy)

    def way(self, nodes: list[int], highway: str, name: str, **extra: str) -> None:
        if len(nodes) >= 2:
            self.ways.append((nodes, {"highway": highway, "name": name + SUFFIX, "synthetic": "yes", **extra}))


def build_demo_roads(seats: Sequence[Place], towns: Sequence[Place], villages: Sequence[Place],
                     districts: Sequence[shapely.Geometry], *, seed: int = 20221) -> DemoRoads:
    """The synthetic network for the given places inside the given district polygons (WGS-84).

    Raises
    ------
    ValueError
        With fewer than three seats (the barriers are placed between seats) or
        no district polygon.
    """
    if len(seats) < 3 or not districts:  # three seats: a triangulation, and barriers between seats
        raise ValueError(f"the demo roads need at least 3 seats and 1 district; got {len(seats)} and "
                         f"{len(districts)}")
    rng = np.random.default_rng(seed)
    city = shapely.union_all([transform_geometry(d, to_metric) for d in districts])
    seat_xy, town_xy, village_xy = (_metric(p) for p in (seats, towns, villages))
    river, railway = _barriers(seat_xy, city, rng)
    crossings = [Barrier(river, "示例河", "大桥"), Barrier(railway, "示例铁路", "跨线桥")]
    barrier = shapely.union_all([river, railway])
    shapely.prepare(barrier)
    b = _Builder()
    places = [*zip(seats, seat_xy, [SEAT_HALF_M] * len(seats), strict=True),
              *zip(towns, town_xy, [TOWN_HALF_M] * len(towns), strict=True)]
    grids = _grids(b, places, city, crossings)
    _arterials(b, places, grids, len(seats), crossings, rng)
    _rural(b, villages, village_xy, barrier, rng)
    for i, crossing in enumerate(crossings):
        for p, q in rural_crossings(np.asarray(b.xy), crossing, crossings[:i] + crossings[i + 1:], city):
            _crossing_way(b, [p + 1, q + 1], "unclassified", "县道", crossings)
    _connect_pieces(b, barrier)
    river_id = [b.node(x, y) for x, y in shapely.get_coordinates(river)]
    rail_id = [b.node(x, y) for x, y in shapely.get_coordinates(railway)]
    b.ways.append((river_id, {"waterway": "river", "name": "示例河" + SUFFIX, "synthetic": "yes"}))
    b.ways.append((rail_id, {"railway": "rail", "name": "示例铁路" + SUFFIX, "synthetic": "yes"}))
    xy = np.asarray(b.xy)
    lon, lat = from_metric(xy[:, 0], xy[:, 1])
    return DemoRoads(np.column_stack([lon, lat]), b.ways, transform_geometry(river, from_metric),
                     transform_geometry(railway, from_metric), _lonlat(crossings[0].at), _lonlat(crossings[1].at))


def _metric(places: Sequence[Place]) -> np.ndarray:
    if not places:
        return np.empty((0, 2))
    x, y = to_metric(np.array([p.lon for p in places]), np.array([p.lat for p in places]))
    return np.column_stack([x, y])


def _lonlat(xy: list[tuple[float, float]]) -> np.ndarray:
    if not xy:
        return np.empty((0, 2))
    arr = np.asarray(xy)
    lon, lat = from_metric(arr[:, 0], arr[:, 1])
    return np.column_stack([lon, lat])


def _barriers(seat_xy: np.ndarray, city: shapely.Geometry,
              rng: np.random.Generator) -> tuple[shapely.LineString, shapely.LineString]:
    """A west-east river between the two southernmost seats, a north-south railway between the two westernmost."""
    minx, miny, maxx, maxy = city.bounds
    y0 = float(np.mean(np.sort(seat_xy[:, 1])[:2]))
    x0 = float(np.mean(np.sort(seat_xy[:, 0])[:2]))
    xs = np.arange(minx - 2000.0, maxx + 2000.0, 250.0)
    ys = np.arange(miny - 2000.0, maxy + 2000.0, 250.0)
    river = np.column_stack([xs, y0 + 1200.0 * np.sin(2 * np.pi * xs / 18_000.0 + rng.uniform(0, 2 * np.pi))])
    rail = np.column_stack([x0 + 600.0 * np.sin(2 * np.pi * ys / 40_000.0 + rng.uniform(0, 2 * np.pi)), ys])
    return shapely.LineString(river), shapely.LineString(rail)


def _grids(b: _Builder, places: list[tuple[Place, np.ndarray, float]], city: shapely.Geometry,
           crossings: list[Barrier]) -> list[dict[tuple[int, int], int]]:
    """Street grids around each place; a node inside an earlier grid's square is left out."""
    done: list[tuple[np.ndarray, float]] = []
    grids = []
    for place, (cx, cy), half in places:
        k = int(half // SPACING_M)
        nodes: dict[tuple[int, int], int] = {}
        for i in range(-k, k + 1):
            for j in range(-k, k + 1):
                x, y = cx + i * SPACING_M, cy + j * SPACING_M
                if any(abs(x - ox) <= oh + SPACING_M / 2 and abs(y - oy) <= oh + SPACING_M / 2
                       for (ox, oy), oh in done) or not city.contains(shapely.Point(x, y)):
                    continue
                nodes[(i, j)] = b.node(x, y)
        for axis in (0, 1):
            for line in range(-k, k + 1):
                _grid_street(b, place, nodes, axis, line, k, crossings)
        done.append((np.array([cx, cy]), half))
        grids.append(nodes)
    return grids


def _grid_street(b: _Builder, place: Place, nodes: dict[tuple[int, int], int], axis: int, line: int, k: int,
                 crossings: list[Barrier]) -> None:
    """One grid line, as ways between breaks (a missing node, or a barrier this street does not cross)."""
    run: list[int] = []
    kind = "东西" if axis == 0 else "南北"
    name = f"{place.name}{kind}{line + k + 1}号路"
    highway = "tertiary" if line == 0 else "residential"
    for step in range(-k, k + 1):
        key = (step, line) if axis == 0 else (line, step)
        nid = nodes.get(key)
        hit = barriers_crossed(crossings, b.xy[run[-1] - 1], b.xy[nid - 1]) if nid is not None and run else []
        if hit or nid is None:
            b.way(run, highway, name)
            if hit and line % GRID_CROSSING_EVERY == 0 and nid is not None:
                _crossing_way(b, [run[-1], nid], highway, name, crossings)
            run = []
        if nid is not None:
            run.append(nid)
    b.way(run, highway, name)


def _arterials(b: _Builder, places: list[tuple[Place, np.ndarray, float]], grids: list[dict[tuple[int, int], int]],
               n_seats: int, crossings: list[Barrier], rng: np.random.Generator) -> None:
    """Roads between places: the spanning tree of their triangulation plus every seat-to-seat edge."""
    xy = np.array([p[1] for p in places])
    pairs = _delaunay_pairs(xy) if len(xy) >= 3 else np.array([[0, 1]])
    length = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T)
    tree = minimum_spanning_tree(coo_array((length, (pairs[:, 0], pairs[:, 1])), shape=(len(xy), len(xy))))
    links = {(int(min(i, j)), int(max(i, j))) for i, j in zip(*tree.nonzero(), strict=True)}
    links |= {(int(i), int(j)) for i, j in _delaunay_pairs(xy[:n_seats])}
    for i, j in sorted(links):
        seats, dist = j < n_seats, float(np.hypot(*(xy[i] - xy[j])))
        start, end = _gate(b, grids[i], xy[i], xy[j]), _gate(b, grids[j], xy[j], xy[i])
        ends = np.array([b.xy[start - 1], b.xy[end - 1]])
        steps = max(2, int(np.hypot(*(ends[1] - ends[0])) // ARTERIAL_STEP_M))
        t = np.linspace(0.0, 1.0, steps + 1)[1:-1]
        normal = np.array([-(ends[1] - ends[0])[1], (ends[1] - ends[0])[0]]) / max(dist, 1.0)
        bow = rng.uniform(-0.04, 0.04) * dist * np.sin(np.pi * t)
        mid = ends[0] + np.outer(t, ends[1] - ends[0]) + np.outer(bow, normal)
        ids = [start, *(b.node(x, y) for x, y in mid), end]
        name = f"{places[i][0].name}—{places[j][0].name}公路"
        _bridged_way(b, ids, "primary" if seats else "secondary", name, crossings)


def _delaunay_pairs(xy: np.ndarray) -> np.ndarray:
    """Unique ``(i, j)`` pairs (i < j) of the Delaunay triangulation's edges."""
    tri = Delaunay(xy).simplices
    pairs = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]])
    return np.unique(np.sort(pairs, axis=1), axis=0)


def _gate(b: _Builder, grid: dict[tuple[int, int], int], centre: np.ndarray, towards: np.ndarray) -> int:
    """The grid node nearest ``towards`` (a new node at the centre when the grid is empty)."""
    if not grid:
        return b.node(*centre)
    ids = list(grid.values())
    pts = np.array([b.xy[i - 1] for i in ids])
    return ids[int(np.argmin(np.hypot(*(pts - towards).T)))]


def _bridged_way(b: _Builder, ids: list[int], highway: str, name: str, crossings: list[Barrier]) -> None:
    """A road whose pieces across the river or the railway become ``bridge=yes`` ways of their own."""
    start = 0
    for k in range(len(ids) - 1):
        if not barriers_crossed(crossings, b.xy[ids[k] - 1], b.xy[ids[k + 1] - 1]):
            continue
        b.way(ids[start:k + 1], highway, name)
        _crossing_way(b, ids[k:k + 2], highway, name.removesuffix("公路"), crossings)
        start = k + 1
    b.way(ids[start:], highway, name)


def _crossing_way(b: _Builder, ids: list[int], highway: str, name: str, crossings: list[Barrier]) -> None:
    """The two-node piece ``ids`` as a ``bridge=yes`` way, recorded on every barrier it crosses."""
    a, z = b.xy[ids[0] - 1], b.xy[ids[1] - 1]
    hit = barriers_crossed(crossings, a, z)
    for barrier in hit:
        barrier.record(a, z)
    if hit:
        b.way(ids, highway, name + hit[0].word, bridge="yes", layer="1")


def _rural(b: _Builder, villages: Sequence[Place], village_xy: np.ndarray, barrier: shapely.Geometry,
           rng: np.random.Generator) -> None:
    """Each village joined by the spanning tree over villages and road nodes, plus short extra links."""
    if not len(villages):
        return
    anchors = np.asarray(b.xy)
    n_a = len(anchors)
    ids = [*range(1, n_a + 1), *(b.node(x, y) for x, y in village_xy)]
    pts = np.vstack([anchors, village_xy])
    pairs = _delaunay_pairs(pts)
    seg = shapely.linestrings(np.stack([pts[pairs[:, 0]], pts[pairs[:, 1]]], axis=1))
    length = shapely.length(seg)
    village_pair = pairs[:, 1] >= n_a
    ok = village_pair & (length <= MAX_RURAL_M) & ~shapely.intersects(seg, barrier)
    weight = np.where(village_pair, length, 1e-3)  # road nodes are already joined to each other
    use = ok | ~village_pair
    tree = minimum_spanning_tree(coo_array((weight[use], (pairs[use, 0], pairs[use, 1])), shape=(len(pts),) * 2))
    in_tree = {(min(i, j), max(i, j)) for i, j in zip(*tree.nonzero(), strict=True)}
    chosen = [k for k in np.flatnonzero(ok) if tuple(pairs[k]) in in_tree
              or (length[k] <= EXTRA_LINK_M and rng.random() < EXTRA_LINK_SHARE)]
    for k in chosen:
        i, j = pairs[k]
        names = [villages[v - n_a].name for v in (i, j) if v >= n_a]
        b.way([ids[i], ids[j]], "unclassified", "—".join(names) + ("村道" if len(names) == 2 else "路"))


def _connect_pieces(b: _Builder, barrier: shapely.Geometry) -> None:
    """Join every piece (or lone node) not reached from the largest piece by the shortest link that crosses
    no barrier; a few passes, since a piece walled in by barriers cannot be joined."""
    for _ in range(5):
        xy = np.asarray(b.xy)
        label = _pieces(b, len(xy))
        main = np.bincount(label).argmax()
        inside = np.flatnonzero(label == main)
        strays = np.unique(label[label != main])
        if not len(strays):
            return
        tree = cKDTree(xy[inside])
        for piece in strays:
            _link(b, xy, np.flatnonzero(label == piece), inside, tree, barrier)


def _pieces(b: _Builder, n: int) -> np.ndarray:
    """Connected piece label per node over the roads drawn so far (a lone node is a piece of its own)."""
    roads = [ids for ids, tags in b.ways if "highway" in tags]
    src = np.concatenate([np.asarray(ids[:-1]) - 1 for ids in roads]) if roads else np.empty(0, dtype=int)
    dst = np.concatenate([np.asarray(ids[1:]) - 1 for ids in roads]) if roads else np.empty(0, dtype=int)
    _, label = connected_components(coo_array((np.ones(len(src)), (src, dst)), shape=(n, n)), directed=False)
    return np.asarray(label)


def _link(b: _Builder, xy: np.ndarray, piece: np.ndarray, inside: np.ndarray, tree: cKDTree,
          barrier: shapely.Geometry) -> None:
    """The shortest of the candidate links from ``piece`` to ``inside`` nodes that crosses no barrier."""
    k = min(16, len(inside))
    dist, near = tree.query(xy[piece], k=k)
    dist, near = np.reshape(dist, (len(piece), k)), np.reshape(near, (len(piece), k))
    for flat in np.argsort(dist, axis=None)[:64]:
        p, q = int(piece[flat // k]), int(inside[near.flat[flat]])
        if not barrier.intersects(shapely.LineString([xy[p], xy[q]])):
            b.way([p + 1, q + 1], "unclassified", "连接路")
            return


def write_osm(roads: DemoRoads, path: Path) -> None:
    """Write ``roads`` as OSM XML (version 0.6) to ``path``."""
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n'
                  '<osm version="0.6" generator="Minsheng Map demo roads (synthetic)">\n')
        for i, (lon, lat) in enumerate(roads.lonlat, start=1):
            out.write(f'  <node id="{i}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>\n')
        for w, (nodes, tags) in enumerate(roads.ways, start=1):
            out.write(f'  <way id="{w}" version="1">\n')
            out.write("".join(f'    <nd ref="{n}"/>\n' for n in nodes))
            out.write("".join(f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>\n" for k, v in tags.items()))
            out.write("  </way>\n")
        out.write("</osm>\n")


def write_demo_roads(path: Path, seats: Sequence[Place], towns: Sequence[Place], villages: Sequence[Place],
                     districts: Sequence[shapely.Geometry], *, seed: int = 20221) -> DemoRoads:
    """:func:`build_demo_roads` then :func:`write_osm` to ``path``; returns the network."""
    roads = build_demo_roads(seats, towns, villages, districts, seed=seed)
    write_osm(roads, path)
    return roads


def demo_places(city: DemoCity, districts: gpd.GeoDataFrame) -> tuple[list[Place], list[Place], list[Place]]:
    """The places the demo city's roads join: the real district seats, the demo's towns and its villages.

    ``districts`` are the real districts (``adcode``, ``name_zh``, ``seat_lon``,
    ``seat_lat``); towns are the city's secondary urban centres, villages its
    synthetic villages (WGS-84).
    """
    seats = [Place(r.name_zh, r.seat_lon, r.seat_lat) for r in districts.itertuples()]
    names = dict(zip(districts["adcode"], districts["name_zh"], strict=True))
    others = city.centres[~city.centres["seat"]]
    towns = [Place(f"{names[a]}示例镇{i}", p.x, p.y)
             for i, (a, p) in enumerate(zip(others["adcode"], others.geometry, strict=True), start=1)]
    villages = [Place(str(n), p.x, p.y) for n, p in zip(city.villages["name"], city.villages.geometry, strict=True)]
    return seats, towns, villages
