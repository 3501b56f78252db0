"""The planners' reports as spreadsheet downloads (CSV with a BOM, XLSX).

Each report of :mod:`services.planning` flattens to a table (header first)
and is written by :mod:`formats.tabular`, which also defuses text a
spreadsheet would run as a formula. Distances in the tables are metres
(EPSG:4548); positions are WGS-84 degrees.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from formats.tabular import XLSX_MIMETYPE, csv_bytes, xlsx_bytes
from services import planning
from services.errors import InvalidRequest
from services.planning_inputs import CELL_CANDIDATES, PlanningQuery

#: The spreadsheet formats a table can be downloaded in, with their media types.
TABLE_FORMATS: dict[str, str] = {"csv": "text/csv; charset=utf-8", "xlsx": XLSX_MIMETYPE}

COVERAGE_COLUMNS = ("layer", "layer_name", "district", "district_name", "population", "covered_population",
                    "percent", "threshold_urban_m", "threshold_rural_m", "standard", "spaces_per_1000",
                    "villages", "villages_without_clinic", "as_of", "synthetic")
GAP_COLUMNS = ("rank", "population", "cells", "district", "district_name", "centroid_lon", "centroid_lat")
SITE_COLUMNS = ("rank", "cell_id", "candidate_facility_id", "district", "district_name", "lon", "lat", "x_m", "y_m",
                "marginal_gain", "cumulative_covered", "cumulative_percent")


@dataclass(frozen=True)
class TableFile:
    """A download: its bytes, media type and the file name a browser saves it under."""

    body: bytes
    media_type: str
    filename: str


def coverage_table(report: dict[str, Any]) -> list[list[Any]]:
    """The coverage rows flattened for CSV/XLSX, header first (thresholds in metres)."""
    out: list[list[Any]] = [list(COVERAGE_COLUMNS)]
    for r in report["rows"]:
        t = r["threshold"]
        out.append([r["layer"], r["layer_name"], r["district"], r["district_name"], r["population"],
                    r["covered_population"], r["percent"], t["urban_m"], t["rural_m"], t["standard"],
                    r.get("spaces_per_1000"), r.get("villages"), r.get("villages_without_clinic"),
                    report["as_of"], report["synthetic"]])
    return out


def gaps_table(report: dict[str, Any]) -> list[list[Any]]:
    """One row per gap cluster (centroid in WGS-84 degrees), header first."""
    return [[*GAP_COLUMNS, "layer", "synthetic"]] + [
        [f["properties"][c] for c in GAP_COLUMNS] + [report["layer"], report["synthetic"]]
        for f in report["features"]]


def suggest_table(report: dict[str, Any]) -> list[list[Any]]:
    """One row per suggested site (WGS-84 degrees and EPSG:4548 metres), header first."""
    return [[*SITE_COLUMNS, "layer", "synthetic"]] + [
        [s.get(c) for c in SITE_COLUMNS] + [report["layer"], report["synthetic"]] for s in report["sites"]]


def _file(table: list[list[Any]], fmt: str, stem: str, note: str) -> TableFile:
    if fmt not in TABLE_FORMATS:
        raise InvalidRequest(f"format was {fmt!r} but is expected to be one of {', '.join(TABLE_FORMATS)}",
                             parameter="format", allowed=list(TABLE_FORMATS))
    body = csv_bytes(table) if fmt == "csv" else xlsx_bytes(table, sheet=stem.split("_", 1)[0], notes=[note])
    return TableFile(body, TABLE_FORMATS[fmt], f"{stem}.{fmt}")


def coverage_file(engine: Engine, q: PlanningQuery, fmt: str) -> TableFile:
    """The coverage report (:func:`services.planning.coverage_report`) as a CSV or XLSX file."""
    report = planning.coverage_report(engine, q)
    return _file(coverage_table(report), fmt, f"coverage_{q.layer}", report["note"])


def gaps_file(engine: Engine, q: PlanningQuery, fmt: str, limit: int = 200, cells: str = "applicable") -> TableFile:
    """The gap clusters (:func:`services.planning.gaps_report`) as a CSV or XLSX file."""
    report = planning.gaps_report(engine, q, limit, cells)
    return _file(gaps_table(report), fmt, f"gaps_{q.layer}", report["note"])


def suggest_file(engine: Engine, q: PlanningQuery, fmt: str, n: int, candidates: str = CELL_CANDIDATES) -> TableFile:
    """The suggested sites (:func:`services.planning.suggest_report`) as a CSV or XLSX file."""
    report = planning.suggest_report(engine, q, n, candidates)
    return _file(suggest_table(report), fmt, f"suggest_{q.layer}", report["note"])
