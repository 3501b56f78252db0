"""Editing facilities: tokens and roles, ETags, ETL validation, audit trail, retire.

Expected positions and districts are hand-worked: Shizhong's seat (市中区,
117.5566E 34.8640N) and Tengzhou's old town (滕州市, 117.1650E 35.0850N) are
in those districts; Beijing (116.40E 39.90N) is not in Zaozhuang. The GCJ-02
offset is computed with the public formula written out below, independently of
``geo.crs``.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import math

import pytest
import requests
from pyproj import Geod
from sqlalchemy import event, text

from etl.validate import MAX_TEXT_CHARS
from services.editing import Edit, create_facility, create_token

SHIZHONG = (117.5566, 34.8640)
TENGZHOU = (117.1650, 35.0850)
BEIJING = (116.40, 39.90)
GEOD = Geod(ellps="WGS84")


pytestmark = pytest.mark.usefixtures("demo_restored")


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


def gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 -> GCJ-02, the published formula (Krasovsky ellipsoid)."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
            + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
            + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
            + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
            + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(rad) ** 2
    sq = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((a * (1 - ee)) / (magic * sq) * math.pi)
    dlon = (dlon * 180.0) / (a / sq * math.cos(rad) * math.pi)
    return lon + dlon, lat + dlat


@pytest.fixture(scope="module")
def tokens(engine):
    _, editor = create_token(engine, "editor", "test editor")
    _, viewer = create_token(engine, "viewer", "test viewer")
    return {"editor": editor, "viewer": viewer}


def auth(token: str, **extra) -> dict:
    return {"Authorization": f"Bearer {token}", **extra}


@pytest.fixture()
def office(client, tokens):
    """A fresh service office in Shizhong, created through the API."""
    res = client.post("/api/admin/facilities", headers=auth(tokens["editor"]),
                      json={"layer": "service_office", "name": "测试便民服务点", "address": "市中区光明路1号",
                            "lon": SHIZHONG[0], "lat": SHIZHONG[1]})
    assert res.status_code == 201, res.get_json()
    return res.get_json()


def count_active(client, layer: str) -> int:
    return next(item["count"] for item in client.get("/api/layers").get_json()["layers"] if item["key"] == layer)


class TestTokens:
    def test_cli_creates_a_token_stored_only_as_its_hash(self, runner, engine):
        result = runner.invoke(args=["admin", "create-token", "--role", "viewer", "--label", "cli test"])
        assert result.exit_code == 0, result.output
        secret = result.stdout.strip().splitlines()[-1]
        assert len(secret) > 30
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT token_hash, role FROM api_token WHERE label = 'cli test'")).all()
            plain = conn.execute(text("SELECT count(*) FROM api_token WHERE token_hash = :s OR label = :s"),
                                 {"s": secret}).scalar()
        assert (hashlib.sha256(secret.encode()).hexdigest(), "viewer") in [tuple(r) for r in stored]
        assert plain == 0

    def test_cli_refuses_an_unknown_role(self, runner):
        result = runner.invoke(args=["admin", "create-token", "--role", "admin"])
        assert result.exit_code != 0
        assert "editor" in result.output and "viewer" in result.output

    def test_edit_without_a_token_is_401(self, client):
        res = client.post("/api/admin/facilities", json={"layer": "service_office", "name": "x",
                                                         "lon": SHIZHONG[0], "lat": SHIZHONG[1]})
        assert res.status_code == 401
        assert "Bearer" in res.headers["WWW-Authenticate"]
        assert "token" in res.get_json()["error"]["message"]

    def test_a_wrong_token_is_401(self, client):
        res = client.post("/api/admin/facilities", headers=auth("msm_not-a-real-token"),
                          json={"layer": "service_office", "name": "x", "lon": SHIZHONG[0], "lat": SHIZHONG[1]})
        assert res.status_code == 401

    def test_a_viewer_may_read_but_not_edit(self, client, tokens, office):
        res = client.get(f"/api/admin/facilities/{office['id']}", headers=auth(tokens["viewer"]))
        assert res.status_code == 200 and res.get_json()["name"] == "测试便民服务点"
        res = client.patch(f"/api/admin/facilities/{office['id']}", json={"name": "viewer edit"},
                           headers=auth(tokens["viewer"], **{"If-Match": office["etag"]}))
        assert res.status_code == 403
        assert "editor" in res.get_json()["error"]["message"]

    def test_a_revoked_token_stops_working(self, client, engine, runner):
        token, secret = create_token(engine, "viewer", "to revoke")
        assert client.get("/api/admin/facilities/1", headers=auth(secret)).status_code in (200, 404)
        assert runner.invoke(args=["admin", "revoke-token", str(token.id)]).exit_code == 0
        assert client.get("/api/admin/facilities/1", headers=auth(secret)).status_code == 401

    def test_admin_responses_are_never_cached(self, client, tokens, office):
        for res in (client.get(f"/api/admin/facilities/{office['id']}", headers=auth(tokens["viewer"])),
                    client.post("/api/admin/facilities", json={})):
            assert res.headers["Cache-Control"] == "no-store"


class TestCreate:
    def test_create_assigns_the_district_and_counts_on_the_public_map(self, client, tokens):
        before = count_active(client, "police_station")
        res = client.post("/api/admin/facilities", headers=auth(tokens["editor"]),
                          json={"layer": "police_station", "name": "滕州北辛警务站",
                                "lon": TENGZHOU[0], "lat": TENGZHOU[1]})
        assert res.status_code == 201
        body = res.get_json()
        assert body["district_adcode"] == "370481"
        assert body["status"] == "active" and body["version"] == 1
        assert res.headers["ETag"] == f'"{body["id"]}-1"'
        assert res.headers["Location"].endswith(f"/api/admin/facilities/{body['id']}")
        assert count_active(client, "police_station") == before + 1

    def test_gcj02_input_is_stored_as_wgs84(self, client, tokens):
        glon, glat = gcj02(*SHIZHONG)
        assert metres(SHIZHONG, (glon, glat)) > 300  # the offset is real, so the test can see a mistake
        res = client.post("/api/admin/facilities", headers=auth(tokens["editor"]),
                          json={"layer": "service_office", "name": "GCJ office", "lon": glon, "lat": glat,
                                "crs": "gcj02"})
        assert res.status_code == 201, res.get_json()
        body = res.get_json()
        assert metres(SHIZHONG, (body["lon"], body["lat"])) < 1.0
        assert body["district_adcode"] == "370402"

    def test_outside_the_city_is_refused_naming_the_position(self, client, tokens):
        res = client.post("/api/admin/facilities", headers=auth(tokens["editor"]),
                          json={"layer": "service_office", "name": "Beijing office",
                                "lon": BEIJING[0], "lat": BEIJING[1]})
        assert res.status_code == 400
        err = res.get_json()["error"]
        assert err["parameter"] == "lon,lat" and "outside" in err["message"]

    @pytest.mark.parametrize("body, parameter", [
        ({"layer": "parks", "name": "x", "lon": 117.5, "lat": 34.8}, "layer"),
        ({"layer": "service_office", "lon": 117.5, "lat": 34.8}, "name"),
        ({"layer": "service_office", "name": "   ", "lon": 117.5, "lat": 34.8}, "name"),
        ({"layer": "service_office", "name": "x" * 201, "lon": 117.5, "lat": 34.8}, "name"),
        ({"layer": "service_office", "name": "x", "lon": "east", "lat": 34.8}, "lon"),
        ({"layer": "service_office", "name": "x", "lon": 117.5}, "lat"),
        ({"layer": "service_office", "name": "x", "lon": 117.5, "lat": 34.8, "crs": "epsg:3857"}, "crs"),
        ({"layer": "parking", "name": "x", "lon": 117.5, "lat": 34.8, "capacity": -3}, "capacity"),
        ({"layer": "parking", "name": "x", "lon": 117.5, "lat": 34.8, "capacity": 2.5}, "capacity"),
        ({"layer": "service_office", "name": "x", "lon": 117.5, "lat": 34.8, "opened_on": "yesterday"},
         "opened_on"),
        ({"layer": "service_office", "name": "x", "lon": 117.5, "lat": 34.8, "colour": "red"}, "colour"),
        ({"layer": "pocket_park", "name": "x", "lon": SHIZHONG[0], "lat": SHIZHONG[1]}, "lon,lat"),
        ({"layer": "pocket_park", "name": "x", "geometry": {"type": "Polygon", "coordinates": "no"}},
         "geometry"),
    ])
    def test_bad_fields_are_400_naming_the_field(self, client, tokens, body, parameter):
        res = client.post("/api/admin/facilities", headers=auth(tokens["editor"]), json=body)
        assert res.status_code == 400, res.get_json()
        assert res.get_json()["error"]["parameter"] == parameter

    def test_a_body_that_is_not_an_object_is_400(self, client, tokens):
        res = client.post("/api/admin/facilities", headers=auth(tokens["editor"], **{"Content-Type":
                                                                                       "application/json"}),
                          data="[1, 2")
        assert res.status_code == 400 and res.get_json()["error"]["parameter"] == "body"

    def test_a_park_polygon_is_accepted(self, client, tokens):
        lon, lat = SHIZHONG
        d = 0.0005  # about 55 m: a pocket park of roughly 0.5 ha
        square = [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
        res = client.post("/api/admin/facilities", headers=auth(tokens["editor"]),
                          json={"layer": "pocket_park", "name": "新建口袋公园", "kind": "pocket_park",
                                "geometry": {"type": "Polygon", "coordinates": [square]}})
        assert res.status_code == 201, res.get_json()
        body = res.get_json()
        assert body["geometry"]["type"] == "Polygon"
        assert metres((body["lon"], body["lat"]), (lon + d / 2, lat + d / 2)) < 60

    def test_a_duplicate_source_id_is_409(self, client, tokens):
        body = {"layer": "service_office", "name": "dup", "source_id": "ADMIN-DUP-1",
                "lon": SHIZHONG[0], "lat": SHIZHONG[1]}
        assert client.post("/api/admin/facilities", headers=auth(tokens["editor"]), json=body).status_code == 201
        res = client.post("/api/admin/facilities", headers=auth(tokens["editor"]), json=body)
        assert res.status_code == 409 and res.get_json()["error"]["parameter"] == "source_id"


class TestPatch:
    def test_if_match_is_required(self, client, tokens, office):
        res = client.patch(f"/api/admin/facilities/{office['id']}", headers=auth(tokens["editor"]),
                           json={"name": "改名"})
        assert res.status_code == 428
        assert "If-Match" in res.get_json()["error"]["message"]

    def test_moving_a_facility_reassigns_its_district_and_logs_before_and_after(self, client, tokens, office):
        res = client.patch(f"/api/admin/facilities/{office['id']}",
                           headers=auth(tokens["editor"], **{"If-Match": office["etag"]}),
                           json={"lon": TENGZHOU[0], "lat": TENGZHOU[1], "phone": "0632-1234567"})
        assert res.status_code == 200, res.get_json()
        body = res.get_json()
        assert body["district_adcode"] == "370481" and body["version"] == 2
        assert res.headers["ETag"] == f'"{office["id"]}-2"'
        hist = client.get(f"/api/facilities/{office['id']}/history").get_json()
        actions = [c["action"] for c in hist["changes"]]
        assert actions == ["insert", "update"]
        update = hist["changes"][-1]
        assert update["before"]["district_adcode"] == "370402" and update["after"]["district_adcode"] == "370481"
        assert update["before"]["phone"] is None and update["after"]["phone"] == "0632-1234567"
        assert metres((update["after"]["lon"], update["after"]["lat"]), TENGZHOU) < 1.0
        assert "test editor" in update["actor"] and "editor" in update["actor"]
        assert update["at"]

    def test_two_editors_cannot_silently_overwrite_each_other(self, client, tokens, office):
        tag = office["etag"]
        first = client.patch(f"/api/admin/facilities/{office['id']}",
                             headers=auth(tokens["editor"], **{"If-Match": tag}), json={"name": "Editor A"})
        assert first.status_code == 200
        second = client.patch(f"/api/admin/facilities/{office['id']}",
                              headers=auth(tokens["editor"], **{"If-Match": tag}), json={"name": "Editor B"})
        assert second.status_code == 412
        assert second.headers["ETag"] == first.headers["ETag"]
        current = client.get(f"/api/admin/facilities/{office['id']}", headers=auth(tokens["viewer"])).get_json()
        assert current["name"] == "Editor A"

    def test_concurrent_patches_with_one_etag_let_exactly_one_win(self, live_server, tokens, office):
        def patch(i: int) -> int:
            return requests.patch(f"{live_server}/api/admin/facilities/{office['id']}", json={"name": f"racer {i}"},
                                  headers=auth(tokens["editor"], **{"If-Match": office["etag"]}), timeout=30
                                  ).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(patch, range(8)))
        assert sorted(codes) == [200] + [412] * 7

    def test_an_invalid_move_changes_nothing(self, client, tokens, office, engine):
        res = client.patch(f"/api/admin/facilities/{office['id']}",
                           headers=auth(tokens["editor"], **{"If-Match": office["etag"]}),
                           json={"lon": BEIJING[0], "lat": BEIJING[1]})
        assert res.status_code == 400
        with engine.connect() as conn:
            version, n = conn.execute(text(
                "SELECT f.version, (SELECT count(*) FROM change_log c WHERE c.facility_id = f.id) "
                "FROM facility f WHERE id = :i"), {"i": office["id"]}).one()
        assert (version, n) == (1, 1)

    @pytest.mark.parametrize("raw", ["1; DROP TABLE facility;", "abc", "-1", "99999999999999999999999"])
    def test_odd_ids_are_not_found(self, client, tokens, raw):
        res = client.patch(f"/api/admin/facilities/{raw}", headers=auth(tokens["editor"], **{"If-Match": '"1-1"'}),
                           json={"name": "x"})
        assert res.status_code == 404


class TestRetire:
    def test_retired_facility_leaves_the_map_and_stays_in_history(self, client, tokens, office, engine):
        before = count_active(client, "service_office")
        res = client.post(f"/api/admin/facilities/{office['id']}/retire",
                          headers=auth(tokens["editor"], **{"If-Match": office["etag"]}), json={"reason": "moved"})
        assert res.status_code == 200, res.get_json()
        assert res.get_json()["status"] == "retired"
        assert count_active(client, "service_office") == before - 1
        hist = client.get(f"/api/facilities/{office['id']}/history")
        assert hist.status_code == 200
        body = hist.get_json()
        assert body["facility"]["status"] == "retired"
        assert [c["action"] for c in body["changes"]] == ["insert", "retire"]
        assert body["changes"][-1]["before"]["status"] == "active"
        assert body["changes"][-1]["after"]["status"] == "retired"
        with engine.connect() as conn:  # never deleted
            assert conn.execute(text("SELECT count(*) FROM facility WHERE id = :i"), {"i": office["id"]}).scalar() == 1

    def test_retire_needs_if_match_and_is_not_repeated(self, client, tokens, office):
        url = f"/api/admin/facilities/{office['id']}/retire"
        assert client.post(url, headers=auth(tokens["editor"])).status_code == 428
        first = client.post(url, headers=auth(tokens["editor"], **{"If-Match": office["etag"]}))
        assert first.status_code == 200
        again = client.post(url, headers=auth(tokens["editor"], **{"If-Match": first.headers["ETag"]}))
        assert again.status_code == 409

    def test_a_retired_facility_is_not_edited(self, client, tokens, office):
        retired = client.post(f"/api/admin/facilities/{office['id']}/retire",
                              headers=auth(tokens["editor"], **{"If-Match": office["etag"]}))
        res = client.patch(f"/api/admin/facilities/{office['id']}", json={"name": "zombie"},
                           headers=auth(tokens["editor"], **{"If-Match": retired.headers["ETag"]}))
        assert res.status_code == 409


    def test_retired_disappears_from_every_public_answer(self, app, client, tokens):
        """Nearest, search, export, OGC items and the map page all stop showing it; history keeps it."""
        spot = (117.5701, 34.8702)
        made = client.post("/api/admin/facilities", headers=auth(tokens["editor"]),
                           json={"layer": "service_office", "name": "退役测试点", "lon": spot[0], "lat": spot[1]})
        fid, tag = made.get_json()["id"], made.headers["ETag"]
        rules = {r.rule for r in app.url_map.iter_rules()}

        def visible() -> dict[str, bool]:
            seen = {}
            near = client.get("/api/nearest", query_string={"lon": spot[0], "lat": spot[1], "layer": "service_office",
                                                            "k": 1}).get_json()
            seen["nearest"] = near["features"][0]["properties"]["id"] == fid
            found = client.get("/api/search", query_string={"q": "退役测试点"}).get_json()
            seen["search"] = any(f["properties"]["id"] == fid for f in found["features"])
            if "/export/<layer>.<fmt>" in rules:
                seen["export"] = "退役测试点" in client.get("/export/service_office.csv").get_data(as_text=True)
            if "/ogc/collections/<layer>/items/<fid>" in rules:
                seen["ogc"] = client.get(f"/ogc/collections/service_office/items/{fid}",
                                         query_string={"f": "json"}).status_code == 200
            if "/" in rules:
                seen["map"] = "退役测试点" in client.get("/").get_data(as_text=True)
            return seen

        before = visible()
        assert all(before.values()), before
        assert client.post(f"/api/admin/facilities/{fid}/retire",
                           headers=auth(tokens["editor"], **{"If-Match": tag})).status_code == 200
        after = visible()
        assert not any(after.values()), after
        assert client.get(f"/api/facilities/{fid}/history").get_json()["facility"]["name"] == "退役测试点"


class TestDeclaredOnce:
    def test_published_body_bounds_are_the_enforced_ones(self, client, tokens):
        """Every maxLength, minimum/maximum and enum of the create body, tried at and just past its bound."""
        doc = client.get("/openapi.json").get_json()
        schema = doc["paths"]["/api/admin/facilities"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        props = schema["properties"]
        assert props["name"]["maxLength"] == 200 == MAX_TEXT_CHARS  # the ETL's limit, as the README says
        assert props["crs"]["enum"] == ["wgs84", "gcj02", "bd09"]
        base = {"layer": "parking", "name": "边界测试", "lon": SHIZHONG[0], "lat": SHIZHONG[1]}
        cases = []
        for name, spec in props.items():
            if "maxLength" in spec:
                cases += [(name, "界" * spec["maxLength"], 201), (name, "界" * (spec["maxLength"] + 1), 400)]
            if spec.get("type") == "integer":
                cases += [(name, spec["maximum"], 201), (name, spec["maximum"] + 1, 400),
                          (name, spec["minimum"] - 1, 400)]
            if spec.get("type") == "number":
                cases += [(name, spec["maximum"] + 1e-6, 400), (name, spec["minimum"] - 1e-6, 400)]
            if "enum" in spec and name != "layer":
                cases += [(name, "x" + spec["enum"][0], 400)]
        assert {c[0] for c in cases} >= {"name", "address", "phone", "opening_hours", "kind", "source_id",
                                         "capacity", "lon", "lat", "crs"}
        for name, value, status in cases:
            res = client.post("/api/admin/facilities", headers=auth(tokens["editor"]), json={**base, name: value})
            assert res.status_code == status, (name, value, res.get_json())
            if status == 400:
                assert res.get_json()["error"]["parameter"] == name

    def test_an_edit_is_checked_and_written_on_one_connection(self, engine):
        """The ETL's checks run inside the edit's own transaction: one connection from the pool."""
        taken: list[int] = []

        def count(*_args) -> None:
            taken.append(1)

        event.listen(engine, "checkout", count)
        try:
            made = create_facility(engine, "service_office", Edit(values={"name": "一个连接"}, lon=TENGZHOU[0],
                                                                  lat=TENGZHOU[1]), source_id=None, actor="test")
        finally:
            event.remove(engine, "checkout", count)
        assert made["district_adcode"] == "370481"
        assert len(taken) == 1


class TestHistory:
    def test_a_loaded_facility_shows_the_load_run_that_created_it(self, client, engine):
        with engine.connect() as conn:
            fid, run = conn.execute(text("SELECT id, load_run_id FROM facility WHERE layer = 'village_clinic' "
                                         "AND load_run_id IS NOT NULL ORDER BY id LIMIT 1")).one()
            source = conn.execute(text("SELECT source_name FROM load_run WHERE id = :r"), {"r": run}).scalar()
        body = client.get(f"/api/facilities/{fid}/history").get_json()
        assert body["load_run"]["id"] == run and body["load_run"]["source_name"] == source
        assert body["facility"]["synthetic"] is True and "synthetic" in body["synthetic_note"]

    @pytest.mark.parametrize("raw", ["1; DROP TABLE facility;", "0", "9" * 30, "%27%20OR%201=1--"])
    def test_unknown_ids_are_404_json(self, client, raw):
        res = client.get(f"/api/facilities/{raw}/history")
        assert res.status_code == 404
        assert res.get_json()["error"]["status"] == 404
