"""Results remembered until the data changes: the one cache-invalidation scheme.

Every change to facilities, the demand grid or the villages bumps a row of
``data_version`` in the same transaction (statement triggers, migration
0003). A cached value is keyed on those versions, on the restore epoch (the
counters restart from a backup's values after a restore, the epoch does not:
:mod:`db.versions`) and on today's date (since "open today" changes at
midnight): after a load, an edit or a restore, the next call recomputes. Per
process, least recently used first out.

Two stores share that keying. Results (a report, a page) go in the main one
(:data:`MAX_ENTRIES`). Inputs every report starts from and that change only
with the data (the demand grid, a road graph, the cells joined to it) are
``held``: they go in a store of their own (:data:`MAX_HELD`), so a run of new
reports never pushes them out and a new report starts from them.
"""
from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable
from typing import TypeVar

from sqlalchemy.engine import Connection, Engine

from db import versions as db_versions

T = TypeVar("T")

MAX_ENTRIES = 128
#: Held inputs kept per process (a few per data version: grid, villages, graphs, snapped cells, zones).
MAX_HELD = 24
_Store = OrderedDict[tuple[object, ...], object]
_store: _Store = OrderedDict()
_held: _Store = OrderedDict()
_lock = threading.Lock()


def data_versions(conn: Connection, families: Collection[str] | None = None) -> tuple[object, ...]:
    """The restore epoch, the current data versions (of ``families`` only, when given), and today's date
    (facilities open on a date)."""
    epoch, current = db_versions.current(conn)
    return _keyed((epoch, *current), families)


def _keyed(read: tuple[object, ...], families: Collection[str] | None) -> tuple[object, ...]:
    """``(epoch, *(name, version) pairs)`` as a cache key: the families asked for, and today's date."""
    epoch, *current = read
    if families is not None:
        current = [v for v in current if v[0] in families]  # type: ignore[index]
    return (epoch, *current, dt.date.today().isoformat())


def memo(engine: Engine, namespace: str, key: Hashable, compute: Callable[[], T], *,
         families: Collection[str] | None = None, held: bool = False, conn: Connection | None = None,
         versions: tuple[object, ...] | None = None) -> T:
    """``compute()``, remembered until the data changes (LRU of :data:`MAX_ENTRIES`, or :data:`MAX_HELD`).

    ``families`` names the ``data_version`` rows the value depends on (e.g.
    only ``grid`` for the demand grid, so a facility edit keeps it); by
    default every row counts. ``held`` keeps the value in the store of inputs
    (see the module's note). ``conn``, when given, is where the versions are
    read (a report's own snapshot, so the key is the version its rows see;
    no second connection is taken). ``versions``, when given, are the epoch
    and ``(name, version)`` pairs already read in the caller's snapshot
    (:func:`db.versions.current`): no query at all.
    """
    if versions is not None:
        versions = _keyed(versions, families)
    elif conn is None:
        with engine.connect() as own:
            versions = data_versions(own, families)
    else:
        versions = data_versions(conn, families)
    full = (engine.url.render_as_string(hide_password=True), namespace, key, versions)
    store, most = (_held, MAX_HELD) if held else (_store, MAX_ENTRIES)
    with _lock:
        if full in store:
            store.move_to_end(full)
            return store[full]  # type: ignore[return-value]
    value = compute()
    with _lock:
        store[full] = value
        while len(store) > most:
            store.popitem(last=False)
    return value


def clear(*, keep_held: bool = False) -> None:
    """Forget everything (tests call this after changing data behind the triggers' back); with ``keep_held``,
    forget the results only and keep the held inputs (what a new report finds in a running server)."""
    with _lock:
        _store.clear()
        if not keep_held:
            _held.clear()
