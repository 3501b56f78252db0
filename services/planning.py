"""The planners' reports: coverage, gaps and suggested sites, by district.

One use case per public function. Each report opens one read-only
transaction on one snapshot (:func:`services.planning_inputs.snapshot`),
reads its arrays with :mod:`db.grid` (metres in EPSG:4548), runs the pure
core in :mod:`geo`, and returns the plain dicts the API and the planner page
share. Every layer fact comes from the layer's record in :mod:`layers`: its
thresholds, the cell classes it applies to, whether it is part of the
composite life circle (:data:`layers.LIFE_CIRCLE`), its target and its extra
figures. Reports are remembered with :func:`services.cache.memo` until the
data changes.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from sqlalchemy.engine import Connection, Engine

from db import grid as db_grid
from geo.accessibility import district_2sfca, two_step_fca
from geo.allocate import default_candidates, greedy_max_cover
from geo.coverage import composite_mask, coverage_summary
from geo.crs import from_metric, transform_geometry
from geo.gaps import cluster_polygon, gap_clusters
from geo.planning import villages_without_reach
from layers import LAYERS, LIFE_CIRCLE, Layer, Target, get_layer
from layers.districts import CITY_CODE
from layers.model import CELL_CLASSES
from services import catalogue
from services import planning_inputs as inputs
from services.cache import memo
from services.errors import InvalidRequest
from services.planning_inputs import (
    ALL,
    CELL_CANDIDATES,
    GAP_CELLS,
    MAX_CANDIDATES,
    OUTLINE_SIMPLIFY_M,
    SET_PREFIX,
    Mask,
    PlanningQuery,
)

# --------------------------------------------------------------------------
# coverage
# --------------------------------------------------------------------------

def coverage_report(engine: Engine, q: PlanningQuery) -> dict[str, Any]:
    """Coverage by district and for the city, for one layer or :data:`ALL`.

    Returns
    -------
    dict
        ``rows``: per layer (in registry order, then the composite life
        circle for ``all``), one row per district then the city row
        (``district`` = 370400). Each row has population, covered
        population, percent (0-100), the same for the cells where the layer
        applies (``applicable``), the threshold in metres with its standard,
        the layer's target when it has one, and its extra figures: with
        ``supply_ratio``, ``spaces_per_1000`` (2SFCA of the capacity field);
        with ``per_village``, ``villages`` and ``villages_without_clinic``
        (villages with no facility of the layer in reach).
    """
    if q.layer != ALL:
        get_layer(q.layer)
    return memo(engine, "planning.coverage", q, lambda: _coverage(engine, q))


def _coverage(engine: Engine, q: PlanningQuery) -> dict[str, Any]:
    layers = list(LAYERS.values()) if q.layer == ALL else [get_layer(q.layer)]
    rows: list[dict[str, Any]] = []
    masks: dict[str, Mask] = {}
    applies: dict[str, Mask] = {}
    with inputs.snapshot(engine) as conn:
        grid = inputs.demand_grid(engine, conn)
        names = inputs.district_names(conn, q.lang)
        codes = inputs.district_codes(names, q.district)
        synthetic = grid.synthetic
        for layer in layers:
            cover = inputs.layer_cover(conn, grid, layer, q)
            where = inputs.applies(layer, grid.urban)
            synthetic = synthetic or cover.sites.synthetic
            if layer.in_composite:
                masks[layer.key], applies[layer.key] = cover.covered, where
            head = {"layer": layer.key, "layer_name": layer.name(q.lang)}
            rows += _rows(grid, cover.covered, where, "+".join(layer.applies_to), head, inputs.threshold(layer, q),
                          _target(layer.target, q.lang), _figures(engine, conn, grid, layer, q, cover, codes),
                          codes, names)
    if q.layer == ALL and masks:
        rows += _rows(grid, composite_mask(masks, applies), np.ones(len(grid), dtype=bool), "+".join(CELL_CLASSES),
                      {"layer": LIFE_CIRCLE.key, "layer_name": LIFE_CIRCLE.name(q.lang)},
                      _composite_threshold(q), _target(LIFE_CIRCLE.target, q.lang), {}, codes, names)
    return {"layer": q.layer, **inputs.meta(q, synthetic), "rows": rows}


def _composite_threshold(q: PlanningQuery) -> dict[str, Any]:
    return {"urban_m": None, "rural_m": None, "overridden": q.radius_m is not None,
            "standard": LIFE_CIRCLE.rule(q.lang),
            "source": "each layer's own threshold (see its rows); rule: layers/composite.py",
            "confidence": "composite of the layers' thresholds"}


def _target(target: Target | None, lang: str) -> dict[str, Any] | None:
    return None if target is None else {"percent": target.percent, "text": target.text(lang)}


def _summary_by_code(population: npt.NDArray[np.float64], covered: Mask,
                     district: npt.NDArray[Any]) -> dict[str | None, dict[str, Any]]:
    return {r["group"]: r for r in coverage_summary(population, covered, district)}


def _counts(s: dict[str, Any] | None) -> dict[str, Any]:
    s = s or {"population": 0.0, "covered_population": 0.0, "percent": None}
    return {"population": int(round(s["population"])), "covered_population": int(round(s["covered_population"])),
            "percent": None if s["percent"] is None else round(s["percent"], 2)}


def _rows(grid: db_grid.DemandGrid, covered: Mask, where: Mask, cells: str, head: dict[str, Any],
          threshold: dict[str, Any], target: dict[str, Any] | None, extra: dict[str | None, dict[str, Any]],
          codes: list[str], names: dict[str, str]) -> list[dict[str, Any]]:
    """One row per district in ``codes``, then the city row (``None`` in the summaries)."""
    summary = _summary_by_code(grid.population, covered, grid.district)
    applicable = _summary_by_code(np.where(where, grid.population, 0.0), covered, grid.district)
    out = []
    for code in [*codes, None]:
        label = code or CITY_CODE
        row = {**head, "district": label, "district_name": names.get(label, label), **_counts(summary.get(code)),
               "threshold": threshold, "applicable": {"cells": cells, **_counts(applicable.get(code))}}
        if target is not None:
            row["target"] = target
        row.update(extra.get(code, {}))
        out.append(row)
    return out


# --------------------------------------------------------------------------
# the layers' extra figures (Layer.figures)
# --------------------------------------------------------------------------

Figure = Callable[[Engine, Connection, db_grid.DemandGrid, Layer, PlanningQuery, inputs.LayerCover, list[str]],
                  dict[str | None, dict[str, Any]]]


def _supply_ratio(engine: Engine, conn: Connection, grid: db_grid.DemandGrid, layer: Layer, q: PlanningQuery,
                  cover: inputs.LayerCover, codes: list[str]) -> dict[str | None, dict[str, Any]]:
    """2SFCA of the layer's capacity field per 1,000 residents, by district."""
    ratio, _ = two_step_fca(grid.xy, grid.population, cover.sites.xy, cover.sites.capacity, cover.radius)
    by = {r["group"]: r["ratio_per_1000"] for r in district_2sfca(ratio, grid.population, grid.district)}
    return {c: {"spaces_per_1000": None if by.get(c) is None else round(by[c], 3)} for c in [*codes, None]}


def _per_village(engine: Engine, conn: Connection, grid: db_grid.DemandGrid, layer: Layer, q: PlanningQuery,
                 cover: inputs.LayerCover, codes: list[str]) -> dict[str | None, dict[str, Any]]:
    """Villages, and villages with no facility of the layer within its rural reach (or the override)."""
    v = inputs.villages(engine, conn)
    reach = q.radius_m if q.radius_m is not None else layer.threshold.rural_m
    counts = villages_without_reach(v.xy, v.district, cover.sites.xy, reach, codes)
    return {c: {"villages": counts[c]["villages"], "villages_without_clinic": counts[c]["without"],
                "villages_synthetic": v.synthetic} for c in [*codes, None]}


#: How each figure a layer record may name (``layers.model.FIGURES``) is computed.
FIGURES: dict[str, Figure] = {"supply_ratio": _supply_ratio, "per_village": _per_village}


def _figures(engine: Engine, conn: Connection, grid: db_grid.DemandGrid, layer: Layer, q: PlanningQuery,
             cover: inputs.LayerCover, codes: list[str]) -> dict[str | None, dict[str, Any]]:
    out: dict[str | None, dict[str, Any]] = {c: {} for c in [*codes, None]}
    for figure in layer.figures:
        for code, values in FIGURES[figure](engine, conn, grid, layer, q, cover, codes).items():
            out[code].update(values)
    return out


# --------------------------------------------------------------------------
# gaps
# --------------------------------------------------------------------------

def gaps_report(engine: Engine, q: PlanningQuery, limit: int = 200, cells: str = "applicable") -> dict[str, Any]:
    """Clusters of uncovered, inhabited cells as a GeoJSON FeatureCollection (WGS-84).

    Cells join a cluster when they touch by an edge or a corner on the
    lattice; each feature is the union of its cells' squares, with its
    population, sorted largest first; ``limit`` features at most.
    ``district`` keeps that district's cells only. ``cells="applicable"``
    keeps the cells where the layer applies (its record's ``applies_to``),
    so that a town facility's gaps are not one cluster spanning the
    countryside; ``cells="all"`` keeps every cell.
    """
    layer = get_layer(q.layer)
    if cells not in GAP_CELLS:
        raise InvalidRequest(f"cells was {cells!r} but is expected to be one of {', '.join(GAP_CELLS)}",
                             parameter="cells", allowed=list(GAP_CELLS))
    return memo(engine, "planning.gaps", (q, limit, cells), lambda: _gaps(engine, q, layer, limit, cells))


def _gaps(engine: Engine, q: PlanningQuery, layer: Layer, limit: int, cells: str) -> dict[str, Any]:
    with inputs.snapshot(engine) as conn:
        grid = inputs.demand_grid(engine, conn)
        cover = inputs.layer_cover(conn, grid, layer, q)
        names = inputs.district_names(conn, q.lang)
    gap = ~cover.covered & (grid.population > 0)
    if q.district:
        gap &= grid.district == q.district
    if cells == "applicable":
        gap &= inputs.applies(layer, grid.urban)
    clusters = gap_clusters(grid.xy, grid.population, gap, grid.resolution_m)
    features = [_gap_feature(grid, c, rank, names) for rank, c in enumerate(clusters[:limit], start=1)]
    return {"type": "FeatureCollection", "layer": q.layer, **inputs.meta(q, grid.synthetic or cover.sites.synthetic),
            "threshold": inputs.threshold(layer, q), "cell_size_m": grid.resolution_m,
            "cells": cells, "clusters_total": len(clusters), "clusters_returned": len(features),
            "uncovered_population": int(round(float(grid.population[gap].sum()))),
            "features": features}


def _gap_feature(grid: db_grid.DemandGrid, cluster: dict[str, Any], rank: int,
                 names: dict[str, str]) -> dict[str, Any]:
    cells = cluster["cells"]
    polygon = transform_geometry(cluster_polygon(grid.xy, cells, grid.resolution_m), from_metric)
    lon, lat = from_metric(*cluster["centroid"])
    codes, counts = np.unique(grid.district[cells].astype(str), return_counts=True)
    code = str(codes[np.argmax(counts)])
    return {"type": "Feature", "id": rank,
            "properties": {"rank": rank, "population": int(round(cluster["population"])),
                           "cells": int(len(cells)), "district": code, "district_name": names.get(code, code),
                           "centroid_lon": round(float(lon), 6), "centroid_lat": round(float(lat), 6)},
            "geometry": shapely.geometry.mapping(shapely.set_precision(polygon, 1e-6))}


# --------------------------------------------------------------------------
# suggestions
# --------------------------------------------------------------------------

def suggest_report(engine: Engine, q: PlanningQuery, n: int, candidates: str = CELL_CANDIDATES) -> dict[str, Any]:
    """``n`` new sites that bring the most uncovered residents within reach.

    Greedy maximal covering (:func:`geo.allocate.greedy_max_cover`). Candidate
    sites are the centres of uncovered cells (``candidates="cells"``; at most
    :data:`MAX_CANDIDATES`, drawn with a fixed seed), the sites of another
    layer (``candidates=<layer key>``, e.g. offices that could host another
    service), or a loaded candidate set (``candidates="set:<name>"``). With
    ``district``, only that district's cells and candidates take part and the
    percentages are of its residents.
    """
    layer = get_layer(q.layer)
    if not (candidates == CELL_CANDIDATES or candidates.startswith(SET_PREFIX) or candidates in LAYERS):
        raise _bad_candidates(candidates, [])
    if candidates.startswith(SET_PREFIX):
        # Candidate sets have no data-version counter: computed afresh (the grid itself stays cached).
        return _suggest(engine, q, layer, n, candidates)
    return memo(engine, "planning.suggest", (q, n, candidates), lambda: _suggest(engine, q, layer, n, candidates))


def _bad_candidates(candidates: str, set_names: list[str]) -> InvalidRequest:
    allowed = [CELL_CANDIDATES, *LAYERS, *(SET_PREFIX + s for s in set_names)]
    return InvalidRequest(f"candidates was {candidates[:60]!r} but is expected to be {CELL_CANDIDATES}, a layer key "
                          f"or {SET_PREFIX}<name> of a loaded candidate set", parameter="candidates", allowed=allowed)


def _candidate_sites(conn: Connection, candidates: str, as_of: dt.date | None) -> db_grid.Sites:
    if candidates.startswith(SET_PREFIX):
        names = db_grid.candidate_set_names(conn)
        if candidates[len(SET_PREFIX):] not in names:
            raise _bad_candidates(candidates, names)
        return db_grid.candidate_sites(conn, candidates[len(SET_PREFIX):])
    return db_grid.layer_sites(conn, candidates, as_of)


def _suggest(engine: Engine, q: PlanningQuery, layer: Layer, n: int, candidates: str) -> dict[str, Any]:
    with inputs.snapshot(engine) as conn:
        grid = inputs.demand_grid(engine, conn)
        cover = inputs.layer_cover(conn, grid, layer, q)
        names = inputs.district_names(conn, q.lang)
        offered = None if candidates == CELL_CANDIDATES else _candidate_sites(conn, candidates, q.as_of)
    keep = np.ones(len(grid), dtype=bool) if not q.district else grid.district == q.district
    xy, pop, rad, done = grid.xy[keep], grid.population[keep], cover.radius[keep], cover.covered[keep]
    if offered is None:
        cand_xy, cand_rows = default_candidates(xy, ~done & (pop > 0), MAX_CANDIDATES)
        cell_rows = np.flatnonzero(keep)[cand_rows]

        def describe(i: int) -> dict[str, Any]:
            return _cell_site(grid, int(cell_rows[i]), names)
    else:
        mine = np.ones(len(offered), dtype=bool) if not q.district else offered.district == q.district
        cand_xy, cand_ids, cand_district = offered.xy[mine], offered.id[mine], offered.district[mine]

        def describe(i: int) -> dict[str, Any]:
            code = str(cand_district[i])
            return {"candidate_layer": candidates, "candidate_facility_id": int(cand_ids[i]), "district": code,
                    "district_name": names.get(code)}
    picks = greedy_max_cover(xy, pop, cand_xy, rad, n, already_covered=done) if len(cand_xy) else []
    total = float(pop.sum())
    covered_before = float(pop[done].sum())
    return {"layer": q.layer, **inputs.meta(q, grid.synthetic or cover.sites.synthetic),
            "threshold": inputs.threshold(layer, q),
            "n_requested": n, "population": int(round(total)), "baseline_covered": int(round(covered_before)),
            "baseline_percent": round(100.0 * covered_before / total, 2) if total else None,
            "candidates": int(len(cand_xy)), "candidate_source": candidates,
            "method": "greedy maximal covering (MCLP)",
            "sites": [{**_site(p, rank), **describe(p["candidate"])} for rank, p in enumerate(picks, start=1)]}


def _cell_site(grid: db_grid.DemandGrid, row: int, names: dict[str, str]) -> dict[str, Any]:
    code = str(grid.district[row])
    return {"cell_id": str(grid.cell_id[row]), "district": code, "district_name": names.get(code, code)}


def _site(pick: dict[str, Any], rank: int) -> dict[str, Any]:
    lon, lat = from_metric(pick["x"], pick["y"])
    return {"rank": rank, "lon": round(float(lon), 6), "lat": round(float(lat), 6),
            "x_m": round(pick["x"], 1), "y_m": round(pick["y"], 1),
            "marginal_gain": int(round(pick["marginal_gain"])),
            "cumulative_covered": int(round(pick["cumulative_covered"])),
            "cumulative_percent": None if pick["cumulative_percent"] is None
            else round(pick["cumulative_percent"], 2)}


# --------------------------------------------------------------------------
# the planner page
# --------------------------------------------------------------------------

def planner_overview(engine: Engine, q: PlanningQuery, n: int, gaps_shown: int) -> dict[str, Any]:
    """What the planner page shows for one layer.

    Returns
    -------
    dict
        ``coverage`` (the layer's report), ``composite`` (the report over
        :data:`ALL`, whose composite rows the page quotes), ``gaps`` (the
        ``gaps_shown`` largest clusters), ``suggest`` (``n`` sites from the
        uncovered cells) and ``outlines`` (district outlines, WGS-84,
        simplified by :data:`OUTLINE_SIMPLIFY_M` metres).
    """
    return {"coverage": coverage_report(engine, q), "composite": coverage_report(engine, q.but(layer=ALL)),
            "gaps": gaps_report(engine, q, gaps_shown), "suggest": suggest_report(engine, q, n),
            "outlines": catalogue.district_outlines(engine, simplify_m=OUTLINE_SIMPLIFY_M)}
