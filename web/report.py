"""The planner's report: ``/planner/report.pdf`` ("下载报告 / Download report") and ``/planner/map.png``.

The PDF has one page for the city and, unless a district is asked for, one
page per district; each page shows the map (drawn here as SVG from the same
figures as the page, with its legend), the date, the layer's standard, the
measure and the table. The PNG is the map alone. Both take the planner
page's parameters and are printed by the operating system's headless
Chromium (:mod:`web.report_render`). The views are in :mod:`web.planner`.
"""
from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup

from web import planner_map

#: The SVG map's size in CSS pixels.
MAP_W, MAP_H = 720, 560


def svg_map(outlines: dict[str, Any], fills: dict[str, str], key_field: str, highlight: str | None,
            gaps: list[dict[str, Any]], sites: list[dict[str, Any]], labels: list[tuple[str, float, float]]) -> str:
    """An SVG map of the areas (filled by ``fills``), gap clusters, numbered sites and area labels (WGS-84 in)."""
    boxes = [_bounds(f["geometry"]) for f in outlines["features"]] or [(117.0, 34.4, 117.9, 35.3)]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    k = math.cos(math.radians((y0 + y1) / 2))
    scale = min((MAP_W - 20) / ((x1 - x0) * k), (MAP_H - 20) / (y1 - y0))

    def pt(lon: float, lat: float) -> str:
        return f"{10 + (lon - x0) * k * scale:.1f},{10 + (y1 - lat) * scale:.1f}"

    def path(geometry: dict[str, Any]) -> str:
        polys = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
        return " ".join("M" + " L".join(pt(*c[:2]) for c in ring) + "Z" for poly in polys for ring in poly)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{MAP_W}" height="{MAP_H}" '
             f'viewBox="0 0 {MAP_W} {MAP_H}" role="img" class="report-map">']
    for f in outlines["features"]:
        code = str(f["properties"][key_field])
        width = 3 if code == highlight else 1
        parts.append(f'<path d="{path(f["geometry"])}" fill="{fills.get(code, planner_map.NO_DATA)}" '
                     f'stroke="#222" stroke-width="{width}" fill-rule="evenodd"/>')
    parts += [f'<path d="{path(g["geometry"])}" fill="{planner_map.GAP_COLOUR}" fill-opacity="0.55" stroke="#b30000" '
              'stroke-width="0.5"/>' for g in gaps]
    for name, lon, lat in labels:
        x, y = pt(lon, lat).split(",")
        parts.append(f'<text x="{x}" y="{y}" class="label" text-anchor="middle">{Markup.escape(name)}</text>')
    for s in sites:
        x, y = pt(s["lon"], s["lat"]).split(",")
        parts.append(f'<circle cx="{x}" cy="{y}" r="9" fill="{planner_map.SITE_COLOUR}" stroke="#fff"/>'
                     f'<text x="{x}" y="{float(y) + 4:.1f}" class="site" text-anchor="middle">{s["rank"]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _bounds(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    polys = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    xs = [c[0] for poly in polys for ring in poly for c in ring]
    ys = [c[1] for poly in polys for ring in poly for c in ring]
    return min(xs), min(ys), max(xs), max(ys)


def report_pages(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """One page for the city, then one per area unless a district was asked for (``ctx``: the page's context)."""
    outlines = ctx["outlines"]
    fills = {str(f["properties"][ctx["key_field"]]): f["properties"]["fill"] for f in outlines["features"]}
    labels = planner_map.area_labels(outlines, "name")
    rows, city = ctx["rows"], ctx["city"]
    focus = [None] if ctx["q"].district else [None, *(r.get("zone", r.get("district")) for r in rows)]
    pages = []
    for code in focus:
        chosen = [r for r in rows if r.get("zone", r.get("district")) == code] if code else rows
        gaps = [g for g in ctx["gaps"]["features"] if code is None or g["properties"]["district"] == code] \
            if ctx["gaps"] else []
        sites = [s for s in ctx["suggest"]["sites"] if code is None or s.get("district") == code] \
            if ctx["suggest"] else []
        title = city["district_name"] if code is None else (chosen[0].get("zone_name") or chosen[0]["district_name"])
        pages.append({"title": title, "rows": [*chosen, city] if code else [*rows, city], "sites": sites,
                      "map": Markup(svg_map(outlines, fills, ctx["key_field"], code, gaps, sites, labels))})
    return pages
