"""Villages and the rural people living in them.

About 2,400 synthetic villages (not scaled: villages are demand, not
facilities) sit on a jittered lattice in each district's countryside, outside
the urban cores. Each district's rural census population is apportioned over
its villages exactly, and each village spreads its people over nearby cells
of its own district with a Gaussian kernel. Metres in EPSG:4548.
"""
from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from demo.districts import District
from demo.draws import allocate, largest_remainder, normalised, rng
from demo.population import Grid
from geo.crs import WGS84_EPSG, from_metric

#: Villages across the city.
VILLAGES_TOTAL = 2400
#: Villages stay out of cells whose urban people exceed this density (people/km²).
VILLAGE_MAX_URBAN_DENSITY = 1000.0


def make_villages(grid: Grid, dists: list[District], urban_people: np.ndarray, seed: int) -> pd.DataFrame:
    """Village sites and people, outside the urban cores, numbered across the city.

    The villages are split over districts by 60 % rural population and 40 %
    area, so rural districts get more.

    Returns
    -------
    pandas.DataFrame
        ``district`` (index), ``x``, ``y`` (EPSG:4548 metres), ``population``,
        ``village_id`` and ``name``.
    """
    area = np.array([d.poly.area for d in dists])
    rural = np.array([d.rural_population for d in dists], dtype=float)
    counts = allocate(VILLAGES_TOTAL, 0.6 * rural / rural.sum() + 0.4 * area / area.sum(), minimum=1)
    density = grid.dense(urban_people) / (grid.res / 1000.0) ** 2
    parts = [_district_villages(grid, d, int(n), density, rng(seed, "villages", d.adcode))
             for d, n in zip(dists, counts, strict=True)]
    villages = pd.concat(parts, ignore_index=True)
    width = max(4, len(str(len(villages))))
    villages["village_id"] = [f"DEMO-VIL-{i:0{width}d}" for i in range(1, len(villages) + 1)]
    villages["name"] = [f"合成村{i:0{width}d}" for i in range(1, len(villages) + 1)]
    return villages


def _district_villages(grid: Grid, d: District, n: int, urban_density: np.ndarray,
                       gen: np.random.Generator) -> pd.DataFrame:
    """``n`` village sites on a jittered lattice in the district's countryside."""
    spacing = math.sqrt(d.poly.area / (1.8 * n))
    for _ in range(12):
        x, y = _village_candidates(grid, d, spacing, urban_density, gen)
        if len(x) >= n:
            break
        spacing *= 0.8
    pick = np.sort(gen.choice(len(x), size=min(n, len(x)), replace=False,
                              p=normalised(gen.lognormal(0.0, 0.6, len(x)))))
    people = largest_remainder(gen.lognormal(0.0, 0.55, len(pick)), d.rural_population)
    return pd.DataFrame({"district": d.index, "x": x[pick], "y": y[pick], "population": people})


def _village_candidates(grid: Grid, d: District, spacing: float, urban_density: np.ndarray,
                        gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Jittered lattice points (metres) for village sites.

    Kept: points inside the district's inset, in a cell of the district whose
    urban density is below :data:`VILLAGE_MAX_URBAN_DENSITY`.
    """
    minx, miny, maxx, maxy = d.poly.bounds
    gx, gy = np.meshgrid(np.arange(minx, maxx, spacing), np.arange(miny, maxy, spacing))
    x = gx.ravel() + gen.uniform(-0.35, 0.35, gx.size) * spacing
    y = gy.ravel() + gen.uniform(-0.35, 0.35, gy.size) * spacing
    row, col, ok = grid.cell_of(x, y)
    ok &= grid.owner[row, col] == d.index
    ok &= urban_density[row, col] < VILLAGE_MAX_URBAN_DENSITY
    ok &= shapely.contains_xy(d.inset, x, y)
    return x[ok], y[ok]


def village_people(grid: Grid, villages: pd.DataFrame, chunk: int = 256) -> np.ndarray:
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


def _splat(grid: Grid, x: np.ndarray, y: np.ndarray, district: np.ndarray, people: np.ndarray,
           sigma: np.ndarray, reach: np.ndarray, dr: np.ndarray, dc: np.ndarray) -> np.ndarray:
    """People of a batch of villages, per flat grid index (stencil offsets ``dr``, ``dc``)."""
    row0, col0, _ = grid.cell_of(x, y)
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


def villages_frame(villages: pd.DataFrame, dists: list[District]) -> gpd.GeoDataFrame:
    """Villages as WGS-84 points: ``village_id``, ``name``, ``adcode``, ``population``, ``synthetic``."""
    lon, lat = from_metric(villages["x"].to_numpy(), villages["y"].to_numpy())
    adcodes = np.array([d.adcode for d in dists], dtype=object)
    return gpd.GeoDataFrame({
        "village_id": villages["village_id"].to_numpy(),
        "name": villages["name"].to_numpy(),
        "adcode": adcodes[villages["district"].to_numpy()],
        "population": villages["population"].to_numpy(dtype=np.int64),
        "synthetic": True,
    }, geometry=shapely.points(lon, lat), crs=f"EPSG:{WGS84_EPSG}")
