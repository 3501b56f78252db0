"""Nearest without a query: every active facility held in memory by each serving process.

A resident's nearest answer needs the facilities near one position, the
district there and the road network's state. Read per request, that is a
database round trip (the KNN statement of :mod:`db.facilities`) that costs
more than the rest of the request. Held in memory, the same questions are
answered by two indexes: every layer at once in the scaled plane
(:class:`geo.planar_index.LayeredIndex`), whose sure bound on the ground
distance (:func:`geo.nearest.scaled_bound_slope_m`) lets a few first
candidates settle most answers (:meth:`Held.nearest_straight`,
:meth:`Held.pools`); and per layer the planar order PostGIS ``<->`` gives
(:class:`geo.planar_index.PlanarIndex`), on which nearest's exact "filter and
refine" rounds (:mod:`services.candidates`) read more when a layer's first
candidates may not hold its answer.

What is held is one consistent read (:func:`db.held.read_held`), keyed on
the data versions it was read at. It is trusted only while nothing has
changed:

* every change to facilities, districts, the grid, roads or zones bumps a
  data version, which sends a notice as it commits (migration 0013); the process listens on a
  connection of its own (:class:`db.notify.ChangeListener`), and the next
  request after a notice reads everything again;
* a notice reaches the process a little after the COMMIT returns to the
  writer (microseconds when idle, milliseconds under load): an answer may
  miss a change committed by another process that short a time before the
  request. A commit made in this same process (an editor's change through
  this worker, then their next request) is not left to the notice: the next
  request compares versions first (one small query), so a writer always
  sees their own change;
* at most every :data:`RECHECK_S` seconds a request also compares the held
  versions with the database's (one small query), which catches what a
  notice cannot (a restore in place);
* while the listener is down, or another thread is reading, or more than
  :data:`MAX_HELD_FACILITIES` facilities are active, nothing is held and
  nearest asks the database as before.
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg2
import shapely
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from db import held as db_held
from db.notify import ChangeListener
from geo.nearest import SCALED_REACH_DEG, scaled_bound_m
from geo.planar_index import LayeredIndex, PlanarIndex
from services.candidates import LayerCandidates

#: Nearest in a straight line first takes, per layer, the k nearest in the scaled plane and this many more.
FIRST_EXTRA = 4
#: Along the roads, the first candidates per layer are k and this many more (a layer's list is widened
#: in memory when the k-th by road lies beyond what they surely hold).
FIRST_EXTRA_BY_ROAD = 8
#: Above this many active facilities nothing is held (each process would hold them all): nearest queries.
MAX_HELD_FACILITIES = 200_000
#: How often (seconds) a request compares the held data versions with the database's.
RECHECK_S = 1.0
#: After the listener is lost, how long (seconds) before a request tries to listen again.
RELISTEN_S = 1.0

Row = dict[str, Any]
_FIELDS = db_held.FACILITY_FIELDS[:-1]  # without area_wkb

#: Commits made by any engine of this process (counted as they are asked for).
_commits = [0]


@event.listens_for(Engine, "commit")
def _count_commit(conn: Connection) -> None:
    _commits[0] += 1


@dataclass(frozen=True)
class HeldLayer:
    """One layer's facilities in planar order (``index``): its item ``i`` is held facility ``offset + i``."""

    index: PlanarIndex
    offset: int


@dataclass(frozen=True)
class Held:
    """What one process holds: see the module's note. ``layers`` is None when too many facilities are active.

    ``facilities`` are the rows (the fields of :data:`db.held.FACILITY_FIELDS`
    without the area, and the district's names), layer by layer; ``ids``
    their ids and ``every`` an index over all of them, in the same order, in
    which each layer is the group ``groups[key]``.
    """

    versions: tuple[Any, ...]
    layers: dict[str, HeldLayer] | None
    facilities: list[Row]
    ids: list[int]
    every: LayeredIndex
    groups: dict[str, int]
    districts: list[tuple[str, str, str]]
    district_areas: np.ndarray
    network_edges: int
    network_synthetic: bool

    def district_at(self, lon: float, lat: float) -> Row | None:
        """The district (adcode, names) covering a WGS-84 position, or None outside them all."""
        if not len(self.district_areas):
            return None
        inside = np.flatnonzero(shapely.intersects_xy(self.district_areas, lon, lat))  # an area and a position: covers
        if not len(inside):
            return None
        adcode, zh, en = self.districts[int(inside[0])]
        return {"adcode": adcode, "name_zh": zh, "name_en": en}

    def pools(self, layers: Sequence[str], lon: float, lat: float, m: int) -> dict[str, LayerCandidates]:
        """Each layer's ``m`` nearest in the scaled plane with their ``straight_m``, ranked, and how far (metres)
        they surely hold every facility of the layer (:func:`geo.nearest.scaled_bound_m`): the first
        candidates of nearest's rounds (:mod:`services.candidates`), as :func:`services.candidates.by_layer`
        makes them from the database's."""
        present = [key for key in layers if key in self.groups]
        every, ids = self.every, self.ids
        slope = every.slope_m(lon, lat)
        found, beyond = every.first_candidates(lon, lat, [self.groups[key] for key in present], m)
        metres = iter(every.ground_m(lon, lat, [item for c in found for _, item in c]))
        out = {key: LayerCandidates([], math.inf) for key in layers}
        for key, c, far in zip(present, found, beyond, strict=True):
            ranked = sorted((next(metres), ids[item], item) for _, item in c)
            rows = [self._measured(item, d) for d, _, item in ranked]
            out[key] = LayerCandidates(rows, scaled_bound_m(far, slope) if math.isfinite(far) else math.inf)
        return out

    def within(self, lon: float, lat: float, radii: dict[str, float | None]) -> list[Row]:
        """What :func:`db.facilities.candidates_within` reads, from memory."""
        rows: list[Row] = []
        for key, radius in radii.items():
            rows.extend(self._rows(key, lon, lat, *self._layer(key).index.within(lon, lat, radius)))
        return rows

    def nearest_straight(self, layers: Sequence[str], lon: float, lat: float, k: int) -> dict[str, list[Row] | None]:
        """Each layer's ``k`` nearest in a straight line, from its first candidates (None for a layer whose
        first candidates may not hold them).

        The same answer as nearest's rounds (:func:`services.candidates.settle_straight`),
        worked out for every layer at once from its ``k +``
        :data:`FIRST_EXTRA` nearest in the scaled plane
        (:class:`geo.planar_index.LayeredIndex`), with a row made only for
        each answer. Each row has ``straight_m`` and ``distance_m`` (geodesic
        metres, to an area's nearest point). The ground distance is measured
        first to each layer's ``k`` nearest in the scaled plane, then to those
        others whose scaled distance does not put them surely beyond the
        farthest of these (:func:`geo.nearest.scaled_bound_m`). A layer's list
        is None when its candidates are not surely complete up to its ``k``-th
        (the rounds then read more for that layer).
        """
        out: dict[str, list[Row] | None] = {key: [] for key in layers}
        present = [key for key in layers if key in self.groups]
        every, ids = self.every, self.ids
        slope = every.slope_m(lon, lat)
        found, beyond = every.first_candidates(lon, lat, [self.groups[key] for key in present], k + FIRST_EXTRA)
        near = iter(every.ground_m(lon, lat, [item for c in found for _, item in c[:k]]))
        # per layer: (metres, id, item) of the first k, then of the others that may be as near
        measured = [[(next(near), ids[item], item) for _, item in c[:k]] for c in found]
        maybe = [(row, item) for row, (c, mine) in enumerate(zip(found, measured, strict=True))
                 if len(mine) == k and len(c) > k for item in _maybe_nearer(c[k:], max(mine)[0], slope)]
        if maybe:
            for (row, item), metres in zip(maybe, every.ground_m(lon, lat, [item for _, item in maybe]), strict=True):
                measured[row].append((metres, ids[item], item))
        for key, mine, far in zip(present, measured, beyond, strict=True):
            mine.sort()
            if len(mine) >= k and mine[k - 1][0] > scaled_bound_m(far, slope):
                out[key] = None  # not surely complete up to the k-th
                continue
            out[key] = [self._measured(item, d) for d, _, item in mine[:k]]
        return out

    def _measured(self, item: int, metres: float) -> Row:
        """Held facility ``item``'s row with its straight metres (``area_m`` too for an area)."""
        return {**self.facilities[item], "area_m": metres if self.every.is_area(item) else None,
                "straight_m": metres, "distance_m": metres}

    def _layer(self, key: str) -> HeldLayer:
        assert self.layers is not None
        return self.layers.get(key) or _EMPTY

    def _rows(self, key: str, lon: float, lat: float, idx: np.ndarray, deg: np.ndarray) -> list[Row]:
        item = self._layer(key).offset + idx
        area_m: list[float | None] = [None] * len(idx)
        areas = [j for j, i in enumerate(item.tolist()) if self.every.is_area(i)]
        if areas:
            for j, d in zip(areas, self.every.ground_m(lon, lat, item[areas].tolist()), strict=True):
                area_m[j] = d
        facilities = self.facilities
        return [{**facilities[i], "deg": d, "area_m": a}
                for i, d, a in zip(item.tolist(), deg.tolist(), area_m, strict=True)]


def _maybe_nearer(rest: list[tuple[float, int]], metres: float, slope: float) -> list[int]:
    """The items of ``rest`` (scaled degrees, item) that the scaled bound does not put beyond ``metres``."""
    if scaled_bound_m(SCALED_REACH_DEG, slope) <= metres:  # the bound reaches no farther: none is surely beyond
        return [item for _, item in rest]
    reach = metres / slope  # the bound is slope × degrees up to its reach
    return [item for d, item in rest if d <= reach]


def _areas(rows: list[tuple[Any, ...]]) -> np.ndarray:
    return np.array([None if r[-1] is None else shapely.from_wkb(r[-1]) for r in rows], dtype=object)


def _positions(rows: list[tuple[Any, ...]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([r[10] for r in rows], dtype=float), np.array([r[11] for r in rows], dtype=float)


_EMPTY = HeldLayer(PlanarIndex(np.empty(0), np.empty(0), np.empty(0, dtype=object)), 0)


def held_from(read: db_held.HeldRead) -> Held:
    """Build what a process holds from one read (the indexes over each layer and over all of them)."""
    areas = shapely.from_wkb([wkb for *_, wkb in read.districts]) if read.districts else np.empty(0, dtype=object)
    if len(areas):
        shapely.prepare(areas)
    districts = [(adcode, zh, en) for adcode, zh, en, _ in read.districts]
    names = {adcode: (zh, en) for adcode, zh, en in districts}
    rows = read.facilities or []
    facilities = [dict(zip(_FIELDS, r[:-1], strict=True)) for r in rows]
    for row in facilities:
        row["district_zh"], row["district_en"] = names.get(row["district_adcode"], (None, None))
    groups = {key: i for i, key in enumerate(dict.fromkeys(r[1] for r in rows))}
    lons, lats = _positions(rows)
    shapes = _areas(rows)
    every = LayeredIndex(lons, lats, shapes, np.array([groups[r[1]] for r in rows], dtype=np.int64), len(groups))
    layers = None if read.facilities is None else _layers(rows, lons, lats, shapes)
    return Held(read.versions, layers, facilities, [r[0] for r in rows], every, groups,
                districts, areas, read.network_edges, read.network_synthetic)


def _layers(rows: list[tuple[Any, ...]], lons: np.ndarray, lats: np.ndarray,
            shapes: np.ndarray) -> dict[str, HeldLayer]:
    """Each layer's index; ``rows`` come layer by layer (the read orders them so)."""
    out: dict[str, HeldLayer] = {}
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i][1] != rows[start][1]:
            out[rows[start][1]] = HeldLayer(PlanarIndex(lons[start:i], lats[start:i], shapes[start:i]), start)
            start = i
    return out


class _Holder:
    """One process's held read of one database, its listener and when to check them.

    ``generation`` counts the notices seen: a read that started before a
    notice is used for the request that made it but not kept.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.reading = threading.Lock()  # one read at a time
        self.check = threading.Lock()  # a notice, the generation and what is held change together
        self.held: Held | None = None
        self.generation = 0
        self.commits_seen = 0
        self.listener: ChangeListener | None = None
        self.next_recheck = 0.0
        self.next_listen = 0.0
        self.closed = False  # let go of (another database serves now): never listens again

    def current(self, engine: Engine) -> Held | None:
        with self.check:
            if not self._listening():
                return None
            try:
                if self.listener is None or self.listener.changed():
                    self._invalidate()
            except psycopg2.Error:
                self._drop_listener()
                return None
            held, generation = self.held, self.generation
            local_commit = _commits[0] != self.commits_seen
            self.commits_seen = _commits[0]
            recheck = held is not None and (local_commit or time.monotonic() >= self.next_recheck)
            if recheck:
                self.next_recheck = time.monotonic() + RECHECK_S
        if recheck and held is not None:
            with engine.connect() as conn:
                if db_held.versions(conn) != held.versions:
                    with self.check:
                        self._invalidate()
                        held, generation = None, self.generation
        if held is None:
            held = self._read(engine, generation)
        return held if held is not None and held.layers is not None else None

    def _invalidate(self) -> None:
        self.held = None
        self.generation += 1

    def _listening(self) -> bool:
        if self.listener is not None:
            return True
        if self.closed or time.monotonic() < self.next_listen:
            return False
        self.next_listen = time.monotonic() + RELISTEN_S
        try:
            self.listener = ChangeListener(self.url)
        except psycopg2.Error:
            return False
        self._invalidate()  # anything read before listening may be stale
        return True

    def close(self) -> None:
        """Let go of the listener and what is held, for good."""
        with self.check:
            self.closed = True
            self._drop_listener()

    def _drop_listener(self) -> None:
        listener, self.listener = self.listener, None
        self._invalidate()
        if listener is not None:
            listener.close()

    def _read(self, engine: Engine, generation: int) -> Held | None:
        if not self.reading.acquire(blocking=False):
            return None  # another request is reading: this one asks the database
        try:
            with engine.connect() as conn:
                held = held_from(db_held.read_held(conn, max_facilities=MAX_HELD_FACILITIES))
            with self.check:
                if self.generation == generation:
                    self.held, self.next_recheck = held, time.monotonic() + RECHECK_S
            return held
        finally:
            self.reading.release()


#: The one database this process holds for (a process serves one at a time; after a restore moves it, the
#: old database's listener is closed, so the old database can be dropped), and the process it belongs to.
_holder: list[tuple[int, _Holder]] = []
_holder_lock = threading.Lock()


#: Each engine's database URL as text (rendering it costs more than the rest of a held answer's bookkeeping).
_urls: dict[int, tuple[Engine, str]] = {}


def _url_of(engine: Engine) -> str:
    known = _urls.get(id(engine))
    if known is None or known[0] is not engine:
        known = (engine, engine.url.render_as_string(hide_password=False))
        _urls[id(engine)] = known
    return known[1]


def current(engine: Engine) -> Held | None:
    """What this process holds for ``engine``'s database, read again if the data changed; None: ask the database.

    The first call in a process (and the first after a change) reads
    everything (tens of milliseconds for the demo city). A call for another
    database than the last one lets go of the last one's listener and
    facilities.
    """
    url = _url_of(engine)
    pid = os.getpid()  # a forked worker never uses its parent's listening connection
    with _holder_lock:
        old = _holder[0] if _holder else None
        if old is not None and old[0] == pid and old[1].url == url:
            holder = old[1]
        else:
            holder = _Holder(url)
            _holder[:] = [(pid, holder)]
            if old is not None and old[0] == pid:
                old[1].close()
    return holder.current(engine)


def hold(engine: Engine) -> str:
    """Read what this process holds for ``engine``'s database now (a worker calls it as it starts), in words."""
    held = current(engine)
    if held is None or held.layers is None:
        return (f"nothing held (more than {MAX_HELD_FACILITIES:,} active facilities, or the database cannot be "
                "listened to): nearest asks the database")
    count = len(held.facilities)
    return f"{count:,} active facilities of {len(held.layers)} layers and {len(held.districts)} districts"


def forget() -> None:
    """Drop everything held and the listener of this process (tests; a restore is followed on its own)."""
    with _holder_lock:
        old = _holder[0] if _holder else None
        _holder.clear()
    if old is not None and old[0] == os.getpid():
        old[1].close()
