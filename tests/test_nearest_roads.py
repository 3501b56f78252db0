"""Nearest along the roads (``/api/nearest?by=walk|drive``) on the demo city's own network.

Every figure is checked against something computed another way: distances
along the roads against a networkx model of the edges read with SQL
(``tests/road_model.py``: its own snapping by brute force, the stated rule),
straight distances against PostGIS ``ST_Distance(geography)``, route lengths
against pyproj's geodesic line length.
"""
from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Geod
from sqlalchemy import text

from geo.crs import to_metric
from tests.road_model import RoadModel, nearest_of

GEOD = Geod(ellps="WGS84")
K = 3
QUERIES = 30
#: The stated tolerance of the comparison with the independent model.
REL, ABS_M = 0.01, 30.0
SAMPLE_M = 25.0  # the stated rule: an area's boundary sampled every 25 m

STRAIGHT_SQL = text("SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography,"
                    " true) FROM facility WHERE id = :id")


def _random_points(engine, n: int, seed: int) -> list[tuple[float, float]]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT ST_X(g), ST_Y(g) FROM (SELECT (ST_Dump(ST_GeneratePoints(ST_Union(geom), :n, :seed))).geom AS g"
            " FROM district) s"), {"n": n, "seed": seed}).all()
    return [(float(x), float(y)) for x, y in rows]


def _xy(lon: float, lat: float) -> tuple[float, float]:
    x, y = to_metric(lon, lat)
    return float(x), float(y)


@pytest.fixture(scope="module")
def walking(engine):
    """The walking model with random query points, every car park and every park's boundary samples inserted."""
    points = _random_points(engine, QUERIES, 20221201)
    with engine.connect() as conn:
        parking = conn.execute(text("SELECT id, ST_X(geom), ST_Y(geom) FROM facility WHERE layer = 'parking'"
                                    " AND status = 'active'")).all()
        parks = conn.execute(text("SELECT id, ST_AsBinary(ST_Transform(geom, 4548)) FROM facility"
                                  " WHERE layer = 'pocket_park' AND status = 'active'")).all()
    named: dict = {("q", i): _xy(*p) for i, p in enumerate(points)}
    named.update({("f", fid): _xy(x, y) for fid, x, y in parking})
    for fid, wkb in parks:
        outline = shapely.segmentize(shapely.boundary(shapely.from_wkb(bytes(wkb))), SAMPLE_M)
        named.update({("park", fid, j): tuple(xy) for j, xy in enumerate(shapely.get_coordinates(outline))})
    model = RoadModel(engine, "walk")
    model.insert(named)
    return {"model": model, "points": points, "parking": [r[0] for r in parking],
            "parks": {fid: [n for n in named if n[0] == "park" and n[1] == fid] for fid, _ in parks}}


def _close(got: float, expected: float) -> bool:
    return abs(got - expected) <= REL * expected + ABS_M


def _get(client, lon: float, lat: float, query: str) -> dict:
    r = client.get(f"/api/nearest?lon={lon}&lat={lat}&{query}")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return r.get_json()


class TestAgainstTheModel:
    def test_car_parks_by_road_are_the_k_nearest_of_the_networkx_model(self, client, engine, walking):
        model = walking["model"]
        with engine.connect() as conn:
            for i, (lon, lat) in enumerate(walking["points"]):
                body = _get(client, lon, lat, f"layer=parking&k={K}&by=walk")
                got = [(f["properties"]["id"], f["properties"]["distance_m"]) for f in body["features"]]
                expected = nearest_of(model.distances_from(("q", i)), [("f", fid) for fid in walking["parking"]])
                assert len(got) == K
                for (gid, gd), ((_, eid), ed) in zip(got, expected[:K], strict=True):
                    assert _close(gd, ed), f"point {i}: {gd} m by road, the model says {ed} m"
                    if gid != eid:  # a tie within the tolerance may swap
                        assert _close(dict((n[1], d) for n, d in expected)[gid], ed)
                for f in body["features"]:
                    p = f["properties"]
                    brute = conn.execute(STRAIGHT_SQL, {"lon": lon, "lat": lat, "id": p["id"]}).scalar_one()
                    assert p["straight_m"] == pytest.approx(brute, abs=0.06)
                    assert p["distance_m"] >= p["straight_m"] - 0.1, "no road route is shorter than the line"

    def test_a_park_is_reached_at_its_nearest_boundary_sample(self, client, walking):
        model = walking["model"]
        for i, (lon, lat) in enumerate(walking["points"][:12]):
            body = _get(client, lon, lat, "layer=pocket_park&k=2&by=walk")
            reach = model.distances_from(("q", i))
            by_park = {fid: min((reach[n] for n in samples if n in reach), default=np.inf)
                       for fid, samples in walking["parks"].items()}
            expected = sorted(by_park.values())[:2]
            got = [f["properties"]["distance_m"] for f in body["features"]]
            assert all(_close(g, e) for g, e in zip(got, expected, strict=True)), (got, expected)
            for f in body["features"]:
                assert _close(f["properties"]["distance_m"], by_park[f["properties"]["id"]])

    def test_driving_follows_one_way_rules_as_the_directed_model_does(self, client, engine):
        points = _random_points(engine, 8, 7)
        with engine.connect() as conn:
            clinics = conn.execute(text("SELECT id, ST_X(geom), ST_Y(geom) FROM facility"
                                        " WHERE layer = 'village_clinic' AND status = 'active'")).all()
        model = RoadModel(engine, "drive")
        model.insert({**{("q", i): _xy(*p) for i, p in enumerate(points)},
                      **{("f", fid): _xy(x, y) for fid, x, y in clinics}})
        for i, (lon, lat) in enumerate(points):
            body = _get(client, lon, lat, "layer=village_clinic&k=2&by=drive")
            expected = nearest_of(model.distances_from(("q", i)), [("f", fid) for fid, _, _ in clinics])[:2]
            got = [f["properties"]["distance_m"] for f in body["features"]]
            assert all(_close(g, e) for g, (_, e) in zip(got, expected, strict=True)), (got, expected)
            assert all(f["properties"]["minutes"] == int(np.ceil(f["properties"]["distance_m"] / 500.0))
                       for f in body["features"])


class TestRoutes:
    def test_a_route_runs_from_the_position_to_the_facility_and_is_as_long_as_the_distance(self, client, walking):
        for lon, lat in walking["points"][:10]:
            body = _get(client, lon, lat, "layer=parking,service_office&k=2&by=walk")
            for f in body["features"]:
                line = np.array(f["properties"]["route"]["coordinates"])
                assert line[0] == pytest.approx([lon, lat], abs=1e-6), "it starts where the resident is"
                assert line[-1] == pytest.approx(f["geometry"]["coordinates"], abs=1e-6), "it ends at the facility"
                length = GEOD.line_length(line[:, 0], line[:, 1])
                assert length == pytest.approx(f["properties"]["distance_m"], rel=2e-3, abs=1.0)

    def test_a_route_to_a_park_ends_on_its_boundary(self, client, engine, walking):
        lon, lat = walking["points"][0]
        body = _get(client, lon, lat, "layer=pocket_park&k=3&by=walk")
        with engine.connect() as conn:
            for f in body["features"]:
                end = f["properties"]["route"]["coordinates"][-1]
                gap = conn.execute(text(
                    "SELECT ST_Distance(ST_Boundary(geom)::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)"
                    "::geography) FROM facility WHERE id = :id"), {"x": end[0], "y": end[1],
                                                                   "id": f["properties"]["id"]}).scalar_one()
                assert gap < 0.05


@pytest.fixture(scope="module")
def park(engine):
    """The largest park: id, a point inside it, its representative point, its easternmost longitude."""
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT id, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), ST_X(point), ST_Y(point),"
            " ST_XMax(geom) FROM facility WHERE layer = 'pocket_park' AND status = 'active'"
            " AND GeometryType(geom) = 'POLYGON' ORDER BY ST_Area(geom::geography) DESC LIMIT 1")).one()


class TestAreasInAStraightLine:
    @pytest.mark.parametrize("by", ["straight", "walk"])
    def test_inside_a_park_it_is_0_m_away(self, client, park, by):
        fid, lon, lat = park[0], park[1], park[2]
        body = _get(client, lon, lat, f"layer=pocket_park&k=1&by={by}")
        (f,) = body["features"]
        assert f["properties"]["id"] == fid and f["properties"]["distance_m"] == 0.0
        assert f["properties"]["straight_m"] == 0.0

    def test_outside_it_is_the_distance_to_its_edge_not_its_centre(self, client, engine, park):
        fid, east = park[0], park[5] + 0.0015  # about 140 m east of the park's easternmost point
        lat = park[4]
        body = _get(client, east, lat, "layer=pocket_park&k=1&by=straight")
        (f,) = body["features"]
        with engine.connect() as conn:
            edge = conn.execute(STRAIGHT_SQL, {"lon": east, "lat": lat, "id": fid}).scalar_one()
        centre = GEOD.inv(east, lat, park[3], park[4])[2]
        assert f["properties"]["id"] == fid
        assert f["properties"]["distance_m"] == pytest.approx(edge, abs=0.06) and edge < centre - 1.0


class TestLayers:
    def test_a_list_of_layers_gives_those_layers_only_k_each_nearest_first(self, client, walking):
        lon, lat = walking["points"][3]
        body = _get(client, lon, lat, "layer=village_clinic,parking&k=4&by=walk")
        layers = [f["properties"]["layer"] for f in body["features"]]
        assert sorted(layers) == ["parking"] * 4 + ["village_clinic"] * 4
        assert body["query"]["layers"] == ["village_clinic", "parking"]
        d = [f["properties"]["distance_m"] for f in body["features"]]
        assert d == sorted(d)

    def test_the_default_is_walking_when_a_network_is_loaded(self, client):
        body = _get(client, 117.32, 34.81, "layer=parking&k=1")
        assert body["query"]["by"] == "walk" and body["features"][0]["properties"]["by"] == "walk"
        assert body["query"]["network"] == {"loaded": True, "synthetic": True}
        assert "nearest point of the nearest road" in body["distance_note"]

    def test_far_outside_the_city_it_still_answers_and_is_never_below_the_line(self, client):
        body = _get(client, 116.30, 34.30, "layer=police_station&k=2&by=walk")
        assert body["query"]["inside_city"] is False and len(body["features"]) == 2
        for f in body["features"]:
            assert f["properties"]["distance_m"] >= f["properties"]["straight_m"] > 20_000
