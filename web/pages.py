"""The residents' page ``/``: a Folium map of Zaozhuang that works offline.

Folium builds the map skeleton (basemap, district outlines, one marker-cluster
group per layer, the layer switcher); ``static/resident.js`` fills the
clusters from JSON embedded in the page and does the clicking, locating and
searching, writing every text with ``textContent``. Every script and style
comes from the app: Folium's CDN links are replaced by ``/vendor/...`` URLs
(npm packages installed at set-up) and its jQuery/Bootstrap/Font Awesome
links are dropped (nothing here uses them).
"""
from __future__ import annotations

import folium
import shapely
from flask import Blueprint, current_app, render_template, url_for
from folium.plugins import MarkerCluster
from markupsafe import Markup

from db import nearest as nearest_db
from geo.crs import transform_geometry, wgs84_to_gcj02
from layers import LAYERS
from services import catalogue
from web import cache, params
from web.database import get_engine
from web.security import add_nonce

bp = Blueprint("pages", __name__)

#: Folium's assets, served locally (``web.assets``) instead of from CDNs.
LEAFLET_JS = [("leaflet", "/vendor/leaflet/dist/leaflet.js")]
LEAFLET_CSS = [("leaflet_css", "/vendor/leaflet/dist/leaflet.css")]
CLUSTER_JS = [("markerclusterjs", "/vendor/leaflet.markercluster/dist/leaflet.markercluster.js")]
CLUSTER_CSS = [("markerclustercss", "/vendor/leaflet.markercluster/dist/MarkerCluster.css"),
               ("markerclusterdefaultcss", "/vendor/leaflet.markercluster/dist/MarkerCluster.Default.css")]

#: Basemaps (see README, ``MINSHENG_BASEMAP``). ``crs`` is what the tiles are drawn in.
BASEMAPS = {
    "osm": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "subdomains": "abc", "crs": "wgs84",
            "attr": "&copy; OpenStreetMap contributors"},
    "tianditu": {"url": "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                        "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
                        "&TILECOL={x}&tk=", "subdomains": "0123", "crs": "wgs84", "attr": "&copy; 天地图 Tianditu",
                 "labels": "https://t{s}.tianditu.gov.cn/cva_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                           "&LAYER=cva&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
                           "&TILECOL={x}&tk="},
    "amap": {"url": "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
                    "&x={x}&y={y}&z={z}", "subdomains": "1234", "crs": "gcj02", "attr": "&copy; 高德地图 AMap"},
}

TEXT = {
    "zh": {
        "title": "枣庄民生设施地图", "synthetic": "演示数据：设施为合成数据，并非真实地点",
        "hint": "点击地图或使用定位，查看最近的各类设施", "locate": "使用我的位置",
        "search_placeholder": "搜索名称或地址，如 卫生室、便民", "search": "搜索", "switch": "English",
        "districts": "区（市）界", "nearest": "离你最近", "results": "搜索结果", "none": "没有找到",
        "walk": "步行约 {m} 分钟", "m": "米", "km": "公里", "amap": "高德导航", "baidu": "百度导航",
        "geo": "其他地图", "synthetic_tag": "合成数据", "outside": "该位置在枣庄市范围之外，结果可能很远",
        "you_are_in": "所在区（市）：", "phone": "电话", "hours": "开放时间", "capacity": "车位",
        "loading": "正在查询…", "error": "查询失败：", "no_geo": "浏览器无法定位：", "here": "你的位置",
        "distance_note": "直线距离；实际步行路线更长", "basemap_note": "",
    },
    "en": {
        "title": "Zaozhuang public service map", "synthetic": "Demo data: facilities are SYNTHETIC, not real places",
        "hint": "Tap the map or use your location to see the nearest facility of each type",
        "locate": "Use my location", "search_placeholder": "Search a name or address", "search": "Search",
        "switch": "中文", "districts": "District outlines", "nearest": "Nearest to you", "results": "Search results",
        "none": "Nothing found", "walk": "about {m} min walk", "m": "m", "km": "km", "amap": "AMap",
        "baidu": "Baidu Maps", "geo": "Other map app", "synthetic_tag": "synthetic",
        "outside": "This position is outside Zaozhuang; results may be far away", "you_are_in": "District: ",
        "phone": "Phone", "hours": "Hours", "capacity": "Spaces", "loading": "Looking…",
        "error": "Request failed: ", "no_geo": "Your browser could not locate you: ", "here": "You are here",
        "distance_note": "Straight-line distance; walking routes are longer", "basemap_note": "",
    },
}


@bp.get("/")
def resident():
    lang = params.lang()
    engine = get_engine()
    return cache.cached_html(engine, "resident", (lang, current_app.config.get("BASEMAP")),
                             lambda: render_template("resident.html", **resident_context(lang)))


# --------------------------------------------------------------------------
# the page's parts
# --------------------------------------------------------------------------

def resident_context(lang: str) -> dict:
    """Everything ``resident.html`` needs: the Folium parts and the JSON for resident.js."""
    basemap, key, display_crs = basemap_setting()
    basemap_key = current_app.config.get("BASEMAP", "none")
    engine = get_engine()
    fmap, clusters = build_map(lang, catalogue.district_outlines(engine, simplify_m=20.0), basemap, key, display_crs)
    root = fmap.get_root()
    root.render()
    data = {
        "lang": lang, "map": fmap.get_name(), "crs": display_crs, "t": TEXT[lang],
        "layers": [{"key": k, "name": layer.name(lang), "color": layer.style.color, "cluster": clusters[k],
                    "kinds": {kk: (v[1] if lang == "en" else v[0]) for kk, v in layer.kinds.items()}}
                   for k, layer in LAYERS.items()],
        "points": _points(nearest_db.facility_points(engine), display_crs),
        "api": {"nearest": url_for("nearest_api.api_nearest"), "search": url_for("nearest_api.api_search")},
    }
    return {
        "lang": lang, "t": TEXT[lang], "data": data,
        "map_header": Markup(add_nonce(root.header.render())),
        "map_html": Markup(root.html.render()),
        "map_script": Markup(root.script.render().replace("</script", "<\\/script")),
        "switch_url": url_for("pages.resident", lang="zh" if lang == "en" else "en"),
        "basemap": basemap_key if basemap else "none",
    }


def basemap_setting() -> tuple[dict | None, str, str]:
    """The configured basemap (or ``None``: outlines only), its key, and the CRS overlays are drawn in.

    AMap tiles are GCJ-02, so with that basemap every overlay is shifted to GCJ-02.
    """
    name = current_app.config.get("BASEMAP", "none")
    basemap = BASEMAPS.get(name)
    key = current_app.config.get("TIANDITU_KEY", "") if name == "tianditu" else ""
    if name == "tianditu" and not key:
        basemap = None  # no key: fall back to outlines only rather than broken tiles
    return basemap, key, basemap["crs"] if basemap else "wgs84"


def add_basemap(fmap: folium.Map, basemap: dict | None, key: str = "") -> None:
    """Tile layers of ``basemap`` (nothing for ``None``, the offline default)."""
    if not basemap:
        return
    folium.TileLayer(tiles=basemap["url"] + key, attr=basemap["attr"], subdomains=basemap["subdomains"],
                     name="basemap", control=False, max_zoom=18).add_to(fmap)
    if basemap.get("labels"):
        folium.TileLayer(tiles=basemap["labels"] + key, attr=basemap["attr"], subdomains=basemap["subdomains"],
                         name="labels", control=False, overlay=True, max_zoom=18).add_to(fmap)


def build_map(lang: str, districts: dict, basemap: dict | None, tianditu_key: str,
              display_crs: str) -> tuple[folium.Map, dict[str, str]]:
    """The Folium map with local assets; returns it and each layer's cluster variable name."""
    if display_crs == "gcj02":
        districts = districts_to_gcj02(districts)
    fmap = folium.Map(location=[34.86, 117.45], zoom_start=9, tiles=None, control_scale=True,
                      prefer_canvas=False)
    fmap.options["maxZoom"] = 18  # Folium gives max_zoom to tiles only; the clusters need it on the map
    fmap.default_js = LEAFLET_JS
    fmap.default_css = LEAFLET_CSS
    add_basemap(fmap, basemap, tianditu_key)
    name_field = "name_en" if lang == "en" else "name_zh"
    outline = folium.GeoJson(
        districts, name=TEXT[lang]["districts"],
        style_function=lambda _f: {"color": "#555555", "weight": 1.5, "fillColor": "#ffffff", "fillOpacity": 0.15},
        tooltip=folium.GeoJsonTooltip(fields=[name_field], labels=False),
    ).add_to(fmap)
    clusters: dict[str, str] = {}
    for key, layer in LAYERS.items():
        cluster = MarkerCluster(name=layer.name(lang), options={"showCoverageOnHover": False,
                                                                "maxClusterRadius": 50})
        cluster.default_js = CLUSTER_JS
        cluster.default_css = CLUSTER_CSS
        cluster.add_to(fmap)
        clusters[key] = cluster.get_name()
    folium.LayerControl(collapsed=True).add_to(fmap)
    bounds = outline.get_bounds()
    if bounds and None not in bounds[0]:
        fmap.fit_bounds(bounds)
    return fmap, clusters


def districts_to_gcj02(fc: dict) -> dict:
    """Features (district outlines, gap clusters) shifted to GCJ-02 to sit on AMap tiles."""
    out = {"type": "FeatureCollection", "features": []}
    for f in fc["features"]:
        geom = transform_geometry(shapely.geometry.shape(f["geometry"]), wgs84_to_gcj02)
        out["features"].append({**f, "geometry": shapely.geometry.mapping(geom)})
    return out


def _points(rows: list[dict], display_crs: str) -> dict[str, list[list]]:
    """Per layer: ``[id, lon, lat, name, kind, synthetic (0/1)]`` in the display CRS.

    Addresses are left out to keep the page small (they are in the nearest and
    search answers).
    """
    import numpy as np

    out: dict[str, list[list]] = {key: [] for key in LAYERS}
    if not rows:
        return out
    lons = np.array([r["lon"] for r in rows])
    lats = np.array([r["lat"] for r in rows])
    if display_crs == "gcj02":
        lons, lats = wgs84_to_gcj02(lons, lats)
    for r, x, y in zip(rows, lons, lats):
        kind = r["kind"] if r["kind"] in LAYERS[r["layer"]].kinds else ""
        out[r["layer"]].append([r["id"], round(float(x), 6), round(float(y), 6), r["name"], kind,
                                1 if r["synthetic"] else 0])
    return out
