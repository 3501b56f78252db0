"""The layers' extra figures (``Layer.figures``), by district or zone: supply ratio and the per-village rule.

* ``supply_ratio``: two-step floating catchment (2SFCA) of the layer's
  capacity field per 1,000 residents; beside the population-weighted mean
  (which conserves supply: spaces ÷ residents), the share of residents with
  no space in reach and the quartiles of the cells' ratio over the residents.
* ``per_village``: the one-per-administrative-village rule, by both
  definitions: villages *without their own* facility (a facility belongs to
  the village its ``village_id``/``village`` field names, else to the
  nearest village) and villages with *none in reach* (no facility within the
  layer's rural threshold, measured like the coverage).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.spatial import cKDTree
from sqlalchemy.engine import Connection, Engine

from db import grid as db_grid
from geo.accessibility import district_2sfca, ratio_spread, two_step_fca
from geo.network import snap
from geo.planning import facility_homes, villages_without_own
from geo.reach import network_distance, network_pairs, straight_distance
from layers import Layer
from services import planning_inputs as inputs
from services import planning_measure as measuring
from services.planning_inputs import Areas, PlanningQuery

Rows = dict[str | None, dict[str, Any]]
Figure = Callable[[Engine, Connection, db_grid.DemandGrid, Layer, PlanningQuery, measuring.LayerCover, Areas, str],
                  Rows]


def _supply_ratio(engine: Engine, conn: Connection, grid: db_grid.DemandGrid, layer: Layer, q: PlanningQuery,
                  cover: measuring.LayerCover, areas: Areas, by: str) -> Rows:
    """2SFCA of the capacity per 1,000 residents, the share with none in reach, and the quartiles."""
    pairs = None if by == "straight" else _network_pairs(engine, grid, layer, cover, by)
    ratio, _ = two_step_fca(grid.xy, grid.population, cover.sites.xy, cover.sites.capacity, cover.radius,
                            pairs=pairs)
    code = np.asarray(areas.code).astype(str)
    mean = {r["group"]: r["ratio_per_1000"] for r in district_2sfca(ratio, grid.population, code)}
    spread = ratio_spread(ratio, grid.population, code)
    out: Rows = {}
    for c in [*areas.codes, None]:
        s = spread.get(c, {})
        out[c] = {"spaces_per_1000": _round(mean.get(c)),
                  "no_space_in_reach_percent": _round(s.get("none_in_reach_percent"), 2),
                  "spaces_per_1000_quartiles": [_round(s.get(k)) for k in ("q1", "median", "q3")]}
    return out


def _network_pairs(engine: Engine, grid: db_grid.DemandGrid, layer: Layer, cover: measuring.LayerCover,
                   by: str) -> tuple[np.ndarray, np.ndarray]:
    cells, facs = [], []
    for urban in (True, False):
        rows = np.flatnonzero(grid.urban == urban)
        mode = measuring.graph_mode(layer, urban, by)
        if not len(rows) or not len(cover.sites) or mode is None:
            continue
        graph, snapped = measuring.snapped_cells(engine, grid, mode)
        starts = snap(graph, cover.sites.xy, max_access_m=measuring.MAX_ACCESS_M)
        c, f, _ = network_pairs(graph, starts, snapped.take(rows), grid.xy[rows], cover.sites.xy, cover.radius[rows])
        cells.append(rows[c])
        facs.append(f)
    if not cells:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(cells), np.concatenate(facs)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def _per_village(engine: Engine, conn: Connection, grid: db_grid.DemandGrid, layer: Layer, q: PlanningQuery,
                 cover: measuring.LayerCover, areas: Areas, by: str) -> Rows:
    """Villages; those without their own facility; those with none within the rural reach."""
    v = inputs.villages(engine, conn)
    reach = q.radius_m if q.radius_m is not None else layer.threshold.rural_m
    home, by_field = facility_homes(v.village_id, v.name, v.xy, cover.sites.xy,
                                    cover.sites.home if cover.sites.home is not None else [None] * len(cover.sites))
    if areas.kind == "district" or not len(grid):
        vcode = v.district.astype(str)
    else:
        vcode = np.asarray(areas.code).astype(str)[cKDTree(grid.xy).query(v.xy, k=1)[1]] if len(v) else v.district
    if by == "straight" or not len(v):
        far = straight_distance(v.xy, measuring.targets(cover.sites), reach)[0] > reach
    else:
        graph, _ = measuring.snapped_cells(engine, grid, measuring.graph_mode(layer, False, by) or "walk")
        from_roads = _village_distance(graph, v, cover)
        far = from_roads > reach
    without_own = villages_without_own(vcode, home, len(v), areas.codes)
    rule = {"zh": f"{by_field}处按设施的村字段归村，其余{len(cover.sites) - by_field}处归最近的村",
            "en": f"{by_field} assigned by their village field, {len(cover.sites) - by_field} to the nearest village"}
    out: Rows = {}
    for c in [*areas.codes, None]:
        mine = np.ones(len(v), dtype=bool) if c is None else vcode == c
        out[c] = {"villages": int(mine.sum()), "villages_without_own": without_own.get(c, 0),
                  "villages_none_in_reach": int((mine & far).sum()), "village_rule": rule[q.lang],
                  "villages_synthetic": v.synthetic}
    return out


def _village_distance(graph: Any, v: db_grid.Villages, cover: measuring.LayerCover) -> np.ndarray:
    """Road metres from each village to the nearest facility."""
    return network_distance(graph, snap(graph, v.xy, max_access_m=measuring.MAX_ACCESS_M),
                            measuring.targets(cover.sites), v.xy)[0]


#: How each figure a layer record may name (``layers.model.FIGURES``) is computed.
FIGURES: dict[str, Figure] = {"supply_ratio": _supply_ratio, "per_village": _per_village}


def figures(engine: Engine, conn: Connection, grid: db_grid.DemandGrid, layer: Layer, q: PlanningQuery,
            cover: measuring.LayerCover, areas: Areas, by: str) -> Rows:
    """The layer's extra figures per area code (and ``None`` for the city)."""
    out: Rows = {c: {} for c in [*areas.codes, None]}
    for figure in layer.figures:
        for code, values in FIGURES[figure](engine, conn, grid, layer, q, cover, areas, by).items():
            out.setdefault(code, {}).update(values)
    return out
