"""Planners' API: suggestions, downloads, bad input, candidate sources, the basemap and the declared bounds.

Expected values come from hand-worked cases and independent computations, never from the code under test.
"""
from __future__ import annotations

import csv
import io
import subprocess

import pytest
from sqlalchemy import text

from layers import LAYERS


def _city(rows, layer):
    return next(r for r in rows if r["layer"] == layer and r["district"] == "370400")


def test_suggested_sites_have_falling_gains_and_rising_coverage(client):
    body = client.get("/api/suggest?layer=pocket_park&n=10").get_json()
    sites = body["sites"]
    assert len(sites) == 10
    gains = [s["marginal_gain"] for s in sites]
    assert gains == sorted(gains, reverse=True) and gains[-1] > 0
    assert sites[-1]["cumulative_covered"] == body["baseline_covered"] + sum(gains)
    cum = [s["cumulative_percent"] for s in sites]
    assert cum == sorted(cum) and cum[0] > body["baseline_percent"]


def test_gaps_open_in_gdal(live_server):
    out = subprocess.run(["ogrinfo", "-ro", "-so", "-al", f"{live_server}/api/gaps?layer=police_station&limit=7"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Feature Count: 7" in out.stdout
    assert "population" in out.stdout


# --------------------------------------------------------------------------
# downloads
# --------------------------------------------------------------------------

def test_coverage_csv_has_a_bom_and_chinese_names(client):
    r = client.get("/api/coverage?layer=village_clinic&format=csv&lang=en")
    assert r.status_code == 200 and r.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert [row["area_name"] for row in rows][:2] == ["Shizhong District", "Xuecheng District"]
    assert rows[-1]["area_name"] == "Zaozhuang City" and rows[-1]["population_all_residents"] == "3855601"
    assert rows[-1]["villages"] == "2400"


def test_coverage_xlsx_matches_the_json(client):
    from openpyxl import load_workbook

    r = client.get("/api/coverage?layer=parking&format=xlsx&lang=en")
    sheet = load_workbook(io.BytesIO(r.data)).active
    values = list(sheet.values)
    header = values[0]
    city = dict(zip(header, values[-1], strict=True))
    body = _city(client.get("/api/coverage?layer=parking").get_json()["rows"], "parking")
    assert city["area_name"] == "Zaozhuang City"
    assert city["percent_applicable"] == body["percent"] and city["spaces_per_1000"] == body["spaces_per_1000"]


@pytest.mark.parametrize("url", ["/api/gaps?layer=parking&format=csv", "/api/suggest?layer=parking&n=3&format=csv"])
def test_gaps_and_suggest_csv(client, url):
    r = client.get(url)
    assert r.data.startswith(b"\xef\xbb\xbf")
    assert len(list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))) >= 2


# --------------------------------------------------------------------------
# bad input: a clear 400 naming the parameter
# --------------------------------------------------------------------------

@pytest.mark.parametrize("url, parameter", [
    ("/api/coverage?layer=parks", "layer"),
    ("/api/coverage", "layer"),
    ("/api/coverage?layer=1;%20DROP%20TABLE%20facility;", "layer"),
    ("/api/coverage?layer=all&district=999999", "district"),
    ("/api/coverage?layer=parking&radius_m=-5", "radius_m"),
    ("/api/coverage?layer=parking&radius_m=abc", "radius_m"),
    ("/api/coverage?layer=parking&radius_m=1e9", "radius_m"),
    ("/api/coverage?layer=parking&radius_m=nan", "radius_m"),
    ("/api/coverage?layer=parking&as_of=2021-13-01", "as_of"),
    ("/api/coverage?layer=parking&format=pdf", "format"),
    ("/api/gaps?layer=all", "layer"),
    ("/api/gaps?layer=parking&limit=0", "limit"),
    ("/api/gaps?layer=parking&cells=some", "cells"),
    ("/api/suggest?layer=parking&n=0", "n"),
    ("/api/suggest?layer=parking&n=51", "n"),
    ("/api/suggest?layer=parking&n=2.5", "n"),
    ("/api/suggest?layer=parking&format=xlsx", "format"),
])
def test_bad_input_is_a_400_naming_the_parameter(client, url, parameter):
    r = client.get(url)
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert err["parameter"] == parameter and parameter in err["message"]


# --------------------------------------------------------------------------
# hand-worked 3×3 grid
# --------------------------------------------------------------------------

class TestCandidateLayer:
    def test_sites_can_come_from_another_layer(self, client, engine):
        """Which existing service offices would best host new police posts?"""
        body = client.get("/api/suggest?layer=police_station&n=3&candidates=service_office").get_json()
        assert body["candidate_source"] == "service_office" and len(body["sites"]) == 3
        ids = [s["candidate_facility_id"] for s in body["sites"]]
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, layer, ST_X(point), ST_Y(point) FROM facility WHERE id = ANY(:ids)"),
                                {"ids": ids}).all()
        assert {r[1] for r in rows} == {"service_office"} and len(rows) == 3
        where = {r[0]: (r[2], r[3]) for r in rows}
        for site in body["sites"]:
            lon, lat = where[site["candidate_facility_id"]]
            assert site["lon"] == pytest.approx(lon, abs=1e-5) and site["lat"] == pytest.approx(lat, abs=1e-5)
        gains = [s["marginal_gain"] for s in body["sites"]]
        assert gains == sorted(gains, reverse=True) and gains[0] > 0

    def test_unknown_candidate_source_is_a_400(self, client):
        res = client.get("/api/suggest?layer=police_station&candidates=schools")
        assert res.status_code == 400 and res.get_json()["error"]["parameter"] == "candidates"


class TestPlannerBasemap:
    def test_amap_basemap_puts_every_overlay_in_gcj02(self, database_url, client):
        from geo.crs import wgs84_to_gcj02
        from web import create_app

        amap = create_app({"DATABASE_URL": database_url, "TESTING": True, "BASEMAP": "amap"}).test_client()
        page = amap.get("/planner?layer=pocket_park&n=1")
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "autonavi.com" in html
        assert "autonavi.com" in page.headers["Content-Security-Policy"]
        site = client.get("/api/suggest?layer=pocket_park&n=1").get_json()["sites"][0]
        glon, glat = wgs84_to_gcj02(site["lon"], site["lat"])
        marker = amap.get("/planner/sites?layer=pocket_park&n=1").get_json()["markers"][0]  # fetched by the page
        assert abs(marker["lat"] - glat) < 1e-6 and abs(marker["lon"] - glon) < 1e-6  # at the GCJ-02 position

        offline = client.get("/planner?layer=pocket_park&n=1").get_data(as_text=True)
        assert "autonavi.com" not in offline and "tile.openstreetmap" not in offline


class TestCandidateSets:
    def test_a_planner_loads_candidate_sites_and_suggestions_pick_among_them(self, runner, client, engine,
                                                                              tmp_path):
        path = tmp_path / "sites.csv"
        path.write_text("编号,名称,经度,纬度\n"
                        "C1,市中区空地,117.5560,34.8640\n"     # central Shizhong: many residents
                        "C2,滕州闲置楼,117.1650,35.0880\n"     # central Tengzhou: many residents
                        "C3,山区空地,117.3500,35.2200\n",      # hills of Shanting in the north: few
                        encoding="utf-8")
        try:
            result = runner.invoke(args=["etl", "candidates", str(path), "--set", "owned_land", "--crs", "wgs84"])
            assert result.exit_code == 0, result.output
            assert "3 sites" in result.output
            body = client.get("/api/suggest?layer=pocket_park&n=2&candidates=set:owned_land").get_json()
            assert body["candidates"] == 3 and len(body["sites"]) == 2
            with engine.connect() as conn:
                ids = dict(conn.execute(text("SELECT id, source_id FROM candidate_site "
                                             "WHERE set_name = 'owned_land'")).all())
            picked = {ids[s["candidate_facility_id"]] for s in body["sites"]}
            assert picked <= {"C1", "C2", "C3"} and "C3" not in picked  # the hills help fewest people
        finally:
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM candidate_site WHERE set_name = 'owned_land'"))

    def test_a_bad_candidate_file_writes_nothing(self, runner, engine, tmp_path):
        path = tmp_path / "sites.csv"
        path.write_text("编号,名称,经度,纬度\nC1,空地,117.5560,34.8640\nC9,上海的点,121.47,31.23\n", encoding="utf-8")
        result = runner.invoke(args=["etl", "candidates", str(path), "--set", "bad_set", "--crs", "wgs84"])
        assert result.exit_code == 1 and "rejected row 3" in result.output
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM candidate_site WHERE set_name = 'bad_set'")).scalar() == 0

    def test_an_unknown_set_is_a_400_naming_the_parameter(self, client):
        res = client.get("/api/suggest?layer=pocket_park&candidates=set:nope")
        assert res.status_code == 400 and res.get_json()["error"]["parameter"] == "candidates"


# --------------------------------------------------------------------------
# one declaration per bound: the code, /openapi.json and the planner's form agree
# --------------------------------------------------------------------------

def _schema(doc, path, name):
    return next(p["schema"] for p in doc["paths"][path]["get"]["parameters"] if p.get("name") == name)


def _form_bounds(html: str, name: str) -> tuple[float, float]:
    import re

    tag = re.search(rf'<input type="number" name="{name}"[^>]*>', html).group(0)
    return float(re.search(r'min="([^"]+)"', tag).group(1)), float(re.search(r'max="([^"]+)"', tag).group(1))


@pytest.mark.parametrize("name, path, url", [
    ("radius_m", "/api/coverage", "/api/coverage?layer={layer}&radius_m={value}"),
    ("n", "/api/suggest", "/api/suggest?layer={layer}&n={value}"),
])
def test_bounds_agree_between_code_document_and_form(client, name, path, url):
    layer = next(iter(LAYERS))
    schema = _schema(client.get("/openapi.json").get_json(), path, name)
    lo, hi = schema["minimum"], schema["maximum"]
    assert _form_bounds(client.get(f"/planner?layer={layer}").get_data(as_text=True), name) == (lo, hi)
    step = 1 if schema["type"] == "integer" else 0.5
    for value, ok in ((lo, True), (hi, True), (lo - step, False), (hi + step, False)):
        shown = int(value) if float(value).is_integer() else value
        res = client.get(url.format(layer=layer, value=shown))
        assert (res.status_code == 200) is ok, (name, value, res.status_code)
        if not ok:
            assert res.get_json()["error"]["parameter"] == name


def test_gaps_limit_bound_is_the_documented_one(client):
    schema = _schema(client.get("/openapi.json").get_json(), "/api/gaps", "limit")
    layer = next(iter(LAYERS))
    assert client.get(f"/api/gaps?layer={layer}&limit={schema['maximum']}").status_code == 200
    res = client.get(f"/api/gaps?layer={layer}&limit={schema['maximum'] + 1}")
    assert res.status_code == 400 and res.get_json()["error"]["parameter"] == "limit"
