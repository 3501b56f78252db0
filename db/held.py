"""What a serving process holds in memory to answer nearest without a query: one consistent read.

Every active facility's resident fields with its representative point
(WGS-84 degrees) and, for an area, its geometry (WKB, WGS-84); the
districts' boundaries (WKB, WGS-84) and names; the current road network's
state; and the data versions all of it was read at (:mod:`db.versions`).
One ``REPEATABLE READ`` transaction, so the parts agree with each other and
with the versions. SQL is static text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from db import versions as db_versions

#: The fields of each facility row, in order (the resident's fields of ``db.facilities``, without the
#: district's names, which come once per district).
FACILITY_FIELDS = ("id", "layer", "kind", "name", "address", "phone", "opening_hours", "capacity", "synthetic",
                   "district_adcode", "lon", "lat", "area_wkb")

_COUNT = text("SELECT count(*) FROM facility WHERE status = 'active'")
_FACILITIES = text(
    "SELECT id, layer, kind, name, address, phone, opening_hours, capacity, synthetic, district_adcode,"
    " ST_X(point) AS lon, ST_Y(point) AS lat,"
    " CASE WHEN GeometryType(geom) = 'POINT' THEN NULL ELSE ST_AsBinary(geom) END AS area_wkb"
    " FROM facility WHERE status = 'active' ORDER BY layer, id")
_DISTRICTS = text("SELECT adcode, name_zh, name_en, ST_AsBinary(geom) AS wkb FROM district ORDER BY adcode")
_NETWORK = text("SELECT edges, synthetic FROM road_import ORDER BY id DESC LIMIT 1")


@dataclass
class HeldRead:
    """One consistent read: ``versions`` (restore epoch and ``(name, version)`` pairs), ``facilities`` (tuples in
    :data:`FACILITY_FIELDS` order, by layer then id; None when more than the limit), ``districts`` (adcode,
    name_zh, name_en, WKB), and the road network's ``network_edges`` (0: none) and ``network_synthetic``."""

    versions: tuple[Any, ...]
    facilities: list[tuple[Any, ...]] | None
    districts: list[tuple[str, str, str, bytes]]
    network_edges: int
    network_synthetic: bool


def read_held(conn: Connection, *, max_facilities: int) -> HeldRead:
    """Read everything nearest holds, in one snapshot; ``conn`` must have no transaction open.

    When more than ``max_facilities`` facilities are active, ``facilities`` is None (not read).
    """
    conn = conn.execution_options(isolation_level="REPEATABLE READ")
    snapshot = conn.begin()
    try:
        epoch, current = db_versions.current(conn)
        count = int(conn.execute(_COUNT).scalar_one())
        rows = None
        if count <= max_facilities:
            rows = [(*r[:-1], None if r[-1] is None else bytes(r[-1])) for r in conn.execute(_FACILITIES).all()]
        districts = [(r[0], r[1], r[2], bytes(r[3])) for r in conn.execute(_DISTRICTS).all()]
        net = conn.execute(_NETWORK).first()
    finally:
        snapshot.rollback()  # read only: nothing to commit
    return HeldRead((epoch, *current), rows, districts, int(net[0]) if net else 0, bool(net[1]) if net else False)


def versions(conn: Connection) -> tuple[Any, ...]:
    """The restore epoch and data versions, as :func:`read_held` keys its read."""
    epoch, current = db_versions.current(conn)
    return (epoch, *current)
