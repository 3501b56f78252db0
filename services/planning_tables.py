"""The planners' reports as spreadsheet downloads (CSV with a BOM, XLSX).

Each report of :mod:`services.planning` flattens to a table (header first,
in the report's language) and is written by :mod:`formats.tabular`, which
also defuses text a spreadsheet would run as a formula. The headline column
is the share of the residents where the layer applies; the all-resident
share stands beside it, labelled. File names carry the layer, the date and
the radius (``coverage_<layer>_2026-11-29_r500_walk.csv``). Distances are metres
(EPSG:4548); positions are WGS-84 degrees.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from formats.tabular import XLSX_MIMETYPE, csv_bytes, xlsx_bytes
from services import planning, planning_suggest
from services.errors import InvalidRequest
from services.planning_inputs import CELL_CANDIDATES, PlanningQuery

#: The spreadsheet formats a table can be downloaded in, with their media types.
TABLE_FORMATS: dict[str, str] = {"csv": "text/csv; charset=utf-8", "xlsx": XLSX_MIMETYPE}

#: Column key → (Chinese header, English header).
HEADERS: dict[str, tuple[str, str]] = {
    "layer": ("图层代码", "layer"), "layer_name": ("图层", "layer_name"), "district": ("区域代码", "area"),
    "district_name": ("区域", "area_name"), "cells": ("适用网格", "applies_to"),
    "population": ("适用人口", "population_applicable"),
    "covered_population": ("适用人口中覆盖人口", "covered_applicable"),
    "percent": ("覆盖率（适用人口，%）", "percent_applicable"),
    "all_population": ("全部常住人口", "population_all_residents"),
    "all_covered": ("全部人口中覆盖人口", "covered_all_residents"),
    "all_percent": ("覆盖率（全部人口，%）", "percent_all_residents"),
    "threshold_urban_m": ("城区服务半径（米）", "threshold_urban_m"),
    "threshold_rural_m": ("乡村服务半径（米）", "threshold_rural_m"), "measure": ("距离量算", "measure"),
    "standard": ("对照标准", "standard"), "spaces_per_1000": ("每千人车位（2SFCA）", "spaces_per_1000"),
    "no_space_in_reach_percent": ("可达范围内无车位人口占比（%）", "no_space_in_reach_percent"),
    "villages": ("行政村数", "villages"), "villages_without_own": ("无本村卫生室的村", "villages_without_own"),
    "villages_none_in_reach": ("服务半径内无卫生室的村", "villages_none_in_reach"),
    "as_of": ("截至日期", "as_of"), "synthetic": ("合成数据", "synthetic"),
    "before_percent": ("前覆盖率（%）", "before_percent"), "after_percent": ("后覆盖率（%）", "after_percent"),
    "before_covered": ("前覆盖人口", "before_covered"), "after_covered": ("后覆盖人口", "after_covered"),
    "change_covered": ("覆盖人口变化", "change_covered"), "change_points": ("覆盖率变化（百分点）", "change_points"),
    "rank": ("序号", "rank"), "cell_id": ("网格编号", "cell_id"),
    "candidate_facility_id": ("候选设施编号", "candidate_facility_id"), "near": ("附近村庄", "near"),
    "lon": ("经度", "lon"), "lat": ("纬度", "lat"), "x_m": ("X（米，EPSG:4548）", "x_m"),
    "y_m": ("Y（米，EPSG:4548）", "y_m"), "marginal_gain": ("新增覆盖人口", "marginal_gain"),
    "cumulative_covered": ("累计覆盖人口", "cumulative_covered"),
    "cumulative_percent": ("累计覆盖率（%）", "cumulative_percent"),
    "population_gap": ("未覆盖人口", "population"), "cell_count": ("网格数", "cells"),
    "centroid_lon": ("中心经度", "centroid_lon"), "centroid_lat": ("中心纬度", "centroid_lat"),
}
COVERAGE_COLUMNS = ("layer", "layer_name", "district", "district_name", "cells", "percent", "population",
                    "covered_population", "all_percent", "all_population", "all_covered", "threshold_urban_m",
                    "threshold_rural_m", "measure", "standard", "spaces_per_1000", "no_space_in_reach_percent",
                    "villages", "villages_without_own", "villages_none_in_reach", "as_of", "synthetic")
COMPARE_COLUMNS = ("layer", "layer_name", "district", "district_name", "population", "before_percent",
                   "after_percent", "change_points", "before_covered", "after_covered", "change_covered", "synthetic")
GAP_COLUMNS = ("rank", "population_gap", "cell_count", "district", "district_name", "near", "centroid_lon",
               "centroid_lat")
SITE_COLUMNS = ("rank", "cell_id", "candidate_facility_id", "district", "district_name", "near", "lon", "lat",
                "x_m", "y_m", "marginal_gain", "cumulative_covered", "cumulative_percent")


@dataclass(frozen=True)
class TableFile:
    """A download: its bytes, media type and the file name a browser saves it under."""

    body: bytes
    media_type: str
    filename: str


def header(columns: tuple[str, ...], lang: str) -> list[str]:
    """The header row in ``lang`` (column keys in English, Chinese headers otherwise)."""
    return [HEADERS[c][1 if lang == "en" else 0] for c in columns]


def _area(r: dict[str, Any]) -> tuple[Any, Any]:
    return (r["zone"], r["zone_name"]) if "zone" in r else (r["district"], r["district_name"])


def coverage_table(report: dict[str, Any], lang: str = "en") -> list[list[Any]]:
    """The coverage rows flattened for CSV/XLSX, header first (headline: the applicable share)."""
    out: list[list[Any]] = [header(COVERAGE_COLUMNS, lang)]
    for r in report["rows"]:
        t, every = r["threshold"], r["all_residents"]
        m = r.get("measure", {})
        out.append([r["layer"], r["layer_name"], *_area(r), r["cells"], r["percent"], r["population"],
                    r["covered_population"], every["percent"], every["population"], every["covered_population"],
                    t["urban_m"], t["rural_m"], m.get("by"), t["standard"], r.get("spaces_per_1000"),
                    r.get("no_space_in_reach_percent"), r.get("villages"), r.get("villages_without_own"),
                    r.get("villages_none_in_reach"), report["as_of"], report["synthetic"]])
    return out


def compare_table(report: dict[str, Any], lang: str = "en") -> list[list[Any]]:
    """Before and after per row, header first."""
    return [header(COMPARE_COLUMNS, lang)] + [
        [r["layer"], r["layer_name"], *_area(r), r["population"], r["before"]["percent"], r["after"]["percent"],
         r["change_points"], r["before"]["covered_population"], r["after"]["covered_population"],
         r["change_covered"], report["synthetic"]] for r in report["rows"]]


def gaps_table(report: dict[str, Any], lang: str = "en") -> list[list[Any]]:
    """One row per gap cluster (centroid in WGS-84 degrees), header first."""
    keys = {"population_gap": "population", "cell_count": "cells"}
    return [[*header(GAP_COLUMNS, lang), HEADERS["layer"][lang == "en"], HEADERS["synthetic"][lang == "en"]]] + [
        [f["properties"].get(keys.get(c, c)) for c in GAP_COLUMNS] + [report["layer"], report["synthetic"]]
        for f in report["features"]]


def suggest_table(report: dict[str, Any], lang: str = "en") -> list[list[Any]]:
    """One row per suggested site (WGS-84 degrees and EPSG:4548 metres), header first."""
    return [[*header(SITE_COLUMNS, lang), HEADERS["layer"][lang == "en"], HEADERS["synthetic"][lang == "en"]]] + [
        [s.get(c) for c in SITE_COLUMNS] + [report["layer"], report["synthetic"]] for s in report["sites"]]


def file_stem(kind: str, q: PlanningQuery, *extra: str) -> str:
    """``kind_layer[_district]_date[_rRADIUS][_extra]``: what a saved file holds, in its name."""
    parts = [kind, q.layer, q.district or "", q.day.isoformat(),
             f"r{q.radius_m:g}" if q.radius_m is not None else "", *extra]
    return "_".join(p for p in parts if p)


def _file(table: list[list[Any]], fmt: str, stem: str, note: str) -> TableFile:
    if fmt not in TABLE_FORMATS:
        raise InvalidRequest(f"format was {fmt!r} but is expected to be one of {', '.join(TABLE_FORMATS)}",
                             parameter="format", allowed=list(TABLE_FORMATS))
    body = csv_bytes(table) if fmt == "csv" else xlsx_bytes(table, sheet=stem.split("_", 1)[0], notes=[note])
    return TableFile(body, TABLE_FORMATS[fmt], f"{stem}.{fmt}")


def coverage_file(engine: Engine, q: PlanningQuery, fmt: str) -> TableFile:
    """The coverage report (:func:`services.planning.coverage_report`) as a CSV or XLSX file."""
    report = planning.coverage_report(engine, q)
    return _file(coverage_table(report, q.lang), fmt, file_stem("coverage", q, report["by"]), report["note"])


def compare_file(engine: Engine, q: PlanningQuery, fmt: str, before: dt.date, after: dt.date) -> TableFile:
    """Before and after (:func:`services.planning.compare_report`) as a CSV or XLSX file."""
    report = planning.compare_report(engine, q, before, after)
    stem = file_stem("compare", q.but(as_of=after), before.isoformat(), report["by"])
    return _file(compare_table(report, q.lang), fmt, stem, report["note"])


def gaps_file(engine: Engine, q: PlanningQuery, fmt: str, limit: int = 200, cells: str = "applicable") -> TableFile:
    """The gap clusters (:func:`services.planning.gaps_report`) as a CSV or XLSX file."""
    report = planning.gaps_report(engine, q, limit, cells)
    return _file(gaps_table(report, q.lang), fmt, file_stem("gaps", q, report["by"]), report["note"])


def suggest_file(engine: Engine, q: PlanningQuery, fmt: str, n: int, candidates: str = CELL_CANDIDATES,
                 cells: str = "applicable") -> TableFile:
    """The suggested sites (:func:`services.planning_suggest.suggest_report`) as a CSV or XLSX file."""
    report = planning_suggest.suggest_report(engine, q, n, candidates, cells)
    return _file(suggest_table(report, q.lang), fmt, file_stem("suggest", q, f"n{n}", report["by"]), report["note"])
