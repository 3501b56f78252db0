"""The planners' page ``/planner``: coverage by district, gaps and suggested sites.

One Folium map (a choropleth of coverage % by district with its legend, the
largest gap clusters and the suggested sites) plus a table and a bar chart by
district, downloads of the table (CSV with BOM, XLSX), in Chinese by default
and English with ``?lang=en``. Everything is served by the app itself: Folium
is pointed at the npm copy of Leaflet under ``/vendor``, and unless a basemap
is configured (``MINSHENG_BASEMAP``) no tiles are loaded, so the page works
with no internet.

The view parses the planner API's parameter declarations (the form's
``min``/``max`` come from the same ones), calls
:func:`services.planning.planner_overview` once, and renders; the page is
cached until the data changes (:func:`web.cache.cached_html`).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import folium
import shapely.geometry
from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from sqlalchemy.engine import Engine

from geo.crs import wgs84_to_gcj02
from layers import LAYER_KEYS, LAYERS, LIFE_CIRCLE
from layers.districts import CITY_CODE
from services import planning
from services.planning_inputs import PlanningQuery
from web import cache
from web.database import get_engine
from web.pages import add_basemap, basemap_setting, districts_to_gcj02
from web.params import LAYER, parse
from web.planner_api import QUERY, RADIUS, SITES, planning_query
from web.security import add_nonce

bp = Blueprint("planner", __name__)

#: Choropleth classes: (lower bound %, colour), light to dark green.
CLASSES: tuple[tuple[float, str], ...] = (
    (0.0, "#f7fcb9"), (20.0, "#c2e699"), (40.0, "#78c679"), (60.0, "#31a354"), (80.0, "#006837"))
NO_DATA = "#cccccc"
#: Gap clusters drawn on the map (the table of gaps is the API's job).
MAP_GAPS = 10
#: The page's parameters: the API's, with the first layer of the registry and 5 sites by default.
PAGE_SITES = SITES.but(default=5)
PAGE_PARAMS = (LAYER.but(required=False, default=LAYER_KEYS[0]), *QUERY, PAGE_SITES)

TEXT = {
    "zh": {"title": "民生设施覆盖规划", "layer": "设施图层", "radius": "服务半径（米，可选）",
           "as_of": "截至日期", "sites": "建议新增数量", "apply": "更新", "district": "区县",
           "population": "人口", "covered": "覆盖人口", "percent": "覆盖率", "standard": "对照标准",
           "threshold": "服务半径", "urban": "城区", "rural": "乡村", "legend": "覆盖率（按区县）",
           "gaps": "未覆盖人口聚集区（前{n}个，仅计适用的{cells}网格）", "suggest": "建议新增站点",
           "gain": "新增覆盖人口",
           "cumulative": "累计覆盖率", "download": "下载表格", "chart": "各区县覆盖率",
           "life": "15分钟生活圈（综合）", "spaces": "每千人车位（2SFCA）",
           "villages": "无卫生室覆盖的村", "target": "目标", "rank": "序号", "no_data": "无数据",
           "gap_legend": "未覆盖聚集区", "site_legend": "建议站点", "city": "全市",
           "overridden": "（已自定义）", "residents": "居民"},
    "en": {"title": "Service coverage planner", "layer": "Layer", "radius": "Radius (m, optional)",
           "as_of": "As of", "sites": "New sites", "apply": "Update", "district": "District",
           "population": "Population", "covered": "Covered", "percent": "Coverage", "standard": "Standard",
           "threshold": "Reach", "urban": "urban", "rural": "rural", "legend": "Coverage by district",
           "gaps": "Largest uncovered clusters (top {n}, {cells} cells where the layer applies)",
           "suggest": "Suggested new sites",
           "gain": "Newly covered", "cumulative": "Cumulative coverage", "download": "Download the table",
           "chart": "Coverage by district", "life": "15-minute life circle (composite)",
           "spaces": "Spaces per 1,000 residents (2SFCA)", "villages": "Villages without a clinic in reach",
           "target": "Target", "rank": "#", "no_data": "no data", "gap_legend": "Uncovered cluster",
           "site_legend": "Suggested site", "city": "City", "overridden": " (overridden)", "residents": " residents"},
}


def colour(percent: float | None) -> str:
    """The choropleth colour of a coverage percentage (0-100)."""
    if percent is None:
        return NO_DATA
    chosen = CLASSES[0][1]
    for lower, col in CLASSES:
        if percent >= lower:
            chosen = col
    return chosen


def legend_items(lang: str) -> list[tuple[str, str]]:
    """(colour, label) for each class, then the no-data colour."""
    bounds = [c[0] for c in CLASSES] + [100.0]
    items = [(col, f"{bounds[i]:g}–{bounds[i + 1]:g}%") for i, (_, col) in enumerate(CLASSES)]
    return items + [(NO_DATA, TEXT[lang]["no_data"])]


def planner_page(engine: Engine, q: PlanningQuery, n: int) -> dict[str, Any]:
    """Everything the template needs: the reports, the map's HTML parts, the form's bounds and links."""
    shown = planning.planner_overview(engine, q, n, MAP_GAPS)
    coverage, gaps, suggest = shown["coverage"], shown["gaps"], shown["suggest"]
    rows = [r for r in coverage["rows"] if r["district"] != CITY_CODE]
    city = next(r for r in coverage["rows"] if r["district"] == CITY_CODE)
    life = next(r for r in shown["composite"]["rows"] if r["layer"] == LIFE_CIRCLE.key and r["district"] == CITY_CODE)
    head, body, script = _map_parts(shown["outlines"], rows, gaps, suggest, q.lang)
    query = {k: v for k, v in (("layer", q.layer), ("district", q.district), ("radius_m", q.radius_m),
                               ("as_of", q.as_of.isoformat() if q.as_of else None), ("lang", q.lang)) if v}
    other_lang = "en" if q.lang == "zh" else "zh"
    return {"q": q, "n": n, "t": TEXT[q.lang], "coverage": coverage, "rows": rows, "city": city,
            "life": life, "gaps": gaps, "suggest": suggest, "legend": legend_items(q.lang),
            "map_head": Markup(head), "map_body": Markup(body), "map_script": Markup(script),
            "layers": [(key, layer.name(q.lang)) for key, layer in LAYERS.items()],
            "radius": RADIUS, "sites": PAGE_SITES,
            "csv_url": "/api/coverage?" + urlencode({**query, "format": "csv"}),
            "xlsx_url": "/api/coverage?" + urlencode({**query, "format": "xlsx"}),
            "gaps_url": "/api/gaps?" + urlencode(query),
            "suggest_url": "/api/suggest?" + urlencode({**query, "n": n}),
            "gaps_cells": " / ".join(TEXT[q.lang][c] for c in LAYERS[q.layer].applies_to),
            "other_lang": other_lang, "other_lang_url": "/planner?" + urlencode({**query, "n": n, "lang": other_lang})}


def _map_parts(outlines: dict[str, Any], rows: list[dict[str, Any]], gaps: dict[str, Any],
               suggest: dict[str, Any], lang: str) -> tuple[str, str, str]:
    """(head, body, script) of the Folium map, with local Leaflet and nonces."""
    by_code = {r["district"]: r for r in rows}
    for f in outlines["features"]:
        r = by_code.get(f["properties"]["adcode"])
        pct = None if r is None else r["percent"]
        f["properties"].update(name=f["properties"]["name_en" if lang == "en" else "name_zh"],
                               percent=("–" if pct is None else f"{pct:.1f}%"), fill=colour(pct))
    basemap, key, display_crs = basemap_setting()
    if display_crs == "gcj02":  # AMap tiles: draw every overlay in GCJ-02 to sit on them
        outlines = districts_to_gcj02(outlines)
        gaps = {**gaps, "features": districts_to_gcj02({"features": gaps["features"]})["features"]}
        suggest = {**suggest, "sites": [_site_to_gcj02(s) for s in suggest["sites"]]}
    fmap = _offline_map()
    add_basemap(fmap, basemap, key)
    t = TEXT[lang]
    folium.GeoJson(outlines, name="choropleth",
                   style_function=lambda f: {"fillColor": f["properties"]["fill"], "color": "#333333",
                                             "weight": 1.5, "fillOpacity": 0.75},
                   tooltip=folium.GeoJsonTooltip(["name", "percent"], aliases=[t["district"], t["percent"]]),
                   ).add_to(fmap)
    if gaps["features"]:
        folium.GeoJson({"type": "FeatureCollection", "features": gaps["features"]}, name="gaps",
                       style_function=lambda f: {"fillColor": "#d7301f", "color": "#b30000", "weight": 1,
                                                 "fillOpacity": 0.3},
                       tooltip=folium.GeoJsonTooltip(["rank", "population", "district_name"],
                                                     aliases=[t["rank"], t["population"], t["district"]]),
                       ).add_to(fmap)
    for s in suggest["sites"]:
        folium.CircleMarker([s["lat"], s["lon"]], radius=7, color="#08306b", weight=2, fill=True,
                            fill_color="#4292c6", fill_opacity=0.9,
                            tooltip=f"{t['site_legend']} {s['rank']}: +{s['marginal_gain']:,} "
                                    f"({t['cumulative']} {s['cumulative_percent']}%)",
                            class_name="suggested-site").add_to(fmap)
    fmap.fit_bounds(_bounds(outlines))
    fig: Any = fmap.get_root()  # a branca Figure (typed as its base Element)
    fig.render()
    return add_nonce(fig.header.render()), fig.html.render(), fig.script.render()


def _site_to_gcj02(site: dict[str, Any]) -> dict[str, Any]:
    lon, lat = wgs84_to_gcj02(site["lon"], site["lat"])
    return {**site, "lon": lon, "lat": lat}


def _offline_map() -> folium.Map:
    fmap = folium.Map(location=[34.85, 117.45], zoom_start=9, tiles=None, control_scale=True,
                      prefer_canvas=False)
    fmap.default_js = [("leaflet", "/vendor/leaflet/dist/leaflet.js")]
    fmap.default_css = [("leaflet_css", "/vendor/leaflet/dist/leaflet.css")]
    return fmap


def _bounds(geojson: dict[str, Any]) -> list[list[float]]:
    boxes = [shapely.geometry.shape(f["geometry"]).bounds for f in geojson["features"]] or [(117.0, 34.4, 117.9, 35.3)]
    return [[min(b[1] for b in boxes), min(b[0] for b in boxes)], [max(b[3] for b in boxes), max(b[2] for b in boxes)]]


@bp.get("/planner")
def planner() -> ResponseReturnValue:
    args = parse(PAGE_PARAMS)
    q, n = planning_query(args, args.layer), args.n
    engine = get_engine()
    return cache.cached_html(engine, "planner", (q, n, current_app.config.get("BASEMAP")),
                             lambda: render_template("planner.html", **planner_page(engine, q, n)))
