"""OGC API – Features – Part 1: Core, under ``/ogc``.

Conformance classes: Core, GeoJSON, HTML and OpenAPI 3.0. Collections are the
five facility layers and the ``population`` grid. Items support ``bbox``
(WGS-84 degrees, CRS84 axis order), ``limit`` (1–10,000, default 100) with
offset-based ``next``/``prev`` links, ``datetime`` on the opened date, and
simple property filters (``district=``, ``kind=``, ``name=`` …, equality).

Every resource is JSON by default and HTML with ``f=html`` or when the client
prefers ``text/html`` (a browser); ``f=json`` forces JSON.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for

from db import export as dbx
from layers import LAYERS
from web import params
from web.database import get_engine
from web.errors import BadParameter, NotFound

bp = Blueprint("ogc", __name__, url_prefix="/ogc")

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100
MAX_OFFSET = 100_000_000
#: Query parameters the items endpoint understands besides the property filters.
ITEM_PARAMS = ("f", "bbox", "bbox-crs", "limit", "offset", "datetime")


# ------------------------------------------------------------------ negotiation
def wants_html() -> bool:
    """``f=html|json`` decides; otherwise HTML only when the client prefers ``text/html``."""
    f = params.choice("f", ["json", "html"])
    if f:
        return f == "html"
    best = request.accept_mimetypes.best_match([GEOJSON, JSON, HTML])
    return best == HTML and request.accept_mimetypes[HTML] > request.accept_mimetypes[JSON]


def _json(body: Any, mimetype: str = JSON) -> Response:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, default=str)
    return Response(text, mimetype=mimetype)


def _url(endpoint: str, **values: Any) -> str:
    return url_for(endpoint, _external=True, **values)


def _link(href: str, rel: str, type_: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": type_, "title": title}


def _self_links(endpoint: str, json_type: str, title: str, **values: Any) -> list[dict[str, str]]:
    html = wants_html()
    return [
        _link(_url(endpoint, f="html" if html else "json", **values), "self", HTML if html else json_type, title),
        _link(_url(endpoint, f="json" if html else "html", **values), "alternate",
              json_type if html else HTML, f"{title} ({'JSON' if html else 'HTML'})"),
    ]


def _collection_key(layer: str) -> str:
    if layer not in dbx.COLLECTION_KEYS:
        raise NotFound(f"collection {layer[:40]!r} does not exist; collections: {', '.join(dbx.COLLECTION_KEYS)}")
    return layer


# ------------------------------------------------------------------ documents
def landing_doc() -> dict[str, Any]:
    return {
        "title": "Minsheng Map 民生设施地图 – OGC API Features",
        "description": "Public service facilities of Zaozhuang (枣庄市) and a population grid. The demo "
                       "city's facilities and grid are SYNTHETIC (合成数据).",
        "links": _self_links("ogc.landing", JSON, "This document") + [
            _link(_url("ogc.api_definition", f="json"), "service-desc", OPENAPI, "The API definition (OpenAPI 3.0)"),
            _link(_url("ogc.api_definition", f="html"), "service-doc", HTML, "The API documentation"),
            _link(_url("ogc.conformance", f="json"), "conformance", JSON, "Conformance classes"),
            _link(_url("ogc.collections", f="json"), "data", JSON, "Collections"),
        ],
    }


def collection_doc(key: str) -> dict[str, Any]:
    ext = dbx.extent(get_engine(), key)
    synthetic = " SYNTHETIC demo data (合成数据)." if ext["synthetic"] else ""
    if key == dbx.POPULATION:
        desc = ("Population demand grid: square cells in EPSG:4548, given in WGS-84, with population and "
                "urban/rural class." + synthetic)
    else:
        t = LAYERS[key].threshold
        desc = f"{LAYERS[key].name_en}. Service standard: {t.standard_en}.{synthetic}"
    interval = [[ext["date_min"].isoformat() if ext["date_min"] else None,
                 ext["date_max"].isoformat() if ext["date_max"] else None]]
    doc: dict[str, Any] = {
        "id": key,
        "title": f"{dbx.collection_title(key, 'zh')} {dbx.collection_title(key, 'en')}",
        "description": desc,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "synthetic": ext["synthetic"],
        "extent": {"spatial": {"bbox": [ext["bbox"] or [-180, -90, 180, 90]], "crs": CRS84}},
        "links": [
            _link(_url("ogc.collection", layer=key, f="json"), "self", JSON, "This collection"),
            _link(_url("ogc.collection", layer=key, f="html"), "alternate", HTML, "This collection (HTML)"),
            _link(_url("ogc.items", layer=key, f="json"), "items", GEOJSON, "Features (GeoJSON)"),
            _link(_url("ogc.items", layer=key, f="html"), "items", HTML, "Features (HTML)"),
            _link(_url("export.export", layer=key, fmt="geojson"), "enclosure", GEOJSON, "Download all (GeoJSON)"),
        ],
    }
    if interval[0][0]:
        doc["extent"]["temporal"] = {"interval": interval, "trs": "http://www.opengis.net/def/uri/ISO-8601/0/Gregorian"}
    return doc


def _parse_datetime() -> tuple[dt.date | None, dt.date | None]:
    """OGC ``datetime``: an instant or an interval ``a/b`` with ``..`` open ends; matched on dates."""
    raw = params.text_param("datetime", max_len=100)
    if raw is None:
        return None, None
    ends = raw.split("/")
    if len(ends) > 2:
        raise BadParameter(f"datetime was {raw[:60]!r} but must be a date, a date-time, or an interval a/b "
                           "with '..' for an open end", parameter="datetime")
    out: list[dt.date | None] = []
    for end in ends:
        if end in ("", ".."):
            out.append(None)
            continue
        try:
            out.append(dt.datetime.fromisoformat(end.replace("Z", "+00:00")).date() if "T" in end
                       else dt.date.fromisoformat(end))
        except ValueError:
            raise BadParameter(f"datetime was {raw[:60]!r} but must be RFC 3339, e.g. 2022-06-30, "
                               "2022-01-01/2022-06-30 or ../2022-06-30", parameter="datetime") from None
    lo, hi = (out[0], out[0]) if len(out) == 1 else (out[0], out[1])
    if lo and hi and lo > hi:
        raise BadParameter("datetime interval ends before it starts", parameter="datetime")
    return lo, hi


def _parse_bbox() -> tuple[float, float, float, float] | None:
    crs = params.choice("bbox-crs", [CRS84, "http://www.opengis.net/def/crs/EPSG/0/4326"], default=CRS84)
    raw = request.args.get("bbox")
    if raw and len(raw.split(",")) == 6:  # 3-D bbox: drop the heights
        p = raw.split(",")
        request.args = request.args.copy()
        request.args["bbox"] = ",".join([p[0], p[1], p[3], p[4]])
    box = params.bbox()
    if box and crs.endswith("/4326"):  # EPSG:4326 is latitude first
        box = (box[1], box[0], box[3], box[2])
    return box


def items_query(key: str) -> dbx.Query:
    """Parse the items filters (bbox, datetime, property equality) into a :class:`db.export.Query`."""
    src = dbx.get_source(key)
    equals = {}
    for name in src.filters:
        value = params.text_param(name, max_len=100)
        if value is not None:
            equals[name] = value
    if "district" in equals:
        params.district()  # validates the adcode, naming the six allowed
    lo, hi = _parse_datetime()
    return dbx.Query(bbox=_parse_bbox(), date_from=lo, date_to=hi, equals=equals)


def items_response(key: str) -> Response | str:
    limit = params.integer("limit", lo=1, hi=MAX_LIMIT, default=DEFAULT_LIMIT)
    offset = params.integer("offset", lo=0, hi=MAX_OFFSET, default=0)
    query = items_query(key)
    engine = get_engine()
    matched = dbx.count_features(engine, key, query)
    feats = dbx.page_features(engine, key, query, limit=limit, offset=offset)
    html = wants_html()
    allowed = set(ITEM_PARAMS) | set(dbx.get_source(key).filters)
    keep = {k: v for k, v in request.args.items() if k in allowed and k not in ("f", "offset", "limit")}
    links = _self_links("ogc.items", GEOJSON, "This page", layer=key, limit=limit, offset=offset, **keep)
    fmt = "html" if html else "json"
    page_type = HTML if html else GEOJSON
    if offset + len(feats) < matched:
        links.append(_link(_url("ogc.items", layer=key, f=fmt, limit=limit, offset=offset + limit, **keep),
                           "next", page_type, "Next page"))
    if offset > 0:
        links.append(_link(_url("ogc.items", layer=key, f=fmt, limit=limit, offset=max(0, offset - limit), **keep),
                           "prev", page_type, "Previous page"))
    links.append(_link(_url("ogc.collection", layer=key, f="json"), "collection", JSON, "The collection"))
    stamp = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    if html:
        return render_template("ogc_items.html", key=key, title=dbx.collection_title(key, "zh"),
                               title_en=dbx.collection_title(key, "en"),
                               features=[json.loads(f) for f in feats], matched=matched, offset=offset,
                               links=links, synthetic=dbx.has_synthetic(engine, key))
    head = {"type": "FeatureCollection", "numberMatched": matched, "numberReturned": len(feats),
            "timeStamp": stamp, "links": links}
    text = json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [' + ",\n".join(feats) + "]}"
    return _json(text, GEOJSON)


def item_response(key: str, fid: str) -> Response | str:
    if not fid.isdigit() or len(fid) > 18:
        raise NotFound(f"feature {fid[:40]!r} does not exist in {key}")
    text = dbx.get_feature(get_engine(), key, int(fid))
    if text is None:
        raise NotFound(f"feature {fid} does not exist in {key}")
    feature = json.loads(text)
    feature["links"] = _self_links("ogc.item", GEOJSON, "This feature", layer=key, fid=fid) + [
        _link(_url("ogc.collection", layer=key, f="json"), "collection", JSON, "The collection")]
    if wants_html():
        return render_template("ogc_item.html", key=key, title=dbx.collection_title(key, "zh"), feature=feature,
                               geometry=json.dumps(feature.get("geometry"), ensure_ascii=False))
    return _json(feature, GEOJSON)


# ------------------------------------------------------------------ routes
@bp.get("/")
@bp.get("")
def landing():
    doc = landing_doc()
    return render_template("ogc_landing.html", doc=doc) if wants_html() else _json(doc)


@bp.get("/conformance")
def conformance():
    doc = {"conformsTo": CONFORMANCE}
    return render_template("ogc_landing.html", doc={"title": "Conformance", "conformance": CONFORMANCE,
                                                    "links": []}) if wants_html() else _json(doc)


@bp.get("/api")
def api_definition():
    if wants_html():
        return redirect(url_for("openapi.docs"))
    from web.openapi import openapi_document

    return _json(openapi_document(), OPENAPI)


@bp.get("/collections")
def collections():
    docs = [collection_doc(key) for key in dbx.COLLECTION_KEYS]
    body = {"links": _self_links("ogc.collections", JSON, "Collections"), "collections": docs}
    return render_template("ogc_collections.html", doc=body) if wants_html() else _json(body)


@bp.get("/collections/<layer>")
def collection(layer: str):
    doc = collection_doc(_collection_key(layer))
    return render_template("ogc_collection.html", doc=doc) if wants_html() else _json(doc)


@bp.get("/collections/<layer>/items")
def items(layer: str):
    return items_response(_collection_key(layer))


@bp.get("/collections/<layer>/items/<fid>")
def item(layer: str, fid: str):
    return item_response(_collection_key(layer), fid)
