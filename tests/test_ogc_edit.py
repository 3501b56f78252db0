"""OGC API – Features Part 4 on the facility collections: the admin API's tokens, roles, ETags,
validation and audit history, through the standard's POST, PUT, PATCH and DELETE.

What a change did is read back from the public history and the database, not from the answer alone.
"""
from __future__ import annotations

import pyproj
import pytest
from sqlalchemy import text

from services.editing import create_token

pytestmark = pytest.mark.usefixtures("demo_restored")

ITEMS = "/ogc/collections/police_station/items"
INSIDE = (117.5566, 34.8640)  # 市中区, WGS-84
GEOJSON = "application/geo+json"


@pytest.fixture(scope="module")
def tokens(engine) -> dict[str, str]:
    return {role: create_token(engine, role, f"ogc {role}")[1] for role in ("viewer", "editor")}


def auth(tokens, role="editor", **extra) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}", "Content-Type": GEOJSON, **extra}


def feature(name: str, lon: float = INSIDE[0], lat: float = INSIDE[1], **props) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"name": name, **props}}


def created(client, tokens, name: str) -> tuple[int, str]:
    r = client.post(ITEMS, json=feature(name, address="测试路1号"), headers=auth(tokens))
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.get_json()["id"], r.headers["ETag"]


def test_create_with_an_editor_token_appears_in_items_and_history(client, tokens, engine):
    r = client.post(ITEMS, json=feature("OGC新建警务站", phone="0632-1"), headers=auth(tokens))
    assert r.status_code == 201 and r.headers["Location"].endswith(f"/items/{r.get_json()['id']}")
    fid = r.get_json()["id"]
    got = client.get(f"{ITEMS}/{fid}")
    assert got.status_code == 200 and got.get_json()["properties"]["name"] == "OGC新建警务站"
    assert got.headers["ETag"] == r.headers["ETag"] == f'"{fid}-1"'
    with engine.connect() as conn:
        district = conn.execute(text("SELECT district_adcode FROM facility WHERE id = :i"), {"i": fid}).scalar_one()
    assert district == "370402"  # the ETL assigned the district
    history = client.get(f"/api/facilities/{fid}/history").get_json()
    assert [c["action"] for c in history["changes"]] == ["insert"]


def test_no_token_a_viewer_token_and_a_read_only_collection_are_refused(client, tokens):
    assert client.post(ITEMS, json=feature("x"), headers={"Content-Type": GEOJSON}).status_code == 401
    assert client.post(ITEMS, json=feature("x"), headers=auth(tokens, "viewer")).status_code == 403
    r = client.post("/ogc/collections/population/items", json=feature("x"), headers=auth(tokens))
    assert r.status_code == 405 and "POST" not in r.headers["Allow"] and "GET" in r.headers["Allow"]


def test_replace_needs_if_match_and_rewrites_every_property(client, tokens):
    fid, tag = created(client, tokens, "OGC替换前")
    replacement = feature("OGC替换后", INSIDE[0] + 0.001, INSIDE[1])
    assert client.put(f"{ITEMS}/{fid}", json=replacement, headers=auth(tokens)).status_code == 428
    r = client.put(f"{ITEMS}/{fid}", json=replacement, headers=auth(tokens, **{"If-Match": tag}))
    assert r.status_code == 200 and r.headers["ETag"] == f'"{fid}-2"'
    props = r.get_json()["properties"]
    assert props["name"] == "OGC替换后" and "address" not in props  # replaced: the address given before is gone
    assert abs(r.get_json()["geometry"]["coordinates"][0] - (INSIDE[0] + 0.001)) < 1e-7
    stale = client.put(f"{ITEMS}/{fid}", json=replacement, headers=auth(tokens, **{"If-Match": tag}))
    assert stale.status_code == 412 and stale.headers["ETag"] == f'"{fid}-2"'


def test_update_changes_only_what_it_names(client, tokens):
    fid, tag = created(client, tokens, "OGC部分修改")
    r = client.patch(f"{ITEMS}/{fid}", json={"properties": {"phone": "0632-9999"}},
                     headers=auth(tokens, **{"If-Match": tag, "Content-Type": "application/merge-patch+json"}))
    assert r.status_code == 200
    props = r.get_json()["properties"]
    assert props["phone"] == "0632-9999" and props["address"] == "测试路1号" and props["name"] == "OGC部分修改"
    history = client.get(f"/api/facilities/{fid}/history").get_json()["changes"]
    assert history[-1]["before"]["phone"] is None and history[-1]["after"]["phone"] == "0632-9999"


def test_geometry_in_another_crs_is_moved_to_wgs84(client, tokens):
    x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(*INSIDE)
    body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]}, "properties": {"name": "墨卡托"}}
    r = client.post(ITEMS, json=body, headers=auth(tokens, **{
        "Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/3857>"}))
    assert r.status_code == 201, r.get_data(as_text=True)
    lon, lat = r.get_json()["geometry"]["coordinates"]
    assert abs(lon - INSIDE[0]) < 1e-6 and abs(lat - INSIDE[1]) < 1e-6


def test_delete_retires_and_the_history_keeps_it(client, tokens, engine):
    fid, tag = created(client, tokens, "OGC将删除")
    assert client.delete(f"{ITEMS}/{fid}", headers=auth(tokens)).status_code == 428
    r = client.delete(f"{ITEMS}/{fid}", headers=auth(tokens, **{"If-Match": tag}))
    assert r.status_code == 204
    assert client.get(f"{ITEMS}/{fid}").status_code == 404
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM facility WHERE id = :i"), {"i": fid}).scalar_one() == "retired"
    assert client.get(f"/api/facilities/{fid}/history").get_json()["changes"][-1]["action"] == "retire"


@pytest.mark.parametrize("body,parameter", [
    (feature("城外", 100.0, 30.0), "geometry"),  # outside the city: the ETL refuses it
    ({"type": "Feature", "geometry": None, "properties": {"name": "无位置"}}, "geometry"),
    ({"type": "Feature", "geometry": {"type": "Point", "coordinates": list(INSIDE)}, "properties": {}}, "name"),
    (feature("x", nosuch=1), "nosuch"),
    (feature("x", capacity="many"), "capacity"),
    ({"type": "FeatureCollection", "features": []}, "body"),
])
def test_invalid_features_are_400_naming_the_field(client, tokens, body, parameter):
    r = client.post(ITEMS, json=body, headers=auth(tokens))
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["error"]["parameter"] == parameter


def test_a_feature_of_another_layer_is_not_found_here(client, tokens, engine):
    with engine.connect() as conn:
        parking = conn.execute(text("SELECT id, version FROM facility WHERE layer = 'parking' LIMIT 1")).one()
    r = client.patch(f"{ITEMS}/{parking[0]}", json={"properties": {"name": "改错层"}},
                     headers=auth(tokens, **{"If-Match": f'"{parking[0]}-{parking[1]}"'}))
    assert r.status_code == 404


def test_editing_is_not_opened_to_other_origins(client):
    preflight = client.options(ITEMS, headers={"Origin": "http://maps.example",
                                               "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers
    read = client.options(ITEMS, headers={"Origin": "http://maps.example", "Access-Control-Request-Method": "GET"})
    assert read.headers["Access-Control-Allow-Origin"] == "*"


def test_an_etag_from_a_compressed_response_is_accepted_back(client, tokens):
    fid, _ = created(client, tokens, "OGC压缩")
    read = client.get(f"{ITEMS}/{fid}", headers={"Accept-Encoding": "gzip"})
    assert read.headers["Content-Encoding"] == "gzip" and read.headers["ETag"] == f'"{fid}-1:gzip"'
    r = client.patch(f"{ITEMS}/{fid}", json={"properties": {"phone": "1"}},
                     headers=auth(tokens, **{"If-Match": read.headers["ETag"]}))
    assert r.status_code == 200 and r.get_json()["properties"]["phone"] == "1"
