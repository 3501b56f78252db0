"""Planners' JSON API: coverage, gaps and suggested sites, by district.

* ``GET /api/coverage?layer=&district=&radius_m=&as_of=&by=&zones=&compare=&lang=&format=``:
  one row per district (or zone) plus the whole city, each leading with the
  share of the residents where the layer applies, with its threshold,
  standard and measure; ``layer=all`` adds the composite "15-minute life
  circle", ``layer=composite`` gives it alone; ``compare=DATE1,DATE2`` gives
  both dates side by side with the change.
* ``GET /api/gaps?layer=&district=&radius_m=&as_of=&by=&lang=&limit=&cells=&format=``:
  GeoJSON of clusters of uncovered cells, largest population first.
* ``GET /api/suggest?layer=&n=&candidates=&cells=&district=&radius_m=&as_of=&by=&lang=&format=``:
  n new sites by maximal covering, each with its marginal gain.

Each view parses the parameters declared here (the same declarations build
``/openapi.json`` and the planner page's form bounds), calls one function of
:mod:`services.planning` or :mod:`services.planning_tables`, and renders.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from etl.candidates import SET_NAME
from geo.crs import METRIC_EPSG
from layers import LIFE_CIRCLE
from services import planning, planning_suggest, planning_tables
from services.planning_inputs import (
    CELL_CANDIDATES,
    GAP_CELLS,
    MAX_GAPS,
    MAX_RADIUS_M,
    MAX_SITES,
    MEASURES,
    MIN_RADIUS_M,
    SET_PREFIX,
    PlanningQuery,
)
from services.planning_tables import TABLE_FORMATS, TableFile
from web.database import get_engine
from web.params import DISTRICT, LANG, LAYER, LAYER_OR_ALL, Args, Param, operation, parse
from web.responses import download, errors

bp = Blueprint("planner_api", __name__)

# ------------------------------------------------------------------ the parameters, declared once
RADIUS = Param("radius_m", "number", f"Service radius in metres (EPSG:{METRIC_EPSG}) for every cell; default: the "
               "layer's own urban and rural thresholds.", minimum=MIN_RADIUS_M, maximum=MAX_RADIUS_M)
AS_OF = Param("as_of", "date", "Count the facilities open on this date (YYYY-MM-DD): opened on or before it and not "
               "retired on or before it. Default: today; a later date is refused.")
BY = Param("by", "string", "How distances are measured: walk (along the roads, each threshold on the network of its "
           "own travel mode), drive (every threshold along the driving network) or straight. Default: walk when a "
           "road network is loaded, else straight.", enum=MEASURES)
ZONES = Param("zones", "string", f"Give the figures by the zones of a loaded set ({SET_PREFIX}<name>, see "
              "`flask etl zones`) instead of by district.", pattern=f"^{SET_PREFIX}{SET_NAME.pattern}$")
COMPARE_DATE = Param("compare", "date", "One date of compare.")
#: What every planning report is asked for besides its layer (see :class:`PlanningQuery`).
QUERY = (DISTRICT, RADIUS, AS_OF, BY, ZONES, LANG)
COMPARE = Param("compare", "string", "Two dates DATE1,DATE2 (YYYY-MM-DD, the first earlier): coverage on both, side "
                "by side, with the change per row.", pattern=r"^\d{4}-\d{2}-\d{2},\d{4}-\d{2}-\d{2}$")
SITES = Param("n", "integer", "How many sites.", default=10, minimum=1, maximum=MAX_SITES)
GAPS_LIMIT = Param("limit", "integer", "Most gap clusters.", default=200, minimum=1, maximum=MAX_GAPS)
CELLS = Param("cells", "string", "applicable: only cells where the layer's standard applies (urban, rural or "
              "both, from its record) count and are candidates; all: every cell.", enum=GAP_CELLS,
              default=GAP_CELLS[0])
CANDIDATES = Param("candidates", "string", f"Candidate sites: {CELL_CANDIDATES} (centres of uncovered cells), the "
                   f"sites of a layer, or a loaded candidate set ({SET_PREFIX}<name>, see `flask etl candidates`).",
                   default=CELL_CANDIDATES,
                   pattern=f"^({CELL_CANDIDATES}|[a-z][a-z_]*|{SET_PREFIX}{SET_NAME.pattern})$")

COVERAGE_LAYER = LAYER_OR_ALL.but(required=True, default=None, description="Facility layer key, all layers (all), "
                                  f"or the composite life circle alone ({LIFE_CIRCLE.key}).",
                                  enum=lambda: (*(LAYER_OR_ALL.allowed_values() or []), LIFE_CIRCLE.key))
COVERAGE_PARAMS = (COVERAGE_LAYER, *QUERY, COMPARE,
                   Param("format", "string", "Output format.", enum=("json", *TABLE_FORMATS), default="json"))
GAPS_PARAMS = (LAYER, *QUERY, GAPS_LIMIT, CELLS,
               Param("format", "string", "Output format.", enum=("geojson", "json", "csv"), default="geojson"))
SUGGEST_PARAMS = (LAYER, *QUERY, SITES, CANDIDATES, CELLS,
                  Param("format", "string", "Output format.", enum=("json", "csv"), default="json"))

_SCHEMAS = {"application/json": {"type": "object"},
            "application/geo+json": {"$ref": "#/components/schemas/FeatureCollection"},
            "text/csv": {"type": "string"}, TABLE_FORMATS["xlsx"]: {"type": "string", "format": "binary"}}


def _answers(description: str, *media: str) -> dict[str, Any]:
    """The operation's responses: 200 in each of ``media``, or a 400 or 503 error."""
    return {"200": {"description": description, "content": {m: {"schema": _SCHEMAS[m]} for m in media}},
            **errors(400, 503)}


def planning_query(args: Args, layer: str) -> PlanningQuery:
    """The :class:`PlanningQuery` of parsed parameters that include :data:`QUERY`."""
    return PlanningQuery(layer=layer, district=args.district, radius_m=args.radius_m, as_of=args.as_of,
                         lang=args.lang, by=args.by, zones=args.zones)


def compare_dates(raw: str) -> tuple[dt.date, dt.date]:
    """The two dates of ``compare=DATE1,DATE2`` (the pattern was checked by :func:`parse`)."""
    first, second = (COMPARE_DATE.coerce(part) for part in raw.split(","))
    return first, second


def _file(table: TableFile) -> ResponseReturnValue:
    return download(table.body, table.media_type, table.filename)


# ------------------------------------------------------------------ routes
@bp.get("/api/coverage")
@operation("Share of population within reach, by district", "planners", COVERAGE_PARAMS,
           responses=_answers("Coverage report", "application/json", "text/csv", TABLE_FORMATS["xlsx"]))
def api_coverage() -> ResponseReturnValue:
    args = parse(COVERAGE_PARAMS)
    q = planning_query(args, args.layer)
    if args.compare:
        first, second = compare_dates(args.compare)
        if args.format in TABLE_FORMATS:
            return _file(planning_tables.compare_file(get_engine(), q, args.format, first, second))
        return jsonify(planning.compare_report(get_engine(), q, first, second))
    if args.format in TABLE_FORMATS:
        return _file(planning_tables.coverage_file(get_engine(), q, args.format))
    return jsonify(planning.coverage_report(get_engine(), q))


@bp.get("/api/gaps")
@operation("Populated cells out of reach, as clusters", "planners", GAPS_PARAMS,
           responses=_answers("Gap clusters", "application/geo+json", "text/csv"))
def api_gaps() -> ResponseReturnValue:
    args = parse(GAPS_PARAMS)
    q = planning_query(args, args.layer)
    if args.format in TABLE_FORMATS:
        return _file(planning_tables.gaps_file(get_engine(), q, args.format, args.limit, args.cells))
    response = jsonify(planning.gaps_report(get_engine(), q, args.limit, args.cells))
    response.mimetype = "application/geo+json"
    return response


@bp.get("/api/suggest")
@operation("Suggested sites for new facilities", "planners", SUGGEST_PARAMS,
           responses=_answers("Suggested sites", "application/json", "text/csv"))
def api_suggest() -> ResponseReturnValue:
    args = parse(SUGGEST_PARAMS)
    q = planning_query(args, args.layer)
    if args.format in TABLE_FORMATS:
        return _file(planning_tables.suggest_file(get_engine(), q, args.format, args.n, args.candidates, args.cells))
    return jsonify(planning_suggest.suggest_report(get_engine(), q, args.n, args.candidates, args.cells))
