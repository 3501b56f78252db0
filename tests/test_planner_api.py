"""Planners' API: coverage, 2SFCA, village gaps, gap clusters and suggestions.

Expected values come from hand-worked cases (a 3×3 grid) and from an
independent PostGIS computation (ST_DWithin on ST_Transform(…, 4548)), never
from the code under test.
"""
from __future__ import annotations

import csv
import io
import subprocess

import pytest
from sqlalchemy import text

from layers import LAYERS

#: Thresholds written out from STANDARDS.md (urban m, rural m), not read from the registry.
STANDARD_REACH = {
    "service_office": (1000, 3000),
    "police_station": (1500, 1500),
    "pocket_park": (500, 500),
    "parking": (500, 500),
    "village_clinic": (2500, 2500),
}
DISTRICTS = ("370402", "370403", "370404", "370405", "370406", "370481")


def _city(rows, layer):
    return next(r for r in rows if r["layer"] == layer and r["district"] == "370400")


# --------------------------------------------------------------------------
# the done-when: API figures agree with an independent PostGIS check
# --------------------------------------------------------------------------

def _postgis_coverage(engine, layer: str, urban_m: float, rural_m: float) -> dict[str, float]:
    """Percent covered per district and for the city, by ST_DWithin in EPSG:4548."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE chk_fac ON COMMIT DROP AS SELECT ST_Transform(point, 4548) AS p "
                          "FROM facility WHERE layer = :layer AND status = 'active'"), {"layer": layer})
        conn.execute(text("CREATE INDEX ON chk_fac USING gist (p)"))
        conn.execute(text("ANALYZE chk_fac"))
        rows = conn.execute(text(
            "SELECT district_adcode, sum(population)::float AS pop, "
            "  coalesce(sum(population) FILTER (WHERE EXISTS (SELECT 1 FROM chk_fac f WHERE "
            "    ST_DWithin(f.p, ST_Transform(c.geom, 4548), CASE WHEN c.urban THEN :u ELSE :r END))), 0)::float"
            "  AS hit "
            "FROM demand_cell c GROUP BY ROLLUP (district_adcode)"), {"u": urban_m, "r": rural_m}).all()
    return {(code or "370400"): 100.0 * hit / pop for code, pop, hit in rows}


@pytest.mark.parametrize("layer", list(STANDARD_REACH))
def test_coverage_agrees_with_postgis_within_half_a_point(client, engine, layer):
    body = client.get(f"/api/coverage?layer={layer}").get_json()
    expected = _postgis_coverage(engine, layer, *STANDARD_REACH[layer])
    got = {r["district"]: r["percent"] for r in body["rows"]}
    assert set(got) == set(DISTRICTS) | {"370400"}
    for code, pct in expected.items():
        assert got[code] == pytest.approx(pct, abs=0.5), code


def test_every_row_states_its_threshold_and_standard(client):
    body = client.get("/api/coverage?layer=all&lang=en").get_json()
    layers = {r["layer"] for r in body["rows"]}
    assert layers == set(LAYERS) | {"composite"} and layers >= set(STANDARD_REACH)
    assert len(body["rows"]) == (len(LAYERS) + 1) * 7  # every layer + composite, 6 districts + city each
    for r in body["rows"]:
        assert r["threshold"]["standard"]
    office = _city(body["rows"], "service_office")
    assert (office["threshold"]["urban_m"], office["threshold"]["rural_m"]) == (1000, 3000)
    assert "1530" in office["threshold"]["standard"]
    assert "GB/T 51346-2019" in _city(body["rows"], "pocket_park")["threshold"]["standard"]
    assert body["synthetic"] is True and "SYNTHETIC" in body["note"]


def test_city_population_is_the_census_total(client):
    rows = client.get("/api/coverage?layer=police_station").get_json()["rows"]
    assert _city(rows, "police_station")["population"] == 3_855_601
    assert sum(r["population"] for r in rows if r["district"] != "370400") == 3_855_601


def test_composite_is_at_most_every_layer_that_applies(client, engine):
    rows = client.get("/api/coverage?layer=all").get_json()["rows"]
    life = _city(rows, "composite")["percent"]
    # Everyone needs a service office (urban and rural): the composite cannot beat it.
    assert life <= _city(rows, "service_office")["percent"]
    with engine.connect() as conn:
        urban_share = conn.execute(text(
            "SELECT 100.0 * sum(population) FILTER (WHERE urban) / sum(population) FROM demand_cell")).scalar()
    # Urban residents need a park too: composite <= rural share + urban park coverage.
    park = _city(rows, "pocket_park")
    assert life <= (100 - float(urban_share)) + park["percent"] + 0.01


def test_radius_override_changes_the_threshold(client):
    base = _city(client.get("/api/coverage?layer=pocket_park").get_json()["rows"], "pocket_park")
    wide = _city(client.get("/api/coverage?layer=pocket_park&radius_m=2000").get_json()["rows"], "pocket_park")
    assert wide["threshold"] | {"standard": None} == wide["threshold"] | {
        "urban_m": 2000, "rural_m": 2000, "overridden": True, "standard": None}
    assert wide["percent"] > base["percent"]


# --------------------------------------------------------------------------
# over time
# --------------------------------------------------------------------------

@pytest.mark.parametrize("layer", ["police_station", "pocket_park"])
def test_this_years_new_sites_raise_coverage(client, layer):
    before = _city(client.get(f"/api/coverage?layer={layer}&as_of=2021-12-31").get_json()["rows"], layer)
    after = _city(client.get(f"/api/coverage?layer={layer}").get_json()["rows"], layer)
    assert after["percent"] > before["percent"]
    if layer == "police_station":  # all 37 stations are new or rebuilt in H1 2022
        assert before["covered_population"] == 0


# --------------------------------------------------------------------------
# gaps and suggestions on the demo city
# --------------------------------------------------------------------------

def test_gaps_are_clusters_largest_first_adding_up_to_the_uncovered(client):
    body = client.get("/api/gaps?layer=pocket_park&limit=5000").get_json()
    pops = [f["properties"]["population"] for f in body["features"]]
    assert pops == sorted(pops, reverse=True) and len(pops) == body["clusters_total"] > 1
    city = _city(client.get("/api/coverage?layer=pocket_park").get_json()["rows"], "pocket_park")
    urban_uncovered = city["applicable"]["population"] - city["applicable"]["covered_population"]
    assert sum(pops) == pytest.approx(urban_uncovered, abs=len(pops))
    assert body["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    geometry = body["features"][0]["geometry"]
    ring = geometry["coordinates"][0] if geometry["type"] == "MultiPolygon" else geometry["coordinates"]
    lon, lat = ring[0][0]
    assert 116.8 < lon < 118.2 and 34.2 < lat < 35.5  # WGS-84 degrees over Zaozhuang


def test_gaps_of_one_district_stay_in_it(client):
    body = client.get("/api/gaps?layer=parking&district=370405&limit=50").get_json()
    assert body["features"] and {f["properties"]["district"] for f in body["features"]} == {"370405"}


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
    r = client.get("/api/coverage?layer=village_clinic&format=csv")
    assert r.status_code == 200 and r.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert [row["district_name"] for row in rows][:2] == ["市中区", "薛城区"]
    assert rows[-1]["district_name"] == "枣庄市" and rows[-1]["population"] == "3855601"
    assert rows[-1]["villages"] == "2400"


def test_coverage_xlsx_matches_the_json(client):
    from openpyxl import load_workbook

    r = client.get("/api/coverage?layer=parking&format=xlsx")
    sheet = load_workbook(io.BytesIO(r.data)).active
    values = list(sheet.values)
    header = values[0]
    city = dict(zip(header, values[-1], strict=True))
    body = _city(client.get("/api/coverage?layer=parking").get_json()["rows"], "parking")
    assert city["district_name"] == "枣庄市"
    assert city["percent"] == body["percent"] and city["spaces_per_1000"] == body["spaces_per_1000"]


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
    ("/planner?layer=parks", "layer"),
])
def test_bad_input_is_a_400_naming_the_parameter(client, url, parameter):
    r = client.get(url)
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert err["parameter"] == parameter and parameter in err["message"]


# --------------------------------------------------------------------------
# hand-worked 3×3 grid
# --------------------------------------------------------------------------

X0, Y0, STEP = 545_000.0, 3_857_000.0, 100.0
#: Residents per cell, row by row from the south-west corner.
POP = [[10, 20, 30], [40, 50, 60], [70, 80, 90]]


@pytest.fixture()
def grid3(scratch_engine):
    """A 3×3 grid of 100 m cells in Shizhong (EPSG:4548), 450 residents, all urban."""
    with scratch_engine.begin() as conn:
        conn.execute(text("DELETE FROM demand_cell"))
        conn.execute(text("DELETE FROM village"))
        for row in range(3):
            for col in range(3):
                x, y = X0 + col * STEP, Y0 + row * STEP
                conn.execute(text(
                    "INSERT INTO demand_cell (cell_id, district_adcode, population, urban, resolution_m, x_m, y_m,"
                    " geom) VALUES (:cid, '370402', :pop, true, :res, :x, :y,"
                    " ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 4548), 4326))"),
                    {"cid": f"t{row}{col}", "pop": POP[row][col], "res": STEP, "x": x, "y": y})
    yield scratch_engine
    with scratch_engine.begin() as conn:
        conn.execute(text("DELETE FROM demand_cell"))
        conn.execute(text("DELETE FROM village"))


def _facility(engine, layer, x, y, capacity=None, opened_on=None, sid="f1"):
    """One facility at (x, y) EPSG:4548 metres, stored in WGS-84 like every facility."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO facility (layer, source_id, name, capacity, opened_on, district_adcode, geom, point)"
            " SELECT :layer, :sid, 'test', :cap, CAST(:opened AS date), '370402', p, p FROM"
            " (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 4548), 4326) AS p) AS g"),
            {"layer": layer, "sid": sid, "cap": capacity, "opened": opened_on, "x": x, "y": y})


def _row(body, code="370402"):
    return next(r for r in body["rows"] if r["district"] == code)


def test_hand_worked_coverage_of_the_plus(scratch_app, grid3):
    # A station at the centre reaches the plus (edge cells 100 m away) at 120 m, not the corners (141 m).
    _facility(grid3, "police_station", X0 + STEP, Y0 + STEP)
    body = scratch_app.test_client().get("/api/coverage?layer=police_station&radius_m=120").get_json()
    row = _row(body)
    assert (row["population"], row["covered_population"]) == (450, 20 + 40 + 50 + 60 + 80)
    assert row["percent"] == pytest.approx(100 * 250 / 450, abs=0.01)
    wide = _row(scratch_app.test_client().get("/api/coverage?layer=police_station&radius_m=150").get_json())
    assert wide["covered_population"] == 450


def test_a_facility_added_after_a_report_shows_in_the_next_one(scratch_app, grid3):
    # The first report is remembered; adding a station must not leave it stale (nor the grid it used).
    client = scratch_app.test_client()
    assert _row(client.get("/api/coverage?layer=police_station&radius_m=120").get_json())["covered_population"] == 0
    _facility(grid3, "police_station", X0 + STEP, Y0 + STEP)
    row = _row(client.get("/api/coverage?layer=police_station&radius_m=120").get_json())
    assert (row["population"], row["covered_population"]) == (450, 250)  # the plus, as in the hand-worked case


def test_hand_worked_2sfca(scratch_app, grid3):
    # 90 spaces at the centre, 120 m: catchment 250 residents -> 360 spaces per 1,000 in the plus,
    # 0 at the corners; district mean weighted by residents = 360 * 250 / 450 = 200.
    _facility(grid3, "parking", X0 + STEP, Y0 + STEP, capacity=90)
    row = _row(scratch_app.test_client().get("/api/coverage?layer=parking&radius_m=120").get_json())
    assert row["spaces_per_1000"] == pytest.approx(200.0, abs=0.01)


def test_hand_worked_suggestions(scratch_app, grid3):
    # No station yet, 120 m reach. The north-middle cell t21 (80) reaches 70, 90 and the centre 50:
    # 290 residents, more than the centre's plus (250). Left: 10, 20, 30, 40, 60. The centre t11 still
    # reaches 20, 40 and 60: 120, more than any corner (t02: 20 + 30 + 60 = 110; t00: 10 + 20 + 40 = 70).
    body = scratch_app.test_client().get("/api/suggest?layer=police_station&n=2&radius_m=120").get_json()
    sites = body["sites"]
    assert [s["cell_id"] for s in sites] == ["t21", "t11"]
    assert [s["marginal_gain"] for s in sites] == [290, 120]
    assert [s["cumulative_percent"] for s in sites] == [pytest.approx(100 * 290 / 450, abs=0.01),
                                                        pytest.approx(100 * 410 / 450, abs=0.01)]
    assert (sites[0]["x_m"], sites[0]["y_m"]) == (X0 + STEP, Y0 + 2 * STEP)


def test_hand_worked_suggestions_count_existing_cover(scratch_app, grid3):
    # A station at the centre covers the plus (250); the corners are left: 90 first, then 70.
    _facility(grid3, "police_station", X0 + STEP, Y0 + STEP)
    body = scratch_app.test_client().get("/api/suggest?layer=police_station&n=2&radius_m=120").get_json()
    assert body["baseline_covered"] == 250
    assert [s["marginal_gain"] for s in body["sites"]] == [90, 70]
    assert body["sites"][-1]["cumulative_covered"] == 410


def test_hand_worked_villages_without_a_clinic(scratch_app, grid3):
    # A clinic at the centre; one village next to it, one 3 km east: at 2,500 m one village has no clinic.
    _facility(grid3, "village_clinic", X0 + STEP, Y0 + STEP)
    with grid3.begin() as conn:
        for vid, dx in (("v-near", 0.0), ("v-far", 3000.0)):
            conn.execute(text(
                "INSERT INTO village (village_id, name, district_adcode, population, geom) VALUES "
                "(:v, :v, '370402', 100, ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 4548), 4326))"),
                {"v": vid, "x": X0 + STEP + dx, "y": Y0 + STEP})
    client = scratch_app.test_client()
    row = _row(client.get("/api/coverage?layer=village_clinic").get_json())
    assert (row["villages"], row["villages_without_clinic"]) == (2, 1)
    row = _row(client.get("/api/coverage?layer=village_clinic&radius_m=3500").get_json())
    assert row["villages_without_clinic"] == 0


def test_hand_worked_as_of(scratch_app, grid3):
    _facility(grid3, "pocket_park", X0 + STEP, Y0 + STEP, opened_on="2022-03-01")
    client = scratch_app.test_client()
    before = _row(client.get("/api/coverage?layer=pocket_park&as_of=2022-02-28").get_json())
    after = _row(client.get("/api/coverage?layer=pocket_park&as_of=2022-03-01").get_json())
    assert (before["covered_population"], after["covered_population"]) == (0, 450)  # 500 m reaches all 9


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
        assert f"{glat:.6f}"[:8] in html and f"{glon:.6f}"[:9] in html  # the marker sits at the GCJ-02 position

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
# the registry is the one source: change a record, the figures follow
# --------------------------------------------------------------------------

@pytest.fixture()
def registry(monkeypatch):
    """Change a layer's record for one test: ``registry(key, applies_to=...)``.

    Remembered reports are forgotten with each change and after the test,
    so none computed from another record is served.
    """
    from dataclasses import replace

    from services import cache

    def change(key, **changes):
        monkeypatch.setitem(LAYERS, key, replace(LAYERS[key], **changes))
        cache.clear()

    yield change
    cache.clear()


def _population(engine, where: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT sum(population) FROM demand_cell WHERE {where}")).scalar())


@pytest.mark.parametrize("classes, where", [(("rural",), "NOT urban"), (("urban",), "urban"),
                                            (("urban", "rural"), "true")])
def test_applicable_population_follows_the_records_applies_to(client, engine, registry, classes, where):
    key = next(iter(LAYERS))
    registry(key, applies_to=classes)
    city = _city(client.get(f"/api/coverage?layer={key}").get_json()["rows"], key)
    assert city["applicable"]["cells"] == "+".join(classes)
    assert city["applicable"]["population"] == _population(engine, where)
    assert city["population"] == _population(engine, "true")  # the whole city is still reported


def _postgis_composite(engine, layer, urban_m: float, rural_m: float, in_urban: bool, in_rural: bool) -> float:
    """Percent of residents whose cell either is out of the layer's classes or has one of its facilities in reach."""
    with engine.connect() as conn:
        return float(conn.execute(text(
            "WITH f AS (SELECT ST_Transform(point, 4548) AS p FROM facility WHERE layer = :layer AND status = 'active')"
            " SELECT 100.0 * coalesce(sum(population) FILTER (WHERE NOT (CASE WHEN c.urban THEN :iu ELSE :ir END)"
            "   OR EXISTS (SELECT 1 FROM f WHERE ST_DWithin(f.p, ST_Transform(c.geom, 4548),"
            "              CASE WHEN c.urban THEN :u ELSE :r END))), 0) / sum(population)"
            " FROM demand_cell c"), {"layer": layer, "u": urban_m, "r": rural_m, "iu": in_urban, "ir": in_rural}
        ).scalar())


def test_the_composite_is_the_layers_the_registry_puts_in_it(client, engine, registry):
    # Keep one layer that applies to one class of cells in the composite and take the others out:
    # the life circle is then that layer's cover, with the other class's residents counted in.
    kept = next(layer for layer in LAYERS.values() if len(layer.applies_to) == 1)
    for key in LAYERS:
        if key != kept.key:
            registry(key, in_composite=False)
    rows = client.get("/api/coverage?layer=all").get_json()["rows"]
    t = kept.threshold
    expected = _postgis_composite(engine, kept.key, t.urban_m, t.rural_m, *(c in kept.applies_to
                                                                           for c in ("urban", "rural")))
    assert _city(rows, "composite")["percent"] == pytest.approx(expected, abs=0.5)
    assert {r["layer"] for r in rows} == set(LAYERS) | {"composite"}  # every layer still has its rows

    registry(kept.key, in_composite=False)  # no layer left in the composite: no composite rows
    rows = client.get("/api/coverage?layer=all").get_json()["rows"]
    assert "composite" not in {r["layer"] for r in rows}


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
