"""Planners' JSON API: coverage, gaps and suggested sites, by district.

Routes (each parses its parameters with :mod:`web.params` and calls one
report function below):

* ``GET /api/coverage?layer=&district=&radius_m=&as_of=&format=`` — one row
  per district plus the whole city, each with its threshold and standard;
  ``layer=all`` adds the composite "15-minute life circle".
* ``GET /api/gaps?layer=&district=&radius_m=&as_of=&limit=&format=`` —
  GeoJSON of clusters of uncovered cells, largest population first.
* ``GET /api/suggest?layer=&n=&district=&radius_m=&as_of=&format=`` — n new
  sites by greedy maximal covering, each with its marginal gain.

The reports themselves are built in :mod:`db.planning` (arrays from
:mod:`db.analysis`, maths in :mod:`geo`); this module only routes and renders.
"""
from __future__ import annotations

import csv
import io
from typing import Any

from flask import Blueprint, Response, jsonify

from db import analysis
from db.planning import (MAX_GAPS, MAX_RADIUS_M, MAX_SITES, Query, coverage_report, coverage_table,
                         gaps_report, gaps_table, suggest_report, suggest_table)
from etl.export import defuse
from layers import LAYER_KEYS
from web import cache, params
from web.database import get_engine

bp = Blueprint("planner_api", __name__)

def csv_response(table: list[list[Any]], filename: str) -> Response:
    """UTF-8 CSV with a byte-order mark, so Excel shows the Chinese."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerows([["" if v is None else defuse(v) for v in row] for row in table])
    body = buf.getvalue().encode("utf-8-sig")
    return Response(body, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def xlsx_response(table: list[list[Any]], filename: str, note: str) -> Response:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "coverage"
    for row in table:
        ws.append([defuse(v) for v in row])
    ws.freeze_panes = "A2"
    about = wb.create_sheet("about")
    about.append([note])
    buf = io.BytesIO()
    wb.save(buf)
    return Response(buf.getvalue(),
                    mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# --------------------------------------------------------------------------
# routes
# --------------------------------------------------------------------------

def parse_query(*, allow_all: bool, default_layer: str | None = None) -> Query:
    """The shared parameters: layer, district, radius_m, as_of, lang."""
    return Query(layer=params.layer(allow_all=allow_all, default=default_layer),
                 district=params.district(),
                 radius_m=params.number("radius_m", lo=1, hi=MAX_RADIUS_M),
                 as_of=params.date("as_of"),
                 lang=params.lang())


@bp.get("/api/coverage")
def api_coverage():
    q = parse_query(allow_all=True)
    fmt = params.choice("format", ("json", "csv", "xlsx"), default="json")
    engine = get_engine()
    report = cache.memo(engine, "coverage", q, lambda: coverage_report(engine, q))
    if fmt == "csv":
        return csv_response(coverage_table(report), f"coverage_{q.layer}.csv")
    if fmt == "xlsx":
        return xlsx_response(coverage_table(report), f"coverage_{q.layer}.xlsx", report["note"])
    return jsonify(report)


@bp.get("/api/gaps")
def api_gaps():
    q = parse_query(allow_all=False)
    limit = params.integer("limit", lo=1, hi=MAX_GAPS, default=200)
    cells = params.choice("cells", ("applicable", "all"), default="applicable")
    fmt = params.choice("format", ("geojson", "json", "csv"), default="geojson")
    engine = get_engine()
    report = cache.memo(engine, "gaps", (q, limit, cells), lambda: gaps_report(engine, q, limit, cells))
    if fmt == "csv":
        return csv_response(gaps_table(report), f"gaps_{q.layer}.csv")
    response = jsonify(report)
    response.mimetype = "application/geo+json"
    return response


@bp.get("/api/suggest")
def api_suggest():
    q = parse_query(allow_all=False)
    n = params.integer("n", lo=1, hi=MAX_SITES, default=10)
    candidates = params.choice("candidates", ("cells", *LAYER_KEYS,
                                              *(f"set:{n}" for n in analysis.candidate_sets(get_engine()))),
                               default="cells")
    fmt = params.choice("format", ("json", "csv"), default="json")
    engine = get_engine()
    report = cache.memo(engine, "suggest", (q, n, candidates), lambda: suggest_report(engine, q, n, candidates))
    if fmt == "csv":
        return csv_response(suggest_table(report), f"suggest_{q.layer}.csv")
    return jsonify(report)
