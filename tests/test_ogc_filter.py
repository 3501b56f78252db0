"""OGC API – Features Part 3: queryables, CQL2 text and JSON filters, sorting and property selection.

Every expected answer is counted by SQL written in the test (or by shapely
for the spatial ones); the filter text is what a client would send.
"""
from __future__ import annotations

import json
import urllib.parse

import pytest
import shapely
import shapely.geometry
from sqlalchemy import text

from services.features import collection_keys

ITEMS = "/ogc/collections/{}/items"
BOX = (117.45, 34.80, 117.65, 34.95)  # around 市中区, WGS-84


def facilities(engine, layer: str, where: str = "TRUE", params: dict | None = None) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text(f"SELECT id FROM facility WHERE layer = :layer AND status = 'active' AND {where}"
                                      " ORDER BY id"), {"layer": layer, **(params or {})}).scalars())


def matched(client, layer: str, **query: str) -> dict:
    r = client.get(ITEMS.format(layer) + "?" + urllib.parse.urlencode({"limit": 10000, **query}))
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return r.get_json()


# ------------------------------------------------------------------ queryables
@pytest.mark.parametrize("key", collection_keys())
def test_queryables_are_a_typed_json_schema_of_every_property(client, key):
    r = client.get(f"/ogc/collections/{key}/queryables")
    assert r.status_code == 200 and r.mimetype == "application/schema+json"
    doc = r.get_json()
    assert doc["type"] == "object" and doc["$schema"].startswith("https://json-schema.org/")
    assert doc["properties"]["geometry"]["x-ogc-role"] == "primary-geometry"
    page = client.get(ITEMS.format(key) + "?limit=20").get_json()["features"]
    for feature in page:  # every property a feature has is a queryable of the declared JSON type
        for name, value in feature["properties"].items():
            kind = doc["properties"][name]["type"]
            python = {"integer": int, "number": (int, float), "string": str, "boolean": bool}[kind]
            assert isinstance(value, python) and not (kind != "boolean" and isinstance(value, bool)), (name, value)


def test_capacity_and_opened_on_are_typed(client):
    props = client.get("/ogc/collections/parking/queryables").get_json()["properties"]
    assert props["capacity"]["type"] == "integer" and props["opened_on"] == {"title": "opened_on", "type": "string",
                                                                              "format": "date"}


# ------------------------------------------------------------------ CQL2
def test_cql2_text_comparison_and_like(client, engine):
    want = facilities(engine, "parking", "capacity > 50 AND name LIKE '%停车场%'")
    got = matched(client, "parking", filter="capacity > 50 AND name LIKE '%停车场%'")
    assert [f["id"] for f in got["features"]] == want and 0 < len(want) < 170


def test_cql2_text_in_between_null_and_casei(client, engine):
    assert matched(client, "pocket_park", filter="kind IN ('park')")["numberMatched"] == 12
    want = facilities(engine, "parking", "capacity BETWEEN 20 AND 40")
    assert matched(client, "parking", filter="capacity BETWEEN 20 AND 40")["numberMatched"] == len(want) > 0
    assert matched(client, "police_station", filter="capacity IS NULL")["numberMatched"] == 37
    name = matched(client, "police_station", limit="1")["features"][0]["properties"]["name"]
    assert matched(client, "police_station", filter=f"CASEI(name) = CASEI('{name}')")["numberMatched"] == 1


def test_cql2_spatial_filter_matches_shapely(client, engine):
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, ST_X(geom), ST_Y(geom) FROM facility WHERE layer = 'service_office'"
                                 " AND status = 'active'")).all()
    box = shapely.box(*BOX)
    want = sorted(r[0] for r in rows if box.intersects(shapely.Point(r[1], r[2])))
    poly = ", ".join(f"{x} {y}" for x, y in box.exterior.coords)
    got = matched(client, "service_office", filter=f"S_INTERSECTS(geometry, POLYGON(({poly})))")
    assert sorted(f["id"] for f in got["features"]) == want and want


def test_cql2_json_with_a_temporal_interval(client, engine):
    want = facilities(engine, "service_office", "opened_on BETWEEN '2022-01-01' AND '2022-06-30'")
    query = {"op": "t_intersects", "args": [{"property": "opened_on"}, {"interval": ["2022-01-01", "2022-06-30"]}]}
    got = matched(client, "service_office", filter=json.dumps(query), **{"filter-lang": "cql2-json"})
    assert got["numberMatched"] == len(want) > 0


def test_cql2_text_dates(client, engine):
    want = facilities(engine, "service_office", "opened_on > '2022-01-01'")
    got = matched(client, "service_office", filter="opened_on > DATE('2022-01-01')")
    assert got["numberMatched"] == len(want) > 0
    got = matched(client, "service_office", filter="opened_on T_AFTER DATE('2022-01-01')")
    assert got["numberMatched"] == len(want)


def test_filter_crs_reads_the_polygon_latitude_first(client, engine):
    box = shapely.box(*BOX)
    lat_lon = ", ".join(f"{y} {x}" for x, y in box.exterior.coords)
    plain = matched(client, "service_office", filter=f"S_INTERSECTS(geometry, BBOX({','.join(map(str, BOX))}))")
    flipped = matched(client, "service_office", filter=f"S_WITHIN(geometry, POLYGON(({lat_lon})))",
                      **{"filter-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"})
    assert flipped["numberMatched"] == plain["numberMatched"] > 0


@pytest.mark.parametrize("expression,needle", [
    ("nosuch = 1", "nosuch"), ("capacity = 'many'", "integer"), ("name LIKE", "not valid cql2-text"),
    ("S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 0 1, 1 0, 0 0)))", "not valid"),
    ("name = 'x'; DROP TABLE facility", "not valid"),
])
def test_bad_filters_are_400_naming_the_problem(client, engine, expression, needle):
    r = client.get(ITEMS.format("parking") + "?filter=" + urllib.parse.quote(expression))
    assert r.status_code == 400
    error = r.get_json()["error"]
    assert error["parameter"] == "filter" and needle in error["message"]
    assert len(facilities(engine, "parking")) == 170


def test_an_unknown_filter_language_is_refused(client):
    r = client.get(ITEMS.format("parking") + "?filter=capacity>1&filter-lang=ecql")
    assert r.status_code == 400 and r.get_json()["error"]["parameter"] == "filter-lang"


# ------------------------------------------------------------------ sortby, properties, skipGeometry
def test_sortby_descending_then_ascending(client, engine):
    with engine.connect() as conn:
        want = list(conn.execute(text("SELECT id FROM facility WHERE layer = 'parking' AND status = 'active'"
                                      " ORDER BY capacity DESC, name ASC, id LIMIT 30")).scalars())
    got = matched(client, "parking", sortby="-capacity,+name", limit="30")
    assert [f["id"] for f in got["features"]] == want
    second = matched(client, "parking", sortby="-capacity,+name", limit="30", offset="30")
    assert not {f["id"] for f in second["features"]} & set(want)


def test_properties_and_skip_geometry(client):
    page = matched(client, "parking", properties="name,capacity", skipGeometry="true", limit="5")
    for f in page["features"]:
        assert f["geometry"] is None and set(f["properties"]) <= {"name", "capacity"} and "name" in f["properties"]
    r = client.get(ITEMS.format("parking") + "?properties=name,nosuch")
    assert r.status_code == 400 and r.get_json()["error"]["parameter"] == "properties"


def test_queryable_parameters_filter_roads_and_villages(client, engine):
    with engine.connect() as conn:
        primary = conn.execute(text("SELECT count(*) FROM road_edge WHERE highway = 'primary'")).scalar_one()
        village = conn.execute(text("SELECT name, district_adcode FROM village ORDER BY id LIMIT 1")).one()
    assert matched(client, "roads", highway="primary", skipGeometry="true")["numberMatched"] == primary
    got = matched(client, "village", name=village[0])
    assert got["numberMatched"] >= 1 and all(f["properties"]["name"] == village[0] for f in got["features"])
    geometry = shapely.geometry.shape(got["features"][0]["geometry"])
    assert geometry.geom_type == "Point"
