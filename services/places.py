"""Search by place: districts, townships and streets, villages, roads and facilities.

``q`` is matched against each gazetteer entry's name (contains, case
insensitive), its full pinyin and initials (``dianzizhen``, ``dzz``), its
keywords in Chinese and English (``clinic``) and a facility's address; a
query in Chinese characters is also matched by its pinyin, so a homophone
typo (``卫生是``) finds ``卫生室``, and any other small typo is caught by
pg_trgm similarity. Results come best match first (exact, then contains,
then address, then similar) and, within each, nearest first to ``near``
(the map's centre), with the geodesic distance in metres.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from db import places as db_places
from etl.pinyin import has_han, query_key
from geo.crs import POSITION_CRS, from_wgs84, to_wgs84
from services import gazetteer
from services.errors import InvalidRequest

#: Longest query, characters; most results and the default.
MAX_QUERY_CHARS = 50
MAX_LIMIT = 50
DEFAULT_LIMIT = 10
#: Least pg_trgm similarity (0–1) for a place found by similarity alone (a typo).
SIMILARITY = 0.3
LANGS = ("zh", "en")

KIND_NAMES: dict[str, tuple[str, str]] = {
    "district": ("区（市）", "District"), "street": ("街道", "Subdistrict"), "town": ("镇", "Town"),
    "zone": ("开发区", "Development zone"), "village": ("村", "Village"), "road": ("道路", "Road"),
    "facility": ("设施", "Facility")}
MATCHED = ("exact", "contains", "address", "similar")
ORDER_NOTE = ("best match first (exact name, pinyin or initials; then contains; then address; then similar "
              "spelling), nearest first within each to `near`; distance_m: geodesic metres on WGS-84")


def search(engine: Engine, q: str, *, near: tuple[float, float] | None = None, crs: str = "wgs84",
           limit: int = DEFAULT_LIMIT, lang: str = "zh") -> dict[str, Any]:
    """GeoJSON FeatureCollection of gazetteer places matching ``q``.

    Parameters
    ----------
    engine : Engine
    q : str
        1 to :data:`MAX_QUERY_CHARS` characters, taken literally.
    near : (float, float), optional
        lon, lat in ``crs`` (the map's centre) to order by and measure from.
    crs : str
        CRS of ``near``: wgs84, gcj02 or bd09.
    limit : int
        1 to :data:`MAX_LIMIT`.
    lang : str
        ``zh`` or ``en``: the language of each ``label``.

    Returns
    -------
    dict
        Features with WGS-84 Point geometry and ``kind``, ``label``, ``name``
        (Chinese), ``name_en``, ``matched``, ``distance_m`` (geodesic metres,
        or null without ``near``), ``synthetic`` (the position is synthetic),
        ``coordinates`` (wgs84, gcj02, bd09) and, for facilities,
        ``layer``, ``facility_id`` and ``address``.
    """
    q = q.strip()
    _check(q, crs, limit, lang)
    wnear = tuple(float(v) for v in to_wgs84(near[0], near[1], crs)) if near else None
    gazetteer.ensure(engine)
    key = query_key(q)
    with engine.connect() as conn:
        rows = db_places.search(conn, q, key, initials=not has_han(q), near=wnear,  # type: ignore[arg-type]
                                limit=limit, similar=SIMILARITY)
    features = [_feature(r, lang) for r in rows]
    return {"type": "FeatureCollection",
            "query": {"q": q, "near": list(near) if near else None, "crs": crs, "limit": limit, "lang": lang,
                      "pinyin": key},
            "order": ORDER_NOTE, "numberReturned": len(features),
            "synthetic": any(f["properties"]["synthetic"] for f in features), "features": features}


def _check(q: str, crs: str, limit: int, lang: str) -> None:
    if not 1 <= len(q) <= MAX_QUERY_CHARS:
        raise InvalidRequest(f"q must be 1 to {MAX_QUERY_CHARS} characters long (it was {len(q)} after trimming)",
                             parameter="q", allowed={"min_length": 1, "max_length": MAX_QUERY_CHARS})
    if crs not in POSITION_CRS:
        raise InvalidRequest(f"crs was {crs[:20]!r} but is expected to be one of {', '.join(POSITION_CRS)}",
                             parameter="crs", allowed=list(POSITION_CRS))
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit was {limit} but must be a whole number from 1 to {MAX_LIMIT}", parameter="limit",
                             allowed={"min": 1, "max": MAX_LIMIT})
    if lang not in LANGS:
        raise InvalidRequest(f"lang was {lang[:20]!r} but is expected to be one of zh, en", parameter="lang",
                             allowed=list(LANGS))


def _feature(r: dict[str, Any], lang: str) -> dict[str, Any]:
    kind_zh, kind_en = KIND_NAMES[r["kind"]]
    props: dict[str, Any] = {
        "id": r["id"], "kind": r["kind"], "kind_name": kind_en if lang == "en" else kind_zh,
        "label": r["name_en"] if lang == "en" else r["name"], "name": r["name"], "name_en": r["name_en"],
        "district": r["district_adcode"], "district_name": r["district_en"] if lang == "en" else r["district_zh"],
        "matched": MATCHED[int(r["tier"])],
        "distance_m": None if r["distance_m"] is None else round(float(r["distance_m"]), 1),
        "synthetic": bool(r["synthetic"]), "coordinates": _coordinates(r["lon"], r["lat"]),
    }
    if r["kind"] == "facility":
        props.update(layer=r["layer"], facility_id=r["facility_id"], address=r["address"])
    return {"type": "Feature", "id": r["id"], "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
            "properties": props}


def _coordinates(lon: float, lat: float) -> dict[str, list[float]]:
    """The position in each of :data:`geo.crs.POSITION_CRS` (degrees, 7 decimals), for Chinese map apps."""
    return {crs: [round(float(v), 7) for v in from_wgs84(lon, lat, crs)] for crs in POSITION_CRS}
