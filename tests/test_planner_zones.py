"""Planners' own zones: loaded all or nothing with ``flask etl zones``, every figure by them.

Each zone's residents are checked against an independent SQL sum over the cells its polygon contains.
"""
from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import text

#: Two rectangles over Shizhong and Tengzhou (WGS-84), a planner's "units".
ZONES = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"zone_id": "SZ1", "name": "市中城区单元"},
     "geometry": {"type": "Polygon", "coordinates": [[[117.50, 34.82], [117.62, 34.82], [117.62, 34.90],
                                                      [117.50, 34.90], [117.50, 34.82]]]}},
    {"type": "Feature", "properties": {"zone_id": "TZ1", "name": "滕州城区单元"},
     "geometry": {"type": "Polygon", "coordinates": [[[117.10, 35.04], [117.22, 35.04], [117.22, 35.13],
                                                      [117.10, 35.13], [117.10, 35.04]]]}}]}


@pytest.fixture()
def units(runner, engine, tmp_path):
    path = tmp_path / "units.geojson"
    path.write_text(json.dumps(ZONES, ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(args=["etl", "zones", str(path), "--set", "units"])
    assert result.exit_code == 0, result.output
    yield "units"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM zone WHERE set_name = 'units'"))


def _sql_population(engine, zone_id, urban_only=False):
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT coalesce(sum(c.population), 0) FROM demand_cell c JOIN zone z ON ST_Contains(z.geom, c.geom)"
            " WHERE z.set_name = 'units' AND z.zone_id = :z AND (c.urban OR NOT :u)"), {"z": zone_id, "u": urban_only}
        ).scalar()


def test_figures_by_zone_count_the_residents_inside_each(client, engine, units):
    body = client.get("/api/coverage?layer=police_station&zones=set:units&by=straight").get_json()
    rows = {r["zone"]: r for r in body["rows"] if "zone" in r}
    assert set(rows) == {"SZ1", "TZ1"} and body["areas"] == "zone"
    for zone_id, row in rows.items():
        assert row["all_residents"]["population"] == _sql_population(engine, zone_id)
        assert row["population"] == _sql_population(engine, zone_id, urban_only=True)
    assert rows["SZ1"]["zone_name"] == "市中城区单元"
    city = next(r for r in body["rows"] if r.get("district") == "370400")
    assert city["all_residents"]["population"] == 3_855_601  # the city row is still the whole city


def test_zones_reach_the_downloads_and_the_page(client, units):
    r = client.get("/api/coverage?layer=parking&zones=set:units&format=csv&lang=en")
    names = [row["area_name"] for row in csv.DictReader(io.StringIO(r.data.decode("utf-8-sig")))]
    assert names[:2] == ["市中城区单元", "滕州城区单元"]
    page = client.get("/planner?layer=parking&zones=set:units&lang=en").get_data(as_text=True)
    assert "市中城区单元" in page and "滕州城区单元" in page


def test_a_zone_outside_the_city_writes_nothing(runner, engine, tmp_path):
    bad = json.loads(json.dumps(ZONES))
    bad["features"][1]["geometry"]["coordinates"] = [[[121.0, 31.0], [121.1, 31.0], [121.1, 31.1], [121.0, 31.0]]]
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(bad), encoding="utf-8")
    result = runner.invoke(args=["etl", "zones", str(path), "--set", "bad_units"])
    assert result.exit_code == 1 and "rejected feature 2" in result.output and "outside the city" in result.output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM zone WHERE set_name = 'bad_units'")).scalar() == 0


def test_an_unknown_zone_set_is_a_400_naming_zones(client):
    res = client.get("/api/coverage?layer=parking&zones=set:nope")
    assert res.status_code == 400 and res.get_json()["error"]["parameter"] == "zones"


def test_the_demo_ships_a_synthetic_zone_set(runner, client, engine):
    result = runner.invoke(args=["etl", "zones", "--demo"])
    assert result.exit_code == 0, result.output
    body = client.get("/api/coverage?layer=pocket_park&zones=set:demo_units&by=straight").get_json()
    zones = [r for r in body["rows"] if "zone" in r]
    assert len(zones) >= 12 and all("合成" in r["zone_name"] for r in zones)
    assert sum(r["all_residents"]["population"] for r in zones) == 3_855_601  # the quarters tile the city
    assert body["synthetic"] is True
