"""What every planning report starts from: the request, the snapshot, the grid and a layer's cover.

The planners' reports (:mod:`services.planning`) share these steps: one
read-only transaction on one snapshot (:func:`snapshot`), the demand grid and
the villages in metres (EPSG:4548) remembered with
:func:`services.cache.memo` until the data changes, a layer's facilities and
the cells they reach (:func:`layer_cover`), and the labels every report
carries. Layer facts come from the layer's record only.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.engine import Connection, Engine

from db import districts as db_districts
from db import grid as db_grid
from geo.coverage import covered_mask
from geo.crs import METRIC_EPSG
from geo.planning import applies_mask, cell_radius
from layers import Layer
from layers.districts import CITY_CODE, CITY_NAME
from services.cache import data_versions, memo
from services.errors import InvalidRequest

Mask = npt.NDArray[np.bool_]

#: The ``layer`` of a coverage report over every layer, with the composite life circle.
ALL = "all"
#: Least and largest service radius a planner may ask for, metres.
MIN_RADIUS_M = 50.0
MAX_RADIUS_M = 20_000.0
#: Most sites one suggestion may ask for.
MAX_SITES = 50
#: Candidate sites drawn (seeded) from the uncovered cells' centres.
MAX_CANDIDATES = 20_000
#: Most gap clusters one report carries.
MAX_GAPS = 5_000
#: Which cells a gaps report keeps: where the layer applies, or every cell.
GAP_CELLS = ("applicable", "all")
#: Candidate sources of a suggestion besides a layer's key: uncovered cells' centres, or a loaded set.
CELL_CANDIDATES = "cells"
SET_PREFIX = "set:"
#: The ``data_version`` rows the demand grid and the villages depend on (migration 0003 bumps
#: ``grid`` on every change to ``demand_cell`` or ``village``).
GRID_FAMILIES = ("grid",)
#: Simplification of the district outlines drawn under the planner's map, metres.
OUTLINE_SIMPLIFY_M = 50.0

SYNTHETIC_NOTE = {
    "zh": "注意：设施与人口网格为合成演示数据（区县边界与2020年人口普查总数为真实数据）。",
    "en": "Note: facilities and the population grid are SYNTHETIC demo data "
          "(district boundaries and 2020 census totals are real).",
}


@dataclass(frozen=True)
class PlanningQuery:
    """What every planning report is asked for, already parsed.

    ``layer`` is a layer key (or :data:`ALL` for coverage); ``radius_m``
    overrides the layer's thresholds with one reach in metres; ``as_of``
    keeps facilities opened on or before that date; ``lang`` is zh or en.
    """

    layer: str
    district: str | None = None
    radius_m: float | None = None
    as_of: dt.date | None = None
    lang: str = "zh"

    def __post_init__(self) -> None:
        if self.lang not in SYNTHETIC_NOTE:
            raise InvalidRequest(f"lang was {self.lang!r} but is expected to be one of {', '.join(SYNTHETIC_NOTE)}",
                                 parameter="lang", allowed=list(SYNTHETIC_NOTE))
        if self.radius_m is not None and not MIN_RADIUS_M <= self.radius_m <= MAX_RADIUS_M:
            raise InvalidRequest(f"radius_m was {self.radius_m!r} but is expected to be metres from "
                                 f"{MIN_RADIUS_M:g} to {MAX_RADIUS_M:g}", parameter="radius_m",
                                 allowed={"min": MIN_RADIUS_M, "max": MAX_RADIUS_M})

    def but(self, **changes: Any) -> PlanningQuery:
        return replace(self, **changes)


@dataclass(frozen=True)
class LayerCover:
    """One layer against the grid: covered cells, each cell's radius (metres) and the sites."""

    covered: Mask
    radius: npt.NDArray[np.float64]
    sites: db_grid.Sites


# --------------------------------------------------------------------------
# shared inputs
# --------------------------------------------------------------------------

@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One read-only transaction on one snapshot, so a report's arrays agree with each other."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def demand_grid(engine: Engine, conn: Connection) -> db_grid.DemandGrid:
    """The demand grid in metres (EPSG:4548), as this snapshot sees it.

    Remembered until the grid changes (facility edits keep it). The key holds
    this snapshot's own grid version, so a remembered grid is always the one
    the snapshot sees.
    """
    version = data_versions(conn, GRID_FAMILIES)
    return memo(engine, "planning.grid", version, lambda: db_grid.demand_grid(conn), families=GRID_FAMILIES)


def villages(engine: Engine, conn: Connection) -> db_grid.Villages:
    """Every village in metres (EPSG:4548), as this snapshot sees them (remembered like the grid)."""
    version = data_versions(conn, GRID_FAMILIES)
    return memo(engine, "planning.villages", version, lambda: db_grid.villages(conn), families=GRID_FAMILIES)


def applies(layer: Layer, urban: Mask) -> Mask:
    """Cells where ``layer`` applies, from its record's ``applies_to`` (``urban`` is each cell's class)."""
    return applies_mask(urban, in_urban=layer.applies("urban"), in_rural=layer.applies("rural"))


def layer_cover(conn: Connection, grid: db_grid.DemandGrid, layer: Layer, q: PlanningQuery) -> LayerCover:
    """The layer's facilities (as of ``q.as_of``) and the cells within its reach (its thresholds, or ``q.radius_m``)."""
    t = layer.threshold
    radius = cell_radius(grid.urban, t.urban_m, t.rural_m, q.radius_m)
    sites = db_grid.layer_sites(conn, layer.key, q.as_of, capacity_field=layer.capacity_field)
    return LayerCover(covered_mask(grid.xy, sites.xy, radius), radius, sites)


def threshold(layer: Layer, q: PlanningQuery) -> dict[str, Any]:
    """The reach a report used, in metres, with the standard it comes from (in ``q.lang``)."""
    t = layer.threshold
    return {"urban_m": q.radius_m if q.radius_m is not None else t.urban_m,
            "rural_m": q.radius_m if q.radius_m is not None else t.rural_m,
            "overridden": q.radius_m is not None,
            "standard": t.standard_en if q.lang == "en" else t.standard_zh,
            "source": t.source, "confidence": t.confidence}


def district_names(conn: Connection, lang: str) -> dict[str, str]:
    """adcode → name in ``lang`` of every loaded district, and of the city."""
    names = {code: (en if lang == "en" else zh) for code, (zh, en) in db_districts.names(conn).items()}
    names[CITY_CODE] = CITY_NAME[1] if lang == "en" else CITY_NAME[0]
    return names


def district_codes(names: dict[str, str], district: str | None) -> list[str]:
    """The districts a report has rows for: the one asked for, or all of them in adcode order."""
    return [district] if district else sorted(c for c in names if c != CITY_CODE)


def meta(q: PlanningQuery, synthetic: bool) -> dict[str, Any]:
    """The fields every report starts with: the request, the distance CRS and the synthetic-data note."""
    return {"as_of": (q.as_of or dt.date.today()).isoformat(), "district": q.district,
            "radius_m": q.radius_m, "crs_for_distances": f"EPSG:{METRIC_EPSG} (metres)",
            "synthetic": synthetic, "note": SYNTHETIC_NOTE[q.lang]}
