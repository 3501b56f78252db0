"""The planners' reports: coverage and gaps by district (or zone), before and after, and the page's overview.

One use case per public function. Each report opens one read-only
transaction on one snapshot (:func:`services.planning_inputs.snapshot`),
reads its arrays with :mod:`db.grid` (metres in EPSG:4548), measures with
:mod:`services.planning_measure` (straight or along the roads, areas to
their boundary), runs the pure core in :mod:`geo`, and returns the plain
dicts the API and the planner page share. Every layer fact comes from the
layer's record in :mod:`layers`. Reports are remembered with
:func:`services.cache.memo` until the data changes. Site suggestions are
:mod:`services.planning_suggest`; the layers' extra figures
:mod:`services.planning_figures`.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import shapely
from sqlalchemy.engine import Engine

from db import grid as db_grid
from geo.coverage import composite_mask, coverage_summary
from geo.crs import from_metric, transform_geometry
from geo.gaps import cluster_polygon, gap_clusters
from layers import LAYERS, LIFE_CIRCLE, Layer, Target, get_layer
from layers.districts import CITY_CODE
from layers.model import CELL_CLASSES
from services import catalogue, planning_figures, planning_suggest
from services import planning_inputs as inputs
from services import planning_measure as measuring
from services.cache import memo
from services.errors import InvalidRequest
from services.planning_inputs import ALL, GAP_CELLS, OUTLINE_SIMPLIFY_M, Areas, Mask, PlanningQuery

#: The figure a row leads with: the share of the residents where the layer applies.
HEADLINE = "applicable"

# --------------------------------------------------------------------------
# coverage
# --------------------------------------------------------------------------


def coverage_report(engine: Engine, q: PlanningQuery) -> dict[str, Any]:
    """Coverage by district (or zone) and for the city, for one layer, :data:`ALL`, or the composite.

    Returns
    -------
    dict
        ``rows``: per layer (in registry order, then the composite life
        circle for ``all``; ``layer=composite`` gives the composite alone),
        one row per district (``district``) or zone (``zone``) then the city
        row (``district`` = 370400). Each row leads with the headline:
        ``percent`` of the residents of the cells where the layer applies
        (``cells``: urban, rural or urban+rural), ``population`` and
        ``covered_population`` of those cells; ``all_residents`` holds the
        same over every resident, labelled. Then the threshold in metres with
        its standard, the ``measure`` (straight or along which network; areas
        to their boundary), the target when the layer has one, and its extra
        figures (:mod:`services.planning_figures`).
    """
    if q.layer not in (ALL, LIFE_CIRCLE.key):
        get_layer(q.layer)
    by = measuring.resolve_by(engine, q.by)
    return memo(engine, "planning.coverage", (q, by), lambda: _coverage(engine, q, by))


def _coverage(engine: Engine, q: PlanningQuery, by: str) -> dict[str, Any]:
    composite_only = q.layer == LIFE_CIRCLE.key
    layers = [x for x in LAYERS.values() if x.in_composite or not composite_only] if q.layer in (ALL, LIFE_CIRCLE.key) \
        else [get_layer(q.layer)]
    rows: list[dict[str, Any]] = []
    masks: dict[str, Mask] = {}
    applies: dict[str, Mask] = {}
    with inputs.snapshot(engine) as conn:
        grid = inputs.demand_grid(engine, conn)
        areas = inputs.areas(engine, conn, grid, q)
        synthetic = grid.synthetic or areas.synthetic
        for layer in layers:
            cover = measuring.layer_cover(engine, conn, grid, layer, q, by)
            where = inputs.applies(layer, grid.urban)
            synthetic = synthetic or cover.sites.synthetic
            if layer.in_composite:
                masks[layer.key], applies[layer.key] = cover.covered, where
            if composite_only:
                continue
            head = {"layer": layer.key, "layer_name": layer.name(q.lang),
                    "measure": measuring.measure(layer, by, q.lang)}
            extra = planning_figures.figures(engine, conn, grid, layer, q, cover, areas, by)
            rows += _rows(grid, areas, cover.covered, where, "+".join(layer.applies_to), head,
                          threshold(layer, q), _target(layer.target, q.lang), extra)
    if q.layer in (ALL, LIFE_CIRCLE.key) and masks:
        head = {"layer": LIFE_CIRCLE.key, "layer_name": LIFE_CIRCLE.name(q.lang), "measure": {"by": by}}
        rows += _rows(grid, areas, composite_mask(masks, applies), np.ones(len(grid), dtype=bool),
                      "+".join(CELL_CLASSES), head, _composite_threshold(q), _target(LIFE_CIRCLE.target, q.lang), {})
    return {"layer": q.layer, **inputs.meta(q, synthetic, by), "areas": areas.kind, "headline": HEADLINE,
            "rows": rows}


def threshold(layer: Layer, q: PlanningQuery) -> dict[str, Any]:
    """The reach a report used, in metres, with the standard it comes from (in ``q.lang``)."""
    t = layer.threshold
    return {"urban_m": q.radius_m if q.radius_m is not None else t.urban_m,
            "rural_m": q.radius_m if q.radius_m is not None else t.rural_m,
            "overridden": q.radius_m is not None,
            "standard": t.standard_en if q.lang == "en" else t.standard_zh,
            "source": t.source, "confidence": t.confidence}


def _composite_threshold(q: PlanningQuery) -> dict[str, Any]:
    return {"urban_m": None, "rural_m": None, "overridden": q.radius_m is not None,
            "standard": LIFE_CIRCLE.rule(q.lang),
            "source": "each layer's own threshold (see its rows); rule: layers/composite.py",
            "confidence": "composite of the layers' thresholds"}


def _target(target: Target | None, lang: str) -> dict[str, Any] | None:
    return None if target is None else {"percent": target.percent, "text": target.text(lang)}


def _counts(s: dict[str, Any] | None) -> dict[str, Any]:
    s = s or {"population": 0.0, "covered_population": 0.0, "percent": None}
    return {"population": int(round(s["population"])), "covered_population": int(round(s["covered_population"])),
            "percent": None if s["percent"] is None else round(s["percent"], 2)}


def _rows(grid: db_grid.DemandGrid, areas: Areas, covered: Mask, where: Mask, cells: str, head: dict[str, Any],
          threshold_: dict[str, Any], target: dict[str, Any] | None,
          extra: dict[str | None, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per area in ``areas.codes``, then the city row (``None`` in the summaries)."""
    every = _by_code(grid.population, covered, areas.code)
    applicable = _by_code(np.where(where, grid.population, 0.0), covered, areas.code)
    out = []
    for code in [*areas.codes, None]:
        label = code or CITY_CODE
        place = {"district": label, "district_name": areas.names.get(label, label)} \
            if areas.kind == "district" or code is None else {"zone": code, "zone_name": areas.names.get(code, code)}
        row = {**head, **place, **_counts(applicable.get(code)), "cells": cells,
               "all_residents": {"label": "all residents", **_counts(every.get(code))},
               "threshold": threshold_}
        if target is not None:
            row["target"] = target
        row.update(extra.get(code, {}))
        out.append(row)
    return out


def _by_code(population: Any, covered: Mask, code: Any) -> dict[str | None, dict[str, Any]]:
    """Summaries per area code, and ``None`` for the whole city."""
    return {r["group"]: r for r in coverage_summary(population, covered, np.asarray(code).astype(str))}


# --------------------------------------------------------------------------
# before and after
# --------------------------------------------------------------------------

def compare_report(engine: Engine, q: PlanningQuery, before: dt.date, after: dt.date) -> dict[str, Any]:
    """Coverage on two dates side by side, with the change in covered residents (and points) per row.

    Raises
    ------
    InvalidRequest
        When ``before`` is not earlier than ``after`` (``parameter`` "compare").
    """
    if not before < after:
        raise InvalidRequest(f"compare was {before.isoformat()},{after.isoformat()} but the first date must be "
                             "earlier than the second", parameter="compare")
    first, second = coverage_report(engine, q.but(as_of=before)), coverage_report(engine, q.but(as_of=after))
    rows = []
    for a, b in zip(first["rows"], second["rows"], strict=True):
        change = b["covered_population"] - a["covered_population"]
        points = None if a["percent"] is None or b["percent"] is None else round(b["percent"] - a["percent"], 2)
        rows.append({**{k: b[k] for k in ("layer", "layer_name", "cells") if k in b},
                     **{k: b[k] for k in ("district", "district_name", "zone", "zone_name") if k in b},
                     "population": b["population"], "before": _side(a), "after": _side(b),
                     "change_covered": change, "change_points": points})
    return {**{k: second[k] for k in second if k not in ("rows", "as_of", "as_of_given")},
            "before": before.isoformat(), "after": after.isoformat(), "rows": rows}


def _side(row: dict[str, Any]) -> dict[str, Any]:
    return {"covered_population": row["covered_population"], "percent": row["percent"]}


# --------------------------------------------------------------------------
# gaps
# --------------------------------------------------------------------------

def gaps_report(engine: Engine, q: PlanningQuery, limit: int = 200, cells: str = "applicable") -> dict[str, Any]:
    """Clusters of uncovered, inhabited cells as a GeoJSON FeatureCollection (WGS-84).

    Cells join a cluster when they touch by an edge or a corner on the
    lattice; each feature is the union of its cells' squares, with its
    population, the district it mostly lies in and the nearest village (its
    name, a place a planner knows), sorted largest first; ``limit`` features
    at most. ``district`` keeps that district's cells only.
    ``cells="applicable"`` keeps the cells where the layer applies (its
    record's ``applies_to``); ``cells="all"`` keeps every cell.
    """
    layer = get_layer(q.layer)
    check_cells(cells)
    by = measuring.resolve_by(engine, q.by)
    return memo(engine, "planning.gaps", (q, by, limit, cells), lambda: _gaps(engine, q, by, layer, limit, cells))


def check_cells(cells: str) -> str:
    """``cells`` when it is one of :data:`GAP_CELLS`, else :class:`InvalidRequest` naming them."""
    if cells not in GAP_CELLS:
        raise InvalidRequest(f"cells was {cells!r} but is expected to be one of {', '.join(GAP_CELLS)}",
                             parameter="cells", allowed=list(GAP_CELLS))
    return cells


def _gaps(engine: Engine, q: PlanningQuery, by: str, layer: Layer, limit: int, cells: str) -> dict[str, Any]:
    with inputs.snapshot(engine) as conn:
        grid = inputs.demand_grid(engine, conn)
        cover = measuring.layer_cover(engine, conn, grid, layer, q, by)
        names = inputs.district_names(conn, q.lang)
        places = inputs.villages(engine, conn)
    gap = ~cover.covered & (grid.population > 0)
    if q.district:
        gap &= grid.district == q.district
    if cells == "applicable":
        gap &= inputs.applies(layer, grid.urban)
    clusters = gap_clusters(grid.xy, grid.population, gap, grid.resolution_m)
    features = [_gap_feature(grid, c, rank, names, places) for rank, c in enumerate(clusters[:limit], start=1)]
    return {"type": "FeatureCollection", "layer": q.layer,
            **inputs.meta(q, grid.synthetic or cover.sites.synthetic, by),
            "threshold": threshold(layer, q), "measure": measuring.measure(layer, by, q.lang),
            "cell_size_m": grid.resolution_m, "cells": cells, "clusters_total": len(clusters),
            "clusters_returned": len(features), "uncovered_population": int(round(float(grid.population[gap].sum()))),
            "features": features}


def _gap_feature(grid: db_grid.DemandGrid, cluster: dict[str, Any], rank: int, names: dict[str, str],
                 places: db_grid.Villages) -> dict[str, Any]:
    cells = cluster["cells"]
    polygon = transform_geometry(cluster_polygon(grid.xy, cells, grid.resolution_m), from_metric)
    lon, lat = from_metric(*cluster["centroid"])
    codes, counts = np.unique(grid.district[cells].astype(str), return_counts=True)
    code = str(codes[np.argmax(counts)])
    bounds = shapely.bounds(polygon)
    place = None
    if len(places):
        place = str(places.name[int(np.argmin(((places.xy - np.asarray(cluster["centroid"])) ** 2).sum(axis=1)))])
    return {"type": "Feature", "id": rank,
            "properties": {"rank": rank, "population": int(round(cluster["population"])),
                           "cells": int(len(cells)), "district": code, "district_name": names.get(code, code),
                           "near": place, "centroid_lon": round(float(lon), 6), "centroid_lat": round(float(lat), 6),
                           "bbox": [round(float(b), 6) for b in bounds]},
            "geometry": shapely.geometry.mapping(shapely.set_precision(polygon, 1e-6))}


# --------------------------------------------------------------------------
# the planner page
# --------------------------------------------------------------------------

def planner_overview(engine: Engine, q: PlanningQuery, n: int, gaps_shown: int, *,
                     sites: bool = True) -> dict[str, Any]:
    """What the planner page shows for one layer (or the composite).

    Returns
    -------
    dict
        ``coverage`` (the layer's report), ``composite`` (the composite life
        circle's rows), ``gaps`` (the ``gaps_shown`` largest clusters; none
        for the composite), ``suggest`` (``n`` sites; none for the
        composite, nor without ``sites``: the page asks for them after its
        first paint), ``facilities`` (the layer's sites, WGS-84) and
        ``outlines`` (district outlines, WGS-84, simplified by
        :data:`OUTLINE_SIMPLIFY_M` metres).
    """
    composite = coverage_report(engine, q.but(layer=LIFE_CIRCLE.key))
    single = q.layer in LAYERS
    return {"coverage": coverage_report(engine, q) if single else composite, "composite": composite,
            "gaps": gaps_report(engine, q, gaps_shown) if single else None,
            "suggest": planning_suggest.suggest_report(engine, q, n) if single and sites else None,
            "facilities": planning_suggest.facility_points(engine, q) if single else [],
            "outlines": catalogue.district_outlines(engine, simplify_m=OUTLINE_SIMPLIFY_M)}
