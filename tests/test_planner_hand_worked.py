"""Planners' figures on a hand-worked 3×3 grid (the scratch database: no road network, so straight lines)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from db.editing import retire_facility

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
    # No station yet, 120 m reach (the plus around a site). Greedy would take the north-middle cell t21
    # (70 + 80 + 90 + the centre 50 = 290), then the centre t11 (20 + 40 + 60 = 120): 410. The optimum pair
    # is t12 (30 + 50 + 60 + 90 = 230) and t20 (40 + 70 + 80 = 190): 420, which no other pair reaches.
    body = scratch_app.test_client().get("/api/suggest?layer=police_station&n=2&radius_m=120").get_json()
    sites = body["sites"]
    assert [s["cell_id"] for s in sites] == ["t12", "t20"]
    assert [s["marginal_gain"] for s in sites] == [230, 190]
    assert body["greedy_newly_covered"] == 410 and body["newly_covered"] == 420
    assert [s["cumulative_percent"] for s in sites] == [pytest.approx(100 * 230 / 450, abs=0.01),
                                                        pytest.approx(100 * 420 / 450, abs=0.01)]
    assert (sites[0]["x_m"], sites[0]["y_m"]) == (X0 + 2 * STEP, Y0 + STEP)


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
    assert (row["villages"], row["villages_none_in_reach"]) == (2, 1)
    assert row["villages_without_own"] == 1  # the clinic belongs to its nearest village, v-near
    row = _row(client.get("/api/coverage?layer=village_clinic&radius_m=3500").get_json())
    assert row["villages_none_in_reach"] == 0 and row["villages_without_own"] == 1


def test_hand_worked_as_of(scratch_app, grid3):
    _facility(grid3, "pocket_park", X0 + STEP, Y0 + STEP, opened_on="2022-03-01")
    client = scratch_app.test_client()
    before = _row(client.get("/api/coverage?layer=pocket_park&as_of=2022-02-28").get_json())
    after = _row(client.get("/api/coverage?layer=pocket_park&as_of=2022-03-01").get_json())
    assert (before["covered_population"], after["covered_population"]) == (0, 450)  # 500 m reaches all 9




def test_as_of_counts_a_retired_facility_only_while_it_was_open(scratch_app, grid3):
    # Opened 2020-01-01, retired through the editor's SQL: open on any day before its retirement only.
    _facility(grid3, "pocket_park", X0 + STEP, Y0 + STEP, opened_on="2020-01-01")
    with grid3.begin() as conn:
        fid = conn.execute(text("SELECT id FROM facility WHERE layer = 'pocket_park'")).scalar()
        retire_facility(conn, fid, "closed for works")
        retired_on = conn.execute(text("SELECT retired_on FROM facility WHERE id = :i"), {"i": fid}).scalar()
        assert retired_on == dt.date.today()
        conn.execute(text("UPDATE facility SET retired_on = '2022-06-01' WHERE id = :i"), {"i": fid})
    client = scratch_app.test_client()
    covered = {day: _row(client.get(f"/api/coverage?layer=pocket_park&as_of={day}").get_json())["covered_population"]
               for day in ("2019-12-31", "2020-01-01", "2022-05-31", "2022-06-01")}
    assert covered == {"2019-12-31": 0, "2020-01-01": 450, "2022-05-31": 450, "2022-06-01": 0}
    today = client.get("/api/coverage?layer=pocket_park").get_json()
    assert _row(today)["covered_population"] == 0 and today["as_of_given"] is False


def test_a_future_date_is_refused_naming_as_of(scratch_app, grid3):
    res = scratch_app.test_client().get("/api/coverage?layer=pocket_park&as_of=2999-01-01")
    assert res.status_code == 400 and res.get_json()["error"]["parameter"] == "as_of"
    assert "plan" in res.get_json()["error"]["message"]


def test_without_a_network_the_default_is_straight_and_roads_are_refused(scratch_app, grid3):
    client = scratch_app.test_client()
    assert client.get("/api/coverage?layer=pocket_park").get_json()["by"] == "straight"
    res = client.get("/api/coverage?layer=pocket_park&by=walk")
    assert res.status_code == 400 and res.get_json()["error"]["parameter"] == "by"
