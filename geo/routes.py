"""From one start to many destinations on a road graph: distances at once, then the routes of the few kept.

Pure (numpy, shapely), on :mod:`geo.network`'s :class:`~geo.network.Graph`,
:class:`~geo.network.Snapped` points and single-source
:class:`~geo.network.Tree`; EPSG:4548 metres. The rules are the network
module's (snapping onto the nearest edge position, access legs counted, 0 m
travelled either way): :func:`distances_to` gives, for every destination at
once, the metres :func:`geo.network.route_to` would report, and
:func:`route_lines` recovers a route's geometry with array operations instead
of one Python step per edge.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from geo.network import MIN_COST_M, Graph, Snapped, Tree


@dataclass(frozen=True)
class RouteIndex:
    """What recovering routes on one graph needs, built once (:func:`route_index`), EPSG:4548.

    ``arc_key`` is ``tail * n + head`` of every arc in CSR order (ascending);
    edge ``e``'s drawn coordinates are ``coords[start[e]:start[e + 1]]`` and
    ``cum`` the planar metres along it at each of them.
    """

    arc_key: np.ndarray
    coords: np.ndarray
    start: np.ndarray
    cum: np.ndarray


def route_index(graph: Graph) -> RouteIndex:
    """The :class:`RouteIndex` of ``graph``."""
    n = graph.n_vertices
    arc_key = np.repeat(np.arange(n, dtype=np.int64), np.diff(graph.arcs.indptr)) * n + graph.arcs.indices
    coords, owner = shapely.get_coordinates(graph.lines, return_index=True)
    start = np.searchsorted(owner, np.arange(graph.n_edges + 1))
    step = np.hypot(*np.diff(coords, axis=0, prepend=coords[:1]).T) if len(coords) else np.zeros(0)
    step[start[:-1][start[:-1] < len(step)]] = 0.0  # each edge starts at 0 m
    cum = np.cumsum(step)
    cum -= np.repeat(cum[np.minimum(start[:-1], max(len(cum) - 1, 0))] if len(cum) else np.zeros(0),
                     np.diff(start))
    return RouteIndex(arc_key, np.asarray(coords, dtype=float), start, cum)


def distances_to(graph: Graph, tree: Tree, destinations: Snapped) -> np.ndarray:
    """Metres from the tree's start to each snapped destination (both access legs included); inf when
    unreachable within the tree's limit or unsnapped.

    Parameters
    ----------
    graph : Graph
    tree : Tree
        From :func:`geo.network.shortest_paths` (one start).
    destinations : Snapped
        Any number of points.

    Returns
    -------
    numpy.ndarray
        One distance per destination, metres; the minimum of arriving from the
        destination edge's source (travelling forward), from its target
        (backward) and, on the start's own edge, straight along it.
    """
    e = destinations.edge
    ok = e >= 0
    e = np.where(ok, e, 0)
    b = destinations.along_m
    rest = graph.length_m[e] - b
    from_src = np.where(graph.forward[e] | (b <= MIN_COST_M), tree.dist[graph.source[e]] + b, np.inf)
    from_tgt = np.where(graph.backward[e] | (rest <= MIN_COST_M), tree.dist[graph.target[e]] + rest, np.inf)
    best = np.minimum(from_src, from_tgt)
    start_edge, a = int(tree.origin.edge[0]), float(tree.origin.along_m[0])
    if start_edge >= 0:
        same = ok & (e == start_edge)
        allowed = same & (((b >= a) & graph.forward[start_edge]) | ((b <= a) & graph.backward[start_edge]))
        best = np.where(allowed, np.minimum(best, float(tree.origin.access_m[0]) + np.abs(b - a)), best)
    best = best + destinations.access_m
    return np.asarray(np.where(ok & np.isfinite(best), best, np.inf), dtype=float)


def route_lines(graph: Graph, tree: Tree, destinations: Snapped, index: RouteIndex | None = None) -> list[np.ndarray]:
    """Per destination, the coordinates (EPSG:4548, ``(n, 2)``) of the shortest route from the tree's start.

    From the start point, along its access leg, the roads, and the
    destination's access leg to the destination point: the route
    :func:`geo.network.route_to` finds, recovered with array operations
    (``index``: the graph's :class:`RouteIndex`, made here when not given).
    Empty for a destination that is unreachable.
    """
    o = tree.origin
    e1, a = int(o.edge[0]), float(o.along_m[0])
    ix = route_index(graph) if index is None else index
    out = []
    for i in range(len(destinations)):
        e2, b = int(destinations.edge[i]), float(destinations.along_m[i])
        via = _arrival(graph, tree, e2, b) if e1 >= 0 and e2 >= 0 else None
        if via is None:
            out.append(np.empty((0, 2)))
            continue
        parts = [o.point_xy[:1]]
        if via == -2:
            parts.append(_piece(graph, ix, e1, a, b))
        else:
            path = _vertex_path(tree, via)
            parts.append(_piece(graph, ix, e1, a, tree.exit_along[int(path[0])]))
            parts.append(_edges_xy(graph, ix, path))
            parts.append(_piece(graph, ix, e2, 0.0 if via == graph.source[e2] else float(graph.length_m[e2]), b))
        parts.append(destinations.point_xy[i:i + 1])
        xy = np.concatenate(parts)
        keep = np.concatenate([[True], np.any(np.abs(np.diff(xy, axis=0)) > 1e-9, axis=1)])
        out.append(np.asarray(xy[keep], dtype=float))
    return out


def _arrival(graph: Graph, tree: Tree, e2: int, b: float) -> int | None:
    """How the best route reaches position ``b`` on edge ``e2``: via its source or target vertex, or -2
    straight along the start's own edge; None when it cannot."""
    o = tree.origin
    e1, a = int(o.edge[0]), float(o.along_m[0])
    src, tgt = int(graph.source[e2]), int(graph.target[e2])
    rest = float(graph.length_m[e2]) - b
    ways = [(float(tree.dist[src]) + b if graph.forward[e2] or b <= MIN_COST_M else np.inf, src),
            (float(tree.dist[tgt]) + rest if graph.backward[e2] or rest <= MIN_COST_M else np.inf, tgt)]
    if e1 == e2 and ((b >= a and graph.forward[e2]) or (b <= a and graph.backward[e2])):
        ways.append((float(o.access_m[0]) + abs(b - a), -2))
    best, via = min(ways)
    return via if np.isfinite(best) else None


def _vertex_path(tree: Tree, end: int) -> np.ndarray:
    """Vertex positions from where the route leaves the start's edge to ``end``, by the predecessors."""
    path = [end]
    pred = tree.pred
    while pred[path[-1]] >= 0:
        path.append(int(pred[path[-1]]))
    return np.asarray(path[::-1], dtype=np.int64)


def _edges_xy(graph: Graph, ix: RouteIndex, path: np.ndarray) -> np.ndarray:
    """Coordinates of the edges behind consecutive vertices of ``path``, each drawn in travel direction."""
    if len(path) < 2:
        return np.empty((0, 2))
    tail, head = path[:-1], path[1:]
    edges = graph.arc_edge[np.searchsorted(ix.arc_key, tail * graph.n_vertices + head)]
    first, size = ix.start[edges], ix.start[edges + 1] - ix.start[edges]
    backward = graph.source[edges] != tail
    within = np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size, size)
    within = np.where(np.repeat(backward, size), np.repeat(size, size) - 1 - within, within)
    return np.asarray(ix.coords[np.repeat(first, size) + within], dtype=float)


def _piece(graph: Graph, ix: RouteIndex, e: int, from_m: float, to_m: float) -> np.ndarray:
    """Coordinates of edge ``e`` from ``from_m`` to ``to_m`` metres along it (reversed when from > to).

    Metres along are in proportion to the drawn length, as the snapping rule
    splits an edge; the ends are interpolated on the segment they fall in.
    """
    length = float(graph.length_m[e])
    xy, cum = ix.coords[ix.start[e]:ix.start[e + 1]], ix.cum[ix.start[e]:ix.start[e + 1]]
    total = float(cum[-1])
    if total <= 0 or length <= 0:
        return np.asarray(xy[:1], dtype=float)
    lo, hi = sorted((min(max(from_m / length, 0.0), 1.0) * total, min(max(to_m / length, 0.0), 1.0) * total))
    ends = np.column_stack([np.interp([lo, hi], cum, xy[:, 0]), np.interp([lo, hi], cum, xy[:, 1])])
    out = np.concatenate([ends[:1], xy[(cum > lo) & (cum < hi)], ends[1:]])
    return np.asarray(out if from_m <= to_m else out[::-1], dtype=float)
