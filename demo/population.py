"""The demand grid and its urban people: the seat and secondary towns of each district.

All in EPSG:4548 metres (CGCS2000 / 3-degree Gauss-Kruger CM 117E):

* A square grid aligned to a ``res``-metre lattice; a cell belongs to the
  district that contains its centre.
* Urban people (the census urban share) sit in exponential kernels around the
  real district seat and 2-4 seeded secondary towns.
* Each district's cells are apportioned to integers that sum exactly to the
  census total (largest remainder); cells at or above the urban density are
  flagged urban.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from demo.districts import District
from demo.draws import largest_remainder, rng
from geo.crs import WGS84_EPSG, from_metric

#: Share of a district's urban people living around its seat; the towns share the rest.
SEAT_SHARE = 0.6
#: Secondary towns lie at least this far from the seat and from each other, and inside the district (metres).
TOWN_FROM_SEAT_M = 6000.0
TOWN_SPACING_M = 5000.0
TOWN_INSIDE_M = 1500.0


@dataclass
class Grid:
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

    def dense(self, values: np.ndarray) -> np.ndarray:
        """Per-cell values scattered into a full (nrows, ncols) array, zero outside the city."""
        out = np.zeros(self.owner.size)
        out[self.flat] = values
        return out.reshape(self.shape)

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row, column and in-bounds mask of the cells holding points (x, y) in metres."""
        col = np.floor(x / self.res).astype(np.int64) - self.col0
        row = np.floor(y / self.res).astype(np.int64) - self.row0
        inside = (row >= 0) & (row < self.shape[0]) & (col >= 0) & (col < self.shape[1])
        return np.where(inside, row, 0), np.where(inside, col, 0), inside


@dataclass(frozen=True)
class Centre:
    """An urban centre in metres: a district seat or a secondary town, with its urban people."""

    district: int
    x: float
    y: float
    people: float
    scale_m: float
    seat: bool


def build_grid(dists: list[District], res: float) -> Grid:
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
    return Grid(res, col0, row0, owner, flat, (cols + col0 + 0.5) * res, (rows + row0 + 0.5) * res,
                owner.ravel()[flat].astype(np.intp))


def urban_people(grid: Grid, dists: list[District], seed: int) -> tuple[np.ndarray, list[Centre]]:
    """Urban people per city cell (float) from kernels at seats and secondary towns.

    Returns the people array (aligned with ``grid.x``) and the centres used.
    """
    people = np.zeros(len(grid.x))
    centres: list[Centre] = []
    for d in dists:
        in_d = np.flatnonzero(grid.district == d.index)
        for c in _urban_centres(grid, d, in_d, rng(seed, "towns", d.adcode)):
            dist = np.hypot(grid.x[in_d] - c.x, grid.y[in_d] - c.y)
            kernel = np.exp(-dist / c.scale_m)
            people[in_d] += c.people * kernel / kernel.sum()
            centres.append(c)
    return people, centres


def _urban_centres(grid: Grid, d: District, in_d: np.ndarray, gen: np.random.Generator) -> list[Centre]:
    """The seat and 2-4 secondary towns of a district, with their urban people.

    The seat takes :data:`SEAT_SHARE` of the census urban population; the
    towns share the rest. Kernel scales grow with the square root of the
    people, so every seat peaks near 15,000-19,000 people/km² and every town
    at a few thousand or more, above the 1,500/km² urban threshold.
    """
    towns = _town_sites(grid, d, in_d, gen, int(gen.integers(2, 5)))
    shares = (np.concatenate([[SEAT_SHARE], (1 - SEAT_SHARE) * gen.dirichlet(np.full(len(towns), 4.0))])
              if towns else np.array([1.0]))
    out = []
    for k, ((x, y), share) in enumerate(zip([d.seat, *towns], shares, strict=True)):
        p = share * d.urban_population
        scale = (np.clip(1600 * math.sqrt(p / 300_000), 1000, 3000) if k == 0
                 else np.clip(800 * math.sqrt(p / 50_000), 600, 1600))
        out.append(Centre(d.index, x, y, float(p), float(scale), k == 0))
    return out


def _town_sites(grid: Grid, d: District, in_d: np.ndarray, gen: np.random.Generator,
                n: int) -> list[tuple[float, float]]:
    """Up to ``n`` town sites well inside the district, away from the seat and from each other."""
    core = d.poly.buffer(-TOWN_INSIDE_M)
    ok = in_d[shapely.contains_xy(core, grid.x[in_d], grid.y[in_d])]
    ok = ok[np.hypot(grid.x[ok] - d.seat[0], grid.y[ok] - d.seat[1]) >= TOWN_FROM_SEAT_M]
    sites: list[tuple[float, float]] = []
    for idx in gen.permutation(ok)[:400]:
        x, y = float(grid.x[idx]), float(grid.y[idx])
        if all(math.hypot(x - sx, y - sy) >= TOWN_SPACING_M for sx, sy in sites):
            sites.append((x, y))
        if len(sites) == n:
            break
    return sites


def apportion_cells(grid: Grid, dists: list[District], people: np.ndarray) -> np.ndarray:
    """Integer people per city cell; each district sums exactly to its census total."""
    out = np.zeros(len(people), dtype=np.int64)
    for d in dists:
        in_d = np.flatnonzero(grid.district == d.index)
        out[in_d] = largest_remainder(people[in_d], d.population)
    return out


def cells_frame(grid: Grid, dists: list[District], people: np.ndarray,
                urban_density: float) -> gpd.GeoDataFrame:
    """Populated cells as WGS-84 centre points with their EPSG:4548 centre coordinates.

    Columns ``cell_id`` (``<res>m_E<col>_N<row>``), ``adcode``, ``population``,
    ``urban`` (people/km² >= ``urban_density``), ``x_m``, ``y_m``, ``synthetic``.
    """
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


def centres_frame(centres: list[Centre], dists: list[District]) -> gpd.GeoDataFrame:
    """The urban centres as WGS-84 points: ``adcode``, ``seat`` (bool), ``people``, ``x_m``, ``y_m``."""
    x = np.array([c.x for c in centres], dtype=float)
    y = np.array([c.y for c in centres], dtype=float)
    lon, lat = from_metric(x, y)
    return gpd.GeoDataFrame({
        "adcode": [dists[c.district].adcode for c in centres],
        "seat": np.array([c.seat for c in centres], dtype=bool),
        "people": np.array([c.people for c in centres], dtype=float),
        "x_m": x,
        "y_m": y,
        "synthetic": True,
    }, geometry=shapely.points(lon, lat), crs=f"EPSG:{WGS84_EPSG}")
