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

from bisect import bisect_right
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
    parts: list[list[np.ndarray] | None] = []  # per destination its route's pieces (None: unreachable)
    by_vertices: list[tuple[int, np.ndarray]] = []  # (destination, vertex path) of the routes along the roads
    leaving: dict[float, np.ndarray] = {}  # the start's own edge up to where routes leave it: one per end
    for i in range(len(destinations)):
        e2, b = int(destinations.edge[i]), float(destinations.along_m[i])
        via = _arrival(graph, tree, e2, b) if e1 >= 0 and e2 >= 0 else None
        if via is None:
            parts.append(None)
        elif via == -2:
            parts.append([o.point_xy[:1], _piece(graph, ix, e1, a, b), destinations.point_xy[i:i + 1]])
        else:
            path = _vertex_path(tree, via)
            exit_along = tree.exit_along[int(path[0])]
            if exit_along not in leaving:
                leaving[exit_along] = _piece(graph, ix, e1, a, exit_along)
            by_vertices.append((i, path))
            parts.append([o.point_xy[:1], leaving[exit_along], np.empty((0, 2)),
                          _piece(graph, ix, e2, 0.0 if via == graph.source[e2] else float(graph.length_m[e2]), b),
                          destinations.point_xy[i:i + 1]])
    for (i, _), xy in zip(by_vertices, _edges_xy(graph, ix, [path for _, path in by_vertices]), strict=True):
        parts[i][2] = xy  # type: ignore[index]
    return _without_repeats([None if p is None else np.concatenate(p) for p in parts])


def _without_repeats(lines: list[np.ndarray | None]) -> list[np.ndarray]:
    """Each line without the points that repeat the one before them (within 1e-9 m), all lines at once;
    None becomes an empty line."""
    sizes = [0 if xy is None else len(xy) for xy in lines]
    if not sum(sizes):
        return [np.empty((0, 2)) for _ in lines]
    xy = np.concatenate([line for line in lines if line is not None and len(line)])
    keep = np.ones(len(xy), dtype=bool)
    keep[1:] = np.abs(np.diff(xy, axis=0)).max(axis=1) > 1e-9
    starts = np.cumsum([0] + [n for n in sizes if n][:-1])
    keep[starts] = True  # each line keeps its first point
    kept = np.add.reduceat(keep, starts).tolist()
    xy = np.asarray(xy[keep], dtype=float)
    out, at, counts = [], 0, iter(kept)
    for n in sizes:
        if not n:
            out.append(np.empty((0, 2)))
            continue
        size = next(counts)
        out.append(xy[at:at + size])
        at += size
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


def _edges_xy(graph: Graph, ix: RouteIndex, paths: list[np.ndarray]) -> list[np.ndarray]:
    """Per vertex path, the coordinates of the edges behind its consecutive vertices, each drawn in travel
    direction (all paths in one pass)."""
    arcs = [max(len(path) - 1, 0) for path in paths]
    if not sum(arcs):
        return [np.empty((0, 2)) for _ in paths]
    tail = np.concatenate([path[:-1] for path in paths])
    head = np.concatenate([path[1:] for path in paths])
    edges = graph.arc_edge[np.searchsorted(ix.arc_key, tail * graph.n_vertices + head)]
    first, size = ix.start[edges], ix.start[edges + 1] - ix.start[edges]
    backward = graph.source[edges] != tail
    within = np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size, size)
    within = np.where(np.repeat(backward, size), np.repeat(size, size) - 1 - within, within)
    xy = np.asarray(ix.coords[np.repeat(first, size) + within], dtype=float)
    bounds = np.concatenate([[0], np.cumsum(size)])[np.concatenate([[0], np.cumsum(arcs)])].tolist()
    return [xy[bounds[j]:bounds[j + 1]] for j in range(len(paths))]


def _piece(graph: Graph, ix: RouteIndex, e: int, from_m: float, to_m: float) -> np.ndarray:
    """Coordinates of edge ``e`` from ``from_m`` to ``to_m`` metres along it (reversed when from > to).

    Metres along are in proportion to the drawn length, as the snapping rule
    splits an edge; the ends are interpolated on the segment they fall in
    (:func:`_at`). An edge has a handful of points, so this is plain Python.
    """
    length = float(graph.length_m[e])
    first, last = int(ix.start[e]), int(ix.start[e + 1])
    xy, cum = ix.coords[first:last].tolist(), ix.cum[first:last].tolist()
    total = cum[-1]
    if total <= 0 or length <= 0:
        return np.array(xy[:1], dtype=float)
    lo, hi = sorted((min(max(from_m / length, 0.0), 1.0) * total, min(max(to_m / length, 0.0), 1.0) * total))
    out = [_at(cum, xy, lo), *(p for c, p in zip(cum, xy, strict=True) if lo < c < hi), _at(cum, xy, hi)]
    if from_m > to_m:
        out.reverse()
    return np.array(out, dtype=float)


def _at(cum: list[float], xy: list[list[float]], at: float) -> list[float]:
    """The point ``at`` metres along a line (``cum``: metres along at each point ``xy``): what ``numpy.interp``
    gives for each coordinate, with its arithmetic (the segment's slope times the way into it)."""
    if at >= cum[-1]:
        return xy[-1]
    if at < cum[0]:
        return xy[0]
    j = bisect_right(cum, at) - 1
    step = cum[j + 1] - cum[j]
    return [(xy[j + 1][0] - xy[j][0]) / step * (at - cum[j]) + xy[j][0],
            (xy[j + 1][1] - xy[j][1]) / step * (at - cum[j]) + xy[j][1]]
