"""Arrays for the planners' analysis, read from PostGIS in metres.

The analysis core (:mod:`geo.coverage` and friends) works on numpy arrays in
metres of the project's metric CRS (:data:`geo.crs.METRIC_EPSG`, EPSG:4548).
These functions read the demand grid, the villages, a layer's facilities and
the candidate sites as such arrays; PostGIS projects the points
(``ST_Transform`` to the bound SRID), so no distance is ever taken in degrees.

Each function takes a :class:`~sqlalchemy.engine.Connection`, so a report
reads all its arrays in one snapshot; caching is the service's business
(``services.cache.memo``). SQL is static with bound parameters; the one
identifier that varies, a layer's capacity column, comes from the layer
registry and is quoted by SQLAlchemy.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.engine import Connection

from geo.crs import METRIC_EPSG

#: Lattice spacing reported for an empty grid, metres (the demo's default cell size).
EMPTY_GRID_RESOLUTION_M = 250.0


@dataclass(frozen=True)
class DemandGrid:
    """The demand cells as arrays (all of shape (n,) or (n, 2)).

    Attributes
    ----------
    cell_id : object array
        The cells' ids (``demand_cell.cell_id``).
    xy : float array (n, 2)
        Cell centres, metres in the metric CRS (EPSG:4548).
    population : float array
        Residents per cell.
    urban : bool array
        Whether the cell is urban (density >= the urban threshold).
    district : object array
        District adcode of each cell.
    resolution_m : float
        Lattice spacing, metres (the largest when cells differ).
    synthetic : bool
        True when any cell is synthetic.
    """

    cell_id: np.ndarray
    xy: np.ndarray
    population: np.ndarray
    urban: np.ndarray
    district: np.ndarray
    resolution_m: float
    synthetic: bool

    def __len__(self) -> int:
        return len(self.population)


@dataclass(frozen=True)
class Sites:
    """Points a layer or a candidate set offers, as arrays in metres (EPSG:4548).

    Attributes
    ----------
    id : int array (m,)
        ``facility.id`` or ``candidate_site.id``.
    xy : float array (m, 2)
        Metres in the metric CRS.
    capacity : float array (m,)
        The layer's capacity field (0 when unknown, and for layers without one).
    district : object array (m,)
        District adcode of each site.
    synthetic : bool
        True when any site is synthetic.
    wkb : object array (m,), optional
        Each site's whole geometry (WKB, EPSG:4548) for area facilities
        (polygons); ``None`` when only the points were read.
    home : object array (m,), optional
        The village a facility says it serves (its ``village_id`` or
        ``village`` attribute, as the source gave it; ``None`` when absent).
    """

    id: np.ndarray
    xy: np.ndarray
    capacity: np.ndarray
    district: np.ndarray
    synthetic: bool
    wkb: np.ndarray | None = None
    home: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.id)


@dataclass(frozen=True)
class Villages:
    """Villages as arrays (ids, names, district adcodes), metres in the metric CRS (EPSG:4548)."""

    village_id: np.ndarray
    name: np.ndarray
    xy: np.ndarray
    district: np.ndarray
    synthetic: bool

    def __len__(self) -> int:
        return len(self.village_id)


def _xy(x: tuple[float, ...], y: tuple[float, ...]) -> np.ndarray:
    return np.column_stack([np.array(x, dtype=float), np.array(y, dtype=float)]).reshape(-1, 2)


# --------------------------------------------------------------------------
# demand grid and villages
# --------------------------------------------------------------------------

_GRID = text(
    "SELECT cell_id, x_m, y_m, population, urban, district_adcode, resolution_m, synthetic "
    "FROM demand_cell ORDER BY id")

_VILLAGES = text(
    "SELECT village_id, name, ST_X(p) AS x, ST_Y(p) AS y, district_adcode, synthetic FROM "
    "(SELECT id, village_id, name, district_adcode, synthetic, ST_Transform(geom, CAST(:srid AS integer)) AS p "
    " FROM village) v ORDER BY id")


def demand_grid(conn: Connection) -> DemandGrid:
    """Every demand cell, in ``demand_cell.id`` order.

    Returns
    -------
    DemandGrid
        Centres from ``x_m``/``y_m`` (metres in EPSG:4548, stored with each
        cell when the grid was built).
    """
    rows = conn.execute(_GRID).all()
    if not rows:
        return DemandGrid(np.empty(0, dtype=object), np.empty((0, 2)), np.empty(0), np.empty(0, dtype=bool),
                          np.empty(0, dtype=object), EMPTY_GRID_RESOLUTION_M, False)
    cell_id, x, y, pop, urban, district, res, synthetic = zip(*rows, strict=True)
    return DemandGrid(cell_id=np.array(cell_id, dtype=object), xy=_xy(x, y),
                      population=np.array(pop, dtype=float), urban=np.array(urban, dtype=bool),
                      district=np.array(district, dtype=object), resolution_m=float(max(res)),
                      synthetic=bool(any(synthetic)))


def villages(conn: Connection) -> Villages:
    """Every village, projected to metres (EPSG:4548), in ``village.id`` order."""
    rows = conn.execute(_VILLAGES, {"srid": METRIC_EPSG}).all()
    if not rows:
        return Villages(np.empty(0, dtype=object), np.empty(0, dtype=object), np.empty((0, 2)),
                        np.empty(0, dtype=object), False)
    vid, name, x, y, district, synthetic = zip(*rows, strict=True)
    return Villages(np.array(vid, dtype=object), np.array(name, dtype=object), _xy(x, y),
                    np.array(district, dtype=object), bool(any(synthetic)))


# --------------------------------------------------------------------------
# a layer's facilities and candidate sites
# --------------------------------------------------------------------------

_FACILITY = sa.table("facility", sa.column("id"), sa.column("attrs"), sa.column("layer"), sa.column("status"),
                     sa.column("point"), sa.column("geom"), sa.column("opened_on"), sa.column("retired_on"),
                     sa.column("district_adcode"), sa.column("synthetic"))


def open_on(as_of: dt.date) -> list[sa.ColumnElement[bool]]:
    """Conditions keeping the facilities open on ``as_of``: opened on or before it (or no opening date known)
    and not retired on or before it (an active facility, or one retired later)."""
    f = _FACILITY
    return [sa.or_(f.c.opened_on.is_(None), f.c.opened_on <= as_of),
            sa.or_(sa.and_(f.c.status == "active", f.c.retired_on.is_(None)), f.c.retired_on > as_of)]


def layer_sites(conn: Connection, layer: str, as_of: dt.date, *, capacity_field: str | None = None,
                area: bool = False) -> Sites:
    """Facilities of ``layer`` open on ``as_of``, in metres.

    Parameters
    ----------
    conn : Connection
    layer : str
        A layer key (already checked against the registry).
    as_of : date
        Keep the facilities open that day (:func:`open_on`): opened on or
        before it (or with no opening date) and not retired on or before it.
    capacity_field : str, optional
        The layer's capacity column (``Layer.capacity_field``); its values
        fill :attr:`Sites.capacity` (0 when null). Without it capacity is 0.
    area : bool
        Also read each facility's whole geometry (``facility.geom``, e.g. a
        park's polygon) projected to EPSG:4548, into :attr:`Sites.wkb`, so
        distances can be measured to its boundary.

    Returns
    -------
    Sites
        Each facility's representative point (``facility.point``; for parks,
        a point inside the polygon) projected to EPSG:4548 metres, by id.
    """
    f = _FACILITY
    srid = sa.bindparam("srid", METRIC_EPSG, type_=sa.Integer)
    capacity = sa.func.coalesce(sa.column(capacity_field), 0) if capacity_field else sa.literal(0)
    shape = sa.func.ST_AsBinary(sa.func.ST_Transform(f.c.geom, srid)) if area else sa.null()
    projected = (sa.select(f.c.id, f.c.district_adcode, f.c.synthetic, capacity.label("cap"),
                           sa.func.ST_Transform(f.c.point, srid).label("p"), shape.label("shape"),
                           sa.func.coalesce(f.c.attrs.op("->>")("village_id"), f.c.attrs.op("->>")("village"))
                           .label("home"))
                 .where(f.c.layer == layer, f.c.point.is_not(None), *open_on(as_of)))
    p = projected.subquery("f")
    query = sa.select(p.c.id, sa.func.ST_X(p.c.p), sa.func.ST_Y(p.c.p), p.c.cap, p.c.district_adcode,
                      p.c.synthetic, p.c.shape, p.c.home).order_by(p.c.id)
    rows = conn.execute(query).all()
    if not rows:
        return Sites(np.empty(0, dtype=np.int64), np.empty((0, 2)), np.empty(0), np.empty(0, dtype=object), False)
    ids, x, y, cap, district, synthetic, shapes, home = zip(*rows, strict=True)
    wkb = np.array([bytes(s) for s in shapes], dtype=object) if area else None
    return Sites(id=np.array(ids, dtype=np.int64), xy=_xy(x, y), capacity=np.array(cap, dtype=float),
                 district=np.array(district, dtype=object), synthetic=bool(any(synthetic)), wkb=wkb,
                 home=np.array(home, dtype=object))


_SET_NAMES = text("SELECT DISTINCT set_name FROM candidate_site ORDER BY set_name")

_CANDIDATES = text(
    "SELECT id, ST_X(p) AS x, ST_Y(p) AS y, district_adcode FROM "
    "(SELECT id, district_adcode, ST_Transform(point, CAST(:srid AS integer)) AS p FROM candidate_site "
    " WHERE set_name = :set_name) c ORDER BY id")


def candidate_set_names(conn: Connection) -> list[str]:
    """Names of the candidate-site sets planners have loaded (``flask etl candidates``), sorted."""
    return list(conn.execute(_SET_NAMES).scalars())


def candidate_sites(conn: Connection, set_name: str) -> Sites:
    """The sites of one candidate set in metres (EPSG:4548); ``capacity`` is 0 and none is synthetic."""
    rows = conn.execute(_CANDIDATES, {"srid": METRIC_EPSG, "set_name": set_name}).all()
    return Sites(id=np.array([r.id for r in rows], dtype=np.int64), xy=_xy(tuple(r.x for r in rows),
                                                                              tuple(r.y for r in rows)),
                 capacity=np.zeros(len(rows)), district=np.array([r.district_adcode for r in rows], dtype=object),
                 synthetic=False)
