"""Retiring facilities (never deleting them) and the public history of each."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from tests import admin_support
from tests.admin_support import auth, count_active

pytestmark = pytest.mark.usefixtures("demo_restored")
#: The shared fixtures, by name.
tokens, office = admin_support.tokens, admin_support.office


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
            if "/api/markers" in rules:  # what the residents' map draws
                seen["map"] = "退役测试点" in client.get("/api/markers?layer=service_office").get_data(as_text=True)
            return seen

        before = visible()
        assert all(before.values()), before
        assert client.post(f"/api/admin/facilities/{fid}/retire",
                           headers=auth(tokens["editor"], **{"If-Match": tag})).status_code == 200
        after = visible()
        assert not any(after.values()), after
        assert client.get(f"/api/facilities/{fid}/history").get_json()["facility"]["name"] == "退役测试点"


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
