"""The residents' page in real headless Chromium, on a phone and a desktop, in Chinese and English.

Every request the page makes is recorded; any that leaves 127.0.0.1 is
aborted and fails the test (the default basemap is the app's own offline
map). Expected nearest facilities come from a brute-force geodesic query in
PostGIS, never from the page's API.
"""
from __future__ import annotations

import threading

import pytest
from pyproj import Transformer
from sqlalchemy import text
from werkzeug.serving import make_server

from tests.browser import axe_violations, launch
from tests.road_model import RoadModel, nearest_of
from web import create_app

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}
#: A point in the middle of 市中区's town, where the opening view is all clusters.
SHIZHONG = (117.5566, 34.8640)


@pytest.fixture(scope="module")
def browser():
    yield from launch()


class Page:
    """A page on the live server that records every request leaving 127.0.0.1 and every script error."""

    def __init__(self, browser, base: str, path: str = "/", viewport=PHONE, **context):
        self.base, self.outside, self.errors = base, [], []
        self.context = browser.new_context(viewport=viewport, **context)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(base + path)
        self.page.wait_for_selector("body[data-markers=ready]", timeout=60_000)

    def _route(self, route):
        url = route.request.url
        if url.startswith("http://127.0.0.1:") or url.startswith("data:") or url.startswith("blob:"):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def js(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def pixel(self, lon: float, lat: float) -> tuple[float, float]:
        """Viewport pixel of a WGS-84 position on the map."""
        return tuple(self.js("""([lon, lat]) => {
            const R = window.Resident, p = R.map.latLngToContainerPoint(R.toMap(lon, lat));
            const r = R.map.getContainer().getBoundingClientRect();
            return [p.x + r.left, p.y + r.top];
        }""", [lon, lat]))

    def results(self) -> list[tuple[str, str]]:
        self.page.wait_for_selector("#results li.result")
        return [(li.get_attribute("data-layer"), li.query_selector(".name").inner_text())
                for li in self.page.query_selector_all("#results li.result")]

    def wait_status_changes(self, action) -> None:
        before = self.page.inner_text("#panel-status") if self.page.is_visible("#panel-status") else ""
        action()
        self.page.wait_for_function("""(b) => { const s = document.getElementById('panel-status');
            return !s.hidden && s.textContent !== b && !/…/.test(s.textContent); }""", arg=before, timeout=30_000)

    def close(self):
        assert self.outside == [], f"requests left 127.0.0.1: {self.outside}"
        assert self.errors == [], f"script errors: {self.errors}"
        self.context.close()


@pytest.fixture()
def open_page(browser, live_server):
    pages: list[Page] = []

    def _open(path: str = "/", **kw) -> Page:
        pages.append(Page(browser, live_server, path, **kw))
        return pages[-1]

    yield _open
    for p in pages:
        p.close()


def brute_nearest(engine, lon: float, lat: float, layers=None, k: int = 1) -> dict[str, list[str]]:
    """The k nearest names of each layer by geodesic distance, straight from PostGIS."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT layer, name FROM (SELECT layer, name, row_number() OVER (PARTITION BY layer ORDER BY"
            " ST_Distance(point::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography), id) AS n"
            " FROM facility WHERE status = 'active') r WHERE n <= :k ORDER BY layer, n"),
            {"lon": lon, "lat": lat, "k": k}).all()
    out: dict[str, list[str]] = {}
    for layer, name in rows:
        if layers is None or layer in layers:
            out.setdefault(layer, []).append(name)
    return out


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_tap_on_a_cluster_at_the_opening_view_lists_the_nearest(open_page, engine, viewport, lang):
    p = open_page("/?lang=en" if lang == "en" else "/", viewport=viewport)
    x, y = p.pixel(*SHIZHONG)
    hit = p.js("([x, y]) => { const e = document.elementFromPoint(x, y); return !!(e && e.closest('.cluster')); }",
               [x, y])
    p.page.mouse.click(x, y)
    shown = p.results()
    assert len({layer for layer, _ in shown}) == len(brute_nearest(engine, *SHIZHONG))
    assert "市中区" in p.page.inner_text("#panel-status") or "Shizhong" in p.page.inner_text("#panel-status")
    if hit:  # the tap landed on a cluster: the list answered, and the cluster offers to zoom
        assert p.page.is_visible("#panel-tools .zoom-cluster")
    assert p.js("() => window.Resident.map.getZoom()") <= 12, "a tap answers; it does not zoom"
    violations = axe_violations(p.page)
    assert violations == [], violations


def test_the_cluster_zooms_on_the_second_tap(open_page):
    p = open_page()
    box = p.page.query_selector(".cluster").bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    p.page.mouse.click(*centre)
    p.results()  # the first tap lists the nearest (the map fits them); the button zooms into the cluster
    p.page.wait_for_timeout(400)
    zoom = p.js("() => window.Resident.map.getZoom()")
    p.page.click("#panel-tools .zoom-cluster")
    p.page.wait_for_function("(z) => window.Resident.map.getZoom() > z", arg=zoom)


def test_only_clinics_gives_only_clinics_and_more_gives_the_next(open_page, engine):
    p = open_page()
    for box in p.page.query_selector_all("#legend input[name=layer]"):
        if box.get_attribute("value") != "village_clinic":
            p.js("(v) => { const i = document.querySelector(`#legend input[value='${v}']`); i.checked = false;"
                 " i.dispatchEvent(new Event('change')); }", box.get_attribute("value"))
    lon, lat = 117.30, 34.82
    p.wait_status_changes(lambda: p.js("([lon, lat]) => window.Resident.findNearest(lon, lat, 'wgs84')", [lon, lat]))
    shown = p.results()
    assert [layer for layer, _ in shown] == ["village_clinic"]
    # the page measures along the walking roads (the demo's network is loaded): the 4 nearest by an independent
    # networkx model of the roads, each shown row within 1 % + 30 m of the model's distance at its rank
    metres, ranked = _walking_clinics(engine, lon, lat)
    assert metres[shown[0][1]] <= ranked[0] * 1.01 + 30
    assert p.page.query_selector_all(".leaflet-marker-icon.cluster-police_station") == [], "hidden layers are hidden"
    p.page.click("#results button.more[data-layer=village_clinic]")
    p.page.wait_for_function("() => document.querySelectorAll('#results li.result').length === 4")
    names = [name for _, name in p.results()]
    assert len(set(names)) == 4 and names[0] == shown[0][1]
    for rank, name in enumerate(names):
        assert abs(metres[name] - ranked[rank]) <= ranked[rank] * 0.01 + 30, (rank, name, metres[name], ranked[:4])


def _walking_clinics(engine, lon: float, lat: float) -> tuple[dict[str, float], list[float]]:
    """Walking metres from (lon, lat) to each village clinic by name, and the sorted distances."""
    to_metric = Transformer.from_crs(4326, 4548, always_xy=True).transform
    with engine.connect() as conn:
        clinics = conn.execute(text("SELECT name, ST_X(geom), ST_Y(geom) FROM facility"
                                    " WHERE layer = 'village_clinic' AND status = 'active'")).all()
    model = RoadModel(engine, "walk")
    model.insert({"here": to_metric(lon, lat), **{("f", name): to_metric(x, y) for name, x, y in clinics}})
    ranked = nearest_of(model.distances_from("here"), [("f", name) for name, _, _ in clinics])
    return {key[1]: d for key, d in ranked}, [d for _, d in ranked]


def test_a_result_row_moves_the_map_to_its_facility(open_page):
    p = open_page()
    p.wait_status_changes(lambda: p.js("() => window.Resident.findNearest(117.30, 34.82, 'wgs84')"))
    p.results()
    row = p.page.query_selector_all("#results li.result")[-1]
    target = p.js("(id) => { const l = document.querySelector(`#results li.result[data-id='${id}'] .show`);"
                  " return l.textContent; }", row.get_attribute("data-id"))
    row.query_selector(".show").click()
    p.page.wait_for_selector(".leaflet-popup-content")
    assert target in p.page.inner_text(".leaflet-popup-content")
    centre = p.js("() => { const c = window.Resident.map.getCenter(); return [c.lng, c.lat]; }")
    popup = p.js("() => { const o = document.querySelector('.leaflet-popup'); const r = o.getBoundingClientRect();"
                 " const m = window.Resident.map.getContainer().getBoundingClientRect();"
                 " return r.left >= m.left - 1 && r.right <= m.right + 1; }")
    assert popup and centre != [117.30, 34.82]
    assert "tel:" in (p.page.query_selector(".leaflet-popup-content a.tel").get_attribute("href") or "")


def test_on_a_phone_the_map_is_resized_and_your_position_is_in_view(open_page):
    p = open_page(viewport=PHONE, geolocation={"latitude": 34.8667, "longitude": 117.5557},
                  permissions=["geolocation"])
    p.page.click("#locate")
    p.results()
    p.page.wait_for_timeout(300)
    sizes = p.js("""() => { const m = window.Resident.map, c = m.getContainer(), s = m.getSize();
        const here = document.querySelector('.here-marker').getBoundingClientRect();
        const box = c.getBoundingClientRect();
        return {map: [s.x, s.y], box: [c.clientWidth, c.clientHeight],
                inside: here.top >= box.top && here.bottom <= box.bottom && here.left >= box.left
                        && here.right <= box.right,
                sheet: document.getElementById('panel').getBoundingClientRect().top >= box.bottom - 1}; }""")
    assert sizes["map"] == sizes["box"], "Leaflet knows the map's real size with the sheet open"
    assert sizes["inside"] and sizes["sheet"], sizes
    p.page.click("#sheet-toggle")
    p.page.wait_for_timeout(300)
    assert p.js("() => document.getElementById('panel').classList.contains('collapsed')")
    assert p.js("() => { const m = window.Resident.map, c = m.getContainer();"
                " return m.getSize().y === c.clientHeight; }")


@pytest.mark.parametrize(("query", "expected"), [
    ("店子镇", "店子镇"), ("dzz", "店子镇"), ("北装镇", "北庄镇"), ("光明路", "光明路街道")])
def test_search_a_place_and_get_the_nearest_from_it(open_page, query, expected):
    p = open_page()
    p.page.fill("#search-q", query)
    p.page.press("#search-q", "Enter")
    p.page.wait_for_selector("#results li.place")
    names = [e.inner_text() for e in p.page.query_selector_all("#results li.place .name")]
    assert expected in names
    p.page.query_selector_all("#results li.place button")[names.index(expected)].click()
    p.results()
    assert expected in p.page.inner_text("#panel-status")


def test_search_a_village_and_a_road(open_page, engine):
    with engine.connect() as conn:
        village = conn.execute(text("SELECT name FROM village ORDER BY village_id LIMIT 1")).scalar_one()
        road = conn.execute(text("SELECT name FROM road_edge WHERE highway = 'secondary' ORDER BY id"
                                 " LIMIT 1")).scalar_one()
    p = open_page()
    for q in (village, road):
        p.page.fill("#search-q", q)
        p.page.press("#search-q", "Enter")
        p.page.wait_for_function("(q) => [...document.querySelectorAll('#results li.place .name')]"
                                 ".some(e => e.textContent === q)", arg=q)


def test_an_empty_search_says_so(open_page):
    p = open_page("/?lang=en")
    p.page.click("#search-form button[type=submit]")
    assert "Type a place" in p.page.inner_text("#panel-status")


def test_english_page_speaks_english_including_map_controls_and_geolocation(open_page):
    p = open_page("/?lang=en", geolocation=None)
    assert p.page.get_attribute(".leaflet-control-zoom-in", "title") == "Zoom in"
    p.context.clear_permissions()
    p.js("() => { navigator.geolocation.getCurrentPosition = (ok, fail) => fail({code: 1, message: 'User denied'}); }")
    p.page.click("#locate")
    status = p.page.inner_text("#panel-status")
    assert "permission was refused" in status and "User denied" not in status
    zh = open_page("/")
    assert zh.page.get_attribute(".leaflet-control-zoom-in", "title") == "放大"


def test_amap_tiles_that_fail_fall_back_to_the_offline_map(browser, database_url):
    app = create_app({"DATABASE_URL": database_url, "TESTING": True, "BASEMAP": "amap"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        p = Page(browser, f"http://127.0.0.1:{server.server_port}", "/")
        p.page.wait_for_selector("body[data-basemap=offline]", timeout=30_000)
        assert any("autonavi.com" in u for u in p.outside), "the online tiles were tried first"
        p.outside.clear()
        assert p.js("() => window.Resident.crs") == "wgs84", "markers moved back to WGS-84 with the offline map"
        p.close()
    finally:
        server.shutdown()


def test_nearest_by_road_shows_walking_distance_draws_the_route_and_the_15_minute_isochrone(open_page, engine):
    """With the demo's road network loaded: rows word the walk along the roads, each route is drawn as a line
    (not the dashed straight line), and the isochrone button draws the 15-minute area."""
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM road_edge")).scalar() > 0, "the demo loads its roads"
    p = open_page(viewport=DESKTOP)
    p.wait_status_changes(lambda: p.js("([lon, lat]) => window.Resident.findNearest(lon, lat, 'wgs84')",
                                       list(SHIZHONG)))
    shown = p.results()
    texts = [li.inner_text() for li in p.page.query_selector_all("#results li.result")]
    # along the roads: "步行 1.4 公里 · 约 18 分钟", or beyond an hour's walk "约 9.7 公里 · 驾车约 20 分钟";
    # never the straight line's "直线 …"
    assert texts and not any("直线" in t for t in texts), texts
    assert all("步行" in t or "驾车" in t for t in texts) and any("步行" in t for t in texts), texts
    routes = p.js("() => document.querySelectorAll('.leaflet-results-pane path[stroke-width=\"4\"]').length")
    dashed = p.js("() => document.querySelectorAll('.leaflet-results-pane path[stroke-dasharray]').length")
    assert routes == len(shown) and dashed == 0, (routes, dashed, len(shown))
    p.page.click("#panel-tools button.isochrone")
    p.page.wait_for_function("() => document.querySelector('#panel-tools button.isochrone')"
                             ".getAttribute('aria-pressed') === 'true'", timeout=30_000)
    area = p.js("() => Array.from(document.querySelectorAll('.leaflet-overlay-pane path'))"
                ".filter(e => e.getAttribute('stroke') === '#0b5394').map(e => e.getAttribute('d').length)")
    assert area and max(area) > 100, area
