"""Admin API: create, patch and retire facilities; the public history of each.

Every edit needs a bearer token (:mod:`web.auth`); changes to an existing
facility need ``If-Match`` with the ETag the editor read (428 without it, 412
when someone changed the facility since). The views parse the JSON body by
the field declarations below (the same declarations give ``/openapi.json``
its request schemas) and call one function of :mod:`services.editing`, where
the ETL's own checks run inside the edit's transaction. Admin responses are
never cached (``Cache-Control: no-store``, set in :mod:`web.security` for
``/api/admin``).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import shapely
from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue
from shapely.geometry.base import BaseGeometry

from layers import LAYER_KEYS, layer_keys
from services import editing
from web.auth import require
from web.database import get_engine
from web.errors import BadParameter, NotFound, PreconditionRequired
from web.params import Param, operation
from web.responses import body, errors

bp = Blueprint("admin", __name__)

#: Largest JSON body an edit may send (bytes): a park polygon fits easily.
MAX_BODY = 256 * 1024
_ID = re.compile(r"\d{1,18}")
_GEOMETRY_TYPES = ("Point", "Polygon", "MultiPolygon")


# ------------------------------------------------------------------ body fields, declared once
@dataclass(frozen=True)
class BodyField:
    """One field of a JSON body: its schema (published) and the check that reads it (enforced)."""

    name: str
    schema: dict[str, Any]
    read: Callable[[str, Any], Any]


def _text(max_len: int, *, nullable: bool = True) -> Callable[[str, Any], str | None]:
    def read(name: str, value: Any) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise BadParameter(f"{name} must be a string of 1 to {max_len} characters"
                               + (" or null" if nullable else ""), parameter=name,
                               allowed={"type": "string", "max_length": max_len})
        value = value.strip()
        if "\x00" in value or len(value) > max_len or (not nullable and not value):
            raise BadParameter(f"{name} must be 1 to {max_len} characters without NUL (it was {len(value)})",
                               parameter=name, allowed={"min_length": 1, "max_length": max_len})
        return value or None
    return read


def _capacity(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value != int(value) or not 0 <= value <= editing.MAX_CAPACITY:
        raise BadParameter(f"{name} was {str(value)[:40]!r} but must be a whole number from 0 to "
                           f"{editing.MAX_CAPACITY}", parameter=name, allowed={"min": 0, "max": editing.MAX_CAPACITY})
    return int(value)


def _date(name: str, value: Any) -> dt.date | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadParameter(f"{name} was {str(value)[:40]!r} but must be a date like 2022-06-30",
                           parameter=name, allowed="YYYY-MM-DD") from None


def _degrees(lo: float, hi: float) -> Callable[[str, Any], float]:
    def read(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not lo <= value <= hi:
            raise BadParameter(f"{name} was {str(value)[:40]!r} but must be a number of degrees from {lo:g} to "
                               f"{hi:g}", parameter=name, allowed={"min": lo, "max": hi})
        return float(value)
    return read


def _choice(allowed: Iterable[str] | Callable[[], Iterable[str]]) -> Callable[[str, Any], str]:
    def read(name: str, value: Any) -> str:
        values = list(allowed() if callable(allowed) else allowed)
        if value not in values:
            raise BadParameter(f"{name} was {str(value)[:40]!r} but is expected to be one of {', '.join(values)}",
                               parameter=name, allowed=values)
        return str(value)
    return read


def _geometry(name: str, value: Any) -> BaseGeometry | None:
    if value is None:
        return None
    try:
        if not isinstance(value, dict) or value.get("type") not in _GEOMETRY_TYPES:
            raise ValueError
        geom = shapely.from_geojson(json.dumps(value))
        coords = shapely.get_coordinates(geom)
        if geom.is_empty or not (abs(coords[:, 0]) <= 180).all() or not (abs(coords[:, 1]) <= 90).all():
            raise ValueError
    except Exception:  # noqa: BLE001 - any unreadable geometry is the caller's error
        raise BadParameter(f"{name} must be a GeoJSON Point, Polygon or MultiPolygon in lon/lat degrees",
                           parameter=name, allowed=list(_GEOMETRY_TYPES)) from None
    return geom


def _string(max_len: int, *, nullable: bool = True) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_len, **({"nullable": True} if nullable else {})}


_MAX = editing.MAX_TEXT
#: Fields of an edit (create and patch).
EDIT_FIELDS: dict[str, BodyField] = {f.name: f for f in (
    BodyField("name", _string(_MAX, nullable=False), _text(_MAX, nullable=False)),
    *(BodyField(n, _string(_MAX), _text(_MAX)) for n in editing.TEXT_FIELDS if n != "name"),
    BodyField("capacity", {"type": "integer", "minimum": 0, "maximum": editing.MAX_CAPACITY, "nullable": True},
              _capacity),
    BodyField("opened_on", {"type": "string", "format": "date", "nullable": True}, _date),
    BodyField("lon", {"type": "number", "minimum": -180, "maximum": 180}, _degrees(-180, 180)),
    BodyField("lat", {"type": "number", "minimum": -90, "maximum": 90}, _degrees(-90, 90)),
    BodyField("crs", {"type": "string", "enum": list(editing.EDIT_POSITION_CRS), "default": "wgs84",
                      "description": "CRS of lon/lat or geometry (GCJ-02: AMap/Tencent; BD-09: Baidu)"},
              _choice(editing.EDIT_POSITION_CRS)),
    BodyField("geometry", {"type": "object", "nullable": True,
                           "description": "GeoJSON Point, Polygon or MultiPolygon (WGS-84 unless crs says otherwise)"},
              _geometry),
)}
#: Fields of a new facility: an edit plus its layer and an optional source id.
CREATE_FIELDS: dict[str, BodyField] = {
    "layer": BodyField("layer", {"type": "string", "enum": list(LAYER_KEYS)}, _choice(layer_keys)),
    "source_id": BodyField("source_id", _string(editing.MAX_SOURCE_ID), _text(editing.MAX_SOURCE_ID)),
    **EDIT_FIELDS}
#: Fields of a retirement.
RETIRE_FIELDS: dict[str, BodyField] = {"reason": BodyField("reason", _string(_MAX), _text(_MAX))}


def body_schema(fields: dict[str, BodyField], required: Iterable[str] = ()) -> dict[str, Any]:
    """The JSON schema of a body made of ``fields`` (published in ``/openapi.json``)."""
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False,
                              "properties": {n: f.schema for n, f in fields.items()}}
    if required:
        schema["required"] = list(required)
    return schema


def _request_body(fields: dict[str, BodyField], *, required: bool, must: Iterable[str] = (),
                  **extra: Any) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": {**body_schema(fields, must),
                                                                              **extra}}}}


# ------------------------------------------------------------------ parsing
FACILITY_ID = Param("raw_id", "integer", "Facility id.", minimum=1, location="path")
IF_MATCH = Param("If-Match", "string", "The ETag read before this change, e.g. \"12-3\".", required=True,
                 location="header")


def facility_id(raw: str) -> int:
    """A path id as an int; anything else (``1; DROP TABLE facility;``) is just not found."""
    if not _ID.fullmatch(raw or ""):
        raise NotFound(f"no facility has id {raw[:40]!r}")
    return int(raw)


def read_body(fields: dict[str, BodyField], *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object, each field checked by its declaration (unknown fields refused).

    Only the fields present are returned. An empty body is ``{}`` when ``optional``.
    """
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BadParameter(f"the body is {request.content_length} bytes; at most {MAX_BODY} are allowed",
                           parameter="body", allowed={"max_bytes": MAX_BODY})
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY:
        raise BadParameter(f"the body is larger than {MAX_BODY} bytes", parameter="body",
                           allowed={"max_bytes": MAX_BODY})
    if optional and not raw.strip():
        return {}
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BadParameter("the body must be a JSON object, e.g. {\"name\": \"...\"}", parameter="body",
                           allowed=list(fields))
    _refuse_surrogates(data)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise BadParameter(f"unknown field(s) {', '.join(map(str, unknown))[:200]}; allowed: {', '.join(fields)}",
                           parameter=str(unknown[0])[:60], allowed=list(fields))
    return {name: fields[name].read(name, data[name]) for name in fields if name in data}


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_surrogates(value: Any, field: str = "body") -> None:
    """400 naming the field when any text in the body holds a lone surrogate (``"\\ud800"``): JSON can
    escape one, but it is no character and cannot be stored or shown."""
    if isinstance(value, str):
        if not _encodable(value):
            raise BadParameter(f"{field} holds a lone surrogate escape (e.g. \\ud800), which is not a character; "
                               "send the text as UTF-8", parameter=field, allowed="Unicode text without lone "
                                                                                  "surrogates")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not _encodable(key):
                _refuse_surrogates(key, f"a field name in {field}")
            _refuse_surrogates(item, key if field == "body" else f"{field}.{key}")
    elif isinstance(value, list):
        for item in value:
            _refuse_surrogates(item, field)


def _edit(values: dict[str, Any], *, creating: bool) -> editing.Edit:
    """The service's Edit from checked body values; position rules (lon with lat, not with geometry)."""
    if creating and values.get("name") is None:
        raise BadParameter("name is required", parameter="name")
    if ("lon" in values) != ("lat" in values):
        missing, given = ("lat", "lon") if "lon" in values else ("lon", "lat")
        raise BadParameter(f"{missing} is required with {given}", parameter=missing)
    if "lon" in values and "geometry" in values:
        raise BadParameter("give either lon and lat, or geometry, not both", parameter="geometry")
    return editing.Edit(values={k: v for k, v in values.items() if k in EDIT_FIELDS and k not in _POSITION},
                        lon=values.get("lon"), lat=values.get("lat"), geometry=values.get("geometry"),
                        crs=values.get("crs", "wgs84"))


_POSITION = ("lon", "lat", "geometry", "crs")


def expected_version(facility: int) -> int | None:
    """The version ``If-Match`` names for ``facility``; None when it names only other resources.

    Raises 428 without If-Match, or with ``*`` (which would overwrite any version).
    """
    header = request.headers.get("If-Match")
    if header is None or not header.strip():
        raise PreconditionRequired(f"If-Match is required: send the ETag you read, e.g. If-Match: "
                                   f"{editing.etag(facility, 1)} (GET /api/admin/facilities/{facility})")
    for tag in (t.strip() for t in header.split(",")):
        match = re.fullmatch(r'(?:W/)?"(\d{1,18})-(\d{1,9})"', tag)
        if match and int(match.group(1)) == facility:
            return int(match.group(2))
    if header.strip() == "*":
        raise PreconditionRequired("If-Match: * would overwrite any version; send the facility's ETag")
    return None


def _with_etag(payload: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(payload)
    response.status_code = status
    response.headers["ETag"] = payload["etag"]
    return response


# ------------------------------------------------------------------ routes
_ETAG = {"ETag": {"schema": {"type": "string"}, "description": "Send back in If-Match to change it."}}
_ONE = {"200": {**body("The facility"), "headers": _ETAG}}


@bp.get("/api/admin/facilities/<raw_id>")
@operation("Read a facility with its ETag", "admin", [FACILITY_ID], security=True,
           responses={**_ONE, **errors(401, 403, 404, 503)})
@require("viewer")
def admin_get(raw_id: str) -> ResponseReturnValue:
    return _with_etag(editing.get_facility(get_engine(), facility_id(raw_id)))


@bp.post("/api/admin/facilities")
@operation("Create a facility", "admin", security=True,
           request_body=_request_body(CREATE_FIELDS, required=True, must=("layer", "name"),
                                      anyOf=[{"required": ["lon", "lat"]}, {"required": ["geometry"]}]),
           responses={"201": {**body("Created"), "headers": _ETAG}, **errors(400, 401, 403, 409, 503)})
@require("editor")
def admin_create() -> ResponseReturnValue:
    values = read_body(CREATE_FIELDS)
    if "layer" not in values:
        raise BadParameter(f"layer is required: one of {', '.join(layer_keys())}", parameter="layer",
                           allowed=list(layer_keys()))
    created = editing.create_facility(get_engine(), values["layer"], _edit(values, creating=True),
                                      source_id=values.get("source_id"), actor=g.token.actor, token_id=g.token.id)
    response = _with_etag(created, 201)
    response.headers["Location"] = f"/api/admin/facilities/{created['id']}"
    return response


@bp.patch("/api/admin/facilities/<raw_id>")
@operation("Change a facility (If-Match required)", "admin", [FACILITY_ID, IF_MATCH], security=True,
           request_body=_request_body(EDIT_FIELDS, required=True),
           responses={**_ONE, **errors(400, 401, 403, 404, 409, 412, 428, 503)})
@require("editor")
def admin_patch(raw_id: str) -> ResponseReturnValue:
    fid = facility_id(raw_id)
    edit = _edit(read_body(EDIT_FIELDS), creating=False)
    return _with_etag(editing.patch_facility(get_engine(), fid, edit, expected_version=expected_version(fid),
                                             actor=g.token.actor, token_id=g.token.id))


@bp.post("/api/admin/facilities/<raw_id>/retire")
@operation("Retire a facility (If-Match required)", "admin", [FACILITY_ID, IF_MATCH], security=True,
           request_body=_request_body(RETIRE_FIELDS, required=False),
           responses={**_ONE, **errors(400, 401, 403, 404, 409, 412, 428, 503)})
@require("editor")
def admin_retire(raw_id: str) -> ResponseReturnValue:
    fid = facility_id(raw_id)
    reason = read_body(RETIRE_FIELDS, optional=True).get("reason")
    return _with_etag(editing.retire_facility(get_engine(), fid, expected_version=expected_version(fid),
                                              actor=g.token.actor, reason=reason, token_id=g.token.id))


@bp.get("/api/facilities/<raw_id>/history")
@operation("A facility's change history (editors named by role and opaque id)", "admin", [FACILITY_ID],
           responses={"200": body("The facility, the load run that created it, every change"),
                      **errors(404, 503)})
def facility_history(raw_id: str) -> ResponseReturnValue:
    return jsonify(editing.history(get_engine(), facility_id(raw_id)))


@bp.get("/api/admin/facilities/<raw_id>/history")
@operation("A facility's change history with each token's label", "admin", [FACILITY_ID], security=True,
           responses={"200": body("The public history, each change with its token's id and label"),
                      **errors(401, 403, 404, 503)})
@require("viewer")
def admin_history(raw_id: str) -> ResponseReturnValue:
    return jsonify(editing.history(get_engine(), facility_id(raw_id), with_labels=True))
