"""The demo city's own synthetic road network: written as OSM XML, imported by the real importer, routed on.

The test database holds the demo city the loader made (``services.loading.load_demo``); these tests
rebuild the same file from the same inputs (the demo city's seats, towns and villages, same seed) and
first check that it is byte for byte the file behind the network in the database, then examine that
network. Nothing is imported here, so later tests see the demo's network.
"""
from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET

import networkx as nx
import numpy as np
import pytest
import shapely
from pyproj import Geod
from scipy.spatial import cKDTree
from sqlalchemy import text

from db import roads as db_roads
from demo import build_demo_city
from demo.crossings import RURAL_CROSSING_M
from demo.roads import demo_places, write_demo_roads
from etl.boundaries import read_districts
from geo import network
from geo.crs import from_metric, to_metric, transform_geometry
from services import roads
from tests.road_model import RoadModel

GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def demo(engine, tmp_path_factory):
    districts = read_districts()
    city = build_demo_city(districts, seed=20221)
    seats, towns, villages = demo_places(city, districts)
    path = tmp_path_factory.mktemp("roads") / "demo-roads.osm"
    built = write_demo_roads(path, seats, towns, villages, list(districts.geometry), seed=20221)
    record = roads.current_import(engine)
    assert record["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), \
        "the test database holds the network of exactly this file"
    city_m = shapely.union_all([transform_geometry(d, to_metric) for d in districts.geometry])
    return {"path": path, "built": built, "record": record, "villages": villages, "city": city_m,
            "graph": roads.graph(engine, "walk"), "river": transform_geometry(built.river, to_metric),
            "bridges": _metric(built.bridges)}


def _metric(lonlat: np.ndarray) -> np.ndarray:
    return np.column_stack(to_metric(lonlat[:, 0], lonlat[:, 1]))


def _route(graph: network.Graph, a: np.ndarray, b: np.ndarray) -> network.Route:
    return network.route(graph, network.snap(graph, a[None]), network.snap(graph, b[None]))


def _north(river: shapely.LineString, xy: np.ndarray) -> np.ndarray:
    """Whether each point (EPSG:4548) lies north of the river (a west-east line, one y per x)."""
    rx, ry = shapely.get_coordinates(river).T
    return np.asarray(xy[:, 1] > np.interp(xy[:, 0], rx, ry))


class TestTheFile:
    def test_every_way_is_labelled_synthetic_and_named_so(self, demo):
        ways = ET.parse(demo["path"]).getroot().findall("way")
        assert len(ways) > 1000
        for way in ways:
            tags = {t.get("k"): t.get("v") for t in way.findall("tag")}
            assert tags["synthetic"] == "yes" and tags["name"].endswith("（合成）")

    def test_the_river_is_crossed_on_bridges_only_and_every_few_km(self, demo):
        root = ET.parse(demo["path"]).getroot()
        pos = {n.get("id"): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
        river = demo["built"].river
        crossing = []
        for way in root.iter("way"):
            tags = {t.get("k"): t.get("v") for t in way.findall("tag")}
            line = shapely.LineString([pos[nd.get("ref")] for nd in way.findall("nd")])
            if "highway" in tags and line.intersects(river):
                crossing.append(line)
                assert tags.get("bridge") == "yes", tags
        inside = shapely.intersection(demo["river"], demo["city"])
        along = np.sort(shapely.line_locate_point(inside, shapely.points(_metric(
            np.array([shapely.get_coordinates(shapely.intersection(c, river))[0] for c in crossing])))))
        gaps = np.diff(np.concatenate([[0.0], along, [inside.length]]))
        assert len(crossing) >= inside.length / RURAL_CROSSING_M, "a crossing every few kilometres"
        assert gaps.max() <= 2.5 * RURAL_CROSSING_M, f"the longest stretch without a bridge is {gaps.max():.0f} m"


class TestTheImport:
    def test_it_went_through_the_real_importer_as_one_connected_synthetic_network(self, demo, engine):
        report = demo["record"]["report"]
        assert demo["record"]["synthetic"] and report["dropped"] == {} and report["missing_nodes"] == 0
        assert report["components"] == {"walk": 1, "drive": 1}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT bool_and(synthetic) FROM road_edge")).scalar()

    def test_every_village_is_on_the_network(self, demo):
        village_xy = _metric(np.array([(v.lon, v.lat) for v in demo["villages"]]))
        assert network.snap(demo["graph"], village_xy).access_m.max() < 1.0


class TestDistances:
    def test_network_distance_is_never_below_the_straight_line(self, demo):
        graph = demo["graph"]
        rng = np.random.default_rng(7)
        minx, miny, maxx, maxy = demo["city"].bounds
        xy = rng.uniform((minx, miny), (maxx, maxy), (200, 2))
        xy = xy[shapely.contains_xy(demo["city"], xy[:, 0], xy[:, 1])][:60]
        lonlat = np.column_stack(from_metric(xy[:, 0], xy[:, 1]))
        for i in range(0, len(xy) - 1, 2):
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
        graph, river = demo["graph"], demo["river"]
        used = np.unique(np.concatenate([graph.source, graph.target]))
        xy = graph.vertex_xy[used]
        north = _north(river, xy)
        far = cKDTree(demo["bridges"]).query(xy)[0] > 1500
        near = shapely.distance(river, shapely.points(xy)) < 1000
        a, b = xy[north & far & near], xy[~north & far & near]
        dist, idx = cKDTree(b).query(a)
        pairs = np.flatnonzero(dist < 1500)
        assert len(pairs) >= 3, "a few junctions face each other across the river, away from the bridges"
        for i in pairs:
            straight = float(dist[i])
            assert shapely.LineString([a[i], b[idx[i]]]).intersects(river)
            assert _route(graph, a[i], b[idx[i]]).distance_m > 2 * straight + 2000

    def test_no_detour_across_the_river_is_longer_than_a_walk_to_the_next_bridges(self, demo):
        """With a crossing every few kilometres, facing banks are never tens of kilometres apart."""
        graph, river = demo["graph"], demo["river"]
        used = np.unique(np.concatenate([graph.source, graph.target]))
        xy = graph.vertex_xy[used]
        inside = shapely.contains_xy(demo["city"], xy[:, 0], xy[:, 1])
        near = (shapely.distance(river, shapely.points(xy)) < 600) & inside
        north = _north(river, xy)
        a, b = xy[near & north], xy[near & ~north]
        dist, idx = cKDTree(b).query(a)
        worst = max(_route(graph, a[i], b[idx[i]]).distance_m - dist[i]
                    for i in np.random.default_rng(3).choice(len(a), min(40, len(a)), replace=False))
        assert worst < 4 * RURAL_CROSSING_M, f"a detour of {worst:.0f} m"

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


def _bridge_lines(built, river: shapely.LineString) -> np.ndarray:
    """The pieces of road across the river (EPSG:4548), from the file's ways."""
    xy = _metric(built.lonlat)
    pieces = [shapely.LineString(xy[np.asarray(nodes) - 1]) for nodes, tags in built.ways
              if tags.get("bridge") == "yes" and "highway" in tags]
    return np.array([p for p in pieces if p.intersects(river)])


class TestTheApi:
    def test_the_nearest_by_air_across_the_river_is_not_the_nearest_on_foot(self, demo, client):
        graph, river = demo["graph"], demo["river"]
        bridges = _bridge_lines(demo["built"], river)
        used = np.unique(np.concatenate([graph.source, graph.target]))
        xy = graph.vertex_xy[used]
        far = shapely.distance(shapely.union_all(bridges), shapely.points(xy)) > 1000
        starts = xy[far & (shapely.distance(river, shapely.points(xy)) < 1000)]
        checked = further = 0
        for q in starts[:: max(1, len(starts) // 40)]:
            lon, lat = (float(v) for v in from_metric(*q))
            air = client.get(f"/api/nearest?lon={lon}&lat={lat}&layer=all&k=1&by=straight").get_json()
            for f in air["features"]:
                f_xy = np.array(to_metric(*f["geometry"]["coordinates"]))
                nearest_road = graph.lines[int(np.argmin(shapely.distance(graph.lines, shapely.Point(f_xy))))]
                access = shapely.shortest_line(shapely.Point(f_xy), nearest_road)
                if _north(river, q[None])[0] == _north(river, f_xy[None])[0] or access.intersects(river) \
                        or f["properties"]["straight_m"] > 3000:
                    continue  # on this bank, far away, or it reaches a road over the water
                # every way on foot crosses on a bridge: at least the line to a bridge and on from it
                bound = float(np.min(shapely.distance(bridges, shapely.Point(q))
                                     + shapely.distance(bridges, shapely.Point(f_xy))))
                layer = f["properties"]["layer"]
                foot = client.get(f"/api/nearest?lon={lon}&lat={lat}&layer={layer}&k=10&by=walk").get_json()
                listed = {g["properties"]["id"]: g["properties"]["distance_m"] for g in foot["features"]}
                by_road = listed.get(f["properties"]["id"], np.inf)  # not listed: further than the 10 listed
                assert by_road >= 0.999 * bound >= f["properties"]["straight_m"]
                checked += 1
                further += by_road > f["properties"]["straight_m"] + 1000
        assert checked >= 3, "by the river, some facilities nearest by air stand on the other bank"
        assert further >= 2, "and are much further on foot"

    def test_the_isochrone_holds_the_junctions_reachable_in_time_and_not_the_others(self, client, engine):
        seat = read_districts().iloc[0]
        lon, lat = seat.seat_lon + 0.0007, seat.seat_lat + 0.0004
        r = client.get(f"/api/isochrone?lon={lon}&lat={lat}&minutes=15,5&by=walk")
        assert r.status_code == 200 and r.content_type == "application/geo+json"
        body = r.get_json()
        model = RoadModel(engine, "walk")
        model.insert({"q": to_metric(lon, lat)})
        reached = model.distances_from("q")
        with engine.connect() as conn:
            ids, xs, ys = zip(*conn.execute(text("SELECT id, ST_X(ST_Transform(geom, 4548)),"
                                                 " ST_Y(ST_Transform(geom, 4548)) FROM road_vertex")).all(),
                              strict=True)
        dist = np.array([reached.get(i, np.inf) for i in ids])
        points = shapely.points(np.column_stack([xs, ys]))
        assert [f["properties"]["minutes"] for f in body["features"]] == [5, 15]
        for f in body["features"]:
            p = f["properties"]
            assert p["by"] == "walk" and p["speed_m_per_min"] == 80.0 and p["synthetic_network"] is True
            assert "widened by 50 m" in p["rule"]
            area = transform_geometry(shapely.geometry.shape(f["geometry"]), to_metric)
            budget = p["minutes"] * p["speed_m_per_min"]
            inside = dist <= budget - 1.0
            assert inside.sum() >= 3 and shapely.covers(area.buffer(0.5), points[inside]).all()
            roads_near = shapely.union_all([*model.lines[np.isin(model.source, np.array(ids)[inside])
                                                         | np.isin(model.target, np.array(ids)[inside])]])
            away = (dist > budget + 1.0) & (shapely.distance(roads_near, points) > 60.0)
            assert away.any() and not shapely.covers(area, points[away]).any()

    @pytest.mark.parametrize("query, parameter", [
        ("minutes=0", "minutes"), ("minutes=61", "minutes"), ("minutes=1,2,3,4,5,6,7", "minutes"),
        ("minutes=5,,10", "minutes"), ("minutes=ten", "minutes"), ("by=straight", "by"), ("crs=utm50", "crs"),
    ])
    def test_bad_isochrone_parameters_are_named(self, client, query, parameter):
        r = client.get(f"/api/isochrone?lon=117.3&lat=34.8&{query}")
        assert r.status_code == 400 and r.get_json()["error"]["parameter"] == parameter
