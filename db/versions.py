"""The data-version counters that statement triggers bump on every change (migration 0003), and the restore epoch.

The counters start again from a backup's values when it is restored, so they
alone cannot tell a restored database from the one before it. The restore
epoch can: the identity of the database and of its ``data_version`` table,
both new after any restore (into a fresh database, or ``pg_restore --clean``
in place, which drops and re-creates the table).
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

_CURRENT = text(
    "SELECT (SELECT oid FROM pg_database WHERE datname = current_database())::text || '.' ||"
    " 'data_version'::regclass::oid::text AS epoch, name, version FROM data_version ORDER BY name")


def current(conn: Connection) -> tuple[str, tuple[tuple[str, int], ...]]:
    """The restore epoch, and ``(name, version)`` pairs of every counter in name order (one query)."""
    rows = conn.execute(_CURRENT).all()
    epoch = rows[0][0] if rows else ""
    return epoch, tuple((str(r[1]), int(r[2])) for r in rows)
