"""Suggested sites: ``n`` new facilities that bring the most uncovered residents within reach.

Maximal covering (MCLP) solved by greedy picks improved by interchange
(:func:`geo.allocate.max_cover`). Only the cells where the layer applies
count (``cells="applicable"``, its record's ``applies_to``; ``cells="all"``
counts every cell), and every uncovered, inhabited one of them is a candidate
site. Reach is measured like coverage (:mod:`services.planning_measure`):
straight, or along the roads, where each candidate's reach is one bounded
Dijkstra (:func:`geo.reach.network_pairs`) for the :data:`NETWORK_CANDIDATES`
candidates that could gain most in a straight line (a road is never shorter,
so that gain bounds theirs), fewer when the reach is long
(:data:`MAX_NETWORK_PAIRS`).

The work is bounded before it starts: the cell-candidate pairs a request
would weigh are estimated from the counts and the radius; a candidate grid
is thinned to a coarser lattice to stay within :data:`MAX_PAIRS` (stated in
the answer), and a layer's or a loaded set's candidates beyond it are refused
with the limit named.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection, Engine

from db import grid as db_grid
from geo.allocate import coverage_matrix
from geo.crs import from_metric
from geo.network import snap
from geo.reach import network_pairs
from geo.siting import max_cover, reach_from_pairs
from layers import LAYERS, Layer, get_layer
from services import planning_inputs as inputs
from services import planning_measure as measuring
from services.cache import memo
from services.errors import InvalidRequest
from services.planning_inputs import CELL_CANDIDATES, GAP_CELLS, SET_PREFIX, PlanningQuery

#: Most cell-candidate pairs one suggestion may weigh (bounds memory and time).
MAX_PAIRS = 6_000_000
#: Candidates whose reach is measured along the roads, the best by straight-line gain.
NETWORK_CANDIDATES = 1_500
#: Most cell-candidate pairs measured along the roads (each candidate's Dijkstra grows with its reach).
MAX_NETWORK_PAIRS = 1_500_000
#: Seconds the improvement after the greedy picks may take.
SWAP_BUDGET_S = 0.5

METHOD = {"zh": "最大覆盖选址（贪心选点，逐一交换与拉格朗日松弛改进）",
          "en": "maximal covering (greedy picks improved by interchange and Lagrangian relaxation)"}


def suggest_report(engine: Engine, q: PlanningQuery, n: int, candidates: str = CELL_CANDIDATES,
                   cells: str = "applicable") -> dict[str, Any]:
    """``n`` new sites that bring the most uncovered residents within reach.

    Candidate sites are the centres of every uncovered, inhabited cell where
    the layer applies (``candidates="cells"``), the sites of another layer
    (``candidates=<layer key>``), or a loaded candidate set
    (``candidates="set:<name>"``). With ``district``, only that district's
    cells and candidates take part and the percentages are of its residents.

    Raises
    ------
    InvalidRequest
        Unknown candidates or cells, or a request over :data:`MAX_PAIRS`.
    """
    layer = get_layer(q.layer)
    if not (candidates == CELL_CANDIDATES or candidates.startswith(SET_PREFIX) or candidates in LAYERS):
        raise _bad_candidates(candidates, [])
    if cells not in GAP_CELLS:
        raise InvalidRequest(f"cells was {cells!r} but is expected to be one of {', '.join(GAP_CELLS)}",
                             parameter="cells", allowed=list(GAP_CELLS))
    by = measuring.resolve_by(engine, q.by)
    if candidates.startswith(SET_PREFIX):
        # Candidate sets have no data-version counter: computed afresh (the grid itself stays cached).
        return _suggest(engine, q, by, layer, n, candidates, cells)
    return memo(engine, "planning.suggest", (q, by, n, candidates, cells),
                lambda: _suggest(engine, q, by, layer, n, candidates, cells))


def _bad_candidates(candidates: str, set_names: list[str]) -> InvalidRequest:
    allowed = [CELL_CANDIDATES, *LAYERS, *(SET_PREFIX + s for s in set_names)]
    return InvalidRequest(f"candidates was {candidates[:60]!r} but is expected to be {CELL_CANDIDATES}, a layer key "
                          f"or {SET_PREFIX}<name> of a loaded candidate set", parameter="candidates", allowed=allowed)


def _candidate_sites(conn: Connection, candidates: str, q: PlanningQuery) -> db_grid.Sites:
    if candidates.startswith(SET_PREFIX):
        names = db_grid.candidate_set_names(conn)
        if candidates[len(SET_PREFIX):] not in names:
            raise _bad_candidates(candidates, names)
        return db_grid.candidate_sites(conn, candidates[len(SET_PREFIX):])
    return db_grid.layer_sites(conn, candidates, q.day)


def pairs_estimate(n_candidates: int, radius_m: float, cell_m: float) -> float:
    """Cell-candidate pairs within ``radius_m`` when candidates and cells lie on a ``cell_m`` lattice."""
    return n_candidates * math.pi * radius_m ** 2 / max(cell_m, 1.0) ** 2


def _thin(rows: np.ndarray, xy: np.ndarray, radius_m: float, cell_m: float) -> tuple[np.ndarray, float]:
    """Keep candidates on a coarser lattice so the pairs stay within :data:`MAX_PAIRS`; (rows, spacing metres)."""
    step = max(1, math.ceil(math.sqrt(pairs_estimate(len(rows), radius_m, cell_m) / MAX_PAIRS)))
    if step == 1:
        return rows, cell_m
    lattice = np.floor(xy[rows] / cell_m).astype(np.int64)
    keep = (lattice[:, 0] % step == 0) & (lattice[:, 1] % step == 0)
    return rows[keep], cell_m * step


def _suggest(engine: Engine, q: PlanningQuery, by: str, layer: Layer, n: int, candidates: str,
             cells: str) -> dict[str, Any]:
    with inputs.snapshot(engine) as conn:
        grid = inputs.demand_grid(engine, conn)
        cover = measuring.layer_cover(engine, conn, grid, layer, q, by)
        names = inputs.district_names(conn, q.lang)
        places = inputs.villages(engine, conn)
        offered = None if candidates == CELL_CANDIDATES else _candidate_sites(conn, candidates, q)
    keep = np.ones(len(grid), dtype=bool) if not q.district else grid.district == q.district
    counts = inputs.applies(layer, grid.urban) if cells == "applicable" else np.ones(len(grid), dtype=bool)
    scope = np.flatnonzero(keep)
    xy, rad, done = grid.xy[scope], cover.radius[scope], cover.covered[scope]
    weight = np.where(counts[scope], grid.population[scope], 0.0)
    reach_m = float(rad.max()) if len(rad) else 0.0
    if offered is None:
        rows, spacing = _thin(np.flatnonzero(~done & (weight > 0)), xy, reach_m, grid.resolution_m)
        cand_xy = xy[rows]
        describe = _cell_describer(grid, scope[rows], names, places)
    else:
        mine = np.ones(len(offered), dtype=bool) if not q.district else offered.district == q.district
        cand_xy, spacing = offered.xy[mine], None
        if pairs_estimate(len(cand_xy), reach_m, grid.resolution_m) > MAX_PAIRS:
            raise _too_heavy(len(cand_xy), reach_m, grid.resolution_m)
        describe = _site_describer(candidates, offered.id[mine], offered.district[mine], names)
    reach, measured = _reach(engine, grid, layer, by, scope, cand_xy, rad, np.where(done, 0.0, weight))
    picks, info = max_cover(reach, weight, n, already_covered=done, time_budget_s=SWAP_BUDGET_S) \
        if reach.shape[0] else ([], {"greedy_covered": 0.0, "covered": 0.0, "upper_bound": 0.0, "steps": 0})
    total, before = float(weight.sum()), float(weight[done].sum())
    return {"layer": q.layer, **inputs.meta(q, grid.synthetic or cover.sites.synthetic, by),
            "threshold": {"urban_m": float(cover.radius[grid.urban].max()) if grid.urban.any() else None,
                          "rural_m": float(cover.radius[~grid.urban].max()) if (~grid.urban).any() else None,
                          "standard": layer.threshold.standard_en if q.lang == "en" else layer.threshold.standard_zh},
            "measure": measuring.measure(layer, by, q.lang), "cells": cells,
            "n_requested": n, "population": int(round(total)), "baseline_covered": int(round(before)),
            "baseline_percent": round(100.0 * before / total, 2) if total else None,
            "candidates": int(len(cand_xy)), "candidates_measured": int(measured),
            "candidate_spacing_m": spacing, "candidate_source": candidates,
            "method": METHOD[q.lang],
            "optimum_at_most": None if not np.isfinite(info["upper_bound"]) else int(math.floor(info["upper_bound"])),
            "greedy_newly_covered": int(round(info["greedy_covered"])),
            "newly_covered": int(round(info["covered"])),
            "sites": [{**_site(p, rank, cand_xy), **describe(p["candidate"])} for rank, p in enumerate(picks, start=1)]}


def _too_heavy(k: int, reach_m: float, cell_m: float) -> InvalidRequest:
    pairs = pairs_estimate(k, reach_m, cell_m)
    return InvalidRequest(f"{k:,} candidate sites with a reach of {reach_m:,.0f} m would weigh about {pairs:,.0f} "
                          f"cell-candidate pairs, over the limit of {MAX_PAIRS:,}: choose a district, a "
                          "smaller radius_m or fewer candidates", parameter="candidates",
                          allowed={"max_pairs": MAX_PAIRS})


def _reach(engine: Engine, grid: db_grid.DemandGrid, layer: Layer, by: str, scope: np.ndarray,
           cand_xy: np.ndarray, rad: np.ndarray, free: np.ndarray) -> tuple[Any, int]:
    """(k, cells in scope) reach matrix, straight or along the roads; and how many candidates were measured."""
    xy = grid.xy[scope]
    straight = coverage_matrix(xy, cand_xy, rad)
    if by == "straight" or not len(cand_xy):
        return straight, len(cand_xy)
    bound = straight @ free
    per_candidate = pairs_estimate(1, float(rad.max()), grid.resolution_m)
    best = np.argsort(-bound, kind="stable")[:max(1, min(NETWORK_CANDIDATES, int(MAX_NETWORK_PAIRS / per_candidate)))]
    best = best[bound[best] > 0]
    cells, starts = [], []
    for urban in (True, False):
        rows = np.flatnonzero(grid.urban[scope] == urban)
        mode = measuring.graph_mode(layer, urban, by)
        if not len(rows) or mode is None:
            continue
        graph, snapped = measuring.snapped_cells(engine, grid, mode)
        begin = snap(graph, cand_xy[best], max_access_m=measuring.MAX_ACCESS_M)
        c, s, _ = network_pairs(graph, begin, snapped.take(scope[rows]), xy[rows], cand_xy[best], rad[rows])
        cells.append(rows[c])
        starts.append(best[s])
    cell = np.concatenate(cells) if cells else np.empty(0, np.int64)
    start = np.concatenate(starts) if starts else np.empty(0, np.int64)
    return reach_from_pairs(cell, start, len(scope), len(cand_xy)), len(best)


def _cell_describer(grid: db_grid.DemandGrid, rows: np.ndarray, names: dict[str, str],
                    places: db_grid.Villages) -> Any:
    def describe(i: int) -> dict[str, Any]:
        row = int(rows[i])
        code = str(grid.district[row])
        near = None
        if len(places):
            near = str(places.name[int(np.argmin(((places.xy - grid.xy[row]) ** 2).sum(axis=1)))])
        return {"cell_id": str(grid.cell_id[row]), "district": code, "district_name": names.get(code, code),
                "near": near}
    return describe


def _site_describer(candidates: str, ids: np.ndarray, district: np.ndarray, names: dict[str, str]) -> Any:
    def describe(i: int) -> dict[str, Any]:
        code = str(district[i])
        return {"candidate_layer": candidates, "candidate_facility_id": int(ids[i]), "district": code,
                "district_name": names.get(code)}
    return describe


def _site(pick: dict[str, Any], rank: int, cand_xy: np.ndarray) -> dict[str, Any]:
    x, y = (float(v) for v in cand_xy[pick["candidate"]])
    lon, lat = from_metric(x, y)
    return {"rank": rank, "lon": round(float(lon), 6), "lat": round(float(lat), 6),
            "x_m": round(x, 1), "y_m": round(y, 1),
            "marginal_gain": int(round(pick["marginal_gain"])),
            "cumulative_covered": int(round(pick["cumulative_covered"])),
            "cumulative_percent": None if pick["cumulative_percent"] is None
            else round(pick["cumulative_percent"], 2)}


def facility_points(engine: Engine, q: PlanningQuery) -> list[list[float]]:
    """The layer's facilities open on ``q.day`` as [lon, lat] (WGS-84), for the planner's map."""
    layer = get_layer(q.layer)
    with inputs.snapshot(engine) as conn:
        sites = db_grid.layer_sites(conn, layer.key, q.day)
    lon, lat = from_metric(sites.xy[:, 0], sites.xy[:, 1]) if len(sites) else (np.empty(0), np.empty(0))
    return [[round(float(a), 6), round(float(b), 6)] for a, b in zip(lon, lat, strict=True)]
