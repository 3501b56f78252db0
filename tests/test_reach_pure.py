"""Distances to points and areas, straight and along a road graph, and the near-optimal site search.

Pure: no database. Expected values are worked by hand (a straight road, a square park) or by brute force
(every subset of sites; every pair of points), never copied from the code's output.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import shapely
from scipy.sparse import csr_matrix

from geo.accessibility import ratio_spread
from geo.network import build_graph, snap
from geo.planning import facility_homes, villages_without_own
from geo.reach import Targets, area_sources, network_distance, network_pairs, straight_distance
from geo.siting import max_cover, reach_from_pairs


def _road(n: int = 11, step: float = 100.0):
    """A straight east-west road of n - 1 pieces of ``step`` metres (vertices at x = 0, 100, ...)."""
    xy = np.column_stack([np.arange(n) * step, np.zeros(n)])
    lines = [shapely.LineString([xy[i], xy[i + 1]]) for i in range(n - 1)]
    ids = np.arange(1, n + 1)
    return build_graph(ids, xy, np.arange(1, n), ids[:-1], ids[1:], np.full(n - 1, step), np.ones(n - 1, bool),
                       np.ones(n - 1, bool), np.array(lines, dtype=object))


class TestStraight:
    def test_points_by_brute_force(self):
        rng = np.random.default_rng(1)
        cells, sites = rng.uniform(0, 1000, (50, 2)), rng.uniform(0, 1000, (7, 2))
        dist, index = straight_distance(cells, Targets(sites))
        brute = np.hypot(*(cells[:, None, :] - sites[None, :, :]).transpose(2, 0, 1))
        np.testing.assert_allclose(dist, brute.min(axis=1))
        np.testing.assert_array_equal(index, brute.argmin(axis=1))

    def test_an_area_is_reached_at_its_edge_and_zero_inside(self):
        park = shapely.box(0, 0, 200, 200)  # a 200 m square; its inner point would be 100 m in
        cells = np.array([[100.0, 100.0], [300.0, 100.0], [300.0, 300.0]])
        dist, index = straight_distance(cells, Targets(np.array([[100.0, 100.0]]), np.array([park], dtype=object)))
        np.testing.assert_allclose(dist, [0.0, 100.0, np.hypot(100, 100)])
        assert index.tolist() == [0, 0, 0]

    def test_beyond_the_limit_is_unreached(self):
        dist, index = straight_distance(np.array([[0.0, 0.0]]), Targets(np.array([[500.0, 0.0]])), limit_m=400)
        assert np.isinf(dist[0]) and index[0] == -1


class TestNetwork:
    def test_along_the_road_with_both_access_legs(self):
        g = _road()
        cells = np.array([[50.0, 30.0], [950.0, -40.0]])
        site = np.array([[420.0, 10.0]])
        dist, index = network_distance(g, snap(g, cells), Targets(site), cells)
        # 30 m to the road at x=50, 370 m along it, 10 m to the site; 40 + 530 + 10 for the other.
        np.testing.assert_allclose(dist, [30 + 370 + 10, 40 + 530 + 10])
        assert index.tolist() == [0, 0]

    def test_an_area_on_the_network_is_reached_at_its_boundary(self):
        g = _road()
        park = shapely.box(600, -50, 700, 50)  # the road runs through it
        cells = np.array([[100.0, 0.0], [650.0, 20.0]])
        dist, _ = network_distance(g, snap(g, cells), Targets(np.array([[650.0, 0.0]]), np.array([park])), cells)
        assert dist[0] == pytest.approx(500.0, abs=0.01) and dist[1] == 0.0  # to x=600 on the road; inside: 0
        xy, owner = area_sources(np.array([park]), 25.0)
        assert len(xy) >= 400 / 25 and set(owner.tolist()) == {0}

    def test_candidate_pairs_match_the_multi_source_distance(self):
        g = _road()
        cells = np.column_stack([np.arange(0, 1001, 50.0), np.full(21, 20.0)])
        starts = np.array([[300.0, -10.0], [800.0, 5.0]])
        cell, start, dist = network_pairs(g, snap(g, starts), snap(g, cells), cells, starts, np.full(21, 260.0))
        for s in range(2):
            expect = network_distance(g, snap(g, cells), Targets(starts[s:s + 1]), cells)[0]
            mine = start == s
            np.testing.assert_allclose(dist[mine], expect[cell[mine]])
            assert set(cell[mine].tolist()) == set(np.flatnonzero(expect <= 260.0).tolist())


class TestSiting:
    def test_reaches_the_brute_force_optimum(self):
        rng = np.random.default_rng(7)
        reach = csr_matrix(rng.random((14, 60)) < 0.12)
        pop = rng.integers(1, 100, 60).astype(float)
        best = max(pop[np.asarray(reach[list(c)].sum(axis=0)).ravel() > 0].sum()
                   for c in itertools.combinations(range(14), 3))
        picks, info = max_cover(reach, pop, 3, time_budget_s=0.5)
        assert info["covered"] == best and info["upper_bound"] >= best - 1e-6
        assert sum(p["marginal_gain"] for p in picks) == best

    def test_pairs_make_the_matrix(self):
        m = reach_from_pairs(np.array([0, 2]), np.array([1, 1]), 3, 2).toarray()
        assert m.tolist() == [[False, False, False], [True, False, True]]


class TestFiguresPure:
    def test_ratio_spread_by_hand(self):
        # 100 residents with ratio 0, 100 with 2, 200 with 5: 25 % none; quartiles 0 | 2 | 5.
        spread = ratio_spread(np.array([0.0, 2.0, 5.0]), np.array([100.0, 100.0, 200.0]), np.array(["a", "a", "b"]))
        assert spread[None] == {"none_in_reach_percent": 25.0, "q1": 0.0, "median": 2.0, "q3": 5.0}
        assert spread["b"]["none_in_reach_percent"] == 0.0

    def test_a_clinic_belongs_to_its_named_village_else_the_nearest(self):
        vid, vname = np.array(["V1", "V2", "V3"], dtype=object), np.array(["甲村", "乙村", "乙村"], dtype=object)
        vxy = np.array([[0.0, 0.0], [1000.0, 0.0], [2000.0, 0.0]])
        fxy = np.array([[10.0, 0.0], [1990.0, 0.0], [5.0, 5.0]])
        home, by_field = facility_homes(vid, vname, vxy, fxy, np.array(["V2", "乙村", None], dtype=object))
        # V2 by its id (though it stands at V1); "乙村" is two villages' name: nearest (V3); no field: nearest (V1).
        assert home.tolist() == [1, 2, 0] and by_field == 1
        counts = villages_without_own(np.array(["a", "a", "b"], dtype=object), home, 3, ["a", "b"])
        assert counts == {"a": 0, "b": 0, None: 0}
