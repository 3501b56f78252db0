"""OGC API – Features, read by GDAL's OAPIF driver (a real client nobody here
wrote), and the OpenAPI document with its page.

Counts are the demo city's published facts or SQL written in the test.
"""
from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import text

from services.features import collection_keys, filter_names
from tests.test_export import REPORT_COUNTS, feature_count
from web.openapi import flask_routes

COLLECTIONS = list(REPORT_COUNTS) + ["population", "village", "roads"]
CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"


def ogrinfo(*args: str) -> str:
    out = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def get(url: str, accept: str = "application/json") -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


@pytest.fixture(scope="module")
def table_count(engine) -> dict[str, int]:
    """Rows of the tables behind the collections that are not facility layers, counted here."""
    with engine.connect() as conn:
        return {key: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for key, table in (("population", "demand_cell"), ("village", "village"), ("roads", "road_edge"))}


# ------------------------------------------------------------------ GDAL's OAPIF driver
def test_ogrinfo_lists_every_collection(live_server):
    out = ogrinfo("-so", f"OAPIF:{live_server}/ogc")
    for i, key in enumerate(COLLECTIONS, start=1):
        assert f"{i}: {key} " in out
    assert "政务服务网点" in out  # Chinese titles survive the trip


@pytest.mark.parametrize("layer", list(REPORT_COUNTS))
def test_ogrinfo_counts_match_the_report(live_server, layer):
    summary = ogrinfo("-al", "-so", f"OAPIF:{live_server}/ogc/collections/{layer}")
    assert feature_count(summary) == REPORT_COUNTS[layer]


@pytest.mark.parametrize("layer", COLLECTIONS)
def test_ogrinfo_reads_every_feature(live_server, layer, table_count):
    expected = REPORT_COUNTS.get(layer) or table_count[layer]
    out = ogrinfo("-al", "-q", "-oo", "PAGE_SIZE=5000", f"OAPIF:{live_server}/ogc/collections/{layer}")
    assert sum(line.startswith("OGRFeature(") for line in out.splitlines()) == expected


def test_ogrinfo_with_default_paging_follows_next_links(live_server):
    # GDAL's default page is 10 features: 37 stations take four pages and four next links.
    out = ogrinfo("-al", "-q", f"OAPIF:{live_server}/ogc/collections/police_station")
    assert sum(line.startswith("OGRFeature(") for line in out.splitlines()) == 37
    assert "警务站" in out


def test_ogrinfo_bbox_query_matches_the_database(live_server, engine):
    box = (117.5, 34.8, 117.6, 34.9)
    with engine.connect() as conn:
        expected = conn.execute(text(
            "SELECT count(*) FROM facility WHERE layer = 'service_office' AND status = 'active'"
            " AND ST_X(geom) BETWEEN :a AND :c AND ST_Y(geom) BETWEEN :b AND :d"),
            dict(zip("abcd", box, strict=True))).scalar_one()
    assert expected > 0
    out = ogrinfo("-al", "-q", "-spat", *map(str, box), f"OAPIF:{live_server}/ogc/collections/service_office")
    assert sum(line.startswith("OGRFeature(") for line in out.splitlines()) == expected


# ------------------------------------------------------------------ the JSON documents
def test_landing_and_conformance(live_server):
    status, ctype, body = get(f"{live_server}/ogc")
    assert status == 200 and ctype.startswith("application/json")
    rels = {link["rel"]: link for link in json.loads(body)["links"]}
    assert {"self", "alternate", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["type"].startswith("application/vnd.oai.openapi+json")
    conf = json.loads(get(f"{live_server}/ogc/conformance")[2])["conformsTo"]
    assert CORE in conf and any(c.endswith("/conf/geojson") for c in conf)
    assert any(c.endswith("/conf/oas30") for c in conf) and any(c.endswith("/conf/html") for c in conf)
    status, ctype, body = get(rels["service-desc"]["href"])
    api = json.loads(body)
    # Paths relative to /ogc with the standard's {collectionId}: GDAL finds the queryable parameters there.
    assert status == 200 and "/collections/{collectionId}/items" in api["paths"]
    assert api["servers"][0]["url"] == f"{live_server}/ogc"
    assert not any(p.startswith(("/ogc", "/export", "/api/")) for p in api["paths"])


def test_items_pages_with_next_links_until_every_feature_is_seen(live_server):
    url = f"{live_server}/ogc/collections/pocket_park/items?limit=20"
    ids, pages = [], 0
    while url:
        status, ctype, body = get(url, "application/geo+json")
        assert status == 200 and ctype.startswith("application/geo+json")
        page = json.loads(body)
        assert page["numberMatched"] == 73 and page["numberReturned"] == len(page["features"]) <= 20
        ids += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        pages += 1
    assert pages == 4 and len(ids) == len(set(ids)) == 73  # 20 + 20 + 20 + 13


@pytest.mark.parametrize("query,expected", [("kind=park", 12), ("kind=pocket_park", 61)])
def test_property_filter(client, query, expected):
    page = json.loads(client.get(f"/ogc/collections/pocket_park/items?limit=1000&{query}").data)
    assert page["numberMatched"] == page["numberReturned"] == expected


def test_district_and_name_filters(client, engine):
    page = json.loads(client.get("/ogc/collections/village_clinic/items?limit=10000&district=370406").data)
    with engine.connect() as conn:
        expected = conn.execute(text("SELECT count(*) FROM facility WHERE layer = 'village_clinic'"
                                     " AND district_adcode = '370406'")).scalar_one()
        name = conn.execute(text("SELECT name FROM facility WHERE layer = 'police_station' ORDER BY id"
                                 " LIMIT 1")).scalar_one()
    assert page["numberMatched"] == expected > 0
    assert {f["properties"]["district_name"] for f in page["features"]} == {"山亭区"}
    by_name = json.loads(client.get("/ogc/collections/police_station/items?name="
                                    + urllib.parse.quote(name)).data)
    assert by_name["numberMatched"] == 1 and by_name["features"][0]["properties"]["name"] == name


def test_population_cells_filter_by_class(client, engine):
    with engine.connect() as conn:
        urban = conn.execute(text("SELECT count(*) FROM demand_cell WHERE urban")).scalar_one()
    page = json.loads(client.get("/ogc/collections/population/items?class=urban&limit=5").data)
    assert page["numberMatched"] == urban > 0
    assert {f["properties"]["class"] for f in page["features"]} == {"urban"}


def test_a_bbox_of_any_size_is_accepted(client):
    # 30° × 25°, as a client zoomed out over eastern China asks: every station is inside.
    page = json.loads(client.get("/ogc/collections/police_station/items?bbox=100,20,130,45").data)
    assert page["numberMatched"] == REPORT_COUNTS["police_station"]


def test_datetime_filters_on_the_opened_date(client, engine):
    with engine.connect() as conn:
        expected = conn.execute(text(
            "SELECT count(*) FROM facility WHERE layer = 'service_office' AND status = 'active'"
            " AND opened_on BETWEEN '2022-01-01' AND '2022-06-30'")).scalar_one()
        before = conn.execute(text(
            "SELECT count(*) FROM facility WHERE layer = 'service_office' AND status = 'active'"
            " AND opened_on <= '2019-12-31'")).scalar_one()
    r = json.loads(client.get("/ogc/collections/service_office/items?datetime=2022-01-01/2022-06-30").data)
    assert r["numberMatched"] == expected > 0
    r = json.loads(client.get("/ogc/collections/service_office/items?datetime=../2019-12-31").data)
    assert r["numberMatched"] == before
    for f in r["features"]:
        assert f["properties"]["opened_on"] <= "2019-12-31"


def test_one_item_and_an_injection_attempt_is_just_not_found(client, engine):
    with engine.connect() as conn:
        fid = conn.execute(text("SELECT id FROM facility WHERE layer = 'parking' ORDER BY id LIMIT 1")).scalar_one()
    r = client.get(f"/ogc/collections/parking/items/{fid}")
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    feature = r.get_json()
    assert feature["id"] == fid and {"self", "collection"} <= {link["rel"] for link in feature["links"]}
    assert client.get(f"/ogc/collections/police_station/items/{fid}").status_code == 404  # other layer
    r = client.get("/ogc/collections/parking/items/" + urllib.parse.quote("1; DROP TABLE facility;"))
    assert r.status_code == 404
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM facility WHERE layer = 'parking'")).scalar_one() == 170


@pytest.mark.parametrize("query,parameter", [
    ("limit=0", "limit"), ("limit=ten", "limit"), ("offset=-1", "offset"),
    ("bbox=117,34", "bbox"), ("datetime=last-year", "datetime"), ("datetime=2022-06-30/2022-01-01", "datetime"),
    ("district=999999", "district"), ("f=xml", "f"),
])
def test_bad_item_queries_are_400_naming_the_parameter(client, query, parameter):
    r = client.get(f"/ogc/collections/parking/items?{query}")
    assert r.status_code == 400 and r.get_json()["error"]["parameter"] == parameter


def test_unknown_collection_is_404(client):
    assert client.get("/ogc/collections/parks").status_code == 404
    assert client.get("/ogc/collections/parks/items").status_code == 404


# ------------------------------------------------------------------ HTML
def test_html_by_f_and_by_accept_labels_synthetic_data(client):
    r = client.get("/ogc/collections/parking/items?f=html&limit=5")
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert "合成" in page and "SYNTHETIC" in page and "170 matched" in page and 'rel="next"' in page
    r = client.get("/ogc/collections", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert r.mimetype == "text/html" and "人口格网" in r.get_data(as_text=True)
    r = client.get("/ogc/collections", headers={"Accept": "application/json"})
    assert r.mimetype == "application/json"


# ------------------------------------------------------------------ OpenAPI
def test_every_api_route_is_in_the_openapi_document(app, client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.0")
    routes = flask_routes(app)
    assert ("/export/{layer}.{fmt}", "get") in routes and ("/tiles/{layer}/{z}/{x}/{y}.mvt", "get") in routes
    for path, method in routes:
        assert method in doc["paths"].get(path, {}), f"{method.upper()} {path} is not in /openapi.json"
        assert doc["paths"][path][method].get("x-described", True), f"{method.upper()} {path} is not described"


def test_every_property_filter_is_published(client):
    doc = client.get("/openapi.json").get_json()
    published = {p["name"] for p in doc["paths"]["/ogc/collections/{collectionId}/items"]["get"]["parameters"]}
    for key in collection_keys():
        assert set(filter_names(key)) <= published, key


def test_the_published_bounds_are_the_ones_enforced(client):
    doc = client.get("/openapi.json").get_json()

    def schemas(path: str) -> dict:
        return {p["name"]: p["schema"] for p in doc["paths"][path]["get"]["parameters"]}

    items = schemas("/ogc/collections/{collectionId}/items")
    lo, hi = items["limit"]["minimum"], items["limit"]["maximum"]
    for limit, status in ((lo, 200), (hi, 200), (lo - 1, 400), (hi + 1, 200)):  # above the maximum: served at it
        assert client.get(f"/ogc/collections/police_station/items?limit={limit}").status_code == status, limit
    tile = schemas("/tiles/{layer}/{z}/{x}/{y}.mvt")
    top = tile["z"]["maximum"]
    assert client.get(f"/tiles/police_station/{top}/0/0.mvt").status_code == 200
    assert client.get(f"/tiles/police_station/{top + 1}/0/0.mvt").status_code == 400
    export = schemas("/export/{layer}.{fmt}")
    listed = [c["id"] for c in client.get("/ogc/collections").get_json()["collections"]]
    assert export["layer"]["enum"] == listed == tile["layer"]["enum"]
    for fmt in export["fmt"]["enum"]:
        assert client.get(f"/export/police_station.{fmt}?district=370402").status_code == 200, fmt


def _resolve(doc: dict, param: dict) -> dict:
    if "$ref" in param:
        return doc["components"]["parameters"][param["$ref"].rsplit("/", 1)[1]]
    return param


def test_parameters_carry_bounds_so_a_fuzzer_stays_within_them(client):
    doc = client.get("/openapi.json").get_json()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for param in (_resolve(doc, p) for p in op.get("parameters", [])):
                schema = param["schema"]
                where = f"{method.upper()} {path} {param['name']}"
                if schema["type"] in ("integer", "number"):
                    assert "minimum" in schema and ("maximum" in schema or param["in"] == "path"), where
                elif schema["type"] == "string" and param["in"] == "query":
                    assert "enum" in schema or "maxLength" in schema or "format" in schema, where


def test_api_docs_page_renders_from_local_assets_in_chromium(live_server):
    outside: list[str] = []
    errors: list[str] = []
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        page = browser.new_page()
        page.on("request", lambda req: outside.append(req.url) if not req.url.startswith(live_server)
                and not req.url.startswith("data:") else None)
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(f"{live_server}/api/docs")
        page.get_by_text("/ogc/collections/{collectionId}/items", exact=True).first.wait_for(timeout=20000)
        assert page.locator(".opblock").count() >= 20  # one block per operation
        assert "Minsheng Map" in page.inner_text("body")
        browser.close()
    finally:
        pw.stop()
    assert outside == []
    assert not [e for e in errors if "Content Security Policy" in e]


@pytest.mark.parametrize("layer", ["service_office", "pocket_park"])
def test_a_bbox_read_walks_the_active_facilities_spatial_index(engine, layer):
    """The OGC/export bbox filter is served by the GiST index on active facilities (migration 0012), the one
    spatial index ``facility`` keeps (0014 dropped the one on every row, which no read used)."""
    from db.feature_sources import facility_source
    from db.features import FeatureQuery, _where
    from layers import LAYERS
    src = facility_source(LAYERS[layer])
    where, params = _where(src, FeatureQuery(bbox=(117.30, 34.80, 117.35, 34.85)))
    with engine.connect() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))  # can the index serve it, whatever the table's size
        plan = "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN SELECT count(*) FROM {src.from_sql} WHERE {where}"),
                                                   params))
        gists = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'facility'"
                                  " AND indexdef LIKE '%USING gist%'")).all()
    assert f"facility_layer_geom_gist__{layer}" in plan, plan
    assert [name for name, _ in gists] == ["facility_layer_geom_gist"] and "status = 'active'" in gists[0][1]
