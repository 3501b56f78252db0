"""Benchmark: coverage of a city-sized lattice, ours against two baselines.

A script, not a test. Builds a 100 m lattice of about 457,000 cells over a
67 km x 68 km box in EPSG:4548 metres, with seeded random populations and the
demo's facility counts (2,500 service offices, 37 police stations, 73 parks,
about 170 car parks, 1,496 village clinics), then times in one run:

(a) ``covered_mask`` for all five layers;
(b) a bare ``cKDTree(fxy).query(xy)`` for the same layers (the floor);
(c) the "buffer + union" way: geopandas buffer, ``union_all``, ``sjoin``;
(d) ``greedy_max_cover`` for 10 sites over the lattice.

(a), (b) and (d): median of 5 runs after a warm-up, (a) and (b) taking turns
so that load from other processes falls on both; (c): median of
``--buffer-runs`` runs (it is slow). Prints a JSON object; ``--json PATH``
also writes it.

Run from the repository root: ``python bench/bench_coverage.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
from scipy.spatial import cKDTree

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from demo import build_demo_city  # noqa: E402
from etl.boundaries import read_districts  # noqa: E402
from geo.allocate import default_candidates, greedy_max_cover  # noqa: E402
from geo.coverage import covered_mask  # noqa: E402
from geo.crs import to_metric  # noqa: E402
from layers import get_layer  # noqa: E402

CELL_M = 100.0
COLS, ROWS = 670, 680          # 67 km x 68 km
ORIGIN = (470_000.0, 3_820_000.0)  # EPSG:4548 metres, around Zaozhuang
TOTAL_POPULATION = 3_860_000    # roughly Zaozhuang, census 2020
URBAN_PER_CELL = 1500.0 * (CELL_M / 1000.0) ** 2  # 1,500 people/km2 -> 15 per cell

#: layer -> (facility count, radius in metres: (urban, rural))
LAYERS: dict[str, tuple[int, tuple[float, float]]] = {
    "service_offices": (2500, (1000.0, 3000.0)),
    "police_stations": (37, (1500.0, 1500.0)),
    "parks": (73, (500.0, 500.0)),
    "parking": (170, (500.0, 500.0)),
    "village_clinics": (1496, (2500.0, 2500.0)),
}


# --------------------------------------------------------------------------
# synthetic city
# --------------------------------------------------------------------------

def make_city(seed: int) -> dict[str, Any]:
    """Lattice, populations, urban flags and facilities, all seeded."""
    rng = np.random.default_rng(seed)
    xs, ys = np.meshgrid(ORIGIN[0] + (np.arange(COLS) + 0.5) * CELL_M,
                         ORIGIN[1] + (np.arange(ROWS) + 0.5) * CELL_M)
    xy = np.column_stack([xs.ravel(), ys.ravel()])
    population = _population(xy, rng)
    urban = population >= URBAN_PER_CELL
    facilities = {key: _facilities(xy, population, urban, key, count, rng)
                  for key, (count, _) in LAYERS.items()}
    radius = {key: np.where(urban, r_urban, r_rural)
              for key, (_, (r_urban, r_rural)) in LAYERS.items()}
    return {"xy": xy, "population": population, "urban": urban,
            "facilities": facilities, "radius": radius}


_DEMO_KEYS = {"service_offices": "service_office", "police_stations": "police_station",
              "parks": "pocket_park", "parking": "parking", "village_clinics": "village_clinic"}


def demo_city(resolution_m: float = 100.0, scale: float = 1.0) -> dict[str, Any]:
    """The demo city's own grid and facilities (``demo``), in the same shape as :func:`make_city`.

    ``scale`` multiplies the facilities and the grid density, as ``flask etl demo --scale`` does.
    """
    city = build_demo_city(read_districts(), resolution_m=resolution_m, scale=scale)
    cells = city.cells
    xy = np.column_stack([cells["x_m"].to_numpy(), cells["y_m"].to_numpy()])
    urban = cells["urban"].to_numpy()
    facilities, radius = {}, {}
    for name, key in _DEMO_KEYS.items():
        part = city.facilities[city.facilities["layer"] == key].geometry.representative_point()
        fx, fy = to_metric(part.x.to_numpy(), part.y.to_numpy())
        facilities[name] = np.column_stack([fx, fy])
        t = get_layer(key).threshold
        radius[name] = np.where(urban, t.urban_m, t.rural_m)
    return {"xy": xy, "population": cells["population"].to_numpy().astype(float), "urban": urban,
            "facilities": facilities, "radius": radius}


def _population(xy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rural background plus a few dense district centres, scaled to the city total."""
    rural = rng.gamma(1.5, 2.0, len(xy))
    dense = np.zeros(len(xy))
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    for _ in range(8):
        centre = rng.uniform(lo + 5000, hi - 5000)
        spread = rng.uniform(1500.0, 4000.0)
        d2 = ((xy - centre) ** 2).sum(axis=1)
        dense += rng.uniform(80.0, 200.0) * np.exp(-d2 / (2 * spread**2))
    population = (rural + dense) * rng.uniform(0.5, 1.5, len(xy))
    population[rng.random(len(xy)) < 0.15] = 0.0  # fields, water, hills
    return population * TOTAL_POPULATION / population.sum()


def _facilities(xy: np.ndarray, population: np.ndarray, urban: np.ndarray, key: str,
                count: int, rng: np.random.Generator) -> np.ndarray:
    """Random points: weighted by population (clinics: rural population only)."""
    weight = np.where(urban, 0.0, population) if key == "village_clinics" else population
    rows = rng.choice(len(xy), count, replace=False, p=weight / weight.sum())
    return xy[rows] + rng.uniform(-CELL_M / 2, CELL_M / 2, (count, 2))


# --------------------------------------------------------------------------
# the three ways
# --------------------------------------------------------------------------

def ours(city: dict[str, Any]) -> dict[str, np.ndarray]:
    return {key: covered_mask(city["xy"], fxy, city["radius"][key])
            for key, fxy in city["facilities"].items()}


def bare_ckdtree(city: dict[str, Any], workers: int = 1) -> None:
    for fxy in city["facilities"].values():
        cKDTree(fxy).query(city["xy"], workers=workers)


def buffer_union(city: dict[str, Any], cells) -> dict[str, np.ndarray]:
    """Buffer each facility, dissolve, spatial-join the cell centres."""
    out = {}
    for key, fxy in city["facilities"].items():
        _, (r_urban, r_rural) = LAYERS[key]
        mask = np.zeros(len(cells), dtype=bool)
        for radius, which in _radius_classes(city["urban"], r_urban, r_rural):
            points = gpd.GeoSeries(gpd.points_from_xy(fxy[:, 0], fxy[:, 1]), crs=cells.crs)
            zone = gpd.GeoDataFrame(geometry=[points.buffer(radius).union_all()], crs=cells.crs)
            hit = gpd.sjoin(cells[which], zone, how="inner", predicate="intersects")
            mask[np.asarray(hit.index)] = True
        out[key] = mask
    return out


def _radius_classes(urban: np.ndarray, r_urban: float, r_rural: float):
    if r_urban == r_rural:
        return [(r_urban, np.ones(len(urban), dtype=bool))]
    return [(r_urban, urban), (r_rural, ~urban)]


def greedy_sites(city: dict[str, Any], layer: str, max_candidates: int,
                 covered: np.ndarray) -> list[dict[str, Any]]:
    candidates, _ = default_candidates(city["xy"], ~covered, max_candidates)
    return greedy_max_cover(city["xy"], city["population"], candidates,
                            city["radius"][layer], 10, already_covered=covered)


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------

def median_seconds(func: Callable[[], Any], runs: int, warmup: bool = True) -> float:
    if warmup:
        func()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(funcs: dict[str, Callable[[], Any]], runs: int) -> dict[str, float]:
    """Median seconds of each function, run in turn each round after a warm-up.

    Taking turns spreads any load from other processes over all contenders.
    """
    for func in funcs.values():
        func()
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(runs):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def run(seed: int, runs: int, buffer_runs: int, max_candidates: int, grid: str = "demo") -> dict[str, Any]:
    city = demo_city() if grid == "demo" else make_city(seed)
    xy = city["xy"]
    cells = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs="EPSG:4548")
    masks = ours(city)
    buffered = buffer_union(city, cells) if buffer_runs else None

    result: dict[str, Any] = {
        "grid": "demo city, 100 m (demo generator)" if grid == "demo" else "synthetic 100 m lattice over a box",
        "cells": int(len(xy)), "population": float(city["population"].sum()),
        "urban_cells": int(city["urban"].sum()),
        "facilities": {k: int(len(v)) for k, v in city["facilities"].items()},
        "percent_covered": {k: round(100.0 * float(city["population"][m].sum())
                                     / float(city["population"].sum()), 2)
                            for k, m in masks.items()},
        "seconds": {}, "ratios": {}, "runs": runs, "buffer_runs": buffer_runs,
        "python": platform.python_version(), "cpus": os.cpu_count(),
    }
    sec = result["seconds"]
    sec.update(interleaved_medians({
        "ours_covered_mask_5_layers": lambda: ours(city),
        "ckdtree_query_5_layers": lambda: bare_ckdtree(city),
        "ckdtree_query_5_layers_all_workers": lambda: bare_ckdtree(city, workers=-1),
    }, runs))
    if buffer_runs:
        sec["buffer_union_sjoin_5_layers"] = median_seconds(
            lambda: buffer_union(city, cells), buffer_runs, warmup=False)
        result["buffer_agreement_percent"] = {
            k: round(100.0 * float((masks[k] == buffered[k]).mean()), 4) for k in masks}

    for layer in ("parks", "police_stations"):
        picks: list[dict[str, Any]] = []
        sec[f"greedy_10_sites_{layer}"] = median_seconds(
            lambda picks=picks, layer=layer: picks.__setitem__(slice(None), greedy_sites(
                city, layer, max_candidates, masks[layer])), runs)
        result[f"greedy_{layer}"] = {
            "candidates": int(min(max_candidates, int((~masks[layer]).sum()))),
            "radius_m": LAYERS[layer][1][0],
            "percent_before": result["percent_covered"][layer],
            "percent_after": round(picks[-1]["cumulative_percent"], 2) if picks else None,
            "gains": [round(p["marginal_gain"]) for p in picks]}

    ratios = result["ratios"]
    ratios["ours_over_ckdtree"] = sec["ours_covered_mask_5_layers"] / sec["ckdtree_query_5_layers"]
    ratios["ours_over_ckdtree_all_workers"] = (sec["ours_covered_mask_5_layers"]
                                               / sec["ckdtree_query_5_layers_all_workers"])
    if buffer_runs:
        ratios["buffer_over_ours"] = (sec["buffer_union_sjoin_5_layers"]
                                      / sec["ours_covered_mask_5_layers"])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="also write the result here")
    parser.add_argument("--seed", type=int, default=20220630)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--buffer-runs", type=int, default=2,
                        help="runs of the slow buffer + union way (0 skips it)")
    parser.add_argument("--max-candidates", type=int, default=30_000)
    parser.add_argument("--grid", choices=["demo", "box"], default="demo",
                        help="the demo city's 100 m grid, or a random lattice over a 67 x 68 km box")
    args = parser.parse_args(argv)
    result = run(args.seed, args.runs, args.buffer_runs, args.max_candidates, args.grid)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
