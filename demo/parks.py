"""Park polygons: pocket parks and parks that fit their district and never overlap (EPSG:4548 metres)."""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import shapely
from shapely import affinity

from demo.districts import District
from demo.sites import Context, candidates, draw

#: Makes a park polygon (EPSG:4548 metres) centred on (x, y).
ShapeMaker = Callable[[np.random.Generator, float, float], shapely.Geometry]

#: Tries to place one park before giving up; after the first quarter any populated cell will do.
PARK_TRIES = 200


def pocket_shape(gen: np.random.Generator, x: float, y: float) -> shapely.Geometry:
    """A rotated rectangle of 500-9,000 m² (log-uniform), aspect 1-3, centred on (x, y)."""
    area = math.exp(gen.uniform(math.log(500.0), math.log(9000.0)))
    aspect = gen.uniform(1.0, 3.0)
    w, h = math.sqrt(area * aspect), math.sqrt(area / aspect)
    rect = shapely.box(x - w / 2, y - h / 2, x + w / 2, y + h / 2)
    return affinity.rotate(rect, gen.uniform(0, 180), origin=(x, y))


def park_shape(gen: np.random.Generator, x: float, y: float) -> shapely.Geometry:
    """An irregular oval of 6-28 ha (exactly, by rescaling) centred on (x, y)."""
    area = gen.uniform(60_000.0, 280_000.0)
    t = np.linspace(0, 2 * math.pi, 20, endpoint=False)
    radius = 1.0 + 0.12 * gen.standard_normal(len(t))
    aspect = gen.uniform(1.0, 1.8)
    ring = np.column_stack([x + aspect * radius * np.cos(t), y + radius * np.sin(t)])
    poly = shapely.make_valid(shapely.Polygon(ring)).convex_hull
    poly = affinity.scale(poly, math.sqrt(area / poly.area), math.sqrt(area / poly.area), origin=(x, y))
    return affinity.rotate(poly, gen.uniform(0, 180), origin=(x, y))


def park_polygons(ctx: Context, gen: np.random.Generator, kind: str, per_district: np.ndarray,
                  shape: ShapeMaker, taken: list[shapely.Geometry]) -> tuple[np.ndarray, np.ndarray]:
    """Polygons (metres) made by ``shape(gen, x, y)``, inside the district inset and clear of ``taken``.

    Each polygon placed is appended to ``taken``. Returns the polygons and
    their district indices.
    """
    geoms, ds = [], []
    for d in ctx.dists:
        for _ in range(int(per_district[d.index])):
            geoms.append(_one_park(ctx, gen, kind, d, shape, taken))
            ds.append(d.index)
    return np.array(geoms, dtype=object), np.array(ds, dtype=np.intp)


def _one_park(ctx: Context, gen: np.random.Generator, kind: str, d: District, shape: ShapeMaker,
              taken: list[shapely.Geometry]) -> shapely.Geometry:
    """Draw sites until a polygon fits inside the district inset without touching an earlier park."""
    urban = candidates(ctx, d.index, ctx.cpop * ctx.curban)
    anywhere = None
    for attempt in range(PARK_TRIES):
        if attempt == PARK_TRIES // 4:  # a crowded core: allow any populated cell
            anywhere = candidates(ctx, d.index, ctx.cpop)
        x, y = draw(ctx, gen, d.index, *(anywhere or urban), 1)
        geom = shape(gen, float(x[0]), float(y[0]))
        if d.inset.contains(geom) and not any(geom.intersects(t) for t in taken):
            taken.append(geom)
            return geom
    raise RuntimeError(f"could not place a {kind} park in district {d.adcode} after {PARK_TRIES} tries")
