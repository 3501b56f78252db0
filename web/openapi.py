"""The OpenAPI 3.0 document of the whole JSON API (``/openapi.json``) and its page (``/api/docs``).

Each route is described here with parameter schemas that carry their bounds
(minimum/maximum, enum, maxLength), so a client generator or a fuzzer stays
within what the API accepts. The page is Swagger UI served from the app's own
npm assets (``/vendor/swagger-ui-dist/...``) with its start-up script as a
static file: nothing is loaded from outside.

Routes that exist in the app but are not described here still appear, marked
``x-described: false``; a test keeps that list empty.
"""
from __future__ import annotations

import importlib
import re
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template

from db.export import COLLECTION_KEYS
from etl.export import FORMATS
from layers import LAYER_KEYS
from layers.districts import DISTRICT_CODES, DISTRICTS

bp = Blueprint("openapi", __name__)

#: Path prefixes of the JSON API (every Flask route under them is documented).
API_PREFIXES = ("/api", "/export", "/ogc", "/tiles", "/healthz", "/openapi.json")
METHODS = ("get", "post", "put", "patch", "delete")


def _const(module: str, name: str, default: Any) -> Any:
    """A limit defined by another area's module, or the specified default if it is not there."""
    try:
        return getattr(importlib.import_module(module), name, default)
    except Exception:  # noqa: BLE001 - a missing or broken module must not break the document
        return default


# ------------------------------------------------------------------ building blocks
def _q(name: str, schema: dict, description: str, *, required: bool = False, where: str = "query",
       **extra: Any) -> dict:
    return {"name": name, "in": where, "required": required or where == "path", "description": description,
            "schema": schema, **extra}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/parameters/{name}"}


def _resp(description: str, media: str = "application/json", schema: dict | None = None) -> dict:
    return {"description": description, "content": {media: {"schema": schema or {"type": "object"}}}}


def _errors(*codes: int) -> dict:
    text = {400: "A parameter is invalid; the body names it and what is allowed.", 401: "No or bad bearer token.",
            403: "The token's role may not do this.", 404: "Not found.", 409: "Conflict.",
            412: "If-Match did not match the current ETag.", 428: "If-Match is required.",
            503: "The database is unavailable; retry later."}
    return {str(c): {"description": text[c], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for c in codes}


def _op(summary: str, tag: str, parameters: list[dict], responses: dict, **extra: Any) -> dict:
    return {"summary": summary, "tags": [tag], "parameters": parameters, "responses": responses, **extra}


def _components() -> dict:
    search_max = _const("web.nearest_api", "MAX_QUERY_CHARS", 100)
    return {
        "parameters": {
            "layerOrAll": _q("layer", {"type": "string", "enum": list(LAYER_KEYS) + ["all"], "default": "all"},
                             "Facility layer key, or all layers."),
            "district": _q("district", {"type": "string", "enum": list(DISTRICT_CODES)},
                           "District adcode: " + ", ".join(f"{c} {n[0]} {n[1]}" for c, n in DISTRICTS.items())),
            "bbox": _q("bbox", {"type": "array", "minItems": 4, "maxItems": 4,
                                "items": {"type": "number", "minimum": -180, "maximum": 180}},
                       "minlon,minlat,maxlon,maxlat in degrees (WGS-84); each side at most 8 degrees.",
                       style="form", explode=False),
            "f": _q("f", {"type": "string", "enum": ["json", "html"]}, "Response format (default: by Accept)."),
            "collection": _q("layer", {"type": "string", "enum": list(COLLECTION_KEYS)},
                             "Collection id: a facility layer or population.", where="path"),
            "facilityId": _q("raw_id", {"type": "integer", "minimum": 1}, "Facility id.", where="path"),
            "searchQ": _q("q", {"type": "string", "minLength": 1, "maxLength": search_max},
                          "Text to find in names and addresses.", required=True),
        },
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["status", "message"],
                "properties": {"status": {"type": "integer"}, "message": {"type": "string"},
                               "parameter": {"type": "string"}, "allowed": {}}}}},
            "FeatureCollection": {"type": "object", "required": ["type", "features"], "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "features": {"type": "array", "items": {"$ref": "#/components/schemas/Feature"}},
                "numberMatched": {"type": "integer"}, "numberReturned": {"type": "integer"},
                "links": {"type": "array", "items": {"$ref": "#/components/schemas/Link"}}}},
            "Feature": {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
                "type": {"type": "string", "enum": ["Feature"]}, "id": {"type": "integer"},
                "geometry": {"type": "object"}, "properties": {"type": "object"}}},
            "Link": {"type": "object", "required": ["href", "rel"], "properties": {
                "href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
                "title": {"type": "string"}}},
            "FacilityEdit": {"type": "object", "properties": {
                "name": {"type": "string", "maxLength": 200}, "address": {"type": "string", "maxLength": 200},
                "phone": {"type": "string", "maxLength": 200}, "opening_hours": {"type": "string", "maxLength": 200},
                "kind": {"type": "string"}, "capacity": {"type": "integer", "minimum": 0, "maximum": 1000000},
                "opened_on": {"type": "string", "format": "date"},
                "lon": {"type": "number", "minimum": -180, "maximum": 180},
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "crs": {"type": "string", "enum": ["wgs84", "gcj02", "bd09"]},
                "geometry": {"type": "object", "description": "GeoJSON geometry (WGS-84 unless crs says otherwise)"}}},
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    }


# ------------------------------------------------------------------ the paths
def _core_paths() -> dict:
    ok = _resp("OK")
    return {
        "/healthz": {"get": _op("Health of the app and its database", "core", [],
                                {"200": ok, **_errors(503)})},
        "/api/layers": {"get": _op("The facility layers: names, standards with sources, counts", "core", [],
                                   {"200": ok, **_errors(503)})},
        "/api/districts": {"get": _op("The six districts with 2020 census population", "core", [],
                                      {"200": ok, **_errors(503)})},
        "/api/nearest": {"get": _op("Nearest facilities to a position (geodesic metres)", "residents", [
            _q("lon", {"type": "number", "minimum": -180, "maximum": 180}, "Longitude (degrees).", required=True),
            _q("lat", {"type": "number", "minimum": -90, "maximum": 90}, "Latitude (degrees).", required=True),
            _ref("layerOrAll"),
            _q("k", {"type": "integer", "minimum": 1, "maximum": _const("web.nearest_api", "MAX_K", 50),
                     "default": 5}, "How many facilities."),
            _q("crs", {"type": "string", "enum": ["wgs84", "gcj02", "bd09"], "default": "wgs84"},
               "CRS of lon/lat (GCJ-02: AMap/Tencent; BD-09: Baidu)."),
        ], {"200": _resp("Nearest facilities", "application/geo+json"), **_errors(400, 503)})},
        "/api/search": {"get": _op("Find facilities by name or address", "residents", [
            _ref("searchQ"),
            _q("layer", {"type": "string", "enum": list(LAYER_KEYS)}, "Limit to one layer."),
            _q("limit", {"type": "integer", "minimum": 1,
                         "maximum": _const("web.nearest_api", "MAX_SEARCH_LIMIT", 50), "default": 10},
               "Most results."),
        ], {"200": ok, **_errors(400, 503)})},
    }


def _admin_paths() -> dict:
    sec = [{"bearer": []}]
    etag = {"ETag": {"schema": {"type": "string"}, "description": "Send back in If-Match to change it."}}
    if_match = _q("If-Match", {"type": "string"}, "The ETag read before this change.", where="header",
                  required=True)
    body = {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FacilityEdit"}}}}
    create = {"required": True, "content": {"application/json": {"schema": {"allOf": [
        {"$ref": "#/components/schemas/FacilityEdit"},
        {"type": "object", "required": ["layer", "source_id", "name"], "properties": {
            "layer": {"type": "string", "enum": list(LAYER_KEYS)},
            "source_id": {"type": "string", "maxLength": 100}}}]}}}}
    one = {"200": {"description": "The facility", "headers": etag,
                   "content": {"application/json": {"schema": {"type": "object"}}}}}
    return {
        "/api/admin/facilities": {"post": _op("Create a facility", "admin", [], {
            "201": {"description": "Created", "headers": etag,
                    "content": {"application/json": {"schema": {"type": "object"}}}},
            **_errors(400, 401, 403, 409, 503)}, requestBody=create, security=sec)},
        "/api/admin/facilities/{raw_id}": {
            "get": _op("Read a facility with its ETag", "admin", [_ref("facilityId")], {
                **one, **_errors(401, 403, 404, 503)}, security=sec),
            "patch": _op("Change a facility (If-Match required)", "admin", [_ref("facilityId"), if_match], {
                **one, **_errors(400, 401, 403, 404, 412, 428, 503)}, requestBody=body, security=sec)},
        "/api/admin/facilities/{raw_id}/retire": {"post": _op(
            "Retire a facility (If-Match required)", "admin", [_ref("facilityId"), if_match], {
                **one, **_errors(400, 401, 403, 404, 412, 428, 503)}, security=sec, requestBody={
                "required": False, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"reason": {"type": "string", "maxLength": 200}}}}}})},
        "/api/facilities/{raw_id}/history": {"get": _op("A facility's change history", "admin",
                                                        [_ref("facilityId")], {"200": _resp("History"),
                                                                               **_errors(404, 503)})},
    }


def _export_paths() -> dict:
    fmt_media = {"geojson": {"schema": {"$ref": "#/components/schemas/FeatureCollection"}}}
    return {
        "/export/{layer}.{fmt}": {"get": _op(
            "Download a layer (GeoJSON streamed, GeoPackage, zipped Shapefile, CSV with BOM, XLSX)", "export", [
                _q("layer", {"type": "string", "enum": list(COLLECTION_KEYS)}, "Layer key or population.",
                   where="path"),
                _q("fmt", {"type": "string", "enum": list(FORMATS)}, "File format.", where="path"),
                _ref("district"), _ref("bbox"),
                _q("updated_since", {"type": "string", "format": "date-time"},
                   "Facilities changed at or after this time (ISO 8601)."),
                _q("crs", {"type": "string", "enum": ["wgs84", "gcj02"], "default": "wgs84"},
                   "gcj02: non-standard GeoJSON for AMap front ends (geojson only)."),
            ], {"200": {"description": "The file (Content-Disposition names the layer and date)",
                        "content": {FORMATS["geojson"]: fmt_media["geojson"],
                                    **{FORMATS[f]: {"schema": {"type": "string", "format": "binary"}}
                                       for f in ("gpkg", "shp", "xlsx")},
                                    "text/csv": {"schema": {"type": "string"}}}}, **_errors(400, 503)})},
        "/tiles/{layer}/{z}/{x}/{y}.mvt": {"get": _op("A Mapbox Vector Tile (Web Mercator XYZ)", "tiles", [
            _q("layer", {"type": "string", "enum": list(COLLECTION_KEYS)}, "Layer key or population.", where="path"),
            _q("z", {"type": "integer", "minimum": 0, "maximum": 22}, "Zoom.", where="path"),
            _q("x", {"type": "integer", "minimum": 0, "maximum": 4194303}, "Column (0 to 2^z − 1).", where="path"),
            _q("y", {"type": "integer", "minimum": 0, "maximum": 4194303}, "Row (0 to 2^z − 1).", where="path"),
        ], {"200": {"description": "The tile (may be empty)", "headers": {"Cache-Control": {"schema": {
            "type": "string"}}}, "content": {"application/vnd.mapbox-vector-tile": {"schema": {
                "type": "string", "format": "binary"}}}}, "304": {"description": "Not modified"},
            **_errors(400, 503)})},
        "/openapi.json": {"get": _op("This document", "core", [], {"200": _resp("OpenAPI 3.0")})},
        "/api/docs": {"get": _op("This document as a readable page", "core", [], {
            "200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}})},
    }


def _ogc_paths() -> dict:
    html_or_json = {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}},
                                                            "text/html": {"schema": {"type": "string"}}}}}
    items_resp = {"200": {"description": "Features", "content": {
        "application/geo+json": {"schema": {"$ref": "#/components/schemas/FeatureCollection"}},
        "text/html": {"schema": {"type": "string"}}}}, **_errors(400, 404, 503)}
    landing = _op("OGC API – Features landing page", "ogc", [_ref("f")], {**html_or_json, **_errors(400)})
    return {
        "/ogc": {"get": landing},
        "/ogc/": {"get": landing},
        "/ogc/conformance": {"get": _op("Conformance classes", "ogc", [_ref("f")], {**html_or_json, **_errors(400)})},
        "/ogc/api": {"get": _op("This API definition (OpenAPI 3.0); HTML redirects to /api/docs", "ogc", [_ref("f")],
                                {"200": _resp("OpenAPI", "application/vnd.oai.openapi+json;version=3.0"),
                                 "302": {"description": "To /api/docs"}, **_errors(400)})},
        "/ogc/collections": {"get": _op("The collections", "ogc", [_ref("f")], {**html_or_json, **_errors(400, 503)})},
        "/ogc/collections/{layer}": {"get": _op("One collection", "ogc", [_ref("collection"), _ref("f")], {
            **html_or_json, **_errors(400, 404, 503)})},
        "/ogc/collections/{layer}/items": {"get": _op("Features of a collection", "ogc", [
            _ref("collection"), _ref("f"), _ref("bbox"),
            _q("limit", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}, "Page size."),
            _q("offset", {"type": "integer", "minimum": 0, "maximum": 100000000, "default": 0},
               "Features to skip (next links set it)."),
            _q("datetime", {"type": "string", "maxLength": 100},
               "Opened date: an instant (2022-06-30) or interval (2022-01-01/2022-06-30, ../2022-06-30)."),
            _ref("district"),
            _q("kind", {"type": "string", "maxLength": 100}, "Facility kind (equality)."),
            _q("name", {"type": "string", "maxLength": 100}, "Facility name (equality)."),
            _q("source_id", {"type": "string", "maxLength": 100}, "Source id (equality)."),
            _q("status", {"type": "string", "enum": ["active"]}, "Only active facilities are published."),
            _q("cell_id", {"type": "string", "maxLength": 100}, "Population cell id (population only)."),
            _q("class", {"type": "string", "enum": ["urban", "rural"]}, "Cell class (population only)."),
        ], items_resp)},
        "/ogc/collections/{layer}/items/{fid}": {"get": _op("One feature", "ogc", [
            _ref("collection"), _q("fid", {"type": "integer", "minimum": 1}, "Feature id.", where="path"),
            _ref("f")], {"200": {"description": "The feature", "content": {
                "application/geo+json": {"schema": {"$ref": "#/components/schemas/Feature"}},
                "text/html": {"schema": {"type": "string"}}}}, **_errors(400, 404, 503)})},
    }


def flask_routes(app) -> list[tuple[str, str]]:
    """(OpenAPI path, method) of every API route in ``app.url_map``."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIXES):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted(rule.methods or ()):
            if method.lower() in METHODS:
                out.append((path, method.lower()))
    return out


def declared_operation(view: Any, path: str) -> dict | None:
    """The OpenAPI operation built from a view's declaration (:func:`web.params.operation`)."""
    op = getattr(view, "openapi", None)
    if op is None:
        return None
    doc: dict[str, Any] = {"summary": op.summary, "tags": [op.tag],
                           "parameters": [p.openapi() for p in op.params],
                           "responses": dict(op.responses) or {"200": _resp("OK")}, **op.extra}
    declared = {p.name for p in op.params if p.location == "path"}
    doc["parameters"] += [_q(n, {"type": "string"}, n, where="path") for n in re.findall(r"{(\w+)}", path)
                          if n not in declared]
    if op.request_body is not None:
        doc["requestBody"] = dict(op.request_body)
    if op.security:
        doc["security"] = [{"bearer": []}]
    return doc


def openapi_document() -> dict:
    """The OpenAPI 3.0 document: each route's operation from its view's declaration.

    Views not yet declared fall back to the hand-written entries above, and a
    route with neither is listed with ``x-described: false`` (a test keeps
    that list empty).
    """
    legacy: dict[str, dict] = {}
    for part in (_core_paths(), _admin_paths(), _export_paths(), _ogc_paths()):
        legacy.update(part)
    paths: dict[str, dict] = {}
    for rule in current_app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIXES):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        view = current_app.view_functions[rule.endpoint]
        for method in sorted(m.lower() for m in (rule.methods or ()) if m.lower() in METHODS):
            op = declared_operation(view, path) or legacy.get(path, {}).get(method)
            if op is None:
                op = {"summary": "Not yet described", "x-described": False,
                      "parameters": [_q(n, {"type": "string"}, n, where="path") for n in re.findall(r"{(\w+)}", path)],
                      "responses": {"default": {"description": "See the code"}}}
            paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "Minsheng Map 民生设施地图 API", "version": "1.0",
                 "description": "Public service facilities of Zaozhuang. The demo city's facilities and "
                                "population grid are SYNTHETIC. Coordinates are WGS-84 unless a crs parameter "
                                "says otherwise; distances are metres."},
        "servers": [{"url": "/"}],
        "tags": [{"name": t} for t in ("core", "residents", "planners", "admin", "export", "ogc", "tiles")],
        "paths": dict(sorted(paths.items())),
        "components": _components(),
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document())


@bp.get("/api/docs")
def docs():
    return render_template("apidocs.html")
