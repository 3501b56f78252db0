"""OGC API – Features Part 3 for one collection: its queryables, its schema, and the query's own parameters.

* :func:`queryables` and :func:`feature_schema`: JSON Schemas of a
  collection's properties, typed from its declaration
  (:attr:`~db.features.CollectionSource.types`), so GDAL, QGIS and OWSLib
  read ``capacity`` as an integer and ``opened_on`` as a date.
* :func:`parse_filter`: a CQL2 filter (``cql2-text`` or ``cql2-json``)
  parsed by pygeofilter; :mod:`db.cql` turns the tree into SQL with every
  literal bound. Unknown properties and unsupported operators are refused
  before any SQL runs (:func:`check_filter`).
* :func:`parse_sortby` and :func:`parse_properties`: ``sortby=name,-capacity``
  and ``properties=name,kind``, checked against the collection.
"""
from __future__ import annotations

import json
from typing import Any

from lark.exceptions import LarkError
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
from pygeofilter.parsers.cql2_text import parse as parse_cql2_text

from db import cql
from db.features import CollectionSource
from layers.districts import DISTRICT_CODES
from services.errors import InvalidRequest
from services.features import source, title

#: The filter languages served (``filter-lang``); text is the default.
FILTER_LANGS: tuple[str, ...] = ("cql2-text", "cql2-json")
#: Longest filter accepted, characters (a polygon of a few hundred vertices fits).
MAX_FILTER_CHARS = 20_000
#: Part 5 geometry formats of the collections' geometry types.
GEOMETRY_FORMATS = {"Point": "geometry-point", "MultiPolygon": "geometry-multipolygon",
                    "Polygon": "geometry-polygon", "LineString": "geometry-linestring"}
#: Values some properties can only take (published as enums).
ENUMS: dict[str, list[str]] = {"status": ["active"], "class": ["urban", "rural"], "district": list(DISTRICT_CODES)}
_SCHEMA = "https://json-schema.org/draft/2020-12/schema"


def _property_schema(src: CollectionSource, name: str) -> dict[str, Any]:
    kind = src.types[name]
    schema: dict[str, Any] = {"title": name}
    if kind in ("date", "date-time"):
        schema.update(type="string", format=kind)
    else:
        schema["type"] = kind
    if name in ENUMS and name in src.filters:
        schema["enum"] = ENUMS[name]
    return schema


def queryables(key: str) -> dict[str, Any]:
    """The queryables of collection ``key`` (OGC API – Features Part 3): a JSON Schema, one typed entry per
    property plus ``geometry`` (WGS-84; compare it with S_INTERSECTS and friends)."""
    src = source(key)
    props: dict[str, Any] = {"geometry": {"format": GEOMETRY_FORMATS[src.geometry_type],
                                          "x-ogc-role": "primary-geometry"}}
    props.update({name: _property_schema(src, name) for name in src.prop_names if name != "id"})
    return {"$schema": _SCHEMA, "type": "object", "title": f"{title(key, 'zh')} {title(key, 'en')}",
            "properties": props, "additionalProperties": False}


def feature_schema(key: str) -> dict[str, Any]:
    """The JSON Schema of one GeoJSON Feature of collection ``key`` (what GDAL's ``describedBy`` reads).

    A property whose value is null is left out of the feature (items are
    written with nulls stripped), so every value present has its declared type.
    """
    src = source(key)
    props = {name: _property_schema(src, name) for name in src.prop_names if name != "id"}
    return {"$schema": _SCHEMA, "type": "object", "title": f"{title(key, 'zh')} {title(key, 'en')}",
            "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "id": {"type": "integer"},
                "geometry": {"type": "object", "format": GEOMETRY_FORMATS[src.geometry_type],
                             "properties": {"type": {"type": "string", "enum": [src.geometry_type]}}},
                "properties": {"type": "object", "properties": props}}}


def parse_filter(raw: str, lang: str) -> Any:
    """A CQL2 filter parsed by pygeofilter; :class:`InvalidRequest` (parameter ``filter``) says why not."""
    if len(raw) > MAX_FILTER_CHARS:
        raise InvalidRequest(f"filter is {len(raw)} characters; at most {MAX_FILTER_CHARS} are accepted",
                             parameter="filter", allowed={"max_length": MAX_FILTER_CHARS})
    try:
        return parse_cql2_text(raw) if lang == "cql2-text" else parse_cql2_json(json.loads(raw))
    except (LarkError, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise InvalidRequest(f"filter is not valid {lang}: {first}", parameter="filter") from None


def check_filter(key: str, tree: Any) -> None:
    """Translate the filter once against the collection (no SQL runs), so a bad one is a 400 naming it."""
    src = source(key)
    try:
        cql.to_sql(tree, cql.Target(src.columns, src.types, src.index_geom_sql), {})
    except cql.FilterError as exc:
        raise InvalidRequest(str(exc), parameter="filter", allowed=[*src.prop_names, cql.GEOMETRY]) from None


def parse_sortby(key: str, raw: str | None) -> tuple[tuple[str, bool], ...]:
    """``sortby=name,-capacity`` as (property, descending) pairs; ``+`` or nothing is ascending."""
    if raw is None:
        return ()
    names = source(key).prop_names
    out = []
    for part in (p.strip() for p in raw.split(",")):
        name, descending = (part[1:], True) if part.startswith("-") else (part.removeprefix("+"), False)
        if name not in names:
            raise InvalidRequest(f"sortby names {name[:40]!r}, which is not a property of {key}; properties: "
                                 f"{', '.join(names)}", parameter="sortby", allowed=names)
        out.append((name, descending))
    return tuple(out)


def parse_properties(key: str, raw: str | None) -> tuple[str, ...] | None:
    """``properties=name,kind``: the properties to keep (None: all); an unknown one is refused."""
    if raw is None:
        return None
    names = [n for n in source(key).prop_names if n != "id"]
    wanted = tuple(p.strip() for p in raw.split(",") if p.strip())
    unknown = [p for p in wanted if p not in names]
    if unknown:
        raise InvalidRequest(f"properties names {unknown[0][:40]!r}, which is not a property of {key}; "
                             f"properties: {', '.join(names)}", parameter="properties", allowed=names)
    return wanted
