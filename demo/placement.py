"""The placement rules a layer's ``demo.placement`` names, one function each.

A rule takes the placement context, a layer record and the scale, and
returns one :class:`Placed` per demo kind of the layer: sites in EPSG:4548
metres with their districts, opening dates, capacities and attributes. Counts,
capacity totals and flags come from the layer's :class:`layers.model.DemoKind`
records, multiplied by the scale; nothing here names a layer.

Each kind draws from its own random streams, named after the layer and kind
(:func:`stream`), so adding a layer or a kind moves nothing else.

Rules:

* ``offices``: split by people over districts (fewer per head where
  :data:`OFFICE_FACTOR` says so); the urban share in urban cells, the rest
  next to the larger villages (``level`` community or village).
* ``urban``: urban cells by people, split by urban people.
* ``parks``: non-overlapping polygons in urban cells; kinds marked large in
  :data:`PARK_SHAPES` are placed first, at least one per district.
* ``parking``: urban cells by people; each kind's lots share its capacity total exactly.
* ``villages``: next to villages, the larger first (the rest are gaps).
* ``towns``: cells near the secondary towns (away from the seat), by people.
* ``rural``: rural cells by people (rural people live around the villages).
* ``seats``: urban cells around the district seats, by people.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from demo.draws import allocate, largest_remainder
from demo.parks import ShapeMaker, park_polygons, park_shape, pocket_shape
from demo.population import TOWN_FROM_SEAT_M
from demo.sites import Context, choose_villages, near, sites_in_cells, urban_sites, village_sites
from layers.model import DemoKind, Layer

H1_2022 = (dt.date(2022, 1, 1), dt.date(2022, 6, 30))
_END_2021 = dt.date(2021, 12, 31)

#: Service points per head relative to the city, by district (``offices``). 山亭区 is
#: mountainous and rural and 台儿庄区 lags too, so the demo shows real gaps.
OFFICE_FACTOR = {"370406": 0.45, "370405": 0.75}
#: How far from its village a village-level site stands (metres), by rule.
OFFICE_VILLAGE_M = 200.0
CLINIC_VILLAGE_M = 250.0
#: Park shapes by kind (``parks``); a kind not listed is a pocket park. Large parks go first.
PARK_SHAPES: dict[str, ShapeMaker] = {"park": park_shape}
#: Lot sizes (spaces) a capacity total is split into (``parking``).
PARKING_CAPACITY_RANGE = (10, 200)
#: ``towns``: cells within this distance of a secondary town centre (metres).
TOWN_REACH_M = 3000.0
#: ``seats``: cells within this distance of the district seat (metres).
SEAT_REACH_M = 5000.0
#: Attributes every facility of a layer carries in the demo (data, by layer key).
EXTRA_ATTRS: dict[str, dict[str, Any]] = {"village_clinic": {"smart_followup": True}}

#: Kinds that opened before 2022, by rule: (earliest opening date, share that opened in H1 2022
#: instead when the kind opened "mostly_before_2022").
OPENED_SINCE: dict[str, tuple[dt.date, float]] = {
    "offices": (dt.date(2016, 1, 1), 0.08), "parking": (dt.date(2019, 1, 1), 0.2),
    "villages": (dt.date(1995, 1, 1), 0.03), "parks": (dt.date(1985, 1, 1), 0.0)}
_DEFAULT_SINCE = (dt.date(2005, 1, 1), 0.1)


@dataclass
class Placed:
    """One demo kind's sites: geometries in EPSG:4548 metres and what goes with each."""

    kind: str
    geom: np.ndarray  # shapely geometries, metres
    district: np.ndarray  # district indices
    opened: list[dt.date]
    capacity: list[int] | None = None
    attrs: list[dict[str, Any]] | None = None


Rule = Callable[[Context, Layer, float], list[Placed]]


def stream(layer: Layer, kind: str) -> str:
    """The name of a kind's random stream: the layer key for its only kind, else ``layer-kind``."""
    return layer.key if kind == layer.key else f"{layer.key}-{kind}"


def scaled(count: int, scale: float) -> int:
    """A count at ``scale`` (rounded half to even, as Python rounds)."""
    return round(count * scale)


# ------------------------------------------------------------------ dates and flags
def dates_between(gen: np.random.Generator, n: int, start: dt.date, end: dt.date) -> list[dt.date]:
    """``n`` dates drawn uniformly from ``start`` to ``end`` inclusive."""
    days = gen.integers(0, (end - start).days + 1, n)
    return [start + dt.timedelta(days=int(k)) for k in days]


def opened_dates(gen: np.random.Generator, spec: DemoKind, n: int, placement: str) -> list[dt.date]:
    """Opening dates for ``n`` sites of a kind, by its ``opened`` rule (see :data:`OPENED_SINCE`)."""
    if spec.opened == "h1_2022":
        return dates_between(gen, n, *H1_2022)
    since, share_2022 = OPENED_SINCE.get(placement, _DEFAULT_SINCE)
    if spec.opened == "before_2022":
        return dates_between(gen, n, since, _END_2021)
    before = dates_between(gen, n, since, _END_2021)
    recent = dates_between(gen, n, *H1_2022)
    late = gen.random(n) < share_2022
    return [r if is_late else b for b, r, is_late in zip(before, recent, late, strict=True)]


def flagged(gen: np.random.Generator, spec: DemoKind, n: int, scale: float) -> dict[str, np.ndarray]:
    """Per flag of the kind, which of the ``n`` sites carry it (exactly the scaled count, at random)."""
    out = {}
    for flag, count in spec.flags.items():
        mask = np.zeros(n, dtype=bool)
        mask[gen.choice(n, size=min(scaled(count, scale), n), replace=False)] = True
        out[flag] = mask
    return out


def _attrs(layer: Layer, flags: dict[str, np.ndarray], n: int,
           extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]] | None:
    base = EXTRA_ATTRS.get(layer.key, {})
    if not base and not flags and extra is None:
        return None
    return [{**base, **{f: bool(m[i]) for f, m in flags.items()}, **(extra[i] if extra else {})}
            for i in range(n)]


# ------------------------------------------------------------------ the rules
def offices(ctx: Context, layer: Layer, scale: float) -> list[Placed]:
    """By people per district (:data:`OFFICE_FACTOR`): the urban share in urban cells, the rest at villages."""
    out = []
    pop = np.array([d.population for d in ctx.dists], dtype=float)
    factor = np.array([OFFICE_FACTOR.get(d.adcode, 1.0) for d in ctx.dists])
    for kind, spec in layer.demo.kinds.items():
        name, n = stream(layer, kind), scaled(spec.count, scale)
        per_district = allocate(n, pop * factor, minimum=1)
        urban_n = np.array([round(k * d.urban_population / d.population)
                            for k, d in zip(per_district, ctx.dists, strict=True)], dtype=np.int64)
        ux, uy, ud = urban_sites(ctx, name, urban_n)
        vx, vy, vd = village_sites(ctx, ctx.rng(name, "villages"), per_district - urban_n, OFFICE_VILLAGE_M)
        opened = opened_dates(ctx.rng(name, "dates"), spec, n, "offices")
        levels = [{"level": "community"}] * len(ux) + [{"level": "village"}] * len(vx)
        flags = flagged(ctx.rng(name, "flags"), spec, n, scale)
        out.append(Placed(kind, shapely.points(np.concatenate([ux, vx]), np.concatenate([uy, vy])),
                          np.concatenate([ud, vd]).astype(np.intp), opened, attrs=_attrs(layer, flags, n, levels)))
    return out


def urban(ctx: Context, layer: Layer, scale: float) -> list[Placed]:
    """Urban cells by people, split over districts by urban people."""
    out = []
    for kind, spec in layer.demo.kinds.items():
        name = stream(layer, kind)
        x, y, d = urban_sites(ctx, name, allocate(scaled(spec.count, scale), ctx.urban_weights()))
        opened = opened_dates(ctx.rng(name, "dates"), spec, len(x), "urban")
        flags = flagged(ctx.rng(name, "flags"), spec, len(x), scale)
        out.append(Placed(kind, shapely.points(x, y), d, opened, attrs=_attrs(layer, flags, len(x))))
    return out


def parks(ctx: Context, layer: Layer, scale: float) -> list[Placed]:
    """Polygons in urban cells, never overlapping; large kinds (:data:`PARK_SHAPES`) first, one per district."""
    gen = ctx.rng(layer.key, "shapes")
    taken: list[shapely.Geometry] = []
    kinds = layer.demo.kinds
    polygons = {}
    for kind in sorted(kinds, key=lambda k: k not in PARK_SHAPES):
        large = kind in PARK_SHAPES
        per_district = allocate(scaled(kinds[kind].count, scale), ctx.urban_weights(), 1 if large else 0)
        polygons[kind] = park_polygons(ctx, gen, kind, per_district, PARK_SHAPES.get(kind, pocket_shape), taken)
    dates = ctx.rng(layer.key, "dates")
    out = []
    for kind, spec in kinds.items():
        geom, d = polygons[kind]
        opened = opened_dates(dates, spec, len(geom), "parks")
        flags = flagged(ctx.rng(stream(layer, kind), "flags"), spec, len(geom), scale)
        out.append(Placed(kind, geom, d, opened, attrs=_attrs(layer, flags, len(geom))))
    return out


def capacities(gen: np.random.Generator, total: int, lots: int) -> np.ndarray:
    """About ``lots`` capacities in :data:`PARKING_CAPACITY_RANGE` summing exactly to ``total``.

    The number of lots is moved just enough for the total to fit the range.
    """
    lo, hi = PARKING_CAPACITY_RANGE
    lots = int(min(max(lots, math.ceil(total / hi), 1), max(total // lo, 1)))
    cap = lo + largest_remainder(gen.lognormal(0.0, 0.7, lots), total - lo * lots)
    for _ in range(100):  # clip at hi and hand the overflow to lots with room, by size
        over = int(np.maximum(cap - hi, 0).sum())
        if over == 0:
            break
        cap = np.minimum(cap, hi)
        room = hi - cap
        cap += np.minimum(room, largest_remainder(room.astype(float), over))
    return cap


def parking(ctx: Context, layer: Layer, scale: float) -> list[Placed]:
    """Urban cells by people; a kind's lots share its capacity total (× scale) exactly."""
    out = []
    for kind, spec in layer.demo.kinds.items():
        gen = ctx.rng(layer.key, kind)
        cap = (capacities(gen, scaled(spec.capacity, scale), scaled(spec.count, scale))
               if spec.capacity is not None else None)
        n = len(cap) if cap is not None else scaled(spec.count, scale)
        x, y, d = urban_sites(ctx, f"{layer.key}-{kind}", allocate(n, ctx.urban_weights()))
        opened = opened_dates(gen, spec, n, "parking")
        capacity = [int(c) for c in gen.permutation(cap)] if cap is not None else None
        flags = flagged(ctx.rng(stream(layer, kind), "flags"), spec, n, scale)
        out.append(Placed(kind, shapely.points(x, y), d, opened, capacity, _attrs(layer, flags, n)))
    return out


def villages(ctx: Context, layer: Layer, scale: float) -> list[Placed]:
    """Next to villages, the larger villages first (by people, at random); the rest are gaps."""
    v = ctx.villages
    out = []
    for kind, spec in layer.demo.kinds.items():
        gen, n = ctx.rng(stream(layer, kind)), scaled(spec.count, scale)
        chosen = np.sort(choose_villages(gen, v["population"].to_numpy(dtype=float), n))
        district = v["district"].to_numpy()[chosen].astype(np.intp)
        x, y = near(ctx, gen, v["x"].to_numpy()[chosen], v["y"].to_numpy()[chosen], district, CLINIC_VILLAGE_M)
        flags = flagged(gen, spec, n, scale)
        homes = [{"village_id": vid} for vid in v["village_id"].to_numpy()[chosen]]
        opened = opened_dates(gen, spec, n, "villages")
        out.append(Placed(kind, shapely.points(x, y), district, opened, attrs=_attrs(layer, flags, n, homes)))
    return out


def _by_weight(ctx: Context, layer: Layer, scale: float, weight: np.ndarray, placement: str) -> list[Placed]:
    """Cells drawn by ``weight``, each district's share by its total weight (by people when all are 0)."""
    if not (weight > 0).any():
        weight = ctx.cpop
    out = []
    for kind, spec in layer.demo.kinds.items():
        name = stream(layer, kind)
        per_district = allocate(scaled(spec.count, scale), ctx.district_sums(weight))
        x, y, d = sites_in_cells(ctx, name, per_district, weight)
        opened = opened_dates(ctx.rng(name, "dates"), spec, len(x), placement)
        flags = flagged(ctx.rng(name, "flags"), spec, len(x), scale)
        out.append(Placed(kind, shapely.points(x, y), d, opened, attrs=_attrs(layer, flags, len(x))))
    return out


def towns(ctx: Context, layer: Layer, scale: float) -> list[Placed]:
    """Cells within :data:`TOWN_REACH_M` of a secondary town, by people (urban cells away from the seat
    when no district has a town)."""
    weight = ctx.cpop * (ctx.town_distance() <= TOWN_REACH_M)
    if not (weight > 0).any():
        weight = ctx.cpop * ctx.curban * (ctx.seat_distance() >= TOWN_FROM_SEAT_M)
    return _by_weight(ctx, layer, scale, weight, "towns")


def rural(ctx: Context, layer: Layer, scale: float) -> list[Placed]:
    """Rural cells by people: the rural people live around the villages, so sites sit near them."""
    return _by_weight(ctx, layer, scale, ctx.cpop * ~ctx.curban, "rural")


def seats(ctx: Context, layer: Layer, scale: float) -> list[Placed]:
    """Urban cells within :data:`SEAT_REACH_M` of the district seats, by people."""
    return _by_weight(ctx, layer, scale, ctx.cpop * ctx.curban * (ctx.seat_distance() <= SEAT_REACH_M), "seats")


#: Every placement rule by name (the names :data:`layers.model.DEMO_PLACEMENTS` lists).
RULES: dict[str, Rule] = {"offices": offices, "urban": urban, "parks": parks, "parking": parking,
                          "villages": villages, "towns": towns, "rural": rural, "seats": seats}
