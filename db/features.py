"""The feature collections that leave the system: their SQL, streamed, paged, counted and measured.

What each collection is made of is declared in :mod:`db.feature_sources`
(SQL fragments from code constants, never from a request); this module
builds the queries. Every request value (layer, district, bbox, dates,
limits, filters, CRS) is a bound parameter; a CQL2 filter arrives parsed
and is turned into SQL by :mod:`db.cql`, with its literals bound too.

Large results are streamed: rows come through a server-side cursor
(``stream_results`` with ``yield_per``) and GeoJSON features are built by
PostgreSQL (``json_build_object`` + ``ST_AsGeoJSON``), so Python only joins
text. Geometry is stored in WGS-84 (EPSG:4326); an OGC client may ask for
it in another CRS (:class:`OutputCrs`: transformed by PostGIS, axes in the
CRS's own order).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Row

from db import cql
from db.feature_sources import (
    POPULATION,
    ROADS,
    VILLAGE,
    CollectionSource,
    collection_keys,
    facility_source,
    source_for,
)
from geo.crs import METRIC_EPSG

__all__ = ["BATCH_ROWS", "COORD_DECIMALS", "POPULATION", "ROADS", "VILLAGE", "CollectionSource", "FeatureQuery",
           "FeatureShape", "OutputCrs", "collection_keys", "count", "extent", "facility_source", "feature",
           "geojson_batches", "has_synthetic", "page", "row_batches", "source_for"]

#: Decimal places of GeoJSON coordinates in degrees (1e-7 degrees ≈ 1 cm).
COORD_DECIMALS = 7
#: Decimal places of coordinates in metres (projected CRSs): millimetres.
METRE_DECIMALS = 3
#: Rows fetched per round trip from the server-side cursor.
BATCH_ROWS = 5000


@dataclass(frozen=True)
class OutputCrs:
    """A CRS coordinates are written (or a filter's geometry is read) in.

    ``srid`` is the EPSG code PostGIS transforms with; ``flip`` says the CRS's
    first axis is latitude or northing (EPSG:4326, EPSG:4490, EPSG:4548), so
    positions are written in that order; ``decimals`` rounds them (7 for
    degrees, 3 for metres).
    """

    srid: int = 4326
    flip: bool = False
    decimals: int = COORD_DECIMALS


#: WGS-84 longitude/latitude (CRS84): the storage CRS and RFC 7946's.
CRS84 = OutputCrs()


@dataclass(frozen=True)
class FeatureQuery:
    """Filters shared by exports and OGC items.

    Attributes
    ----------
    district : str or None
        District adcode.
    bbox : (minlon, minlat, maxlon, maxlat) or None
        Degrees, WGS-84; features whose indexed geometry intersects it. A box
        whose minlon is greater than its maxlon crosses the antimeridian.
    updated_since : datetime or None
        Facilities changed at or after this time (ignored where a collection has no such time).
    date_from, date_to : date or None
        Inclusive range on the opened date (OGC ``datetime``); a collection without dates matches nothing.
    equals : dict
        Simple property filters (names from :attr:`CollectionSource.filters`).
    filter : pygeofilter AST node or None
        A parsed CQL2 filter (:mod:`db.cql` turns it into SQL with bound literals).
    filter_crs : OutputCrs
        The CRS of the filter's geometry literals.
    """

    district: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    updated_since: dt.datetime | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    equals: Mapping[str, str] = field(default_factory=dict)
    filter: Any = None
    filter_crs: OutputCrs = CRS84


@dataclass(frozen=True)
class FeatureShape:
    """How features are written: which properties, with or without geometry, in which CRS, in which order.

    ``properties`` None means all; ``sort`` is (property, descending) pairs,
    the id breaking ties; ``strip_nulls`` leaves out properties whose value
    is null (so each value present matches the published schema's type).
    """

    properties: Sequence[str] | None = None
    geometry: bool = True
    crs: OutputCrs = CRS84
    sort: Sequence[tuple[str, bool]] = ()
    strip_nulls: bool = False


# ------------------------------------------------------------------ SQL building
def _base_params(src: CollectionSource) -> dict[str, Any]:
    return {"layer": src.key, "metric_srid": METRIC_EPSG}


def _bbox_clause(src: CollectionSource, box: tuple[float, float, float, float], params: dict[str, Any]) -> str:
    """Features meeting a lon/lat box; one crossing the antimeridian (minlon > maxlon) is two boxes."""
    x1, y1, x2, y2 = box
    parts = [(x1, x2)] if x1 <= x2 else [(x1, 180.0), (-180.0, x2)]
    clauses = []
    for i, (a, b) in enumerate(parts):
        params.update({f"bx{i}a": a, f"bx{i}b": b, "by1": y1, "by2": y2})
        env = f"ST_MakeEnvelope(:bx{i}a, :by1, :bx{i}b, :by2, 4326)"
        clauses.append(f"({src.index_geom_sql} && {env} AND ST_Intersects({src.index_geom_sql}, {env}))")
    return "(" + " OR ".join(clauses) + ")"


def _where(src: CollectionSource, q: FeatureQuery) -> tuple[str, dict[str, Any]]:
    """WHERE clause and bound parameters for ``q`` on ``src``."""
    clauses = [src.base_where]
    params = _base_params(src)
    equals = dict(q.equals)
    if q.district:
        equals["district"] = q.district
    for i, (name, value) in enumerate(sorted(equals.items())):
        column = src.filters.get(name)
        if column is None:
            raise KeyError(f"filter {name!r} is not available; allowed: {', '.join(src.filters)}")
        clauses.append(f"{column} = :eq{i}")
        params[f"eq{i}"] = value
    if q.bbox:
        clauses.append(_bbox_clause(src, q.bbox, params))
    if q.updated_since and src.updated_sql:
        clauses.append(f"{src.updated_sql} >= :updated_since")
        params["updated_since"] = q.updated_since
    clauses += _date_clauses(src, q, params)
    if q.filter is not None:
        clauses.append(cql.to_sql(q.filter, cql.Target(src.columns, src.types, src.index_geom_sql,
                                                         q.filter_crs.srid, q.filter_crs.flip), params))
    return " AND ".join(clauses), params


def _date_clauses(src: CollectionSource, q: FeatureQuery, params: dict[str, Any]) -> list[str]:
    if not (q.date_from or q.date_to):
        return []
    if src.date_sql is None:
        return ["FALSE"]  # no dates: a datetime filter matches nothing
    out = []
    if q.date_from:
        out.append(f"{src.date_sql} >= :date_from")
        params["date_from"] = q.date_from
    if q.date_to:
        out.append(f"{src.date_sql} <= :date_to")
        params["date_to"] = q.date_to
    return out


def _geometry_sql(src: CollectionSource, crs: OutputCrs) -> str:
    """The geometry as GeoJSON in ``crs`` (bound ``:out_srid``), axes in the CRS's order, no ``crs`` member."""
    geom = src.geom_sql if crs.srid == 4326 else f"ST_Transform({src.geom_sql}, :out_srid)"
    if crs.flip:
        geom = f"ST_FlipCoordinates({geom})"
    return f"ST_AsGeoJSON({geom}, {int(crs.decimals)}, 0)::json"


def _feature_sql(src: CollectionSource, shape: FeatureShape | None = None) -> str:
    """SQL expression for one GeoJSON Feature as text (RFC 7946 in CRS84 unless ``shape`` says another CRS)."""
    shape = shape or FeatureShape()
    wanted = set(shape.properties) if shape.properties is not None else None
    props = ", ".join(f"'{name}', {expr}" for name, expr in src.props
                      if name != "id" and (wanted is None or name in wanted))
    properties = f"json_build_object({props})" if props else "'{}'::json"
    if shape.strip_nulls:
        properties = f"json_strip_nulls({properties})"
    geometry = _geometry_sql(src, shape.crs) if shape.geometry else "NULL::json"
    return (f"json_build_object('type', 'Feature', 'id', {src.id_sql}, 'geometry', {geometry},"
            f" 'properties', {properties})::text")


def _order_sql(src: CollectionSource, sort: Sequence[tuple[str, bool]]) -> str:
    """ORDER BY keys: the requested properties (names checked against the source), then the id."""
    columns = src.columns
    keys = []
    for name, descending in sort:
        if name not in columns:
            raise KeyError(f"cannot sort by {name!r}; properties: {', '.join(columns)}")
        keys.append(f"{columns[name]} {'DESC' if descending else 'ASC'}")
    return ", ".join([*keys, src.id_sql])


def _stream(conn: Connection, sql: str, params: dict[str, Any], batch: int) -> Iterator[list[Row[Any]]]:
    """Batches of rows through a server-side cursor (memory stays flat)."""
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(text(sql), params)
    for part in result.partitions(batch):
        yield list(part)


# ------------------------------------------------------------------ reads
def geojson_batches(conn: Connection, src: CollectionSource, query: FeatureQuery | None = None, *,
                    batch: int = BATCH_ROWS) -> Iterator[str]:
    """GeoJSON Feature texts of a collection (WGS-84), joined by ``",\\n"`` per batch, ordered by id.

    Yields one string per batch of up to ``batch`` features (no leading or
    trailing comma), ready to be written between ``"features": [`` and ``]``.
    """
    where, params = _where(src, query or FeatureQuery())
    sql = f"SELECT {_feature_sql(src)} FROM {src.from_sql} WHERE {where} ORDER BY {src.id_sql}"
    for part in _stream(conn, sql, params, batch):
        yield ",\n".join(row[0] for row in part)


def row_batches(conn: Connection, src: CollectionSource, query: FeatureQuery | None = None, *,
                batch: int = BATCH_ROWS) -> Iterator[list[dict[str, Any]]]:
    """Batches of plain rows for file writers, ordered by id: the properties, ``longitude``/``latitude``
    of the representative point (degrees, WGS-84) and ``wkb`` (the geometry, EPSG:4326)."""
    where, params = _where(src, query or FeatureQuery())
    cols = ", ".join(f"{expr} AS {name}" for name, expr in src.props)
    sql = (f"SELECT {cols}, ST_X({src.point_sql}) AS longitude, ST_Y({src.point_sql}) AS latitude,"
           f" ST_AsBinary({src.geom_sql}) AS wkb FROM {src.from_sql} WHERE {where} ORDER BY {src.id_sql}")
    for part in _stream(conn, sql, params, batch):
        yield [dict(r._mapping) for r in part]


def count(conn: Connection, src: CollectionSource, query: FeatureQuery | None = None) -> int:
    """Number of features matching ``query``."""
    where, params = _where(src, query or FeatureQuery())
    return int(conn.execute(text(f"SELECT count(*) FROM {src.from_sql} WHERE {where}"), params).scalar_one())


def page(conn: Connection, src: CollectionSource, query: FeatureQuery | None, *, limit: int, offset: int,
         shape: FeatureShape | None = None) -> list[str]:
    """One page of GeoJSON Feature texts, ordered by ``shape.sort`` then id (by id when none)."""
    shape = shape or FeatureShape()
    where, params = _where(src, query or FeatureQuery())
    params.update(limit=limit, offset=offset, out_srid=shape.crs.srid)
    order = _order_sql(src, shape.sort)
    # The page's ids first, so the features skipped by OFFSET are never built.
    sql = (f"SELECT {_feature_sql(src, shape)} FROM {src.from_sql} WHERE {src.id_sql} IN ("
           f"SELECT {src.id_sql} FROM {src.from_sql} WHERE {where} ORDER BY {order}"
           f" LIMIT :limit OFFSET :offset) ORDER BY {order}")
    return [r[0] for r in conn.execute(text(sql), params)]


def feature(conn: Connection, src: CollectionSource, feature_id: int,
            shape: FeatureShape | None = None) -> tuple[str, int | None] | None:
    """One GeoJSON Feature text by id and its row version (None where the source has none), or None."""
    shape = shape or FeatureShape()
    version = src.version_sql or "NULL::integer"
    sql = (f"SELECT {_feature_sql(src, shape)}, {version} FROM {src.from_sql}"
           f" WHERE {src.base_where} AND {src.id_sql} = :fid")
    row = conn.execute(text(sql), {**_base_params(src), "fid": feature_id, "out_srid": shape.crs.srid}).first()
    return (row[0], row[1]) if row else None


def extent(conn: Connection, src: CollectionSource) -> dict[str, Any]:
    """``bbox`` (degrees, WGS-84, or None when empty), ``date_min``/``date_max`` (opened dates) and
    whether any feature is ``synthetic``."""
    d1, d2 = (f"min({src.date_sql})", f"max({src.date_sql})") if src.date_sql else ("NULL::date", "NULL::date")
    sql = (f"SELECT ST_XMin(s.e), ST_YMin(s.e), ST_XMax(s.e), ST_YMax(s.e), s.d1, s.d2, s.syn FROM ("
           f"SELECT ST_Extent({src.index_geom_sql})::geometry AS e, {d1} AS d1, {d2} AS d2,"
           f" bool_or(t.synthetic) AS syn FROM {src.from_sql} WHERE {src.base_where}) s")
    r = conn.execute(text(sql), _base_params(src)).one()
    bbox = [r[0], r[1], r[2], r[3]] if r[0] is not None else None
    return {"bbox": bbox, "date_min": r[4], "date_max": r[5], "synthetic": bool(r[6])}


def has_synthetic(conn: Connection, src: CollectionSource) -> bool:
    """Whether any feature of the collection is synthetic (so exports can say so)."""
    sql = f"SELECT EXISTS (SELECT 1 FROM {src.from_sql} WHERE {src.base_where} AND t.synthetic)"
    return bool(conn.execute(text(sql), _base_params(src)).scalar())
