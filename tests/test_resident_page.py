"""The residents' page ``/`` as HTML, and the per-layer markers it loads (``/api/markers``).

The page carries no facilities: it is small, names the API it calls and
comes in one language. The markers answer, decoded as the page decodes it,
holds every active facility of the layer at its stored position.
"""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import text

from layers import LAYERS
from web import create_app


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


def _decode(cols: dict) -> dict[int, tuple[float, float, str]]:
    """The markers answer as the page reads it: running sums of the delta-coded columns."""
    out, fid, x, y = {}, 0, 0, 0
    for i in range(cols["count"]):
        fid += cols["id"][i]
        x += cols["x"][i]
        y += cols["y"][i]
        out[fid] = (x / cols["scale"], y / cols["scale"], cols["name"][i])
    return out


class TestPage:
    def test_chinese_by_default_english_on_request(self, client):
        zh = client.get("/").get_data(as_text=True)
        assert '<html lang="zh-CN">' in zh and "演示数据：设施为合成数据" in zh and 'href="/?lang=en"' in zh
        en = client.get("/?lang=en").get_data(as_text=True)
        assert '<html lang="en">' in en and "SYNTHETIC" in en and "Use my location" in en
        outside = re.sub(r'<a class="lang-switch".*?</a>', "", _strip_data(en), flags=re.S)
        assert not re.search(r"[\u4e00-\u9fff]", outside), "no Chinese outside the language switch and the data"

    def test_small_and_without_facilities(self, client, engine):
        r = client.get("/")
        html = r.get_data(as_text=True)
        assert len(r.data) <= 50_000
        with engine.connect() as conn:
            names = [n for (n,) in conn.execute(text("SELECT name FROM facility WHERE status = 'active' LIMIT 50"))]
        assert not any(n in html for n in names), "no facility is embedded in the page"

    def test_pinch_zoom_is_allowed(self, client):
        html = client.get("/").get_data(as_text=True)
        (viewport,) = [a["content"] for tag, a in _tags(html) if tag == "meta" and a.get("name") == "viewport"]
        assert "user-scalable=no" not in viewport and "maximum-scale" not in viewport

    def test_every_script_and_style_comes_from_the_app(self, client):
        html = client.get("/").get_data(as_text=True)
        srcs = [a.get("src") or a.get("href") for tag, a in _tags(html) if tag in ("script", "link")]
        for s in filter(None, srcs):
            assert s.startswith("/") or s.startswith("data:"), f"{s} is not served by the app"
        for s in filter(None, srcs):
            if s.startswith("/") and "markers" not in s:
                assert client.get(s).status_code == 200, s

    def test_blank_values_count_as_absent(self, client):
        r = client.get("/?lang=&q=&lon=&lat=&crs=")
        assert r.status_code == 200 and '<html lang="zh-CN">' in r.get_data(as_text=True)
        assert _data(r.get_data(as_text=True))["initial"] == {"crs": "wgs84"}

    def test_opening_on_a_search_or_a_position(self, client):
        assert _data(client.get("/?q=店子镇").get_data(as_text=True))["initial"]["q"] == "店子镇"
        start = _data(client.get("/?lon=117.5&lat=34.8").get_data(as_text=True))["initial"]
        assert (start["lon"], start["lat"]) == (117.5, 34.8)

    @pytest.mark.parametrize(("query", "parameter"), [("lon=500&lat=3", "lon"), ("lang=fr", "lang"),
                                                      ("lon=1&lat=2&crs=utm", "crs")])
    def test_bad_values_are_refused_by_name(self, client, query, parameter):
        r = client.get("/?" + query)
        assert r.status_code == 400 and r.get_json()["error"]["parameter"] == parameter

    def test_offline_by_default_nothing_from_outside(self, client):
        r = client.get("/")
        data = _data(r.get_data(as_text=True))
        assert data["basemap"]["online"] is None
        assert data["basemap"]["offline"]["url"] == "/tiles/basemap/{z}/{x}/{y}.mvt"
        assert "http" not in json.dumps(data["basemap"])

    def test_amap_is_drawn_in_gcj02_with_the_offline_map_behind(self, database_url):
        app = create_app({"DATABASE_URL": database_url, "TESTING": True, "BASEMAP": "amap"})
        data = _data(app.test_client().get("/").get_data(as_text=True))
        assert data["basemap"]["online"]["crs"] == "gcj02" and "autonavi.com" in data["basemap"]["online"]["url"]
        assert data["basemap"]["offline"]["kind"] == "vector"

    def test_tianditu_without_a_key_stays_offline(self, database_url):
        app = create_app({"DATABASE_URL": database_url, "TESTING": True, "BASEMAP": "tianditu", "TIANDITU_KEY": ""})
        assert "tianditu.gov.cn" not in app.test_client().get("/").get_data(as_text=True)

    def test_layer_colours_keep_white_text_readable(self):
        for layer in LAYERS.values():
            assert _contrast(layer.style.color, "#ffffff") >= 4.5, layer.key


class TestMarkers:
    @pytest.mark.parametrize("layer", ["village_clinic", "pocket_park", "police_station"])
    def test_every_active_facility_at_its_position(self, client, engine, layer):
        cols = client.get(f"/api/markers?layer={layer}").get_json()
        got = _decode(cols)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, ST_X(point), ST_Y(point), name FROM facility"
                                     " WHERE layer = :l AND status = 'active'"), {"l": layer}).all()
        assert set(got) == {r[0] for r in rows}
        for fid, lon, lat, name in rows:
            glon, glat, gname = got[fid]
            assert (glon, glat, gname) == (pytest.approx(lon, abs=1e-5), pytest.approx(lat, abs=1e-5), name)

    def test_compact_and_cached_by_etag(self, client):
        r = client.get("/api/markers?layer=service_office", headers={"Accept-Encoding": "br"})
        assert r.status_code == 200 and r.headers.get("Content-Encoding") == "br"
        assert len(r.data) < 25 * 2500, "under 25 bytes a facility on the wire"
        again = client.get("/api/markers?layer=service_office",
                           headers={"If-None-Match": r.headers["ETag"], "Accept-Encoding": "br"})
        assert again.status_code == 304

    def test_unknown_or_missing_layer_is_refused(self, client):
        for query in ("", "?layer=parks", "?layer="):
            r = client.get("/api/markers" + query)
            assert r.status_code == 400 and r.get_json()["error"]["parameter"] == "layer"


def _strip_data(html: str) -> str:
    return re.sub(r'<script type="application/json".*?</script>', "", html, flags=re.S)


def _contrast(a: str, b: str) -> float:
    def lum(h: str) -> float:
        c = [int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


class TestAllMarkers:
    def test_every_layer_in_one_answer_as_per_layer(self, client, engine):
        answer = client.get("/api/markers/all").get_json()
        assert [c["layer"] for c in answer["layers"]] == list(LAYERS)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT layer, id, ST_X(point), ST_Y(point) FROM facility"
                                     " WHERE status = 'active'")).all()
        for cols in answer["layers"]:
            got = _decode(cols)
            want = {fid: (lon, lat) for layer, fid, lon, lat in rows if layer == cols["layer"]}
            assert set(got) == set(want), cols["layer"]
            for fid, (lon, lat) in want.items():
                assert got[fid][:2] == (pytest.approx(lon, abs=1e-5), pytest.approx(lat, abs=1e-5))

    def test_brotli_and_cached_by_etag(self, client):
        r = client.get("/api/markers/all", headers={"Accept-Encoding": "br"})
        assert r.status_code == 200 and r.headers.get("Content-Encoding") == "br"
        again = client.get("/api/markers/all", headers={"If-None-Match": r.headers["ETag"], "Accept-Encoding": "br"})
        assert again.status_code == 304

    def test_the_page_preloads_it_first(self, client):
        tags = _tags(client.get("/").get_data(as_text=True))
        fetched = [a.get("href") or a.get("src") for tag, a in tags if tag in ("link", "script") and
                   (a.get("src") or a.get("rel") in ("stylesheet", "preload"))]
        assert fetched[0] == "/api/markers/all", "the markers are the page's first request"
