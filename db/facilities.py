"""Read queries on facilities (counts for the catalogue). SQL with bound parameters only."""
from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

_COUNTS = text(
    "SELECT layer, district_adcode, kind, count(*) AS n, sum(capacity) AS cap, bool_or(synthetic) AS synthetic"
    " FROM facility WHERE status = 'active' GROUP BY layer, district_adcode, kind")


def counts(conn: Connection) -> list[dict[str, Any]]:
    """Active facilities counted by (layer, district, kind), with capacity totals and whether any is synthetic."""
    return [dict(r) for r in conn.execute(_COUNTS).mappings().all()]
