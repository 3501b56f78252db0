"""A synthetic province the size of Shandong, for the scale benchmark (``bench/bench_scaling.py``).

Nothing here is real: an ellipse of :data:`AREA_KM2` centred in Shandong,
split into :data:`CITIES` cities (Voronoi cells of seeded seats), a
100 m population lattice of :data:`POPULATION` people (dense cores around
each seat on a rural background) and about :data:`FACILITIES` facilities
spread over the registry's layers in the demo city's proportions, placed by
population (rural-only layers by rural population). Lattice coordinates are
metres in EPSG:4548 (the project's metric CRS; far from its central
meridian the scale is off by a few per cent, which does not matter for a
benchmark); districts and facilities are WGS-84 lon/lat degrees.

Pure: arrays and frames out, no database.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree
from shapely import affinity

from geo.crs import WGS84_EPSG, from_metric, to_metric, transform_geometry
from layers.model import Layer

#: Shandong: land area (km²), residents (2020 census, rounded), prefecture-level cities.
AREA_KM2 = 158_000.0
POPULATION = 101_000_000
CITIES = 16
#: Facilities over all layers (about what Shandong's 16 cities would report).
FACILITIES = 70_000
#: Centre of the ellipse (lon, lat degrees) and its east-west to north-south ratio.
CENTRE = (118.6, 36.3)
ASPECT = 2.2
#: People per km² from which a cell counts as urban (as the demo city).
URBAN_PER_KM2 = 1500.0


@dataclass
class Province:
    """The lattice (``xy`` metres, ``population``, ``urban``), ``districts`` and ``facilities``."""

    xy: np.ndarray
    population: np.ndarray
    urban: np.ndarray
    districts: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    cell_m: float


def make_province(layers: Mapping[str, Layer], demo_counts: Mapping[str, int], *, seed: int = 37,
                  cell_m: float = 100.0, facilities: int = FACILITIES) -> Province:
    """Build the synthetic province.

    Parameters
    ----------
    layers : mapping
        The layer registry (``layers.LAYERS``): keys, geometry kinds, applicability.
    demo_counts : mapping
        Facilities per layer in the demo city; the province keeps these
        proportions, scaled to ``facilities`` in all.
    seed : int
        Seed of every random draw.
    cell_m : float
        Lattice cell side in metres.
    facilities : int
        Facilities over all layers.
    """
    rng = np.random.default_rng(seed)
    cx, cy = (float(v) for v in to_metric(*CENTRE))
    b = float(np.sqrt(AREA_KM2 * 1e6 / (np.pi * ASPECT)))
    a = ASPECT * b
    xy = _lattice(cx, cy, a, b, cell_m)
    seats = _seats(cx, cy, a, b, rng)
    population, urban = _population(xy, seats, cell_m, rng)
    districts = _districts(seats, cx, cy, a, b, xy, population, urban, cell_m)
    frames = [_layer_facilities(layers[key], n, xy, population, urban, cell_m, rng)
              for key, n in _counts(layers, demo_counts, facilities).items()]
    table = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=f"EPSG:{WGS84_EPSG}")
    return Province(xy=xy, population=population, urban=urban, districts=districts, facilities=table,
                    cell_m=cell_m)


def _lattice(cx: float, cy: float, a: float, b: float, cell_m: float) -> np.ndarray:
    """Cell centres inside the ellipse, built row by row (the bounding box alone is twice as big)."""
    xs = cx - a + (np.arange(int(2 * a / cell_m)) + 0.5) * cell_m
    rows = []
    for y in cy - b + (np.arange(int(2 * b / cell_m)) + 0.5) * cell_m:
        inside = ((xs - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0
        rows.append(np.column_stack([xs[inside], np.full(int(inside.sum()), y)]))
    return np.concatenate(rows)


def _seats(cx: float, cy: float, a: float, b: float, rng: np.random.Generator) -> np.ndarray:
    """City seats: a jittered ring and a centre, all well inside the ellipse."""
    angles = np.linspace(0, 2 * np.pi, CITIES - 4, endpoint=False) + rng.uniform(0, 0.3)
    ring = np.column_stack([cx + 0.62 * a * np.cos(angles), cy + 0.62 * b * np.sin(angles)])
    inner = np.column_stack([cx + 0.25 * a * np.cos(angles[:4] + 0.8), cy + 0.25 * b * np.sin(angles[:4] + 0.8)])
    return np.concatenate([ring, inner]) + rng.normal(0, 8_000, (CITIES, 2))


def _population(xy: np.ndarray, seats: np.ndarray, cell_m: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """People per cell: a core around each seat (8-15 km) over a rural background; total :data:`POPULATION`."""
    weight = rng.gamma(1.5, 1.0, len(xy)).astype(np.float32)
    for seat in seats:
        spread = rng.uniform(8_000.0, 15_000.0)
        d2 = ((xy - seat) ** 2).sum(axis=1)
        weight += (rng.uniform(60.0, 140.0) * np.exp(-d2 / (2 * spread ** 2))).astype(np.float32)
    population = weight * (POPULATION / float(weight.sum()))
    urban = population >= URBAN_PER_KM2 * (cell_m / 1000.0) ** 2
    return population, urban


def _districts(seats: np.ndarray, cx: float, cy: float, a: float, b: float, xy: np.ndarray,
               population: np.ndarray, urban: np.ndarray, cell_m: float) -> gpd.GeoDataFrame:
    """The cities: Voronoi cells of the seats clipped to the ellipse, with their people, in WGS-84."""
    outline = affinity.scale(shapely.Point(cx, cy).buffer(1.0, 256), a, b)
    cells = shapely.voronoi_polygons(shapely.MultiPoint(seats), extend_to=outline.buffer(a))
    parts = [shapely.intersection(cell, outline) for cell in cells.geoms]
    owner = cKDTree(seats).query(xy)[1]
    order = [int(cKDTree(seats).query(np.array(p.representative_point().coords[0]))[1]) for p in parts]
    rows = []
    for part, k in zip(parts, order, strict=True):
        mine = owner == k
        lon, lat = (float(v) for v in from_metric(*seats[k]))
        rows.append({"adcode": f"37{k + 1:02d}00", "name_zh": f"示例市{k + 1}", "name_en": f"Sample city {k + 1}",
                     "population": int(population[mine].sum()),
                     "urban_population": int(population[mine & urban].sum()),
                     "rural_population": int(population[mine & ~urban].sum()),
                     "area_km2": float(mine.sum()) * (cell_m / 1000.0) ** 2, "seat_lon": lon, "seat_lat": lat,
                     "geometry": shapely.MultiPolygon([part]) if part.geom_type == "Polygon" else part})
    frame = gpd.GeoDataFrame(rows, geometry="geometry")
    frame["geometry"] = transform_geometry(frame.geometry.to_numpy(), from_metric)
    return frame.set_crs(f"EPSG:{WGS84_EPSG}").sort_values("adcode").reset_index(drop=True)


def _counts(layers: Mapping[str, Layer], demo_counts: Mapping[str, int], total: int) -> dict[str, int]:
    known = {k: demo_counts.get(k, 0) for k in layers}
    scale = total / max(sum(known.values()), 1)
    return {k: max(1, round(n * scale)) for k, n in known.items() if n}


def _layer_facilities(layer: Layer, n: int, xy: np.ndarray, population: np.ndarray, urban: np.ndarray,
                      cell_m: float, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` sites of one layer, placed by (rural, urban or all) population; polygons for polygon layers."""
    weight = population.astype(np.float64)
    if not layer.applies("urban"):
        weight[urban] = 0.0
    if not layer.applies("rural"):
        weight[~urban] = 0.0
    picked = rng.choice(len(xy), n, replace=False, p=weight / weight.sum())
    sites = xy[picked] + rng.uniform(-cell_m / 2, cell_m / 2, (n, 2))
    points = shapely.points(sites)
    geoms = shapely.buffer(points, 40.0, quad_segs=2) if layer.geometry_kind == "polygon" else points
    prefix = "".join(part[0] for part in layer.key.split("_")).upper()
    return pd.DataFrame({
        "layer": layer.key, "source_id": [f"SD-{prefix}-{i:06d}" for i in range(n)],
        "name": [f"示例{layer.name_zh}{i}" for i in range(n)],
        "capacity": rng.integers(20, 400, n) if layer.capacity_field else None,
        "geometry": transform_geometry(geoms, from_metric),
    })
