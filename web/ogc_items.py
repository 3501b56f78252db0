"""OGC API – Features items: ``/ogc/collections/{collectionId}/items`` and ``.../items/{featureId}``.

Items take ``bbox`` (4 numbers, or 6 with heights; any size; crossing the
antimeridian when the first longitude is the greater) in ``bbox-crs``;
``crs`` for the output (Part 2: CRS84, EPSG:4326, EPSG:4490, EPSG:4548,
EPSG:3857, axes in each CRS's EPSG order, said in ``Content-Crs``);
``limit`` (a value above the maximum is served at the maximum, as the 1.0.1
corrigendum says) with ``next``/``prev`` links; ``datetime`` on the opened
date; ``filter`` in CQL2 text or JSON (Part 3, ``filter-lang``,
``filter-crs``); ``sortby``; ``properties``; ``skipGeometry``; and the
collection's queryable property filters (``district=``, ``kind=`` …, equality).
Every one is declared below and published in both OpenAPI documents.

A facility feature carries an ``ETag`` (``"<id>-<version>"``) for Part 4 edits.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue

from services import features, ogc_crs, ogc_query
from services.editing import etag
from services.features import FeatureQuery, FeatureShape
from web.database import get_engine
from web.errors import BadParameter, NotFound
from web.ogc import (
    COLLECTION,
    GEOJSON,
    HTML,
    JSON,
    F,
    json_response,
    link,
    link_header,
    ogc_args,
    self_links,
    url,
    wants_html,
)
from web.params import DISTRICT, Args, Param, operation
from web.responses import errors

bp = Blueprint("ogc_items", __name__, url_prefix="/ogc")

FID = Param("featureId", "integer", "Feature id.", minimum=1, location="path")
BBOX = Param("bbox", "numbers", "Features that intersect this box: lower corner then upper corner (4 numbers, or 6 "
             "with heights, which are ignored) in bbox-crs and its axis order: CRS84 minlon,minlat,maxlon,maxlat; "
             "EPSG:4326 minlat,minlon,maxlat,maxlon. Any size; minlon > maxlon crosses the antimeridian.",
             min_length=4, max_length=6)
CRS_ENUM = ogc_crs.CRS_URIS
BBOX_CRS = Param("bbox-crs", "string", "CRS of bbox (default CRS84).", enum=CRS_ENUM)
CRS = Param("crs", "string", "CRS of the returned geometries (default CRS84); the response's Content-Crs names it.",
            enum=CRS_ENUM)
LIMIT = Param("limit", "integer", "Page size.", minimum=1, maximum=features.MAX_LIMIT,
              default=features.DEFAULT_LIMIT, clamp=True)
OFFSET = Param("offset", "integer", "Features to skip (next links set it).", minimum=0,
               maximum=features.MAX_OFFSET, default=0)
DATETIME = Param("datetime", "string", "Opened date: an instant (2022-06-30) or interval (2022-01-01/2022-06-30, "
                 "../2022-06-30).", max_length=100)
FILTER = Param("filter", "string", "CQL2 filter on the queryables (see .../queryables), e.g. "
               "\"kind = 'park' AND S_INTERSECTS(geometry, BBOX(117.4,34.8,117.7,35.0))\".",
               max_length=ogc_query.MAX_FILTER_CHARS)
FILTER_LANG = Param("filter-lang", "string", "Language of filter.", enum=ogc_query.FILTER_LANGS,
                    default="cql2-text")
FILTER_CRS = Param("filter-crs", "string", "CRS of the filter's geometries (default CRS84).", enum=CRS_ENUM)
SORTBY = Param("sortby", "string", "Sort keys: property names, '-' before one for descending (e.g. -capacity,name).",
               max_length=500)
PROPERTIES = Param("properties", "string", "Only these properties (comma-separated).", max_length=1000)
SKIP_GEOMETRY = Param("skipGeometry", "boolean", "true: features without geometry.", default=False)
ITEM_PARAMS = (F, BBOX, BBOX_CRS, CRS, LIMIT, OFFSET, DATETIME, FILTER, FILTER_LANG, FILTER_CRS, SORTBY,
               PROPERTIES, SKIP_GEOMETRY)
ONE_PARAMS = (F, CRS, PROPERTIES, SKIP_GEOMETRY)
#: Queryable property filters (equality). A collection's items take those of its source
#: (:func:`services.features.filter_names`); a test checks every one is declared here.
FILTERS: dict[str, Param] = {p.name: p for p in (
    DISTRICT,
    Param("kind", "string", "Facility kind (equality; facility layers).", max_length=100),
    Param("name", "string", "Name (equality; facility layers, village, roads).", max_length=200),
    Param("source_id", "string", "Source id (equality; facility layers).", max_length=100),
    Param("status", "string", "Only active facilities are published (facility layers).", enum=("active",)),
    Param("cell_id", "string", "Population cell id (population only).", max_length=100),
    Param("class", "string", "Cell class (population only).", enum=("urban", "rural")),
    Param("highway", "string", "Road class, e.g. primary, residential (roads only).", max_length=100),
)}

_ITEMS = {"200": {"description": "Features", "headers": {"Content-Crs": {"schema": {"type": "string"}}}, "content": {
    GEOJSON: {"schema": {"$ref": "#/components/schemas/FeatureCollection"}}, HTML: {"schema": {"type": "string"}}}},
    **errors(400, 404, 503)}
_ITEM = {"200": {"description": "The feature (ETag on facility layers)", "headers": {
    "Content-Crs": {"schema": {"type": "string"}}, "ETag": {"schema": {"type": "string"}}}, "content": {
    GEOJSON: {"schema": {"$ref": "#/components/schemas/Feature"}}, HTML: {"schema": {"type": "string"}}}},
    **errors(400, 404, 503)}


# ------------------------------------------------------------------ parsing the items query
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


def _shape(key: str, args: Args) -> FeatureShape:
    crs = ogc_crs.checked(args.crs, "crs")
    return FeatureShape(properties=ogc_query.parse_properties(key, args.properties), geometry=not args.skipGeometry,
                        crs=ogc_crs.output(crs), sort=ogc_query.parse_sortby(key, args.get("sortby")), strip_nulls=True)


def items_query(key: str) -> tuple[FeatureQuery, FeatureShape, Args]:
    """The items parameters of collection ``key``, checked: the query, how features are written, the values."""
    filters = {name: FILTERS[name] for name in features.filter_names(key)}
    args = ogc_args((*ITEM_PARAMS, *filters.values()))
    box = ogc_crs.bbox_to_crs84(args.bbox, ogc_crs.checked(args.bbox_crs, "bbox-crs")) if args.bbox else None
    lo, hi = _dates(args.datetime)
    tree = None
    if args.filter is not None:
        tree = ogc_query.parse_filter(args.filter, args.filter_lang)
        ogc_query.check_filter(key, tree)
    equals = {name: args[p.attr] for name, p in filters.items() if args[p.attr] is not None}
    query = FeatureQuery(bbox=box, date_from=lo, date_to=hi, equals=equals, filter=tree,
                         filter_crs=ogc_crs.output(ogc_crs.checked(args.filter_crs, "filter-crs")))
    return query, _shape(key, args), args


def _feature_id(key: str, raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"feature {raw[:40]!r} does not exist in {key[:40]}")
    return int(raw)


# ------------------------------------------------------------------ rendering
def _page_links(key: str, page: features.ItemsPage, args: Args) -> list[dict[str, str]]:
    """self/alternate, next/prev (same query, moved offset) and the collection."""
    limit, offset = args.limit, args.offset
    keep = {k: v for k, v in request.args.items() if k not in ("f", "offset", "limit")}
    links = self_links("ogc_items.items", GEOJSON, "This page", collectionId=key, limit=limit, offset=offset, **keep)
    extra, page_type = ({"f": "html"}, HTML) if wants_html() else ({}, GEOJSON)
    if offset + len(page.features) < page.matched:
        links.append(link(url("ogc_items.items", collectionId=key, limit=limit, offset=offset + limit, **extra, **keep),
                          "next", page_type, "Next page"))
    if offset > 0:
        links.append(link(url("ogc_items.items", collectionId=key, limit=limit, offset=max(0, offset - limit),
                              **extra, **keep), "prev", page_type, "Previous page"))
    links.append(link(url("ogc.collection", collectionId=key), "collection", JSON, "The collection"))
    return links


def _headers(response: Response, links: list[dict[str, str]], crs: str | None) -> Response:
    response.headers["Link"] = link_header(links)
    response.headers["Content-Crs"] = f"<{ogc_crs.checked(crs, 'crs')}>"
    return response


def items_response(key: str, page: features.ItemsPage, args: Args) -> ResponseReturnValue:
    links = _page_links(key, page, args)
    if wants_html():
        feats = [json.loads(f) for f in page.features]
        columns = list(dict.fromkeys(k for f in feats for k in f["properties"]))
        html = render_template("ogc_items.html", key=key, title=features.title(key, "zh"),
                               title_en=features.title(key, "en"), features=feats, columns=columns,
                               matched=page.matched, offset=args.offset, links=links, synthetic=page.synthetic)
        return _headers(Response(html, mimetype=HTML), links, args.crs)
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    head = {"type": "FeatureCollection", "numberMatched": page.matched, "numberReturned": len(page.features),
            "timeStamp": stamp, "links": links}
    text = json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [' + ",\n".join(page.features) + "]}"
    return _headers(json_response(text, GEOJSON), links, args.crs)


def item_response(key: str, fid: int, text: str, version: int | None, args: Args) -> ResponseReturnValue:
    feature: dict[str, Any] = json.loads(text)
    keep = {k: v for k, v in request.args.items() if k != "f"}
    links = self_links("ogc_items.item", GEOJSON, "This feature", collectionId=key, featureId=fid, **keep) + [
        link(url("ogc.collection", collectionId=key), "collection", JSON, "The collection")]
    feature["links"] = links
    if wants_html():
        response = Response(render_template(
            "ogc_item.html", key=key, title=features.title(key, "zh"), feature=feature, links=links,
            geometry=json.dumps(feature.get("geometry"), ensure_ascii=False)), mimetype=HTML)
    else:
        response = json_response(feature, GEOJSON)
    if version is not None:
        response.headers["ETag"] = etag(fid, version)
    return _headers(response, links, args.crs)


# ------------------------------------------------------------------ routes
@bp.get("/collections/<collectionId>/items")
@operation("Features of a collection", "ogc", (COLLECTION, *ITEM_PARAMS, *FILTERS.values()), responses=_ITEMS)
def items(collectionId: str) -> ResponseReturnValue:  # noqa: N803 - the standard's name
    features.source(collectionId)
    query, shape, args = items_query(collectionId)
    page = features.items(get_engine(), collectionId, query, limit=args.limit, offset=args.offset, shape=shape)
    return items_response(collectionId, page, args)


@bp.get("/collections/<collectionId>/items/<featureId>")
@operation("One feature", "ogc", (COLLECTION, FID, *ONE_PARAMS), responses=_ITEM)
def item(collectionId: str, featureId: str) -> ResponseReturnValue:  # noqa: N803 - the standard's names
    features.source(collectionId)
    fid = _feature_id(collectionId, featureId)
    args = ogc_args(ONE_PARAMS)
    text, version = features.item(get_engine(), collectionId, fid, _shape(collectionId, args))
    return item_response(collectionId, fid, text, version, args)
