"""Results remembered until the data changes: the one cache-invalidation scheme.

Every change to facilities, the demand grid or the villages bumps a row of
``data_version`` in the same transaction (statement triggers, migration
0003). A cached value is keyed on those versions, on the restore epoch (the
counters restart from a backup's values after a restore, the epoch does not:
:mod:`db.versions`) and on today's date (since "open today" changes at
midnight): after a load, an edit or a restore, the next call recomputes. Per
process, least recently used first out.
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
_store: OrderedDict[tuple[object, ...], object] = OrderedDict()
_lock = threading.Lock()


def data_versions(conn: Connection, families: Collection[str] | None = None) -> tuple[object, ...]:
    """The restore epoch, the current data versions (of ``families`` only, when given), and today's date
    (facilities open on a date)."""
    epoch, current = db_versions.current(conn)
    if families is not None:
        current = tuple(v for v in current if v[0] in families)
    return (epoch, *current, dt.date.today().isoformat())


def memo(engine: Engine, namespace: str, key: Hashable, compute: Callable[[], T], *,
         families: Collection[str] | None = None) -> T:
    """``compute()``, remembered until the data changes (LRU of :data:`MAX_ENTRIES`).

    ``families`` names the ``data_version`` rows the value depends on (e.g.
    only ``grid`` for the demand grid, so a facility edit keeps it); by
    default every row counts.
    """
    with engine.connect() as conn:
        versions = data_versions(conn, families)
    full = (engine.url.render_as_string(hide_password=True), namespace, key, versions)
    with _lock:
        if full in _store:
            _store.move_to_end(full)
            return _store[full]  # type: ignore[return-value]
    value = compute()
    with _lock:
        _store[full] = value
        while len(_store) > MAX_ENTRIES:
            _store.popitem(last=False)
    return value


def clear() -> None:
    """Forget everything (tests call this after changing data behind the triggers' back)."""
    with _lock:
        _store.clear()
