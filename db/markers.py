"""SQL of the residents' map markers: one layer's active facilities, compactly (WGS-84 degrees)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

_LAYER = text(
    "SELECT id, kind, name, synthetic, ST_X(point) AS lon, ST_Y(point) AS lat FROM facility"
    " WHERE layer = :layer AND status = 'active' ORDER BY id")


def layer_points(conn: Connection, layer: str) -> list[dict[str, Any]]:
    """``id``, ``kind``, ``name``, ``synthetic`` and the representative point (``lon``/``lat``, WGS-84
    degrees) of each active facility of ``layer`` (a checked key), in id order."""
    return [dict(r) for r in conn.execute(_LAYER, {"layer": layer}).mappings()]
