"""Residents' nearest and search: the service layer, the settings and the published bounds.

The second KNN round is checked on a scratch database set up so that planar
(degree) order hides the truly nearest facility; the answer is compared with
PostGIS's ellipsoidal ``ST_Distance`` over every facility. The published
bounds are read from ``/openapi.json`` and tried one step inside and one
step outside against the views.
"""
from __future__ import annotations

import math
import re
from urllib.parse import quote

import pytest
from sqlalchemy import event, text

from geo.crs import POSITION_CRS
from geo.nearest import geodesic_distance_m
from layers import LAYER_KEYS
from services import nearest as nearest_service
from services import nearest_held
from services.errors import InvalidRequest
from web import create_app

# --------------------------------------------------------------------------
# when degrees mislead: the second round
# --------------------------------------------------------------------------

#: A spot in Shizhong, and latitude/longitude steps that mislead planar order there:
#: a degree of longitude is about 0.82 of a degree of latitude on the ground.
SPOT = (117.5566, 34.8640)


def _put(conn, layer: str, source_id: str, lon: float, lat: float) -> int:
    return conn.execute(text(
        "INSERT INTO facility (layer, source_id, name, geom, point, synthetic)"
        " VALUES (:layer, :sid, :sid, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),"
        " ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), true) RETURNING id"),
        {"layer": layer, "sid": source_id, "lon": lon, "lat": lat}).scalar_one()


class TestPlanarOrderMisleads:
    @pytest.mark.parametrize("held", [True, False], ids=["held", "queried"])
    def test_the_truly_nearest_is_found_behind_a_wall_of_planar_candidates(self, scratch_engine, scratch_app, held,
                                                                          monkeypatch, request):
        nearest_held.forget()
        request.addfinalizer(nearest_held.forget)
        if not held:
            monkeypatch.setattr(nearest_held, "MAX_HELD_FACILITIES", -1)
        lon, lat = SPOT
        k = 1
        # More facilities due north than the first round fetches, all nearer in degrees than the one due
        # east, but all farther on the ground (0.0085 deg north is ~943 m; 0.0100 deg east is ~913 m).
        wall = nearest_service.candidates_per_layer(k) + 3
        with scratch_engine.begin() as conn:
            for i in range(wall):
                _put(conn, "service_office", f"north-{i}", lon + 0.0001 * (i % 3), lat + 0.0085 + 0.0001 * i)
            east = _put(conn, "service_office", "east", lon + 0.0100, lat)
            brute = conn.execute(text(
                "SELECT id, ST_Distance(point::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography,"
                " true) AS d FROM facility ORDER BY d LIMIT 1"), {"lon": lon, "lat": lat}).one()
            planar_first = conn.execute(text(
                "SELECT id FROM facility ORDER BY point <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) LIMIT 1"),
                {"lon": lon, "lat": lat}).scalar_one()
        assert brute.id == east and planar_first != east, "the set-up misleads planar order"
        result = nearest_service.nearest(scratch_engine, lon, lat, ["service_office"], k, by="straight")
        # The database's KNN orders by plain degrees, so it needs the second round; what a process holds is
        # ordered in the scaled plane (longitude times the cosine of the latitude), which this wall does not fool.
        assert result.rounds == (1 if held else 2)
        body = scratch_app.test_client().get(
            f"/api/nearest?lon={lon}&lat={lat}&layer=service_office&k=1&by=straight").get_json()
        (f,) = body["features"]
        assert f["properties"]["id"] == east
        assert f["properties"]["distance_m"] == pytest.approx(brute.d, abs=0.06)
        assert f["properties"]["distance_m"] == pytest.approx(geodesic_distance_m(lon, lat, lon + 0.0100, lat),
                                                              abs=0.06)

    def test_beyond_the_held_bound_s_reach_the_rounds_read_more_and_find_the_nearest(self, scratch_engine, request):
        """Every facility farther than the scaled bound reaches (about 110 km): the held first round cannot be
        sure of its answer, so that layer goes through the rounds, and the answer is still the nearest."""
        nearest_held.forget()
        request.addfinalizer(nearest_held.forget)
        lon, lat = SPOT
        k = 1
        with scratch_engine.begin() as conn:
            ids = [_put(conn, "police_station", f"far-{i}", lon + 1.5 + 0.3 * i, lat + 0.2 * (i % 2))
                   for i in range(k + nearest_held.FIRST_EXTRA + 3)]
            _put(conn, "parking", "near", lon + 0.01, lat)
        result = nearest_service.nearest(scratch_engine, lon, lat, ["parking", "police_station"], k, by="straight")
        held = nearest_held.current(scratch_engine)
        assert held is not None, "the facilities are held"
        first = held.nearest_straight(["parking", "police_station"], lon, lat, k)
        assert first["police_station"] is None and len(first["parking"]) == 1, "only the far layer is unsure"
        (got,) = result.by_layer["police_station"]
        assert got["id"] == ids[0]
        assert got["distance_m"] == pytest.approx(geodesic_distance_m(lon, lat, lon + 1.5, lat), abs=0.01)
        assert [r["name"] for r in result.by_layer["parking"]] == ["near"]

    def test_a_layer_with_no_facilities_answers_an_empty_list(self, scratch_engine, scratch_app):
        body = scratch_app.test_client().get("/api/nearest?lon=117.5566&lat=34.864&layer=all&k=3").get_json()
        assert body["features"] == [] and body["numberReturned"] == 0 and body["query"]["inside_city"] is True

    def test_without_a_road_network_the_default_is_a_straight_line_and_roads_are_refused(self, scratch_engine,
                                                                                          scratch_app):
        with scratch_engine.begin() as conn:
            _put(conn, "parking", "P1", SPOT[0] + 0.01, SPOT[1])
            loaded = conn.execute(text("SELECT count(*) FROM road_edge")).scalar()
        assert loaded == 0, "the scratch database has no road network"
        client = scratch_app.test_client()
        body = client.get(f"/api/nearest?lon={SPOT[0]}&lat={SPOT[1]}&layer=parking&k=1").get_json()
        assert body["query"]["by"] == "straight" and body["query"]["network"] == {"loaded": False, "synthetic": False}
        (f,) = body["features"]
        assert f["properties"]["minutes"] is None and f["properties"]["route"] is None
        here = f"lon={SPOT[0]}&lat={SPOT[1]}"
        for path in (f"/api/nearest?{here}&by=walk", f"/api/isochrone?{here}"):
            r = client.get(path)
            assert r.status_code == 400 and r.get_json()["error"]["parameter"] == "by"
            assert "no road network is loaded" in r.get_json()["error"]["message"]


# --------------------------------------------------------------------------
# the service layer and the settings
# --------------------------------------------------------------------------

class TestService:
    @pytest.mark.parametrize("by", ["straight", "walk"])
    def test_a_nearest_request_takes_no_connection_once_the_facilities_are_held(self, client, app, by,
                                                                                 monkeypatch):
        monkeypatch.setattr(nearest_held, "RECHECK_S", 3600.0)  # the once-a-second version check is not due
        nearest_held.forget()  # the next request reads what is held
        checkouts: list[int] = []

        def count(*_args) -> None:
            checkouts.append(1)

        client.get(f"/api/nearest?lon=117.31&lat=34.81&layer=all&k=1&by={by}")  # the engine and caches are warm
        served = app.extensions["engine"]
        event.listen(served, "checkout", count)
        try:
            r = client.get(f"/api/nearest?lon=117.3&lat=34.8&layer=all&k=5&by={by}")
        finally:
            event.remove(served, "checkout", count)
        assert r.status_code == 200 and len(r.get_json()["features"]) == 5 * len(LAYER_KEYS)
        # the district, the network's state, every candidate round and the road graph's cache key come from
        # what the process holds: no connection is taken
        assert len(checkouts) == 0

    @pytest.mark.parametrize("kwargs, parameter", [
        ({"k": 0}, "k"), ({"k": nearest_service.MAX_K + 1}, "k"), ({"layer": "parks"}, "layer"),
        ({"layer": "parking,"}, "layer"), ({"crs": "utm50"}, "crs"), ({"by": "bicycle"}, "by"),
    ])
    def test_the_service_checks_its_inputs_too(self, engine, kwargs, parameter):
        with pytest.raises(InvalidRequest) as err:
            nearest_service.nearest_collection(engine, 117.3, 34.8, **kwargs)
        assert err.value.parameter == parameter

    @pytest.mark.parametrize("q, limit, parameter", [("", 10, "q"), ("x" * 51, 10, "q"), ("便民", 0, "limit")])
    def test_search_service_checks_its_inputs(self, engine, q, limit, parameter):
        with pytest.raises(InvalidRequest) as err:
            nearest_service.search_collection(engine, q, limit=limit)
        assert err.value.parameter == parameter

    def test_the_default_walking_speed_is_4_8_km_per_hour(self, database_url, monkeypatch):
        monkeypatch.delenv("MINSHENG_WALK_SPEED_M_PER_MIN", raising=False)
        app = create_app({"DATABASE_URL": database_url, "TESTING": True})
        assert app.config["WALK_SPEED_M_PER_MIN"] == pytest.approx(4.8 * 1000 / 60)

    def test_a_deployment_sets_its_own_walking_speed(self, database_url, monkeypatch):
        monkeypatch.setenv("MINSHENG_WALK_SPEED_M_PER_MIN", "60")
        body = create_app({"DATABASE_URL": database_url, "TESTING": True}).test_client().get(
            "/api/nearest?lon=117.3&lat=34.8&layer=all&k=3&by=walk").get_json()
        assert body["query"]["speeds_m_per_min"] == {"walk": 60, "drive": 500}
        for f in body["features"]:
            assert f["properties"]["minutes"] == math.ceil(f["properties"]["distance_m"] / 60)


class TestPublishedBounds:
    """``/openapi.json`` says what the views accept: at each published bound one step in is 200, one out 400."""

    @staticmethod
    def _params(client, path: str) -> dict[str, dict]:
        op = client.get("/openapi.json").get_json()["paths"][path]["get"]
        return {p["name"]: p for p in op["parameters"]}

    @pytest.mark.parametrize("path, base, name", [
        ("/api/nearest", "lon=117.3&lat=34.8&layer=parking", "k"),
        ("/api/search", "q=便民", "limit"),
    ])
    def test_integer_bounds(self, client, path, base, name):
        schema = self._params(client, path)[name]["schema"]
        lo, hi = schema["minimum"], schema["maximum"]
        assert client.get(f"{path}?{base}&{name}={lo}").status_code == 200
        assert client.get(f"{path}?{base}&{name}={hi}").status_code == 200
        assert client.get(f"{path}?{base}&{name}={lo - 1}").get_json()["error"]["parameter"] == name
        assert client.get(f"{path}?{base}&{name}={hi + 1}").get_json()["error"]["parameter"] == name

    @pytest.mark.parametrize("name, inside, outside", [("lon", "117.3", "180.001"), ("lat", "34.8", "90.001")])
    def test_coordinate_bounds(self, client, name, inside, outside):
        schema = self._params(client, "/api/nearest")[name]["schema"]
        assert abs(schema["minimum"]) == schema["maximum"] == float(outside.split(".")[0])
        other = {"lon": "lat=34.8", "lat": "lon=117.3"}[name]
        assert client.get(f"/api/nearest?{other}&{name}={inside}&layer=parking&k=1").status_code == 200
        r = client.get(f"/api/nearest?{other}&{name}={outside}&layer=parking&k=1")
        assert r.status_code == 400 and r.get_json()["error"]["parameter"] == name

    def test_query_length(self, client):
        schema = self._params(client, "/api/search")["q"]["schema"]
        assert client.get("/api/search?q=" + quote("长" * schema["maxLength"])).status_code == 200
        r = client.get("/api/search?q=" + quote("长" * (schema["maxLength"] + 1)))
        assert r.status_code == 400 and r.get_json()["error"]["parameter"] == "q"

    def test_every_published_crs_is_accepted_and_they_are_the_phone_systems(self, client):
        schema = self._params(client, "/api/nearest")["crs"]["schema"]
        assert set(schema["enum"]) == {"wgs84", "gcj02", "bd09"} == set(POSITION_CRS)
        for crs in schema["enum"]:
            assert client.get(f"/api/nearest?lon=117.3&lat=34.8&k=1&crs={crs}").status_code == 200

    def test_every_published_layer_is_accepted(self, client):
        pattern = re.compile(self._params(client, "/api/nearest")["layer"]["schema"]["pattern"])
        search_layers = self._params(client, "/api/search")["layer"]["schema"]["enum"]
        assert set(search_layers) == set(LAYER_KEYS)
        lists = [*LAYER_KEYS, "all", ",".join(LAYER_KEYS), f"{LAYER_KEYS[-1]},{LAYER_KEYS[0]}"]
        for layer in lists:
            assert pattern.fullmatch(layer), layer
            assert client.get(f"/api/nearest?lon=117.3&lat=34.8&k=1&layer={layer}&by=straight").status_code == 200
        for layer in ("parks", "all,parking", "parking,", ",parking", "parking;police_station"):
            assert not pattern.fullmatch(layer), layer
            assert client.get(f"/api/nearest?lon=117.3&lat=34.8&k=1&layer={layer}").status_code == 400
        for layer in search_layers:
            assert client.get(f"/api/search?q=示例&layer={layer}").status_code == 200

    def test_every_published_travel_mode_is_accepted(self, client):
        for path in ("/api/nearest", "/api/isochrone"):
            modes = self._params(client, path)["by"]["schema"]["enum"]
            assert set(modes) <= {"walk", "drive", "straight"} and {"walk", "drive"} <= set(modes)
            for by in modes:
                assert client.get(f"{path}?lon=117.3&lat=34.8&by={by}").status_code == 200, (path, by)
