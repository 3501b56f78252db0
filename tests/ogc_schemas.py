"""The OGC API – Features – Part 1 response schemas the tests validate against, written from the standard.

No npm or PyPI package carries the OGC's YAML schemas, so the few needed are
transcribed here as JSON Schema, one per file of the standard's
``core/openapi/schemas`` folder (OGC 17-069r4): ``link``, ``landingPage``,
``confClasses``, ``extent``, ``collection``, ``collections``,
``geometryGeoJSON``, ``featureGeoJSON`` and ``featureCollectionGeoJSON``.
Where the standard says ``format: date-time`` the pattern of RFC 3339 is
added, so the check is made rather than left to an optional format plug-in.
"""
from __future__ import annotations

from typing import Any

RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

LINK = {"type": "object", "required": ["href", "rel"], "properties": {
    "href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
    "hreflang": {"type": "string"}, "title": {"type": "string"}, "length": {"type": "integer"}}}
LINKS = {"type": "array", "items": LINK}

LANDING_PAGE = {"type": "object", "required": ["links"], "properties": {
    "title": {"type": "string"}, "description": {"type": "string"}, "links": LINKS}}

CONF_CLASSES = {"type": "object", "required": ["conformsTo"], "properties": {
    "conformsTo": {"type": "array", "items": {"type": "string"}}}}

_BBOX = {"oneOf": [{"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
                   {"type": "array", "minItems": 6, "maxItems": 6, "items": {"type": "number"}}]}
EXTENT = {"type": "object", "properties": {
    "spatial": {"type": "object", "properties": {
        "bbox": {"type": "array", "minItems": 1, "items": _BBOX},
        "crs": {"type": "string", "enum": [CRS84]}}},
    "temporal": {"type": "object", "properties": {
        "interval": {"type": "array", "minItems": 1, "items": {
            "type": "array", "minItems": 2, "maxItems": 2,
            "items": {"type": ["string", "null"], "pattern": RFC3339}}},
        "trs": {"type": "string", "enum": ["http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"]}}}}}

COLLECTION = {"type": "object", "required": ["id", "links"], "properties": {
    "id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"}, "links": LINKS,
    "extent": EXTENT, "itemType": {"type": "string"}, "crs": {"type": "array", "items": {"type": "string"}}}}

COLLECTIONS = {"type": "object", "required": ["links", "collections"], "properties": {
    "links": LINKS, "collections": {"type": "array", "items": COLLECTION}}}


def _coords(depth: int, minimum: int = 0) -> dict[str, Any]:
    """A GeoJSON coordinate array ``depth`` levels deep (0: a position of 2 or more numbers)."""
    if depth == 0:
        return {"type": "array", "minItems": 2, "items": {"type": "number"}}
    return {"type": "array", "minItems": minimum, "items": _coords(depth - 1)}


def _geometry(kind: str, coordinates: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["type", "coordinates"], "properties": {
        "type": {"type": "string", "enum": [kind]}, "coordinates": coordinates}}


GEOMETRY = {"oneOf": [
    _geometry("Point", _coords(0)), _geometry("MultiPoint", _coords(1)), _geometry("LineString", _coords(1, 2)),
    _geometry("MultiLineString", {"type": "array", "items": _coords(1, 2)}),
    _geometry("Polygon", {"type": "array", "items": _coords(1, 4)}),
    _geometry("MultiPolygon", {"type": "array", "items": {"type": "array", "items": _coords(1, 4)}}),
    {"type": "object", "required": ["type", "geometries"], "properties": {
        "type": {"type": "string", "enum": ["GeometryCollection"]}, "geometries": {"type": "array"}}}]}

FEATURE = {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
    "type": {"type": "string", "enum": ["Feature"]},
    "geometry": {"oneOf": [{"type": "null"}, GEOMETRY]},
    "properties": {"type": ["object", "null"]},
    "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    "links": LINKS}}

FEATURE_COLLECTION = {"type": "object", "required": ["type", "features"], "properties": {
    "type": {"type": "string", "enum": ["FeatureCollection"]}, "features": {"type": "array", "items": FEATURE},
    "links": LINKS, "timeStamp": {"type": "string", "pattern": RFC3339},
    "numberMatched": {"type": "integer", "minimum": 0}, "numberReturned": {"type": "integer", "minimum": 0}}}
