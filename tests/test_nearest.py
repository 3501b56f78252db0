"""Residents' API: the nearest facilities and search, against the demo city in a real PostGIS.

Expected values come from hand-worked facts (lengths of a degree, walking
arithmetic) or from an independent brute force: PostGIS's ellipsoidal
``ST_Distance(geography, geography, true)`` from the position to every
facility's geometry (a park's polygon: its nearest point, 0 inside), with no
index and no KNN. These are the straight-line answers (``by=straight``); the
answers along the roads are checked in ``test_nearest_roads.py``.
"""
from __future__ import annotations

import math
from urllib.parse import parse_qs, quote, urlparse

import pytest
from pyproj import Geod
from sqlalchemy import text

from db.facilities import KNN_SQL, WITHIN_SQL
from geo.crs import bd09_to_wgs84, gcj02_to_wgs84, wgs84_to_bd09, wgs84_to_gcj02
from geo.errors import GeoError
from geo.nearest import geo_uri, geodesic_distance_m, navigation_links, planar_radius_deg, walking_minutes
from layers import LAYER_KEYS
from services import nearest_held

K = 3

BRUTE_SQL = text("""
    SELECT layer, id, d FROM (
        SELECT layer, id,
               ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, true) AS d,
               row_number() OVER (PARTITION BY layer ORDER BY
                   ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, true), id) AS rn
        FROM facility WHERE status = 'active') s
    WHERE rn <= :k ORDER BY layer, d""")


def brute_force(conn, lon: float, lat: float, k: int) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {key: [] for key in LAYER_KEYS}
    for layer, fid, d in conn.execute(BRUTE_SQL, {"lon": lon, "lat": lat, "k": k}):
        out[layer].append((fid, d))
    return out


def assert_same_nearest(features: list[dict], expected: list[tuple[int, float]], where: str) -> None:
    """Same facilities in the same order (ties within 1 cm may swap), distances within 0.1 %."""
    got = [(f["properties"]["id"], f["properties"]["distance_m"]) for f in features]
    assert len(got) == len(expected), where
    for (gid, gd), (eid, ed) in zip(got, expected, strict=True):
        assert abs(gd - ed) <= max(0.001 * ed, 0.06), f"{where}: distance {gd} m vs brute force {ed} m"
        if gid != eid:
            tied = [e for e in expected if e[0] == gid]
            assert tied and abs(tied[0][1] - ed) < 0.01, f"{where}: got facility {gid}, brute force says {eid}"


@pytest.fixture(scope="module")
def city_points(engine) -> list[tuple[float, float]]:
    """250 seeded random points spread over the city's districts."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT ST_X(g), ST_Y(g) FROM (SELECT (ST_Dump(ST_GeneratePoints(ST_Union(geom), 250, 20221130))).geom AS g"
            " FROM district) s")).all()
    assert len(rows) == 250
    return [(float(x), float(y)) for x, y in rows]


@pytest.fixture(scope="module")
def border_points(engine) -> list[tuple[float, float, str, str]]:
    """Points on the shared borders of neighbouring districts, with the two district codes."""
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT a.adcode, b.adcode, ST_X(p), ST_Y(p) FROM district a JOIN district b
              ON a.adcode < b.adcode AND ST_Intersects(a.geom, b.geom)
            CROSS JOIN LATERAL (
              SELECT ST_LineInterpolatePoint(l.geom, f) AS p
              FROM (SELECT (ST_Dump(ST_LineMerge(ST_CollectionExtract(
                        ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom)), 2)))).geom) l,
                   generate_series(0.1, 0.9, 0.2) AS f
              WHERE ST_Length(l.geom) > 0.01) s""")).all()
    assert len(rows) >= 20, "neighbouring districts should share long borders"
    return [(float(x), float(y), a, b) for a, b, x, y in rows]


# --------------------------------------------------------------------------
# pure maths: hand-worked facts
# --------------------------------------------------------------------------

class TestGeodesic:
    def test_one_degree_of_longitude_on_the_equator(self):
        # the equator's radius is the WGS-84 semi-major axis: 6,378,137 m x pi/180
        assert geodesic_distance_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(6378137 * math.pi / 180, abs=0.01)

    def test_one_degree_of_latitude_at_zaozhuang(self):
        # meridian degree at 34.75 N: 111,132.954 - 559.822 cos(2 phi) + 1.175 cos(4 phi) = 110,936 m
        phi = math.radians(34.75)
        expected = 111132.954 - 559.822 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
        assert geodesic_distance_m(117.5, 34.25, 117.5, 35.25) == pytest.approx(expected, rel=2e-5)

    def test_a_degree_of_longitude_is_shorter_than_one_of_latitude_here(self):
        east = geodesic_distance_m(117.5, 34.8, 117.51, 34.8)
        north = geodesic_distance_m(117.5, 34.8, 117.5, 34.81)
        assert east / north == pytest.approx(math.cos(math.radians(34.8)), rel=0.01)

    @pytest.mark.parametrize("distance, minutes", [(0, 0), (1, 1), (800, 10), (801, 11), (1000, 13)])
    def test_walking_minutes_at_80_m_per_minute_round_up(self, distance, minutes):
        assert walking_minutes(distance, 80) == minutes

    def test_walking_speed_must_be_positive(self):
        with pytest.raises(GeoError, match="speed"):
            walking_minutes(100, 0)


class TestNavigationLinks:
    LON, LAT = 117.3237, 34.8084

    def test_amap_gets_gcj02_about_half_a_kilometre_away(self):
        url = urlparse(navigation_links(self.LON, self.LAT, "示例网点")["amap"])
        assert url.netloc == "uri.amap.com"
        q = parse_qs(url.query)
        glon, glat, name = q["to"][0].split(",")
        assert name == "示例网点" and q["coordinate"] == ["gaode"]
        shift = geodesic_distance_m(self.LON, self.LAT, float(glon), float(glat))
        assert 300 < shift < 800  # the GCJ-02 offset in Shandong
        back = gcj02_to_wgs84(float(glon), float(glat))
        assert back == pytest.approx((self.LON, self.LAT), abs=2e-6)

    def test_baidu_gets_bd09_latitude_first(self):
        url = urlparse(navigation_links(self.LON, self.LAT, "示例网点")["baidu"])
        q = parse_qs(url.query)
        blat, blon = (float(v) for v in q["location"][0].split(","))
        assert q["coord_type"] == ["bd09ll"]
        assert 34 < blat < 35.5 and 116 < blon < 118.5
        assert bd09_to_wgs84(blon, blat) == pytest.approx((self.LON, self.LAT), abs=2e-6)

    def test_baidu_directions_start_at_the_origin(self):
        link = navigation_links(self.LON, self.LAT, "x", origin=(117.30, 34.80))["baidu"]
        q = parse_qs(urlparse(link).query)
        olat, olon = (float(v) for v in q["origin"][0].split("|")[0].removeprefix("latlng:").split(","))
        assert bd09_to_wgs84(olon, olat) == pytest.approx((117.30, 34.80), abs=2e-6)
        assert q["mode"] == ["walking"]

    def test_geo_uri_is_wgs84_latitude_first(self):
        assert geo_uri(117.5, 34.8) == "geo:34.800000,117.500000"
        assert navigation_links(117.5, 34.8, "a,b")["geo"].startswith("geo:34.800000,117.500000?q=")


# --------------------------------------------------------------------------
# /api/nearest against brute force
# --------------------------------------------------------------------------

@pytest.fixture(params=["held", "queried"])
def source(request, monkeypatch) -> str:
    """Answer from the facilities the process holds in memory, or (nothing held) from the database's KNN."""
    nearest_held.forget()
    if request.param == "queried":
        monkeypatch.setattr(nearest_held, "MAX_HELD_FACILITIES", -1)
    yield request.param
    nearest_held.forget()


@pytest.mark.usefixtures("source")
class TestNearestIsRight:
    def test_200_random_points_every_layer_wgs84(self, client, engine, city_points):
        with engine.connect() as conn:
            for lon, lat in city_points:
                body = client.get(f"/api/nearest?lon={lon}&lat={lat}&layer=all&k={K}&by=straight").get_json()
                assert body["query"]["inside_city"] is True
                expected = brute_force(conn, lon, lat, K)
                for key in LAYER_KEYS:
                    mine = [f for f in body["features"] if f["properties"]["layer"] == key]
                    assert_same_nearest(mine, expected[key], f"{key} at {lon},{lat}")
                d = [f["properties"]["distance_m"] for f in body["features"]]
                assert d == sorted(d), "the collection is ordered by distance"

    @pytest.mark.parametrize("crs, forward", [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
    def test_200_random_points_from_chinese_map_sdks(self, client, engine, city_points, crs, forward):
        with engine.connect() as conn:
            for lon, lat in city_points[:200]:
                x, y = forward(lon, lat)
                body = client.get(f"/api/nearest?lon={x:.9f}&lat={y:.9f}&layer=all&k=1&crs={crs}&by=straight"
                                  ).get_json()
                assert body["query"]["coordinates"]["wgs84"] == pytest.approx([lon, lat], abs=1e-6)
                expected = brute_force(conn, lon, lat, 1)
                for key in LAYER_KEYS:
                    mine = [f for f in body["features"] if f["properties"]["layer"] == key]
                    assert_same_nearest(mine, expected[key], f"{crs} {key} at {lon},{lat}")

    @pytest.mark.parametrize("layer", LAYER_KEYS)
    def test_one_layer_k_10(self, client, engine, city_points, layer):
        with engine.connect() as conn:
            for lon, lat in city_points[200:240]:
                body = client.get(f"/api/nearest?lon={lon}&lat={lat}&layer={layer}&k=10&by=straight").get_json()
                assert {f["properties"]["layer"] for f in body["features"]} == {layer}
                assert_same_nearest(body["features"], brute_force(conn, lon, lat, 10)[layer], f"{layer} {lon},{lat}")

    def test_next_to_district_borders_the_neighbour_counts(self, client, engine, border_points):
        crossed = 0
        with engine.connect() as conn:
            for lon, lat, a, b in border_points:
                body = client.get(f"/api/nearest?lon={lon}&lat={lat}&layer=all&k={K}&by=straight").get_json()
                expected = brute_force(conn, lon, lat, K)
                for key in LAYER_KEYS:
                    mine = [f for f in body["features"] if f["properties"]["layer"] == key]
                    assert_same_nearest(mine, expected[key], f"border {a}/{b} {key}")
                here = body["query"]["district"]["adcode"]
                assert here in (a, b)
                crossed += any(f["properties"]["district"] != here for f in body["features"])
        assert crossed > len(border_points) / 2, "on a border, facilities over the line are listed too"

    def test_a_point_outside_the_city_still_answers_and_says_so(self, client, engine):
        lon, lat = 116.30, 34.30  # west of Zaozhuang, in Xuzhou's countryside
        body = client.get(f"/api/nearest?lon={lon}&lat={lat}&k=2&by=straight").get_json()
        assert body["query"]["inside_city"] is False and body["query"]["district"] is None
        assert "outside" in body["query"]["notice"]["en"] and "范围之外" in body["query"]["notice"]["zh"]
        assert len(body["features"]) == 2 * len(LAYER_KEYS)
        with engine.connect() as conn:
            expected = brute_force(conn, lon, lat, 2)
        for key in LAYER_KEYS:
            assert_same_nearest([f for f in body["features"] if f["properties"]["layer"] == key], expected[key], key)

    def test_the_other_side_of_the_earth(self, client, engine):
        body = client.get("/api/nearest?lon=-62.7&lat=-34.8&layer=police_station&k=3&by=straight").get_json()
        with engine.connect() as conn:
            expected = brute_force(conn, -62.7, -34.8, 3)["police_station"]
        assert_same_nearest(body["features"], expected, "antipode")
        assert body["features"][0]["properties"]["distance_m"] > 19_000_000


class TestNearestFeatures:
    @pytest.mark.parametrize("by", ["walk", "drive", "straight"])
    def test_a_feature_carries_what_a_resident_needs(self, client, app, by):
        r = client.get(f"/api/nearest?lon=117.55&lat=34.86&layer=parking&k=1&by={by}")
        assert r.content_type == "application/geo+json"
        body = r.get_json()
        (f,) = body["features"]
        p = f["properties"]
        for field in ("name", "address", "phone", "opening_hours", "district", "district_zh", "district_en"):
            assert p[field], field
        assert p["capacity"] > 0 and p["capacity_unit_en"] == "spaces"
        assert "walk_minutes" not in p and p["by"] == body["query"]["by"] == by
        speeds = body["query"]["speeds_m_per_min"]
        assert speeds == {"walk": app.config["WALK_SPEED_M_PER_MIN"], "drive": 500.0}
        if by == "straight":
            assert p["minutes"] is None and p["route"] is None and p["distance_m"] == p["straight_m"]
        else:
            assert p["minutes"] == math.ceil(p["distance_m"] / speeds[by])
            assert p["route"]["type"] == "LineString" and p["distance_m"] >= p["straight_m"]
        assert body["query"]["network"] == {"loaded": True, "synthetic": True}
        assert p["synthetic"] is True and body["synthetic"] is True
        lon, lat = f["geometry"]["coordinates"]
        glat_, glon_ = (float(v) for v in p["navigation"]["geo"].split("?")[0].removeprefix("geo:").split(","))
        assert (glon_, glat_) == pytest.approx((lon, lat), abs=1e-6)
        glon, glat = (float(v) for v in parse_qs(urlparse(p["navigation"]["amap"]).query)["to"][0].split(",")[:2])
        assert gcj02_to_wgs84(glon, glat) == pytest.approx((lon, lat), abs=2e-6)

    def test_layers_without_capacity_do_not_pretend_to_have_one(self, client):
        body = client.get("/api/nearest?lon=117.55&lat=34.86&layer=police_station&k=1&by=straight").get_json()
        assert "capacity" not in body["features"][0]["properties"]

    def test_the_knn_operator_walks_the_gist_index(self, engine):
        with engine.connect() as conn:
            plan = "\n".join(r[0] for r in conn.execute(
                text("EXPLAIN " + KNN_SQL.text), {"layers": ["service_office"], "lon": 117.3, "lat": 34.8, "m": 15}))
        # the (layer, geom) GiST index of migration 0012
        assert "facility_layer_geom_gist" in plan, plan
        assert "Order By: (geom <->" in plan

    @pytest.mark.parametrize("radius", [0.02, None])
    def test_reading_within_a_radius_walks_each_layers_index(self, engine, radius):
        """Widening a search reads each asked layer through its own index, never every partition in full
        (a hash join over all partitions took 6 s at 100 × the demo's facilities)."""
        layers = ["police_station", "service_office"]
        with engine.connect() as conn:
            plan = "\n".join(r[0] for r in conn.execute(
                text("EXPLAIN " + WITHIN_SQL.text),
                {"layers": layers, "radii": [radius] * len(layers), "lon": 117.3, "lat": 34.8}))
        assert "facility_layer_geom_gist" in plan, plan
        full_reads = [line for line in plan.splitlines()  # the empty default partition may be read whole
                      if "Seq Scan on facility" in line and "___default" not in line]
        assert not full_reads and "Hash Join" not in plan, plan


class TestBadParameters:
    @pytest.mark.parametrize("query, parameter, allowed", [
        ("lat=34.8", "lon", "required"),
        ("lon=117.3", "lat", "required"),
        ("lon=abc&lat=34.8", "lon", "-180 to 180"),
        ("lon=117.3&lat=north", "lat", "-90 to 90"),
        ("lon=190&lat=34.8", "lon", "-180 to 180"),
        ("lon=117.3&lat=-91", "lat", "-90 to 90"),
        ("lon=nan&lat=34.8", "lon", "-180 to 180"),
        ("lon=inf&lat=34.8", "lon", "-180 to 180"),
        ("lon=117.3&lat=34.8&k=0", "k", "1 to 50"),
        ("lon=117.3&lat=34.8&k=51", "k", "1 to 50"),
        ("lon=117.3&lat=34.8&k=2.5", "k", "1 to 50"),
        ("lon=117.3&lat=34.8&layer=parks", "layer",
         "service_office, police_station, pocket_park, parking, village_clinic, rehab_home"),
        ("lon=117.3&lat=34.8&layer=1;%20DROP%20TABLE%20facility;", "layer", "tertiary_hospital, all"),
        ("lon=117.3&lat=34.8&layer=parking,parks", "layer", "or several keys separated by commas"),
        ("lon=117.3&lat=34.8&layer=parking,", "layer", "tertiary_hospital, all"),
        ("lon=117.3&lat=34.8&crs=utm50", "crs", "wgs84, gcj02, bd09"),
        ("lon=117.3&lat=34.8&by=bicycle", "by", "walk, drive, straight"),
        ("lon=117.3&lon=117.4&lat=34.8", "lon", "once"),
    ])
    def test_nearest_400_names_parameter_and_what_is_allowed(self, client, query, parameter, allowed):
        r = client.get("/api/nearest?" + query)
        assert r.status_code == 400
        err = r.get_json()["error"]
        assert err["parameter"] == parameter
        assert allowed in err["message"]

    @pytest.mark.parametrize("query, parameter, allowed", [
        ("", "q", "required"),
        ("q=%20%20", "q", "required"),
        ("q=" + "长" * 51, "q", "1 to 50 characters"),
        ("q=便民&limit=0", "limit", "1 to 50"),
        ("q=便民&limit=500", "limit", "1 to 50"),
        ("q=便民&layer=clinic", "layer", "village_clinic"),
    ])
    def test_search_400(self, client, query, parameter, allowed):
        r = client.get("/api/search?" + query)
        assert r.status_code == 400
        err = r.get_json()["error"]
        assert err["parameter"] == parameter and allowed in err["message"]


# --------------------------------------------------------------------------
# /api/search
# --------------------------------------------------------------------------

class TestSearch:
    def test_clinic_substring_finds_village_clinics(self, client):
        body = client.get("/api/search?q=卫生室&limit=50").get_json()
        assert len(body["features"]) == 50
        assert all("卫生室" in f["properties"]["name"] for f in body["features"])
        assert {f["properties"]["layer"] for f in body["features"]} == {"village_clinic"}

    def test_two_characters_find_convenience_police_stations(self, client):
        body = client.get("/api/search?q=便民&limit=5").get_json()
        names = [f["properties"]["name"] for f in body["features"]]
        assert len(names) == 5 and all("便民" in n for n in names)
        assert names[0] == "示例便民警务站0001"  # same match, shortest and first: a stable order

    def test_an_exact_name_comes_first(self, client):
        body = client.get("/api/search?q=示例村卫生室0100&limit=3").get_json()
        assert body["features"][0]["properties"]["name"] == "示例村卫生室0100"

    def test_address_matches_come_after_name_matches(self, client):
        body = client.get("/api/search?q=示例路1234号").get_json()
        assert body["features"], "an address substring finds something"
        assert all(f["properties"]["matched"] == "address" for f in body["features"])
        assert all("示例路1234号" in f["properties"]["address"] for f in body["features"])

    def test_layer_filter(self, client):
        body = client.get("/api/search?q=示例&layer=parking&limit=50").get_json()
        assert body["features"] and {f["properties"]["layer"] for f in body["features"]} == {"parking"}

    @pytest.mark.parametrize("q", ["%", "_", "\\", "%%", "示例%"])
    def test_wildcards_are_taken_literally(self, client, q):
        body = client.get("/api/search?q=" + quote(q)).get_json()
        assert body["features"] == [], "no facility name or address contains these characters"

    def test_sql_in_q_is_just_text(self, client, engine):
        r = client.get("/api/search?q=';%20DROP%20TABLE%20facility;%20--")
        assert r.status_code == 200 and r.get_json()["features"] == []
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM facility")).scalar() > 4000


class TestPlanarRadius:
    def test_every_point_within_the_ground_distance_is_inside_the_planar_radius(self):
        """Hand check with the ellipsoid: points exactly d metres away in 72 directions."""
        geod = Geod(ellps="WGS84")
        for lat in (34.5, 35.3):
            for d in (50.0, 800.0, 12_000.0):
                radius = planar_radius_deg(d, lat)
                for az in range(0, 360, 5):
                    lon2, lat2, _ = geod.fwd(117.3, lat, az, d)
                    assert ((lon2 - 117.3) ** 2 + (lat2 - lat) ** 2) ** 0.5 <= radius
                # and it is not wastefully large: within 25% of the east-west extent
                lon_e, _, _ = geod.fwd(117.3, lat, 90, d)
                assert radius <= 1.25 * (lon_e - 117.3)
