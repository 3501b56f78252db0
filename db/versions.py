"""The data-version counters that statement triggers bump on every change (migration 0003)."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

_CURRENT = text("SELECT name, version FROM data_version ORDER BY name")


def current(conn: Connection) -> tuple[object, ...]:
    """``(name, version)`` pairs of every counter, in name order."""
    return tuple(tuple(r) for r in conn.execute(_CURRENT).all())
