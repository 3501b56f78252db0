"""Coverage along the roads: never more than in a straight line, and the API and page say which measure.

On the demo's synthetic road network (loaded with the demo city). Roads are never shorter than the
straight line, so in every district and layer the residents covered by network cannot exceed those
covered in a straight line. The independent check of one layer: pgRouting's ``pgr_drivingDistance``
in the database, from every facility's nearest vertex.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text

from layers import LAYERS


@pytest.fixture(scope="module")
def both(app):
    client = app.test_client()
    straight = client.get("/api/coverage?layer=all&by=straight").get_json()
    walk = client.get("/api/coverage?layer=all&by=walk").get_json()
    return straight, walk


def test_network_coverage_is_at_most_straight_in_every_district_and_layer(both):
    straight, walk = both
    assert straight["by"] == "straight" and walk["by"] == "walk"
    pairs = list(zip(straight["rows"], walk["rows"], strict=True))
    assert len(pairs) == (len(LAYERS) + 1) * 7
    for s, w in pairs:
        assert (s["layer"], s["district"]) == (w["layer"], w["district"])
        assert w["covered_population"] <= s["covered_population"], (s["layer"], s["district"])
    assert sum(w["covered_population"] for _, w in pairs) < sum(s["covered_population"] for s, _ in pairs)


def test_each_row_says_how_it_was_measured(both):
    _, walk = both
    police = next(r for r in walk["rows"] if r["layer"] == "police_station" and r["district"] == "370400")
    office = next(r for r in walk["rows"] if r["layer"] == "service_office" and r["district"] == "370400")
    assert police["measure"]["urban"]["network"] == "drive"  # a patrol's 3 minutes are driven
    assert office["measure"]["urban"]["network"] == "walk" and office["measure"]["rural"]["threshold_mode"] == "any"


def test_the_default_is_walking_when_a_network_is_loaded(client):
    assert client.get("/api/coverage?layer=parking").get_json()["by"] == "walk"
    assert client.get("/api/gaps?layer=parking&limit=1").get_json()["by"] == "walk"
    assert client.get("/api/suggest?layer=parking&n=1").get_json()["by"] == "walk"


def test_walking_coverage_agrees_with_pgrouting(client, engine):
    # The village clinics by walking network, 2,500 m: pgRouting from each clinic's nearest vertex, cells
    # at their nearest vertex; access legs added on both sides.
    body = client.get("/api/coverage?layer=village_clinic&by=walk&radius_m=2500").get_json()
    city = next(r for r in body["rows"] if r["district"] == "370400")
    with engine.connect() as conn:
        share = conn.execute(text("""
            WITH f AS (SELECT DISTINCT x.id AS vid FROM facility f CROSS JOIN LATERAL (SELECT id FROM road_vertex v
                  ORDER BY v.geom <-> f.point LIMIT 1) x WHERE f.layer = 'village_clinic' AND f.status = 'active'),
            dd AS (SELECT node, min(agg_cost) AS d FROM pgr_drivingDistance(
                   'SELECT id, source, target, length_m AS cost, length_m AS reverse_cost FROM road_edge WHERE walk',
                   (SELECT array_agg(vid) FROM f), 2500, false) GROUP BY node),
            c AS (SELECT c.population, x.id AS vid, ST_Distance(ST_Transform(c.geom, 4548),
                         ST_Transform(x.geom, 4548)) AS acc
                  FROM demand_cell c CROSS JOIN LATERAL (SELECT id, geom FROM road_vertex v
                  ORDER BY v.geom <-> c.geom LIMIT 1) x WHERE NOT c.urban)
            SELECT 100.0 * sum(population) FILTER (WHERE dd.d + c.acc <= 2500) / sum(population)
            FROM c LEFT JOIN dd ON dd.node = c.vid""")).scalar()
    # Vertex snapping (pgRouting) against edge snapping (ours): the same picture within a few points.
    assert city["percent"] == pytest.approx(float(share), abs=3.0)
