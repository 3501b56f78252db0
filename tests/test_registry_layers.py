"""A layer is one registry record: every route serves a layer added at run time, and the report's ten layers.

The throw-away layer (``throwaway_layer`` in conftest) is only a registry entry
plus three rows; nothing else in the code knows it. Figures are checked
against independent computations (PostGIS ``ST_DWithin`` in EPSG:4548, brute
geodesics with pyproj), never against the code's own output.
"""
from __future__ import annotations

import pyproj
import pytest
from sqlalchemy import text

from layers import LAYERS, validate_registry
from tests.conftest import THROWAWAY_SITES

GEOD = pyproj.Geod(ellps="WGS84")


def test_nearest_lists_the_new_layer_nearest_first(client, throwaway_layer):
    lon, lat = 117.5570, 34.8650
    doc = client.get(f"/api/nearest?lon={lon}&lat={lat}&layer={throwaway_layer.key}&k=3&by=straight").get_json()
    got = [f["properties"]["name"] for f in doc["features"]]
    by_distance = sorted(range(len(THROWAWAY_SITES)),
                         key=lambda i: GEOD.inv(lon, lat, *THROWAWAY_SITES[i][:2])[2])
    assert got == [f"测试亭{i}" for i in by_distance]
    first = doc["features"][0]["properties"]
    assert first["layer_name_en"] == "Throw-away kiosks"
    assert first["distance_m"] == pytest.approx(GEOD.inv(lon, lat, *THROWAWAY_SITES[by_distance[0]][:2])[2], abs=0.5)


def test_search_finds_the_new_layer(client, throwaway_layer):
    doc = client.get(f"/api/search?q=测试亭&layer={throwaway_layer.key}").get_json()
    assert sorted(f["properties"]["name"] for f in doc["features"]) == ["测试亭0", "测试亭1", "测试亭2"]


def test_layers_list_counts_the_new_layer(client, throwaway_layer):
    layers = {item["key"]: item for item in client.get("/api/layers").get_json()["layers"]}
    assert layers[throwaway_layer.key]["count"] == len(THROWAWAY_SITES)
    assert layers[throwaway_layer.key]["capacity_total"] == sum(c for *_, c in THROWAWAY_SITES)


def test_coverage_of_the_new_layer_equals_st_dwithin(client, engine, throwaway_layer):
    radius = 800.0
    doc = client.get(f"/api/coverage?layer={throwaway_layer.key}&radius_m={radius:g}&by=straight").get_json()
    city = next(r for r in doc["rows"] if r["district"] == "370400")
    with engine.connect() as conn:
        expected = conn.execute(text(
            "SELECT coalesce(sum(c.population), 0) FROM demand_cell c WHERE EXISTS ("
            " SELECT 1 FROM facility f WHERE f.layer = :layer AND f.status = 'active'"
            " AND ST_DWithin(ST_Transform(f.point, 4548), ST_Transform(c.geom, 4548), :r))"),
            {"layer": throwaway_layer.key, "r": radius}).scalar()
    assert expected > 0
    assert city["all_residents"]["covered_population"] == expected
    assert city["threshold"]["urban_m"] == radius


def test_gaps_and_suggestions_serve_the_new_layer(client, throwaway_layer):
    gaps = client.get(f"/api/gaps?layer={throwaway_layer.key}&limit=3")
    assert gaps.status_code == 200 and gaps.get_json()["features"]
    suggest = client.get(f"/api/suggest?layer={throwaway_layer.key}&n=2&district=370402").get_json()
    assert len(suggest["sites"]) == 2
    assert suggest["sites"][0]["marginal_gain"] >= suggest["sites"][1]["marginal_gain"] > 0


def test_the_maps_show_the_new_layer(client, throwaway_layer):
    assert "Throw-away kiosks" in client.get("/?lang=en").get_data(as_text=True)
    page = client.get(f"/planner?layer={throwaway_layer.key}&lang=en")
    assert page.status_code == 200 and "Throw-away kiosks" in page.get_data(as_text=True)


def test_the_registry_holds_the_reports_ten_layers_and_validates():
    assert validate_registry() == []
    assert len(LAYERS) == 10
    for layer in LAYERS.values():
        assert layer.threshold.source and layer.threshold.confidence
        assert layer.name_zh and layer.name_en


def test_api_layers_gives_the_reports_counts(client):
    layers = {item["key"]: item for item in client.get("/api/layers").get_json()["layers"]}
    assert len(layers) == 10
    for key, layer in LAYERS.items():
        if layer.report_count is not None:
            assert layers[key]["count"] == layer.report_count, key
        assert layers[key]["synthetic"] is True
    report = {"rehab_home": 21, "children_station": 10, "micro_fire_station": 16, "hospice": 26,
              "tertiary_hospital": 8}
    assert {k: layers[k]["count"] for k in report} == report


@pytest.mark.parametrize("key", ["rehab_home", "children_station", "micro_fire_station", "hospice",
                                 "tertiary_hospital"])
def test_each_new_layer_is_on_every_route(client, key):
    assert client.get(f"/api/coverage?layer={key}").status_code == 200
    collections = [c["id"] for c in client.get("/ogc/collections").get_json()["collections"]]
    assert key in collections
    doc = client.get(f"/export/{key}.geojson").get_json()
    assert len(doc["features"]) == LAYERS[key].report_count
    assert all(f["properties"]["synthetic"] for f in doc["features"])
    assert client.get(f"/tiles/{key}/6/52/25.mvt").status_code == 200
    assert LAYERS[key].name_zh in client.get("/").get_data(as_text=True)
