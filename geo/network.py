"""Shortest paths on a road network: graph, snapping, routes, multi-source distances, isochrones.

Pure: numpy, scipy and shapely; no database, no layer registry. Positions and geometry are EPSG:4548
metres (``geo.crs.METRIC_EPSG``); costs are the edges' geodesic lengths in metres. One graph serves one
travel mode: built from the edges that mode may use, each saying whether it may be travelled along
(``forward``) and against (``backward``) its drawing direction.

The rules, stated once:

* **Costs.** An edge costs its length in each direction it allows; of parallel edges between two
  vertices the shortest counts. A zero-length edge costs :data:`MIN_COST_M`, so the sparse graph keeps it.
* **Coincident roads** (two edges between the same vertices along the same line) are one road
  (:mod:`geo.network_edges`): one copy stays, travelled every way either copy allows.
* **Snapping.** A point joins the network at the nearest position *on* an edge (the foot of the
  perpendicular in EPSG:4548, not the nearest vertex; of equally near edges, the first in the graph's
  order, i.e. the lowest id as the database lists them). The edge's length is split in proportion to that
  position along its drawn line; 0 m of an edge may be travelled either way, so a point at a vertex
  leaves by that vertex even on a one-way road. The straight walk from the point to that position, the
  *access leg*, is part of every distance reported, so a network distance is never below the straight line.
* **Isochrones.** The area reachable within a budget is every part of every edge reachable within it
  (the start's access leg counted against the budget), widened by ``buffer_m``
  (:data:`ISOCHRONE_BUFFER_M`, the last steps from the road to a door) and dissolved. Roads across a
  river without a bridge stay outside, where a hull of the reachable vertices would take them in.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra
from shapely.ops import substring

from geo.errors import GeoError
from geo.network_edges import merge_coincident, positions

#: Cost of a zero-length edge (metres): small enough to change no distance that is reported.
MIN_COST_M = 1e-6

#: Width (metres) added around the reachable road parts to make an isochrone polygon.
ISOCHRONE_BUFFER_M = 50.0

_NO_PRED = -9999


@dataclass(frozen=True)
class Graph:
    """A road graph for one travel mode (EPSG:4548 metres); functions work on positions ``0..n-1``.

    ``vertex_id``/``edge_id`` are the caller's ids (e.g. database ids). Per
    edge: ``source``/``target`` vertex positions in drawing direction,
    ``length_m`` (geodesic metres), ``forward``/``backward`` (may travel
    source → target / target → source), ``lines`` (drawn source to target).
    ``arcs`` (CSR) holds the cheapest cost of each directed arc, ``arc_edge`` the edge behind it.
    """

    vertex_id: np.ndarray
    vertex_xy: np.ndarray
    edge_id: np.ndarray
    source: np.ndarray
    target: np.ndarray
    length_m: np.ndarray
    forward: np.ndarray
    backward: np.ndarray
    lines: np.ndarray
    arcs: csr_array
    arc_edge: np.ndarray
    tree: shapely.STRtree

    @property
    def n_vertices(self) -> int:
        return int(len(self.vertex_id))

    @property
    def n_edges(self) -> int:
        return int(len(self.edge_id))


def build_graph(vertex_id: np.ndarray, vertex_xy: np.ndarray, edge_id: np.ndarray, source: np.ndarray,
                target: np.ndarray, length_m: np.ndarray, forward: np.ndarray, backward: np.ndarray,
                lines: np.ndarray) -> Graph:
    """A :class:`Graph` from edge arrays: ``source``/``target`` hold vertex *ids* (as in ``vertex_id``),
    ``lines`` are LineStrings in EPSG:4548 metres drawn from source to target, ``length_m`` geodesic metres."""
    vertex_id = np.asarray(vertex_id, dtype=np.int64)
    if np.any(np.diff(vertex_id) <= 0):
        raise GeoError("vertex ids must be unique and in ascending order")
    sizes = {name: len(arr) for name, arr in (("edge_id", edge_id), ("source", source), ("target", target),
             ("length_m", length_m), ("forward", forward), ("backward", backward), ("lines", lines))}
    if len(set(sizes.values())) > 1:
        raise GeoError(f"edge arrays must have one value per edge; their lengths were {sizes}")
    length = np.asarray(length_m, dtype=float)
    if not np.all(np.isfinite(length) & (length >= 0)):
        raise GeoError("edge lengths must be finite metres >= 0")
    src = positions(vertex_id, np.asarray(source, dtype=np.int64), "source vertex")
    tgt = positions(vertex_id, np.asarray(target, dtype=np.int64), "target vertex")
    drawn = np.asarray(lines, dtype=object)
    keep, fwd, bwd = merge_coincident(src, tgt, np.asarray(forward, dtype=bool), np.asarray(backward, dtype=bool),
                                      drawn)
    src, tgt, length, fwd, bwd, drawn = src[keep], tgt[keep], length[keep], fwd[keep], bwd[keep], drawn[keep]
    arcs, arc_edge = _arcs(len(vertex_id), src, tgt, length, fwd, bwd)
    return Graph(vertex_id=vertex_id, vertex_xy=np.asarray(vertex_xy, dtype=float).reshape(-1, 2),
                 edge_id=np.asarray(edge_id, dtype=np.int64)[keep], source=src, target=tgt, length_m=length,
                 forward=fwd, backward=bwd, lines=drawn, arcs=arcs, arc_edge=arc_edge, tree=shapely.STRtree(drawn))


def _arcs(n: int, src: np.ndarray, tgt: np.ndarray, length: np.ndarray, fwd: np.ndarray,
          bwd: np.ndarray) -> tuple[csr_array, np.ndarray]:
    """Directed arcs of the allowed directions, the cheapest of parallel ones, as CSR with the edge behind each."""
    edge = np.arange(len(src))
    tail, head = np.concatenate([src[fwd], tgt[bwd]]), np.concatenate([tgt[fwd], src[bwd]])
    cost = np.maximum(np.concatenate([length[fwd], length[bwd]]), MIN_COST_M)
    idx = np.flatnonzero(tail != head)
    idx = idx[np.lexsort((cost[idx], head[idx], tail[idx]))]
    first = np.concatenate([[True], (np.diff(tail[idx]) != 0) | (np.diff(head[idx]) != 0)])
    idx = idx[first]
    indptr = np.searchsorted(tail[idx], np.arange(n + 1))
    return csr_array((cost[idx], head[idx], indptr), shape=(n, n)), np.concatenate([edge[fwd], edge[bwd]])[idx]


@dataclass(frozen=True)
class Snapped:
    """Points joined to the network by the snapping rule (module docstring); EPSG:4548 metres.

    Per point: ``point_xy`` the point, ``edge`` the edge position it joins (-1
    when none was within reach), ``along_m`` network metres from that edge's
    source to the joining position ``xy``, ``access_m`` the straight metres
    from the point to ``xy`` (inf when unsnapped).
    """

    point_xy: np.ndarray
    edge: np.ndarray
    along_m: np.ndarray
    access_m: np.ndarray
    xy: np.ndarray

    def __len__(self) -> int:
        return int(len(self.edge))

    def take(self, index: int | Sequence[int] | np.ndarray) -> Snapped:
        """The points at ``index`` (an int keeps a one-point :class:`Snapped`)."""
        i = np.atleast_1d(np.asarray(index))
        return Snapped(self.point_xy[i], self.edge[i], self.along_m[i], self.access_m[i], self.xy[i])


def snap(graph: Graph, xy: np.ndarray, *, max_access_m: float = np.inf) -> Snapped:
    """Join points (``(n, 2)`` EPSG:4548 metres) to the nearest position on an edge; edge -1 beyond ``max_access_m``."""
    pts_xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if not np.all(np.isfinite(pts_xy)):
        raise GeoError("points to snap must be finite EPSG:4548 metres")
    if graph.n_edges == 0:
        raise GeoError("the road network has no edges for this travel mode")
    n, points = len(pts_xy), shapely.points(pts_xy)
    found, dist = graph.tree.query_nearest(points, max_distance=None if np.isinf(max_access_m) else max_access_m,
                                           return_distance=True, all_matches=True)
    order = np.lexsort((found[1], found[0]))  # of equally near edges, the first
    order = order[np.concatenate([[True], np.diff(found[0][order]) != 0])] if len(order) else order
    edge, access, along, at = np.full(n, -1, dtype=np.int64), np.full(n, np.inf), np.zeros(n), pts_xy.copy()
    edge[found[0][order]], access[found[0][order]] = found[1][order], dist[order]
    ok = edge >= 0
    lines = graph.lines[edge[ok]]
    frac = shapely.line_locate_point(lines, points[ok], normalized=True)
    frac = np.where(np.isfinite(frac), frac, 0.0)
    along[ok] = frac * graph.length_m[edge[ok]]
    at[ok] = shapely.get_coordinates(shapely.line_interpolate_point(lines, frac, normalized=True))
    return Snapped(pts_xy, edge, along, access, at)


@dataclass(frozen=True)
class Tree:
    """Shortest metres from one snapped point to every vertex (access leg included; inf when unreached);
    ``pred[v]`` is the vertex before ``v``; paths leave the start's edge at an end ``exit_along[end]`` m along it."""

    origin: Snapped
    dist: np.ndarray
    pred: np.ndarray
    exit_along: dict[int, float]


def _seeds(graph: Graph, origin: Snapped) -> tuple[list[int], list[float], dict[int, float]]:
    """The vertices a start can leave its edge by, the metres to each (access leg included), and where."""
    e, a, acc = int(origin.edge[0]), float(origin.along_m[0]), float(origin.access_m[0])
    if e < 0:
        return [], [], {}
    length = float(graph.length_m[e])
    ends = sorted((acc + cost, int(vertex), along) for allowed, vertex, cost, along in (
        (graph.forward[e] or length - a <= MIN_COST_M, graph.target[e], length - a, length),
        (graph.backward[e] or a <= MIN_COST_M, graph.source[e], a, 0.0))
        if allowed)
    exits: dict[int, float] = {}
    for _, vertex, along in ends:
        exits.setdefault(vertex, along)
    return [v for _, v, _ in ends], [c for c, _, _ in ends], exits


#: Per thread, each graph's arcs with a virtual start vertex ``n`` of two arcs, patched per search.
_with_start = threading.local()
#: Graphs whose extended arcs a thread keeps (one per travel mode and network version in use).
_WITH_START_KEPT = 4


def _from_virtual_start(graph: Graph, seeds: list[int], costs: list[float]) -> csr_array:
    """``graph``'s arcs plus vertex ``n`` with an arc to each of ``seeds`` (one or two, ascending) at ``costs``.

    Built once per graph and thread; a search only rewrites the two arcs of vertex ``n`` (with one seed
    the second is a loop on ``n`` itself, which never shortens a path). Copying every arc per search cost
    more than the search.
    """
    kept: dict[int, tuple[Graph, csr_array]] = getattr(_with_start, "graphs", None) or {}
    _with_start.graphs = kept
    entry = kept.get(id(graph))
    if entry is None or entry[0] is not graph:
        n = graph.n_vertices
        arcs = graph.arcs
        extended = csr_array((np.concatenate([arcs.data, [MIN_COST_M, MIN_COST_M]]),
                              np.concatenate([arcs.indices, [n, n]]).astype(arcs.indices.dtype),
                              np.append(arcs.indptr, arcs.indptr[-1] + 2)), shape=(n + 1, n + 1))
        while len(kept) >= _WITH_START_KEPT:
            kept.pop(next(iter(kept)))
        entry = kept[id(graph)] = (graph, extended)
    extended = entry[1]
    n = graph.n_vertices
    if len(seeds) == 1:
        extended.indices[-2:] = (seeds[0], n)
        extended.data[-2:] = (costs[0], MIN_COST_M)
    else:
        extended.indices[-2:] = seeds
        extended.data[-2:] = costs
    return extended


def shortest_paths(graph: Graph, origin: Snapped, *, limit_m: float = np.inf) -> Tree:
    """Dijkstra from one snapped point (``origin`` of length 1) to every vertex within ``limit_m`` metres."""
    if len(origin) != 1:
        raise GeoError(f"shortest_paths takes one start point, not {len(origin)}")
    n = graph.n_vertices
    dist, pred = np.full(n, np.inf), np.full(n, _NO_PRED, dtype=np.int64)
    verts, costs, exits = _seeds(graph, origin)
    if verts and costs[0] <= limit_m:
        # One Dijkstra from a virtual vertex n joined to each seed at its cost (+ MIN_COST_M, so an arc of
        # 0 m stays in the sparse graph), instead of one per seed.
        first = sorted(dict(zip(reversed(verts), reversed(costs), strict=True)).items())
        arcs = _from_virtual_start(graph, [v for v, _ in first], [c + MIN_COST_M for _, c in first])
        d, p = dijkstra(arcs, directed=True, indices=n, return_predecessors=True, limit=limit_m + MIN_COST_M)
        dist, pred = d[:n] - MIN_COST_M, p[:n].astype(np.int64)
        dist[dist > limit_m] = np.inf
        pred[(pred == n) | ~np.isfinite(dist)] = _NO_PRED
    return Tree(origin, dist, pred, exits)


@dataclass(frozen=True)
class Route:
    """A shortest route (EPSG:4548 metres): ``distance_m`` = ``access_m`` (both access legs) + ``network_m``;
    ``xy`` runs from the start point via the joining positions to the destination (empty when unreachable)."""

    distance_m: float
    network_m: float
    access_m: float
    xy: np.ndarray


def route(graph: Graph, origin: Snapped, destination: Snapped, *, limit_m: float = np.inf) -> Route:
    """The shortest route from ``origin`` to ``destination`` (one snapped point each)."""
    return route_to(graph, shortest_paths(graph, origin, limit_m=limit_m), destination)


def route_to(graph: Graph, tree: Tree, destination: Snapped) -> Route:
    """The shortest route from a :class:`Tree`'s start to one snapped destination."""
    if len(destination) != 1:
        raise GeoError(f"route_to takes one destination, not {len(destination)}")
    o = tree.origin
    e1, a, e2, b = int(o.edge[0]), float(o.along_m[0]), int(destination.edge[0]), float(destination.along_m[0])
    if e1 < 0 or e2 < 0:
        return Route(np.inf, np.inf, np.inf, np.empty((0, 2)))
    src, tgt = int(graph.source[e2]), int(graph.target[e2])
    rest = float(graph.length_m[e2]) - b
    ways = [(float(tree.dist[src]) + b if graph.forward[e2] or b <= MIN_COST_M else np.inf, src),
            (float(tree.dist[tgt]) + rest if graph.backward[e2] or rest <= MIN_COST_M else np.inf, tgt)]
    if e1 == e2 and ((b >= a and graph.forward[e2]) or (b <= a and graph.backward[e2])):
        ways.append((float(o.access_m[0]) + abs(b - a), -2))  # along the start's own edge
    best, via = min(ways)
    if not np.isfinite(best):
        return Route(np.inf, np.inf, np.inf, np.empty((0, 2)))
    access = float(o.access_m[0] + destination.access_m[0])
    total = best + float(destination.access_m[0])
    return Route(total, total - access, access, _route_xy(graph, tree, destination, via))


def _route_xy(graph: Graph, tree: Tree, destination: Snapped, via: int) -> np.ndarray:
    e1, a = int(tree.origin.edge[0]), float(tree.origin.along_m[0])
    e2, b = int(destination.edge[0]), float(destination.along_m[0])
    parts = [tree.origin.point_xy[:1]]
    if via == -2:
        parts.append(_part(graph, e1, a, b))
    else:
        path = [via]
        while tree.pred[path[-1]] != _NO_PRED:
            path.append(int(tree.pred[path[-1]]))
        path.reverse()
        parts.append(_part(graph, e1, a, tree.exit_along[path[0]]))
        parts.extend(_arc_xy(graph, p, q) for p, q in zip(path[:-1], path[1:], strict=True))
        parts.append(_part(graph, e2, 0.0 if via == graph.source[e2] else float(graph.length_m[e2]), b))
    parts.append(destination.point_xy[:1])
    xy = np.concatenate(parts)
    keep = np.concatenate([[True], np.any(np.abs(np.diff(xy, axis=0)) > 1e-9, axis=1)])
    return np.asarray(xy[keep], dtype=float)


def _part(graph: Graph, e: int, from_m: float, to_m: float) -> np.ndarray:
    """Coordinates of edge ``e`` from ``from_m`` to ``to_m`` metres along it (reversed when from > to)."""
    length = float(graph.length_m[e])
    f0, f1 = (from_m / length, to_m / length) if length > 0 else (0.0, 0.0)
    return np.asarray(shapely.get_coordinates(substring(graph.lines[e], f0, f1, normalized=True)), dtype=float)


def _arc_xy(graph: Graph, p: int, q: int) -> np.ndarray:
    lo, hi = graph.arcs.indptr[p], graph.arcs.indptr[p + 1]
    e = int(graph.arc_edge[lo + int(np.flatnonzero(graph.arcs.indices[lo:hi] == q)[0])])
    xy = np.asarray(shapely.get_coordinates(graph.lines[e]), dtype=float)
    return xy if graph.source[e] == p else xy[::-1]


@dataclass(frozen=True)
class SourceField:
    """Metres between every vertex and its nearest source, on the graph cut open at the sources.

    Each source becomes a vertex on its edge (``cut_*``, sorted by edge and
    position, ending in a sentinel) joined by its access leg to a vertex of its
    own. ``dist`` and ``nearest`` (source index, -1 when none within the
    limit) cover the graph's vertices, then the cut vertices.
    """

    towards_sources: bool
    limit_m: float
    dist: np.ndarray
    nearest: np.ndarray
    cut_edge: np.ndarray
    cut_along: np.ndarray
    cut_key: np.ndarray
    cut_vertex: np.ndarray
    key_base: np.ndarray


def source_field(graph: Graph, sources: Snapped, *, limit_m: float = np.inf,
                 towards_sources: bool = True) -> SourceField:
    """One multi-source Dijkstra (``scipy.sparse.csgraph.dijkstra(min_only=True)``) from every source at once.

    ``towards_sources``: the way from each vertex *to* its nearest source (a
    resident going to a facility, one-way rules followed); else from the source.
    """
    n, order = graph.n_vertices, np.lexsort((sources.along_m, sources.edge))
    order = order[sources.edge[order] >= 0]
    k = len(order)  # sources on the network: each cuts its edge at a new vertex n + i, its own vertex n + k + i
    ce, ca, cv, own = sources.edge[order], sources.along_m[order], n + np.arange(k), n + k + np.arange(k)
    first = np.concatenate([[True], ce[1:] != ce[:-1]])
    last = np.concatenate([ce[1:] != ce[:-1], [True]])
    whole = np.flatnonzero(~np.isin(np.arange(graph.n_edges), ce))
    tails = [graph.source[whole], np.where(first, graph.source[ce], np.roll(cv, 1)), cv[last], own, cv]
    heads = [graph.target[whole], cv, graph.target[ce[last]], cv, own]
    acc = np.maximum(sources.access_m[order], MIN_COST_M)
    lengths = np.maximum(np.concatenate([graph.length_m[whole], ca - np.where(first, 0.0, np.roll(ca, 1)),
                                         graph.length_m[ce[last]] - ca[last], acc, acc]), 0.0)
    parents, both = np.concatenate([whole, ce, ce[last]]), np.ones(2 * k, dtype=bool)
    nil = lengths <= MIN_COST_M  # 0 m may be travelled either way, even on a one-way road
    arcs, _ = _arcs(n + 2 * k, np.concatenate(tails), np.concatenate(heads), lengths,
                    np.concatenate([graph.forward[parents], both]) | nil,
                    np.concatenate([graph.backward[parents], both]) | nil)
    dist, nearest = np.full(n + 2 * k, np.inf), np.full(n + 2 * k, -1, dtype=np.int64)
    if k:
        dist, _, src = dijkstra(csr_array(arcs.T) if towards_sources else arcs, directed=True, indices=own,
                                min_only=True, limit=limit_m, return_predecessors=True)
        nearest = np.where(src >= 0, order[np.maximum(src - n - k, 0)], -1)
    base = np.concatenate([[0.0], np.cumsum(graph.length_m + 1.0)])[:-1]
    return SourceField(towards_sources, limit_m, dist[:n + k], nearest[:n + k], np.append(ce, -1), np.append(ca, 0.0),
                       np.append(base[ce] + ca, np.inf), np.append(cv, 0), base)


def distances_at(graph: Graph, field: SourceField, points: Snapped) -> tuple[np.ndarray, np.ndarray]:
    """``(distance_m, source_index)`` per snapped point: metres to (or from) its nearest source, access
    legs included, and which source; inf and -1 where none is within the field's limit."""
    ok = points.edge >= 0
    e, b = np.where(ok, points.edge, 0), points.along_m
    j = np.searchsorted(field.cut_key, field.key_base[e] + b, side="right")
    has_left, has_right = field.cut_edge[j - 1] == e, field.cut_edge[j] == e
    left = np.where(has_left, field.cut_vertex[j - 1], graph.source[e])
    right = np.where(has_right, field.cut_vertex[j], graph.target[e])
    left_a = np.where(has_left, field.cut_along[j - 1], 0.0)
    right_a = np.where(has_right, field.cut_along[j], graph.length_m[e])
    to_left, to_right = (graph.backward[e], graph.forward[e]) if field.towards_sources else \
        (graph.forward[e], graph.backward[e])
    to_left, to_right = to_left | (b - left_a <= MIN_COST_M), to_right | (right_a - b <= MIN_COST_M)
    via_left = np.where(to_left, field.dist[left] + (b - left_a), np.inf)
    via_right = np.where(to_right, field.dist[right] + (right_a - b), np.inf)
    dist = np.minimum(via_left, via_right) + points.access_m
    dist = np.where(ok & (dist <= field.limit_m), dist, np.inf)
    nearest = np.where(via_right < via_left, field.nearest[right], field.nearest[left])
    return dist, np.where(np.isfinite(dist), nearest, -1)


def isochrones(graph: Graph, origin: Snapped, budgets_m: Sequence[float], *,
               buffer_m: float = ISOCHRONE_BUFFER_M) -> list[shapely.Geometry]:
    """Per budget (metres), the area reachable from one snapped point by the module docstring's rule.

    One (Multi)Polygon per budget, EPSG:4548 metres; empty when even the access leg is over budget.
    """
    budgets = [float(c) for c in budgets_m]
    if not budgets or min(budgets) <= 0 or buffer_m <= 0:
        raise GeoError("isochrone budgets and buffer_m must be positive metres")
    tree = shortest_paths(graph, origin, limit_m=max(budgets))
    return [_reachable_area(graph, tree, c, buffer_m) for c in budgets]


def _reachable_area(graph: Graph, tree: Tree, budget: float, buffer_m: float) -> shapely.Geometry:
    length = graph.length_m
    from_src = np.where(graph.forward, budget - tree.dist[graph.source], -np.inf)
    from_tgt = np.where(graph.backward, budget - tree.dist[graph.target], -np.inf)
    full = (np.maximum(from_src, 0) + np.maximum(from_tgt, 0) >= length) & ((from_src >= 0) | (from_tgt >= 0))
    parts = list(graph.lines[full])
    for i in np.flatnonzero(~full & (from_src > 0)):
        parts.append(substring(graph.lines[i], 0.0, from_src[i] / length[i], normalized=True))
    for i in np.flatnonzero(~full & (from_tgt > 0)):
        parts.append(substring(graph.lines[i], 1.0 - from_tgt[i] / length[i], 1.0, normalized=True))
    e, a, left = int(tree.origin.edge[0]), float(tree.origin.along_m[0]), budget - float(tree.origin.access_m[0])
    if e >= 0 and left >= 0:
        parts.append(shapely.LineString([tree.origin.point_xy[0], tree.origin.xy[0]]))
        ahead = min(float(length[e]), a + left) if graph.forward[e] else a
        behind = max(0.0, a - left) if graph.backward[e] else a
        xy = _part(graph, e, behind, ahead)
        parts.append(shapely.LineString(xy) if len(xy) > 1 else shapely.Point(xy[0]))
    # One buffer per part, then one union: GEOS buffers a whole MultiLineString ~100 times slower.
    return shapely.union_all(shapely.buffer(parts, buffer_m, quad_segs=4)) if parts else shapely.Polygon()
