"""The OpenAPI 3.0 document of the whole JSON API (``/openapi.json``) and its page (``/api/docs``).

Each operation is generated from its view's declaration
(:func:`web.params.operation`: the same :class:`~web.params.Param` objects the
view parses with), so the bounds a client reads (minimum/maximum, enum,
maxLength) are the bounds the view enforces, and a client generator or a
fuzzer stays within what the API accepts. The page is Swagger UI served from
the app's own npm assets (``/vendor/swagger-ui-dist/...``) with its start-up
script as a static file: nothing is loaded from outside.

Routes that exist in the app but carry no declaration still appear, marked
``x-described: false``; a test keeps that list empty.

``openapi_document(prefix="/ogc")`` is the same document cut to one API
(the OGC API – Features service description): only the routes under the
prefix, with paths relative to it and the prefix as the server URL, as OGC
clients (GDAL, QGIS) expect ``/collections/{collectionId}/items``.
"""
from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from web.params import operation
from web.responses import body as _resp

bp = Blueprint("openapi", __name__)

#: Path prefixes of the JSON API (every Flask route under them is documented).
API_PREFIXES = ("/api", "/export", "/ogc", "/tiles", "/healthz", "/openapi.json")
METHODS = ("get", "post", "put", "patch", "delete")
TAGS = ("core", "residents", "planners", "admin", "export", "ogc", "tiles")


# ------------------------------------------------------------------ building blocks
def _q(name: str, schema: dict, description: str, *, required: bool = False, where: str = "query",
       **extra: Any) -> dict:
    return {"name": name, "in": where, "required": required or where == "path", "description": description,
            "schema": schema, **extra}


def _components() -> dict:
    return {
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
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    }


# ------------------------------------------------------------------ the paths
def flask_routes(app: Flask) -> list[tuple[str, str]]:
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


def openapi_document(prefix: str = "") -> dict:
    """The OpenAPI 3.0 document: each route's operation from its view's declaration.

    A route without a declaration is listed with ``x-described: false`` (a
    test keeps that list empty). Parameter enums given as callables (e.g. the collection
    keys, read from the layer registry) are evaluated now. With ``prefix``
    (e.g. ``/ogc``), only the routes under it, their paths relative to it,
    and the server URL ending in it.
    """
    paths: dict[str, dict] = {}
    for rule in current_app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIXES):
            continue
        if prefix and not (rule.rule == prefix or rule.rule.startswith(prefix + "/")):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        if prefix:
            path = path[len(prefix):] or "/"
        view = current_app.view_functions[rule.endpoint]
        for method in sorted(m.lower() for m in (rule.methods or ()) if m.lower() in METHODS):
            op = declared_operation(view, path)
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
        "servers": [{"url": request.url_root.rstrip("/") + prefix if prefix else "/"}],
        "tags": [{"name": t} for t in TAGS if not prefix or t in ("ogc", "tiles")],
        "paths": dict(sorted(paths.items())),
        "components": _components(),
    }


@bp.get("/openapi.json")
@operation("This document", "core", responses={"200": _resp("OpenAPI 3.0")})
def openapi_json() -> ResponseReturnValue:
    return jsonify(openapi_document())


@bp.get("/api/docs")
@operation("This document as a readable page", "core", responses={
    "200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}})
def docs() -> ResponseReturnValue:
    return render_template("apidocs.html")
