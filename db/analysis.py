"""Arrays for the planners' analysis, read from PostGIS.

The analysis core (:mod:`geo.coverage` and friends) works on numpy arrays in
EPSG:4548 metres. This module is the SQL adapter: it reads the demand grid,
the facilities of a layer and the villages as arrays, projected to EPSG:4548
by PostGIS (``ST_Transform``), so no distance is ever computed in degrees.

The demand grid (about 69,000 cells in the demo, 457,000 at 100 m) rarely
changes, so it is cached per process and per database, keyed on a cheap
version check (row count, largest id and total population). Facilities are
read fresh on every call: they change through the admin API and loads.
SQL uses bound parameters only.
"""
from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Engine

#: EPSG code of the metric CRS every array here is in.
METRIC_EPSG = 4548


@dataclass(frozen=True)
class DemandGrid:
    """The demand cells as arrays (all of shape (n,) or (n, 2)).

    Attributes
    ----------
    cell_id : object array
        The cells' ids (``demand_cell.cell_id``).
    xy : float array (n, 2)
        Cell centres, EPSG:4548 metres.
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
class FacilityPoints:
    """Facilities of one layer as arrays, EPSG:4548 metres."""

    id: np.ndarray
    xy: np.ndarray
    capacity: np.ndarray
    district: np.ndarray
    synthetic: bool

    def __len__(self) -> int:
        return len(self.id)


@dataclass(frozen=True)
class Villages:
    """Villages as arrays, EPSG:4548 metres."""

    village_id: np.ndarray
    xy: np.ndarray
    district: np.ndarray
    synthetic: bool

    def __len__(self) -> int:
        return len(self.village_id)


_cache: dict[tuple[str, str], tuple[tuple, object]] = {}
_cache_lock = threading.Lock()


def _cache_key(engine: Engine, table: str) -> tuple[str, str]:
    return (engine.url.render_as_string(hide_password=True), table)


def _cached(engine: Engine, table: str, version_sql: str, load):
    """Return ``load(conn)`` from the cache unless the table's version changed."""
    key = _cache_key(engine, table)
    with engine.connect() as conn:
        version = tuple(conn.execute(text(version_sql)).one())
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = load(conn)
    with _cache_lock:
        _cache[key] = (version, value)
    return value


def clear_cache() -> None:
    """Forget every cached grid and village set (tests call this after loads)."""
    with _cache_lock:
        _cache.clear()


# --------------------------------------------------------------------------
# demand grid
# --------------------------------------------------------------------------

_GRID_VERSION = "SELECT count(*), coalesce(max(id), 0), coalesce(sum(population), 0) FROM demand_cell"


def demand_grid(engine: Engine) -> DemandGrid:
    """The demand cells, cached per process until the table changes.

    Returns
    -------
    DemandGrid
        Centres from ``x_m``/``y_m`` (EPSG:4548 metres, stored with each cell).
    """
    return _cached(engine, "demand_cell", _GRID_VERSION, _load_grid)


def _load_grid(conn) -> DemandGrid:
    rows = conn.execute(text(
        "SELECT cell_id, x_m, y_m, population, urban, district_adcode, resolution_m, synthetic "
        "FROM demand_cell ORDER BY id")).all()
    if not rows:
        return DemandGrid(np.empty(0, dtype=object), np.empty((0, 2)), np.empty(0),
                          np.empty(0, dtype=bool), np.empty(0, dtype=object), 250.0, False)
    cell_id, x, y, pop, urban, district, res, synthetic = zip(*rows)
    return DemandGrid(
        cell_id=np.array(cell_id, dtype=object),
        xy=np.column_stack([np.array(x, dtype=float), np.array(y, dtype=float)]),
        population=np.array(pop, dtype=float),
        urban=np.array(urban, dtype=bool),
        district=np.array(district, dtype=object),
        resolution_m=float(max(res)),
        synthetic=bool(any(synthetic)))


# --------------------------------------------------------------------------
# facilities
# --------------------------------------------------------------------------

def facility_points(engine: Engine, layer: str, as_of: dt.date | None = None) -> FacilityPoints:
    """Active facilities of ``layer`` opened on or before ``as_of``.

    Parameters
    ----------
    engine : Engine
    layer : str
        A layer key (already validated against the registry).
    as_of : date, optional
        Keep facilities with ``opened_on <= as_of``, or no opening date.
        ``None`` keeps every active facility.

    Returns
    -------
    FacilityPoints
        Each facility's representative point (``facility.point``; for parks,
        a point inside the polygon) in EPSG:4548 metres; capacity 0 when
        unknown.
    """
    sql = text(
        "SELECT id, ST_X(p) AS x, ST_Y(p) AS y, coalesce(capacity, 0) AS cap, district_adcode, synthetic "
        "FROM (SELECT id, capacity, district_adcode, synthetic, "
        "       ST_Transform(point, 4548) AS p FROM facility "
        "      WHERE layer = :layer AND status = 'active' AND point IS NOT NULL "
        "        AND (CAST(:as_of AS date) IS NULL OR opened_on IS NULL OR opened_on <= CAST(:as_of AS date))"
        ") f ORDER BY id")
    with engine.connect() as conn:
        rows = conn.execute(sql, {"layer": layer, "as_of": as_of}).all()
    if not rows:
        return FacilityPoints(np.empty(0, dtype=np.int64), np.empty((0, 2)), np.empty(0),
                              np.empty(0, dtype=object), False)
    ids, x, y, cap, district, synthetic = zip(*rows)
    return FacilityPoints(
        id=np.array(ids, dtype=np.int64),
        xy=np.column_stack([np.array(x, dtype=float), np.array(y, dtype=float)]),
        capacity=np.array(cap, dtype=float),
        district=np.array(district, dtype=object),
        synthetic=bool(any(synthetic)))


def candidate_sets(engine: Engine) -> list[str]:
    """Names of the candidate-site sets planners have loaded."""
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT DISTINCT set_name FROM candidate_site ORDER BY set_name")).scalars())


def candidate_points(engine: Engine, set_name: str) -> FacilityPoints:
    """The sites of one candidate set, in EPSG:4548 metres (``capacity`` is 0)."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT id, ST_X(p) AS x, ST_Y(p) AS y, district_adcode FROM "
            "(SELECT id, district_adcode, ST_Transform(point, 4548) AS p FROM candidate_site "
            " WHERE set_name = :s) c ORDER BY id"), {"s": set_name}).all()
    return FacilityPoints(
        id=np.array([r.id for r in rows], dtype=np.int64),
        xy=np.array([[r.x, r.y] for r in rows], dtype=float).reshape(-1, 2),
        capacity=np.zeros(len(rows)), district=np.array([r.district_adcode for r in rows], dtype=object),
        synthetic=False)


# --------------------------------------------------------------------------
# villages
# --------------------------------------------------------------------------

_VILLAGE_VERSION = "SELECT count(*), coalesce(max(id), 0) FROM village"


def villages(engine: Engine) -> Villages:
    """Every village, in EPSG:4548 metres, cached until the table changes."""
    return _cached(engine, "village", _VILLAGE_VERSION, _load_villages)


def _load_villages(conn) -> Villages:
    rows = conn.execute(text(
        "SELECT village_id, ST_X(p), ST_Y(p), district_adcode, synthetic FROM "
        "(SELECT id, village_id, district_adcode, synthetic, ST_Transform(geom, 4548) AS p "
        " FROM village) v ORDER BY id")).all()
    if not rows:
        return Villages(np.empty(0, dtype=object), np.empty((0, 2)), np.empty(0, dtype=object), False)
    vid, x, y, district, synthetic = zip(*rows)
    return Villages(np.array(vid, dtype=object),
                    np.column_stack([np.array(x, dtype=float), np.array(y, dtype=float)]),
                    np.array(district, dtype=object), bool(any(synthetic)))


def district_names(engine: Engine) -> dict[str, tuple[str, str]]:
    """adcode → (Chinese name, English name) of the loaded districts."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT adcode, name_zh, name_en FROM district ORDER BY adcode")).all()
    return {r[0]: (r[1], r[2]) for r in rows}
