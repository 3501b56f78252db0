"""Where a synthetic facility can stand: cells drawn by weight, spots next to villages.

Everything here is in EPSG:4548 metres. A site is always inside its
district's inset polygon (:data:`demo.districts.INSET_M` from the border), so
the WGS-84 round trip cannot move it across a border.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from demo.districts import District
from demo.draws import normalised, rng
from demo.population import Centre

#: Arrays of site coordinates (metres) and district indices.
Sites = tuple[np.ndarray, np.ndarray, np.ndarray]


class Context:
    """What placement draws on: cells, villages and urban centres in metres, the districts, the seed."""

    def __init__(self, cells: gpd.GeoDataFrame, villages: pd.DataFrame, centres: list[Centre],
                 dists: list[District], seed: int, res: float) -> None:
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
        self.centres = centres
        self.in_inset = np.zeros(len(self.cx), dtype=bool)  # centre inside its district's inset
        for d in dists:
            idx = np.flatnonzero(self.cdist == d.index)
            self.in_inset[idx] = shapely.contains_xy(d.inset, self.cx[idx], self.cy[idx])

    def rng(self, *keys: str) -> np.random.Generator:
        """The random stream of one placement step (named by layer, kind, purpose)."""
        return rng(self.seed, "facilities", *keys)

    def urban_weights(self) -> np.ndarray:
        """Urban people per district (for splitting urban-facing facilities)."""
        return np.array([d.urban_population for d in self.dists], dtype=float)

    def seat_distance(self) -> np.ndarray:
        """Metres from each cell's centre to its own district's seat."""
        seats = np.array([d.seat for d in self.dists])
        return np.hypot(self.cx - seats[self.cdist, 0], self.cy - seats[self.cdist, 1])

    def town_distance(self) -> np.ndarray:
        """Metres from each cell's centre to the nearest secondary town of its district (inf when none)."""
        out = np.full(len(self.cx), np.inf)
        for c in self.centres:
            if c.seat:
                continue
            mine = self.cdist == c.district
            out[mine] = np.minimum(out[mine], np.hypot(self.cx[mine] - c.x, self.cy[mine] - c.y))
        return out

    def district_sums(self, weight: np.ndarray) -> np.ndarray:
        """``weight`` summed per district (for splitting a count over districts)."""
        return np.bincount(self.cdist, weights=weight, minlength=len(self.dists))


def candidates(ctx: Context, district: int, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cells of ``district`` with centres inside its inset, and draw probabilities by ``weight``.

    Falls back to every such cell (uniformly) when no cell has positive weight.
    """
    ok = (ctx.cdist == district) & ctx.in_inset
    cand = np.flatnonzero(ok & (weight > 0))
    if len(cand) == 0:
        cand = np.flatnonzero(ok)
        return cand, np.full(len(cand), 1.0 / len(cand))
    return cand, normalised(weight[cand])


def draw(ctx: Context, gen: np.random.Generator, district: int, cand: np.ndarray, p: np.ndarray,
         n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points in cells ``cand`` (probabilities ``p``), jittered within the cell (metres).

    A point that falls outside the district's inset polygon is redrawn; after
    20 tries it goes to the centre of a candidate cell, which is inside.
    """
    inset = ctx.dists[district].inset
    x, y = np.empty(n), np.empty(n)
    todo = np.arange(n)
    for _ in range(20):
        pick = gen.choice(cand, size=len(todo), p=p)
        x[todo] = ctx.cx[pick] + gen.uniform(-0.5, 0.5, len(todo)) * ctx.res
        y[todo] = ctx.cy[pick] + gen.uniform(-0.5, 0.5, len(todo)) * ctx.res
        todo = todo[~shapely.contains_xy(inset, x[todo], y[todo])]
        if len(todo) == 0:
            return x, y
    pick = gen.choice(cand, size=len(todo), p=p)
    x[todo], y[todo] = ctx.cx[pick], ctx.cy[pick]
    return x, y


def sites_in_cells(ctx: Context, stream: str, per_district: np.ndarray, weight: np.ndarray) -> Sites:
    """Points in cells drawn by ``weight``, ``per_district[i]`` of them in district ``i``.

    Each district draws from its own stream ``(stream, adcode)``.
    """
    def place(d: District, n: int) -> tuple[np.ndarray, np.ndarray]:
        return draw(ctx, ctx.rng(stream, d.adcode), d.index, *candidates(ctx, d.index, weight), n)

    return _by_district(ctx, per_district, place)


def _by_district(ctx: Context, per_district: np.ndarray,
                 place: Callable[[District, int], tuple[np.ndarray, np.ndarray] | None]) -> Sites:
    """Sites of each district with a positive count: ``place(district, n)`` gives their x, y (None: none)."""
    xs, ys, ds = [], [], []
    for d in ctx.dists:
        n = int(per_district[d.index])
        placed = place(d, n) if n > 0 else None
        if placed is None:
            continue
        xs.append(placed[0])
        ys.append(placed[1])
        ds.append(np.full(len(placed[0]), d.index))
    if not xs:
        return np.empty(0), np.empty(0), np.empty(0, dtype=np.intp)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ds)


def urban_sites(ctx: Context, stream: str, per_district: np.ndarray) -> Sites:
    """Points in urban cells (by people), ``per_district[i]`` of them in district ``i``."""
    return sites_in_cells(ctx, stream, per_district, ctx.cpop * ctx.curban)


def near(ctx: Context, gen: np.random.Generator, x: np.ndarray, y: np.ndarray,
         district: np.ndarray, max_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Points within ``max_m`` of (x, y) and inside their district's inset; else (x, y) itself."""
    angle = gen.uniform(0, 2 * math.pi, len(x))
    radius = gen.uniform(0.1, 1.0, len(x)) * max_m
    nx, ny = x + radius * np.cos(angle), y + radius * np.sin(angle)
    for d in np.unique(district):
        sel = district == d
        bad = sel & ~shapely.contains_xy(ctx.dists[d].inset, nx, ny)
        nx[bad], ny[bad] = x[bad], y[bad]
    return nx, ny


def choose_villages(gen: np.random.Generator, people: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` villages weighted by people: distinct while there are enough."""
    p = normalised(people)
    first = gen.choice(len(people), size=min(n, len(people)), replace=False, p=p)
    extra = gen.choice(len(people), size=n - len(first), replace=True, p=p)
    return np.concatenate([first, extra])


def village_sites(ctx: Context, gen: np.random.Generator, per_district: np.ndarray, max_m: float) -> Sites:
    """Points within ``max_m`` of villages, the larger villages first (by people, at random)."""
    v = ctx.villages
    vd, vx, vy = v["district"].to_numpy(), v["x"].to_numpy(), v["y"].to_numpy()
    people = v["population"].to_numpy(dtype=float)

    def place(d: District, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        idx = np.flatnonzero(vd == d.index)
        if len(idx) == 0:
            return None
        chosen = idx[choose_villages(gen, people[idx], n)]
        return near(ctx, gen, vx[chosen], vy[chosen], np.full(n, d.index), max_m)

    return _by_district(ctx, per_district, place)
