"""The planners' reports: coverage, gaps and suggested sites by district.

The SQL adapter of the planners' analysis (STYLE: pure core on arrays, thin
adapters): each report loads arrays with :mod:`db.analysis` (EPSG:4548
metres), runs the pure core in :mod:`geo` and shapes the answer the API and
the planner page share. No Flask here; :mod:`web.planner_api` routes to it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from db import analysis
from geo.accessibility import district_2sfca, two_step_fca
from geo.allocate import default_candidates, greedy_max_cover
from geo.coverage import coverage_summary, covered_mask
from geo.crs import from_metric, transform_geometry
from geo.gaps import cluster_polygon, gap_clusters
from geo.planning import COMPOSITE_APPLIES, COMPOSITE_RULE_EN, COMPOSITE_RULE_ZH, applies_mask, cell_radius, life_circle
from layers import LAYER_KEYS, LAYERS
from layers.districts import CITY_CODE, CITY_NAME

#: Largest override radius a request may ask for, metres.
MAX_RADIUS_M = 20_000.0
#: Most sites one suggestion request may ask for.
MAX_SITES = 50
#: Candidate sites drawn (seeded) from the uncovered cells' centres.
MAX_CANDIDATES = 20_000
#: Most gap clusters one response carries.
MAX_GAPS = 5_000

SYNTHETIC_NOTE = {
    "zh": "注意：设施与人口网格为合成演示数据（区县边界与2020年人口普查总数为真实数据）。",
    "en": "Note: facilities and the population grid are SYNTHETIC demo data "
          "(district boundaries and 2020 census totals are real).",
}

#: Targets a figure is reported against (STANDARDS.md, "Targets to report against").
TARGETS = {
    "pocket_park": (90.0, "GB/T 51346-2019：公园500米覆盖率高于90%",
                    "GB/T 51346-2019: above 90% within 500 m of a park"),
    "composite": (85.0, "全国2025年目标：15分钟步行覆盖率85%",
                  "National 2025 target: 85% within a 15-minute walk"),
    "village_clinic": (None, "每个行政村均有村卫生室服务", "Every administrative village served by a clinic"),
}


# --------------------------------------------------------------------------
# shared inputs
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    """A planner's request, validated."""

    layer: str
    district: str | None = None
    radius_m: float | None = None
    as_of: dt.date | None = None
    lang: str = "zh"


def _grid(engine) -> analysis.DemandGrid:
    return analysis.demand_grid(engine)


def _layer_cover(engine, grid: analysis.DemandGrid, key: str, q: Query):
    """(covered mask, per-cell radius, facilities) of one layer, metres."""
    t = LAYERS[key].threshold
    radius = cell_radius(grid.urban, t.urban_m, t.rural_m, q.radius_m)
    fac = analysis.facility_points(engine, key, q.as_of)
    return covered_mask(grid.xy, fac.xy, radius), radius, fac


def _threshold(key: str, q: Query) -> dict[str, Any]:
    t = LAYERS[key].threshold
    en = q.lang == "en"
    return {
        "urban_m": q.radius_m if q.radius_m is not None else t.urban_m,
        "rural_m": q.radius_m if q.radius_m is not None else t.rural_m,
        "overridden": q.radius_m is not None,
        "standard": t.standard_en if en else t.standard_zh,
        "source": t.source,
        "confidence": t.confidence,
    }


def _names(engine, lang: str) -> dict[str, str]:
    names = {code: (en if lang == "en" else zh) for code, (zh, en) in analysis.district_names(engine).items()}
    names[CITY_CODE] = CITY_NAME[1] if lang == "en" else CITY_NAME[0]
    return names


def _codes(names: dict[str, str], district: str | None) -> list[str]:
    codes = sorted(c for c in names if c != CITY_CODE)
    return [district] if district else codes


def _meta(q: Query, synthetic: bool) -> dict[str, Any]:
    return {"as_of": (q.as_of or dt.date.today()).isoformat(), "district": q.district,
            "radius_m": q.radius_m, "crs_for_distances": "EPSG:4548 (metres)",
            "synthetic": synthetic, "note": SYNTHETIC_NOTE[q.lang]}


# --------------------------------------------------------------------------
# coverage
# --------------------------------------------------------------------------

def coverage_report(engine, q: Query) -> dict[str, Any]:
    """Coverage by district and for the city, for one layer or ``all``.

    Returns
    -------
    dict
        ``rows``: per layer (and ``composite`` for ``all``), one row per
        district then the city row (``district`` = 370400). Each row has
        population, covered population, percent (0-100), the threshold in
        metres with its standard; parking rows add ``spaces_per_1000``
        (2SFCA), village clinic rows add ``villages`` and
        ``villages_without_clinic``.
    """
    grid = _grid(engine)
    names = _names(engine, q.lang)
    codes = _codes(names, q.district)
    keys = list(LAYER_KEYS) if q.layer == "all" else [q.layer]
    rows: list[dict[str, Any]] = []
    masks: dict[str, np.ndarray] = {}
    synthetic = grid.synthetic
    for key in keys:
        covered, radius, fac = _layer_cover(engine, grid, key, q)
        masks[key] = covered
        synthetic = synthetic or fac.synthetic
        extra = _layer_extras(engine, grid, key, q, radius, fac, codes)
        rows += _rows(grid, covered, key, LAYERS[key].name(q.lang), _threshold(key, q), codes, names, extra, q.lang)
    if q.layer == "all":
        rows += _rows(grid, life_circle(masks, grid.urban), "composite",
                      "15分钟生活圈（综合）" if q.lang == "zh" else "15-minute life circle (composite)",
                      _composite_threshold(q), codes, names, {}, q.lang)
    return {"layer": q.layer, **_meta(q, synthetic), "rows": rows}


def _composite_threshold(q: Query) -> dict[str, Any]:
    return {"urban_m": None, "rural_m": None, "overridden": q.radius_m is not None,
            "standard": COMPOSITE_RULE_EN if q.lang == "en" else COMPOSITE_RULE_ZH,
            "source": "each layer's own threshold (see its rows); rule: geo/planning.py",
            "confidence": "composite of the layers' thresholds"}


def _rows(grid, covered, key, layer_name, threshold, codes, names, extra, lang) -> list[dict[str, Any]]:
    summary = {r["group"]: r for r in coverage_summary(grid.population, covered, grid.district)}
    applies = applies_mask(key, grid.urban) if key in LAYERS else np.ones(len(grid), dtype=bool)
    applicable = {r["group"]: r for r in coverage_summary(np.where(applies, grid.population, 0.0), covered,
                                                          grid.district)}
    target = TARGETS.get(key)
    out = []
    for code in codes + [None]:
        s = summary.get(code) or {"population": 0.0, "covered_population": 0.0, "percent": None}
        label = code or CITY_CODE
        row = {"layer": key, "layer_name": layer_name, "district": label, "district_name": names.get(label, label),
               "population": int(round(s["population"])),
               "covered_population": int(round(s["covered_population"])),
               "percent": None if s["percent"] is None else round(s["percent"], 2),
               "threshold": threshold}
        a = applicable.get(code) or {"population": 0.0, "covered_population": 0.0, "percent": None}
        row["applicable"] = {"cells": "+".join(COMPOSITE_APPLIES.get(key, ("urban", "rural"))),
                             "population": int(round(a["population"])),
                             "covered_population": int(round(a["covered_population"])),
                             "percent": None if a["percent"] is None else round(a["percent"], 2)}
        if target:
            row["target"] = {"percent": target[0], "text": target[2] if lang == "en" else target[1]}
        row.update(extra.get(code, {}))
        out.append(row)
    return out


def _layer_extras(engine, grid, key, q, radius, fac, codes) -> dict[Any, dict[str, Any]]:
    """Parking: 2SFCA spaces per 1,000 residents; clinics: villages without one in reach."""
    if key == "parking":
        ratio, _ = two_step_fca(grid.xy, grid.population, fac.xy, fac.capacity, radius)
        by = {r["group"]: r["ratio_per_1000"] for r in district_2sfca(ratio, grid.population, grid.district)}
        return {c: {"spaces_per_1000": None if by.get(c) is None else round(by[c], 3)} for c in codes + [None]}
    if key == "village_clinic":
        from geo.planning import villages_without_reach

        v = analysis.villages(engine)
        reach = q.radius_m if q.radius_m is not None else LAYERS[key].threshold.rural_m
        counts = villages_without_reach(v.xy, v.district, fac.xy, reach, codes)
        return {c: {"villages": counts[c]["villages"], "villages_without_clinic": counts[c]["without"],
                    "villages_synthetic": v.synthetic} for c in codes + [None]}
    return {}


# --------------------------------------------------------------------------
# gaps
# --------------------------------------------------------------------------

def gaps_report(engine, q: Query, limit: int = 200, cells: str = "applicable") -> dict[str, Any]:
    """Clusters of uncovered, inhabited cells as a GeoJSON FeatureCollection (WGS-84).

    Cells join a cluster when they touch by an edge or a corner on the
    lattice; each feature is the union of its cells' squares, with its
    population, sorted largest first. ``district`` keeps that district's
    cells only. ``cells="applicable"`` keeps the cells where the layer
    applies (:data:`geo.planning.COMPOSITE_APPLIES`: parks, parking and
    police stations in urban cells, clinics in rural ones), so that a town
    facility's gaps are not one cluster spanning the countryside;
    ``cells="all"`` keeps every cell.
    """
    grid = _grid(engine)
    covered, _, fac = _layer_cover(engine, grid, q.layer, q)
    names = _names(engine, q.lang)
    gap = ~covered & (grid.population > 0)
    if q.district:
        gap &= grid.district == q.district
    if cells == "applicable":
        gap &= applies_mask(q.layer, grid.urban)
    clusters = gap_clusters(grid.xy, grid.population, gap, grid.resolution_m)
    features = [_gap_feature(grid, c, rank, names) for rank, c in enumerate(clusters[:limit], start=1)]
    return {"type": "FeatureCollection", "layer": q.layer, **_meta(q, grid.synthetic or fac.synthetic),
            "threshold": _threshold(q.layer, q), "cell_size_m": grid.resolution_m,
            "cells": cells, "clusters_total": len(clusters), "clusters_returned": len(features),
            "uncovered_population": int(round(float(grid.population[gap].sum()))),
            "features": features}


def _gap_feature(grid, cluster: dict[str, Any], rank: int, names: dict[str, str]) -> dict[str, Any]:
    import shapely

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

def suggest_report(engine, q: Query, n: int, candidates: str = "cells") -> dict[str, Any]:
    """``n`` new sites that bring the most uncovered residents within reach.

    Greedy maximal covering (:func:`geo.allocate.greedy_max_cover`). Candidate
    sites are the centres of uncovered cells (``candidates="cells"``; at most
    :data:`MAX_CANDIDATES`, drawn with a fixed seed), or the sites of another
    layer (``candidates=<layer key>``, e.g. government service offices that
    could host a police post). With ``district``, only that district's cells
    and candidates take part and the percentages are of its residents.
    """
    grid = _grid(engine)
    covered, radius, fac = _layer_cover(engine, grid, q.layer, q)
    names = _names(engine, q.lang)
    keep = np.ones(len(grid), dtype=bool) if not q.district else grid.district == q.district
    xy, pop, rad, done, cell_rows = grid.xy[keep], grid.population[keep], radius[keep], covered[keep], np.flatnonzero(keep)
    if candidates == "cells":
        cand_xy, cand_rows = default_candidates(xy, ~done & (pop > 0), MAX_CANDIDATES)
        describe = lambda p: _cell_site(grid, cell_rows[cand_rows[p["candidate"]]], names)  # noqa: E731
    else:
        if candidates.startswith("set:"):
            sites_of = analysis.candidate_points(engine, candidates[4:])
        else:
            sites_of = analysis.facility_points(engine, candidates, q.as_of)
        mine = np.ones(len(sites_of), dtype=bool) if not q.district else sites_of.district == q.district
        cand_xy, cand_ids, cand_district = sites_of.xy[mine], sites_of.id[mine], sites_of.district[mine]
        describe = lambda p: {"candidate_layer": candidates,  # noqa: E731
                              "candidate_facility_id": int(cand_ids[p["candidate"]]),
                              "district": str(cand_district[p["candidate"]]),
                              "district_name": names.get(str(cand_district[p["candidate"]]))}
    picks = greedy_max_cover(xy, pop, cand_xy, rad, n, already_covered=done) if len(cand_xy) else []
    total = float(pop.sum())
    sites = [{**_site(p, rank), **describe(p)} for rank, p in enumerate(picks, start=1)]
    return {"layer": q.layer, **_meta(q, grid.synthetic or fac.synthetic), "threshold": _threshold(q.layer, q),
            "n_requested": n, "population": int(round(total)),
            "baseline_covered": int(round(float(pop[done].sum()))),
            "baseline_percent": round(100.0 * float(pop[done].sum()) / total, 2) if total else None,
            "candidates": int(len(cand_xy)), "candidate_source": candidates,
            "method": "greedy maximal covering (MCLP)", "sites": sites}


def _cell_site(grid, row: int, names: dict[str, str]) -> dict[str, Any]:
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
# downloads
# --------------------------------------------------------------------------

COVERAGE_COLUMNS = ("layer", "layer_name", "district", "district_name", "population", "covered_population",
                    "percent", "threshold_urban_m", "threshold_rural_m", "standard", "spaces_per_1000",
                    "villages", "villages_without_clinic", "as_of", "synthetic")


def coverage_table(report: dict[str, Any]) -> list[list[Any]]:
    """The coverage rows flattened for CSV/XLSX, header first."""
    out: list[list[Any]] = [list(COVERAGE_COLUMNS)]
    for r in report["rows"]:
        t = r["threshold"]
        out.append([r["layer"], r["layer_name"], r["district"], r["district_name"], r["population"],
                    r["covered_population"], r["percent"], t["urban_m"], t["rural_m"], t["standard"],
                    r.get("spaces_per_1000"), r.get("villages"), r.get("villages_without_clinic"),
                    report["as_of"], report["synthetic"]])
    return out


def gaps_table(report: dict[str, Any]) -> list[list[Any]]:
    cols = ["rank", "population", "cells", "district", "district_name", "centroid_lon", "centroid_lat"]
    return [cols + ["layer", "synthetic"]] + [[f["properties"][c] for c in cols] + [report["layer"], report["synthetic"]]
                                              for f in report["features"]]


def suggest_table(report: dict[str, Any]) -> list[list[Any]]:
    cols = ["rank", "cell_id", "candidate_facility_id", "district", "district_name", "lon", "lat", "x_m", "y_m",
            "marginal_gain", "cumulative_covered", "cumulative_percent"]
    return [cols + ["layer", "synthetic"]] + [[s.get(c) for c in cols] + [report["layer"], report["synthetic"]]
                                              for s in report["sites"]]
