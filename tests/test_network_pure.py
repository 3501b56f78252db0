"""The road graph core (geo/network.py) against an independent networkx Dijkstra, no database.

The networkx graphs here are built from the same edge lists but by their own
rules: a snapped point is inserted as a node that splits its edge, so the
cost split and the access legs are checked, not copied.
"""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely
from scipy.spatial import Delaunay

from geo import network, routes
from geo.errors import GeoError


def _random_network(seed: int, n: int = 120, one_way_share: float = 0.0):
    """Random points joined by their Delaunay edges (bowed a little, so lines are not straight)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 5000, (n, 2))
    tri = Delaunay(xy).simplices
    pairs = np.unique(np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]]), axis=1), axis=0)
    keep = rng.random(len(pairs)) > 0.2
    pairs = pairs[keep]
    mid = (xy[pairs[:, 0]] + xy[pairs[:, 1]]) / 2 + rng.normal(0, 40, (len(pairs), 2))
    lines = [shapely.LineString([xy[i], m, xy[j]]) for (i, j), m in zip(pairs, mid, strict=True)]
    length = shapely.length(lines)
    one_way = rng.random(len(pairs)) < one_way_share
    backward = ~one_way
    graph = network.build_graph(np.arange(10, 10 + n), xy, np.arange(1, len(pairs) + 1), pairs[:, 0] + 10,
                                pairs[:, 1] + 10, length, np.ones(len(pairs), bool), backward, np.array(lines))
    return graph, pairs, length, backward


def _nx_graph(pairs, length, backward) -> nx.DiGraph:
    g = nx.DiGraph()
    for (i, j), w, back in zip(pairs, length, backward, strict=True):
        _add(g, int(i), int(j), float(w))
        if back:
            _add(g, int(j), int(i), float(w))
    return g


def _add(g: nx.DiGraph, u, v, w: float) -> None:
    if u != v and (not g.has_edge(u, v) or g[u][v]["w"] > w):
        g.add_edge(u, v, w=w)


def _insert_points(g: nx.DiGraph, named: dict[str, np.ndarray], lines, pairs, length, backward) -> float:
    """Insert each point into ``g`` at the nearest position of the nearest line (brute force), points on
    one line chained in order along it; returns the straight access distances summed."""
    on_edge: dict[int, list[tuple[float, str]]] = {}
    access = 0.0
    for name, xy in named.items():
        point = shapely.Point(xy)
        dist = [line.distance(point) for line in lines]
        e = int(np.argmin(dist))
        on_edge.setdefault(e, []).append((lines[e].project(point, normalized=True), name))
        access += float(dist[e])
    for e, stops in on_edge.items():
        chain = [(0.0, int(pairs[e][0])), *sorted(stops), (1.0, int(pairs[e][1]))]
        for (f0, a), (f1, b) in zip(chain[:-1], chain[1:], strict=True):
            _add(g, a, b, (f1 - f0) * length[e])
            if backward[e] or f1 == f0:  # the stated rule: 0 m may be travelled either way
                _add(g, b, a, (f1 - f0) * length[e])
    return access


class TestAgainstNetworkx:
    @pytest.mark.parametrize("one_way_share", [0.0, 0.3])
    def test_vertex_distances_equal_networkx(self, one_way_share):
        graph, pairs, length, backward = _random_network(1, one_way_share=one_way_share)
        ref = nx.single_source_dijkstra_path_length(_nx_graph(pairs, length, backward), 0, weight="w")
        tree = network.shortest_paths(graph, network.snap(graph, graph.vertex_xy[[0]]))
        for v in range(graph.n_vertices):
            if v in ref:
                assert tree.dist[v] == pytest.approx(ref[v], abs=1e-6)
            else:
                assert np.isinf(tree.dist[v])

    @pytest.mark.parametrize("seed", [2, 3, 4])
    def test_route_between_off_road_points_equals_networkx_with_the_points_inserted(self, seed):
        graph, pairs, length, backward = _random_network(seed, one_way_share=0.25)
        lines = list(graph.lines)
        rng = np.random.default_rng(seed)
        for _ in range(8):
            a, b = rng.uniform(200, 4800, (2, 2))
            g = _nx_graph(pairs, length, backward)
            access = _insert_points(g, {"a": a, "b": b}, lines, pairs, length, backward)
            try:
                expected = nx.dijkstra_path_length(g, "a", "b", weight="w") + access
            except nx.NetworkXNoPath:
                expected = np.inf
            r = network.route(graph, network.snap(graph, a[None]), network.snap(graph, b[None]))
            assert r.distance_m == pytest.approx(expected, rel=1e-9, abs=1e-4)
            if np.isfinite(expected):
                assert r.distance_m >= np.hypot(*(a - b)) - 1e-6, "a network distance is never below the straight line"
                assert tuple(r.xy[0]) == tuple(a) and tuple(r.xy[-1]) == tuple(b)
                assert shapely.LineString(r.xy).length == pytest.approx(r.distance_m, rel=1e-6)

    def test_nearest_source_for_many_points_equals_networkx_with_everything_inserted(self):
        graph, pairs, length, backward = _random_network(5, one_way_share=0.3)
        lines = list(graph.lines)
        rng = np.random.default_rng(5)
        sources, points = rng.uniform(0, 5000, (12, 2)), rng.uniform(0, 5000, (40, 2))
        field = network.source_field(graph, network.snap(graph, sources), towards_sources=True)
        got, which = network.distances_at(graph, field, network.snap(graph, points))
        for k, p in enumerate(points):
            each = np.full(len(sources), np.inf)
            for s, q in enumerate(sources):
                g = _nx_graph(pairs, length, backward)
                access = _insert_points(g, {"p": p, "s": q}, lines, pairs, length, backward)
                if nx.has_path(g, "p", "s"):
                    each[s] = nx.dijkstra_path_length(g, "p", "s", weight="w") + access
            assert got[k] == pytest.approx(each.min(), rel=1e-9, abs=1e-4)
            if np.isfinite(each.min()):
                assert each[which[k]] == pytest.approx(each.min(), rel=1e-9, abs=1e-4), "the source named is a nearest"
            else:
                assert which[k] == -1

    def test_limit_leaves_further_points_unreached(self):
        graph, pairs, length, backward = _random_network(6)
        sources = graph.vertex_xy[:3]
        points = network.snap(graph, graph.vertex_xy)
        full = network.distances_at(graph, network.source_field(graph, network.snap(graph, sources)), points)[0]
        cut = network.distances_at(graph, network.source_field(graph, network.snap(graph, sources), limit_m=800),
                                   points)[0]
        near = full <= 800
        assert np.allclose(cut[near], full[near])
        assert np.all(np.isinf(cut[~near]))


class TestOneStartManyDestinations:
    @pytest.mark.parametrize("seed, limit", [(7, np.inf), (8, 1500.0)])
    def test_distances_to_many_destinations_equal_networkx_one_at_a_time(self, seed, limit):
        graph, pairs, length, backward = _random_network(seed, one_way_share=0.3)
        lines = list(graph.lines)
        rng = np.random.default_rng(seed)
        start, ends = rng.uniform(200, 4800, 2), rng.uniform(0, 5000, (25, 2))
        tree = network.shortest_paths(graph, network.snap(graph, start[None]), limit_m=limit)
        got = routes.distances_to(graph, tree, network.snap(graph, ends))
        for k, end in enumerate(ends):
            g = _nx_graph(pairs, length, backward)
            access = _insert_points(g, {"a": start, "b": end}, lines, pairs, length, backward)
            expected = nx.dijkstra_path_length(g, "a", "b", weight="w") + access if nx.has_path(g, "a", "b") \
                else np.inf
            if expected > limit:
                assert np.isinf(got[k]), "beyond the limit is unreached"
            else:
                assert got[k] == pytest.approx(expected, rel=1e-9, abs=1e-4)

    def test_each_route_line_runs_start_to_destination_as_long_as_its_distance(self):
        graph, *_ = _random_network(9, one_way_share=0.3)
        rng = np.random.default_rng(9)
        start, ends = rng.uniform(200, 4800, 2), rng.uniform(0, 5000, (20, 2))
        tree = network.shortest_paths(graph, network.snap(graph, start[None]))
        snapped = network.snap(graph, ends)
        dist = routes.distances_to(graph, tree, snapped)
        for k, xy in enumerate(routes.route_lines(graph, tree, snapped)):
            if not np.isfinite(dist[k]):
                assert len(xy) == 0
                continue
            assert tuple(xy[0]) == tuple(start) and tuple(xy[-1]) == tuple(ends[k])
            # lengths are the lines' own here (the random network's length_m is the drawn length)
            assert shapely.LineString(xy).length == pytest.approx(dist[k], rel=1e-6)


class TestSnapping:
    def test_a_point_joins_the_middle_of_an_edge_not_its_nearest_vertex(self):
        line = shapely.LineString([(0, 0), (1000, 0)])
        graph = network.build_graph([1, 2], [(0, 0), (1000, 0)], [7], [1], [2], [1000.0], [True], [True],
                                    np.array([line]))
        snapped = network.snap(graph, np.array([[400.0, 30.0]]))
        assert snapped.edge[0] == 0 and snapped.along_m[0] == pytest.approx(400.0)
        assert snapped.access_m[0] == pytest.approx(30.0)
        other = network.snap(graph, np.array([[700.0, -40.0]]))
        r = network.route(graph, snapped, other)
        assert r.distance_m == pytest.approx(30 + 300 + 40)

    def test_one_way_edge_is_followed_round_the_block(self):
        # a square: 1→2 one way east along the bottom, the way back goes round the other three sides
        xy = [(0, 0), (100, 0), (100, 100), (0, 100)]
        ends = [(1, 2), (2, 3), (3, 4), (4, 1)]
        lines = np.array([shapely.LineString([xy[a - 1], xy[b - 1]]) for a, b in ends])
        graph = network.build_graph([1, 2, 3, 4], xy, [1, 2, 3, 4], [a for a, _ in ends], [b for _, b in ends],
                                    [100.0] * 4, [True] * 4, [False, True, True, True], lines)
        at_20, at_80 = network.snap(graph, np.array([[20.0, 0]])), network.snap(graph, np.array([[80.0, 0]]))
        east, west = network.route(graph, at_20, at_80), network.route(graph, at_80, at_20)
        assert east.distance_m == pytest.approx(60.0)
        assert west.distance_m == pytest.approx(20 + 300 + 20)

    def test_a_source_on_the_end_of_a_one_way_edge_reaches_that_vertex_at_once(self):
        xy = [(0, 0), (100, 0), (200, 0)]
        lines = np.array([shapely.LineString([xy[0], xy[1]]), shapely.LineString([xy[1], xy[2]])])
        graph = network.build_graph([1, 2, 3], xy, [1, 2], [1, 2], [2, 3], [100.0, 100.0], [True, True],
                                    [False, False], lines)
        field = network.source_field(graph, network.snap(graph, np.array([[0.0, 0.0]])), towards_sources=False)
        assert field.dist[0] == pytest.approx(0.0, abs=1e-5)
        assert field.dist[2] == pytest.approx(200.0, abs=1e-5)

    def test_a_road_drawn_twice_is_one_road_travelled_every_way_either_copy_allows(self):
        # one street mapped twice, each copy one way (east, then west drawn from the far end), and a spur north
        xy = [(0, 0), (1000, 0), (1000, 500)]
        lines = np.array([shapely.LineString([xy[0], xy[1]]), shapely.LineString([xy[1], xy[0]]),
                          shapely.LineString([xy[1], xy[2]])])
        graph = network.build_graph([1, 2, 3], xy, [5, 9, 7], [1, 2, 2], [2, 1, 3], [1000.0, 1000.0, 500.0],
                                    [True, True, True], [False, False, True], lines)
        assert graph.n_edges == 2 and graph.forward[0] and graph.backward[0]
        a, b = network.snap(graph, np.array([[300.0, 10.0]])), network.snap(graph, np.array([[700.0, -10.0]]))
        # along the street both ways, not out to an end and back on the other copy
        assert network.route(graph, a, b).distance_m == pytest.approx(10 + 400 + 10)
        assert network.route(graph, b, a).distance_m == pytest.approx(10 + 400 + 10)

    def test_points_beyond_the_reach_are_left_unsnapped(self):
        graph, *_ = _random_network(7)
        far = network.snap(graph, np.array([[50_000.0, 50_000.0]]), max_access_m=500)
        assert far.edge[0] == -1 and np.isinf(far.access_m[0])
        assert np.isinf(network.route(graph, far, network.snap(graph, graph.vertex_xy[[0]])).distance_m)


class TestIsochrones:
    def test_polygons_hold_the_reachable_vertices_and_not_the_far_unreachable_ones(self):
        graph, pairs, length, backward = _random_network(8, n=200)
        ref = nx.single_source_dijkstra_path_length(_nx_graph(pairs, length, backward), 0, weight="w")
        origin = network.snap(graph, graph.vertex_xy[[0]])
        budgets = [400.0, 900.0, 1500.0]
        polys = network.isochrones(graph, origin, budgets, buffer_m=50)
        x, y = graph.vertex_xy.T
        for budget, poly in zip(budgets, polys, strict=True):
            reach = np.array([ref.get(v, np.inf) <= budget for v in range(graph.n_vertices)])
            inside = shapely.covers(poly, shapely.points(graph.vertex_xy))
            assert inside[reach].all(), "every vertex reachable within the budget is inside"
            near_lines = shapely.union_all([graph.lines[k] for k, (i, j) in enumerate(pairs) if reach[i] or reach[j]])
            far = ~reach & (shapely.distance(near_lines, shapely.points(x, y)) > 50 + 1e-6)
            assert far.any() and not inside[far].any(), "unreachable vertices away from reachable roads are outside"
        assert polys[0].area < polys[1].area < polys[2].area
        assert polys[0].difference(polys[1]).area < 1e-6 * polys[0].area, "a larger budget covers a smaller one"


class TestErrors:
    def test_arrays_of_different_lengths_are_named(self):
        with pytest.raises(GeoError, match="one value per edge"):
            network.build_graph([1, 2], [(0, 0), (1, 1)], [1, 2], [1], [2], [1.0], [True], [True],
                                np.array([shapely.LineString([(0, 0), (1, 1)])]))

    def test_an_edge_to_an_unknown_vertex_is_named(self):
        with pytest.raises(GeoError, match="unknown target vertex id 9"):
            network.build_graph([1, 2], [(0, 0), (1, 1)], [1], [1], [9], [1.0], [True], [True],
                                np.array([shapely.LineString([(0, 0), (1, 1)])]))

    def test_isochrone_budgets_must_be_positive(self):
        graph, *_ = _random_network(9)
        with pytest.raises(GeoError, match="positive metres"):
            network.isochrones(graph, network.snap(graph, graph.vertex_xy[[0]]), [0])
