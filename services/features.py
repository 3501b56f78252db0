"""The feature collections: what each one is, its extent, its items and its schema (OGC API – Features).

Collections are the registry's facility layers, the ``population`` demand
grid, the ``village`` points and the ``roads`` network (:func:`collection_keys`).
Features are GeoJSON texts built by PostGIS, in CRS84 (WGS-84 degrees,
longitude first) unless the caller asks for another CRS
(:mod:`services.ogc_crs`); this module decides which, and the web layer adds
links and renders JSON or HTML. :func:`queryables` and :func:`schema` are
the JSON Schemas of a collection's properties, typed from its declaration.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

from db import features as db_features
from db.features import POPULATION, ROADS, VILLAGE, CollectionSource, FeatureQuery, FeatureShape
from geo.crs import METRIC_EPSG
from layers import LAYERS
from services.errors import NotFound

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "MAX_OFFSET", "POPULATION", "ROADS", "VILLAGE", "CollectionInfo",
           "FeatureQuery", "FeatureShape", "ItemsPage", "collection", "collection_keys", "collections",
           "filter_names", "item", "items", "source", "title"]

#: Most features on one page of items, and the page size when none is asked for.
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100
#: Furthest an items page may start (features skipped).
MAX_OFFSET = 100_000_000
SYNTHETIC_SUFFIX = " SYNTHETIC demo data (合成数据)."


@dataclass(frozen=True)
class CollectionInfo:
    """What a client is told about one collection.

    ``bbox`` is ``[minlon, minlat, maxlon, maxlat]`` in WGS-84 degrees (None
    when the collection is empty); ``date_min``/``date_max`` span the opened
    dates (None for the grid, which has none).
    """

    key: str
    title_zh: str
    title_en: str
    description: str
    bbox: list[float] | None
    date_min: dt.date | None
    date_max: dt.date | None
    synthetic: bool


@dataclass(frozen=True)
class ItemsPage:
    """One page of items: how many match in all, the page's GeoJSON Feature texts, and whether any is synthetic."""

    matched: int
    features: list[str]
    synthetic: bool


#: Titles of the collections that are not facility layers: (Chinese, English).
OTHER_TITLES = {POPULATION: ("人口格网（合成）", "Population grid (synthetic)"), VILLAGE: ("行政村", "Villages"),
                ROADS: ("道路网", "Road network")}


def collection_keys() -> tuple[str, ...]:
    """Every collection key: the registry's layers, then ``population``, ``village`` and ``roads``."""
    return db_features.collection_keys()


def source(key: str) -> CollectionSource:
    """The collection's source; :class:`~services.errors.NotFound` names the collections."""
    if key not in collection_keys():
        raise NotFound(f"collection {key[:40]!r} does not exist; collections: {', '.join(collection_keys())}",
                       parameter="collection", allowed=list(collection_keys()))
    return db_features.source_for(key)


def title(key: str, lang: str = "zh") -> str:
    """Human title of a collection in ``lang`` (``zh`` or ``en``)."""
    if key in OTHER_TITLES:
        return OTHER_TITLES[key][1 if lang == "en" else 0]
    return LAYERS[key].name(lang)


def filter_names(key: str) -> tuple[str, ...]:
    """The property filters (equality) a collection's items take."""
    return tuple(source(key).filters)


def _description(key: str, synthetic: bool) -> str:
    note = SYNTHETIC_SUFFIX if synthetic else ""
    if key == POPULATION:
        return (f"Population demand grid: square cells in EPSG:{METRIC_EPSG}, given in WGS-84, with population "
                "and urban/rural class." + note)
    if key == VILLAGE:
        return "Administrative villages: one point each, with district and population." + note
    if key == ROADS:
        return ("Road network: one line per edge (highway class, name, length in metres, who may use it, "
                "one-way for drivers, driving speed in km/h)." + note)
    layer = LAYERS[key]
    return f"{layer.name_en}. Service standard: {layer.threshold.standard_en}.{note}"


def _info(conn: Connection, key: str) -> CollectionInfo:
    ext = db_features.extent(conn, source(key))
    return CollectionInfo(key=key, title_zh=title(key, "zh"), title_en=title(key, "en"),
                          description=_description(key, ext["synthetic"]), bbox=ext["bbox"],
                          date_min=ext["date_min"], date_max=ext["date_max"], synthetic=ext["synthetic"])


def collections(engine: Engine) -> list[CollectionInfo]:
    """Every collection with its extent, in :func:`collection_keys` order (one connection)."""
    with engine.connect() as conn:
        return [_info(conn, key) for key in collection_keys()]


def collection(engine: Engine, key: str) -> CollectionInfo:
    """One collection with its extent; :class:`~services.errors.NotFound` for an unknown key."""
    source(key)
    with engine.connect() as conn:
        return _info(conn, key)


def items(engine: Engine, key: str, query: FeatureQuery, *, limit: int, offset: int,
          shape: FeatureShape | None = None) -> ItemsPage:
    """A page of a collection's features (ordered by ``shape.sort``, then id), with the number matched.

    The count and the page are read in one repeatable-read transaction, so
    ``matched`` and the page agree even while an edit commits.
    """
    src = source(key)
    with engine.connect() as conn, conn.execution_options(isolation_level="REPEATABLE READ").begin():
        matched = db_features.count(conn, src, query)
        page = db_features.page(conn, src, query, limit=limit, offset=offset, shape=shape)
        synthetic = db_features.has_synthetic(conn, src)
    return ItemsPage(matched=matched, features=page, synthetic=synthetic)


def item(engine: Engine, key: str, feature_id: int, shape: FeatureShape | None = None) -> tuple[str, int | None]:
    """One feature of a collection as GeoJSON text, and its version where it has one (the ETag's number).

    Raises :class:`~services.errors.NotFound` if it is not there.
    """
    src = source(key)
    with engine.connect() as conn:
        found = db_features.feature(conn, src, feature_id, shape)
    if found is None:
        raise NotFound(f"feature {feature_id} does not exist in {key}")
    return found
