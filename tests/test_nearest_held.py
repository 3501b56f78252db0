"""Nearest from what a process holds in memory: the planar index against brute force, an area's ground
distance against PostGIS, and freshness (a change committed by anyone shows in the next answer).

The planar index is checked against numpy brute force over every item (and
shapely's own distance for areas); an area's geodesic distance against
PostGIS's ellipsoidal ``ST_Distance(geography, geography, true)``. The
freshness tests change the data through a connection of their own, as
another process would, and ask the API at once.
"""
from __future__ import annotations

import subprocess
import threading
import time

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from db import libpq_url
from geo.crs import from_metric, from_wgs84, gcj02_to_bd09, to_metric, to_wgs84, wgs84_to_gcj02
from geo.nearest import GEOD, SCALED_REACH_DEG, scaled_bound_m, scaled_bound_slope_m
from geo.planar_index import LayeredIndex, PlanarIndex, geodesic_distance_to_areas_m
from services import nearest_held

# --------------------------------------------------------------------------
# the planar index: pure
# --------------------------------------------------------------------------


def _items(seed: int, points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``points`` points and 40 small squares (about 50-300 m a side) around Zaozhuang, WGS-84 degrees."""
    rng = np.random.default_rng(seed)
    lons, lats = rng.uniform(117.2, 117.8, points + 40), rng.uniform(34.5, 35.2, points + 40)
    squares = [shapely.box(x, y, x + s, y + s) for x, y, s in
               zip(lons[points:], lats[points:], rng.uniform(0.0005, 0.003, 40), strict=True)]
    return lons, lats, np.array([None] * points + squares, dtype=object)


#: A layer small enough to be measured point by point, and one in a k-d tree.
SIZES = [300, 3000]


def _brute_deg(lons, lats, areas, lon, lat) -> np.ndarray:
    here = shapely.Point(lon, lat)
    return np.array([np.hypot(x - lon, y - lat) if a is None else a.distance(here)
                     for x, y, a in zip(lons, lats, areas, strict=True)])


@pytest.mark.parametrize("points", SIZES)
@pytest.mark.parametrize("seed", [1, 2])
def test_the_m_nearest_in_planar_order_are_the_brute_force_ones(seed, points):
    lons, lats, areas = _items(seed, points)
    index = PlanarIndex(lons, lats, areas)
    rng = np.random.default_rng(seed + 100)
    for lon, lat in zip(rng.uniform(117.1, 117.9, 60), rng.uniform(34.4, 35.3, 60), strict=True):
        brute = _brute_deg(lons, lats, areas, lon, lat)
        for m in (1, 9, 50):
            idx, deg = index.nearest(lon, lat, m)
            assert len(idx) == m and list(deg) == sorted(deg)
            np.testing.assert_allclose(deg, np.sort(brute)[:m], rtol=0, atol=1e-12)
            np.testing.assert_allclose(deg, brute[idx], rtol=0, atol=1e-12)


@pytest.mark.parametrize("points", SIZES)
@pytest.mark.parametrize("radius", [0.001, 0.01, 0.05])
def test_within_a_radius_holds_exactly_the_brute_force_items(radius, points):
    lons, lats, areas = _items(7, points)
    index = PlanarIndex(lons, lats, areas)
    rng = np.random.default_rng(8)
    for lon, lat in zip(rng.uniform(117.2, 117.8, 40), rng.uniform(34.5, 35.2, 40), strict=True):
        brute = _brute_deg(lons, lats, areas, lon, lat)
        idx, deg = index.within(lon, lat, radius)
        assert sorted(idx.tolist()) == sorted(np.flatnonzero(brute <= radius).tolist())
        np.testing.assert_allclose(deg, brute[idx], rtol=0, atol=1e-12)
    assert len(index.within(117.5, 34.8, None)[0]) == len(areas)


def test_a_position_inside_an_area_is_0_degrees_and_0_metres_from_it():
    square = shapely.box(117.50, 34.80, 117.51, 34.81)
    index = PlanarIndex(np.array([117.0]), np.array([34.0]), np.array([square], dtype=object))
    idx, deg = index.nearest(117.505, 34.805, 1)
    assert idx.tolist() == [0] and deg.tolist() == [0.0]
    assert geodesic_distance_to_areas_m(117.505, 34.805, np.array([square], dtype=object)).tolist() == [0.0]


def _layered(seed: int, points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_items` spread over 4 groups (one of points only, one of areas only), and the groups."""
    lons, lats, areas = _items(seed, points)
    groups = np.where(np.array([a is None for a in areas]), np.arange(len(areas)) % 3, 3)
    groups[: points // 4] = 0
    return lons, lats, areas, groups


def _scaled_deg(lons, lats, areas, lon, lat, scale) -> np.ndarray:
    """Brute force in the scaled plane: shapely's distance between the position and each item, both with their
    longitudes multiplied by ``scale``."""
    here = shapely.Point(lon * scale, lat)
    return np.array([np.hypot((x - lon) * scale, y - lat) if a is None
                     else shapely.transform(a, lambda xy: xy * [scale, 1.0]).distance(here)
                     for x, y, a in zip(lons, lats, areas, strict=True)])


@pytest.mark.parametrize("points", SIZES)
def test_every_group_s_first_candidates_are_its_brute_force_nearest_in_the_scaled_plane(points):
    lons, lats, areas, groups = _layered(11, points)
    index = LayeredIndex(lons, lats, areas, groups, 5)  # group 4 has nothing
    assert index.scale == pytest.approx(np.cos(np.radians(np.median(lats))))
    rng = np.random.default_rng(12)
    for lon, lat in zip(rng.uniform(117.1, 117.9, 40), rng.uniform(34.4, 35.3, 40), strict=True):
        brute = _scaled_deg(lons, lats, areas, lon, lat, index.scale)
        for m in (1, 5, 50):
            found, beyond = index.first_candidates(lon, lat, [3, 0, 4, 2], m)
            for got, far, g in zip(found, beyond, [3, 0, 4, 2], strict=True):
                mine = np.flatnonzero(groups == g)
                assert len(got) == min(m, len(mine))
                items = [item for _, item in got]
                assert set(groups[items]) <= {g}
                np.testing.assert_allclose([d for d, _ in got], np.sort(brute[mine])[:len(got)], rtol=0, atol=1e-12)
                left = np.setdiff1d(mine, items)
                # every item left out is at least as far as `beyond` says, and `beyond` is not below the listed
                assert far == np.inf if not len(left) else brute[left].min() >= far - 1e-12
                assert all(d <= far + 1e-12 for d, _ in got)


def test_ground_distances_are_pyproj_s_geodesics_and_postgis_s_area_rule():
    lons, lats, areas, groups = _layered(21, 300)
    index = LayeredIndex(lons, lats, areas, groups, 4)
    rng = np.random.default_rng(22)
    items = rng.permutation(len(lons))[:80].tolist()
    for lon, lat in zip(rng.uniform(117.1, 117.9, 10), rng.uniform(34.4, 35.3, 10), strict=True):
        got = index.ground_m(lon, lat, items)
        for item, d in zip(items, got, strict=True):
            if areas[item] is None:
                assert d == GEOD.inv(lon, lat, lons[item], lats[item])[2]
            else:
                assert d == geodesic_distance_to_areas_m(lon, lat, np.array([areas[item]], dtype=object))[0]
    inside = areas[-1].centroid
    assert index.ground_m(inside.x, inside.y, [len(areas) - 1]) == [0.0]


def test_the_scaled_bound_is_below_every_geodesic():
    """Against pyproj's geodesics from positions across the city and the world, to points up to twice the reach."""
    rng = np.random.default_rng(31)
    checked = tight = 0
    for lon, lat, scale in [(117.5, 34.8, np.cos(np.radians(34.8))), (117.5, 34.8, 1.0), (0.0, 0.0, 0.9),
                            (-60.0, -70.0, 0.5), (20.0, 87.0, 0.2), (179.5, 35.0, 0.82)]:
        slope = scaled_bound_slope_m(lon, lat, scale)
        if abs(lat) >= 88 or abs(lon) > 179:
            assert slope == 0.0, "no bound near a pole or the 180th meridian"
            continue
        angle = rng.uniform(0, 2 * np.pi, 3000)
        reach = rng.uniform(0, 2 * SCALED_REACH_DEG, 3000)
        to_lon, to_lat = lon + reach * np.cos(angle) / scale, lat + reach * np.sin(angle)
        ground = GEOD.inv(np.full(3000, lon), np.full(3000, lat), to_lon, to_lat)[2]
        scaled = np.hypot((to_lon - lon) * scale, to_lat - lat)
        bound = np.array([scaled_bound_m(d, slope) for d in scaled])
        assert (bound <= ground).all()
        checked += 3000
        if lat == 34.8 and scale < 1:  # at the data's own latitude, within the reach: within 3 % of the ground
            within = scaled <= SCALED_REACH_DEG
            assert (bound[within] >= 0.97 * ground[within]).all()
            tight = int(within.sum())
    assert checked >= 12_000 and tight > 1000


def test_one_position_converts_exactly_as_an_array_of_them():
    """The GCJ-02 and BD-09 formulas on one position (plain floats, ``math``) give numpy's numbers to the bit."""
    rng = np.random.default_rng(4)
    lon, lat = rng.uniform(70, 140, 3000), rng.uniform(0, 58, 3000)  # inside China's box and outside it
    glon, glat = wgs84_to_gcj02(lon, lat)
    blon, blat = gcj02_to_bd09(glon, glat)
    for i in range(len(lon)):
        one = wgs84_to_gcj02(float(lon[i]), float(lat[i]))
        assert one == (glon[i], glat[i]) and all(type(v) is float for v in one)
        assert gcj02_to_bd09(*one) == (blon[i], blat[i])


@pytest.mark.parametrize(("src", "dst"), [("wgs84", "EPSG:4548"), ("EPSG:4548", "wgs84"), ("wgs84", "EPSG:32650"),
                                        ("EPSG:32650", "wgs84"), ("EPSG:4549", "wgs84"), ("EPSG:4490", "wgs84"),
                                        ("EPSG:2435", "wgs84")])
def test_conversions_give_pyproj_s_own_numbers_in_every_thread(src, dst):
    """Conversions between the CRS the project meets give exactly what pyproj's own search for the operation
    gives, in the thread that set them up and in a new one (a new server thread must not set them up
    differently); Beijing 1954's (EPSG:2435), which leaves PROJ a choice of operations, included."""
    rng = np.random.default_rng(8)
    lon, lat = rng.uniform(116.0, 118.5, 500), rng.uniform(34.0, 35.8, 500)
    if src == "wgs84":
        x, y = lon, lat
    else:
        x, y = Transformer.from_crs("EPSG:4326", src, always_xy=True).transform(lon, lat)
    reference = Transformer.from_crs("EPSG:4326" if src == "wgs84" else src,
                                     "EPSG:4326" if dst == "wgs84" else dst, always_xy=True).transform(x, y)

    def convert():
        if src == "wgs84":
            return to_metric(x, y) if dst == "EPSG:4548" else from_wgs84(x, y, dst)
        return from_metric(x, y) if src == "EPSG:4548" else to_wgs84(x, y, src)

    got: list = []
    here = convert()
    thread = threading.Thread(target=lambda: got.append(convert()))
    thread.start()
    thread.join()
    for answer in (here, got[0]):
        assert np.array_equal(answer[0], reference[0]) and np.array_equal(answer[1], reference[1])


def test_an_area_s_ground_distance_agrees_with_postgis_geography(engine):
    """30 parks (polygons) from 40 positions each, against PostGIS's ellipsoidal distance."""
    with engine.connect() as conn:
        parks = conn.execute(text("SELECT id, ST_AsBinary(geom) FROM facility WHERE GeometryType(geom) <> 'POINT'"
                                  " AND status = 'active' ORDER BY id LIMIT 30")).all()
        assert len(parks) >= 10, "the demo city has parks drawn as polygons"
        geoms = np.array([shapely.from_wkb(bytes(w)) for _, w in parks], dtype=object)
        rng = np.random.default_rng(5)
        checked = 0
        for lon, lat in zip(rng.uniform(117.2, 117.8, 40).tolist(), rng.uniform(34.6, 35.1, 40).tolist(), strict=True):
            mine = geodesic_distance_to_areas_m(lon, lat, geoms)
            theirs = [conn.execute(text(
                "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, true)"
                " FROM facility WHERE id = :id"), {"id": fid, "lon": lon, "lat": lat}).scalar_one() for fid, _ in parks]
            # Both find an edge's nearest point approximately (PostGIS on the sphere, this in a local plane) and
            # measure to it on the ellipsoid: within 1 cm per kilometre, far inside nearest's 0.1 % contract.
            np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=0.01)
            checked += len(parks)
    assert checked >= 400


# --------------------------------------------------------------------------
# freshness: a committed change shows in the next answer
# --------------------------------------------------------------------------

SPOT = (117.5566, 34.8640)


def _put(conn, source_id: str, lon: float, lat: float) -> int:
    return conn.execute(text(
        "INSERT INTO facility (layer, source_id, name, geom, point, synthetic)"
        " VALUES ('service_office', :sid, :sid, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),"
        " ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), true) RETURNING id"),
        {"sid": source_id, "lon": lon, "lat": lat}).scalar_one()


def _nearest_ids(client, k: int = 1) -> list[int]:
    lon, lat = SPOT
    r = client.get(f"/api/nearest?lon={lon}&lat={lat}&layer=service_office&k={k}&by=straight")
    assert r.status_code == 200, r.get_data(as_text=True)
    return [f["properties"]["id"] for f in r.get_json()["features"]]


@pytest.fixture()
def fresh(scratch_engine, scratch_app, request):
    nearest_held.forget()
    request.addfinalizer(nearest_held.forget)
    return scratch_app.test_client()


def test_a_facility_added_by_another_connection_is_in_the_very_next_answer(scratch_engine, fresh):
    lon, lat = SPOT
    with scratch_engine.begin() as conn:
        far = _put(conn, "far", lon + 0.02, lat)
    assert _nearest_ids(fresh) == [far]  # now held
    for step in range(5):
        with scratch_engine.begin() as conn:
            near = _put(conn, f"near-{step}", lon + 0.01 / (step + 2), lat)
        assert _nearest_ids(fresh) == [near], f"step {step}: the new facility is the nearest"


def test_a_retired_or_moved_facility_leaves_the_next_answer(scratch_engine, fresh):
    lon, lat = SPOT
    with scratch_engine.begin() as conn:
        a, b = _put(conn, "a", lon + 0.001, lat), _put(conn, "b", lon + 0.002, lat)
    assert _nearest_ids(fresh, 2) == [a, b]
    with scratch_engine.begin() as conn:
        conn.execute(text("UPDATE facility SET status = 'retired' WHERE id = :id"), {"id": a})
    assert _nearest_ids(fresh, 2) == [b]
    with scratch_engine.begin() as conn:
        conn.execute(text("UPDATE facility SET geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),"
                          " point = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) WHERE id = :id"),
                     {"id": b, "lon": lon + 0.3, "lat": lat})
    r = fresh.get(f"/api/nearest?lon={lon}&lat={lat}&layer=service_office&k=1&by=straight").get_json()
    assert r["features"][0]["properties"]["distance_m"] > 25_000, "the moved facility is measured where it is now"


def test_a_renamed_district_shows_in_the_next_answer(scratch_engine, fresh):
    lon, lat = SPOT
    with scratch_engine.begin() as conn:
        _put(conn, "x", lon + 0.001, lat)
    before = fresh.get(f"/api/nearest?lon={lon}&lat={lat}&k=1&by=straight").get_json()["query"]["district"]
    try:
        with scratch_engine.begin() as conn:
            conn.execute(text("UPDATE district SET name_en = name_en || ' (renamed)' WHERE adcode = :a"),
                         {"a": before["adcode"]})
        after = fresh.get(f"/api/nearest?lon={lon}&lat={lat}&k=1&by=straight").get_json()["query"]["district"]
        assert after["name_en"] == before["name_en"] + " (renamed)"
    finally:
        with scratch_engine.begin() as conn:
            conn.execute(text("UPDATE district SET name_en = :n WHERE adcode = :a"),
                         {"n": before["name_en"], "a": before["adcode"]})


def test_a_lost_listener_never_serves_stale_answers(scratch_engine, fresh):
    """The listening connection is ended, then a facility is added (its notice has no one to reach)."""
    lon, lat = SPOT
    with scratch_engine.begin() as conn:
        far = _put(conn, "far", lon + 0.02, lat)
    assert _nearest_ids(fresh) == [far]
    with scratch_engine.begin() as conn:
        ended = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                  " WHERE application_name = 'minsheng-map listener'"
                                  " AND datname = current_database()")).scalar_one()
        assert ended >= 1
        near = _put(conn, "near", lon + 0.001, lat)
    assert _nearest_ids(fresh) == [near]
    with scratch_engine.begin() as conn:
        nearer = _put(conn, "nearer", lon + 0.0005, lat)
    assert _nearest_ids(fresh) == [nearer]


def test_a_change_without_a_notice_is_seen_within_the_recheck(scratch_engine, fresh, monkeypatch):
    """With the notice trigger off (as after a restore in place), the versions check catches the change."""
    lon, lat = SPOT
    monkeypatch.setattr(nearest_held, "RECHECK_S", 0.0)  # the check is due at every request
    with scratch_engine.begin() as conn:
        far = _put(conn, "far", lon + 0.02, lat)
    assert _nearest_ids(fresh) == [far]
    try:
        with scratch_engine.begin() as conn:
            conn.execute(text("ALTER TABLE data_version DISABLE TRIGGER data_version_change_notice"))
            near = _put(conn, "near", lon + 0.001, lat)
        assert _nearest_ids(fresh) == [near]
    finally:
        with scratch_engine.begin() as conn:
            conn.execute(text("ALTER TABLE data_version ENABLE TRIGGER data_version_change_notice"))


def test_a_change_committed_by_another_process_arrives_by_notice(scratch_engine, scratch_url, fresh, monkeypatch):
    """No versions check is due and nothing was committed by this process: only the notice can tell."""
    lon, lat = SPOT
    with scratch_engine.begin() as conn:
        far = _put(conn, "far", lon + 0.02, lat)
    monkeypatch.setattr(nearest_held, "RECHECK_S", 3600.0)
    nearest_held.forget()
    assert _nearest_ids(fresh) == [far]
    insert = ("INSERT INTO facility (layer, source_id, name, geom, point, synthetic) VALUES ('service_office',"
              f" 'other', 'other', ST_SetSRID(ST_MakePoint({lon + 0.001}, {lat}), 4326),"
              f" ST_SetSRID(ST_MakePoint({lon + 0.001}, {lat}), 4326), true)")
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", libpq_url(scratch_url), "-c", insert], check=True)
    with scratch_engine.connect() as conn:
        other = conn.execute(text("SELECT id FROM facility WHERE source_id = 'other'")).scalar_one()
    deadline = time.monotonic() + 30  # a liveness bound: the notice comes in milliseconds
    while _nearest_ids(fresh) != [other]:
        assert time.monotonic() < deadline, "the other process's change never reached the held facilities"
        time.sleep(0.01)


def _listeners(conn, database: str) -> int:
    return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'minsheng-map listener'"
                             " AND datname = :d"), {"d": database}).scalar_one()


def test_serving_another_database_lets_go_of_the_last_one(engine, scratch_engine, app, fresh):
    """After a restore the previous database is dropped only once nothing is connected to it: the process's
    listener on it must go when another database serves."""
    nearest_held.forget()
    assert fresh.get("/api/nearest?lon=117.5&lat=34.8&k=1&by=straight").status_code == 200  # the scratch database
    scratch_db = scratch_engine.url.database
    with engine.connect() as conn:
        assert _listeners(conn, scratch_db) == 1
    assert app.test_client().get("/api/nearest?lon=117.5&lat=34.8&k=1&by=straight").status_code == 200
    deadline = time.monotonic() + 30  # the server notes the ended session a moment after the close
    with engine.connect() as conn:
        while _listeners(conn, scratch_db) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _listeners(conn, scratch_db) == 0
        assert _listeners(conn, engine.url.database) == 1
