"""An independent model of the road network for the tests: networkx on the edges read with SQL.

Nothing here calls the project's graph code. Edges come from ``road_edge``
(geometry transformed to EPSG:4548 by PostGIS); a point joins the network by
the stated snapping rule, implemented by brute force: the nearest edge over
all edges (shapely distance), the position on it as a fraction of its drawn
length, the edge's geodesic length split in that proportion, and the straight
access leg as an edge of its own. Points on one edge are chained in order
along it. Walking ignores one-way rules; 0 m may be travelled either way.
"""
from __future__ import annotations

from collections.abc import Hashable, Iterable

import networkx as nx
import numpy as np
import shapely
from sqlalchemy import text

_EDGES = text("SELECT id, source, target, length_m, walk, cost, reverse_cost,"
              " ST_AsBinary(ST_Transform(geom, 4548)) AS wkb FROM road_edge WHERE {mode} ORDER BY id")


class RoadModel:
    """The ``mode`` (walk or drive) network as a networkx DiGraph, with points inserted on demand."""

    def __init__(self, engine, mode: str = "walk") -> None:
        with engine.connect() as conn:
            rows = conn.execute(text(_EDGES.text.format(mode=mode))).all()
        self.mode = mode
        self.source = np.array([r.source for r in rows])
        self.target = np.array([r.target for r in rows])
        self.length = np.array([r.length_m for r in rows], dtype=float)
        self.forward = np.array([True if mode == "walk" else r.cost >= 0 for r in rows])
        self.backward = np.array([True if mode == "walk" else r.reverse_cost >= 0 for r in rows])
        self.lines = shapely.from_wkb([bytes(r.wkb) for r in rows])
        self.g = nx.DiGraph()
        for i in range(len(rows)):
            self._arc(int(self.source[i]), int(self.target[i]), self.length[i], self.forward[i], self.backward[i])

    def _arc(self, a: Hashable, b: Hashable, w: float, forward: bool, backward: bool) -> None:
        for u, v, ok in ((a, b, forward or w == 0), (b, a, backward or w == 0)):
            if ok and u != v and (not self.g.has_edge(u, v) or self.g[u][v]["w"] > w):
                self.g.add_edge(u, v, w=float(w))

    def snap(self, xy: np.ndarray) -> tuple[int, float, float]:
        """``(edge index, fraction along its drawn line, access metres)`` of a point (EPSG:4548), brute force."""
        point = shapely.Point(xy)
        dist = shapely.distance(self.lines, point)
        e = int(np.argmin(dist))
        return e, float(shapely.line_locate_point(self.lines[e], point, normalized=True)), float(dist[e])

    def insert(self, named: dict[Hashable, tuple[float, float]]) -> None:
        """Insert points (EPSG:4548) as nodes named by their keys, each joined by its access leg (call once:
        points on one edge are chained along it)."""
        on_edge: dict[int, list[tuple[float, Hashable]]] = {}
        for name, xy in named.items():
            e, f, access = self.snap(np.asarray(xy, dtype=float))
            on_edge.setdefault(e, []).append((f, ("on", name)))
            self._arc(name, ("on", name), access, True, True)
        for e, stops in on_edge.items():
            chain = [(0.0, int(self.source[e])), *sorted(stops, key=lambda s: s[0]), (1.0, int(self.target[e]))]
            for (f0, a), (f1, b) in zip(chain[:-1], chain[1:], strict=True):
                self._arc(a, b, (f1 - f0) * self.length[e], bool(self.forward[e]), bool(self.backward[e]))

    def distances_from(self, name: Hashable, cutoff: float | None = None) -> dict[Hashable, float]:
        """Metres from the node ``name`` to every node reached (within ``cutoff``)."""
        return nx.single_source_dijkstra_path_length(self.g, name, cutoff=cutoff, weight="w")


def nearest_of(distances: dict[Hashable, float], names: Iterable[Hashable]) -> list[tuple[Hashable, float]]:
    """``(name, metres)`` of the reached ``names``, nearest first."""
    return sorted(((n, distances[n]) for n in names if n in distances), key=lambda t: (t[1], str(t[0])))
