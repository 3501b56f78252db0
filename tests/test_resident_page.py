"""The residents' page ``/``: offline assets, zh/en, synthetic label, and real headless Chromium.

The browser is Debian's ``/usr/bin/chromium`` driven by Playwright (no browser
download). Every request the page makes is recorded; any that leaves the
app's host is aborted and fails the test.
"""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import text

from geo.nearest import geodesic_distance_m
from layers import LAYER_KEYS
from web import create_app

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
PAYLOAD = "<script>alert(1)</script>服务点"
PAYLOAD_ADDRESS = '<img src=x onerror="alert(2)">示例路'
#: Where the payload facility goes: inside Xuecheng, on open ground.
PAYLOAD_AT = (117.2651, 34.7952)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def _data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="resident-data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


# --------------------------------------------------------------------------
# the HTML itself
# --------------------------------------------------------------------------

class TestPageHTML:
    def test_chinese_by_default_with_synthetic_label_and_english_switch(self, client):
        r = client.get("/")
        html = r.get_data(as_text=True)
        assert r.status_code == 200 and '<html lang="zh-CN">' in html
        assert "演示数据：设施为合成数据" in html
        assert 'href="/?lang=en"' in html

    def test_english(self, client):
        html = client.get("/?lang=en").get_data(as_text=True)
        assert '<html lang="en">' in html and "SYNTHETIC" in html and "Use my location" in html

    def test_every_script_style_and_font_comes_from_the_app(self, client):
        html = client.get("/").get_data(as_text=True)
        srcs = [a.get("src") or a.get("href") for tag, a in _tags(html) if tag in ("script", "link")]
        srcs = [s for s in srcs if s]
        assert "/vendor/leaflet/dist/leaflet.js" in srcs
        assert "/vendor/leaflet.markercluster/dist/leaflet.markercluster.js" in srcs
        for s in srcs:
            assert s.startswith("/") or s.startswith("data:"), f"{s} is not served by the app"
        assert "jquery" not in html.lower() and "bootstrap" not in html.lower() and "cdn" not in html.lower()

    def test_the_vendor_files_are_really_served(self, client):
        for path in ("/vendor/leaflet/dist/leaflet.js", "/vendor/leaflet/dist/leaflet.css",
                     "/vendor/leaflet.markercluster/dist/leaflet.markercluster.js",
                     "/vendor/leaflet.markercluster/dist/MarkerCluster.Default.css",
                     "/static/resident.js", "/static/resident.css"):
            assert client.get(path).status_code == 200, path

    def test_inline_scripts_carry_the_csp_nonce(self, client):
        r = client.get("/")
        nonce = re.search(r"'nonce-([^']+)'", r.headers["Content-Security-Policy"]).group(1)
        for tag, attrs in _tags(r.get_data(as_text=True)):
            if tag == "script" and not attrs.get("src") and attrs.get("type") != "application/json":
                assert attrs.get("nonce") == nonce

    def test_every_facility_is_on_the_map(self, client, engine):
        data = _data(client.get("/").get_data(as_text=True))
        with engine.connect() as conn:
            counts = dict(conn.execute(text(
                "SELECT layer, count(*) FROM facility WHERE status = 'active' GROUP BY layer")).all())
        assert {k: len(v) for k, v in data["points"].items()} == counts
        assert data["crs"] == "wgs84"

    def test_amap_basemap_shifts_overlays_to_gcj02(self, database_url, engine):
        app = create_app({"DATABASE_URL": database_url, "TESTING": True, "BASEMAP": "amap"})
        r = app.test_client().get("/")
        data = _data(r.get_data(as_text=True))
        assert data["crs"] == "gcj02" and "autonavi.com" in r.headers["Content-Security-Policy"]
        fid, lon, lat = data["points"]["police_station"][0][:3]
        with engine.connect() as conn:
            wlon, wlat = conn.execute(text("SELECT ST_X(point), ST_Y(point) FROM facility WHERE id = :i"),
                                      {"i": fid}).one()
        # GCJ-02 moves Shandong positions by roughly half a kilometre
        assert 300 < geodesic_distance_m(wlon, wlat, lon, lat) < 800

    def test_the_search_box_takes_no_more_than_the_api_accepts(self, client):
        html = client.get("/").get_data(as_text=True)
        (box,) = [a for tag, a in _tags(html) if tag == "input" and a.get("id") == "search-q"]
        longest = int(box["maxlength"])
        assert client.get("/api/search?q=" + quote("长" * longest)).status_code == 200
        assert client.get("/api/search?q=" + quote("长" * (longest + 1))).status_code == 400

    def test_tianditu_without_a_key_falls_back_to_outlines_only(self, database_url):
        app = create_app({"DATABASE_URL": database_url, "TESTING": True, "BASEMAP": "tianditu", "TIANDITU_KEY": ""})
        html = app.test_client().get("/").get_data(as_text=True)
        assert "tianditu.gov.cn" not in html


# --------------------------------------------------------------------------
# real headless Chromium
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed: run `make test` (it installs it)")
    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield b
    b.close()
    pw.stop()


@pytest.fixture()
def payload_facility(engine):
    """A service office named with a script tag, removed afterwards."""
    with engine.begin() as conn:
        fid = conn.execute(text(
            "INSERT INTO facility (layer, source_id, name, address, phone, geom, point, synthetic, district_adcode)"
            " VALUES ('service_office', 'test-h3-payload', :name, :addr, '0632-0000000',"
            " ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), true,"
            " (SELECT adcode FROM district WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))))"
            " RETURNING id"),
            {"name": PAYLOAD, "addr": PAYLOAD_ADDRESS, "lon": PAYLOAD_AT[0], "lat": PAYLOAD_AT[1]}).scalar_one()
    yield fid
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM change_log WHERE facility_id = :i"), {"i": fid})
        conn.execute(text("DELETE FROM facility WHERE id = :i"), {"i": fid})


class Page:
    """A phone-sized page on the live server that records every request and dialog."""

    def __init__(self, browser, base: str, path: str = "/", **context):
        self.base = base
        self.outside: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 390, "height": 844}, **context)
        self.page = self.context.new_page()
        self.context.route("**/*", self._route)
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(base + path)
        self.page.wait_for_selector(".marker-cluster", timeout=15000)

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.base + "/") or url.startswith("data:"):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def map_point(self, lon: float, lat: float) -> tuple[float, float]:
        """Viewport pixel of a WGS-84 position (the default basemap draws WGS-84)."""
        return tuple(self.page.evaluate("""([lon, lat]) => {
            const d = JSON.parse(document.getElementById('resident-data').textContent);
            const m = window[d.map];
            const p = m.latLngToContainerPoint([lat, lon]);
            const r = m.getContainer().getBoundingClientRect();
            return [p.x + r.left, p.y + r.top];
        }""", [lon, lat]))

    def zoom_to(self, lon: float, lat: float, zoom: int) -> None:
        self.page.evaluate("""([lon, lat, z]) => {
            const d = JSON.parse(document.getElementById('resident-data').textContent);
            window[d.map].setView([lat, lon], z, {animate: false});
        }""", [lon, lat, zoom])
        self.page.wait_for_timeout(400)

    def close(self):
        assert self.outside == [], f"requests left the app's host: {self.outside}"
        assert self.errors == [], f"script errors: {self.errors}"
        self.context.close()


@pytest.fixture()
def open_page(browser, live_server):
    pages: list[Page] = []

    def _open(path: str = "/", **context) -> Page:
        pages.append(Page(browser, live_server, path, **context))
        return pages[-1]

    yield _open
    for p in pages:
        p.close()


def _brute_nearest(engine, lon: float, lat: float) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT DISTINCT ON (layer) layer, name FROM facility WHERE status = 'active' ORDER BY layer,"
            " ST_Distance(point::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, true)"),
            {"lon": lon, "lat": lat}).all()
    return dict(rows)


class TestInChromium:
    def test_markers_appear_and_add_up_to_every_facility(self, open_page, engine):
        p = open_page()
        counts = p.page.evaluate("""() => {
            let n = 0;
            document.querySelectorAll('.marker-cluster span').forEach(s => n += parseInt(s.textContent, 10));
            const colours = JSON.parse(document.getElementById('resident-data').textContent).layers.map(l => l.color);
            const single = [...document.querySelectorAll('path.leaflet-interactive')]
                .filter(e => colours.includes(e.getAttribute('fill'))).length;
            return [n, single, document.querySelectorAll('.marker-cluster').length];
        }""")
        with engine.connect() as conn:
            total = conn.execute(text("SELECT count(*) FROM facility WHERE status = 'active'")).scalar()
        assert counts[2] > 10, "clusters are drawn"
        assert counts[0] + counts[1] == total, "clustered plus single markers are every facility"

    def test_a_click_lists_the_nearest_of_each_type(self, open_page, engine):
        p = open_page()
        lon, lat = 117.3, 34.82  # open country in Xuecheng; zoom in so nothing covers the spot
        p.zoom_to(lon, lat, 16)
        x, y = p.map_point(lon, lat)
        p.page.mouse.click(x, y)
        p.page.wait_for_selector("#results li")
        items = p.page.query_selector_all("#results li")
        assert len(items) == len(LAYER_KEYS)
        shown = {li.get_attribute("data-layer"): li.query_selector(".name").inner_text() for li in items}
        expected = _brute_nearest(engine, lon, lat)
        # a click lands within a metre or two of (lon, lat) at zoom 16; the nearest cannot change that little
        assert shown == expected
        first = items[0].inner_text()
        assert re.search(r"\d+(\.\d)? (米|公里)", first) and "步行约" in first and "合成数据" in first
        links = [a.get_attribute("href") for a in items[0].query_selector_all("a")]
        assert links[0].startswith("https://uri.amap.com/navigation?") and links[2].startswith("geo:")
        assert "薛城区" in p.page.inner_text("#panel-status")
        parking = next(li for li in items if li.get_attribute("data-layer") == "parking")
        with engine.connect() as conn:
            spaces = conn.execute(text("SELECT capacity FROM facility WHERE id = :i"),
                                  {"i": int(parking.get_attribute("data-id"))}).scalar_one()
        assert f"{spaces} 个车位" in parking.inner_text(), "a car park shows its spaces"

    def test_use_my_location_in_english(self, open_page):
        p = open_page("/?lang=en", geolocation={"latitude": 34.8667, "longitude": 117.5557},
                      permissions=["geolocation"])
        p.page.click("#locate")
        p.page.wait_for_selector("#results li")
        assert "Nearest to you" in p.page.inner_text("#panel-status")
        assert "Shizhong District" in p.page.inner_text("#panel-status")
        text_ = p.page.inner_text("#results")
        assert "min walk" in text_ and "synthetic" in text_ and "AMap" in text_
        assert re.search(r"\d+ spaces", text_), "the car park shows its spaces in English"

    def test_search_box(self, open_page):
        p = open_page()
        p.page.fill("#search-q", "卫生室")
        p.page.click("#search-form button[type=submit]")
        p.page.wait_for_selector("#results li")
        names = [e.inner_text() for e in p.page.query_selector_all("#results li .name")]
        assert len(names) == 20 and all("卫生室" in n for n in names)

    def test_phone_width_has_no_sideways_scroll(self, open_page):
        p = open_page()
        width = p.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390
        for sel in ("#search-q", "#locate", ".lang-switch", "#synthetic-banner"):
            assert p.page.is_visible(sel), sel

    def test_script_payload_is_inert_in_list_search_and_popup(self, open_page, payload_facility):
        p = open_page()
        # the nearest list
        p.zoom_to(PAYLOAD_AT[0] + 0.0003, PAYLOAD_AT[1], 16)
        x, y = p.map_point(PAYLOAD_AT[0] + 0.0003, PAYLOAD_AT[1])
        p.page.mouse.click(x, y)
        p.page.wait_for_selector(f'#results li[data-id="{payload_facility}"]')
        item = p.page.query_selector(f'#results li[data-id="{payload_facility}"]')
        assert PAYLOAD in item.inner_text() and PAYLOAD_ADDRESS in item.inner_text()
        # search
        p.page.fill("#search-q", "服务点")
        p.page.click("#search-form button[type=submit]")
        p.page.wait_for_selector(f'#results li[data-id="{payload_facility}"]')
        assert PAYLOAD in p.page.inner_text("#results")
        # the marker's popup
        p.zoom_to(PAYLOAD_AT[0], PAYLOAD_AT[1], 18)
        x, y = p.map_point(*PAYLOAD_AT)
        p.page.mouse.click(x, y)
        p.page.wait_for_selector(".leaflet-popup-content")
        assert PAYLOAD in p.page.inner_text(".leaflet-popup-content")
        p.page.wait_for_timeout(300)
        assert p.dialogs == [], "the payload ran"
        assert p.page.evaluate("() => document.querySelectorAll('#results script, #results img, "
                               ".leaflet-popup script').length") == 0
