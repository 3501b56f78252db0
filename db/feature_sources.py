"""What each feature collection is made of: SQL fragments declared once, in code, never from a request.

A collection is a facility layer (its record in :mod:`layers` says where it
is stored: ``table``, ``id_field``, ``geometry_field``, ``capacity_field``),
the ``population`` demand grid, the ``village`` points or the ``roads``
network (``road_edge``), each declared here next to its columns. Every one
is read through a :class:`CollectionSource`; :mod:`db.features` builds the
queries from it and binds every request value.

Geometry is WGS-84 (EPSG:4326) throughout, polygons with their outer rings
counter-clockwise (RFC 7946's right-hand rule, ``ST_ForcePolygonCCW``) and
one geometry type per collection in every format (facility polygons are
always MultiPolygon). Population cells are squares of ``resolution_m``
metres drawn in the metric CRS (``geo.crs.METRIC_EPSG``) and given in WGS-84.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from layers import LAYERS
from layers.model import Layer

#: The demand grid's collection key (not a facility layer).
POPULATION = "population"
#: The administrative villages (issue 11: planners check per-village counts against them).
VILLAGE = "village"
#: The road network the walking and driving distances run on.
ROADS = "roads"
#: Property types a source may declare (as JSON Schema names them; ``date`` and ``date-time`` are formats).
PROPERTY_TYPES = ("integer", "number", "boolean", "string", "date", "date-time")


@dataclass(frozen=True)
class CollectionSource:
    """How to read one collection: SQL fragments fixed in code, never from a request.

    Attributes
    ----------
    key : str
        Collection key (a layer key, ``population``, ``village`` or ``roads``).
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
        GiST-indexed column (EPSG:4326) used for bbox, spatial filters and tiles.
    props : tuple of (name, sql)
        Output property names and their expressions, in column order.
    types : mapping
        Property name → one of :data:`PROPERTY_TYPES` (every property has one).
    filters : mapping
        Simple property filters: query name → column expression (equality).
    tile_props : tuple of str
        The properties a vector tile carries (kept small: the full record is one click away).
    geometry_type : str
        The one geometry type of the collection: ``Point``, ``MultiPolygon``, ``Polygon`` or ``LineString``.
    updated_sql, date_sql : str or None
        Columns behind ``updated_since`` and the opened-date (OGC ``datetime``) filter.
    version_sql : str or None
        The row version behind a feature's ETag (editable collections).
    editable : bool
        Whether OGC API – Features Part 4 may create, replace, update and delete its features.
    tile_sum_sql : str or None
        At low zoom a tile merges features into squares summing this expression (the grid's people).
    tile_point_below_zoom : int or None
        Below this zoom a tile draws each feature's ``point_sql`` (polygons too small to see).
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
    version_sql: str | None = None
    editable: bool = False
    tile_sum_sql: str | None = None
    tile_point_below_zoom: int | None = None

    def __post_init__(self) -> None:
        untyped = [name for name, _ in self.props if self.types.get(name) not in PROPERTY_TYPES]
        if untyped:
            raise ValueError(f"collection {self.key}: properties {untyped} need a type from {PROPERTY_TYPES}")

    @property
    def prop_names(self) -> list[str]:
        return [name for name, _ in self.props]

    @property
    def columns(self) -> dict[str, str]:
        """Property name → its SQL expression."""
        return dict(self.props)


def _ident(name: str) -> str:
    """A table or column name from the registry, checked to be a plain SQL identifier."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"{name!r} is not a plain SQL identifier (lower-case letters, digits, underscores)")
    return name


#: Zoom below which facility polygons (parks) are drawn as their points in tiles (a park is under a pixel).
POLYGON_POINT_BELOW_ZOOM = 12


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
    column = t + _ident(layer.geometry_field)
    polygon = layer.geometry_kind == "polygon"
    types = {name: "string" for name, _ in props}
    types.update(id="integer", capacity="integer", synthetic="boolean", opened_on="date", updated_at="date-time")
    return CollectionSource(
        key=layer.key,
        from_sql=f"{_ident(layer.table)} t LEFT JOIN district d ON d.adcode = t.district_adcode",
        base_where="t.layer = :layer AND t.status = 'active'",
        id_sql=t + _ident(layer.id_field),
        geom_sql=f"ST_ForcePolygonCCW(ST_Multi({column}))" if polygon else column,
        point_sql="t.point", index_geom_sql=column, props=props, types=types,
        filters={"district": "t.district_adcode", "kind": "t.kind", "name": "t.name",
                 "source_id": "t.source_id", "status": "t.status"},
        tile_props=("name", "kind", "capacity", "district", "synthetic"),
        geometry_type="MultiPolygon" if polygon else "Point",
        updated_sql="t.updated_at", date_sql="t.opened_on", version_sql="t.version", editable=True,
        tile_point_below_zoom=POLYGON_POINT_BELOW_ZOOM if polygon else None,
    )


#: The cell square: centre (x_m, y_m) ± resolution_m / 2 in the metric CRS, as WGS-84, counter-clockwise.
_CELL_SQUARE = ("ST_ForcePolygonCCW(ST_Transform(ST_MakeEnvelope(t.x_m - t.resolution_m / 2,"
                " t.y_m - t.resolution_m / 2, t.x_m + t.resolution_m / 2, t.y_m + t.resolution_m / 2,"
                " :metric_srid), 4326))")
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
    types={"id": "integer", "cell_id": "string", "population": "integer", "district": "string",
           "district_name": "string", "class": "string", "resolution_m": "number", "synthetic": "boolean"},
    filters={"district": "t.district_adcode", "cell_id": "t.cell_id", "class": _CELL_CLASS},
    tile_props=("cell_id", "population", "class", "district"),
    geometry_type="Polygon", tile_sum_sql="t.population",
)

#: The administrative villages: one point each, with its district and people.
VILLAGE_SOURCE = CollectionSource(
    key=VILLAGE,
    from_sql="village t LEFT JOIN district d ON d.adcode = t.district_adcode",
    base_where="TRUE",
    id_sql="t.id", geom_sql="t.geom", point_sql="t.geom", index_geom_sql="t.geom",
    props=(("id", "t.id"), ("village_id", "t.village_id"), ("name", "t.name"), ("district", "t.district_adcode"),
           ("district_name", "d.name_zh"), ("population", "t.population"), ("synthetic", "t.synthetic")),
    types={"id": "integer", "village_id": "string", "name": "string", "district": "string",
           "district_name": "string", "population": "integer", "synthetic": "boolean"},
    filters={"district": "t.district_adcode", "name": "t.name"},
    tile_props=("name", "population", "district"),
    geometry_type="Point",
)

#: One-way for drivers: driving is allowed in exactly one direction (pgRouting's negative cost).
_ONEWAY = "(t.drive AND ((t.cost < 0) <> (t.reverse_cost < 0)))"

#: The road network: one line per edge of ``road_edge`` (WGS-84, drawn from source to target).
ROADS_SOURCE = CollectionSource(
    key=ROADS,
    from_sql="road_edge t",
    base_where="TRUE",
    id_sql="t.id", geom_sql="t.geom", point_sql="ST_LineInterpolatePoint(t.geom, 0.5)", index_geom_sql="t.geom",
    props=(("id", "t.id"), ("osm_way_id", "t.osm_way_id"), ("highway", "t.highway"), ("name", "t.name"),
           ("length_m", "t.length_m"), ("walk", "t.walk"), ("drive", "t.drive"), ("oneway", _ONEWAY),
           ("drive_speed_kmh", "t.drive_speed_kmh"), ("synthetic", "t.synthetic")),
    types={"id": "integer", "osm_way_id": "integer", "highway": "string", "name": "string", "length_m": "number",
           "walk": "boolean", "drive": "boolean", "oneway": "boolean", "drive_speed_kmh": "number",
           "synthetic": "boolean"},
    filters={"highway": "t.highway", "name": "t.name"},
    tile_props=("highway", "name", "oneway"),
    geometry_type="LineString",
)

#: The collections that are not facility layers, in the order they are listed after the layers.
OTHER_SOURCES: dict[str, CollectionSource] = {s.key: s for s in (POPULATION_SOURCE, VILLAGE_SOURCE, ROADS_SOURCE)}


def collection_keys() -> tuple[str, ...]:
    """Every collection: the registry's layers, then ``population``, ``village`` and ``roads``."""
    return (*LAYERS, *OTHER_SOURCES)


def source_for(key: str) -> CollectionSource:
    """The :class:`CollectionSource` of ``key``; ``KeyError`` names the allowed keys."""
    if key in OTHER_SOURCES:
        return OTHER_SOURCES[key]
    layer = LAYERS.get(key)
    if layer is None:
        raise KeyError(f"collection was {key!r} but is expected to be one of {', '.join(collection_keys())}")
    return facility_source(layer)
