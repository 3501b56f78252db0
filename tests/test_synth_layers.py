"""The demo generator with layers added to the registry at run time, and the errors it gives.

A new layer needs only its record; placements, counts and labels follow from it. The fixtures
(the real districts and the demo city built from them) are built as in ``tests/test_synth.py``.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace

import geopandas as gpd
import numpy as np
import pytest
from geopandas.testing import assert_geodataframe_equal

from demo import DemoCity, build_demo_city
from demo.placement import RULES
from geo.crs import to_metric
from geo.errors import CRSError
from layers import LAYERS
from layers.model import DEMO_PLACEMENTS, DemoKind, DemoSpec
from tests import test_synth as synth
from tests.test_synth import layer


@pytest.fixture(scope="module")
def districts() -> gpd.GeoDataFrame:
    shared = synth.shared_dir()
    if not (shared / "data").is_dir():
        pytest.skip(f"shared data not found at {shared}; set MINSHENG_SHARED")
    return synth.load_districts(shared)


@pytest.fixture(scope="module")
def city(districts) -> DemoCity:
    return build_demo_city(districts)


# ------------------------------------------------- a new layer needs only its record
#: Throw-away layers, one per generic placement rule: (rule, count, flagged).
EXTRA = {"test_towns": ("towns", 9, 0), "test_rural": ("rural", 13, 5), "test_seats": ("seats", 8, 0)}


def _extra_layers() -> dict:
    """Records that differ from an existing one only in key, name and demo record."""
    base = LAYERS["police_station"]
    return {key: replace(base, key=key, name_zh=f"测试{rule}", name_en=f"Test {rule}", report_count=count,
                         demo=DemoSpec(rule, {key: DemoKind(count, f"测试设施{rule}", f"T{rule[:2].upper()}",
                                                            "24小时", "before_2022",
                                                            flags={"test_flag": flagged} if flagged else {})}))
            for key, (rule, count, flagged) in EXTRA.items()}


@pytest.fixture(scope="module")
def extended(districts) -> DemoCity:
    return build_demo_city(districts, layers={**LAYERS, **_extra_layers()})


def metric_xy(frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    points = frame.geometry.representative_point()
    return to_metric(points.x.to_numpy(), points.y.to_numpy())


def test_every_placement_the_registry_allows_has_a_rule():
    assert set(RULES) == set(DEMO_PLACEMENTS)


def test_new_layers_appear_with_their_counts_and_labels(extended):
    for key, (rule, count, flagged) in EXTRA.items():
        rows = layer(extended.facilities, key)
        assert len(rows) == count, key
        assert rows["name"].str.startswith(f"示例测试设施{rule}").all()
        assert rows["source_id"].is_unique and rows["source_id"].str.startswith(f"DEMO-T{rule[:2].upper()}-").all()
        assert (rows["opened_on"] < dt.date(2022, 1, 1)).all()
        assert sum(a.get("test_flag", False) for a in rows["attrs"]) == flagged


def test_new_layers_move_nothing_else(city, extended):
    """Each layer draws from its own streams: the registry's layers come out exactly as before."""
    ours = extended.facilities[extended.facilities["layer"].isin(list(LAYERS))].reset_index(drop=True)
    assert_geodataframe_equal(ours, city.facilities)
    assert_geodataframe_equal(extended.cells, city.cells)


def test_towns_sites_are_near_a_secondary_town_away_from_the_seat(extended):
    rows = layer(extended.facilities, "test_towns")
    x, y = metric_xy(rows)
    adcodes = [a["adcode"] for a in rows["attrs"]]
    centres = extended.centres
    slack = extended.resolution_m  # a site is anywhere in its cell
    for xi, yi, code in zip(x, y, adcodes, strict=True):
        mine = centres[centres["adcode"] == code]
        towns, seat = mine[~mine["seat"]], mine[mine["seat"]].iloc[0]
        assert np.hypot(towns["x_m"] - xi, towns["y_m"] - yi).min() <= 3000 + slack
        assert math.hypot(seat["x_m"] - xi, seat["y_m"] - yi) >= 6000 - 3000 - slack


def test_seats_sites_are_urban_and_around_their_district_seat(extended, districts):
    rows = layer(extended.facilities, "test_seats")
    x, y = metric_xy(rows)
    seats = districts.set_index("adcode")
    for xi, yi, a in zip(x, y, rows["attrs"], strict=True):
        sx, sy = to_metric(seats.loc[a["adcode"], "seat_lon"], seats.loc[a["adcode"], "seat_lat"])
        assert math.hypot(sx - xi, sy - yi) <= 5000 + extended.resolution_m
    assert cell_is_urban(extended, x, y).all()


def test_rural_sites_are_in_rural_cells_near_villages(extended):
    rows = layer(extended.facilities, "test_rural")
    x, y = metric_xy(rows)
    assert not cell_is_urban(extended, x, y).any()
    vx, vy = metric_xy(extended.villages)
    nearest = np.hypot(vx[None, :] - x[:, None], vy[None, :] - y[:, None]).min(axis=1)
    assert np.median(nearest) <= 1500


def cell_is_urban(city: DemoCity, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The urban flag of the populated cell holding each point (metres), looked up by cell id."""
    res = city.resolution_m
    ids = [f"{res:g}m_E{math.floor(xi / res)}_N{math.floor(yi / res)}" for xi, yi in zip(x, y, strict=True)]
    return city.cells.set_index("cell_id").loc[ids, "urban"].to_numpy()


def test_an_unknown_placement_is_refused_naming_the_rules(districts):
    bad = replace(LAYERS["police_station"], key="test_bad", demo=DemoSpec("airports", {
        "test_bad": DemoKind(1, "测试", "TB", "24小时")}))
    with pytest.raises(ValueError, match="airports.*offices.*seats"):
        build_demo_city(districts, resolution_m=2000.0, layers={"test_bad": bad})


# ---------------------------------------------------------------------- errors


class TestErrors:
    def test_wrong_crs(self, districts):
        with pytest.raises(CRSError, match="EPSG:4326"):
            build_demo_city(districts.to_crs(4548))

    def test_missing_column(self, districts):
        with pytest.raises(ValueError, match="seat_lon"):
            build_demo_city(districts.drop(columns="seat_lon"))

    def test_census_does_not_add_up(self, districts):
        bad = districts.copy()
        bad.loc[bad.index[0], "urban_population"] += 1
        with pytest.raises(ValueError, match="urban \\+ rural"):
            build_demo_city(bad)

    @pytest.mark.parametrize(("option", "value"), [
        ("resolution_m", 0.0), ("resolution_m", -250.0), ("scale", 0.0), ("scale", float("nan")),
    ])
    def test_bad_parameter(self, districts, option, value):
        with pytest.raises(ValueError, match=f"`{option}` was"):
            build_demo_city(districts, **{option: value})
