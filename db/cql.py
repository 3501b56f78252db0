"""A parsed CQL2 filter (pygeofilter's AST) as an SQL predicate with every literal bound.

OGC API – Features Part 3 filters arrive as CQL2 text or JSON; the service
parses them with pygeofilter and hands the tree here. Each node becomes SQL
built only from code: attribute names are looked up in the collection's
declared columns (an unknown one is refused, never pasted), and every
literal (text, number, date, geometry) becomes a bound parameter
``:cqlN``. Operators: comparison (``= <> < <= > >=``, ``LIKE``,
``BETWEEN``, ``IN``, ``IS NULL``), ``AND``/``OR``/``NOT``, ``CASEI``
(``lower``), the spatial ones (``S_INTERSECTS``, ``S_WITHIN``,
``S_CONTAINS``, ``S_DISJOINT``, ``S_EQUALS``, ``S_TOUCHES``, ``S_CROSSES``,
``S_OVERLAPS``, ``BBOX``) and the temporal ones on a date or time property
(``T_AFTER``, ``T_BEFORE``, ``T_DURING``, ``T_EQUALS``, ``T_INTERSECTS``,
``T_DISJOINT``).

Geometry literals are read in the filter's CRS (``filter-crs``: an EPSG
code, axes in that CRS's order) and transformed to WGS-84 by PostGIS, where
the collection's GiST-indexed geometry is compared with them.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import shapely
from pygeofilter import ast, values

#: The name a filter uses for the feature's geometry.
GEOMETRY = "geometry"

_COMPARISON = {ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=",
               ast.GreaterThan: ">", ast.GreaterEqual: ">="}
_SPATIAL = {ast.GeometryIntersects: "ST_Intersects", ast.GeometryWithin: "ST_Within",
            ast.GeometryContains: "ST_Contains", ast.GeometryDisjoint: "ST_Disjoint",
            ast.GeometryEquals: "ST_Equals", ast.GeometryTouches: "ST_Touches",
            ast.GeometryCrosses: "ST_Crosses", ast.GeometryOverlaps: "ST_Overlaps"}
#: Which Python values each declared property type may be compared with.
_ACCEPTS: dict[str, tuple[type, ...]] = {
    "integer": (int, float), "number": (int, float), "string": (str,), "boolean": (bool,),
    "date": (dt.date,), "date-time": (dt.date,)}


class FilterError(ValueError):
    """The filter names something the collection lacks or uses an operator or value this server does not take."""


@dataclass(frozen=True)
class Target:
    """What a filter is evaluated against: the collection's columns, their types and its indexed geometry.

    ``filter_srid``/``filter_flip`` give the CRS of geometry literals (EPSG
    code; whether its first axis is latitude or northing).
    """

    columns: Mapping[str, str]
    types: Mapping[str, str]
    geometry_sql: str
    filter_srid: int = 4326
    filter_flip: bool = False


class _Builder:
    def __init__(self, target: Target, params: dict[str, Any]) -> None:
        self.target = target
        self.params = params

    # ---------------------------------------------------------- leaves
    def bind(self, value: Any) -> str:
        name = f"cql{sum(1 for k in self.params if k.startswith('cql'))}"
        self.params[name] = value
        return f":{name}"

    def attribute(self, node: ast.Attribute) -> str:
        name = node.name
        if name == GEOMETRY:
            return self.target.geometry_sql
        if name not in self.target.columns:
            raise FilterError(f"the filter names {name[:40]!r}, which this collection does not have; queryables: "
                              f"{', '.join([*self.target.columns, GEOMETRY])}")
        return self.target.columns[name]

    def kind(self, node: Any) -> str | None:
        """The declared type of an attribute operand (None for anything else)."""
        if isinstance(node, ast.Attribute) and node.name != GEOMETRY:
            return self.target.types.get(node.name)
        if isinstance(node, ast.Function) and node.name == "lower":
            return "string"
        return None

    def literal(self, value: Any, kind: str | None) -> str:
        if kind is not None and value is not None:
            accepted = _ACCEPTS[kind]
            if isinstance(value, bool) and bool not in accepted or not isinstance(value, accepted):
                raise FilterError(f"a {kind} property was compared with {type(value).__name__} {str(value)[:40]!r}")
        return self.bind(value)

    def operand(self, node: Any, kind: str | None = None) -> str:
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.Function):
            return self.function(node)
        if isinstance(node, values.Geometry):
            return self.geometry(node.geometry)
        if isinstance(node, ast.Node):
            raise FilterError(f"{type(node).__name__} is not supported as a value here")
        return self.literal(node, kind)

    def function(self, node: ast.Function) -> str:
        if node.name == "lower" and len(node.arguments) == 1:  # CASEI
            return f"lower({self.operand(node.arguments[0])})"
        if node.name == "bbox" and len(node.arguments) in (4, 6):
            c = [float(v) for v in node.arguments]
            x1, y1, x2, y2 = (c[0], c[1], c[3], c[4]) if len(c) == 6 else c
            return self.geometry({"type": "Polygon", "coordinates": [
                [[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]]})
        raise FilterError(f"function {node.name[:40]!r} is not supported; supported: CASEI, BBOX")

    def geometry(self, geojson: Mapping[str, Any]) -> str:
        text = json.dumps(geojson)
        try:
            geom = shapely.from_geojson(text)
        except Exception as exc:  # noqa: BLE001 - shapely raises several kinds for bad GeoJSON
            raise FilterError(f"the filter's geometry is not valid GeoJSON: {str(exc)[:80]}") from None
        if geom.is_empty or not geom.is_valid:
            raise FilterError("the filter's geometry is empty or not valid (a ring crosses itself?)")
        literal = f"ST_SetSRID(ST_GeomFromGeoJSON({self.bind(text)}), {self.bind(self.target.filter_srid)})"
        if self.target.filter_flip:
            literal = f"ST_FlipCoordinates({literal})"
        return f"ST_Transform({literal}, 4326)"

    # ---------------------------------------------------------- predicates
    def build(self, node: Any) -> str:
        for cls in type(node).__mro__:
            handler = _HANDLERS.get(cls)
            if handler is not None:
                return handler(self, node)
        raise FilterError(f"{type(node).__name__} is not supported by this server; see the conformance classes")

    def combination(self, node: ast.Combination) -> str:
        return f"({self.build(node.lhs)} {'AND' if isinstance(node, ast.And) else 'OR'} {self.build(node.rhs)})"

    def negation(self, node: ast.Not) -> str:
        return f"(NOT {self.build(node.sub_node)})"

    def comparison(self, node: ast.Comparison) -> str:
        kind = self.kind(node.lhs) or self.kind(node.rhs)
        return f"({self.operand(node.lhs, kind)} {_COMPARISON[type(node)]} {self.operand(node.rhs, kind)})"

    def between(self, node: ast.Between) -> str:
        kind = self.kind(node.lhs)
        sql = f"{self.operand(node.lhs)} BETWEEN {self.literal(node.low, kind)} AND {self.literal(node.high, kind)}"
        return f"(NOT ({sql}))" if node.not_ else f"({sql})"

    def inside(self, node: ast.In) -> str:
        kind = self.kind(node.lhs)
        options = ", ".join(self.literal(v, kind) for v in node.sub_nodes)
        return f"({self.operand(node.lhs)} {'NOT IN' if node.not_ else 'IN'} ({options}))"

    def null(self, node: ast.IsNull) -> str:
        return f"({self.operand(node.lhs)} IS {'NOT ' if node.not_ else ''}NULL)"

    def like(self, node: ast.Like) -> str:
        if self.kind(node.lhs) != "string":
            raise FilterError("LIKE compares text properties only")
        pattern = _sql_pattern(node.pattern, node.wildcard, node.singlechar, node.escapechar)
        op = ("NOT " if node.not_ else "") + ("ILIKE" if node.nocase else "LIKE")
        return f"({self.operand(node.lhs)} {op} {self.bind(pattern)} ESCAPE '\\')"

    def spatial(self, node: ast.SpatialComparisonPredicate) -> str:
        return f"{_SPATIAL[type(node)]}({self.operand(node.lhs)}, {self.operand(node.rhs)})"

    def temporal(self, node: ast.TemporalPredicate) -> str:
        kind = self.kind(node.lhs)
        if kind not in ("date", "date-time"):
            raise FilterError("temporal operators compare a date or time property (e.g. opened_on) with a "
                              "date, a time or an interval")
        column = self.operand(node.lhs)
        rhs = node.rhs
        start, end = (rhs.start, rhs.end) if isinstance(rhs, values.Interval) else (rhs, rhs)
        lo = None if start in (None, "..") else self.literal(start, kind)
        hi = None if end in (None, "..") else self.literal(end, kind)
        return _temporal_sql(type(node), column, lo, hi)


def _temporal_sql(op: type, column: str, lo: str | None, hi: str | None) -> str:
    """An instant property against [lo, hi] (either end open when None)."""
    within = " AND ".join([f"{column} >= {lo}"] * (lo is not None) + [f"{column} <= {hi}"] * (hi is not None))
    within = within or f"{column} IS NOT NULL"
    if op in (ast.TimeDuring, ast.TimeOverlaps, ast.TimeEquals, ast.TimeBeforeOrDuring, ast.TimeDuringOrAfter):
        if op is ast.TimeBeforeOrDuring:
            return f"({column} <= {hi})" if hi else f"({column} IS NOT NULL)"
        if op is ast.TimeDuringOrAfter:
            return f"({column} >= {lo})" if lo else f"({column} IS NOT NULL)"
        return f"({within})"
    if op is ast.TimeAfter and hi is not None:
        return f"({column} > {hi})"
    if op is ast.TimeBefore and lo is not None:
        return f"({column} < {lo})"
    if op is ast.TimeDisjoint:
        return f"({column} IS NOT NULL AND NOT ({within}))"
    raise FilterError(f"{op.__name__} is not supported on a date property; supported: T_AFTER, T_BEFORE, "
                      "T_DURING, T_EQUALS, T_INTERSECTS, T_DISJOINT")


def _sql_pattern(pattern: str, wildcard: str, single: str, escape: str) -> str:
    """A CQL2 LIKE pattern as an SQL one (``%``/``_`` wildcards, ``\\`` escaping everything literal)."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == escape and i + 1 < len(pattern):
            i += 1
            out.append("\\" + pattern[i] if pattern[i] in "%_\\" else pattern[i])
        elif ch == wildcard:
            out.append("%")
        elif ch == single:
            out.append("_")
        else:
            out.append("\\" + ch if ch in "%_\\" else ch)
        i += 1
    return "".join(out)


_HANDLERS: dict[type, Callable[[_Builder, Any], str]] = {
    ast.And: _Builder.combination, ast.Or: _Builder.combination, ast.Not: _Builder.negation,
    ast.Comparison: _Builder.comparison, ast.Between: _Builder.between, ast.In: _Builder.inside,
    ast.IsNull: _Builder.null, ast.Like: _Builder.like, ast.SpatialComparisonPredicate: _Builder.spatial,
    ast.TemporalPredicate: _Builder.temporal, ast.Include: lambda b, n: "FALSE" if n.not_ else "TRUE",
}


def to_sql(node: Any, target: Target, params: dict[str, Any]) -> str:
    """The SQL predicate of a parsed filter; its literals are added to ``params`` as ``:cqlN``.

    Raises
    ------
    FilterError
        An unknown property, an operator this server does not evaluate, a
        literal of the wrong type for its property, or an invalid geometry.
    """
    return _Builder(target, params).build(node)
