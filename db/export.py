"""Streaming read queries for export, OGC API – Features and vector tiles.

Every collection that leaves the system (the five facility layers and the
``population`` demand grid) is described by one :class:`Source`: the SQL
fragments for its table, id, geometry and properties are constants written
here, and every request value (layer, district, bbox, dates, limits, filters)
is a bound parameter. Nothing a client sends is pasted into SQL.

Large results are streamed: rows come through a server-side cursor
(``stream_results`` with ``yield_per``), and GeoJSON features are built by
PostgreSQL (``json_build_object`` + ``ST_AsGeoJSON``) so Python only joins
text. Geometry is WGS-84 (EPSG:4326) throughout; population cells are the
squares of ``resolution_m`` metres drawn in EPSG:4548 and converted to WGS-84.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterator

from sqlalchemy import text
from sqlalchemy.engine import Engine

from layers import LAYER_KEYS, LAYERS
from layers.districts import DISTRICTS

#: The demand grid's collection key (not a facility layer).
POPULATION = "population"
#: Every collection key that can be exported, served through OGC API or tiled.
COLLECTION_KEYS: tuple[str, ...] = tuple(LAYER_KEYS) + (POPULATION,)
#: Decimal places of exported coordinates (1e-7 degrees ≈ 1 cm).
COORD_DECIMALS = 7
#: Rows fetched per round trip from the server-side cursor.
BATCH_ROWS = 5000


@dataclass(frozen=True)
class Source:
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
        Expression for the feature geometry, EPSG:4326.
    point_sql : str
        Expression for a representative point, EPSG:4326 (CSV longitude/latitude).
    index_geom_sql : str
        GiST-indexed column used for bbox and tile filters.
    props : tuple of (name, sql)
        Output property names and their expressions, in column order.
    filters : dict
        Simple property filters: query name → column expression (equality).
    updated_sql, date_sql : str or None
        Columns behind ``updated_since`` and the OGC ``datetime`` filter.
    """

    key: str
    from_sql: str
    base_where: str
    id_sql: str
    geom_sql: str
    point_sql: str
    index_geom_sql: str
    props: tuple[tuple[str, str], ...]
    filters: dict[str, str] = field(default_factory=dict)
    updated_sql: str | None = None
    date_sql: str | None = None

    @property
    def prop_names(self) -> list[str]:
        return [name for name, _ in self.props]


_FACILITY_PROPS: tuple[tuple[str, str], ...] = (
    ("id", "t.id"), ("layer", "t.layer"), ("source_id", "t.source_id"), ("kind", "t.kind"),
    ("name", "t.name"), ("address", "t.address"), ("phone", "t.phone"),
    ("opening_hours", "t.opening_hours"), ("capacity", "t.capacity"), ("opened_on", "t.opened_on"),
    ("status", "t.status"), ("district", "t.district_adcode"), ("district_name", "d.name_zh"),
    ("synthetic", "t.synthetic"), ("updated_at", "t.updated_at"),
)

_FACILITY = dict(
    from_sql="facility t LEFT JOIN district d ON d.adcode = t.district_adcode",
    base_where="t.layer = :layer AND t.status = 'active'",
    id_sql="t.id", geom_sql="t.geom", point_sql="t.point", index_geom_sql="t.geom",
    props=_FACILITY_PROPS,
    filters={"district": "t.district_adcode", "kind": "t.kind", "name": "t.name", "source_id": "t.source_id",
             "status": "t.status"},
    updated_sql="t.updated_at", date_sql="t.opened_on",
)

#: The cell square: centre (x_m, y_m) ± resolution_m / 2 in EPSG:4548, as WGS-84.
_CELL_SQUARE = ("ST_Transform(ST_MakeEnvelope(t.x_m - t.resolution_m / 2, t.y_m - t.resolution_m / 2,"
                " t.x_m + t.resolution_m / 2, t.y_m + t.resolution_m / 2, 4548), 4326)")

SOURCES: dict[str, Source] = {key: Source(key=key, **_FACILITY) for key in LAYER_KEYS}
SOURCES[POPULATION] = Source(
    key=POPULATION,
    from_sql="demand_cell t LEFT JOIN district d ON d.adcode = t.district_adcode",
    base_where="TRUE",
    id_sql="t.id", geom_sql=_CELL_SQUARE, point_sql="t.geom", index_geom_sql="t.geom",
    props=(("id", "t.id"), ("cell_id", "t.cell_id"), ("population", "t.population"),
           ("district", "t.district_adcode"), ("district_name", "d.name_zh"),
           ("class", "CASE WHEN t.urban THEN 'urban' ELSE 'rural' END"),
           ("resolution_m", "t.resolution_m"), ("synthetic", "t.synthetic")),
    filters={"district": "t.district_adcode", "cell_id": "t.cell_id",
             "class": "CASE WHEN t.urban THEN 'urban' ELSE 'rural' END"},
)


def get_source(key: str) -> Source:
    """The :class:`Source` for ``key``; ``KeyError`` names the allowed keys."""
    try:
        return SOURCES[key]
    except KeyError:
        raise KeyError(f"collection was {key!r} but is expected to be one of {', '.join(COLLECTION_KEYS)}") from None


def collection_title(key: str, lang: str = "zh") -> str:
    """Human title of a collection in ``lang`` (``zh`` or ``en``)."""
    if key == POPULATION:
        return "Population grid (synthetic)" if lang == "en" else "人口格网（合成）"
    layer = LAYERS[key]
    return layer.name_en if lang == "en" else layer.name_zh


@dataclass(frozen=True)
class Query:
    """Filters shared by exports and OGC items.

    Attributes
    ----------
    district : str or None
        District adcode.
    bbox : (minlon, minlat, maxlon, maxlat) or None
        Degrees, WGS-84; features whose geometry intersects it.
    updated_since : datetime or None
        Facilities changed at or after this time (ignored for ``population``).
    date_from, date_to : date or None
        Inclusive range on the opened date (OGC ``datetime``).
    equals : dict
        Simple property filters (names from :attr:`Source.filters`).
    """

    district: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    updated_since: dt.datetime | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    equals: dict[str, str] = field(default_factory=dict)


def _where(src: Source, q: Query) -> tuple[str, dict[str, Any]]:
    """WHERE clause and bound parameters for ``q`` on ``src``."""
    clauses = [src.base_where]
    params: dict[str, Any] = {"layer": src.key}
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
        params.update(dict(zip(("x1", "y1", "x2", "y2"), q.bbox)))
    if q.updated_since and src.updated_sql:
        clauses.append(f"{src.updated_sql} >= :updated_since")
        params["updated_since"] = q.updated_since
    if (q.date_from or q.date_to) and src.date_sql is None:
        clauses.append("FALSE")  # the grid has no dates: a datetime filter matches nothing
    if q.date_from and src.date_sql:
        clauses.append(f"{src.date_sql} >= :date_from")
        params["date_from"] = q.date_from
    if q.date_to and src.date_sql:
        clauses.append(f"{src.date_sql} <= :date_to")
        params["date_to"] = q.date_to
    return " AND ".join(clauses), params


def _feature_sql(src: Source, crs_gcj02: bool = False) -> str:
    """SQL expression for one GeoJSON Feature as text (RFC 7946, WGS-84)."""
    props = ", ".join(f"'{name}', {expr}" for name, expr in src.props if name != "id")
    return (f"json_build_object('type', 'Feature', 'id', {src.id_sql},"
            f" 'geometry', ST_AsGeoJSON({src.geom_sql}, {COORD_DECIMALS})::json,"
            f" 'properties', json_build_object({props}))::text")


def _stream(engine: Engine, sql: str, params: dict[str, Any], batch: int) -> Iterator[list]:
    """Batches of rows through a server-side cursor (memory stays flat)."""
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(text(sql), params)
        for part in result.partitions(batch):
            yield part


def iter_geojson_features(engine: Engine, key: str, query: Query | None = None, *,
                          batch: int = BATCH_ROWS) -> Iterator[str]:
    """GeoJSON Feature texts for a collection, joined by ``",\\n"`` per batch.

    Yields one string per batch of up to ``batch`` features (no leading or
    trailing comma), ready to be written between ``"features": [`` and ``]``.

    Parameters
    ----------
    engine : Engine
    key : str
        Collection key (layer key or ``population``).
    query : Query, optional
        Filters; district, bbox (degrees), updated_since.
    batch : int
        Rows per fetch from the server-side cursor.
    """
    src = get_source(key)
    where, params = _where(src, query or Query())
    sql = f"SELECT {_feature_sql(src)} FROM {src.from_sql} WHERE {where} ORDER BY {src.id_sql}"
    for part in _stream(engine, sql, params, batch):
        yield ",\n".join(row[0] for row in part)


def iter_rows(engine: Engine, key: str, query: Query | None = None, *,
              batch: int = BATCH_ROWS) -> Iterator[list[dict[str, Any]]]:
    """Batches of plain rows for file writers: properties, ``longitude``/``latitude``
    of the representative point (degrees, WGS-84) and ``wkb`` (the geometry, EPSG:4326)."""
    src = get_source(key)
    where, params = _where(src, query or Query())
    cols = ", ".join(f"{expr} AS {name}" for name, expr in src.props)
    sql = (f"SELECT {cols}, ST_X({src.point_sql}) AS longitude, ST_Y({src.point_sql}) AS latitude,"
           f" ST_AsBinary({src.geom_sql}) AS wkb FROM {src.from_sql} WHERE {where} ORDER BY {src.id_sql}")
    for part in _stream(engine, sql, params, batch):
        yield [dict(r._mapping) for r in part]


def count_features(engine: Engine, key: str, query: Query | None = None) -> int:
    """Number of features matching ``query``."""
    src = get_source(key)
    where, params = _where(src, query or Query())
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {src.from_sql} WHERE {where}"), params).scalar_one())


def page_features(engine: Engine, key: str, query: Query | None, *, limit: int, offset: int) -> list[str]:
    """One page of GeoJSON Feature texts, ordered by id."""
    src = get_source(key)
    where, params = _where(src, query or Query())
    params.update(limit=limit, offset=offset)
    # The page's ids first, so the features skipped by OFFSET are never built.
    sql = (f"SELECT {_feature_sql(src)} FROM {src.from_sql} WHERE {src.id_sql} IN ("
           f"SELECT {src.id_sql} FROM {src.from_sql} WHERE {where} ORDER BY {src.id_sql}"
           " LIMIT :limit OFFSET :offset) ORDER BY t.id")
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text(sql), params)]


def get_feature(engine: Engine, key: str, feature_id: int) -> str | None:
    """One GeoJSON Feature text by id, or None."""
    src = get_source(key)
    sql = (f"SELECT {_feature_sql(src)} FROM {src.from_sql} WHERE {src.base_where}"
           f" AND {src.id_sql} = :fid")
    with engine.connect() as conn:
        row = conn.execute(text(sql), {"layer": key, "fid": feature_id}).first()
    return row[0] if row else None


def extent(engine: Engine, key: str) -> dict[str, Any]:
    """Spatial extent (degrees, WGS-84), temporal extent (opened dates) and whether synthetic."""
    src = get_source(key)
    d1, d2 = (f"min({src.date_sql})", f"max({src.date_sql})") if src.date_sql else ("NULL::date", "NULL::date")
    sql = (f"SELECT ST_XMin(s.e), ST_YMin(s.e), ST_XMax(s.e), ST_YMax(s.e), s.d1, s.d2, s.syn FROM ("
           f"SELECT ST_Extent({src.index_geom_sql})::geometry AS e, {d1} AS d1, {d2} AS d2,"
           f" bool_or(t.synthetic) AS syn FROM {src.from_sql} WHERE {src.base_where}) s")
    with engine.connect() as conn:
        r = conn.execute(text(sql), {"layer": key}).first()
    bbox = [r[0], r[1], r[2], r[3]] if r[0] is not None else None
    return {"bbox": bbox, "date_min": r[4], "date_max": r[5], "synthetic": bool(r[6])}


# ------------------------------------------------------------------ vector tiles
#: Properties carried in tiles (kept small: the full record is one click away).
_TILE_PROPS = {POPULATION: ("cell_id", "population", "class", "district")}
_TILE_DEFAULT = ("name", "kind", "capacity", "district", "synthetic")


def mvt_tile(engine: Engine, key: str, z: int, x: int, y: int, *, extent_px: int = 4096,
             buffer_px: int = 64) -> bytes:
    """A Mapbox Vector Tile of one collection at tile ``z/x/y`` (Web Mercator).

    The tile's layer is named after the collection key; each feature carries
    its id and a few properties. An empty tile is ``b""``.
    """
    src = get_source(key)
    props = dict(src.props)
    names = _TILE_PROPS.get(key, _TILE_DEFAULT)
    cols = ", ".join(f"{props[n]} AS {n}" for n in names)
    sql = (
        "WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env),"
        " b4326 AS (SELECT ST_Transform(env, 4326) AS env FROM b),"
        f" m AS (SELECT {src.id_sql} AS id, {cols},"
        f"  ST_AsMVTGeom(ST_Transform({src.geom_sql}, 3857), b.env, :extent, :buffer, true) AS geom"
        f"  FROM {src.from_sql}, b, b4326 WHERE {src.base_where}"
        f"  AND {src.index_geom_sql} && ST_Expand(b4326.env, 0.0001))"
        " SELECT ST_AsMVT(m.*, :name, :extent, 'geom', 'id') FROM m WHERE m.geom IS NOT NULL")
    with engine.connect() as conn:
        data = conn.execute(text(sql), {"z": z, "x": x, "y": y, "layer": key, "name": key,
                                        "extent": extent_px, "buffer": buffer_px}).scalar()
    return bytes(data) if data else b""


def district_names() -> dict[str, str]:
    """adcode → Chinese name (for labels in exports)."""
    return {code: names[0] for code, names in DISTRICTS.items()}


def has_synthetic(engine: Engine, key: str) -> bool:
    """Whether any feature of the collection is synthetic (so exports can say so)."""
    src = get_source(key)
    sql = f"SELECT EXISTS (SELECT 1 FROM {src.from_sql} WHERE {src.base_where} AND t.synthetic)"
    with engine.connect() as conn:
        return bool(conn.execute(text(sql), {"layer": key}).scalar())
