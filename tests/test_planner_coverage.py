"""Planners' coverage on the demo city: figures against an independent PostGIS computation, over time,
gaps, and the registry as the one source of layer facts.

Expected values come from PostGIS (ST_DWithin on ST_Transform(…, 4548)) measured in a straight line,
so these requests ask for ``by=straight``; network figures are tested in test_planner_network.py.
"""
from __future__ import annotations

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
    """Percent of all residents covered per district and for the city, by ST_DWithin in EPSG:4548 to each
    facility's geometry (a park's polygon, so its edge)."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE chk_fac ON COMMIT DROP AS SELECT ST_Transform(geom, 4548) AS p "
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
    body = client.get(f"/api/coverage?layer={layer}&by=straight").get_json()
    expected = _postgis_coverage(engine, layer, *STANDARD_REACH[layer])
    got = {r["district"]: r["all_residents"]["percent"] for r in body["rows"]}
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
    assert _city(rows, "police_station")["all_residents"]["population"] == 3_855_601
    assert sum(r["all_residents"]["population"] for r in rows if r["district"] != "370400") == 3_855_601


def test_composite_is_at_most_every_layer_that_applies(client, engine):
    rows = client.get("/api/coverage?layer=all&by=straight").get_json()["rows"]
    life = _city(rows, "composite")["percent"]
    # Everyone needs a service office (urban and rural): the composite cannot beat it.
    assert life <= _city(rows, "service_office")["percent"]
    with engine.connect() as conn:
        urban_share = conn.execute(text(
            "SELECT 100.0 * sum(population) FILTER (WHERE urban) / sum(population) FROM demand_cell")).scalar()
    # Urban residents need a park too: composite <= rural share + urban park coverage.
    park = _city(rows, "pocket_park")
    assert life <= (100 - float(urban_share)) + park["all_residents"]["percent"] + 0.01


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
    urban_uncovered = city["population"] - city["covered_population"]
    assert sum(pops) == pytest.approx(urban_uncovered, abs=len(pops))
    assert body["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    geometry = body["features"][0]["geometry"]
    ring = geometry["coordinates"][0] if geometry["type"] == "MultiPolygon" else geometry["coordinates"]
    lon, lat = ring[0][0]
    assert 116.8 < lon < 118.2 and 34.2 < lat < 35.5  # WGS-84 degrees over Zaozhuang


def test_gaps_of_one_district_stay_in_it(client):
    body = client.get("/api/gaps?layer=parking&district=370405&limit=50").get_json()
    assert body["features"] and {f["properties"]["district"] for f in body["features"]} == {"370405"}


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
    assert city["cells"] == "+".join(classes)
    assert city["population"] == _population(engine, where)
    assert city["all_residents"]["population"] == _population(engine, "true")  # the whole city beside it


def _postgis_composite(engine, layer, urban_m: float, rural_m: float, in_urban: bool, in_rural: bool) -> float:
    """Percent of residents whose cell either is out of the layer's classes or has one of its facilities in reach."""
    with engine.connect() as conn:
        return float(conn.execute(text(
            "WITH f AS (SELECT ST_Transform(geom, 4548) AS p FROM facility WHERE layer = :layer AND status = 'active')"
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
    rows = client.get("/api/coverage?layer=all&by=straight").get_json()["rows"]
    t = kept.threshold
    expected = _postgis_composite(engine, kept.key, t.urban_m, t.rural_m, *(c in kept.applies_to
                                                                           for c in ("urban", "rural")))
    assert _city(rows, "composite")["percent"] == pytest.approx(expected, abs=0.5)
    assert {r["layer"] for r in rows} == set(LAYERS) | {"composite"}  # every layer still has its rows

    registry(kept.key, in_composite=False)  # no layer left in the composite: no composite rows
    rows = client.get("/api/coverage?layer=all").get_json()["rows"]
    assert "composite" not in {r["layer"] for r in rows}
