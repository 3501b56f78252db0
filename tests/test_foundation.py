"""The foundation: registry, districts and census, the demo city's report counts, health."""
from __future__ import annotations

import csv
import gzip
import json

import brotli
import pytest
from pyproj import Geod
from sqlalchemy import text

from etl.boundaries import BOUNDARIES, CENSUS, DATA
from layers import LAYER_KEYS, LAYERS, validate_registry
from layers.model import Layer, Style
from services.loading import load_demo
from web import create_app

# Hand facts from the city's 2022 livelihood report and the 2020 census bulletin.
REPORT = {"service_office": 2500, "police_station": 37, "pocket_park": 73, "village_clinic": 1496}
CENSUS_TOTAL = 3_855_601
# Ellipsoidal areas from data/README.md (km²), computed on the GCJ-02 outlines.
AREAS = {"370402": 373, "370403": 513, "370404": 635, "370405": 538, "370406": 1024, "370481": 1493}


class TestRegistry:
    def test_cli_validates_the_ten_layers(self, runner):
        result = runner.invoke(args=["layers", "validate"])
        assert result.exit_code == 0, result.output
        assert "10 layers OK" in result.output

    def test_layer_keys_are_the_stable_interface(self):
        assert LAYER_KEYS[:5] == ("service_office", "police_station", "pocket_park", "parking", "village_clinic")
        assert set(LAYER_KEYS[5:]) == {"rehab_home", "children_station", "micro_fire_station", "hospice",
                                       "tertiary_hospital"}

    def test_every_threshold_names_its_standard(self):
        for layer in LAYERS.values():
            assert layer.threshold.source and layer.threshold.standard_en and layer.threshold.standard_zh

    def test_a_broken_record_is_reported(self):
        good = LAYERS["parking"]
        bad = Layer(**{**good.__dict__, "key": "Bad Key", "style": Style(color="red", icon="x")})
        problems = validate_registry({"Bad Key": bad})
        assert any("lower-case" in p for p in problems)
        assert any("#rrggbb" in p for p in problems)

    def test_standards_presets(self):
        # STANDARDS.md: urban 1,000 m / rural 3,000 m for offices; 500 m parks; 2,500 m clinics.
        assert (LAYERS["service_office"].threshold.urban_m, LAYERS["service_office"].threshold.rural_m) == (1000, 3000)
        assert LAYERS["pocket_park"].threshold.urban_m == 500 and 300 in LAYERS["pocket_park"].threshold.options_m
        assert LAYERS["village_clinic"].threshold.rural_m == 2500
        assert LAYERS["police_station"].threshold.urban_m == 1500


class TestCensusAndDistricts:
    def test_two_census_sources_agree(self):
        with open(DATA / "census" / "census2020_county_population_tudigong_3704.csv", encoding="utf-8-sig") as f:
            other = {r["CODE"]: int(float(r["POPU"])) for r in csv.DictReader(f)}
        with open(CENSUS, encoding="utf-8-sig") as f:
            ours = {r["区划代码"]: int(r["人口数_合计"]) for r in csv.DictReader(f) if r["区划代码"] != "370400"}
        assert ours == other
        assert sum(ours.values()) == CENSUS_TOTAL

    def test_api_districts_totals_the_census(self, client):
        body = client.get("/api/districts").get_json()
        assert len(body["districts"]) == 6
        assert body["total_population"] == CENSUS_TOTAL
        names = {d["adcode"]: (d["name_zh"], d["name_en"]) for d in body["districts"]}
        assert names["370481"] == ("滕州市", "Tengzhou City")
        for d in body["districts"]:
            assert d["area_km2"] == pytest.approx(AREAS[d["adcode"]], rel=0.01)

    def test_boundaries_are_converted_from_gcj02(self, engine):
        """The stored seat of 市中区 lies about 500 m west of the AMap (GCJ-02) value."""
        doc = json.loads(BOUNDARIES.read_text(encoding="utf-8"))
        raw = next(f["properties"] for f in doc["features"] if f["properties"]["adcode"] == "370402")
        with engine.connect() as conn:
            lon, lat = conn.execute(text("SELECT ST_X(seat), ST_Y(seat) FROM district WHERE adcode = '370402'")).one()
        shift = Geod(ellps="WGS84").inv(lon, lat, float(raw["centerlng"]), float(raw["centerlat"]))[2]
        assert 400 < shift < 700
        assert float(raw["centerlng"]) - lon > 0.004  # GCJ-02 is east of the truth


class TestDemoCity:
    def test_layers_report_the_city_counts(self, client):
        layers = {item["key"]: item for item in client.get("/api/layers").get_json()["layers"]}
        for key, count in REPORT.items():
            assert layers[key]["count"] == count, key
        assert layers["pocket_park"]["count_by_kind"] == {"park": 12, "pocket_park": 61}
        assert layers["parking"]["capacity_total"] == 6235 + 3528
        assert layers["parking"]["capacity_by_kind"] == {"government_offhours": 6235, "new_public": 3528}
        assert all(item["synthetic"] for item in layers.values())
        assert all(sum(item["count_by_district"].values()) == item["count"] for item in layers.values())
        assert "outside" not in layers["service_office"]["count_by_district"]

    def test_layers_carry_thresholds_and_sources(self, client):
        item = next(i for i in client.get("/api/layers").get_json()["layers"] if i["key"] == "pocket_park")
        assert item["threshold"]["urban_m"] == 500
        assert "GB/T 51346-2019" in item["threshold"]["source"]

    def test_rehabilitation_equipment_count(self, engine):
        with engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM facility WHERE layer = 'village_clinic' "
                                  "AND (attrs->>'rehab_equipment')::boolean")).scalar_one()
        assert n == 1211

    def test_grid_sums_to_census_per_district(self, engine):
        with engine.connect() as conn:
            rows = dict(conn.execute(text(
                "SELECT d.adcode, d.population - coalesce(sum(c.population), 0) FROM district d "
                "LEFT JOIN demand_cell c ON c.district_adcode = d.adcode GROUP BY d.adcode")).all())
        assert rows and all(diff == 0 for diff in rows.values()), rows

    def test_everything_synthetic_is_labelled(self, engine):
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM facility WHERE NOT synthetic")).scalar_one() == 0
            assert conn.execute(text("SELECT count(*) FROM demand_cell WHERE NOT synthetic")).scalar_one() == 0
            assert conn.execute(text(
                "SELECT bool_and(name LIKE '%示例%' OR name LIKE '%合成%') FROM facility")).scalar_one()

    def test_loading_the_demo_again_is_a_no_op(self, engine):
        with engine.connect() as conn:
            before = conn.execute(text("SELECT count(*), max(updated_at) FROM facility")).one()
        assert load_demo(engine, echo=lambda *_: None) == {"skipped": True}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*), max(updated_at) FROM facility")).one() == before


class TestHealth:
    def test_healthz(self, client):
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.get_json()["database"] == "ok"

    def test_healthz_reports_an_unreachable_database(self):
        app = create_app({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "TESTING": True})
        response = app.test_client().get("/healthz")
        assert response.status_code == 503
        assert "database" in response.get_json()["error"]["message"]


class TestCompression:
    """Responses are compressed when the client asks (brotli preferred, gzip otherwise)."""

    @pytest.mark.parametrize("encoding,decode", [("br", brotli.decompress), ("gzip", gzip.decompress)])
    def test_json_is_compressed_and_decodes_to_the_same_document(self, client, encoding, decode):
        plain = client.get("/api/layers")
        packed = client.get("/api/layers", headers={"Accept-Encoding": encoding})
        assert packed.headers["Content-Encoding"] == encoding
        assert len(packed.data) < len(plain.data) / 3
        assert decode(packed.data) == plain.data

    def test_nothing_is_compressed_unasked(self, client):
        assert "Content-Encoding" not in client.get("/api/layers").headers
