"""Road network SQL: replace the network with COPY, read it per travel mode, and ask pgRouting.

Tables from migration 0007 (``road_vertex``, ``road_edge``, ``road_import``).
Every function takes a ``Connection``; the caller owns the transaction. SQL
is static text with bound parameters; the metric CRS is bound from
``geo.crs.METRIC_EPSG``.

Travel modes on the network (:data:`EDGES_SQL`): walking uses every edge with
``walk`` in both directions at ``length_m``; driving uses edges with
``drive`` at ``cost``/``reverse_cost`` (metres, negative = that direction
closed). The same statements feed pgRouting, so the database and the
in-memory graph route on one definition.
"""
from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from geo.crs import METRIC_EPSG

#: Per travel mode, the edge query in pgRouting's form (id, source, target, cost, reverse_cost).
EDGES_SQL: dict[str, str] = {
    "walk": "SELECT id, source, target, length_m AS cost, length_m AS reverse_cost FROM road_edge WHERE walk",
    "drive": "SELECT id, source, target, cost, reverse_cost FROM road_edge WHERE drive",
}

#: The travel modes the network routes (keys of ``layers.modes.MODES`` that roads serve).
NETWORK_MODES: tuple[str, ...] = tuple(EDGES_SQL)

VERTEX_COLUMNS = ("id", "osm_node_id", "geom")
EDGE_COLUMNS = ("id", "osm_way_id", "source", "target", "highway", "name", "length_m", "walk", "drive", "cost",
                "reverse_cost", "drive_speed_kmh", "synthetic", "geom")

#: Rows per COPY chunk (one progress step).
_CHUNK = 20_000

_LOCK = text("LOCK TABLE road_edge, road_vertex IN SHARE ROW EXCLUSIVE MODE")
_CLEAR = (text("DELETE FROM road_edge"), text("DELETE FROM road_vertex"))
_RECORD = text(
    "INSERT INTO road_import (source_name, source_sha256, source_bytes, format, synthetic, edges, vertices, report)"
    " VALUES (:source_name, :source_sha256, :source_bytes, :format, :synthetic, :edges, :vertices,"
    " CAST(:report AS jsonb)) RETURNING id")

_EDGES = {
    "walk": text("SELECT id, source, target, length_m, true AS forward, true AS backward,"
                 " ST_AsBinary(ST_Transform(geom, CAST(:srid AS integer))) AS wkb"
                 " FROM road_edge WHERE walk ORDER BY id"),
    "drive": text("SELECT id, source, target, length_m, cost >= 0 AS forward, reverse_cost >= 0 AS backward,"
                  " ST_AsBinary(ST_Transform(geom, CAST(:srid AS integer))) AS wkb"
                  " FROM road_edge WHERE drive ORDER BY id"),
}
_VERTICES = text("SELECT id, ST_X(p) AS x, ST_Y(p) AS y"
                 " FROM (SELECT id, ST_Transform(geom, CAST(:srid AS integer)) AS p FROM road_vertex) v ORDER BY id")
#: Per mode (the mode is also the column that admits an edge: ``walk``, ``drive``), pieces and largest share.
_COMPONENTS = {mode: text(
    "WITH c AS (SELECT node, component FROM pgr_connectedComponents(CAST(:edges AS text))),"
    " piece AS (SELECT c.component, sum(r.length_m) AS len FROM road_edge r JOIN c ON c.node = r.source"
    f" WHERE r.{mode} GROUP BY c.component)"
    " SELECT count(*) AS pieces, coalesce(max(len) / nullif(sum(len), 0), 0) AS share FROM piece")
    for mode in EDGES_SQL}
_LATEST = text("SELECT id, source_name, source_sha256, source_bytes, format, synthetic, imported_at, edges, vertices,"
               " report FROM road_import ORDER BY id DESC LIMIT 1")
_DIJKSTRA = text("SELECT agg_cost FROM pgr_dijkstra(CAST(:edges AS text), CAST(:source AS bigint),"
                 " CAST(:target AS bigint), true) WHERE edge = -1")
#: Per source, then the least per vertex: pgRouting 3.4's ``equicost => true`` assigns some vertices to a
#: source that is not their nearest (seen on the Helsinki extract), so it is not used.
_DRIVING_DISTANCE = text(
    "SELECT node, min(agg_cost) AS agg_cost FROM pgr_drivingDistance(CAST(:edges AS text),"
    " CAST(:sources AS bigint[]), CAST(:distance AS double precision), directed => true, equicost => false)"
    " GROUP BY node")


def replace_network(conn: Connection, vertices: pd.DataFrame, edges: pd.DataFrame,
                    *, progress: Callable[[int], object] | None = None) -> None:
    """Replace the whole network with ``vertices`` and ``edges``.

    The caller's transaction makes it all-or-nothing. Other writers wait
    (``SHARE ROW EXCLUSIVE``); readers keep seeing the old network until commit.

    Parameters
    ----------
    vertices, edges : pandas.DataFrame
        Columns :data:`VERTEX_COLUMNS` and :data:`EDGE_COLUMNS`; ``geom`` as hex
        EWKB with SRID 4326.
    progress : callable, optional
        Called with the number of rows written after each chunk.
    """
    conn.execute(_LOCK)
    for statement in _CLEAR:
        conn.execute(statement)
    _copy(conn, vertices, "road_vertex", VERTEX_COLUMNS, progress)
    _copy(conn, edges, "road_edge", EDGE_COLUMNS, progress)


def record_import(conn: Connection, record: dict[str, Any]) -> int:
    """Record an import: ``source_name``, ``source_sha256``, ``source_bytes``, ``format``, ``synthetic``,
    ``edges``, ``vertices`` and ``report`` (a JSON-able dict). Returns the ``road_import`` id."""
    params = dict(record, report=json.dumps(record["report"], ensure_ascii=False))
    return int(conn.execute(_RECORD, params).scalar_one())


def components(conn: Connection, mode: str) -> tuple[int, float]:
    """pgRouting's connected components of the ``mode`` network (directions ignored).

    Returns
    -------
    tuple of (int, float)
        The number of pieces that hold an edge, and the share (0-1) of the
        mode's road length in the largest piece (0 when the mode has no edge).
    """
    row = conn.execute(_COMPONENTS[mode], {"edges": EDGES_SQL[mode]}).one()
    return int(row.pieces), float(row.share)


def _copy(conn: Connection, frame: pd.DataFrame, table: str, columns: tuple[str, ...],
          progress: Callable[[int], object] | None) -> None:
    raw = conn.connection.dbapi_connection
    if raw is None:
        raise RuntimeError("the connection has no DBAPI connection to COPY through")
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    for start in range(0, len(frame), _CHUNK):
        chunk = frame.iloc[start:start + _CHUNK][list(columns)]
        buf = io.StringIO()
        chunk.to_csv(buf, index=False, header=False, na_rep="\\N")
        buf.seek(0)
        cur = raw.cursor()
        try:
            cur.copy_expert(statement, buf)
        finally:
            cur.close()
        if progress is not None:
            progress(len(chunk))


def edge_arrays(conn: Connection, mode: str) -> dict[str, np.ndarray]:
    """The edges ``mode`` may use, with their geometry in EPSG:4548 (WKB, metres).

    Returns
    -------
    dict
        ``id``, ``source``, ``target`` (int64), ``length_m`` (float, geodesic
        metres), ``forward``/``backward`` (bool: may travel source → target /
        target → source), ``wkb`` (object array of bytes, LineString in
        ``geo.crs.METRIC_EPSG``).
    """
    rows = conn.execute(_EDGES[mode], {"srid": METRIC_EPSG}).all()
    return {
        "id": np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows)),
        "source": np.fromiter((r.source for r in rows), dtype=np.int64, count=len(rows)),
        "target": np.fromiter((r.target for r in rows), dtype=np.int64, count=len(rows)),
        "length_m": np.fromiter((r.length_m for r in rows), dtype=float, count=len(rows)),
        "forward": np.fromiter((r.forward for r in rows), dtype=bool, count=len(rows)),
        "backward": np.fromiter((r.backward for r in rows), dtype=bool, count=len(rows)),
        "wkb": np.array([bytes(r.wkb) for r in rows], dtype=object),
    }


def vertex_arrays(conn: Connection) -> dict[str, np.ndarray]:
    """Every vertex: ``id`` (int64) and ``xy`` (n × 2, EPSG:4548 metres)."""
    rows = conn.execute(_VERTICES, {"srid": METRIC_EPSG}).all()
    return {"id": np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows)),
            "xy": np.array([(r.x, r.y) for r in rows], dtype=float).reshape(-1, 2)}


def latest_import(conn: Connection) -> dict[str, Any] | None:
    """The record of the import that made the current network, or None when none was imported."""
    row = conn.execute(_LATEST).mappings().first()
    return dict(row) if row else None


def pgr_distance(conn: Connection, mode: str, source: int, target: int) -> float | None:
    """pgRouting's shortest distance (metres) from vertex ``source`` to ``target``; None when unreachable."""
    if source == target:
        return 0.0
    value = conn.execute(_DIJKSTRA, {"edges": EDGES_SQL[mode], "source": source, "target": target}).scalar()
    return None if value is None else float(value)


def pgr_reached(conn: Connection, mode: str, sources: list[int], distance_m: float) -> dict[int, float]:
    """Vertices within ``distance_m`` metres of the nearest of ``sources`` (pgRouting's driving distance).

    Returns
    -------
    dict
        Vertex id → metres from the nearest source, for every vertex reached.
    """
    rows = conn.execute(_DRIVING_DISTANCE, {"edges": EDGES_SQL[mode], "sources": [int(s) for s in sources],
                                            "distance": float(distance_m)}).all()
    return {int(r.node): float(r.agg_cost) for r in rows}

