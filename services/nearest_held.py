"""Nearest without a query: every active facility held in memory by each serving process.

A resident's nearest answer needs the facilities near one position, the
district there and the road network's state. Read per request, that is a
database round trip (the KNN statement of :mod:`db.facilities`) that costs
more than the rest of the request. Held in memory, the same questions are
answered by a planar index (:class:`geo.planar_index.PlanarIndex`, the same
planar order PostGIS ``<->`` gives), so nearest's exact "filter and refine"
rounds (:mod:`services.candidates`) run unchanged on it.

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
from db.facilities import Candidates
from db.notify import ChangeListener
from geo.planar_index import PlanarIndex, geodesic_distance_to_areas_m

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
    """One layer's facilities: ``rows`` (the fields of :data:`db.held.FACILITY_FIELDS` without the area, and the
    district's names) and ``index`` over them, in the same order."""

    rows: list[Row]
    index: PlanarIndex


@dataclass(frozen=True)
class Held:
    """What one process holds: see the module's note. ``layers`` is None when too many facilities are active."""

    versions: tuple[Any, ...]
    layers: dict[str, HeldLayer] | None
    districts: list[tuple[str, str, str]]
    district_areas: np.ndarray
    network_edges: int
    network_synthetic: bool

    def candidates(self, layers: Sequence[str], lon: float, lat: float, m: int | None) -> Candidates:
        """What :func:`db.facilities.nearest_candidates` reads, from memory (same fields and order)."""
        here = shapely.Point(lon, lat)
        inside = np.flatnonzero(shapely.covers(self.district_areas, here)) if len(self.district_areas) \
            else np.empty(0, dtype=np.int64)
        district = None
        if len(inside):
            adcode, zh, en = self.districts[int(inside[0])]
            district = {"adcode": adcode, "name_zh": zh, "name_en": en}
        rows: list[Row] = []
        for key in layers:
            rows.extend(self._rows(key, lon, lat, *self._layer(key).index.nearest(lon, lat, m)))
        return Candidates(district, self.network_edges, self.network_synthetic, rows)

    def within(self, lon: float, lat: float, radii: dict[str, float | None]) -> list[Row]:
        """What :func:`db.facilities.candidates_within` reads, from memory."""
        rows: list[Row] = []
        for key, radius in radii.items():
            rows.extend(self._rows(key, lon, lat, *self._layer(key).index.within(lon, lat, radius)))
        return rows

    def _layer(self, key: str) -> HeldLayer:
        assert self.layers is not None
        return self.layers.get(key) or _EMPTY

    def _rows(self, key: str, lon: float, lat: float, idx: np.ndarray, deg: np.ndarray) -> list[Row]:
        layer = self._layer(key)
        area_m: list[float | None] = [None] * len(idx)
        is_area = layer.index.is_area(idx)
        if is_area.any():
            metres = geodesic_distance_to_areas_m(lon, lat, layer.index.area_geometries(idx[is_area]))
            for j, d in zip(np.flatnonzero(is_area).tolist(), metres.tolist(), strict=True):
                area_m[j] = d
        rows = layer.rows
        return [{**rows[i], "deg": d, "area_m": a} for i, d, a in zip(idx.tolist(), deg.tolist(), area_m, strict=True)]


_EMPTY = HeldLayer([], PlanarIndex(np.empty(0), np.empty(0), np.empty(0, dtype=object)))


def held_from(read: db_held.HeldRead) -> Held:
    """Build what a process holds from one read (the indexes over each layer)."""
    areas = shapely.from_wkb([wkb for *_, wkb in read.districts]) if read.districts else np.empty(0, dtype=object)
    if len(areas):
        shapely.prepare(areas)
    districts = [(adcode, zh, en) for adcode, zh, en, _ in read.districts]
    names = {adcode: (zh, en) for adcode, zh, en in districts}
    layers = None if read.facilities is None else _layers(read.facilities, names)
    return Held(read.versions, layers, districts, areas, read.network_edges, read.network_synthetic)


def _layers(rows: list[tuple[Any, ...]], names: dict[str, tuple[str, str]]) -> dict[str, HeldLayer]:
    by_layer: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        by_layer.setdefault(r[1], []).append(r)
    out = {}
    for key, mine in by_layer.items():
        wkbs = [r[-1] for r in mine]
        areas = np.array([None if w is None else shapely.from_wkb(w) for w in wkbs], dtype=object)
        fields = [dict(zip(_FIELDS, r[:-1], strict=True)) for r in mine]
        for row in fields:
            row["district_zh"], row["district_en"] = names.get(row["district_adcode"], (None, None))
        out[key] = HeldLayer(fields,
                             PlanarIndex(np.array([r[10] for r in mine], dtype=float),
                                         np.array([r[11] for r in mine], dtype=float), areas))
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


def current(engine: Engine) -> Held | None:
    """What this process holds for ``engine``'s database, read again if the data changed; None: ask the database.

    The first call in a process (and the first after a change) reads
    everything (tens of milliseconds for the demo city). A call for another
    database than the last one lets go of the last one's listener and
    facilities.
    """
    url = engine.url.render_as_string(hide_password=False)
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
    count = sum(len(layer.rows) for layer in held.layers.values())
    return f"{count:,} active facilities of {len(held.layers)} layers and {len(held.districts)} districts"


def forget() -> None:
    """Drop everything held and the listener of this process (tests; a restore is followed on its own)."""
    with _holder_lock:
        old = _holder[0] if _holder else None
        _holder.clear()
    if old is not None and old[0] == os.getpid():
        old[1].close()
