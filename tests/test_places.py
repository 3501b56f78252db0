"""Search by place (``/api/places``): townships, villages, roads, facilities, pinyin, initials and typos.

Each expectation comes from the sources themselves (the township list in
``data/``, the village and road tables), never from the search's own
output; distances are checked against pyproj's geodesic on WGS-84.
"""
from __future__ import annotations

import csv

import pytest
from pyproj import Geod
from sqlalchemy import text

from etl.divisions import TOWNSHIP_FILE
from services.editing import Edit, create_facility, retire_facility

GEOD = Geod(ellps="WGS84")
#: The map centre the searches are made from: the 市中区 seat area.
CENTRE = (117.5566, 34.8640)


def _search(client, q: str, **params):
    r = client.get("/api/places", query_string={"q": q, "near": f"{CENTRE[0]},{CENTRE[1]}", **params})
    assert r.status_code == 200, r.get_json()
    assert r.mimetype == "application/geo+json"
    return r.get_json()["features"]


def _townships() -> dict[str, str]:
    with TOWNSHIP_FILE.open(encoding="utf-8") as fh:
        return {r["name"]: r["code"] for r in csv.DictReader(fh)}


@pytest.mark.parametrize("name", ["店子镇", "北庄镇", "光明路街道", "运河街道", "山亭经济开发区"])
def test_a_township_or_street_from_the_real_list_is_found_first(client, name):
    assert name in _townships()
    first = _search(client, name)[0]["properties"]
    assert first["name"] == name and first["kind"] in ("street", "town", "zone") and first["matched"] == "exact"
    assert first["synthetic"] is True, "until an operator loads real positions, the position is labelled synthetic"


def test_every_township_of_the_list_is_searchable(client, engine):
    names = _townships()
    client.get("/api/places?q=镇")  # builds the gazetteer
    with engine.connect() as conn:
        stored = {r[0] for r in conn.execute(text("SELECT name FROM place WHERE kind IN ('street', 'town', 'zone')"))}
    assert stored == set(names)


def test_a_road_name_finds_the_road(client, engine):
    with engine.connect() as conn:
        road = conn.execute(text("SELECT name FROM road_edge WHERE highway = 'primary' AND name IS NOT NULL"
                                 " ORDER BY id LIMIT 1")).scalar_one()
    hits = [f["properties"] for f in _search(client, road.removesuffix("（合成）"))]
    assert any(h["kind"] == "road" and h["name"] == road for h in hits)


def test_a_village_is_found(client, engine):
    with engine.connect() as conn:
        village = conn.execute(text("SELECT name FROM village ORDER BY village_id OFFSET 41 LIMIT 1")).scalar_one()
    first = _search(client, village)[0]["properties"]
    assert (first["kind"], first["name"]) == ("village", village)


@pytest.mark.parametrize(("typed", "expected"), [
    ("dianzizhen", "店子镇"),      # full pinyin
    ("dzz", "店子镇"),             # initials
    ("Bei Zhuang Zhen", "北庄镇"),  # pinyin with spaces and capitals
    ("店子真", "店子镇"),           # a one-character homophone typo
    ("北装镇", "北庄镇"),           # another
])
def test_pinyin_initials_and_typos(client, typed, expected):
    names = [f["properties"]["name"] for f in _search(client, typed, limit=5)]
    assert expected in names, (typed, names)


def test_a_non_homophone_one_character_typo_is_still_found(client):
    names = [f["properties"]["name"] for f in _search(client, "西王庄乡", limit=10)]  # 镇 typed as 乡
    assert "西王庄镇" in names


def test_pinyin_finds_facilities_and_english_words_find_kinds(client):
    pinyin = [f["properties"] for f in _search(client, "weishengshi", limit=5)]
    assert pinyin and all(p["layer"] == "village_clinic" and "卫生室" in p["name"] for p in pinyin)
    english = [f["properties"] for f in _search(client, "clinic", limit=5, lang="en")]
    assert english and all(p["layer"] == "village_clinic" for p in english)


def test_results_of_one_match_kind_come_nearest_first_with_true_distances(client):
    feats = _search(client, "卫生室", limit=20)
    assert len(feats) == 20
    got = [f["properties"]["distance_m"] for f in feats]
    assert got == sorted(got)
    for f in feats:
        lon, lat = f["geometry"]["coordinates"]
        _, _, d = GEOD.inv(CENTRE[0], CENTRE[1], lon, lat)
        assert f["properties"]["distance_m"] == pytest.approx(d, abs=1.0)


def test_english_labels(client):
    first = _search(client, "店子镇", lang="en")[0]["properties"]
    assert first["label"] == "Dianzi Town" and first["kind_name"] == "Town"
    district = _search(client, "市中区", lang="en")[0]["properties"]
    assert district["label"] == "Shizhong District"


def test_gcj02_centre_is_converted(client):
    wgs = _search(client, "卫生室", limit=3)
    r = client.get("/api/places", query_string={"q": "卫生室", "limit": 3, "crs": "gcj02",
                                                "near": "117.5622,34.8629"}).get_json()["features"]
    assert [f["id"] for f in r] == [f["id"] for f in wgs]


@pytest.mark.parametrize(("query", "parameter"), [
    ({"q": ""}, "q"), ({}, "q"), ({"q": "x" * 51}, "q"), ({"q": "镇", "near": "abc"}, "near"),
    ({"q": "镇", "near": "200,30"}, "near"), ({"q": "镇", "limit": "0"}, "limit"), ({"q": "镇", "crs": "utm"}, "crs"),
    ({"q": "镇", "lang": "fr"}, "lang")])
def test_bad_requests_name_the_parameter(client, query, parameter):
    r = client.get("/api/places", query_string=query)
    assert r.status_code == 400 and r.get_json()["error"]["parameter"] == parameter


def test_sql_text_is_just_text(client):
    r = client.get("/api/places", query_string={"q": "1'; DROP TABLE place; --"})
    assert r.status_code == 200
    assert client.get("/api/places?q=店子镇").get_json()["numberReturned"] >= 1


def test_operator_positions_replace_the_synthetic_ones(runner, engine, tmp_path):
    code = _townships()["店子镇"]
    path = tmp_path / "townships.csv"
    path.write_text(f"code,lon,lat\n{code},117.40,35.05\n", encoding="utf-8")
    try:
        result = runner.invoke(args=["places", "townships", str(path)])
        assert result.exit_code == 0, result.output
        with engine.connect() as conn:
            row = conn.execute(text("SELECT ST_X(geom), ST_Y(geom), synthetic FROM place WHERE name = '店子镇'")).one()
        assert row == (pytest.approx(117.40), pytest.approx(35.05), False)
        bad = tmp_path / "bad.csv"
        bad.write_text("code,lon,lat\n999999999,117,35\n", encoding="utf-8")
        refused = runner.invoke(args=["places", "townships", str(bad)])
        assert refused.exit_code != 0 and "999999999" in str(refused.exception or refused.output)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM township WHERE code = :c"), {"c": code})
            conn.execute(text("DELETE FROM app_meta WHERE key = 'gazetteer'"))


def test_an_edit_is_found_at_once_and_a_retired_facility_is_not(client, engine):
    """The gazetteer follows the facility table: a new facility is searchable on the next request."""
    name = "地名检索新增测试点"
    assert _search(client, name) == [] or all(f["properties"]["name"] != name for f in _search(client, name))
    made = create_facility(engine, "service_office", Edit(values={"name": name}, lon=CENTRE[0], lat=CENTRE[1]),
                           source_id=None, actor="places test")
    try:
        found = [f["properties"] for f in _search(client, name)]
        assert found and found[0]["name"] == name and found[0]["kind"] == "facility"
        retire_facility(engine, made["id"], expected_version=made["version"], actor="places test")
        assert all(f["properties"]["name"] != name for f in _search(client, name))
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM change_log WHERE facility_id = :id"), {"id": made["id"]})
            conn.execute(text("DELETE FROM facility WHERE id = :id"), {"id": made["id"]})
