"""The residents' map page, built with Folium: presentation only.

Folium builds the map skeleton (basemap, district outlines, one marker-cluster
group per layer, the layer switcher); ``static/resident.js`` fills the
clusters from JSON embedded in the page and does the clicking, locating and
searching, writing every text with ``textContent``. Every script and style
comes from the app: Folium's CDN links are replaced by ``/vendor/...`` URLs
(npm packages installed at set-up) and its jQuery/Bootstrap/Font Awesome
links are dropped (nothing here uses them). The data comes from the service
layer: :func:`services.catalogue.district_outlines` and
:func:`services.nearest.map_points`.
"""
from __future__ import annotations

from typing import Any, cast

import folium
from branca.element import Figure
from flask import current_app, url_for
from folium.plugins import MarkerCluster
from markupsafe import Markup
from sqlalchemy.engine import Engine

from layers import LAYERS
from services import catalogue
from services import nearest as nearest_service
from web.basemap import add_basemap, basemap_setting, districts_to_gcj02
from web.security import add_nonce

#: Folium's assets, served locally (``web.assets``) instead of from CDNs.
LEAFLET_JS = [("leaflet", "/vendor/leaflet/dist/leaflet.js")]
LEAFLET_CSS = [("leaflet_css", "/vendor/leaflet/dist/leaflet.css")]
CLUSTER_JS = [("markerclusterjs", "/vendor/leaflet.markercluster/dist/leaflet.markercluster.js")]
CLUSTER_CSS = [("markerclustercss", "/vendor/leaflet.markercluster/dist/MarkerCluster.css"),
               ("markerclusterdefaultcss", "/vendor/leaflet.markercluster/dist/MarkerCluster.Default.css")]

#: District outlines are simplified by about this much (metres) for the page.
OUTLINE_SIMPLIFY_M = 20.0

TEXT = {
    "zh": {
        "title": "枣庄民生设施地图", "synthetic": "演示数据：设施为合成数据，并非真实地点",
        "hint": "点击地图或使用定位，查看最近的各类设施", "locate": "使用我的位置",
        "search_placeholder": "搜索名称或地址，如 卫生室、便民", "search": "搜索", "switch": "English",
        "districts": "区（市）界", "nearest": "离你最近", "results": "搜索结果", "none": "没有找到",
        "walk": "步行约 {m} 分钟", "m": "米", "km": "公里", "amap": "高德导航", "baidu": "百度导航",
        "geo": "其他地图", "synthetic_tag": "合成数据", "outside": "该位置在枣庄市范围之外，结果可能很远",
        "you_are_in": "所在区（市）：", "phone": "电话", "hours": "开放时间", "capacity": "容量",
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
        "phone": "Phone", "hours": "Hours", "capacity": "Capacity", "loading": "Looking…",
        "error": "Request failed: ", "no_geo": "Your browser could not locate you: ", "here": "You are here",
        "distance_note": "Straight-line distance; walking routes are longer", "basemap_note": "",
    },
}


def page_context(engine: Engine, lang: str) -> dict[str, Any]:
    """Everything ``resident.html`` needs: the Folium parts and the JSON for resident.js."""
    basemap, key, display_crs = basemap_setting()
    outlines = catalogue.district_outlines(engine, simplify_m=OUTLINE_SIMPLIFY_M)
    fmap, clusters = build_map(lang, outlines, basemap, key, display_crs)
    root = cast(Figure, fmap.get_root())
    root.render()
    data = {
        "lang": lang, "map": fmap.get_name(), "crs": display_crs, "t": TEXT[lang],
        "layers": [{"key": k, "name": layer.name(lang), "color": layer.style.color, "cluster": clusters[k],
                    "kinds": {kk: (v[1] if lang == "en" else v[0]) for kk, v in layer.kinds.items()}}
                   for k, layer in LAYERS.items()],
        "points": nearest_service.map_points(engine, display_crs),
        "api": {"nearest": url_for("nearest_api.api_nearest"), "search": url_for("nearest_api.api_search")},
    }
    return {
        "lang": lang, "t": TEXT[lang], "data": data,
        "map_header": Markup(add_nonce(root.header.render())),
        "map_html": Markup(root.html.render()),
        "map_script": Markup(root.script.render().replace("</script", "<\\/script")),
        "switch_url": url_for("pages.resident", lang="zh" if lang == "en" else "en"),
        "basemap": current_app.config.get("BASEMAP", "none") if basemap else "none",
        "search_max_chars": nearest_service.MAX_QUERY_CHARS,
    }


def build_map(lang: str, districts: dict[str, Any], basemap: dict[str, str] | None, tianditu_key: str,
              display_crs: str) -> tuple[folium.Map, dict[str, str]]:
    """The Folium map with local assets; returns it and each layer's cluster variable name.

    ``districts`` are WGS-84 outlines; with ``display_crs`` ``gcj02`` they are
    shifted to sit on AMap's tiles.
    """
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
    (south, west), (north, east) = outline.get_bounds()
    if south is not None and west is not None and north is not None and east is not None:  # else no outlines
        fmap.fit_bounds([[south, west], [north, east]])
    return fmap, clusters
