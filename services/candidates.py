"""Candidate facilities near a position, made complete as far as the measure needs: nearest's rounds.

"Filter and refine": the first candidates come with nearest's one statement
(:func:`db.facilities.nearest_candidates`); each layer's list is ranked by
straight metres and is complete up to a known straight distance. A measure
says how far it must be complete (the k-th straight distance; along the
roads, the k-th road distance, since no road route is shorter than the
straight line), and :func:`widen` reads every facility within that far in one
more round trip. Positions are WGS-84 degrees, distances metres.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geo.nearest import geodesic_distance_m, planar_bound_m, planar_radius_deg
from services.routing import RoadDistances

#: A list is complete far enough when it holds every facility this much beyond the k-th by road.
ROAD_MARGIN = 1.001

Row = dict[str, Any]
#: Reads every active facility within a planar radius (degrees; None: the whole layer) per layer of a WGS-84
#: position: :func:`db.facilities.candidates_within` on a connection, or the held facilities' ``within``.
ReadWithin = Callable[[float, float, dict[str, float | None]], list[Row]]


@dataclass
class LayerCandidates:
    """One layer's candidates (each with ``straight_m``) and how far (metres) they surely hold every facility."""

    rows: list[Row]
    complete_m: float


def by_layer(rows: list[Row], layers: Sequence[str], lon: float, lat: float, m: int) -> dict[str, LayerCandidates]:
    """Per layer its candidates ranked by straight metres, complete up to what the farthest's planar
    distance guarantees (everything when fewer than ``m`` came back)."""
    _straight(rows, lon, lat)
    grouped: dict[str, list[Row]] = {key: [] for key in layers}
    for row in rows:
        grouped[row["layer"]].append(row)
    pools = {}
    for key, mine in grouped.items():
        far = max((float(r["deg"]) for r in mine), default=0.0)
        complete = math.inf if len(mine) < m else planar_bound_m(far, lat)
        pools[key] = LayerCandidates(_ranked(mine), complete)
    return pools


def _straight(rows: list[Row], lon: float, lat: float) -> None:
    """Each row's ``straight_m``: geodesic metres to its point (one vectorised call), or the area's ``area_m``."""
    points = [r for r in rows if r["area_m"] is None]
    if points:
        dist = np.atleast_1d(geodesic_distance_m(lon, lat, np.array([r["lon"] for r in points], dtype=float),
                                                 np.array([r["lat"] for r in points], dtype=float)))
        for row, d in zip(points, dist.tolist(), strict=True):
            row["straight_m"] = row["distance_m"] = d
    for row in rows:
        if row["area_m"] is not None:
            row["straight_m"] = row["distance_m"] = float(row["area_m"])


def _ranked(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (r["straight_m"], r["id"]))


def widen(read_within: ReadWithin, pools: dict[str, LayerCandidates], wanted: dict[str, float], lon: float,
          lat: float) -> None:
    """Read every facility within ``wanted`` straight metres of each layer (inf: the whole layer)."""
    radii = {key: (planar_radius_deg(d, lat) if math.isfinite(d) else None) for key, d in wanted.items()}
    more = read_within(lon, lat, radii)
    _straight(more, lon, lat)
    for key, d in wanted.items():
        pool = pools[key]
        seen = {r["id"] for r in pool.rows}
        pool.rows = _ranked(pool.rows + [r for r in more if r["layer"] == key and r["id"] not in seen])
        pool.complete_m = d if radii[key] is not None else math.inf


def settle_straight(read_within: ReadWithin, pools: dict[str, LayerCandidates], lon: float, lat: float, k: int) -> int:
    """Make each layer's list complete up to its k-th straight distance; the extra round trips it took."""
    wanted = {}
    for key, pool in pools.items():
        kth = pool.rows[k - 1]["straight_m"] if len(pool.rows) >= k else math.inf
        if kth > pool.complete_m:
            wanted[key] = kth
    if wanted:
        widen(read_within, pools, wanted, lon, lat)
    return 1 if wanted else 0


def settle_by_road(read_within: ReadWithin, pools: dict[str, LayerCandidates], road: RoadDistances, lon: float,
                   lat: float, k: int) -> int:
    """Measure by road until every layer's list is complete beyond its k-th by road (the stop rule), searching
    further while fewer than ``k`` are reached; the extra round trips it took."""
    kth_straight = [p.rows[min(k, len(p.rows)) - 1]["straight_m"] for p in pools.values() if p.rows]
    road.start(max(kth_straight, default=0.0))
    trips = 0
    while True:
        road.measure([r for pool in pools.values() for r in pool.rows])
        wanted, further = {}, False
        for key, pool in pools.items():
            reached = sorted(r["distance_m"] for r in pool.rows if math.isfinite(r["distance_m"]))
            if len(reached) >= k:
                need = reached[k - 1] * ROAD_MARGIN
            else:  # fewer than k within the limit: read all within it, then search further if more may exist
                need = road.limit_m
                more = len(reached) < len(pool.rows) or math.isfinite(pool.complete_m)
                further = further or (pool.complete_m >= need and more and not road.exhaustive)
            if need > pool.complete_m:
                wanted[key] = need
        if further:  # search further first: the layers short of k then read up to the new limit
            road.widen()
        elif wanted:
            widen(read_within, pools, wanted, lon, lat)
            trips += 1
        else:
            return trips


def nearest_by_road(rows: list[Row], k: int) -> list[Row]:
    """The ``k`` rows nearest by road (``distance_m``), those the roads do not reach left out."""
    reached = [r for r in rows if math.isfinite(r["distance_m"])]
    return sorted(reached, key=lambda r: (r["distance_m"], r["id"]))[:k]
