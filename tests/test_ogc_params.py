"""OGC API – Features to the letter: what a request may say and what it gets back (issue 14's findings).

Each expectation is worked out here: counts by SQL written in the test,
positions by pyproj, ring orientation by shapely, methods from the URL map.
"""
from __future__ import annotations

import json
import re

import pyproj
import pytest
import shapely
import shapely.geometry
from sqlalchemy import text

from web.params import Param, parse

EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
ITEMS = "/ogc/collections/police_station/items"


def station_count(engine, where: str = "TRUE", params: dict | None = None) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM facility WHERE layer = 'police_station' AND status = 'active'"
                                 f" AND {where}"), params or {}).scalar_one()


# ------------------------------------------------------------------ unknown and empty parameters
@pytest.mark.parametrize("url,parameter", [
    ("/ogc?foo=bar", "foo"), ("/ogc/conformance?foo=1", "foo"), ("/ogc/collections?x=1", "x"),
    ("/ogc/collections/parking?x=1", "x"), ("/ogc/collections/parking/items?foo=bar", "foo"),
    ("/ogc/collections/parking/items?cell_id=x", "cell_id"),  # a population filter is no parking filter
    ("/ogc/collections/parking/items/1?foo=1", "foo"), ("/ogc/collections/parking/queryables?x=1", "x"),
    ("/ogc/collections/parking/tiles?x=1", "x"),
])
def test_unknown_query_parameters_are_400_naming_them(client, url, parameter):
    r = client.get(url)
    assert r.status_code == 400, url
    assert r.get_json()["error"]["parameter"] == parameter


@pytest.mark.parametrize("url,parameter", [
    ("/ogc/collections?f=", "f"), (f"{ITEMS}?limit=", "limit"), (f"{ITEMS}?status=AAA", "status"),
    ("/export/parking.geojson?updated_since=", "updated_since"), ("/api/coverage?layer=parking&as_of=", "as_of"),
    ("/api/coverage?layer=parking&lang=", "lang"),
    ("/api/gaps?layer=parking&limit=", "limit"), ("/api/search?q=站&limit=", "limit"),
])
def test_empty_or_out_of_enum_values_are_400_naming_the_parameter(client, url, parameter):
    r = client.get(url)
    assert r.status_code == 400, url
    assert r.get_json()["error"]["parameter"] == parameter


def test_page_views_can_treat_blank_form_fields_as_absent(app):
    declared = (Param("district", "string", "d", enum=("370402",)), Param("limit", "integer", "n", minimum=1,
                                                                         maximum=9, default=3))
    with app.test_request_context("/planner?district=&limit="):
        assert parse(declared, blank="absent") == {"district": None, "limit": 3}
        with pytest.raises(Exception, match="district was empty"):
            parse(declared)


# ------------------------------------------------------------------ bbox and limit
@pytest.mark.parametrize("box", ["100,20,130,45", "-180,-90,180,90", "100,20,-170,45", "117,34,0,118,36,100"])
def test_bboxes_of_any_size_with_heights_or_across_the_antimeridian_hold_every_station(client, engine, box):
    page = client.get(f"{ITEMS}?bbox={box}").get_json()
    assert page["numberMatched"] == station_count(engine) == 37


def test_an_antimeridian_box_far_from_zaozhuang_holds_nothing(client):
    assert client.get(f"{ITEMS}?bbox=170,-60,-170,60").get_json()["numberMatched"] == 0


def test_bbox_in_epsg_4326_is_latitude_first(client, engine):
    box = dict(a=117.5, b=34.8, c=117.6, d=34.9)
    expected = station_count(engine, "ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326))", box)
    r = client.get(f"{ITEMS}?bbox=34.8,117.5,34.9,117.6&bbox-crs={EPSG}4326")
    assert r.status_code == 200 and r.get_json()["numberMatched"] == expected
    r = client.get(f"{ITEMS}?bbox=117.5,34.8,117.6,34.9&bbox-crs={EPSG}4326")  # lon/lat given as lat/lon
    assert r.status_code == 400 and r.get_json()["error"]["parameter"] == "bbox"


def test_bbox_in_web_mercator(client, engine):
    x1, y1 = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(117.2, 34.7)
    x2, y2 = pyproj.Transformer.from_crs(4326, 3857, always_xy=True).transform(117.8, 35.2)
    inside = station_count(engine, "ST_Intersects(ST_Transform(geom, 3857), ST_MakeEnvelope(:a, :b, :c, :d, 3857))",
                           dict(a=x1, b=y1, c=x2, d=y2))
    page = client.get(f"{ITEMS}?bbox={x1},{y1},{x2},{y2}&bbox-crs={EPSG}3857").get_json()
    assert page["numberMatched"] == inside > 0


def test_a_limit_above_the_maximum_is_served_at_the_maximum(client):
    doc = client.get("/openapi.json").get_json()
    limit = next(p for p in doc["paths"]["/ogc/collections/{collectionId}/items"]["get"]["parameters"]
                 if p["name"] == "limit")["schema"]
    r = client.get(f"/ogc/collections/population/items?limit={limit['maximum'] + 5000}&skipGeometry=true")
    assert r.status_code == 200
    page = r.get_json()
    assert page["numberReturned"] == limit["maximum"] < page["numberMatched"]
    nxt = next(lk["href"] for lk in page["links"] if lk["rel"] == "next")
    assert f"limit={limit['maximum']}" in nxt and f"offset={limit['maximum']}" in nxt


# ------------------------------------------------------------------ Part 2: CRS
def _first_position(feature: dict) -> tuple[float, float]:
    return tuple(shapely.get_coordinates(shapely.geometry.shape(feature["geometry"]))[0])


@pytest.mark.parametrize("code", [4326, 4490, 4548, 3857])
def test_features_in_another_crs_have_that_crs_axis_order_and_say_so(client, code):
    plain = client.get(f"{ITEMS}?limit=5").get_json()["features"]
    r = client.get(f"{ITEMS}?limit=5&crs={EPSG}{code}")
    assert r.status_code == 200 and r.headers["Content-Crs"] == f"<{EPSG}{code}>"
    moved = r.get_json()["features"]
    to = pyproj.Transformer.from_crs("OGC:CRS84", f"EPSG:{code}")  # EPSG axis order, as the standard says
    for a, b in zip(plain, moved, strict=True):
        lon, lat = _first_position(a)
        want = to.transform(lon, lat)
        got = _first_position(b)
        tolerance = 1e-6 if code in (4326, 4490) else 0.01  # degrees or metres
        assert abs(got[0] - want[0]) < tolerance and abs(got[1] - want[1]) < tolerance, (code, got, want)
    assert client.get(f"{ITEMS}?limit=1").headers["Content-Crs"] == f"<{CRS84}>"


def test_an_unknown_crs_is_400_listing_the_ones_served(client):
    r = client.get(f"{ITEMS}?crs={EPSG}32650")
    body = r.get_json()["error"]
    assert r.status_code == 400 and body["parameter"] == "crs" and f"{EPSG}4548" in body["allowed"]


def test_collections_declare_their_crs_and_storage_crs(client):
    doc = client.get("/ogc/collections/parking").get_json()
    assert doc["storageCrs"] == CRS84 and doc["crs"][0] == CRS84
    assert {f"{EPSG}{c}" for c in (4326, 4490, 4548, 3857)} <= set(doc["crs"])


# ------------------------------------------------------------------ metadata, links, methods
def test_temporal_extent_is_rfc3339_date_times_in_the_gregorian_calendar(client, engine):
    with engine.connect() as conn:
        first = conn.execute(text("SELECT min(opened_on) FROM facility WHERE layer = 'parking'"
                                  " AND status = 'active'")).scalar_one()
    temporal = client.get("/ogc/collections/parking").get_json()["extent"]["temporal"]
    assert temporal["trs"] == "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
    start, end = temporal["interval"][0]
    assert start == f"{first.isoformat()}T00:00:00Z" and re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00Z", end)


def test_the_items_link_carries_no_query_so_a_feature_url_can_be_built_from_it(client):
    links = client.get("/ogc/collections/parking").get_json()["links"]
    items = next(lk["href"] for lk in links if lk["rel"] == "items" and lk["type"] == "application/geo+json")
    assert "?" not in items
    first = client.get(items.replace("http://localhost", "") + "?limit=1").get_json()["features"][0]
    r = client.get(items.replace("http://localhost", "") + f"/{first['id']}")  # what GDAL's -fid asks
    assert r.status_code == 200 and r.get_json()["id"] == first["id"]


def test_items_send_link_headers(client):
    r = client.get(f"{ITEMS}?limit=10")
    header = r.headers["Link"]
    assert 'rel="next"' in header and 'rel="self"' in header and "offset=10" in header


@pytest.mark.parametrize("url", [f"{ITEMS}?f=html&limit=5", "/ogc/collections/police_station?f=html"])
def test_html_pages_link_to_their_json_and_their_collection(client, url):
    html = client.get(url).get_data(as_text=True)
    rels = set(re.findall(r'<a rel="([^"]+)" type="([^"]+)"', html))
    assert ("alternate", "application/geo+json") in rels or ("alternate", "application/json") in rels
    assert any(rel in ("collection", "items") for rel, _ in rels)


def test_one_feature_in_html_links_to_its_json_and_collection(client, engine):
    with engine.connect() as conn:
        fid = conn.execute(text("SELECT min(id) FROM facility WHERE layer = 'police_station'")).scalar_one()
    html = client.get(f"{ITEMS}/{fid}?f=html").get_data(as_text=True)
    rels = set(re.findall(r'<a rel="([^"]+)" type="([^"]+)"', html))
    assert ("alternate", "application/geo+json") in rels and ("collection", "application/json") in rels


def _sample_url(rule) -> str:
    values = {"layer": "parking", "collectionId": "parking", "fmt": "csv", "z": "1", "x": "0", "y": "0",
              "tileMatrix": "1", "tileRow": "0", "tileCol": "0", "tileMatrixSetId": "WebMercatorQuad"}
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: values.get(m.group(1), "1"), rule.rule)


def test_every_405_says_which_methods_are_allowed(app, client):
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        url = _sample_url(rule)
        method = next(m for m in ("DELETE", "PUT", "PATCH", "POST", "GET") if m not in rule.methods)
        r = client.open(url, method=method)
        if r.status_code != 405:
            continue  # another rule at the same URL takes that method
        allowed = {m.strip() for m in r.headers["Allow"].split(",")}
        assert set(rule.methods) <= allowed, url
        assert client.open(url, method="OPTIONS").status_code != 405
        checked += 1
    assert checked >= 17


# ------------------------------------------------------------------ RFC 7946 right-hand rule
def _outer_rings(geometry: dict) -> list:
    shape = shapely.geometry.shape(geometry)
    return [p.exterior for p in getattr(shape, "geoms", [shape])]


@pytest.mark.parametrize("url", ["/ogc/collections/pocket_park/items?limit=100",
                                 "/ogc/collections/population/items?limit=2000",
                                 "/export/pocket_park.geojson", "/export/population.geojson?district=370402"])
def test_every_polygon_has_a_counter_clockwise_outer_ring(client, url):
    features = json.loads(client.get(url).get_data())["features"]
    rings = [ring for f in features for ring in _outer_rings(f["geometry"])]
    assert rings and all(ring.is_ccw for ring in rings)


def test_parks_are_one_geometry_type_in_geojson(client):
    features = json.loads(client.get("/export/pocket_park.geojson").get_data())["features"]
    assert {f["geometry"]["type"] for f in features} == {"MultiPolygon"}
