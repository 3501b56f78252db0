"""The planners' analysis core: gap clusters and site choice (geo.gaps, geo.allocate).

Pure numpy: no database. Every expected number below is worked out by hand in
the comments next to it, never copied from the code's output.
"""
from __future__ import annotations

import numpy as np
import pytest

from geo.allocate import default_candidates, exact_max_cover, greedy_max_cover
from geo.errors import GeoError
from geo.gaps import cluster_polygon, gap_clusters
from tests.test_analysis_pure import lattice

# --------------------------------------------------------------------------
# gaps
# --------------------------------------------------------------------------

class TestGapClusters:
    # 5 x 5 lattice of 100 m cells, index = row * 5 + col, (col, row) below.
    # L-shape: (0,0) (0,1) (0,2) (1,0) (2,0), plus (1,3) touching (0,2) only at
    # a corner: one gap of 6 cells, 10 people each -> 60, centroid = plain
    # mean x = (0+0+0+100+200+100)/6, y = (0+100+200+0+0+300)/6 = 100.
    # Patch: (4,3) 100 people, (4,4) 50, (3,4) 50 -> 200 people, centroid
    # x = (400*100 + 400*50 + 300*50)/200 = 375, y = (300*100 + 400*100)/200 = 350.
    ELL = [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (1, 3)]
    PATCH = {(4, 3): 100.0, (4, 4): 50.0, (3, 4): 50.0}

    def setup_method(self):
        self.xy = lattice(5, 5)
        self.population = np.full(25, 7.0)  # covered cells: ignored
        self.uncovered = np.zeros(25, dtype=bool)
        for col, row in self.ELL:
            self.uncovered[row * 5 + col] = True
            self.population[row * 5 + col] = 10.0
        for (col, row), people in self.PATCH.items():
            self.uncovered[row * 5 + col] = True
            self.population[row * 5 + col] = people

    def test_two_gaps_largest_first(self):
        gaps = gap_clusters(self.xy, self.population, self.uncovered, 100.0)
        assert len(gaps) == 2
        patch, ell = gaps
        assert patch["cells"].tolist() == sorted(r * 5 + c for c, r in self.PATCH)
        assert patch["population"] == 200.0
        assert patch["centroid"] == pytest.approx((375.0, 350.0))
        assert ell["cells"].tolist() == sorted(r * 5 + c for c, r in self.ELL)
        assert ell["population"] == 60.0
        assert ell["centroid"] == pytest.approx((400.0 / 6, 100.0))

    def test_gaps_two_cells_apart_stay_separate(self):
        # Cells (0,0) and (2,0) are 200 m apart: not neighbours.
        mask = np.zeros(25, dtype=bool)
        mask[[0, 2]] = True
        assert len(gap_clusters(self.xy, self.population, mask, 100.0)) == 2

    def test_no_uncovered_cells_no_gaps(self):
        assert gap_clusters(self.xy, self.population, np.zeros(25, dtype=bool), 100.0) == []

    def test_polygon_is_the_union_of_squares(self):
        patch, ell = gap_clusters(self.xy, self.population, self.uncovered, 100.0)
        outline = cluster_polygon(self.xy, patch["cells"], 100.0)
        assert outline.geom_type == "Polygon"
        assert outline.area == pytest.approx(3 * 100.0 * 100.0)
        # Patch squares span x 250..450 and y 250..450 minus the (3,3) square.
        assert outline.bounds == pytest.approx((250.0, 250.0, 450.0, 450.0))
        # The L and the corner-touching cell: two parts, 6 squares in all.
        ell_outline = cluster_polygon(self.xy, ell["cells"], 100.0)
        assert ell_outline.geom_type == "MultiPolygon"
        assert len(ell_outline.geoms) == 2
        assert ell_outline.area == pytest.approx(6 * 100.0 * 100.0)


# --------------------------------------------------------------------------
# site suggestion
# --------------------------------------------------------------------------

class TestGreedyMaxCover:
    # Cells on a line at 0, 100, 200 (10 people each) and 300 m (25 people);
    # radius 120 m. Candidates: c0 at 100 m reaches 0, 100, 200 (30 people);
    # c1 at 300 m reaches 200, 300 (35); c2 at 50 m reaches 0, 100 (20;
    # 200 m is 150 m away).
    xy = np.array([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0], [300.0, 0.0]])
    population = np.array([10.0, 10.0, 10.0, 25.0])
    candidates = np.array([[100.0, 0.0], [300.0, 0.0], [50.0, 0.0]])

    def test_marginal_gains_by_hand(self):
        # Pick c1 (35). Then c0 and c2 both add 20 (cells 0, 100): tie -> c0.
        # Cumulative 35 of 55 (63.6 %), then 55 (100 %). A third pick adds 0:
        # stop.
        picks = greedy_max_cover(self.xy, self.population, self.candidates, 120.0, 3)
        assert [p["candidate"] for p in picks] == [1, 0]
        assert [p["marginal_gain"] for p in picks] == [35.0, 20.0]
        assert [p["cumulative_covered"] for p in picks] == [35.0, 55.0]
        assert [p["cumulative_percent"] for p in picks] == pytest.approx([100 * 35 / 55, 100.0])
        assert (picks[0]["x"], picks[0]["y"]) == (300.0, 0.0)

    def test_already_covered_cells_add_nothing(self):
        # Cell at 300 m already served: c1 now adds only 10, c0 adds 30 -> c0
        # first (cumulative 25 + 30 = 55, everyone).
        done = np.array([False, False, False, True])
        picks = greedy_max_cover(self.xy, self.population, self.candidates, 120.0, 2,
                                 already_covered=done)
        assert [(p["candidate"], p["marginal_gain"], p["cumulative_covered"])
                for p in picks] == [(0, 30.0, 55.0)]

    def test_default_candidates_are_uncovered_centres(self):
        uncovered = np.array([True, False, True, True])
        cand, rows = default_candidates(self.xy, uncovered)
        assert rows.tolist() == [0, 2, 3]
        np.testing.assert_array_equal(cand, self.xy[[0, 2, 3]])
        cand, rows = default_candidates(self.xy, uncovered, max_candidates=2)
        assert len(rows) == 2 and set(rows.tolist()) <= {0, 2, 3}


class TestExactMaxCover:
    # Cells a, b, c, d at 0, 200, 400, 600 m with 4, 5, 5, 4 people; radius
    # 120 m. S1 at 100 m reaches a, b (9); S2 at 500 m reaches c, d (9); S3
    # at 300 m reaches b, c (10). Greedy for 2 sites: S3 (10) then S1 or S2
    # (+4) = 14. Optimum: S1 + S2 = 18.
    xy = np.array([[0.0, 0.0], [200.0, 0.0], [400.0, 0.0], [600.0, 0.0]])
    population = np.array([4.0, 5.0, 5.0, 4.0])
    candidates = np.array([[100.0, 0.0], [500.0, 0.0], [300.0, 0.0]])

    def test_exact_beats_greedy_on_the_textbook_trap(self):
        greedy = greedy_max_cover(self.xy, self.population, self.candidates, 120.0, 2)
        assert [p["candidate"] for p in greedy] == [2, 0]
        assert greedy[-1]["cumulative_covered"] == 14.0
        exact = exact_max_cover(self.xy, self.population, self.candidates, 120.0, 2,
                                time_limit=30)
        assert exact["candidates"] == [0, 1]
        assert exact["covered_population"] == 18.0
        assert exact["percent"] == 100.0
        assert exact["optimal"] is True

    def test_greedy_within_one_percent_of_exact(self):
        rng = np.random.default_rng(2024)
        xy = lattice(20, 20)  # 400 cells over 1.9 km x 1.9 km
        population = rng.gamma(2.0, 50.0, len(xy))
        candidates = rng.uniform(0.0, 1900.0, (60, 2))
        greedy = greedy_max_cover(xy, population, candidates, 250.0, 5)
        exact = exact_max_cover(xy, population, candidates, 250.0, 5, time_limit=60)
        assert exact["optimal"]
        best = exact["covered_population"]
        got = greedy[-1]["cumulative_covered"]
        assert got <= best + 1e-6
        assert got >= 0.99 * best

    def test_missing_solver_is_a_geo_error(self, monkeypatch):
        import pulp

        monkeypatch.setattr(pulp.PULP_CBC_CMD, "available", lambda self: False)
        monkeypatch.setattr(pulp.COIN_CMD, "available", lambda self: False)
        with pytest.raises(GeoError, match="CBC solver, which is not available"):
            exact_max_cover(self.xy, self.population, self.candidates, 120.0, 2)

    def test_more_sites_than_candidates_is_refused(self):
        with pytest.raises(GeoError, match="`n` was 4 but only 3 candidates"):
            exact_max_cover(self.xy, self.population, self.candidates, 120.0, 4)


# --------------------------------------------------------------------------
