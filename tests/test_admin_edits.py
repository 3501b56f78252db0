"""Editing facilities through the admin API: create and patch with ETags, the ETL's checks, bounds declared once."""
from __future__ import annotations

import concurrent.futures
import json

import pytest
import requests
from sqlalchemy import event, text

from etl.validate import MAX_TEXT_CHARS
from services.editing import Edit, create_facility
from tests import admin_support
from tests.admin_support import BEIJING, SHIZHONG, TENGZHOU, auth, count_active, gcj02, metres

pytestmark = pytest.mark.usefixtures("demo_restored")
#: The shared fixtures, by name.
tokens, office = admin_support.tokens, admin_support.office


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

    @pytest.mark.parametrize("field", ["name", "address", "source_id", "phone"])
    def test_a_lone_surrogate_is_400_naming_the_field(self, client, tokens, field):
        body = {"layer": "service_office", "name": "代理对测试", "lon": SHIZHONG[0], "lat": SHIZHONG[1]}
        raw = json.dumps({**body, field: "PLACEHOLDER"}).replace("PLACEHOLDER", "x\\ud800y")  # as JSON escapes it
        res = client.post("/api/admin/facilities", data=raw,
                          headers=auth(tokens["editor"], **{"Content-Type": "application/json"}))
        assert res.status_code == 400, res.get_data(as_text=True)
        err = res.get_json()["error"]
        assert err["parameter"] == field and "surrogate" in err["message"]

    def test_a_lone_surrogate_in_a_field_name_is_400(self, client, tokens):
        raw = '{"layer": "service_office", "name": "x", "lon": 117.5566, "lat": 34.864, "\\udc00": 1}'
        res = client.post("/api/admin/facilities", data=raw,
                          headers=auth(tokens["editor"], **{"Content-Type": "application/json"}))
        assert res.status_code == 400 and "surrogate" in res.get_json()["error"]["message"]

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
        assert update["actor"].startswith("editor ") and update["role"] == "editor"
        assert "test editor" not in update["actor"]  # the label is for administrators
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
