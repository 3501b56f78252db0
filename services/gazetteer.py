"""The gazetteer: places residents search by, kept in step with their sources.

Four parts, each rebuilt from its source when that source's ``data_version``
changes (a load, an edit, a new road network), inside one transaction that
readers never see half done:

* ``divisions``: the six districts (their seats) and the real township list
  (``data/divisions``). A township's position is an operator's (``flask
  places townships FILE``) or, until then, the demo's synthetic placement
  (:func:`demo.townships.place_district`), labelled synthetic.
* ``villages``: the villages of the demand model (synthetic in the demo).
* ``roads``: one entry per road name of the network, at a point on the road.
* ``facilities``: every active facility's name and address.

Every entry carries its full pinyin and initials (:func:`etl.pinyin.search_keys`),
an English label (:func:`etl.pinyin.romanise`, or the district's English name)
and keywords in both languages (its kind; a facility's layer and kind names),
so ``clinic`` finds clinics on the English page.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection, Engine

from db import places as db_places
from db import versions as db_versions
from demo.townships import place_district
from etl.divisions import TOWNSHIP_SOURCE, read_positions, read_townships
from etl.pinyin import romanise, search_keys
from geo.crs import from_metric, to_metric
from layers import LAYERS

Row = dict[str, Any]

#: Gazetteer parts and the ``data_version`` rows each is built from.
PARTS: dict[str, tuple[str, ...]] = {"divisions": ("grid",), "villages": ("grid",), "roads": ("roads",),
                                     "facilities": ("facility",)}
#: Words a kind is also found by, Chinese and English.
KIND_WORDS: dict[str, str] = {
    "district": "区 市 district city", "street": "街道 street subdistrict", "town": "镇 乡镇 town township",
    "zone": "开发区 development zone", "village": "村 village", "road": "路 道路 road street"}
SYNTHETIC_POSITION = "synthetic position (demo placement) until an operator loads real ones"


def ensure(engine: Engine, parts: Sequence[str] = tuple(PARTS)) -> list[str]:
    """Rebuild the ``parts`` whose sources changed since they were built; returns the parts rebuilt.

    Cheap when nothing changed (one query). Rebuilds are serialised with an
    advisory lock and re-checked under it, so two workers never both rebuild.
    """
    with engine.connect() as conn:
        stale = _stale(conn, parts)
    if not stale:
        return []
    with engine.begin() as conn:
        db_places.lock(conn)
        stale = _stale(conn, parts)
        record = db_places.built_from(conn)
        for part in stale:
            versions = _versions(conn, PARTS[part])
            db_places.replace_part(conn, part, BUILDERS[part](conn))
            record[part] = versions
        if stale:
            db_places.set_built_from(conn, record)
    return stale


def load_township_positions(engine: Engine, path: Path) -> int:
    """Store real township positions from ``path`` (``code,lon,lat``, WGS-84); returns how many.

    The gazetteer's ``divisions`` part is rebuilt with them at once.
    """
    with engine.begin() as conn:
        db_places.lock(conn)
        known = {t.code: t for t in read_townships()}
        positions = read_positions(path, set(known))
        db_places.upsert_townships(conn, [
            {"code": c, "name": known[c].name, "district_adcode": known[c].district_adcode, "kind": known[c].kind,
             "lon": lon, "lat": lat, "synthetic": False, "source": f"operator file {path.name}"}
            for c, (lon, lat) in positions.items()])
        db_places.replace_part(conn, "divisions", _divisions(conn))
    return len(positions)


# --------------------------------------------------------------------------
# freshness
# --------------------------------------------------------------------------

def _versions(conn: Connection, families: Sequence[str]) -> dict[str, Any]:
    epoch, pairs = db_versions.current(conn)  # the restore epoch, (name, version) pairs
    current = dict(pairs)
    # the epoch too: a restore can rewind a counter to a value a part was built at from other data
    return {"epoch": epoch, **{f: current.get(f) for f in families}}


def _stale(conn: Connection, parts: Sequence[str]) -> list[str]:
    record = db_places.built_from(conn)
    return [p for p in parts if record.get(p) != _versions(conn, PARTS[p])]


# --------------------------------------------------------------------------
# the parts
# --------------------------------------------------------------------------

def entry(kind: str, name: str, lon: float, lat: float, *, synthetic: bool, source: str, name_en: str | None = None,
          keywords: str = "", district: str | None = None, **extra: Any) -> Row:
    """One gazetteer row, with its pinyin, initials and English label."""
    full, initials = search_keys(name)
    return {"kind": kind, "name": name, "name_en": name_en or romanise(name), "pinyin": full, "initials": initials,
            "keywords": " ".join(w for w in (KIND_WORDS.get(kind, ""), keywords) if w), "address": None,
            "layer": None, "facility_id": None, "district_adcode": district, "lon": float(lon), "lat": float(lat),
            "synthetic": bool(synthetic), "source": source, **extra}


def _divisions(conn: Connection) -> list[Row]:
    rows = [entry("district", d["name_zh"], d["lon"], d["lat"], synthetic=False, name_en=d["name_en"],
                  district=d["adcode"], source="district seat (AMap 2020 boundaries)")
            for d in db_places.districts(conn)]
    stored = {t["code"]: t for t in db_places.townships(conn)}
    listed = read_townships()
    missing = [t for t in listed if t.code not in stored or stored[t.code]["synthetic"]]
    if missing:
        db_places.upsert_townships(conn, _synthetic_townships(conn, missing))
        stored = {t["code"]: t for t in db_places.townships(conn)}
    for t in listed:
        s = stored[t.code]
        rows.append(entry(t.kind, t.name, s["lon"], s["lat"], synthetic=s["synthetic"], district=t.district_adcode,
                          source=s["source"]))
    return rows


def _synthetic_townships(conn: Connection, townships: Sequence[Any]) -> list[Row]:
    """Demo positions for ``townships`` (see :mod:`demo.townships`), district by district."""
    seats = {d["adcode"]: (d["lon"], d["lat"]) for d in db_places.districts(conn)}
    urban = _metric_by_district(db_places.urban_cells(conn))
    villages = _metric_by_district(db_places.villages(conn))
    out: list[Row] = []
    for adcode in sorted({t.district_adcode for t in townships}):
        group = [t for t in townships if t.district_adcode == adcode]
        if adcode not in seats:
            continue
        seat = np.array(to_metric(*seats[adcode]), dtype=float)
        xy = place_district([t.kind for t in group], seat, urban.get(adcode, np.zeros((0, 2))),
                            villages.get(adcode, np.zeros((0, 2))))
        lons, lats = from_metric(xy[:, 0], xy[:, 1])
        out += [{"code": t.code, "name": t.name, "district_adcode": adcode, "kind": t.kind, "lon": float(x),
                 "lat": float(y), "synthetic": True, "source": f"{TOWNSHIP_SOURCE}; {SYNTHETIC_POSITION}"}
                for t, x, y in zip(group, lons, lats, strict=True)]
    return out


def _metric_by_district(rows: list[Row]) -> dict[str, np.ndarray]:
    """EPSG:4548 metres of WGS-84 rows, grouped by district."""
    out: dict[str, np.ndarray] = {}
    if not rows:
        return out
    x, y = to_metric(np.array([r["lon"] for r in rows]), np.array([r["lat"] for r in rows]))
    codes = np.array([r["district_adcode"] for r in rows])
    for code in np.unique(codes):
        mask = codes == code
        out[str(code)] = np.column_stack([x[mask], y[mask]])
    return out


def _villages(conn: Connection) -> list[Row]:
    return [entry("village", v["name"], v["lon"], v["lat"], synthetic=v["synthetic"], district=v["district_adcode"],
                  source="village of the demand model") for v in db_places.villages(conn)]


def _roads(conn: Connection) -> list[Row]:
    return [entry("road", r["name"], r["lon"], r["lat"], synthetic=r["synthetic"], source="road network")
            for r in db_places.roads(conn)]


def _facilities(conn: Connection) -> list[Row]:
    rows = []
    for f in db_places.facilities(conn):
        layer = LAYERS.get(f["layer"])
        words = [layer.name_zh, layer.name_en, *(w for pair in layer.kinds.values() for w in pair)] if layer else []
        row = entry("facility", f["name"], f["lon"], f["lat"], synthetic=f["synthetic"], name_en=f["name"],
                    keywords=" ".join(words), district=f["district_adcode"], source="facility")
        row.update(address=f["address"], layer=f["layer"], facility_id=f["id"])
        rows.append(row)
    return rows


BUILDERS: dict[str, Callable[[Connection], list[Row]]] = {
    "divisions": _divisions, "villages": _villages, "roads": _roads, "facilities": _facilities}
