"""A synthetic demo city on the real Zaozhuang districts: people and facilities.

No real point data exists for Zaozhuang's facilities (see the shared data
README), so the demo runs on generated data that reproduces the report's
counts (2,500 service offices, 37 police stations, 61 pocket parks + 12 parks,
6,235 + 3,528 parking spaces, 1,496 village clinics of which 1,211 have
rehabilitation equipment) and the 2020 census population of each district.
Everything it makes is labelled synthetic: facility names contain "示例" or
"（合成）", and every record carries ``synthetic = True``.

The model, in EPSG:4548 metres (CGCS2000 / 3-degree Gauss-Kruger CM 117E):

* A square grid aligned to a ``resolution_m`` lattice; a cell belongs to the
  district that contains its centre.
* Urban people (the census urban share) sit in exponential kernels around the
  real district seat and 2-4 seeded secondary towns.
* Rural people live in synthetic villages; each village spreads its people
  over nearby cells with a Gaussian kernel.
* Each district's cells are apportioned to integers that sum exactly to the
  census total (largest remainder).

The module is pure: no database, no I/O. Everything is drawn from one seed,
so the same input and seed give the same output.
"""
from __future__ import annotations

import datetime as dt
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import affinity

from geo.crs import WGS84_EPSG, from_metric, to_metric, transform_geometry
from geo.errors import CRSError
from layers.registry import URBAN_DENSITY_PER_KM2, get_layer

#: Columns ``build_demo_city`` needs in its ``districts`` frame.
REQUIRED_COLUMNS = ("adcode", "name_zh", "population", "urban_population",
                    "rural_population", "seat_lon", "seat_lat", "geometry")

#: Villages across the city (not scaled: villages are demand, not facilities).
VILLAGES_TOTAL = 2400

#: Service offices per head relative to the city, by district. 山亭区 is
#: mountainous and rural and 台儿庄区 lags too, so the demo shows real gaps.
SERVICE_OFFICE_FACTOR = {"370406": 0.45, "370405": 0.75}

#: Facility counts and capacity totals at ``scale=1`` (the H1 2022 report).
COUNTS = {"service_office": 2500, "police_station": 37, "pocket_park": 61, "park": 12,
          "village_clinic": 1496, "rehab": 1211}
PARKING = {"government_offhours": (6235, 110), "new_public": (3528, 60)}  # (spaces, lots)
PARKING_CAPACITY_RANGE = (10, 200)

#: Metres a facility keeps from its district edge, so that rounding in the
#: WGS-84 round trip cannot put it across the border.
_INSET_M = 60.0

H1_2022 = (dt.date(2022, 1, 1), dt.date(2022, 6, 30))

#: Makes a park polygon (EPSG:4548 metres) centred on (x, y).
ShapeMaker = Callable[[np.random.Generator, float, float], shapely.Geometry]


@dataclass
class DemoCity:
    """The generated city. All frames are WGS-84 (EPSG:4326).

    Attributes
    ----------
    cells : geopandas.GeoDataFrame
        Populated grid cells, Point at the cell centre: ``cell_id``, ``adcode``,
        ``population`` (int, >= 1), ``urban`` (bool), ``x_m``, ``y_m``
        (EPSG:4548 centre, metres), ``synthetic``.
    villages : geopandas.GeoDataFrame
        Points: ``village_id``, ``name``, ``adcode``, ``population``, ``synthetic``.
    facilities : geopandas.GeoDataFrame
        ``layer``, ``source_id``, ``kind``, ``name``, ``address``, ``phone``,
        ``opening_hours``, ``capacity``, ``opened_on``, ``attrs``, ``geometry``.
    resolution_m : float
        Cell side in metres (EPSG:4548).
    seed : int
        The seed everything was drawn from.
    """

    cells: gpd.GeoDataFrame
    villages: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    resolution_m: float
    seed: int


@dataclass
class _District:
    """One district in metres (EPSG:4548)."""

    index: int
    adcode: str
    name_zh: str
    population: int
    urban_population: int
    rural_population: int
    poly: shapely.Geometry
    inset: shapely.Geometry
    seat: tuple[float, float]


@dataclass
class _Grid:
    """A lattice of ``res``-metre cells; ``owner[row, col]`` is a district index or -1.

    Cell ``(row, col)`` spans x in ``[(col0 + col) * res, (col0 + col + 1) * res)``.
    """

    res: float
    col0: int
    row0: int
    owner: np.ndarray
    flat: np.ndarray  # flat indices of the cells inside the city
    x: np.ndarray  # centre x of those cells, metres
    y: np.ndarray
    district: np.ndarray  # district index of those cells

    @property
    def shape(self) -> tuple[int, int]:
        return self.owner.shape


# --------------------------------------------------------------------------- API


def build_demo_city(districts: gpd.GeoDataFrame, *, seed: int = 20221, resolution_m: float = 250.0,
                    scale: float = 1.0,
                    urban_density_per_km2: float = URBAN_DENSITY_PER_KM2) -> DemoCity:
    """Generate a synthetic population grid, villages and facility layers.

    Parameters
    ----------
    districts : geopandas.GeoDataFrame
        One row per district in WGS-84 (EPSG:4326) with the columns in
        :data:`REQUIRED_COLUMNS`: ``adcode`` (str), ``name_zh``, ``population``,
        ``urban_population``, ``rural_population`` (int, census 2020),
        ``seat_lon``/``seat_lat`` (WGS-84 degrees) and (Multi)Polygon geometry.
    seed : int
        Seed of every random draw; same input and seed give identical output.
    resolution_m : float
        Cell side in metres in EPSG:4548 at ``scale=1``.
    scale : float
        Multiplies every facility count and capacity total, and the grid
        density: the cell side becomes ``resolution_m / sqrt(scale)``.
    urban_density_per_km2 : float
        People per km² at or above which a cell is flagged ``urban``.

    Returns
    -------
    DemoCity
        Cells, villages and facilities, all in EPSG:4326.

    Raises
    ------
    CRSError
        When ``districts`` is not in EPSG:4326.
    ValueError
        When a column is missing, a census row does not add up, or a
        parameter is out of range.
    """
    _check_inputs(districts, seed, resolution_m, scale, urban_density_per_km2)
    dists = _metric_districts(districts)
    grid = _build_grid(dists, resolution_m / math.sqrt(scale))
    urban_people, _ = _urban_people(grid, dists, seed)
    villages = _make_villages(grid, dists, urban_people, seed)
    people = urban_people + _village_people(grid, villages)
    cells = _cells_frame(grid, dists, _apportion_cells(grid, dists, people), urban_density_per_km2)
    facilities = _make_facilities(_Context(cells, villages, dists, seed, grid.res), scale)
    _check_inside(facilities, dists)
    return DemoCity(cells=cells, villages=_villages_frame(villages, dists),
                    facilities=facilities, resolution_m=grid.res, seed=seed)


# ---------------------------------------------------------------- input checks


def _check_inputs(districts: gpd.GeoDataFrame, seed: int, resolution_m: float, scale: float,
                  urban_density: float) -> None:
    """Raise on a frame or parameter ``build_demo_city`` cannot use."""
    if not isinstance(districts, gpd.GeoDataFrame):
        raise ValueError(f"`districts` was a {type(districts).__name__} but is expected to be a GeoDataFrame")
    if districts.crs is None or districts.crs.to_epsg() != WGS84_EPSG:
        raise CRSError(f"`districts` CRS was {districts.crs} but is expected to be EPSG:4326 (WGS-84)")
    missing = [c for c in REQUIRED_COLUMNS if c not in districts.columns]
    if missing:
        raise ValueError(f"`districts` lacks columns {missing}; expected all of {list(REQUIRED_COLUMNS)}")
    if len(districts) == 0 or districts["adcode"].duplicated().any():
        raise ValueError("`districts` must have at least one row and unique `adcode` values")
    total = districts["urban_population"].astype(int) + districts["rural_population"].astype(int)
    bad = districts.loc[total != districts["population"].astype(int), "adcode"].tolist()
    if bad:
        raise ValueError(f"urban + rural population differs from `population` for adcode {bad}")
    for name, value in (("resolution_m", resolution_m), ("scale", scale),
                        ("urban_density_per_km2", urban_density)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"`{name}` was {value!r} but is expected to be a positive number")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"`seed` was {seed!r} but is expected to be an int")


def _metric_districts(districts: gpd.GeoDataFrame) -> list[_District]:
    """Districts in EPSG:4548 metres, sorted by adcode so row order does not matter."""
    rows = districts.sort_values("adcode", key=lambda s: s.astype(str))
    out = []
    for i, row in enumerate(rows.itertuples(index=False)):
        poly = shapely.make_valid(transform_geometry(row.geometry, to_metric))
        inset = poly.buffer(-_INSET_M)
        shapely.prepare(poly)
        shapely.prepare(inset)
        sx, sy = to_metric(float(row.seat_lon), float(row.seat_lat))
        out.append(_District(i, str(row.adcode), str(row.name_zh), int(row.population),
                             int(row.urban_population), int(row.rural_population),
                             poly, inset, (float(sx), float(sy))))
    return out


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """An independent generator per step, so one step's draws do not shift another's."""
    return np.random.default_rng([int(seed), *(zlib.crc32(k.encode()) for k in keys)])


# ------------------------------------------------------------------------ grid


def _build_grid(dists: list[_District], res: float) -> _Grid:
    """Assign every lattice cell whose centre lies in a district to that district."""
    bounds = np.array([d.poly.bounds for d in dists])
    col0, row0 = math.floor(bounds[:, 0].min() / res), math.floor(bounds[:, 1].min() / res)
    ncols = math.ceil(bounds[:, 2].max() / res) - col0
    nrows = math.ceil(bounds[:, 3].max() / res) - row0
    owner = np.full((nrows, ncols), -1, dtype=np.int16)
    for d in dists:
        minx, miny, maxx, maxy = d.poly.bounds
        c_lo, c_hi = math.floor(minx / res) - col0, math.ceil(maxx / res) - col0
        r_lo, r_hi = math.floor(miny / res) - row0, math.ceil(maxy / res) - row0
        xs = (np.arange(c_lo, c_hi) + col0 + 0.5) * res
        ys = (np.arange(r_lo, r_hi) + row0 + 0.5) * res
        gx, gy = np.meshgrid(xs, ys)
        block = owner[r_lo:r_hi, c_lo:c_hi]
        block[shapely.contains_xy(d.poly, gx, gy) & (block < 0)] = d.index
    flat = np.flatnonzero(owner.ravel() >= 0)
    rows, cols = np.divmod(flat, ncols)
    return _Grid(res, col0, row0, owner, flat, (cols + col0 + 0.5) * res, (rows + row0 + 0.5) * res,
                 owner.ravel()[flat].astype(np.intp))


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Non-negative integers proportional to ``weights`` that sum exactly to ``total``.

    Ties in the remainders go to the lower index, so the result is deterministic.
    """
    w = np.asarray(weights, dtype=float)
    if total == 0 or w.sum() <= 0:
        return np.zeros(len(w), dtype=np.int64)
    quota = w * (total / w.sum())
    base = np.floor(quota).astype(np.int64)
    short = int(total - base.sum())
    order = np.argsort(-(quota - base), kind="stable")
    base[order[:short]] += 1
    return base


def _allocate(total: int, weights: np.ndarray, minimum: int = 0) -> np.ndarray:
    """Split ``total`` items over groups by weight, each group getting ``minimum`` first if possible."""
    floor = minimum if total >= minimum * len(weights) else 0
    return floor + _largest_remainder(weights, total - floor * len(weights))


# ---------------------------------------------------------------- urban people


def _urban_people(grid: _Grid, dists: list[_District], seed: int) -> tuple[np.ndarray, list[dict]]:
    """Urban people per city cell (float) from kernels at seats and secondary towns.

    Returns the people array (aligned with ``grid.x``) and the centres used,
    each ``{"district", "x", "y", "people", "scale_m", "seat"}`` in metres.
    """
    people = np.zeros(len(grid.x))
    centres: list[dict] = []
    for d in dists:
        in_d = np.flatnonzero(grid.district == d.index)
        for c in _urban_centres(grid, d, in_d, _rng(seed, "towns", d.adcode)):
            dist = np.hypot(grid.x[in_d] - c["x"], grid.y[in_d] - c["y"])
            kernel = np.exp(-dist / c["scale_m"])
            people[in_d] += c["people"] * kernel / kernel.sum()
            centres.append(c)
    return people, centres


def _urban_centres(grid: _Grid, d: _District, in_d: np.ndarray, rng: np.random.Generator) -> list[dict]:
    """The seat and 2-4 secondary towns of a district, with their urban people.

    The seat takes 60 % of the census urban population; the towns share the
    rest. Kernel scales grow with the square root of the people, so every
    seat peaks near 15,000-19,000 people/km² and every town at a few
    thousand or more, above the 1,500/km² urban threshold.
    """
    towns = _town_sites(grid, d, in_d, rng, int(rng.integers(2, 5)))
    shares = (np.concatenate([[0.6], 0.4 * rng.dirichlet(np.full(len(towns), 4.0))]) if towns
              else np.array([1.0]))
    sites = [d.seat, *towns]
    out = []
    for k, ((x, y), share) in enumerate(zip(sites, shares)):
        p = share * d.urban_population
        scale = (np.clip(1600 * math.sqrt(p / 300_000), 1000, 3000) if k == 0
                 else np.clip(800 * math.sqrt(p / 50_000), 600, 1600))
        out.append({"district": d.index, "x": x, "y": y, "people": p, "scale_m": float(scale),
                    "seat": k == 0})
    return out


def _town_sites(grid: _Grid, d: _District, in_d: np.ndarray, rng: np.random.Generator,
                n: int) -> list[tuple[float, float]]:
    """Up to ``n`` town sites >= 1.5 km inside the district, >= 6 km from the seat and 5 km apart."""
    core = d.poly.buffer(-1500.0)
    ok = in_d[shapely.contains_xy(core, grid.x[in_d], grid.y[in_d])]
    ok = ok[np.hypot(grid.x[ok] - d.seat[0], grid.y[ok] - d.seat[1]) >= 6000.0]
    sites: list[tuple[float, float]] = []
    for idx in rng.permutation(ok)[:400]:
        x, y = float(grid.x[idx]), float(grid.y[idx])
        if all(math.hypot(x - sx, y - sy) >= 5000.0 for sx, sy in sites):
            sites.append((x, y))
        if len(sites) == n:
            break
    return sites


# -------------------------------------------------------------------- villages


def _make_villages(grid: _Grid, dists: list[_District], urban_people: np.ndarray,
                   seed: int) -> pd.DataFrame:
    """Village sites and people, outside the urban cores, numbered per district.

    The ~2,400 villages are split over districts by 60 % rural population and
    40 % area, so rural districts get more. Each district's rural census
    population is apportioned over its villages exactly.
    """
    area = np.array([d.poly.area for d in dists])
    rural = np.array([d.rural_population for d in dists], dtype=float)
    counts = _allocate(VILLAGES_TOTAL, 0.6 * rural / rural.sum() + 0.4 * area / area.sum(), minimum=1)
    density = _dense(grid, urban_people) / (grid.res / 1000.0) ** 2
    parts = [_district_villages(grid, d, int(n), density, _rng(seed, "villages", d.adcode))
             for d, n in zip(dists, counts)]
    villages = pd.concat(parts, ignore_index=True)
    width = max(4, len(str(len(villages))))
    villages["village_id"] = [f"DEMO-VIL-{i:0{width}d}" for i in range(1, len(villages) + 1)]
    villages["name"] = [f"合成村{i:0{width}d}" for i in range(1, len(villages) + 1)]
    return villages


def _dense(grid: _Grid, values: np.ndarray) -> np.ndarray:
    """Scatter per-cell values into a full (nrows, ncols) array, zero outside the city."""
    out = np.zeros(grid.owner.size)
    out[grid.flat] = values
    return out.reshape(grid.shape)


def _cell_of(grid: _Grid, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and in-bounds mask of the cells holding points (x, y) in metres."""
    col = np.floor(x / grid.res).astype(np.int64) - grid.col0
    row = np.floor(y / grid.res).astype(np.int64) - grid.row0
    inside = (row >= 0) & (row < grid.shape[0]) & (col >= 0) & (col < grid.shape[1])
    return np.where(inside, row, 0), np.where(inside, col, 0), inside


def _district_villages(grid: _Grid, d: _District, n: int, urban_density: np.ndarray,
                       rng: np.random.Generator) -> pd.DataFrame:
    """``n`` village sites on a jittered lattice in the district's countryside."""
    spacing = math.sqrt(d.poly.area / (1.8 * n))
    for _ in range(12):
        x, y = _village_candidates(grid, d, spacing, urban_density, rng)
        if len(x) >= n:
            break
        spacing *= 0.8
    pick = np.sort(rng.choice(len(x), size=min(n, len(x)), replace=False,
                              p=_normalised(rng.lognormal(0.0, 0.6, len(x)))))
    people = _largest_remainder(rng.lognormal(0.0, 0.55, len(pick)), d.rural_population)
    return pd.DataFrame({"district": d.index, "x": x[pick], "y": y[pick], "population": people})


def _village_candidates(grid: _Grid, d: _District, spacing: float, urban_density: np.ndarray,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Jittered lattice points (metres) for village sites.

    Kept: points inside the district's inset, in a cell of the district whose
    urban density is below 1,000 people/km².
    """
    minx, miny, maxx, maxy = d.poly.bounds
    gx, gy = np.meshgrid(np.arange(minx, maxx, spacing), np.arange(miny, maxy, spacing))
    x = gx.ravel() + rng.uniform(-0.35, 0.35, gx.size) * spacing
    y = gy.ravel() + rng.uniform(-0.35, 0.35, gy.size) * spacing
    row, col, ok = _cell_of(grid, x, y)
    ok &= grid.owner[row, col] == d.index
    ok &= urban_density[row, col] < 1000.0
    ok &= shapely.contains_xy(d.inset, x, y)
    return x[ok], y[ok]


def _normalised(w: np.ndarray) -> np.ndarray:
    return w / w.sum()


def _village_people(grid: _Grid, villages: pd.DataFrame, chunk: int = 256) -> np.ndarray:
    """Spread each village's people over nearby cells of its own district (Gaussian).

    The kernel's sigma is ``300 m * sqrt(people / 500)``, clipped to 150-800 m,
    so a village peaks near 900 people/km² whatever its size and stays
    rural. Returns people per city cell, aligned with ``grid.x``.
    """
    sigma = np.clip(300.0 * np.sqrt(villages["population"].to_numpy() / 500.0), 150.0, 800.0)
    reach = np.maximum(3.0 * sigma, grid.res)
    k = int(math.ceil(reach.max() / grid.res)) + 1
    dr, dc = (a.ravel() for a in np.mgrid[-k:k + 1, -k:k + 1])
    total = np.zeros(grid.owner.size)
    vx, vy = villages["x"].to_numpy(), villages["y"].to_numpy()
    vd, vp = villages["district"].to_numpy(), villages["population"].to_numpy(dtype=float)
    for s in range(0, len(villages), chunk):
        sl = slice(s, s + chunk)
        total += _splat(grid, vx[sl], vy[sl], vd[sl], vp[sl], sigma[sl], reach[sl], dr, dc)
    return total[grid.flat]


def _splat(grid: _Grid, x: np.ndarray, y: np.ndarray, district: np.ndarray, people: np.ndarray,
           sigma: np.ndarray, reach: np.ndarray, dr: np.ndarray, dc: np.ndarray) -> np.ndarray:
    """People of a batch of villages, per flat grid index (stencil offsets ``dr``, ``dc``)."""
    row0, col0, _ = _cell_of(grid, x, y)
    rows, cols = row0[:, None] + dr[None, :], col0[:, None] + dc[None, :]
    nrows, ncols = grid.shape
    ok = (rows >= 0) & (rows < nrows) & (cols >= 0) & (cols < ncols)
    rows, cols = np.where(ok, rows, 0), np.where(ok, cols, 0)
    ok &= grid.owner[rows, cols] == district[:, None]
    d2 = (((cols + grid.col0 + 0.5) * grid.res - x[:, None]) ** 2
          + ((rows + grid.row0 + 0.5) * grid.res - y[:, None]) ** 2)
    ok &= d2 <= reach[:, None] ** 2
    w = np.where(ok, np.exp(-d2 / (2.0 * sigma[:, None] ** 2)), 0.0)
    w *= (people / w.sum(axis=1))[:, None]
    return np.bincount((rows * ncols + cols)[ok], weights=w[ok], minlength=grid.owner.size)


def _villages_frame(villages: pd.DataFrame, dists: list[_District]) -> gpd.GeoDataFrame:
    """Villages as WGS-84 points."""
    lon, lat = from_metric(villages["x"].to_numpy(), villages["y"].to_numpy())
    adcodes = np.array([d.adcode for d in dists], dtype=object)
    return gpd.GeoDataFrame({
        "village_id": villages["village_id"].to_numpy(),
        "name": villages["name"].to_numpy(),
        "adcode": adcodes[villages["district"].to_numpy()],
        "population": villages["population"].to_numpy(dtype=np.int64),
        "synthetic": True,
    }, geometry=shapely.points(lon, lat), crs=f"EPSG:{WGS84_EPSG}")


# ----------------------------------------------------------------------- cells


def _apportion_cells(grid: _Grid, dists: list[_District], people: np.ndarray) -> np.ndarray:
    """Integer people per city cell; each district sums exactly to its census total."""
    out = np.zeros(len(people), dtype=np.int64)
    for d in dists:
        in_d = np.flatnonzero(grid.district == d.index)
        out[in_d] = _largest_remainder(people[in_d], d.population)
    return out


def _cells_frame(grid: _Grid, dists: list[_District], people: np.ndarray,
                 urban_density: float) -> gpd.GeoDataFrame:
    """Populated cells as WGS-84 centre points with EPSG:4548 centre coordinates."""
    keep = people > 0
    x, y = grid.x[keep], grid.y[keep]
    col = (np.floor(x / grid.res)).astype(np.int64)
    row = (np.floor(y / grid.res)).astype(np.int64)
    prefix = f"{grid.res:g}m_E"
    ids = prefix + pd.Series(col).astype(str) + "_N" + pd.Series(row).astype(str)
    lon, lat = from_metric(x, y)
    area_km2 = (grid.res / 1000.0) ** 2
    adcodes = np.array([d.adcode for d in dists], dtype=object)
    return gpd.GeoDataFrame({
        "cell_id": ids.to_numpy(dtype=object),
        "adcode": adcodes[grid.district[keep]],
        "population": people[keep],
        "urban": people[keep] / area_km2 >= urban_density,
        "x_m": x,
        "y_m": y,
        "synthetic": True,
    }, geometry=shapely.points(lon, lat), crs=f"EPSG:{WGS84_EPSG}")


# ------------------------------------------------------------------ facilities


def _make_facilities(ctx: _Context, scale: float) -> gpd.GeoDataFrame:
    """Every facility layer, concatenated, in WGS-84."""
    frames = [
        _service_offices(ctx, round(COUNTS["service_office"] * scale)),
        _police_stations(ctx, round(COUNTS["police_station"] * scale)),
        _parks(ctx, round(COUNTS["pocket_park"] * scale), round(COUNTS["park"] * scale)),
        _parking(ctx, scale),
        _clinics(ctx, round(COUNTS["village_clinic"] * scale), round(COUNTS["rehab"] * scale)),
    ]
    facilities = pd.concat([f for f in frames if len(f)], ignore_index=True)
    geom = transform_geometry(facilities.pop("geom_m").to_numpy(), from_metric)
    phones = [f"0632-0{i:06d}" for i in range(1, len(facilities) + 1)]  # 0xxxxxx: not a real landline
    facilities.insert(5, "phone", phones)
    return gpd.GeoDataFrame(facilities, geometry=geom, crs=f"EPSG:{WGS84_EPSG}")


class _Context:
    """What facility placement draws on: cells and villages in metres, districts, seed."""

    def __init__(self, cells: gpd.GeoDataFrame, villages: pd.DataFrame, dists: list[_District],
                 seed: int, res: float):
        index = {d.adcode: d.index for d in dists}
        self.dists = dists
        self.seed = seed
        self.cx = cells["x_m"].to_numpy()
        self.cy = cells["y_m"].to_numpy()
        self.cpop = cells["population"].to_numpy(dtype=float)
        self.curban = cells["urban"].to_numpy()
        self.cdist = cells["adcode"].map(index).to_numpy(dtype=np.intp)
        self.res = res
        self.villages = villages
        self.in_inset = np.zeros(len(self.cx), dtype=bool)  # centre inside its district's inset
        for d in dists:
            idx = np.flatnonzero(self.cdist == d.index)
            self.in_inset[idx] = shapely.contains_xy(d.inset, self.cx[idx], self.cy[idx])

    def rng(self, *keys: str) -> np.random.Generator:
        return _rng(self.seed, "facilities", *keys)

    def urban_weights(self) -> np.ndarray:
        """Urban people per district (for splitting urban-facing facilities)."""
        return np.array([d.urban_population for d in self.dists], dtype=float)


def _candidates(ctx: _Context, district: int, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cells of ``district`` with centres inside its inset, and draw probabilities by ``weight``.

    Falls back to every such cell (uniformly) when no cell has positive weight.
    """
    ok = (ctx.cdist == district) & ctx.in_inset
    cand = np.flatnonzero(ok & (weight > 0))
    if len(cand) == 0:
        cand = np.flatnonzero(ok)
        return cand, np.full(len(cand), 1.0 / len(cand))
    return cand, _normalised(weight[cand])


def _points_in_cells(ctx: _Context, rng: np.random.Generator, district: int, n: int,
                     weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points in cells of ``district`` drawn by ``weight``, jittered within the cell."""
    return _draw(ctx, rng, district, *_candidates(ctx, district, weight), n)


def _draw(ctx: _Context, rng: np.random.Generator, district: int, cand: np.ndarray, p: np.ndarray,
          n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points in cells ``cand`` (probabilities ``p``), jittered within the cell (metres).

    A point that falls outside the district's inset polygon is redrawn; after
    20 tries it goes to the centre of a candidate cell, which is inside.
    """
    inset = ctx.dists[district].inset
    x, y = np.empty(n), np.empty(n)
    todo = np.arange(n)
    for _ in range(20):
        pick = rng.choice(cand, size=len(todo), p=p)
        x[todo] = ctx.cx[pick] + rng.uniform(-0.5, 0.5, len(todo)) * ctx.res
        y[todo] = ctx.cy[pick] + rng.uniform(-0.5, 0.5, len(todo)) * ctx.res
        todo = todo[~shapely.contains_xy(inset, x[todo], y[todo])]
        if len(todo) == 0:
            return x, y
    pick = rng.choice(cand, size=len(todo), p=p)
    x[todo], y[todo] = ctx.cx[pick], ctx.cy[pick]
    return x, y


def _near(ctx: _Context, rng: np.random.Generator, x: np.ndarray, y: np.ndarray,
          district: np.ndarray, max_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Points within ``max_m`` of (x, y) and inside their district's inset; else (x, y) itself."""
    angle = rng.uniform(0, 2 * math.pi, len(x))
    radius = rng.uniform(0.1, 1.0, len(x)) * max_m
    nx, ny = x + radius * np.cos(angle), y + radius * np.sin(angle)
    for d in np.unique(district):
        sel = district == d
        bad = sel & ~shapely.contains_xy(ctx.dists[d].inset, nx, ny)
        nx[bad], ny[bad] = x[bad], y[bad]
    return nx, ny


def _urban_sites(ctx: _Context, key: str,
                 per_district: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points in urban cells (by people), ``per_district[i]`` of them in district ``i``."""
    xs, ys, ds = [], [], []
    for d in ctx.dists:
        n = int(per_district[d.index])
        if n == 0:
            continue
        x, y = _points_in_cells(ctx, ctx.rng(key, d.adcode), d.index, n, ctx.cpop * ctx.curban)
        xs.append(x)
        ys.append(y)
        ds.append(np.full(n, d.index))
    if not xs:
        return np.empty(0), np.empty(0), np.empty(0, dtype=np.intp)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ds)


def _frame(ctx: _Context, layer: str, kind: str, prefix: str, name: str, geom: np.ndarray,
           district: np.ndarray, opened: list[dt.date], hours: str,
           capacity: list[int | None] | None = None, attrs: list[dict] | None = None) -> pd.DataFrame:
    """One layer's (or kind's) rows with ids, names and addresses; geometry in metres."""
    get_layer(layer)  # fail loudly on a key the registry does not know
    n = len(geom)
    width = max(4, len(str(n)))
    names = np.array([d.name_zh for d in ctx.dists], dtype=object)[district]
    return pd.DataFrame({
        "layer": layer,
        "source_id": [f"DEMO-{prefix}-{i:0{width}d}" for i in range(1, n + 1)],
        "kind": kind,
        "name": [f"示例{name}{i:0{width}d}" for i in range(1, n + 1)],
        "address": [f"山东省枣庄市{nm}示例路{i}号（合成）" for i, nm in enumerate(names, start=1)],
        "opening_hours": hours,
        "capacity": pd.Series(capacity if capacity is not None else [None] * n, dtype=object),
        "opened_on": pd.Series(opened, dtype=object),
        "attrs": [{**(attrs[i] if attrs else {}), "adcode": ctx.dists[district[i]].adcode,
                   "synthetic": True} for i in range(n)],
        "geom_m": geom,
    })


def _dates(rng: np.random.Generator, n: int, start: dt.date, end: dt.date) -> list[dt.date]:
    """``n`` dates drawn uniformly from ``start`` to ``end`` inclusive."""
    days = rng.integers(0, (end - start).days + 1, n)
    return [start + dt.timedelta(days=int(k)) for k in days]


def _mostly_before_2022(rng: np.random.Generator, n: int, since: dt.date, share_2022: float) -> list[dt.date]:
    """Dates before 2022 except about ``share_2022`` of them, which fall in H1 2022."""
    before = _dates(rng, n, since, dt.date(2021, 12, 31))
    recent = _dates(rng, n, *H1_2022)
    late = rng.random(n) < share_2022
    return [r if is_late else b for b, r, is_late in zip(before, recent, late)]


def _service_offices(ctx: _Context, n: int) -> pd.DataFrame:
    """Offices split by people (fewer per head in :data:`SERVICE_OFFICE_FACTOR` districts).

    In each district the urban share of offices goes to urban cells by
    people; the rest are village service points next to the larger villages.
    """
    pop = np.array([d.population for d in ctx.dists], dtype=float)
    factor = np.array([SERVICE_OFFICE_FACTOR.get(d.adcode, 1.0) for d in ctx.dists])
    per_district = _allocate(n, pop * factor, minimum=1)
    urban_n = np.array([round(k * d.urban_population / d.population)
                        for k, d in zip(per_district, ctx.dists)], dtype=np.int64)
    ux, uy, ud = _urban_sites(ctx, "service_office", urban_n)
    vx, vy, vd = _village_sites(ctx, ctx.rng("service_office", "villages"), per_district - urban_n, 200.0)
    rng = ctx.rng("service_office", "dates")
    levels = [{"level": "community"}] * len(ux) + [{"level": "village"}] * len(vx)
    return _frame(ctx, "service_office", "service_office", "SO", "政务服务网点",
                  shapely.points(np.concatenate([ux, vx]), np.concatenate([uy, vy])),
                  np.concatenate([ud, vd]).astype(np.intp),
                  _mostly_before_2022(rng, n, dt.date(2016, 1, 1), 0.08),
                  "周一至周五 09:00-12:00, 13:30-17:00", attrs=levels)


def _village_sites(ctx: _Context, rng: np.random.Generator, per_district: np.ndarray,
                   max_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points next to villages, the larger villages first (by people, at random)."""
    v = ctx.villages
    xs, ys, ds = [], [], []
    for d in ctx.dists:
        idx = np.flatnonzero(v["district"].to_numpy() == d.index)
        n = int(per_district[d.index])
        if n == 0 or len(idx) == 0:
            continue
        chosen = _choose_villages(rng, v["population"].to_numpy(dtype=float)[idx], n)
        x, y = _near(ctx, rng, v["x"].to_numpy()[idx][chosen], v["y"].to_numpy()[idx][chosen],
                     np.full(n, d.index), max_m)
        xs.append(x)
        ys.append(y)
        ds.append(np.full(n, d.index))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ds)


def _choose_villages(rng: np.random.Generator, people: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` villages weighted by people: distinct while there are enough."""
    p = _normalised(people)
    first = rng.choice(len(people), size=min(n, len(people)), replace=False, p=p)
    extra = rng.choice(len(people), size=n - len(first), replace=True, p=p)
    return np.concatenate([first, extra])


def _police_stations(ctx: _Context, n: int) -> pd.DataFrame:
    """Stations in urban cells by people, opened (new or rebuilt) in H1 2022."""
    x, y, d = _urban_sites(ctx, "police_station", _allocate(n, ctx.urban_weights()))
    rng = ctx.rng("police_station", "dates")
    return _frame(ctx, "police_station", "police_station", "PS", "便民警务站", shapely.points(x, y), d,
                  _dates(rng, len(x), *H1_2022), "24小时")


def _parks(ctx: _Context, n_pocket: int, n_park: int) -> pd.DataFrame:
    """Pocket parks (400-10,000 m², opened H1 2022) and parks (5-30 ha, opened before 2022)."""
    rng = ctx.rng("pocket_park", "shapes")
    taken: list[shapely.Geometry] = []
    parks_geom, parks_d = _park_polygons(ctx, rng, "park", _allocate(n_park, ctx.urban_weights(), 1),
                                         _park_shape, taken)
    pocket_geom, pocket_d = _park_polygons(ctx, rng, "pocket", _allocate(n_pocket, ctx.urban_weights()),
                                           _pocket_shape, taken)
    dates = ctx.rng("pocket_park", "dates")
    pocket = _frame(ctx, "pocket_park", "pocket_park", "PP", "口袋公园", pocket_geom, pocket_d,
                    _dates(dates, len(pocket_geom), *H1_2022), "全天开放")
    parks = _frame(ctx, "pocket_park", "park", "PK", "公园", parks_geom, parks_d,
                   _dates(dates, len(parks_geom), dt.date(1985, 1, 1), dt.date(2021, 12, 31)),
                   "06:00-22:00")
    return pd.concat([pocket, parks], ignore_index=True)


def _park_polygons(ctx: _Context, rng: np.random.Generator, key: str, per_district: np.ndarray,
                   shape: ShapeMaker, taken: list[shapely.Geometry]) -> tuple[np.ndarray, np.ndarray]:
    """Polygons (metres) made by ``shape(rng, x, y)``, inside the district inset and not overlapping."""
    geoms, ds = [], []
    for d in ctx.dists:
        for _ in range(int(per_district[d.index])):
            geoms.append(_one_park(ctx, rng, key, d, shape, taken))
            ds.append(d.index)
    return np.array(geoms, dtype=object), np.array(ds, dtype=np.intp)


def _one_park(ctx: _Context, rng: np.random.Generator, key: str, d: _District, shape: ShapeMaker,
              taken: list[shapely.Geometry]) -> shapely.Geometry:
    """Draw sites until a polygon fits inside the district inset without touching an earlier park."""
    urban = _candidates(ctx, d.index, ctx.cpop * ctx.curban)
    anywhere = None
    for attempt in range(200):
        if attempt == 50:  # a crowded core: allow any populated cell
            anywhere = _candidates(ctx, d.index, ctx.cpop)
        x, y = _draw(ctx, rng, d.index, *(anywhere or urban), 1)
        geom = shape(rng, float(x[0]), float(y[0]))
        if d.inset.contains(geom) and not any(geom.intersects(t) for t in taken):
            taken.append(geom)
            return geom
    raise RuntimeError(f"could not place a {key} park in district {d.adcode} after 200 tries")


def _pocket_shape(rng: np.random.Generator, x: float, y: float) -> shapely.Geometry:
    """A rotated rectangle of 500-9,000 m² (log-uniform), aspect 1-3, centred on (x, y)."""
    area = math.exp(rng.uniform(math.log(500.0), math.log(9000.0)))
    aspect = rng.uniform(1.0, 3.0)
    w, h = math.sqrt(area * aspect), math.sqrt(area / aspect)
    rect = shapely.box(x - w / 2, y - h / 2, x + w / 2, y + h / 2)
    return affinity.rotate(rect, rng.uniform(0, 180), origin=(x, y))


def _park_shape(rng: np.random.Generator, x: float, y: float) -> shapely.Geometry:
    """An irregular oval of 5-30 ha (exactly, by rescaling) centred on (x, y)."""
    area = rng.uniform(60_000.0, 280_000.0)
    t = np.linspace(0, 2 * math.pi, 20, endpoint=False)
    radius = 1.0 + 0.12 * rng.standard_normal(len(t))
    aspect = rng.uniform(1.0, 1.8)
    ring = np.column_stack([x + aspect * radius * np.cos(t), y + radius * np.sin(t)])
    poly = shapely.make_valid(shapely.Polygon(ring)).convex_hull
    poly = affinity.scale(poly, math.sqrt(area / poly.area), math.sqrt(area / poly.area), origin=(x, y))
    return affinity.rotate(poly, rng.uniform(0, 180), origin=(x, y))


def _capacities(rng: np.random.Generator, total: int, lots: int) -> np.ndarray:
    """``lots`` capacities in :data:`PARKING_CAPACITY_RANGE` summing exactly to ``total``."""
    lo, hi = PARKING_CAPACITY_RANGE
    lots = int(min(max(lots, math.ceil(total / hi), 1), max(total // lo, 1)))
    cap = lo + _largest_remainder(rng.lognormal(0.0, 0.7, lots), total - lo * lots)
    for _ in range(100):  # clip at hi and hand the overflow to lots with room, by size
        over = int(np.maximum(cap - hi, 0).sum())
        if over == 0:
            break
        cap = np.minimum(cap, hi)
        room = hi - cap
        cap += np.minimum(room, _largest_remainder(room.astype(float), over))
    return cap


def _parking(ctx: _Context, scale: float) -> pd.DataFrame:
    """Government lots opened off-hours and new public lots, in urban cells by people.

    Capacities of each kind sum exactly to the report's spaces × ``scale``.
    Off-hours lots mostly opened to the public before 2022 (some in H1 2022);
    the new public lots opened in H1 2022.
    """
    frames = []
    spec = {"government_offhours": ("PG", "机关事业单位错时开放停车场",
                                    "工作日 18:00-次日08:00，节假日全天"),
            "new_public": ("PN", "公共停车场", "24小时")}
    for kind, (spaces, lots) in PARKING.items():
        prefix, name, hours = spec[kind]
        rng = ctx.rng("parking", kind)
        cap = _capacities(rng, round(spaces * scale), round(lots * scale))
        x, y, d = _urban_sites(ctx, f"parking-{kind}", _allocate(len(cap), ctx.urban_weights()))
        opened = (_dates(rng, len(cap), *H1_2022) if kind == "new_public"
                  else _mostly_before_2022(rng, len(cap), dt.date(2019, 1, 1), 0.2))
        frames.append(_frame(ctx, "parking", kind, prefix, name, shapely.points(x, y), d, opened, hours,
                             capacity=[int(c) for c in rng.permutation(cap)]))
    return pd.concat(frames, ignore_index=True)


def _clinics(ctx: _Context, n: int, n_rehab: int) -> pd.DataFrame:
    """Clinics next to villages (larger villages first; the rest are gaps).

    All have smart follow-up equipment; exactly ``n_rehab`` also have
    rehabilitation equipment. Opened before 2022 except about 3 %.
    """
    rng = ctx.rng("village_clinic")
    v = ctx.villages
    chosen = np.sort(_choose_villages(rng, v["population"].to_numpy(dtype=float), n))
    district = v["district"].to_numpy()[chosen].astype(np.intp)
    x, y = _near(ctx, rng, v["x"].to_numpy()[chosen], v["y"].to_numpy()[chosen], district, 250.0)
    rehab = np.zeros(n, dtype=bool)
    rehab[rng.choice(n, size=min(n_rehab, n), replace=False)] = True
    attrs = [{"smart_followup": True, "rehab_equipment": bool(r), "village_id": vid}
             for r, vid in zip(rehab, v["village_id"].to_numpy()[chosen])]
    return _frame(ctx, "village_clinic", "village_clinic", "VC", "村卫生室", shapely.points(x, y),
                  district, _mostly_before_2022(rng, n, dt.date(1995, 1, 1), 0.03),
                  "08:00-12:00, 14:00-17:30", attrs=attrs)


def _check_inside(facilities: gpd.GeoDataFrame, dists: list[_District]) -> None:
    """Raise if any facility is not wholly inside its district (tested in EPSG:4548)."""
    polys = {d.adcode: d.poly for d in dists}
    metric = transform_geometry(facilities.geometry.to_numpy(), to_metric)
    adcodes = [a["adcode"] for a in facilities["attrs"]]
    inside = shapely.within(metric, np.array([polys[a] for a in adcodes], dtype=object))
    if not inside.all():
        bad = facilities.loc[~inside, "source_id"].tolist()[:10]
        raise RuntimeError(f"{(~inside).sum()} facilities fall outside their district, e.g. {bad}")
