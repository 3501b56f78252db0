"""The synthetic demo city: census totals, report counts, placement, determinism.

Pure tests (no database): the input frame is built here from the shared
DataV boundaries (GCJ-02, converted to WGS-84) and the 2020 census file.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry import shape

from demo import DemoCity, build_demo_city
from geo.crs import gcj02_to_wgs84, to_metric, transform_geometry

#: Citywide resident population, Zaozhuang 7th Census Bulletin (data README).
CITY_TOTAL = 3_855_601
SHANTING = "370406"
SHIZHONG = "370402"
H1_2022 = (dt.date(2022, 1, 1), dt.date(2022, 6, 30))


def shared_dir() -> Path:
    """The shared read-only materials: ``$MINSHENG_SHARED`` or ``../shared`` beside the repo."""
    env = os.environ.get("MINSHENG_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared"


def load_districts(shared: Path) -> gpd.GeoDataFrame:
    """The six districts in WGS-84 with 2020 census population and the seat."""
    data = shared / "data"
    fc = json.loads((data / "boundaries" / "datav_370400_full.json").read_text(encoding="utf-8"))
    rows = []
    for feature in fc["features"]:
        props = feature["properties"]
        seat_lon, seat_lat = gcj02_to_wgs84(*props["center"])
        rows.append({"adcode": str(props["adcode"]), "name_zh": props["name"],
                     "seat_lon": seat_lon, "seat_lat": seat_lat,
                     "geometry": transform_geometry(shape(feature["geometry"]), gcj02_to_wgs84)})
    census = pd.read_csv(data / "census" / "census2020_county_leiii_3704.csv", dtype={"区划代码": str})
    census = census.rename(columns={"区划代码": "adcode", "人口数_合计": "population",
                                    "城镇人口": "urban_population", "乡村人口": "rural_population"})
    census = census[["adcode", "population", "urban_population", "rural_population"]].astype(
        {"population": int, "urban_population": int, "rural_population": int})
    frame = pd.DataFrame(rows).merge(census, on="adcode", how="left", validate="one_to_one")
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")


@pytest.fixture(scope="module")
def districts() -> gpd.GeoDataFrame:
    shared = shared_dir()
    if not (shared / "data").is_dir():
        pytest.skip(f"shared data not found at {shared}; set MINSHENG_SHARED")
    return load_districts(shared)


@pytest.fixture(scope="module")
def city(districts) -> DemoCity:
    return build_demo_city(districts)


@pytest.fixture(scope="module")
def facilities(city) -> gpd.GeoDataFrame:
    return city.facilities


def layer(facilities: gpd.GeoDataFrame, key: str, kind: str | None = None) -> gpd.GeoDataFrame:
    rows = facilities[facilities["layer"] == key]
    return rows if kind is None else rows[rows["kind"] == kind]


# ----------------------------------------------------------------- population


def test_input_frame_matches_the_census_hand_total(districts):
    assert len(districts) == 6
    assert districts["population"].sum() == CITY_TOTAL


def test_each_district_sums_exactly_to_its_census_total(city, districts):
    sums = city.cells.groupby("adcode")["population"].sum()
    expected = districts.set_index("adcode")["population"]
    assert sums.sort_index().to_dict() == expected.sort_index().to_dict()
    assert city.cells["population"].sum() == CITY_TOTAL


def test_cells_are_populated_points_on_the_250m_lattice(city):
    cells = city.cells
    assert cells.crs.to_epsg() == 4326
    assert set(cells.geom_type) == {"Point"}
    assert cells["population"].min() >= 1
    assert cells["cell_id"].is_unique
    assert cells["synthetic"].all()
    assert city.resolution_m == 250.0
    assert np.allclose((cells["x_m"] / 250.0 - 0.5) % 1.0, 0.0)
    assert np.allclose((cells["y_m"] / 250.0 - 0.5) % 1.0, 0.0)
    first = cells.iloc[0]
    assert first["cell_id"] == f"250m_E{math.floor(first['x_m'] / 250)}_N{math.floor(first['y_m'] / 250)}"


def test_cell_point_is_its_metric_centre(city):
    cells = city.cells.sample(500, random_state=1)
    x, y = to_metric(cells.geometry.x.to_numpy(), cells.geometry.y.to_numpy())
    assert np.abs(x - cells["x_m"]).max() < 0.01
    assert np.abs(y - cells["y_m"]).max() < 0.01


def test_a_cell_belongs_to_the_district_containing_its_centre(city, districts):
    polys = districts.set_index("adcode").geometry
    cells = city.cells.sample(2000, random_state=2)
    inside = shapely.contains(polys.loc[cells["adcode"]].to_numpy(), cells.geometry.to_numpy())
    assert inside.all()


def test_the_seat_cell_of_every_district_is_urban(city, districts):
    cells = city.cells
    area_km2 = (city.resolution_m / 1000.0) ** 2
    for row in districts.itertuples():
        sx, sy = to_metric(row.seat_lon, row.seat_lat)
        own = cells[cells["adcode"] == row.adcode]
        seat = own.iloc[int(np.argmin(np.hypot(own["x_m"] - sx, own["y_m"] - sy)))]
        assert seat["urban"], row.name_zh
        assert seat["population"] / area_km2 > 1500.0, row.name_zh


def test_urban_flag_is_the_density_threshold(city):
    density = city.cells["population"] / (city.resolution_m / 1000.0) ** 2
    assert (city.cells["urban"] == (density >= 1500.0)).all()


def test_the_countryside_is_rural(city):
    cells = city.cells
    shanting = cells[cells["adcode"] == SHANTING]
    assert shanting["urban"].mean() < 0.10
    assert cells["urban"].mean() < 0.25
    assert cells.loc[cells["urban"], "population"].sum() > 0.4 * CITY_TOTAL


# -------------------------------------------------------------------- villages


def test_villages_hold_the_rural_population(city, districts):
    villages = city.villages
    assert 2200 <= len(villages) <= 2600
    assert villages["village_id"].is_unique
    assert villages["name"].str.startswith("合成村").all()
    assert villages["synthetic"].all()
    sums = villages.groupby("adcode")["population"].sum().sort_index().to_dict()
    assert sums == districts.set_index("adcode")["rural_population"].sort_index().to_dict()


def test_rural_districts_have_more_villages(city):
    counts = city.villages["adcode"].value_counts()
    assert counts[SHANTING] > counts[SHIZHONG]


# ------------------------------------------------------------------ facilities

@pytest.mark.parametrize(("key", "kind", "count"), [
    ("service_office", None, 2500),
    ("police_station", None, 37),
    ("pocket_park", "pocket_park", 61),
    ("pocket_park", "park", 12),
    ("village_clinic", None, 1496),
])
def test_layer_counts_match_the_report(facilities, key, kind, count):
    assert len(layer(facilities, key, kind)) == count


def test_parking_capacities_match_the_report(facilities):
    parking = layer(facilities, "parking")
    assert set(parking["kind"]) == {"government_offhours", "new_public"}
    totals = parking.groupby("kind")["capacity"].sum().to_dict()
    assert totals == {"government_offhours": 6235, "new_public": 3528}
    assert parking["capacity"].map(lambda c: isinstance(c, int) and 10 <= c <= 200).all()
    assert layer(facilities, "service_office")["capacity"].isna().all()


def test_1211_clinics_have_rehabilitation_equipment(facilities):
    clinics = layer(facilities, "village_clinic")
    assert sum(a["rehab_equipment"] for a in clinics["attrs"]) == 1211
    assert all(a["smart_followup"] for a in clinics["attrs"])


def test_clinics_sit_next_to_villages_and_some_villages_have_none(facilities, city):
    clinics = layer(facilities, "village_clinic").to_crs(4548)
    villages = city.villages.set_index("village_id").to_crs(4548)
    home = villages.geometry.loc[[a["village_id"] for a in clinics["attrs"]]].to_numpy()
    assert shapely.distance(clinics.geometry.to_numpy(), home).max() <= 300.0
    served = {a["village_id"] for a in clinics["attrs"]}
    assert 0.5 * len(villages) < len(served) < len(villages)


def test_source_ids_are_unique_per_layer(facilities):
    assert not facilities.duplicated(["layer", "source_id"]).any()
    assert facilities["source_id"].str.startswith("DEMO-").all()


def test_every_name_is_visibly_synthetic(facilities):
    names = facilities["name"]
    assert (names.str.contains("示例") | names.str.contains("（合成）")).all()
    assert all(a["synthetic"] for a in facilities["attrs"])


def test_columns_and_types(facilities):
    assert list(facilities.columns) == ["layer", "source_id", "kind", "name", "address", "phone",
                                        "opening_hours", "capacity", "opened_on", "attrs", "geometry"]
    assert facilities.crs.to_epsg() == 4326
    assert facilities["opened_on"].map(lambda d: type(d) is dt.date).all()
    assert facilities["attrs"].map(lambda a: isinstance(a, dict)).all()
    polygons = facilities.geom_type.isin(["Polygon", "MultiPolygon"])
    assert (polygons == (facilities["layer"] == "pocket_park")).all()


def test_every_facility_is_inside_the_city_and_its_district(facilities, districts):
    city_polygon = shapely.union_all(districts.geometry.to_numpy())
    assert shapely.within(facilities.geometry.to_numpy(), city_polygon).all()
    polys = districts.set_index("adcode").geometry
    own = polys.loc[[a["adcode"] for a in facilities["attrs"]]].to_numpy()
    assert shapely.within(facilities.geometry.to_numpy(), own).all()


def test_pocket_park_and_park_areas_in_epsg4548(facilities):
    parks = layer(facilities, "pocket_park").to_crs(4548)
    pocket = parks.loc[parks["kind"] == "pocket_park"].area
    big = parks.loc[parks["kind"] == "park"].area
    assert pocket.between(400.0, 10_000.0).all()
    assert big.between(50_000.0, 300_000.0).all()
    assert not shapely.intersects(parks.geometry.to_numpy()[:, None], parks.geometry.to_numpy()[None, :]) \
        [~np.eye(len(parks), dtype=bool)].any()


def test_opening_dates_follow_the_report(facilities):
    def within(rows, start, end):
        return rows["opened_on"].map(lambda d: start <= d <= end)

    assert within(layer(facilities, "police_station"), *H1_2022).all()
    assert within(layer(facilities, "pocket_park", "pocket_park"), *H1_2022).all()
    assert (layer(facilities, "pocket_park", "park")["opened_on"] < dt.date(2022, 1, 1)).all()
    for key in ("service_office", "village_clinic"):
        late = (layer(facilities, key)["opened_on"] >= dt.date(2022, 1, 1)).mean()
        assert 0.0 < late < 0.2, key


def test_service_offices_are_uneven_per_head(facilities, districts):
    offices = layer(facilities, "service_office")
    counts = pd.Series([a["adcode"] for a in offices["attrs"]]).value_counts()
    per_head = counts / districts.set_index("adcode")["population"]
    assert per_head[SHANTING] < 0.7 * (len(offices) / CITY_TOTAL)


# --------------------------------------------------------- determinism, scale


def test_same_seed_same_city_other_seed_other_city(districts):
    a = build_demo_city(districts, seed=7, resolution_m=1000.0)
    b = build_demo_city(districts.iloc[::-1], seed=7, resolution_m=1000.0)
    for name in ("cells", "villages", "facilities"):
        assert_geodataframe_equal(getattr(a, name), getattr(b, name))
    c = build_demo_city(districts, seed=8, resolution_m=1000.0)
    assert not c.villages.geometry.equals(a.villages.geometry)
    assert c.cells["population"].sum() == CITY_TOTAL


def test_scale_multiplies_counts_capacities_and_grid_density(districts):
    city = build_demo_city(districts, resolution_m=1000.0, scale=2.0)
    assert city.resolution_m == pytest.approx(1000.0 / math.sqrt(2.0))
    counts = city.facilities.groupby("layer").size().to_dict()
    assert counts["service_office"] == 5000
    assert counts["police_station"] == 74
    assert counts["pocket_park"] == 146
    assert counts["village_clinic"] == 2992
    parking = layer(city.facilities, "parking").groupby("kind")["capacity"].sum().to_dict()
    assert parking == {"government_offhours": 12470, "new_public": 7056}
    assert sum(a["rehab_equipment"] for a in layer(city.facilities, "village_clinic")["attrs"]) == 2422
    assert city.cells["population"].sum() == CITY_TOTAL


def test_the_100m_grid_builds(districts):
    """The benchmarks' 100 m grid (its speed is measured in bench/bench_coverage.py, not here)."""
    city = build_demo_city(districts, resolution_m=100.0)
    assert len(city.cells) > 300_000
    assert city.cells["population"].sum() == CITY_TOTAL
