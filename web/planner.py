"""The planners' page ``/planner``: coverage by district or zone, gaps, suggested sites, before/after, the report.

One map (:mod:`web.planner_map`: areas coloured by coverage with a legend
that states its classes, district labels, the layer's facilities, the
largest gap clusters named by district and nearest village, numbered
suggested sites) plus the table and bar chart by area, the method note and
downloads (CSV with BOM, XLSX, the PDF report and the map as PNG), all in
Chinese by default and English with ``?lang=en``. ``layer=all`` shows the
composite life circle. Everything is served by the app itself.

The view parses the planner API's parameter declarations (blank form
fields count as absent), calls :func:`services.planning.planner_overview`
(and :func:`services.planning.compare_report` for ``compare``) and renders;
the page is cached until the data changes (:func:`web.cache.cached_html`).
A bad parameter gets a page in the page's language (:func:`bad_parameter`).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from sqlalchemy.engine import Engine
from werkzeug.datastructures import MultiDict

from layers import LAYER_KEYS, LAYERS, LIFE_CIRCLE
from layers.districts import CITY_CODE
from services import planning, planning_measure, planning_suggest, zones
from services.errors import ServiceError
from services.planning_inputs import ALL, SET_PREFIX, PlanningQuery
from services.planning_tables import file_stem
from web import cache, planner_map, report, report_render
from web.database import get_engine
from web.errors import RETRY_AFTER_UNAVAILABLE, APIError, service_status
from web.params import LAYER_OR_ALL, Args, parse
from web.planner_api import COMPARE, QUERY, RADIUS, SITES, compare_dates, planning_query
from web.planner_text import TEXT, error_message
from web.responses import download

bp = Blueprint("planner", __name__)

#: Gap clusters drawn on the map and listed under it (the full list is the API's job).
MAP_GAPS = 10
#: The page's parameters: the API's, with the first layer of the registry (or all) and 5 sites by default.
PAGE_SITES = SITES.but(default=5)
PAGE_PARAMS = (LAYER_OR_ALL.but(required=False, default=LAYER_KEYS[0]), *QUERY, PAGE_SITES, COMPARE)


def page_args() -> Args:
    """The page's parameters, blank form fields counted as absent (HTML forms submit empty fields)."""
    given = MultiDict([(k, v) for k, v in request.args.items(multi=True) if str(v).strip() != ""])
    return parse(PAGE_PARAMS, given)


def _areas(engine: Engine, q: PlanningQuery, shown: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """The outlines drawn, their key field and their name field (districts, or the zones of ``q.zones``)."""
    if q.zones:
        return zones.outlines(engine, q.zones[len(SET_PREFIX):]), "zone_id", "name"
    for f in shown["features"]:
        f["properties"]["name"] = f["properties"]["name_en" if q.lang == "en" else "name_zh"]
    return shown, "adcode", "name"


def planner_page(engine: Engine, q: PlanningQuery, n: int, compare: str | None, *,
                 sites_later: bool = False) -> dict[str, Any]:
    """Everything the template needs: the reports, the map's HTML parts, the form's bounds and links.

    With ``sites_later`` the suggested sites are left out: the page fetches
    them from :func:`planner_sites` after its first paint (the PDF and PNG
    carry them at once).
    """
    shown = planning.planner_overview(engine, q, n, MAP_GAPS, sites=not sites_later)
    coverage, gaps, suggest = shown["coverage"], shown["gaps"], shown["suggest"]
    t = TEXT[q.lang]
    rows = [r for r in coverage["rows"] if r.get("district") != CITY_CODE]
    city = next(r for r in coverage["rows"] if r.get("district") == CITY_CODE)
    life = next(r for r in shown["composite"]["rows"] if r.get("district") == CITY_CODE)
    outlines, key_field, name_field = _areas(engine, q, shown["outlines"])
    # The map keeps every area coloured (a district filter zooms; it does not grey the others).
    whole = q.but(district=None, layer=q.layer if q.layer in LAYERS else LIFE_CIRCLE.key)
    every = planning.coverage_report(engine, whole) if q.district else coverage
    percents = {str(r.get("zone", r.get("district"))): r["percent"] for r in every["rows"]
                if r.get("district") != CITY_CODE}
    target = (city.get("target") or {}).get("percent")
    bounds, rule = planner_map.classes(list(percents.values()), target)
    focus = None
    if q.district and not q.zones:
        focus = {"features": [f for f in outlines["features"] if f["properties"]["adcode"] == q.district]}
    parts = planner_map.build(
        outlines, percents, bounds, t, gaps["features"] if gaps else [], suggest["sites"] if suggest else [],
        shown["facilities"], planner_map.area_labels(outlines, name_field), focus, key_field)
    query = _query(q)
    other = "en" if q.lang == "zh" else "zh"
    return {"q": q, "n": n, "t": t, "coverage": coverage, "rows": rows, "city": city, "life": life,
            "gaps": gaps, "suggest": suggest, "legend": planner_map.legend_items(bounds, t["no_data"]),
            "legend_rule": t["classes_" + rule].format(target=target),
            "map_head": Markup(parts.head), "map_body": Markup(parts.body), "map_script": Markup(parts.script),
            "map_name": parts.map_name, "sites_group": parts.sites_group,
            "sites_url": "/planner/sites?" + urlencode({**query, "n": n}),
            "layers": [(ALL, LIFE_CIRCLE.name(q.lang)), *((k, x.name(q.lang)) for k, x in LAYERS.items())],
            "radius": RADIUS, "sites": PAGE_SITES, "single": q.layer in LAYERS,
            "compare": planning.compare_report(engine, q, *compare_dates(compare)) if compare else None,
            "compare_raw": compare or "", "outlines": outlines, "key_field": key_field,
            "downloads": _downloads(query, n, q.layer in LAYERS),
            "cells_label": " / ".join(t[c] for c in city["cells"].split("+")),
            "measure_label": _measure_label(city, t), "other_lang": other,
            "other_lang_url": "/planner?" + urlencode({**query, "n": n, "lang": other})}


def _query(q: PlanningQuery) -> dict[str, Any]:
    return {k: v for k, v in (("layer", q.layer), ("district", q.district), ("radius_m", q.radius_m),
                               ("as_of", q.as_of.isoformat() if q.as_of else None), ("by", q.by),
                               ("zones", q.zones), ("lang", q.lang)) if v}


def _downloads(query: dict[str, Any], n: int, single: bool) -> dict[str, str]:
    coverage_query = {**query, "layer": query["layer"] if single else LIFE_CIRCLE.key}
    links = {"csv": "/api/coverage?" + urlencode({**coverage_query, "format": "csv"}),
             "xlsx": "/api/coverage?" + urlencode({**coverage_query, "format": "xlsx"}),
             "pdf": "/planner/report.pdf?" + urlencode({**query, "n": n}),
             "png": "/planner/map.png?" + urlencode({**query, "n": n})}
    if single:
        links.update(gaps="/api/gaps?" + urlencode(query), suggest="/api/suggest?" + urlencode({**query, "n": n}))
    return links


def _measure_label(city: dict[str, Any], t: dict[str, str]) -> str:
    m = city.get("measure") or {}
    if "urban" not in m:
        return t["by_" + m.get("by", "straight")]
    parts = [f"{t[c]}: {m[c]['text']}" for c in ("urban", "rural") if c in city["cells"].split("+")]
    area = t["area_to_boundary"] if m.get("area_to") == "boundary" else ""
    return "；".join(parts) + (f" · {area}" if area else "")


@bp.get("/planner")
def planner() -> ResponseReturnValue:
    args = page_args()
    q, n = planning_query(args, args.layer), args.n
    engine = get_engine()
    return cache.cached_html(engine, "planner", (q, n, args.compare, current_app.config.get("BASEMAP")),
                             lambda: render_template("planner.html",
                                                     **planner_page(engine, q, n, args.compare, sites_later=True)))


@bp.get("/planner/sites")
def planner_sites() -> ResponseReturnValue:
    """The page's suggested sites, fetched after its first paint: the method, the table's rows and the markers.

    The same sites as ``/api/suggest`` with the page's parameters (one
    remembered answer serves both), worded and placed as the page draws them.
    """
    args = page_args()
    q = planning_query(args, args.layer)
    suggest = planning_suggest.suggest_report(get_engine(), q, args.n)
    t = TEXT[q.lang]
    return jsonify({"method": suggest["method"], "sites": len(suggest["sites"]),
                    "rows_html": render_template("planner_sites.html", suggest=suggest),
                    "markers": planner_map.site_markers(suggest["sites"], t)})


@bp.get("/planner/report.pdf")
def report_pdf() -> ResponseReturnValue:
    """下载报告 / Download report: the PDF of the planner page's figures (one page for the city, one per area)."""
    args = page_args()
    q = planning_query(args, args.layer)
    ctx = planner_page(get_engine(), q, args.n, args.compare)
    html = render_template("planner_report.html", pages=report.report_pages(ctx), **ctx)
    return download(report_render.pdf(html), "application/pdf", file_stem("report", q) + ".pdf")


@bp.get("/planner/map.png")
def map_png() -> ResponseReturnValue:
    """The planner's map alone, with its legend, as a PNG."""
    args = page_args()
    q = planning_query(args, args.layer)
    ctx = planner_page(get_engine(), q, args.n, args.compare)
    html = render_template("planner_map_png.html", page=report.report_pages(ctx)[0], **ctx)
    return download(report_render.png(html, report.MAP_W + 320, report.MAP_H + 160), "image/png",
                    file_stem("map", q) + ".png")


@bp.errorhandler(APIError)
@bp.errorhandler(ServiceError)
def bad_parameter(exc: APIError | ServiceError) -> ResponseReturnValue:
    """A page (not JSON) saying which parameter was wrong and what is allowed, in the page's language.

    A fault of the server, not the request (a 503, e.g. Chromium failing to print), says so, with ``Retry-After``.
    """
    lang = "en" if request.args.get("lang") == "en" else "zh"
    status = exc.status if isinstance(exc, APIError) else service_status(exc)
    t = TEXT[lang]
    body = render_template("planner_error.html", t=t, lang=lang, status=status,
                           title=t["busy_title"] if status == 503 else t["error_title"],
                           message=error_message(exc, lang), back="/planner?" + urlencode({"lang": lang}))
    return body, status, ({"Retry-After": RETRY_AFTER_UNAVAILABLE} if status == 503 else {})


def hold_planning_inputs(app: Flask) -> str:
    """Hold ``app``'s planning inputs now (:func:`services.planning_measure.hold_inputs`); what is held, in words.

    The heavy lane's workers call it once at start, in the background (``web/lane.py``).
    """
    with app.app_context():
        return planning_measure.hold_inputs(get_engine())
