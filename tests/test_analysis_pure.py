"""The planners' analysis core: coverage and accessibility (gaps and site choice: test_allocate_pure.py).

Pure numpy: no database. Every expected number below is worked out by hand in
the comments next to it, never copied from the code's output.
"""
from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.accessibility import district_2sfca, two_step_fca
from geo.coverage import composite_mask, coverage_from_geodataframes, coverage_summary, covered_mask, nearest_distance
from geo.errors import CRSError, GeoError, UnitsError

# --------------------------------------------------------------------------
# fixtures: a 3 x 3 lattice of 100 m cells, row-major from the south-west
#
#   index:  6 7 8      population: 7 8 9      x = 0, 100, 200 m
#           3 4 5                  4 5 6      y = 0, 100, 200 m
#           0 1 2                  1 2 3
# --------------------------------------------------------------------------

@pytest.fixture
def grid3():
    xs, ys = np.meshgrid([0.0, 100.0, 200.0], [0.0, 100.0, 200.0])
    xy = np.column_stack([xs.ravel(), ys.ravel()])
    population = np.arange(1.0, 10.0)
    centre = np.array([[100.0, 100.0]])
    return xy, population, centre


def lattice(cols: int, rows: int, size: float = 100.0) -> np.ndarray:
    """Cell centres, row-major: index = row * cols + col."""
    xs, ys = np.meshgrid(np.arange(cols) * size, np.arange(rows) * size)
    return np.column_stack([xs.ravel(), ys.ravel()])


# --------------------------------------------------------------------------
# coverage
# --------------------------------------------------------------------------

class TestNearestDistance:
    def test_corner_and_edge_distances(self, grid3):
        xy, _, centre = grid3
        dist, index = nearest_distance(xy, centre)
        diag = math.sqrt(100.0**2 + 100.0**2)  # 141.42 m
        expected = [diag, 100, diag, 100, 0, 100, diag, 100, diag]
        np.testing.assert_allclose(dist, expected)
        assert (index == 0).all()

    def test_picks_the_closer_facility(self):
        dist, index = nearest_distance([[0.0, 0.0], [90.0, 0.0]], [[100.0, 0.0], [-30.0, 0.0]])
        np.testing.assert_allclose(dist, [30.0, 10.0])
        assert index.tolist() == [1, 0]

    def test_no_facilities_is_infinitely_far(self, grid3):
        xy, _, _ = grid3
        dist, index = nearest_distance(xy, np.empty((0, 2)))
        assert np.isinf(dist).all() and (index == -1).all()


class TestCoveredMask:
    def test_radius_between_edge_and_diagonal_covers_the_plus(self, grid3):
        # 100 m <= 120 m < 141.42 m: centre and its 4 edge neighbours only.
        xy, _, centre = grid3
        assert np.flatnonzero(covered_mask(xy, centre, 120.0)).tolist() == [1, 3, 4, 5, 7]

    def test_radius_150_reaches_the_diagonals_too(self, grid3):
        # The corners are 141.42 m away, under 150 m: all nine cells.
        xy, _, centre = grid3
        assert covered_mask(xy, centre, 150.0).all()

    def test_boundary_counts_as_covered(self, grid3):
        # Exactly 100 m away counts (<= radius).
        xy, _, centre = grid3
        assert np.flatnonzero(covered_mask(xy, centre, 100.0)).tolist() == [1, 3, 4, 5, 7]
        assert np.flatnonzero(covered_mask(xy, centre, 99.9)).tolist() == [4]

    def test_radius_per_cell(self, grid3):
        # Cell 0 (a corner, 141.42 m) is "rural" with 150 m, the rest 50 m:
        # only cell 0 and the centre (0 m) are covered.
        xy, _, centre = grid3
        radius = np.full(9, 50.0)
        radius[0] = 150.0
        assert np.flatnonzero(covered_mask(xy, centre, radius)).tolist() == [0, 4]

    def test_no_facilities_covers_nothing(self, grid3):
        xy, _, _ = grid3
        assert not covered_mask(xy, np.empty((0, 2)), 1000.0).any()

    def test_agrees_with_brute_force(self):
        rng = np.random.default_rng(7)
        xy = rng.uniform(0, 5000, (2000, 2))
        fxy = rng.uniform(0, 5000, (40, 2))
        radius = rng.choice([300.0, 700.0], 2000)
        d = np.hypot(*(xy[:, None, :] - fxy[None, :, :]).transpose(2, 0, 1))
        assert (covered_mask(xy, fxy, radius) == (d <= radius[:, None]).any(axis=1)).all()


class TestPairsWithin:
    def test_blocks_of_facilities_agree_with_brute_force(self, monkeypatch):
        # Facilities are processed in blocks; a tiny block size must not
        # change the pairs (indices are offset per block).
        import geo.coverage

        monkeypatch.setattr(geo.coverage, "_PAIR_BLOCK", 7)
        rng = np.random.default_rng(11)
        xy = rng.uniform(0, 3000, (500, 2))
        fxy = rng.uniform(0, 3000, (30, 2))
        radius = rng.choice([200.0, 450.0], 500)
        cell, fac, dist = geo.coverage.pairs_within(xy, fxy, radius)
        d = np.hypot(*(xy[:, None, :] - fxy[None, :, :]).transpose(2, 0, 1))
        want = set(zip(*np.nonzero(d <= radius[:, None]), strict=True))
        assert set(zip(cell.tolist(), fac.tolist(), strict=True)) == want
        np.testing.assert_allclose(dist, d[cell, fac])


class TestCoverageSummary:
    def test_per_group_and_total(self, grid3):
        # Radius 120 m covers cells 1, 3, 4, 5, 7 (population 2, 4, 5, 6, 8).
        # Group A = left column (cells 0, 3, 6: 1 + 4 + 7 = 12 residents, cell 3
        # covered: 4). Group B = the rest (45 - 12 = 33; 2 + 5 + 6 + 8 = 21).
        xy, population, centre = grid3
        groups = np.array(["B"] * 9)
        groups[[0, 3, 6]] = "A"
        rows = coverage_summary(population, covered_mask(xy, centre, 120.0), groups)
        assert [r["group"] for r in rows] == ["A", "B", None]
        assert [r["population"] for r in rows] == [12.0, 33.0, 45.0]
        assert [r["covered_population"] for r in rows] == [4.0, 21.0, 25.0]
        assert [r["percent"] for r in rows] == pytest.approx([100 * 4 / 12, 100 * 21 / 33,
                                                              100 * 25 / 45])

    def test_empty_group_has_no_percent(self):
        rows = coverage_summary([0.0, 5.0], np.array([False, True]), ["x", "y"])
        assert rows[0]["percent"] is None and rows[1]["percent"] == 100.0


class TestCompositeMask:
    def test_every_applicable_layer_must_cover(self):
        parks = np.array([True, True, True, False])
        clinics = np.array([True, False, False, False])
        # Without `applies`, both layers everywhere: only cell 0.
        assert composite_mask({"parks": parks, "clinics": clinics}).tolist() == [
            True, False, False, False]
        # Clinics only expected in cells 0 and 1: cell 2 now counts on parks alone.
        rural = np.array([True, True, False, False])
        assert composite_mask({"parks": parks, "clinics": clinics},
                              {"clinics": rural}).tolist() == [True, False, True, False]

    def test_unknown_layer_in_applies_is_refused(self):
        with pytest.raises(GeoError, match=r"\['police'\].*\['parks'\]"):
            composite_mask({"parks": np.array([True])}, {"police": np.array([True])})


# --------------------------------------------------------------------------
# 2SFCA
# --------------------------------------------------------------------------

class TestTwoStepFCA:
    # Cells on a line: A (0 m, 100 people), B (1000 m, 300), C (2000 m, 600).
    # F1 at 500 m with 10 spaces, F2 at 1500 m with 30, F3 far away with 5.
    # Radius 600 m: F1 reaches A and B, F2 reaches B and C, F3 nobody.
    #   R1 = 10 / (100 + 300) = 0.025   -> 25 per 1,000
    #   R2 = 30 / (300 + 600) = 1/30    -> 33.33 per 1,000
    #   A_A = R1 = 25; A_B = R1 + R2 = 58.33; A_C = R2 = 33.33 (per 1,000)
    xy = np.array([[0.0, 0.0], [1000.0, 0.0], [2000.0, 0.0]])
    population = np.array([100.0, 300.0, 600.0])
    fxy = np.array([[500.0, 0.0], [1500.0, 0.0], [9000.0, 0.0]])
    capacity = np.array([10.0, 30.0, 5.0])

    def test_ratios_by_hand(self):
        cell, facility = two_step_fca(self.xy, self.population, self.fxy, self.capacity, 600.0)
        np.testing.assert_allclose(cell, [25.0, 25.0 + 1000 / 30, 1000 / 30])
        np.testing.assert_allclose(facility[:2], [25.0, 1000 / 30])
        assert np.isnan(facility[2])  # nobody within reach of F3

    def test_supply_is_conserved_when_everyone_is_reached(self):
        # sum_i P_i A_i = sum_j S_j over facilities with demand: 40 spaces.
        cell, _ = two_step_fca(self.xy, self.population, self.fxy, self.capacity, 600.0)
        assert (self.population * cell).sum() / 1000 == pytest.approx(40.0)

    def test_radius_per_cell(self):
        # C gets only 400 m: F2 (500 m away) no longer reaches it, so
        # R2 = 30 / 300 = 0.1 and A_B = 25 + 100, A_C = 0.
        radius = np.array([600.0, 600.0, 400.0])
        cell, facility = two_step_fca(self.xy, self.population, self.fxy, self.capacity, radius)
        np.testing.assert_allclose(cell, [25.0, 125.0, 0.0])
        np.testing.assert_allclose(facility[:2], [25.0, 100.0])

    def test_district_means_are_population_weighted(self):
        # Group x = {A, B}: (100 * 25 + 300 * 58.33) / 400 = (2500 + 17500) / 400 = 50.
        # Group y = {C}: 33.33. Total: (2500 + 17500 + 20000) / 1000 = 40.
        cell, _ = two_step_fca(self.xy, self.population, self.fxy, self.capacity, 600.0)
        rows = district_2sfca(cell, self.population, ["x", "x", "y"])
        assert [r["group"] for r in rows] == ["x", "y", None]
        assert [r["ratio_per_1000"] for r in rows] == pytest.approx([50.0, 1000 / 30, 40.0])

    def test_capacity_defaults_to_one_each(self):
        # One facility of capacity 1 reaching 100 + 300 people: 2.5 per 1,000.
        cell, _ = two_step_fca(self.xy[:2], self.population[:2], self.fxy[:1], None, 600.0)
        np.testing.assert_allclose(cell, [2.5, 2.5])



# GeoDataFrame adapter and errors
# --------------------------------------------------------------------------

def _cell_frame(crs, x0: float = 500_000.0, y0: float = 3_850_000.0):
    xy = lattice(3, 3) + (x0, y0)
    squares = shapely.box(xy[:, 0] - 50, xy[:, 1] - 50, xy[:, 0] + 50, xy[:, 1] + 50)
    return gpd.GeoDataFrame({"radius_m": [120.0] * 9}, geometry=squares, crs=crs)


def _facility_frame(crs, x0: float = 500_000.0, y0: float = 3_850_000.0):
    return gpd.GeoDataFrame(geometry=[shapely.Point(x0 + 100.0, y0 + 100.0)], crs=crs)


class TestGeoDataFrameAdapter:
    def test_polygon_cells_use_their_inside_point(self):
        # Squares of the 3 x 3 lattice, facility at the centre cell's centre:
        # radius 120 m -> the plus of cells 1, 3, 4, 5, 7 (see TestCoveredMask).
        cells = _cell_frame("EPSG:4548")
        covered = coverage_from_geodataframes(cells, _facility_frame("EPSG:4548"), "radius_m")
        assert covered.index.equals(cells.index)
        assert np.flatnonzero(covered.to_numpy()).tolist() == [1, 3, 4, 5, 7]
        assert coverage_from_geodataframes(cells, _facility_frame("EPSG:4548"), 150.0).all()

    def test_unknown_radius_column_names_the_columns(self):
        with pytest.raises(GeoError, match=r"'radius'.*\['radius_m'\]"):
            coverage_from_geodataframes(_cell_frame("EPSG:4548"),
                                        _facility_frame("EPSG:4548"), "radius")


class TestErrorsWarnings:
    def test_different_crs_is_refused_naming_both(self):
        with pytest.raises(CRSError, match=r"cells are in EPSG:4548 but facilities are in EPSG:32650"):
            coverage_from_geodataframes(_cell_frame("EPSG:4548"),
                                        _facility_frame("EPSG:32650"), 500.0)

    def test_degrees_are_refused(self):
        cells = _cell_frame("EPSG:4326", x0=117.3, y0=34.8)
        with pytest.raises(UnitsError, match=r"EPSG:4326 is in degrees"):
            coverage_from_geodataframes(cells, _facility_frame("EPSG:4326", 117.3, 34.8), 500.0)

    def test_missing_crs_is_refused(self):
        with pytest.raises(UnitsError, match="CRS is missing"):
            coverage_from_geodataframes(_cell_frame(None), _facility_frame(None), 500.0)

    @pytest.mark.parametrize("radius, message", [
        (-1.0, r"`radius` was -1.0 but is expected to be a finite distance >= 0"),
        (float("nan"), r"`radius` was nan"),
        (np.ones(4), r"`radius` has shape \(4,\) but is expected to be a scalar or \(9,\)"),
    ])
    def test_bad_radius(self, grid3, radius, message):
        xy, _, centre = grid3
        with pytest.raises(GeoError, match=message):
            covered_mask(xy, centre, radius)

    @pytest.mark.parametrize("points, message", [
        (np.zeros((3, 3)), r"`xy` has shape \(3, 3\) but is expected to be \(k, 2\)"),
        (np.array([[0.0, np.nan]]), r"`xy` holds 1 points with NaN"),
    ])
    def test_bad_points(self, points, message):
        with pytest.raises(GeoError, match=message):
            covered_mask(points, [[0.0, 0.0]], 100.0)

    def test_negative_population(self):
        with pytest.raises(GeoError, match="`population` must be finite and >= 0"):
            two_step_fca([[0.0, 0.0]], [-5.0], [[0.0, 0.0]], None, 100.0)
