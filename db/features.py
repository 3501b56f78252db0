"""The feature collections that leave the system: their SQL, streamed, paged, counted and measured.

A collection is a facility layer (its record in :mod:`layers` says where it
is stored: ``table``, ``id_field``, ``geometry_field``, ``capacity_field``)
or the ``population`` demand grid (declared here, next to its SQL). Each is
read through one :class:`CollectionSource`: SQL fragments made from those
code constants, never from a request. Every request value (layer, district,
bbox, dates, limits, filters) is a bound parameter.

Large results are streamed: rows come through a server-side cursor
(``stream_results`` with ``yield_per``) and GeoJSON features are built by
PostgreSQL (``json_build_object`` + ``ST_AsGeoJSON``), so Python only joins
text. Geometry is WGS-84 (EPSG:4326) throughout; population cells are squares
of ``resolution_m`` metres drawn in the metric CRS (``geo.crs.METRIC_EPSG``)
and converted to WGS-84.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Row

from geo.crs import METRIC_EPSG
from layers import LAYERS
from layers.model import Layer

#: The demand grid's collection key (not a facility layer).
POPULATION = "population"
#: Decimal places of GeoJSON coordinates (1e-7 degrees ≈ 1 cm).
COORD_DECIMALS = 7
#: Rows fetched per round trip from the server-side cursor.
BATCH_ROWS = 5000


@dataclass(frozen=True)
class CollectionSource:
    """How to read one collection: SQL fragments fixed in code, never from a request.

    Attributes
    ----------
    key : str
        Collection key (a layer key or ``population``).
    from_sql : str
        ``FROM`` clause with alias ``t``.
    base_where : str
        Predicate always applied (may use the bound ``:layer``).
    id_sql : str
        Expression for the feature id (an integer).
    geom_sql : str
        Expression for the feature geometry, EPSG:4326 (may use the bound ``:metric_srid``).
    point_sql : str
        Expression for a representative point, EPSG:4326 (CSV longitude/latitude).
    index_geom_sql : str
        GiST-indexed column (EPSG:4326) used for bbox and tile filters.
    props : tuple of (name, sql)
        Output property names and their expressions, in column order.
    types : mapping
        Property name → ``integer``, ``number`` or ``boolean`` where file formats must know it.
    filters : mapping
        Simple property filters: query name → column expression (equality).
    tile_props : tuple of str
        The properties a vector tile carries (kept small: the full record is one click away).
    geometry_type : str
        How files write the geometry: ``Point``, ``Polygon`` or ``MultiPolygon``.
    updated_sql, date_sql : str or None
        Columns behind ``updated_since`` and the opened-date (OGC ``datetime``) filter.
    """

    key: str
    from_sql: str
    base_where: str
    id_sql: str
    geom_sql: str
    point_sql: str
    index_geom_sql: str
    props: tuple[tuple[str, str], ...]
    types: Mapping[str, str]
    filters: Mapping[str, str]
    tile_props: tuple[str, ...]
    geometry_type: str
    updated_sql: str | None = None
    date_sql: str | None = None

    @property
    def prop_names(self) -> list[str]:
        return [name for name, _ in self.props]


@dataclass(frozen=True)
class FeatureQuery:
    """Filters shared by exports and OGC items.

    Attributes
    ----------
    district : str or None
        District adcode.
    bbox : (minlon, minlat, maxlon, maxlat) or None
        Degrees, WGS-84; features whose indexed geometry intersects it.
    updated_since : datetime or None
        Facilities changed at or after this time (ignored for ``population``).
    date_from, date_to : date or None
        Inclusive range on the opened date (OGC ``datetime``); the grid has no dates, so it matches nothing.
    equals : dict
        Simple property filters (names from :attr:`CollectionSource.filters`).
    """

    district: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    updated_since: dt.datetime | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    equals: Mapping[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------ the sources
def _ident(name: str) -> str:
    """A table or column name from the registry, checked to be a plain SQL identifier."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"{name!r} is not a plain SQL identifier (lower-case letters, digits, underscores)")
    return name


def facility_source(layer: Layer) -> CollectionSource:
    """The source of a facility layer, from the storage facts on its registry record."""
    t = "t."
    capacity = t + _ident(layer.capacity_field) if layer.capacity_field else "NULL::integer"
    props = (
        ("id", t + _ident(layer.id_field)), ("layer", "t.layer"), ("source_id", "t.source_id"),
        ("kind", "t.kind"), ("name", "t.name"), ("address", "t.address"), ("phone", "t.phone"),
        ("opening_hours", "t.opening_hours"), ("capacity", capacity), ("opened_on", "t.opened_on"),
        ("status", "t.status"), ("district", "t.district_adcode"), ("district_name", "d.name_zh"),
        ("synthetic", "t.synthetic"), ("updated_at", "t.updated_at"),
    )
    geom = t + _ident(layer.geometry_field)
    return CollectionSource(
        key=layer.key,
        from_sql=f"{_ident(layer.table)} t LEFT JOIN district d ON d.adcode = t.district_adcode",
        base_where="t.layer = :layer AND t.status = 'active'",
        id_sql=t + _ident(layer.id_field), geom_sql=geom, point_sql="t.point", index_geom_sql=geom,
        props=props,
        types={"id": "integer", "capacity": "integer", "synthetic": "boolean"},
        filters={"district": "t.district_adcode", "kind": "t.kind", "name": "t.name",
                 "source_id": "t.source_id", "status": "t.status"},
        tile_props=("name", "kind", "capacity", "district", "synthetic"),
        geometry_type="MultiPolygon" if layer.geometry_kind == "polygon" else "Point",
        updated_sql="t.updated_at", date_sql="t.opened_on",
    )


#: The cell square: centre (x_m, y_m) ± resolution_m / 2 in the metric CRS, as WGS-84.
_CELL_SQUARE = ("ST_Transform(ST_MakeEnvelope(t.x_m - t.resolution_m / 2, t.y_m - t.resolution_m / 2,"
                " t.x_m + t.resolution_m / 2, t.y_m + t.resolution_m / 2, :metric_srid), 4326)")
_CELL_CLASS = "CASE WHEN t.urban THEN 'urban' ELSE 'rural' END"

#: The demand grid: one square cell per row of ``demand_cell``, with its people and urban/rural class.
POPULATION_SOURCE = CollectionSource(
    key=POPULATION,
    from_sql="demand_cell t LEFT JOIN district d ON d.adcode = t.district_adcode",
    base_where="TRUE",
    id_sql="t.id", geom_sql=_CELL_SQUARE, point_sql="t.geom", index_geom_sql="t.geom",
    props=(("id", "t.id"), ("cell_id", "t.cell_id"), ("population", "t.population"),
           ("district", "t.district_adcode"), ("district_name", "d.name_zh"), ("class", _CELL_CLASS),
           ("resolution_m", "t.resolution_m"), ("synthetic", "t.synthetic")),
    types={"id": "integer", "population": "integer", "resolution_m": "number", "synthetic": "boolean"},
    filters={"district": "t.district_adcode", "cell_id": "t.cell_id", "class": _CELL_CLASS},
    tile_props=("cell_id", "population", "class", "district"),
    geometry_type="Polygon",
)


def collection_keys() -> tuple[str, ...]:
    """Every collection: the registry's layers, then ``population``."""
    return (*LAYERS, POPULATION)


def source_for(key: str) -> CollectionSource:
    """The :class:`CollectionSource` of ``key``; ``KeyError`` names the allowed keys."""
    if key == POPULATION:
        return POPULATION_SOURCE
    layer = LAYERS.get(key)
    if layer is None:
        raise KeyError(f"collection was {key!r} but is expected to be one of {', '.join(collection_keys())}")
    return facility_source(layer)


# ------------------------------------------------------------------ SQL building
def _base_params(src: CollectionSource) -> dict[str, Any]:
    return {"layer": src.key, "metric_srid": METRIC_EPSG}


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
        clauses.append(f"{src.index_geom_sql} && ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326)"
                       f" AND ST_Intersects({src.index_geom_sql}, ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326))")
        params.update(dict(zip(("x1", "y1", "x2", "y2"), q.bbox, strict=True)))
    if q.updated_since and src.updated_sql:
        clauses.append(f"{src.updated_sql} >= :updated_since")
        params["updated_since"] = q.updated_since
    clauses += _date_clauses(src, q, params)
    return " AND ".join(clauses), params


def _date_clauses(src: CollectionSource, q: FeatureQuery, params: dict[str, Any]) -> list[str]:
    if not (q.date_from or q.date_to):
        return []
    if src.date_sql is None:
        return ["FALSE"]  # the grid has no dates: a datetime filter matches nothing
    out = []
    if q.date_from:
        out.append(f"{src.date_sql} >= :date_from")
        params["date_from"] = q.date_from
    if q.date_to:
        out.append(f"{src.date_sql} <= :date_to")
        params["date_to"] = q.date_to
    return out


def _feature_sql(src: CollectionSource) -> str:
    """SQL expression for one GeoJSON Feature as text (RFC 7946, WGS-84)."""
    props = ", ".join(f"'{name}', {expr}" for name, expr in src.props if name != "id")
    return (f"json_build_object('type', 'Feature', 'id', {src.id_sql},"
            f" 'geometry', ST_AsGeoJSON({src.geom_sql}, {COORD_DECIMALS})::json,"
            f" 'properties', json_build_object({props}))::text")


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


def page(conn: Connection, src: CollectionSource, query: FeatureQuery | None, *, limit: int,
         offset: int) -> list[str]:
    """One page of GeoJSON Feature texts (WGS-84), ordered by id."""
    where, params = _where(src, query or FeatureQuery())
    params.update(limit=limit, offset=offset)
    # The page's ids first, so the features skipped by OFFSET are never built.
    sql = (f"SELECT {_feature_sql(src)} FROM {src.from_sql} WHERE {src.id_sql} IN ("
           f"SELECT {src.id_sql} FROM {src.from_sql} WHERE {where} ORDER BY {src.id_sql}"
           f" LIMIT :limit OFFSET :offset) ORDER BY {src.id_sql}")
    return [r[0] for r in conn.execute(text(sql), params)]


def feature(conn: Connection, src: CollectionSource, feature_id: int) -> str | None:
    """One GeoJSON Feature text (WGS-84) by id, or None."""
    sql = f"SELECT {_feature_sql(src)} FROM {src.from_sql} WHERE {src.base_where} AND {src.id_sql} = :fid"
    row = conn.execute(text(sql), {**_base_params(src), "fid": feature_id}).first()
    return row[0] if row else None


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
