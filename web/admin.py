"""Admin API: create, patch and retire facilities; the public history of each.

Every edit needs a bearer token (:mod:`web.auth`); changes to an existing
facility need ``If-Match`` with the ETag the editor read (428 without it, 412
when someone changed the facility since). Validation is the ETL's, in
:mod:`db.admin`. Admin responses are never cached (``Cache-Control:
no-store``, set in :mod:`web.security` for ``/api/admin``).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re

import shapely
from flask import Blueprint, g, jsonify, request

from db import admin
from layers import LAYER_KEYS
from web.auth import require
from web.database import get_engine
from web.errors import (APIError, BadParameter, Conflict, NotFound, PreconditionFailed, PreconditionRequired,
                        _json)

bp = Blueprint("admin", __name__)

#: Largest JSON body an edit may send (bytes): a park polygon fits easily.
MAX_BODY = 256 * 1024
MAX_TEXT = 200
MAX_CAPACITY = 1_000_000
_EDIT_FIELDS = ("name", "address", "phone", "opening_hours", "kind", "capacity", "opened_on", "lon", "lat",
                "crs", "geometry")
_CREATE_FIELDS = ("layer", "source_id") + _EDIT_FIELDS
_ID = re.compile(r"\d{1,18}")


# --- parsing (the views stay one line) ----------------------------------------

def facility_id(raw: str) -> int:
    """A path id as an int; anything else (``1; DROP TABLE facility;``) is just not found."""
    if not _ID.fullmatch(raw or ""):
        raise NotFound(f"no facility has id {raw[:40]!r}")
    return int(raw)


def _body(allowed: tuple[str, ...]) -> dict:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BadParameter(f"the body is {request.content_length} bytes; at most {MAX_BODY} are allowed",
                           parameter="body", allowed={"max_bytes": MAX_BODY})
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY:
        raise BadParameter(f"the body is larger than {MAX_BODY} bytes", parameter="body",
                           allowed={"max_bytes": MAX_BODY})
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BadParameter("the body must be a JSON object, e.g. {\"name\": \"...\"}", parameter="body",
                           allowed=list(allowed))
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadParameter(f"unknown field(s) {', '.join(map(str, unknown))[:200]}; allowed: {', '.join(allowed)}",
                           parameter=str(unknown[0])[:60], allowed=list(allowed))
    return body


def _text(body: dict, name: str, *, required: bool = False, max_len: int = MAX_TEXT) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise BadParameter(f"{name} is required", parameter=name)
        return None
    if not isinstance(value, str):
        raise BadParameter(f"{name} must be a string of 1 to {max_len} characters or null", parameter=name,
                           allowed={"type": "string", "max_length": max_len})
    value = value.strip()
    if "\x00" in value or len(value) > max_len or (required and not value):
        raise BadParameter(f"{name} must be 1 to {max_len} characters without NUL (it was {len(value)})",
                           parameter=name, allowed={"min_length": 1, "max_length": max_len})
    return value or None


def _capacity(body: dict) -> int | None:
    value = body.get("capacity")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or not 0 <= value <= MAX_CAPACITY:
        raise BadParameter(f"capacity was {str(value)[:40]!r} but must be a whole number from 0 to {MAX_CAPACITY}",
                           parameter="capacity", allowed={"min": 0, "max": MAX_CAPACITY})
    return int(value)


def _date(body: dict) -> dt.date | None:
    value = body.get("opened_on")
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadParameter(f"opened_on was {str(value)[:40]!r} but must be a date like 2022-06-30",
                           parameter="opened_on", allowed="YYYY-MM-DD") from None


def _coord(body: dict, name: str, lo: float, hi: float) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise BadParameter(f"{name} was {str(value)[:40]!r} but must be a number of degrees from {lo:g} to {hi:g}",
                           parameter=name, allowed={"min": lo, "max": hi})
    return float(value)


def _geometry(body: dict):
    value = body.get("geometry")
    if value is None:
        return None
    try:
        if not isinstance(value, dict) or value.get("type") not in ("Point", "Polygon", "MultiPolygon"):
            raise ValueError
        geom = shapely.from_geojson(json.dumps(value))
        coords = shapely.get_coordinates(geom)
        if geom.is_empty or not (abs(coords[:, 0]) <= 180).all() or not (abs(coords[:, 1]) <= 90).all():
            raise ValueError
    except Exception:  # noqa: BLE001 - any unreadable geometry is the caller's error
        raise BadParameter("geometry must be a GeoJSON Point, Polygon or MultiPolygon in lon/lat degrees",
                           parameter="geometry", allowed=["Point", "Polygon", "MultiPolygon"]) from None
    return geom


def _edit(body: dict, *, creating: bool) -> admin.Edit:
    values = {name: _text(body, name, required=creating and name == "name") for name in admin.TEXT_FIELDS
              if name in body or (creating and name == "name")}
    if "name" in body and not creating:
        values["name"] = _text(body, "name", required=True)
    if "capacity" in body:
        values["capacity"] = _capacity(body)
    if "opened_on" in body:
        values["opened_on"] = _date(body)
    edit = admin.Edit(values=values)
    crs = body.get("crs", "wgs84")
    if crs not in admin.EDIT_CRS:
        raise BadParameter(f"crs was {str(crs)[:40]!r} but is expected to be one of {', '.join(admin.EDIT_CRS)}",
                           parameter="crs", allowed=list(admin.EDIT_CRS))
    edit.crs = crs
    if ("lon" in body) != ("lat" in body):
        missing = "lat" if "lon" in body else "lon"
        raise BadParameter(f"{missing} is required with {'lon' if missing == 'lat' else 'lat'}",
                           parameter=missing)
    if "lon" in body:
        if "geometry" in body:
            raise BadParameter("give either lon and lat, or geometry, not both", parameter="geometry")
        edit.lon, edit.lat = _coord(body, "lon", -180, 180), _coord(body, "lat", -90, 90)
    edit.geometry = _geometry(body)
    return edit


def _version(facility: int) -> int:
    """The version named by ``If-Match`` for ``facility`` (428 without one, 412 for another id)."""
    header = request.headers.get("If-Match")
    if header is None or not header.strip():
        raise PreconditionRequired(f"If-Match is required: send the ETag you read, e.g. If-Match: "
                                   f"{admin.etag(facility, 1)} (GET /api/admin/facilities/{facility})")
    for tag in (t.strip() for t in header.split(",")):
        match = re.fullmatch(r'(?:W/)?"(\d{1,18})-(\d{1,9})"', tag)
        if match and int(match.group(1)) == facility:
            return int(match.group(2))
    if header.strip() == "*":
        raise PreconditionRequired("If-Match: * would overwrite any version; send the facility's ETag")
    current = admin.get_facility(get_engine(), facility)
    raise PreconditionFailed(f"If-Match {header[:60]!r} does not match the current ETag {current['etag']}",
                             headers={"ETag": current["etag"]})


def _with_etag(payload: dict, status: int = 200):
    response = jsonify(payload)
    response.status_code = status
    response.headers["ETag"] = payload["etag"]
    return response


# --- errors of db.admin as HTTP ----------------------------------------------

_STATUS: dict[type, type[APIError]] = {
    admin.FacilityNotFound: NotFound, admin.InvalidEdit: BadParameter, admin.AlreadyRetired: Conflict,
    admin.DuplicateSourceId: Conflict, admin.VersionMismatch: PreconditionFailed,
}


@bp.errorhandler(admin.AdminError)
def _admin_error(err: admin.AdminError):
    cls = _STATUS.get(type(err), BadParameter)
    headers = {"ETag": err.current_etag} if isinstance(err, admin.VersionMismatch) else None
    return _json(cls(err.message, parameter=err.parameter, allowed=err.allowed, headers=headers))


# --- routes -------------------------------------------------------------------

@bp.get("/api/admin/facilities/<raw_id>")
@require("viewer")
def admin_get(raw_id: str):
    return _with_etag(admin.get_facility(get_engine(), facility_id(raw_id)))


@bp.post("/api/admin/facilities")
@require("editor")
def admin_create():
    body = _body(_CREATE_FIELDS)
    layer = body.get("layer")
    if layer not in LAYER_KEYS:
        raise BadParameter(f"layer was {str(layer)[:40]!r} but is expected to be one of {', '.join(LAYER_KEYS)}",
                           parameter="layer", allowed=list(LAYER_KEYS))
    source_id = _text(body, "source_id", max_len=100)
    created = admin.create_facility(get_engine(), layer, _edit(body, creating=True), source_id=source_id,
                                    actor=g.token.actor)
    response = _with_etag(created, 201)
    response.headers["Location"] = f"/api/admin/facilities/{created['id']}"
    return response


@bp.patch("/api/admin/facilities/<raw_id>")
@require("editor")
def admin_patch(raw_id: str):
    fid = facility_id(raw_id)
    edit = _edit(_body(_EDIT_FIELDS), creating=False)
    return _with_etag(admin.patch_facility(get_engine(), fid, edit, expected_version=_version(fid),
                                           actor=g.token.actor))


@bp.post("/api/admin/facilities/<raw_id>/retire")
@require("editor")
def admin_retire(raw_id: str):
    fid = facility_id(raw_id)
    body = _body(("reason",)) if request.get_data(cache=True).strip() else {}
    return _with_etag(admin.retire_facility(get_engine(), fid, expected_version=_version(fid),
                                            actor=g.token.actor, reason=_text(body, "reason")))


@bp.get("/api/facilities/<raw_id>/history")
def facility_history(raw_id: str):
    return jsonify(admin.history(get_engine(), facility_id(raw_id)))
