"""An independent reference for coverage along the roads, for the tests and the planning benchmark.

pgRouting and PostGIS alone, in the database, following the rule ``docs/roads.md``
states (written apart from ``geo.network``/``geo.reach``, calling none of them):

* Every demand cell centre and every facility joins the network of the mode at
  the nearest position on the nearest edge of that mode (``<->`` on the edges in
  EPSG:4548; ``ST_LineLocatePoint`` gives the fraction), as a pgRouting *point*;
  the straight access leg (``ST_Distance``) is added on both sides. Of equally
  near edges the lowest id (a road drawn twice: both copies walkable both ways,
  so either is the same road). A cell
  centre farther than :data:`MAX_ACCESS_M` from every road of the mode is not
  reached by road.
* An area facility (a park's polygon) is reached at its boundary, sampled every
  :data:`AREA_STEP_M` metres (``ST_Segmentize``, vertices by ``ST_DumpPoints``);
  a cell centre inside it is at 0 m.
* ``pgr_withPointsDD`` from every facility point (one search each, the least
  kept per cell), ``details => true`` so the cells' points are reached along
  their edges. Walking: every walkable edge both ways at its length. Driving:
  the drivable edges with one-way rules, reversed (``reverse_cost`` as cost), so
  the search from a facility measures the way *from* each cell *to* it.
* A cell is covered when its distance is within its class's threshold (urban
  or rural), each class on the network of its threshold's travel mode; the
  facilities are those open on the day asked (opened by then, not retired by then).

Only what can matter is handed to pgRouting: no road route is shorter than the
straight line, so the cells farther than the reach from every facility in a
straight line, and the edges farther than it from every facility's joining
position, are left out (the answer is the same, the search smaller).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection

from geo.crs import METRIC_EPSG
from layers import Layer
from layers.model import NETWORK_OF_MODE

#: A cell centre farther than this from every road of the mode is not reached by road, metres.
MAX_ACCESS_M = 2_000.0
#: Spacing of the boundary samples of an area facility, metres.
AREA_STEP_M = 25.0
#: Facilities' point ids start here (cells' count from 1).
SOURCE_PID = 1_000_000_000_000

#: Per network: pgRouting's edge costs, driving reversed (a search from the facility = the way to it).
_COSTS = {"walk": "length_m AS cost, length_m AS reverse_cost", "drive": "reverse_cost AS cost, cost AS reverse_cost"}

#: Per network: its edges in EPSG:4548, indexed for the nearest-edge search (temporary, for the transaction).
_EDGE_TABLE = {mode: text(f"""
    CREATE TEMP TABLE ref_edge_{mode} ON COMMIT DROP AS
    SELECT id, source, target, {costs}, ST_Transform(geom, CAST(:srid AS integer)) AS g FROM road_edge WHERE {mode};
    CREATE INDEX ON ref_edge_{mode} USING gist (g);
    ANALYZE ref_edge_{mode}""") for mode, costs in _COSTS.items()}

#: A fraction along the edge kept off 0 and 1 by 1e-9 (a micrometre on a 1 km edge): pgRouting 3.4's withPoints
#: functions lose every path through a point lying exactly on a vertex (pgRouting issue 2689), and every
#: position snapped to the end of a road lies there.
_FRACTION = "least(greatest(ST_LineLocatePoint(e.g, {p}), 1e-9), 1 - 1e-9)"
#: The nearest edge of a network to ``{p}`` (of equally near ones, the lowest id).
_NEAREST = """(SELECT id, g, d FROM (SELECT id, g, ST_Distance(g, {p}) AS d FROM ref_edge_{mode}
                                ORDER BY g <-> {p} LIMIT 4) near ORDER BY d, id LIMIT 1) e"""
_CELL_JOIN = """
    SELECT c.id AS cell, '{mode}' AS mode, c.population, c.urban, c.district_adcode AS district, c.p,
           CASE WHEN e.d <= :max_access THEN e.id END AS edge_id, {fraction} AS fraction, e.d AS access_m
    FROM c CROSS JOIN LATERAL {nearest}"""
#: Every cell centre joined to each network (temporary, for the transaction).
_CELL_TABLE = text(
    "CREATE TEMP TABLE ref_cell ON COMMIT DROP AS"
    " WITH c AS (SELECT id, population, urban, district_adcode,"
    " ST_SetSRID(ST_MakePoint(x_m, y_m), CAST(:srid AS integer)) AS p FROM demand_cell"
    " WHERE CAST(:district AS text) IS NULL OR district_adcode = :district)"
    " SELECT row_number() OVER () AS pid, j.* FROM ("
    + " UNION ALL ".join(_CELL_JOIN.format(mode=mode, fraction=_FRACTION.format(p="c.p"),
                                           nearest=_NEAREST.format(p="c.p", mode=mode)) for mode in _COSTS)
    + ") j; CREATE INDEX ON ref_cell USING gist (p); CREATE INDEX ON ref_cell (pid); ANALYZE ref_cell")

#: The facilities of ``:layer`` open on ``:day``.
_OPEN = """SELECT id, ST_Transform(point, CAST(:srid AS integer)) AS p, ST_Transform(geom, CAST(:srid AS integer)) AS g
    FROM facility WHERE layer = :layer AND point IS NOT NULL AND (opened_on IS NULL OR opened_on <= :day)
      AND ((status = 'active' AND retired_on IS NULL) OR retired_on > :day)"""
#: Per network, the facilities joined to it: their points, or their boundary samples (areas).
_SOURCE_TABLE = {mode: text(f"""
    CREATE TEMP TABLE ref_source ON COMMIT DROP AS
    WITH f AS ({_OPEN}),
    s AS (SELECT p FROM f WHERE NOT :area
          UNION ALL SELECT (ST_DumpPoints(ST_Segmentize(ST_Boundary(g), :step))).geom FROM f WHERE :area)
    SELECT {SOURCE_PID} + row_number() OVER () AS pid, s.p, e.id AS edge_id, e.d AS access_m,
           {_FRACTION.format(p="s.p")} AS fraction, ST_ClosestPoint(e.g, s.p) AS at
    FROM s CROSS JOIN LATERAL {_NEAREST.format(p="s.p", mode=mode)};
    CREATE INDEX ON ref_source USING gist (p); CREATE INDEX ON ref_source USING gist (at); ANALYZE ref_source;
    CREATE TEMP TABLE ref_graph ON COMMIT DROP AS
    SELECT id, source, target, cost, reverse_cost FROM ref_edge_{mode} e
    WHERE EXISTS (SELECT 1 FROM ref_source s WHERE ST_DWithin(e.g, s.at, :reach));
    CREATE TEMP TABLE ref_point ON COMMIT DROP AS
    SELECT pid, edge_id, fraction FROM ref_cell c
    WHERE mode = '{mode}' AND edge_id IS NOT NULL AND urban = ANY(CAST(:classes AS boolean[]))
      AND EXISTS (SELECT 1 FROM ref_source s WHERE ST_DWithin(c.p, s.p, :reach))
    UNION ALL SELECT pid, edge_id, fraction FROM ref_source""") for mode in _COSTS}
#: Per cell reached: the least of (a facility's access leg + the road), plus the cell's own access leg.
_REACHED = text(f"""
    SELECT c.cell, min(dd.agg_cost + s.access_m) + min(c.access_m) AS d
    FROM pgr_withPointsDD('SELECT id, source, target, cost, reverse_cost FROM ref_graph',
                          'SELECT pid, edge_id, fraction FROM ref_point', (SELECT array_agg(-pid) FROM ref_source),
                          CAST(:reach AS double precision), directed => true, details => true) dd
    JOIN ref_source s ON s.pid = -dd.start_vid
    JOIN ref_cell c ON c.pid = -dd.node
    WHERE dd.node < 0 AND dd.node > -{SOURCE_PID}
    GROUP BY c.cell
    """)
_DROP = text("DROP TABLE ref_point; DROP TABLE ref_graph; DROP TABLE ref_source")
#: Cells whose centre lies inside an open facility's area.
_INSIDE = text(f"""
    SELECT DISTINCT c.cell FROM ref_cell c JOIN ({_OPEN}) f ON ST_Within(c.p, f.g)
    WHERE c.mode = 'walk'""")


def prepare(conn: Connection, district: str | None = None) -> None:
    """The edges in EPSG:4548 and every cell (of ``district`` when given) joined to each network: temporary
    tables for this transaction."""
    for statement in _EDGE_TABLE.values():
        conn.execute(statement, {"srid": METRIC_EPSG})
    conn.execute(_CELL_TABLE, {"srid": METRIC_EPSG, "max_access": MAX_ACCESS_M, "district": district})


def networks(layer: Layer) -> dict[str, list[bool]]:
    """Network → the cell classes (urban True / rural False) whose threshold is measured on it."""
    out: dict[str, list[bool]] = {}
    for urban in (True, False):
        out.setdefault(NETWORK_OF_MODE[layer.threshold.mode_for(urban)], []).append(urban)
    return out


def cell_distances(conn: Connection, layer: Layer, day: dt.date) -> dict[int, float]:
    """Metres along the roads from each prepared cell (``demand_cell.id``) to the layer's nearest facility open
    on ``day``; only the cells within the layer's largest threshold of their class appear."""
    t = layer.threshold
    out: dict[int, float] = {}
    for mode, classes in networks(layer).items():
        reach = max(t.urban_m if urban else t.rural_m for urban in classes)
        conn.execute(_SOURCE_TABLE[mode], {"srid": METRIC_EPSG, "layer": layer.key, "day": day, "reach": reach,
                                           "step": AREA_STEP_M, "area": layer.geometry_kind == "polygon",
                                           "classes": classes})
        rows = conn.execute(_REACHED, {"reach": reach}).all()
        out.update({int(r.cell): float(r.d) for r in rows})
        conn.execute(_DROP)
    if layer.geometry_kind == "polygon":
        inside = conn.execute(_INSIDE, {"srid": METRIC_EPSG, "layer": layer.key, "day": day})
        out.update({int(cell): 0.0 for cell in inside.scalars()})
    return out


def coverage(conn: Connection, layer: Layer, day: dt.date) -> dict[str, float]:
    """Residents of the prepared cells, and those within their class's threshold of an open facility by road:
    ``population``/``covered`` where the layer applies (its ``applies_to``), ``all_population``/``all_covered``
    over every cell."""
    dist = cell_distances(conn, layer, day)
    t = layer.threshold
    out = dict.fromkeys(("population", "covered", "all_population", "all_covered"), 0.0)
    for r in conn.execute(text("SELECT DISTINCT cell, population, urban FROM ref_cell")).all():
        covered = dist.get(int(r.cell), np.inf) <= (t.urban_m if r.urban else t.rural_m)
        applies = layer.applies("urban" if r.urban else "rural")
        out["all_population"] += r.population
        out["all_covered"] += r.population * covered
        out["population"] += r.population * applies
        out["covered"] += r.population * (covered and applies)
    return out
