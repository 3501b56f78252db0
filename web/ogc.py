"""OGC API – Features – Part 1: Core, under ``/ogc``.

Conformance classes: Core, GeoJSON, HTML and OpenAPI 3.0. Collections are the
facility layers and the ``population`` grid. Items take ``bbox`` (WGS-84
degrees, CRS84 axis order; any size), ``limit`` (1–10,000, default 100) with
offset-based ``next``/``prev`` links, ``datetime`` on the opened date, and
the collection's property filters (``district=``, ``kind=``, ``name=`` …,
equality), every one declared below and published in ``/openapi.json``.

Every resource is JSON by default and HTML with ``f=html`` or when the client
prefers ``text/html`` (a browser); ``f=json`` forces JSON. The views parse,
call one function of :mod:`services.features`, and add the links.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from services import features
from services.features import CollectionInfo, FeatureQuery
from web.database import get_engine
from web.errors import BadParameter, NotFound
from web.openapi import openapi_document
from web.params import DISTRICT, Args, Param, operation, parse
from web.responses import body, errors

bp = Blueprint("ogc", __name__, url_prefix="/ogc")

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
TRS = "http://www.opengis.net/def/uri/ISO-8601/0/Gregorian"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]

# ------------------------------------------------------------------ parameters
F = Param("f", "string", "Response format (default: by Accept).", enum=("json", "html"))
COLLECTION = Param("layer", "string", "Collection id: a facility layer or population.",
                   enum=features.collection_keys, location="path")
FID = Param("fid", "integer", "Feature id.", minimum=1, location="path")
BBOX = Param("bbox", "bbox", "minlon,minlat,maxlon,maxlat in degrees (CRS84; latitude first with bbox-crs "
             "EPSG:4326): features that intersect it. Six numbers (with heights) are accepted; the heights "
             "are ignored.", schema_extra={"maxItems": 6})
BBOX_CRS = Param("bbox-crs", "string", "CRS of bbox.", enum=(CRS84, EPSG4326), default=CRS84)
LIMIT = Param("limit", "integer", "Page size.", minimum=1, maximum=features.MAX_LIMIT,
              default=features.DEFAULT_LIMIT)
OFFSET = Param("offset", "integer", "Features to skip (next links set it).", minimum=0,
               maximum=features.MAX_OFFSET, default=0)
DATETIME = Param("datetime", "string", "Opened date: an instant (2022-06-30) or interval (2022-01-01/2022-06-30, "
                 "../2022-06-30).", max_length=100)
ITEM_PARAMS = (F, BBOX, BBOX_CRS, LIMIT, OFFSET, DATETIME)
#: Property filters (equality). A collection's items take those of its source
#: (:func:`services.features.filter_names`); a test checks every one is declared here.
FILTERS: dict[str, Param] = {p.name: p for p in (
    DISTRICT,
    Param("kind", "string", "Facility kind (equality).", max_length=100),
    Param("name", "string", "Facility name (equality).", max_length=100),
    Param("source_id", "string", "Source id (equality).", max_length=100),
    Param("status", "string", "Only active facilities are published.", enum=("active",)),
    Param("cell_id", "string", "Population cell id (population only).", max_length=100),
    Param("class", "string", "Cell class (population only).", enum=("urban", "rural")),
)}

_HTML_OR_JSON = {"200": {"description": "OK", "content": {JSON: {"schema": {"type": "object"}},
                                                           HTML: {"schema": {"type": "string"}}}}}
_ITEMS = {"200": {"description": "Features", "content": {
    GEOJSON: {"schema": {"$ref": "#/components/schemas/FeatureCollection"}}, HTML: {"schema": {"type": "string"}}}},
    **errors(400, 404, 503)}
_ITEM = {"200": {"description": "The feature", "content": {
    GEOJSON: {"schema": {"$ref": "#/components/schemas/Feature"}}, HTML: {"schema": {"type": "string"}}}},
    **errors(400, 404, 503)}


# ------------------------------------------------------------------ negotiation and links
def wants_html() -> bool:
    """``f=html|json`` decides; otherwise HTML only when the client prefers ``text/html``."""
    f = F.read()
    if f:
        return bool(f == "html")
    best = request.accept_mimetypes.best_match([GEOJSON, JSON, HTML])
    return best == HTML and request.accept_mimetypes[HTML] > request.accept_mimetypes[JSON]


def _json(doc: Any, mimetype: str = JSON) -> Response:
    text = doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False, default=str)
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


def collection_doc(info: CollectionInfo) -> dict[str, Any]:
    """The OGC collection document of one collection (extent in CRS84 degrees, links)."""
    key = info.key
    doc: dict[str, Any] = {
        "id": key,
        "title": f"{info.title_zh} {info.title_en}",
        "description": info.description,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "synthetic": info.synthetic,
        "extent": {"spatial": {"bbox": [info.bbox or [-180, -90, 180, 90]], "crs": CRS84}},
        "links": [
            _link(_url("ogc.collection", layer=key, f="json"), "self", JSON, "This collection"),
            _link(_url("ogc.collection", layer=key, f="html"), "alternate", HTML, "This collection (HTML)"),
            _link(_url("ogc.items", layer=key, f="json"), "items", GEOJSON, "Features (GeoJSON)"),
            _link(_url("ogc.items", layer=key, f="html"), "items", HTML, "Features (HTML)"),
            _link(_url("downloads.export", layer=key, fmt="geojson"), "enclosure", GEOJSON, "Download all (GeoJSON)"),
        ],
    }
    if info.date_min:
        interval = [info.date_min.isoformat(), info.date_max.isoformat() if info.date_max else None]
        doc["extent"]["temporal"] = {"interval": [interval], "trs": TRS}
    return doc


# ------------------------------------------------------------------ parsing the items query
def _without_heights(args: Mapping[str, Any]) -> MultiDict[str, str]:
    """The query with a 3-D bbox (six numbers) cut to its four horizontal ones."""
    out: MultiDict[str, str] = MultiDict(args)
    boxes = out.getlist("bbox")
    if len(boxes) == 1 and len(boxes[0].split(",")) == 6:
        p = boxes[0].split(",")
        out["bbox"] = ",".join([p[0], p[1], p[3], p[4]])
    return out


def _dates(raw: str | None) -> tuple[dt.date | None, dt.date | None]:
    """OGC ``datetime``: an instant or an interval ``a/b`` with ``..`` open ends; matched on dates."""
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


def items_query(key: str) -> tuple[FeatureQuery, Args]:
    """The items parameters of collection ``key``, checked, as a query and the parsed values."""
    filters = {name: FILTERS[name] for name in features.filter_names(key)}
    args = parse((*ITEM_PARAMS, *filters.values()), _without_heights(request.args))
    box = args.bbox
    if box and args.bbox_crs == EPSG4326:  # EPSG:4326 is latitude first
        box = (box[1], box[0], box[3], box[2])
    lo, hi = _dates(args.datetime)
    equals = {name: args[p.attr] for name, p in filters.items() if args[p.attr] is not None}
    return FeatureQuery(bbox=box, date_from=lo, date_to=hi, equals=equals), args


def _feature_id(key: str, raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"feature {raw[:40]!r} does not exist in {key[:40]}")
    return int(raw)


# ------------------------------------------------------------------ rendering
def items_response(key: str, page: features.ItemsPage, args: Args) -> ResponseReturnValue:
    html = wants_html()
    limit, offset = args.limit, args.offset
    allowed = {p.name for p in ITEM_PARAMS} | set(features.filter_names(key))
    keep = {k: v for k, v in request.args.items() if k in allowed and k not in ("f", "offset", "limit")}
    links = _self_links("ogc.items", GEOJSON, "This page", layer=key, limit=limit, offset=offset, **keep)
    fmt, page_type = ("html", HTML) if html else ("json", GEOJSON)
    if offset + len(page.features) < page.matched:
        links.append(_link(_url("ogc.items", layer=key, f=fmt, limit=limit, offset=offset + limit, **keep),
                           "next", page_type, "Next page"))
    if offset > 0:
        links.append(_link(_url("ogc.items", layer=key, f=fmt, limit=limit, offset=max(0, offset - limit), **keep),
                           "prev", page_type, "Previous page"))
    links.append(_link(_url("ogc.collection", layer=key, f="json"), "collection", JSON, "The collection"))
    if html:
        return render_template("ogc_items.html", key=key, title=features.title(key, "zh"),
                               title_en=features.title(key, "en"), features=[json.loads(f) for f in page.features],
                               matched=page.matched, offset=offset, links=links, synthetic=page.synthetic)
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    head = {"type": "FeatureCollection", "numberMatched": page.matched, "numberReturned": len(page.features),
            "timeStamp": stamp, "links": links}
    text = json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [' + ",\n".join(page.features) + "]}"
    return _json(text, GEOJSON)


def item_response(key: str, fid: int, text: str) -> ResponseReturnValue:
    feature = json.loads(text)
    feature["links"] = _self_links("ogc.item", GEOJSON, "This feature", layer=key, fid=fid) + [
        _link(_url("ogc.collection", layer=key, f="json"), "collection", JSON, "The collection")]
    if wants_html():
        return render_template("ogc_item.html", key=key, title=features.title(key, "zh"), feature=feature,
                               geometry=json.dumps(feature.get("geometry"), ensure_ascii=False))
    return _json(feature, GEOJSON)


# ------------------------------------------------------------------ routes
@bp.get("/")
@bp.get("")
@operation("OGC API – Features landing page", "ogc", (F,), responses={**_HTML_OR_JSON, **errors(400)})
def landing() -> ResponseReturnValue:
    doc = landing_doc()
    return render_template("ogc_landing.html", doc=doc) if wants_html() else _json(doc)


@bp.get("/conformance")
@operation("Conformance classes", "ogc", (F,), responses={**_HTML_OR_JSON, **errors(400)})
def conformance() -> ResponseReturnValue:
    if wants_html():
        return render_template("ogc_landing.html", doc={"title": "Conformance", "conformance": CONFORMANCE,
                                                        "links": []})
    return _json({"conformsTo": CONFORMANCE})


@bp.get("/api")
@operation("This API definition (OpenAPI 3.0); HTML redirects to /api/docs", "ogc", (F,), responses={
    "200": body("OpenAPI", OPENAPI), "302": {"description": "To /api/docs"}, **errors(400)})
def api_definition() -> ResponseReturnValue:
    if wants_html():
        return redirect(url_for("openapi.docs"))
    return _json(openapi_document(), OPENAPI)


@bp.get("/collections")
@operation("The collections", "ogc", (F,), responses={**_HTML_OR_JSON, **errors(400, 503)})
def collections() -> ResponseReturnValue:
    docs = [collection_doc(info) for info in features.collections(get_engine())]
    doc = {"links": _self_links("ogc.collections", JSON, "Collections"), "collections": docs}
    return render_template("ogc_collections.html", doc=doc) if wants_html() else _json(doc)


@bp.get("/collections/<layer>")
@operation("One collection", "ogc", (COLLECTION, F), responses={**_HTML_OR_JSON, **errors(400, 404, 503)})
def collection(layer: str) -> ResponseReturnValue:
    doc = collection_doc(features.collection(get_engine(), layer))
    return render_template("ogc_collection.html", doc=doc) if wants_html() else _json(doc)


@bp.get("/collections/<layer>/items")
@operation("Features of a collection", "ogc", (COLLECTION, *ITEM_PARAMS, *FILTERS.values()), responses=_ITEMS)
def items(layer: str) -> ResponseReturnValue:
    query, args = items_query(layer)
    page = features.items(get_engine(), layer, query, limit=args.limit, offset=args.offset)
    return items_response(layer, page, args)


@bp.get("/collections/<layer>/items/<fid>")
@operation("One feature", "ogc", (COLLECTION, FID, F), responses=_ITEM)
def item(layer: str, fid: str) -> ResponseReturnValue:
    feature_id = _feature_id(layer, fid)
    return item_response(layer, feature_id, features.item(get_engine(), layer, feature_id))
