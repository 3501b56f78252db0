"""OGC API – Features under ``/ogc``: landing page, conformance, API definition, collections, queryables, schemas.

The items (``web.ogc_items``), transactions (``web.ogc_edit``) and tile
metadata (``web.ogc_tiles``) are blueprints of their own under the same
prefix; this module holds what they share: content negotiation, links and
the conformance list. Every resource is JSON by default and HTML with
``f=html`` or when the client prefers ``text/html`` (a browser); ``f=json``
forces JSON. A query parameter a resource does not declare is a 400 naming
it (``/req/core/query-param-unknown``), and so is an empty one.

``/ogc/api`` is the OpenAPI 3.0 document of this API alone, its paths
relative to ``/ogc`` with ``{collectionId}`` as the standard names it, so
clients such as GDAL find the queryable parameters and push filters to the
server. The views parse, call one function of :mod:`services.features` or
:mod:`services.ogc_query`, and add the links.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from services import exporting, features, ogc_crs, ogc_query
from services.features import CollectionInfo
from web.database import get_engine
from web.openapi import openapi_document
from web.params import Args, Param, operation, parse
from web.responses import body, errors

bp = Blueprint("ogc", __name__, url_prefix="/ogc")

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
SCHEMA_JSON = "application/schema+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
MVT = "application/vnd.mapbox-vector-tile"
TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
REL_TILESETS = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
REL_CONFORMANCE = "http://www.opengis.net/def/rel/ogc/1.0/conformance"
REL_DATA = "http://www.opengis.net/def/rel/ogc/1.0/data"
_FEATURES = "http://www.opengis.net/spec/ogcapi-features-"
_TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"
_CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"
#: What this API implements, each class exercised by a test.
CONFORMANCE = [
    f"{_FEATURES}1/1.0/conf/core", f"{_FEATURES}1/1.0/conf/geojson", f"{_FEATURES}1/1.0/conf/html",
    f"{_FEATURES}1/1.0/conf/oas30",
    f"{_FEATURES}2/1.0/conf/crs",
    f"{_FEATURES}3/1.0/conf/queryables", f"{_FEATURES}3/1.0/conf/queryables-query-parameters",
    f"{_FEATURES}3/1.0/conf/filter", f"{_FEATURES}3/1.0/conf/features-filter",
    f"{_CQL2}cql2-text", f"{_CQL2}cql2-json", f"{_CQL2}basic-cql2", f"{_CQL2}advanced-comparison-operators",
    f"{_CQL2}case-insensitive-comparison", f"{_CQL2}basic-spatial-functions", f"{_CQL2}spatial-functions",
    f"{_FEATURES}4/1.0/conf/create-replace-delete", f"{_FEATURES}4/1.0/conf/update",
    f"{_FEATURES}4/1.0/conf/features",
    f"{_TILES}core", f"{_TILES}tileset", f"{_TILES}tilesets-list", f"{_TILES}geodata-tilesets", f"{_TILES}mvt",
]

# ------------------------------------------------------------------ parameters
F = Param("f", "string", "Response format (default: by Accept).", enum=("json", "html"))
F_JSON = Param("f", "string", "Response format: JSON only.", enum=("json",))
COLLECTION = Param("collectionId", "string", "Collection id: a facility layer, population, village or roads.",
                   enum=features.collection_keys, location="path")

_HTML_OR_JSON = {"200": {"description": "OK", "content": {JSON: {"schema": {"type": "object"}},
                                                           HTML: {"schema": {"type": "string"}}}}}


def ogc_args(declared: Iterable[Param]) -> Args:
    """The declared query parameters, checked; any other is a 400 naming it (OGC Core)."""
    return parse(declared, unknown="refuse")


# ------------------------------------------------------------------ negotiation and links
def wants_html() -> bool:
    """``f=html|json`` decides; otherwise HTML only when the client prefers ``text/html``."""
    f = F.read()
    if f:
        return bool(f == "html")
    best = request.accept_mimetypes.best_match([GEOJSON, JSON, HTML])
    return best == HTML and request.accept_mimetypes[HTML] > request.accept_mimetypes[JSON]


def json_response(doc: Any, mimetype: str = JSON) -> Response:
    text = doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False, default=str)
    return Response(text, mimetype=mimetype)


def url(endpoint: str, **values: Any) -> str:
    return url_for(endpoint, _external=True, **values)


def link(href: str, rel: str, type_: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": type_, "title": title}


def self_links(endpoint: str, json_type: str, title: str, **values: Any) -> list[dict[str, str]]:
    """``self`` and ``alternate``: the JSON one without ``f`` (what clients build on), the HTML one with ``f=html``."""
    html = wants_html()
    as_json = link(url(endpoint, **values), "self" if not html else "alternate", json_type,
                   title + ("" if not html else " (JSON)"))
    as_html = link(url(endpoint, f="html", **values), "self" if html else "alternate", HTML,
                   title + (" (HTML)" if not html else ""))
    return [as_html, as_json] if html else [as_json, as_html]


def link_header(links: Iterable[dict[str, str]], rels: Iterable[str] = ("self", "alternate", "next", "prev",
                                                                       "collection")) -> str:
    """An HTTP ``Link`` header (RFC 8288) of the links with these relations (``/rec/core/link-header``)."""
    wanted = set(rels)
    return ", ".join(f'<{lk["href"]}>; rel="{lk["rel"]}"; type="{lk["type"]}"' for lk in links if lk["rel"] in wanted)


def page(template: str, doc: dict[str, Any], **context: Any) -> ResponseReturnValue:
    """An HTML page of ``doc``; every link of the document is an ``<a>`` in its body (``/req/html/content``)."""
    response = Response(render_template(template, doc=doc, **context), mimetype=HTML)
    response.headers["Link"] = link_header(doc.get("links", []))
    return response


# ------------------------------------------------------------------ documents
def landing_doc() -> dict[str, Any]:
    return {
        "title": "Minsheng Map 民生设施地图 – OGC API Features",
        "description": "Public service facilities of Zaozhuang (枣庄市), villages, roads and a population grid. "
                       "The demo city's facilities, villages, roads and grid are SYNTHETIC (合成数据).",
        "links": self_links("ogc.landing", JSON, "This document") + [
            link(url("ogc.api_definition"), "service-desc", OPENAPI, "The API definition (OpenAPI 3.0)"),
            link(url("ogc.api_definition", f="html"), "service-doc", HTML, "The API documentation"),
            link(url("ogc.conformance"), "conformance", JSON, "Conformance classes"),
            link(url("ogc.conformance"), REL_CONFORMANCE, JSON, "Conformance classes"),
            link(url("ogc.collections"), "data", JSON, "Collections"),
            link(url("ogc.collections"), REL_DATA, JSON, "Collections"),
            link(url("ogc_tiles.matrix_sets"), "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes", JSON,
                 "Tile matrix sets"),
        ],
    }


def _interval_end(value: Any) -> str | None:
    """A date as an RFC 3339 date-time (``extent.yaml``: temporal intervals are date-times)."""
    return None if value is None else f"{value.isoformat()}T00:00:00Z"


def collection_doc(info: CollectionInfo) -> dict[str, Any]:
    """The OGC collection document of one collection (extent in CRS84 degrees, CRSs, links)."""
    key = info.key
    doc: dict[str, Any] = {
        "id": key,
        "title": f"{info.title_zh} {info.title_en}",
        "description": info.description,
        "itemType": "feature",
        "crs": list(ogc_crs.CRS_URIS),
        "storageCrs": ogc_crs.STORAGE_CRS,
        "synthetic": info.synthetic,
        "extent": {"spatial": {"bbox": [info.bbox or [-180, -90, 180, 90]], "crs": ogc_crs.CRS84}},
        "links": [
            *self_links("ogc.collection", JSON, "This collection", collectionId=key),
            link(url("ogc_items.items", collectionId=key), "items", GEOJSON, "Features (GeoJSON)"),
            link(url("ogc_items.items", collectionId=key, f="html"), "items", HTML, "Features (HTML)"),
            link(url("ogc.queryables", collectionId=key), REL_QUERYABLES, SCHEMA_JSON, "Queryables"),
            link(url("ogc.schema", collectionId=key), "describedby", SCHEMA_JSON, "Schema of a feature"),
            link(url("ogc.schema", collectionId=key), "describedBy", SCHEMA_JSON, "Schema of a feature"),
            link(url("ogc_tiles.tilesets", collectionId=key), REL_TILESETS, JSON, "Vector tiles"),
            *(link(url("downloads.export", layer=key, fmt=fmt.key), "enclosure", fmt.media_type.split(";")[0],
                   f"Download all ({fmt.key})") for fmt in exporting.FORMATS.values()),
        ],
    }
    if info.date_min:
        interval = [_interval_end(info.date_min), _interval_end(info.date_max)]
        doc["extent"]["temporal"] = {"interval": [interval], "trs": TRS}
    return doc


def with_collection_paths(doc: dict[str, Any]) -> dict[str, Any]:
    """The API document with ``/collections/<key>/items`` spelt out for every collection, each with only
    the queryable parameters that collection takes (QGIS reads its filters from these paths; GDAL from
    them or from the generic ``{collectionId}`` one), every query parameter ``style: form, explode: false``
    (what QGIS looks for)."""
    for operations in doc["paths"].values():
        for op in operations.values():
            for param in op.get("parameters", []):
                if param.get("in") == "query":
                    param.setdefault("style", "form")
                    param.setdefault("explode", False)
    generic = doc["paths"].get("/collections/{collectionId}/items", {}).get("get")
    if generic is None:
        return doc
    every_filter = {name for key in features.collection_keys() for name in features.filter_names(key)}
    for key in features.collection_keys():
        foreign = every_filter - set(features.filter_names(key))
        params = [p for p in generic["parameters"] if p["name"] not in foreign and p["name"] != COLLECTION.name]
        doc["paths"][f"/collections/{key}/items"] = {"get": {**generic, "parameters": params,
                                                             "summary": f"Features of {key}"}}
    return doc


# ------------------------------------------------------------------ routes
@bp.get("/")
@bp.get("")
@operation("OGC API – Features landing page", "ogc", (F,), responses={**_HTML_OR_JSON, **errors(400)})
def landing() -> ResponseReturnValue:
    ogc_args((F,))
    doc = landing_doc()
    return page("ogc_landing.html", doc) if wants_html() else json_response(doc)


@bp.get("/conformance")
@operation("Conformance classes", "ogc", (F,), responses={**_HTML_OR_JSON, **errors(400)})
def conformance() -> ResponseReturnValue:
    ogc_args((F,))
    doc = {"conformsTo": CONFORMANCE}
    if wants_html():
        return page("ogc_landing.html", {"title": "Conformance", "conformance": CONFORMANCE,
                                         "links": self_links("ogc.conformance", JSON, "Conformance classes")})
    return json_response(doc)


@bp.get("/api")
@operation("This API definition (OpenAPI 3.0, paths relative to /ogc); HTML redirects to /api/docs", "ogc", (F,),
           responses={"200": body("OpenAPI", OPENAPI), "302": {"description": "To /api/docs"}, **errors(400)})
def api_definition() -> ResponseReturnValue:
    ogc_args((F,))
    if wants_html():
        return redirect(url_for("openapi.docs"))
    return json_response(with_collection_paths(openapi_document(prefix=bp.url_prefix or "")), OPENAPI)


@bp.get("/collections")
@operation("The collections", "ogc", (F,), responses={**_HTML_OR_JSON, **errors(400, 503)})
def collections() -> ResponseReturnValue:
    ogc_args((F,))
    docs = [collection_doc(info) for info in features.collections(get_engine())]
    doc = {"links": self_links("ogc.collections", JSON, "Collections"), "collections": docs}
    return page("ogc_collections.html", doc) if wants_html() else json_response(doc)


@bp.get("/collections/<collectionId>")
@operation("One collection", "ogc", (COLLECTION, F), responses={**_HTML_OR_JSON, **errors(400, 404, 503)})
def collection(collectionId: str) -> ResponseReturnValue:  # noqa: N803 - the standard's name
    ogc_args((F,))
    doc = collection_doc(features.collection(get_engine(), collectionId))
    return page("ogc_collection.html", doc) if wants_html() else json_response(doc)


@bp.get("/collections/<collectionId>/queryables")
@operation("The collection's queryables (JSON Schema; OGC API – Features Part 3)", "ogc", (COLLECTION, F_JSON),
           responses={"200": body("Queryables", SCHEMA_JSON), **errors(400, 404)})
def queryables(collectionId: str) -> ResponseReturnValue:  # noqa: N803 - the standard's name
    ogc_args((F_JSON,))
    doc = {**ogc_query.queryables(collectionId), "$id": url("ogc.queryables", collectionId=collectionId)}
    return json_response(doc, SCHEMA_JSON)


@bp.get("/collections/<collectionId>/schema")
@operation("The JSON Schema of one feature of the collection (typed properties)", "ogc", (COLLECTION, F_JSON),
           responses={"200": body("Schema", SCHEMA_JSON), **errors(400, 404)})
def schema(collectionId: str) -> ResponseReturnValue:  # noqa: N803 - the standard's name
    ogc_args((F_JSON,))
    doc = {**ogc_query.feature_schema(collectionId), "$id": url("ogc.schema", collectionId=collectionId)}
    return json_response(doc, SCHEMA_JSON)
