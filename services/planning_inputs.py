"""What every planning report starts from: the request, its limits, the snapshot, the grid and the areas.

The planners' reports (:mod:`services.planning`, :mod:`services.planning_suggest`)
share these steps: one read-only transaction on one snapshot (:func:`snapshot`),
the demand grid and the villages in metres (EPSG:4548) remembered with
:func:`services.cache.memo` until the data changes, the areas figures are
given by (districts, or the zones of a loaded set: :func:`areas`), and the
labels every report carries. How far each cell is from a layer's facilities
is :mod:`services.planning_measure`. Layer facts come from the layer's record only.
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
from db import planning as db_planning
from db import zones as db_zones
from geo.crs import METRIC_EPSG
from geo.planning import applies_mask
from layers import Layer
from layers.districts import CITY_CODE, CITY_NAME
from services.cache import memo
from services.errors import InvalidRequest

Mask = npt.NDArray[np.bool_]

#: The ``layer`` of a coverage report over every layer, with the composite life circle.
ALL = "all"
#: Least and largest service radius a planner may ask for, metres.
MIN_RADIUS_M = 50.0
MAX_RADIUS_M = 20_000.0
#: Most sites one suggestion may ask for.
MAX_SITES = 50
#: Most gap clusters one report carries.
MAX_GAPS = 5_000
#: Which cells a gaps report or a suggestion counts: where the layer applies, or every cell.
GAP_CELLS = ("applicable", "all")
#: Candidate sources of a suggestion besides a layer's key: uncovered cells' centres, or a loaded set.
CELL_CANDIDATES = "cells"
SET_PREFIX = "set:"
#: How distances are measured: along the walking or driving network, or in a straight line.
MEASURES = ("walk", "drive", "straight")
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
    counts the facilities open on that date (default: today; a date after
    today is refused); ``by`` how distances are measured (:data:`MEASURES`;
    ``None``: walking when a road network is loaded, else straight);
    ``zones`` gives the figures by the zones of a loaded set
    (``set:<name>``) instead of by district; ``lang`` is zh or en.
    """

    layer: str
    district: str | None = None
    radius_m: float | None = None
    as_of: dt.date | None = None
    lang: str = "zh"
    by: str | None = None
    zones: str | None = None

    def __post_init__(self) -> None:
        if self.lang not in SYNTHETIC_NOTE:
            raise InvalidRequest(f"lang was {self.lang!r} but is expected to be one of {', '.join(SYNTHETIC_NOTE)}",
                                 parameter="lang", allowed=list(SYNTHETIC_NOTE))
        if self.radius_m is not None and not MIN_RADIUS_M <= self.radius_m <= MAX_RADIUS_M:
            raise InvalidRequest(f"radius_m was {self.radius_m!r} but is expected to be metres from "
                                 f"{MIN_RADIUS_M:g} to {MAX_RADIUS_M:g}", parameter="radius_m",
                                 allowed={"min": MIN_RADIUS_M, "max": MAX_RADIUS_M})
        if self.as_of is not None and self.as_of > dt.date.today():
            raise InvalidRequest(f"as_of was {self.as_of.isoformat()} but is expected to be today "
                                 f"({dt.date.today().isoformat()}) or earlier: figures count the facilities open "
                                 "on that day, and a later day would be a plan, not a record",
                                 parameter="as_of", allowed={"max": dt.date.today().isoformat()})
        if self.by is not None and self.by not in MEASURES:
            raise InvalidRequest(f"by was {self.by!r} but is expected to be one of {', '.join(MEASURES)}",
                                 parameter="by", allowed=list(MEASURES))
        if self.zones is not None and not self.zones.startswith(SET_PREFIX):
            raise InvalidRequest(f"zones was {self.zones[:60]!r} but is expected to be {SET_PREFIX}<name> of a "
                                 "loaded zone set (flask etl zones FILE --set NAME)", parameter="zones")

    def but(self, **changes: Any) -> PlanningQuery:
        return replace(self, **changes)

    @property
    def day(self) -> dt.date:
        """The day whose open facilities count (``as_of``, or today)."""
        return self.as_of or dt.date.today()


@dataclass(frozen=True)
class Areas:
    """What the figures are given by: one code per cell, and the codes and names of the rows.

    ``kind`` is ``district`` or ``zone``; ``code`` holds each cell's code as
    a numpy string array, made once per grid version and held (``""`` for a
    cell in no zone of the set); ``codes`` the rows in order;
    ``names`` code → name in the report's language (with the city's).
    """

    kind: str
    code: npt.NDArray[Any]
    codes: list[str]
    names: dict[str, str]
    synthetic: bool = False


# --------------------------------------------------------------------------
# shared inputs
# --------------------------------------------------------------------------

@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One read-only transaction on one snapshot, so a report's arrays agree with each other.

    Its reads run without parallel workers (:func:`db.planning.serial_reads`).
    """
    with engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            db_planning.serial_reads(conn)
            yield conn


def demand_grid(engine: Engine, conn: Connection) -> db_grid.DemandGrid:
    """The demand grid in metres (EPSG:4548), as this snapshot sees it.

    Held in the process until the grid changes (facility edits keep it;
    :func:`services.cache.memo` with ``held``). The key is this snapshot's
    own grid version, so a remembered grid is always the one the snapshot sees.
    """
    return memo(engine, "planning.grid", None, lambda: db_grid.demand_grid(conn), families=GRID_FAMILIES,
                held=True, conn=conn)


def villages(engine: Engine, conn: Connection) -> db_grid.Villages:
    """Every village in metres (EPSG:4548), as this snapshot sees them (held like the grid)."""
    return memo(engine, "planning.villages", None, lambda: db_grid.villages(conn), families=GRID_FAMILIES,
                held=True, conn=conn)


def applies(layer: Layer, urban: Mask) -> Mask:
    """Cells where ``layer`` applies, from its record's ``applies_to`` (``urban`` is each cell's class)."""
    return applies_mask(urban, in_urban=layer.applies("urban"), in_rural=layer.applies("rural"))


def district_names(conn: Connection, lang: str) -> dict[str, str]:
    """adcode → name in ``lang`` of every loaded district, and of the city."""
    names = {code: (en if lang == "en" else zh) for code, (zh, en) in db_districts.names(conn).items()}
    names[CITY_CODE] = CITY_NAME[1] if lang == "en" else CITY_NAME[0]
    return names


def areas(engine: Engine, conn: Connection, grid: db_grid.DemandGrid, q: PlanningQuery) -> Areas:
    """The rows of a report: the districts (or the one asked for), or the zones of ``q.zones``.

    With a district and zones, only the zones that hold some of that district's cells are rows.
    """
    names = district_names(conn, q.lang)
    if q.zones is None:
        codes = [q.district] if q.district else sorted(c for c in names if c != CITY_CODE)
        cell_codes = memo(engine, "planning.district_codes", None, lambda: grid.district.astype(str),
                          families=GRID_FAMILIES, held=True, conn=conn)
        return Areas("district", cell_codes, codes, names)
    set_name = q.zones[len(SET_PREFIX):]
    known = db_zones.set_names(conn)
    if set_name not in known:
        raise InvalidRequest(f"zones was {q.zones[:60]!r} but the loaded zone sets are "
                             f"{', '.join(SET_PREFIX + s for s in known) or 'none'} (flask etl zones FILE --set NAME)",
                             parameter="zones", allowed=[SET_PREFIX + s for s in known])
    code = memo(engine, "planning.zones", set_name, lambda: db_zones.cell_zones(conn, set_name).astype(str),
                families=(*GRID_FAMILIES, "zones"), held=True, conn=conn)
    zones = db_zones.zones(conn, set_name)
    mine = code if not q.district else code[grid.district == q.district]
    present = set(mine.tolist())
    codes = [z.zone_id for z in zones if z.zone_id in present]
    zone_names = {z.zone_id: z.name for z in zones}
    zone_names[CITY_CODE] = names[CITY_CODE]
    return Areas("zone", code, codes, zone_names, synthetic=any(z.synthetic for z in zones))


def meta(q: PlanningQuery, synthetic: bool, by: str) -> dict[str, Any]:
    """The fields every report starts with: the request, the measure, the distance CRS and the synthetic note."""
    return {"as_of": q.day.isoformat(), "as_of_given": q.as_of is not None, "district": q.district,
            "radius_m": q.radius_m, "by": by, "zones": q.zones, "crs_for_distances": f"EPSG:{METRIC_EPSG} (metres)",
            "synthetic": synthetic, "note": SYNTHETIC_NOTE[q.lang]}
