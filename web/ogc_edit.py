"""OGC API – Features Part 4: create (POST), replace (PUT), update (PATCH) and delete (DELETE) facility features.

The same bearer tokens, roles, ETag/If-Match rule and validation as the admin
API (:mod:`web.admin`): an ``editor`` token is required; a change to an
existing feature needs ``If-Match`` with the ETag the client read (428
without it, 412 when someone changed it since); the body's properties are
read by the admin API's own field declarations; the change runs through
:mod:`services.editing` (via :mod:`services.ogc_edit`), which writes the
audit history. Bodies are GeoJSON Features (PATCH: a partial one, JSON merge
patch), geometry in CRS84 unless ``Content-Crs`` names another CRS of the API.
The grid, villages and roads are read-only: 405 with ``Allow``.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import shapely
from flask import Blueprint, Response, g, request
from flask.typing import ResponseReturnValue
from shapely.geometry.base import BaseGeometry
from werkzeug.exceptions import MethodNotAllowed

from services import features, ogc_crs, ogc_edit
from services.editing import etag
from services.features import FeatureShape
from web.admin import CREATE_FIELDS, EDIT_FIELDS, IF_MATCH, MAX_BODY
from web.auth import require
from web.database import get_engine
from web.errors import BadParameter, NotFound, PreconditionRequired
from web.ogc import COLLECTION, GEOJSON, json_response, url
from web.ogc_items import FID
from web.params import Param, operation
from web.responses import errors

bp = Blueprint("ogc_edit", __name__, url_prefix="/ogc")

CONTENT_CRS = Param("Content-Crs", "string", "CRS of the body's geometry, in angle brackets (default CRS84).",
                    location="header", max_length=200)
#: Properties of a feature the server sets itself: sent back by clients (QGIS sends every field), ignored.
SERVER_SET = ("layer", "status", "district", "district_name", "synthetic", "updated_at", "source_id")
_FEATURE_SCHEMA = {"type": "object", "required": ["type"], "properties": {
    "type": {"type": "string", "enum": ["Feature"]},
    "geometry": {"type": "object", "description": "Point (point layers) or Polygon/MultiPolygon (parks)"},
    "properties": {"type": "object", "properties": {n: EDIT_FIELDS[n].schema for n in ogc_edit.EDITABLE}}}}
_BODY = {"required": True, "content": {GEOJSON: {"schema": _FEATURE_SCHEMA},
                                       "application/json": {"schema": _FEATURE_SCHEMA}}}
_PATCH_BODY = {"required": True, "content": {"application/merge-patch+json": {"schema": _FEATURE_SCHEMA},
                                             "application/json": {"schema": _FEATURE_SCHEMA}}}
_CHANGED = {"200": {"description": "The feature as it is now", "headers": {"ETag": {"schema": {"type": "string"}}},
                    "content": {GEOJSON: {"schema": {"$ref": "#/components/schemas/Feature"}}}}}
_READ_ONLY_METHODS = ["GET", "HEAD", "OPTIONS"]
GEOMETRY_TYPES = ("Point", "Polygon", "MultiPolygon")


def _editable(key: str) -> None:
    if not features.source(key).editable:
        raise MethodNotAllowed(valid_methods=_READ_ONLY_METHODS,
                               description=f"{key} is read-only; the facility layers take POST, PUT, PATCH, DELETE")


#: An ETag as this app sends it: ``"<id>-<version>"``, with the content coding Flask-Compress appends to a
#: compressed response's strong ETag (``"12-3:gzip"``): clients send back what they received.
_ETAG = re.compile(r'(?:W/)?"(\d{1,18})-(\d{1,9})(?::[a-z0-9-]{1,16})?"')


def expected_version(fid: int) -> int | None:
    """The version ``If-Match`` names for feature ``fid``; None when it names only other resources.

    The admin API's rule (428 without If-Match or with ``*``), reading ETags as
    they arrive from a client that took a compressed response.
    """
    header = request.headers.get("If-Match", "").strip()
    if not header or header == "*":
        raise PreconditionRequired(f"If-Match is required: send the ETag you read, e.g. If-Match: {etag(fid, 1)} "
                                   f"(GET the feature first; * would overwrite any version)")
    for tag in (t.strip() for t in header.split(",")):
        match = _ETAG.fullmatch(tag)
        if match and int(match.group(1)) == fid:
            return int(match.group(2))
    return None


def _feature_id(key: str, raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"feature {raw[:40]!r} does not exist in {key[:40]}")
    return int(raw)


def _body() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY:
        raise BadParameter(f"the body is larger than {MAX_BODY} bytes", parameter="body",
                           allowed={"max_bytes": MAX_BODY})
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("type", "Feature") != "Feature":
        raise BadParameter('the body must be a GeoJSON Feature: {"type": "Feature", "geometry": ..., '
                           '"properties": {...}}', parameter="body")
    return data


def _content_crs() -> str:
    header = request.headers.get("Content-Crs")
    return ogc_crs.checked(header.strip().strip("<>") if header else None, "Content-Crs")


def _geometry(value: Any) -> BaseGeometry:
    """A GeoJSON Point, Polygon or MultiPolygon in the body's CRS (the ETL checks where it lies once in WGS-84)."""
    try:
        if not isinstance(value, dict) or value.get("type") not in GEOMETRY_TYPES:
            raise ValueError
        geom = shapely.from_geojson(json.dumps(value))
        if geom.is_empty or not np.isfinite(shapely.get_coordinates(geom)).all():
            raise ValueError
    except Exception:  # noqa: BLE001 - any unreadable geometry is the caller's error
        raise BadParameter(f"geometry must be a GeoJSON {', '.join(GEOMETRY_TYPES)} in the Content-Crs "
                           "(CRS84 longitude/latitude by default)", parameter="geometry",
                           allowed=list(GEOMETRY_TYPES)) from None
    return geom


def _read(data: dict[str, Any]) -> tuple[dict[str, Any], BaseGeometry | None, str | None]:
    """The body's editable properties (checked by the admin API's declarations), geometry and source id."""
    props = data.get("properties") or {}
    if not isinstance(props, dict):
        raise BadParameter("properties must be an object", parameter="properties")
    allowed = [*ogc_edit.EDITABLE, *SERVER_SET]
    unknown = sorted(set(props) - set(allowed))
    if unknown:
        raise BadParameter(f"unknown propert{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)[:200]}; "
                           f"editable: {', '.join(ogc_edit.EDITABLE)}", parameter=str(unknown[0])[:60],
                           allowed=list(ogc_edit.EDITABLE))
    values = {name: EDIT_FIELDS[name].read(name, props[name]) for name in ogc_edit.EDITABLE if name in props}
    geometry = _geometry(data["geometry"]) if data.get("geometry") else None
    source_id = CREATE_FIELDS["source_id"].read("source_id", props.get("source_id"))
    return values, geometry, source_id


def _answer(key: str, fid: int, status: int = 200) -> Response:
    text, version = features.item(get_engine(), key, fid, FeatureShape(strip_nulls=True))
    response = json_response(text, GEOJSON)
    response.status_code = status
    if version is not None:
        response.headers["ETag"] = etag(fid, version)
    return response


def _change(key: str, raw_id: str, change: Callable[..., dict[str, Any]]) -> Response:
    """A replace or update: the body read, the service's change made at the If-Match version, the feature now."""
    _editable(key)
    fid = _feature_id(key, raw_id)
    values, geometry, _ = _read(_body())
    change(get_engine(), key, fid, values, geometry, crs_uri=_content_crs(), expected_version=expected_version(fid),
           actor=g.token.actor)
    return _answer(key, fid)


@bp.post("/collections/<collectionId>/items")
@operation("Create a feature (editor token; facility layers)", "ogc", (COLLECTION, CONTENT_CRS), security=True,
           request_body=_BODY, responses={"201": {"description": "Created; Location names it", "headers": {
               "Location": {"schema": {"type": "string"}}, "ETag": {"schema": {"type": "string"}}}},
               **errors(400, 401, 403, 404, 409, 503)})
@require("editor")
def create(collectionId: str) -> ResponseReturnValue:  # noqa: N803 - the standard's name
    _editable(collectionId)
    values, geometry, source_id = _read(_body())
    created = ogc_edit.create(get_engine(), collectionId, values, geometry, crs_uri=_content_crs(),
                              source_id=source_id, actor=g.token.actor)
    response = _answer(collectionId, created["id"], 201)
    response.headers["Location"] = url("ogc_items.item", collectionId=collectionId, featureId=created["id"])
    return response


@bp.put("/collections/<collectionId>/items/<featureId>")
@operation("Replace a feature (editor token; If-Match)", "ogc", (COLLECTION, FID, IF_MATCH, CONTENT_CRS),
           security=True, request_body=_BODY, responses={**_CHANGED, **errors(400, 401, 403, 404, 409, 412, 428, 503)})
@require("editor")
def replace(collectionId: str, featureId: str) -> ResponseReturnValue:  # noqa: N803 - the standard's names
    return _change(collectionId, featureId, ogc_edit.replace)


@bp.patch("/collections/<collectionId>/items/<featureId>")
@operation("Update a feature: a partial Feature, JSON merge patch (editor token; If-Match)", "ogc",
           (COLLECTION, FID, IF_MATCH, CONTENT_CRS), security=True, request_body=_PATCH_BODY,
           responses={**_CHANGED, **errors(400, 401, 403, 404, 409, 412, 428, 503)})
@require("editor")
def update(collectionId: str, featureId: str) -> ResponseReturnValue:  # noqa: N803 - the standard's names
    return _change(collectionId, featureId, ogc_edit.update)


@bp.delete("/collections/<collectionId>/items/<featureId>")
@operation("Delete (retire) a feature (editor token; If-Match)", "ogc", (COLLECTION, FID, IF_MATCH), security=True,
           responses={"204": {"description": "Retired: gone from the API; its history keeps it"},
                      **errors(401, 403, 404, 409, 412, 428, 503)})
@require("editor")
def delete(collectionId: str, featureId: str) -> ResponseReturnValue:  # noqa: N803 - the standard's names
    _editable(collectionId)
    fid = _feature_id(collectionId, featureId)
    ogc_edit.delete(get_engine(), collectionId, fid, expected_version=expected_version(fid), actor=g.token.actor)
    return Response(status=204)
