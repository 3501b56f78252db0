"""The demo city's synthetic road network: written as OSM XML, imported by the real importer, routed on.

Inputs are the real districts and seats with seeded towns and villages. The
network goes to the test database (the demo's own).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import networkx as nx
import numpy as np
import pytest
import shapely
from pyproj import Geod
from scipy.spatial import cKDTree
from sqlalchemy import text

from db import roads as db_roads
from demo.roads import Place, write_demo_roads
from etl.boundaries import read_districts
from geo import network
from geo.crs import to_metric, transform_geometry
from services import roads

GEOD = Geod(ellps="WGS84")
VILLAGES_PER_DISTRICT = 400


def _random_places(rng: np.random.Generator, geom: shapely.Geometry, n: int) -> list[tuple[float, float]]:
    minx, miny, maxx, maxy = geom.bounds
    out: list[tuple[float, float]] = []
    while len(out) < n:
        lon, lat = rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)
        inside = shapely.contains_xy(geom, lon, lat)
        out.extend(zip(lon[inside].tolist(), lat[inside].tolist(), strict=True))
    return out[:n]


@pytest.fixture(scope="module")
def demo(engine, tmp_path_factory):
    districts = read_districts()
    rng = np.random.default_rng(20221)
    seats = [Place(r.name_zh, r.seat_lon, r.seat_lat) for r in districts.itertuples()]
    towns, villages = [], []
    for r in districts.itertuples():
        inner = r.geometry.buffer(-0.02)
        towns += [Place(f"{r.name_zh}示例镇{i + 1}", lon, lat) for i, (lon, lat) in
                  enumerate(_random_places(rng, inner, 2))]
        villages += [Place(f"{r.name_zh}示例村{i + 1}", lon, lat) for i, (lon, lat) in
                     enumerate(_random_places(rng, inner, VILLAGES_PER_DISTRICT))]
    path = tmp_path_factory.mktemp("roads") / "demo-roads.osm"
    built = write_demo_roads(path, seats, towns, villages, list(districts.geometry), seed=20221)
    report = roads.import_roads(engine, path)
    return {"path": path, "built": built, "report": report, "villages": villages, "graph": roads.graph(engine, "walk")}


def _metric(lonlat: np.ndarray) -> np.ndarray:
    return np.column_stack(to_metric(lonlat[:, 0], lonlat[:, 1]))


def _route(graph: network.Graph, a: np.ndarray, b: np.ndarray) -> network.Route:
    return network.route(graph, network.snap(graph, a[None]), network.snap(graph, b[None]))


class TestTheFile:
    def test_every_way_is_labelled_synthetic_and_named_so(self, demo):
        ways = ET.parse(demo["path"]).getroot().findall("way")
        assert len(ways) > 1000
        for way in ways:
            tags = {t.get("k"): t.get("v") for t in way.findall("tag")}
            assert tags["synthetic"] == "yes" and tags["name"].endswith("（合成）")

    def test_the_river_is_crossed_only_by_a_few_bridges(self, demo):
        root = ET.parse(demo["path"]).getroot()
        pos = {n.get("id"): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
        river = demo["built"].river
        crossing = []
        for way in root.iter("way"):
            tags = {t.get("k"): t.get("v") for t in way.findall("tag")}
            line = shapely.LineString([pos[nd.get("ref")] for nd in way.findall("nd")])
            if "highway" in tags and line.intersects(river):
                crossing.append(tags)
        assert 2 <= len(crossing) <= 12
        assert all(t.get("bridge") == "yes" for t in crossing)


class TestTheImport:
    def test_it_goes_through_the_real_importer_as_one_connected_synthetic_network(self, demo, engine):
        report = demo["report"]
        assert report.synthetic and report.dropped == {} and report.missing_nodes == 0
        assert report.components == {"walk": 1, "drive": 1}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT bool_and(synthetic) FROM road_edge")).scalar()

    def test_every_village_is_on_the_network(self, demo):
        graph = demo["graph"]
        village_xy = _metric(np.array([(v.lon, v.lat) for v in demo["villages"]]))
        assert network.snap(graph, village_xy).access_m.max() < 1.0


class TestDistances:
    def test_network_distance_is_never_below_the_straight_line(self, demo):
        graph = demo["graph"]
        rng = np.random.default_rng(7)
        lonlat = np.array(_random_places(rng, shapely.union_all(read_districts().geometry), 60))
        xy = _metric(lonlat)
        for i in range(0, 60, 2):
            r = _route(graph, xy[i], xy[i + 1])
            straight = GEOD.inv(*lonlat[i], *lonlat[i + 1])[2]
            assert np.isfinite(r.distance_m) and r.distance_m >= straight * (1 - 1e-6)

    def test_vertex_routes_equal_networkx_and_pgrouting(self, demo, engine):
        graph = demo["graph"]
        g = nx.Graph()
        with engine.connect() as conn:
            for r in conn.execute(text(db_roads.EDGES_SQL["walk"])).all():
                if r.source != r.target and (not g.has_edge(r.source, r.target) or g[r.source][r.target]["w"] > r.cost):
                    g.add_edge(r.source, r.target, w=r.cost)
            rng = np.random.default_rng(8)
            for a, b in rng.choice(graph.n_vertices, (6, 2), replace=False):
                expected = nx.dijkstra_path_length(g, int(graph.vertex_id[a]), int(graph.vertex_id[b]), weight="w")
                got = _route(graph, graph.vertex_xy[a], graph.vertex_xy[b]).distance_m
                pgr = db_roads.pgr_distance(conn, "walk", int(graph.vertex_id[a]), int(graph.vertex_id[b]))
                assert got == pytest.approx(expected, abs=1e-3) and pgr == pytest.approx(expected, abs=1e-3)

    def test_across_the_river_away_from_a_bridge_is_much_further_than_by_air(self, demo):
        graph, built = demo["graph"], demo["built"]
        river = transform_geometry(built.river, to_metric)
        bridges = _metric(built.bridges)
        used = np.unique(np.concatenate([graph.source, graph.target]))
        xy = graph.vertex_xy[used]
        rx, ry = shapely.get_coordinates(river).T
        north = xy[:, 1] > np.interp(xy[:, 0], rx, ry)
        far = cKDTree(bridges).query(xy)[0] > 8000
        near = shapely.distance(river, shapely.points(xy)) < 1500
        a, b = xy[north & far & near], xy[~north & far & near]
        dist, idx = cKDTree(b).query(a)
        pairs = np.argsort(dist)[:5]
        assert len(pairs) >= 3
        for i in pairs:
            straight = float(dist[i])
            assert shapely.LineString([a[i], b[idx[i]]]).intersects(river)
            assert _route(graph, a[i], b[idx[i]]).distance_m > 5 * straight + 5000

    def test_isochrones_hold_what_is_reachable_and_leave_out_roads_not_reached(self, demo):
        graph = demo["graph"]
        seat = read_districts().iloc[0]
        start = _metric(np.array([[seat.seat_lon, seat.seat_lat]]))[0] + np.array([40.0, 90.0])
        origin = network.snap(graph, start[None])
        tree = network.shortest_paths(graph, origin)
        budgets = [1200.0, 2400.0]
        polys = network.isochrones(graph, origin, budgets)
        points = shapely.points(graph.vertex_xy)
        for budget, poly in zip(budgets, polys, strict=True):
            reach = tree.dist <= budget
            assert reach.sum() > 10 and shapely.covers(poly, points[reach]).all()
            touched = reach[graph.source] | reach[graph.target]
            roads_reached = shapely.union_all([*graph.lines[touched], shapely.LineString([start, origin.xy[0]])])
            away = ~reach & (shapely.distance(roads_reached, points) > network.ISOCHRONE_BUFFER_M + 1e-6)
            assert away.any() and not shapely.covers(poly, points[away]).any()
        assert polys[1].contains(shapely.Point(start))
