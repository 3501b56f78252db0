"""Real GIS clients nobody here wrote, against the running service: GDAL's OAPIF driver, OWSLib, QGIS's
OAPIF provider (headless, Debian's QGIS), MapLibre GL in Chromium on another origin, and the OGC's own
response schemas. What the server saw is read from a log of the requests it received.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest
from owslib.ogcapi.features import Features
from playwright.sync_api import sync_playwright
from sqlalchemy import text

from services.editing import create_token
from services.features import collection_keys
from tests import ogc_schemas
from tests.browser import ARGS, CHROMIUM
from tests.test_export import REPORT_COUNTS, feature_count

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture()
def seen(app) -> Iterator[list[str]]:
    """The path and query of every request the live server receives while the test runs."""
    log: list[str] = []
    inner = app.wsgi_app

    def recording(environ, start_response):
        log.append(environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", ""))
        return inner(environ, start_response)

    app.wsgi_app = recording
    yield log
    app.wsgi_app = inner


def ogr(*args: str) -> str:
    out = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def sql(engine, query: str, **params) -> object:
    with engine.connect() as conn:
        return conn.execute(text(query), params).scalar_one()


# ------------------------------------------------------------------ GDAL
def test_gdal_pushes_an_attribute_filter_to_the_server(live_server, engine, seen):
    expected = sql(engine, "SELECT count(*) FROM facility WHERE layer = 'village_clinic' AND status = 'active'"
                           " AND district_adcode = '370402'")
    out = ogr("-al", "-q", "-where", "district = '370402'", f"OAPIF:{live_server}/ogc/collections/village_clinic")
    assert sum(line.startswith("OGRFeature(") for line in out.splitlines()) == expected > 0
    items = [s for s in seen if s.startswith("/ogc/collections/village_clinic/items?")]
    assert items and all("district=370402" in s for s in items[1:])  # the first page fixes the schema
    assert any("district=370402" in s for s in items)


def test_gdal_fetches_one_feature_by_fid_and_types_fields_from_the_schema(live_server, engine, seen):
    fid = sql(engine, "SELECT max(id) FROM facility WHERE layer = 'parking' AND status = 'active'")
    out = ogr("-al", "-fid", str(fid), f"OAPIF:{live_server}/ogc/collections/parking")
    assert f"OGRFeature(parking):{fid}" in out
    assert f"/ogc/collections/parking/items/{fid}?" in seen  # not items?f=json/<fid>
    summary = ogr("-al", "-so", f"OAPIF:{live_server}/ogc/collections/parking")
    assert "capacity: Integer" in summary and "opened_on: Date" in summary
    assert feature_count(summary) == REPORT_COUNTS["parking"]


# ------------------------------------------------------------------ OWSLib
def test_owslib_reads_queryables_items_and_pages(live_server, engine):
    api = Features(f"{live_server}/ogc")
    assert {c["id"] for c in api.collections()["collections"]} == set(collection_keys())
    queryables = api.collection_queryables("parking")
    assert queryables["properties"]["capacity"]["type"] == "integer"
    first = api.collection_items("parking", limit=100)
    second = api.collection_items("parking", limit=100, offset=100)
    ids = [f["id"] for f in first["features"] + second["features"]]
    assert len(ids) == len(set(ids)) == first["numberMatched"] == REPORT_COUNTS["parking"]
    spaces = sum(f["properties"].get("capacity", 0) for f in first["features"] + second["features"])
    assert spaces == sql(engine, "SELECT sum(capacity) FROM facility WHERE layer = 'parking'") == 6235 + 3528


# ------------------------------------------------------------------ the OGC's schemas
def test_responses_validate_against_the_standard_schemas(client):
    jsonschema.validate(client.get("/ogc").get_json(), ogc_schemas.LANDING_PAGE)
    jsonschema.validate(client.get("/ogc/conformance").get_json(), ogc_schemas.CONF_CLASSES)
    jsonschema.validate(client.get("/ogc/collections").get_json(), ogc_schemas.COLLECTIONS)
    for key in collection_keys():
        jsonschema.validate(client.get(f"/ogc/collections/{key}").get_json(), ogc_schemas.COLLECTION)
        page = client.get(f"/ogc/collections/{key}/items?limit=50").get_json()
        jsonschema.validate(page, ogc_schemas.FEATURE_COLLECTION)
        one = client.get(f"/ogc/collections/{key}/items/{page['features'][0]['id']}").get_json()
        jsonschema.validate(one, ogc_schemas.FEATURE)


def test_the_api_definition_is_valid_openapi_3(client):
    package = Path(importlib.util.find_spec("pygeoapi").origin).parent
    schema_path = package / "schemas" / "openapi" / "openapi-3.0.x.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))  # the OpenAPI 3.0 schema, as pygeoapi ships it
    jsonschema.validate(client.get("/ogc/api").get_json(), schema)


# ------------------------------------------------------------------ QGIS
@pytest.mark.skipif(not Path(SYSTEM_PYTHON).exists(), reason="Debian's python3 is needed for python3-qgis")
def test_qgis_loads_every_collection_draws_zoomed_out_filters_on_the_server_and_edits(live_server, engine, seen):
    token = create_token(engine, "editor", "QGIS test")[1]
    fid, name = (sql(engine, "SELECT id FROM facility WHERE layer = 'police_station' ORDER BY id LIMIT 1"),
                 sql(engine, "SELECT name FROM facility WHERE layer = 'police_station' ORDER BY id LIMIT 1"))
    drawn = [k for k in collection_keys() if k not in ("population", "roads")]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(ROOT / "var")}
    run = subprocess.run([SYSTEM_PYTHON, str(ROOT / "tests" / "qgis_oapif.py"), live_server, token, str(fid), name,
                          ",".join(drawn), *collection_keys()], capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    for key, layer in out["collections"].items():
        assert layer["valid"], key
        if key in REPORT_COUNTS:
            assert layer["count"] == REPORT_COUNTS[key]
            assert layer["zoomed_out"] == REPORT_COUNTS[key], key  # zoomed out over eastern China: all of them
    assert out["collections"]["parking"]["fields"]["capacity"] == "Integer"
    half_year = sql(engine, "SELECT count(*) FROM facility WHERE layer = 'parking' AND status = 'active'"
                            " AND opened_on BETWEEN '2022-01-01' AND '2022-06-30'")
    assert out["subset"] == half_year
    assert any("datetime=2022-01-01" in s for s in seen)  # QGIS sent the subset to the server
    assert out["edit"]["status"] == 200, out["edit"]
    history = json.loads(urllib.request.urlopen(f"{live_server}/api/facilities/{fid}/history").read())
    assert history["changes"][-1]["after"]["phone"] == "0632-QGIS"


# ------------------------------------------------------------------ MapLibre GL on another origin
_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="maplibre-gl.css"></head>
<body style="margin:0"><div id="map" style="width:512px;height:512px"></div><script type="module">
import * as maplibregl from "./maplibre-gl.mjs";
window.errors = [];
window.onerror = (message) => window.errors.push(String(message));
const map = new maplibregl.Map({{container: "map", center: [117.35, 34.9], zoom: 8, fadeDuration: 0,
  style: {{version: 8, sources: {{people: {{type: "vector",
    tiles: ["{app}/tiles/population/{{z}}/{{x}}/{{y}}.mvt"], maxzoom: 14}}}},
  layers: [{{id: "cells", type: "fill", source: "people", "source-layer": "population",
             paint: {{"fill-color": "#c00"}}}}]}}}});
map.on("error", e => window.errors.push(String(e.error && e.error.message)));
map.on("idle", () => {{ window.drawn = map.queryRenderedFeatures({{layers: ["cells"]}}).length; }});
</script></body></html>"""


class _SiteHandler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript"}

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def other_origin(live_server, tmp_path) -> Iterator[str]:
    """Another site (another port: another origin) with its own copy of MapLibre GL (npm), drawing the
    app's population tiles."""
    for part in (ROOT / "node_modules" / "maplibre-gl" / "dist").iterdir():
        if part.suffix in (".mjs", ".css"):
            shutil.copy(part, tmp_path / part.name)
    (tmp_path / "map.html").write_text(_PAGE.format(app=live_server), encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_SiteHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/map.html"
    server.shutdown()


#: WebGL without a GPU: Chromium's software rasteriser (SwiftShader), which MapLibre needs.
WEBGL_ARGS = [a for a in ARGS if a != "--disable-gpu"] + ["--use-gl=angle", "--use-angle=swiftshader",
                                                          "--enable-unsafe-swiftshader"]


@pytest.mark.browser
def test_maplibre_on_another_origin_draws_the_tiles(other_origin):
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=WEBGL_ARGS)
        try:
            page = browser.new_page()
            page.goto(other_origin)
            page.wait_for_function("window.drawn !== undefined || window.errors.length > 0", timeout=120_000)
            assert page.evaluate("window.errors") == []
            assert page.evaluate("window.drawn") > 0
        finally:
            browser.close()
