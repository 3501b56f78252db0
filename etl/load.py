"""Load facility records into PostGIS: one transaction per file, all or nothing.

``load_file`` = read → normalise → validate → assign districts → write. A file
with any rejected row writes nothing unless ``accept_partial`` is set; either
way the load run and every reject (row number, id, reason) are stored.
Re-loading the same file changes nothing: the upsert only touches rows whose
source record differs from what the source said last time (``source_hash``),
so an editor's correction or retirement stands until the source changes.

A load that writes a large share of its layer is written to a fresh
partition, indexed once and swapped in (:mod:`db.rebuild`); either way the
rows come out the same. Such a load commits its fresh table before the swap,
so that several connections can index it at once; until the swap commits,
readers see the old rows, and a failure drops the fresh table. A load stopped part-way (a refusal
deep in the file, a lost connection) writes nothing and leaves a ``failed``
load run.

The steps are here; their SQL (staging COPY, the upsert, the rebuild, load
runs, the per-layer lock) is :mod:`db.loading`. Each load takes a connection that is
not in a transaction and runs its own transaction on it; the use cases that
open the connection are in :mod:`services.loading`.
"""
from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection
from tqdm import tqdm

from db import loading as db_loading
from db import partitions
from db import rebuild as db_rebuild
from etl.duplicates import collapse_repeats
from etl.errors import ETLError, Reject
from etl.normalise import normalise, without_gc
from etl.read import iter_source
from etl.staging import AcceptedRows, staging_copy
from etl.validate import validate
from layers import get_layer

#: Most distinct notes a load report keeps.
MAX_NOTES = 200


@dataclass
class LoadResult:
    """What a load did; ``as_report()`` is the JSON report."""

    layer: str
    source_name: str
    sha256: str
    crs: str | None
    status: str = "running"
    run_id: int | None = None
    accepted: AcceptedRows = field(default_factory=AcceptedRows)
    rejects: list[Reject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_report(self) -> dict[str, Any]:
        return {
            "layer": self.layer, "source": self.source_name, "sha256": self.sha256, "crs": self.crs,
            "status": self.status, "load_run_id": self.run_id, "columns": self.columns, "notes": self.notes,
            "accepted": len(self.accepted), "rejected": len(self.rejects),
            "inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged,
            "rejects": [r.as_dict() for r in self.rejects],
            "accepted_rows": self.accepted.as_dicts(),
        }


def file_sha256(path: Path) -> str:
    """Hash of a file and, for a shapefile, its sidecars."""
    digest = hashlib.sha256()
    paths = [path]
    if path.suffix.lower() == ".shp":
        paths += sorted(p for p in path.parent.glob(path.stem + ".*") if p != path)
    for p in paths:
        digest.update(p.read_bytes())
    return digest.hexdigest()


def city_and_districts(conn: Connection) -> tuple[BaseGeometry, list[str], np.ndarray]:
    """The city polygon, the district codes and the district polygons (WGS-84) from the database.

    Raises
    ------
    ETLError
        When no districts are loaded yet.
    """
    rows = db_loading.district_polygons(conn)
    if not rows:
        raise ETLError("no districts in the database: run `flask etl demo` first")
    codes = [code for code, _ in rows]
    polys = shapely.from_wkb([wkb for _, wkb in rows])
    return shapely.union_all(polys), codes, polys


def assign_districts(points: np.ndarray, codes: list[str], polys: np.ndarray) -> np.ndarray:
    """District code of each point (``None`` outside all), by point-in-polygon."""
    out = np.full(len(points), None, dtype=object)
    if len(points) == 0:
        return out
    xs = shapely.get_x(points)
    ys = shapely.get_y(points)
    for code, poly in zip(codes, polys, strict=True):
        shapely.prepare(poly)
        inside = shapely.contains_xy(poly, xs, ys) & (out == None)  # noqa: E711
        out[inside] = code
    return out


def load_file(conn: Connection, path: str | Path, layer: str, *, crs: str | None = None, dry_run: bool = False,
              accept_partial: bool = False, actor: str = "etl", progress: bool = False,
              chunk_rows: int = 100_000) -> LoadResult:
    """Load one file into ``layer`` on ``conn``; see the module docstring for the rules.

    Large CSV files are read, checked and staged ``chunk_rows`` rows at a
    time inside the one transaction, so memory stays bounded.

    Raises
    ------
    ETLError, CRSError
        When the file cannot be read at all (nothing is written, no run
        recorded), or is refused part-way through (nothing is written; a
        ``failed`` run names why).
    LoadInterrupted
        When the database connection is lost during the load.
    """
    get_layer(layer)
    path = Path(path)
    if not path.exists():
        raise ETLError(f"file {str(path)!r} does not exist")
    chunks = iter_source(path, chunk_rows)
    first = next(chunks)  # an unreadable file fails here, before the database is touched
    result = LoadResult(layer=layer, source_name=path.name, sha256=file_sha256(path), crs=None)
    first_norm = normalise(first, layer, crs=crs)  # so is a file with no CRS or no coordinate columns

    def batches() -> Iterator[list[dict[str, Any]]]:
        norm = first_norm
        result.crs, result.columns = norm.crs, dict(norm.columns)
        while True:
            _add_notes(result, norm.notes)
            result.rejects += norm.rejects
            yield norm.records
            raw = next(chunks, None)
            if raw is None:
                return
            norm = normalise(raw, layer, crs=crs)

    return _load(conn, batches(), result, dry_run=dry_run, accept_partial=accept_partial, actor=actor,
                 progress=progress)


def load_records(conn: Connection, records: list[dict[str, Any]], result: LoadResult, *, dry_run: bool = False,
                 accept_partial: bool = False, actor: str = "etl", progress: bool = False,
                 synthetic: bool = False) -> LoadResult:
    """Validate ``records`` (normalised, WGS-84) and write them in one transaction on ``conn``."""
    return _load(conn, [records], result, dry_run=dry_run, accept_partial=accept_partial, actor=actor,
                 progress=progress, synthetic=synthetic)


def _add_notes(result: LoadResult, notes: list[str]) -> None:
    for note in notes:
        if note in result.notes:
            continue
        if len(result.notes) == MAX_NOTES:
            result.notes.append("… more notes left out")
        if len(result.notes) <= MAX_NOTES:
            result.notes.append(note)


class LoadInterrupted(Exception):
    """The database connection was lost in the middle of a load: nothing was written.

    ``result`` is what the load knew (status ``failed``); the caller records
    it with :func:`record_failed_run` on a new connection, when it can.
    """

    def __init__(self, result: LoadResult, reason: str) -> None:
        self.result = result
        self.reason = reason
        super().__init__(reason)


def record_failed_run(conn: Connection, result: LoadResult, reason: str) -> int:
    """Store ``result`` as a ``failed`` load run whose last note is ``reason``; returns the run id."""
    result.status = "failed"
    _add_notes(result, [reason])
    with conn.begin():
        result.run_id = db_loading.insert_run(conn, _run_row(result), [])
    return result.run_id


def _load(conn: Connection, batches: Iterable[list[dict[str, Any]]], result: LoadResult, *, dry_run: bool,
          accept_partial: bool, actor: str, progress: bool, synthetic: bool = False) -> LoadResult:
    """Lock the layer, validate and stage each batch with COPY, then write (in place, or a full
    reload in a fresh partition) or, for a dry run or rejects without ``accept_partial``, record why
    nothing was written (:func:`_load_in_transaction`).

    A file refused part-way (a cell past a cap, a malformed line in a later
    piece) writes nothing and leaves a ``failed`` run naming why, then the
    :class:`ETLError` goes on; a lost connection raises :class:`LoadInterrupted`.
    """
    bar = tqdm(desc=f"loading {result.layer}", unit=" rows", disable=None) if progress else None
    try:
        if not dry_run:
            db_loading.give_new_layer_its_partition(conn, result.layer)
        return _load_in_transaction(conn, batches, result, dry_run=dry_run, accept_partial=accept_partial,
                                    actor=actor, bar=bar, synthetic=synthetic)
    except ETLError as exc:
        if conn.in_transaction() or conn.invalidated:
            raise
        record_failed_run(conn, result, f"refused part-way through the file: {exc}")
        raise
    except Exception as exc:
        if db_loading.connection_lost(conn, exc):
            result.status = "failed"
            raise LoadInterrupted(result, _first_line(exc)) from exc
        raise
    finally:
        if bar is not None:
            bar.close()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _load_in_transaction(conn: Connection, batches: Iterable[list[dict[str, Any]]], result: LoadResult, *,
                         dry_run: bool, accept_partial: bool, actor: str, bar: tqdm | None,
                         synthetic: bool) -> LoadResult:
    """The load's transaction: lock the layer, stage, then upsert in place and commit; or (a full
    reload) fill the fresh table and commit, index it, and swap it in in a second transaction; or (a
    dry run, or rejects without ``accept_partial``) roll back and record why in a transaction of its own.
    A full reload that stops after its first commit drops its fresh table (:func:`db.rebuild.release`).
    """
    fresh_run: int | None = None  # the run id of a full reload, once its fresh table is filled
    rebuilding = False  # from the moment a full reload takes its session-level locks
    try:
        with conn.begin() as trans:
            # Two loads of one layer never interleave: the second waits for the first.
            db_loading.lock_layer(conn, result.layer)
            _stage_all(conn, batches, result, synthetic, bar)
            if dry_run or (result.rejects and not accept_partial):
                result.status = "dry_run" if dry_run else "rejected"
                trans.rollback()
            else:
                result.status = "partial" if result.rejects else "loaded"
                if not db_rebuild.worth_rebuilding(conn, result.layer):
                    _upsert(conn, result, actor)
                    return result
                rebuilding = True
                fresh_run = _fill_fresh(conn, result)
        if fresh_run is not None:
            _index_and_swap(conn, result, actor, fresh_run)
            return result
        with conn.begin():
            result.run_id = db_loading.insert_run(conn, _run_row(result), _reject_rows(result))
        return result
    finally:
        if rebuilding:
            db_rebuild.release(conn, result.layer)


def _stage_all(conn: Connection, batches: Iterable[list[dict[str, Any]]], result: LoadResult, synthetic: bool,
               bar: tqdm | None) -> None:
    """Validate and stage every batch, then settle ids repeated across pieces; rejects in row order."""
    city, codes, polys = city_and_districts(conn)
    db_loading.create_staging(conn)
    pieces = 0
    conflicts: dict[str, str] = {}
    # a piece is millions of small objects: the cyclic GC would rescan them all
    with without_gc(), db_loading.CopyBehind(conn, "staging", db_loading.STAGING_COLUMNS) as copy:
        for records in batches:  # the next piece is read and checked while the server parses the last
            pieces += 1
            _stage(copy, records, result, city, codes, polys, synthetic, conflicts)
            if bar is not None:
                bar.update(len(records))
            del records
            gc.collect(0)  # what the piece left in cycles, once per piece instead of every 700 objects
    if pieces > 1:
        _repeats_across_pieces(conn, result, conflicts)
    result.rejects.sort(key=lambda r: (r.row is None, r.row))


def _fill_fresh(conn: Connection, result: LoadResult) -> int:
    """In the load's transaction: hold the layer past its commit, reserve the run's id, and write the
    layer as it will be into its fresh table (:func:`db.rebuild.fill_fresh`). Returns the run's id."""
    db_rebuild.hold(conn, result.layer)
    run_id = db_rebuild.reserve_run_id(conn)
    result.inserted, result.updated = db_rebuild.fill_fresh(conn, result.layer, run_id)
    result.unchanged = len(result.accepted) - result.inserted - result.updated
    return run_id


def _index_and_swap(conn: Connection, result: LoadResult, actor: str, run_id: int) -> None:
    """After the fresh table is committed: index it on several connections at once, then in one
    transaction record run ``run_id``, log the updates and swap the table in for the layer's rows."""
    partitions.index_fresh(conn, result.layer)
    with conn.begin():
        result.run_id = db_loading.insert_run(conn, _run_row(result), _reject_rows(result), run_id=run_id)
        db_rebuild.log_updates(conn, result.layer, run_id, actor)
        partitions.swap_in(conn, result.layer)


def _stage(copy: db_loading.CopyBehind, records: list[dict[str, Any]], result: LoadResult, city: BaseGeometry,
           codes: list[str], polys: np.ndarray, synthetic: bool, conflicts: dict[str, str]) -> None:
    """Validate one batch, assign districts, and COPY what is accepted into ``staging``.

    Source ids found in conflict within the batch go into ``conflicts``
    (id -> reason), so rows with those ids in other batches are refused too.
    """
    checked = validate(records, result.layer, city)
    conflicts.update(checked.conflicts)
    _add_notes(result, checked.notes)
    result.rejects += checked.rejects
    accepted = checked.accepted
    points = np.empty(len(accepted), dtype=object)
    points[:] = [r["point"] for r in accepted]
    districts = assign_districts(points, codes, polys)
    result.accepted.add(accepted, points, districts)
    if accepted:
        copy.rows(staging_copy(accepted, points, districts, synthetic))


def _run_row(result: LoadResult) -> dict[str, Any]:
    return {"layer": result.layer, "source": result.source_name, "sha256": result.sha256, "crs": result.crs,
            "status": result.status, "accepted": len(result.accepted), "rejected": len(result.rejects),
            "inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged,
            "notes": result.notes}


def _reject_rows(result: LoadResult) -> list[dict[str, Any]]:
    return [{"row": r.row, "source_id": r.source_id, "reason": r.reason} for r in result.rejects]


def _repeats_across_pieces(conn: Connection, result: LoadResult, conflicts: dict[str, str]) -> None:
    """A file read in pieces: the rows of a source id staged from more than one piece are collapsed
    or rejected by the rule that holds within one piece (:func:`etl.validate.collapse_repeats`: a
    repeat loads once; another name or place is refused; the same name and place with other values
    refuses every row of the id). A staged row whose id was found in conflict within another piece
    is refused with that conflict."""
    in_conflict = set()
    for r in db_loading.staged_rows_of(conn, sorted(conflicts)):
        in_conflict.add(r["row_number"])
        result.rejects.append(Reject(r["row_number"], r["source_id"], conflicts[r["source_id"]]))
    repeated = set()
    for rows in db_loading.staged_repeats(conn).values():
        if rows[0]["source_id"] in conflicts:
            continue
        records = [_staged_record(r) for r in rows]
        kept, rejects, notes = collapse_repeats(records)
        _add_notes(result, notes)
        result.rejects += rejects
        repeated |= {r["row"] for r in records} - {r["row"] for r in kept}
    dropped = in_conflict | repeated
    if dropped:
        db_loading.drop_staged(conn, sorted(dropped))
        result.accepted.drop(dropped)


def _staged_record(row: dict[str, Any]) -> dict[str, Any]:
    """A staged row as the record :func:`etl.validate.collapse_repeats` compares."""
    return {"row": row["row_number"], "source_id": row["source_id"], "name": row["name"],
            "point": shapely.Point(row["lon"], row["lat"]), "address": row["address"], "phone": row["phone"],
            "opening_hours": row["opening_hours"], "capacity": row["capacity"], "opened_on": row["opened_on"],
            "kind": row["kind"], "attrs": row["attrs"] or {}}


def _upsert(conn: Connection, result: LoadResult, actor: str) -> None:
    """Within the load's transaction: record the run, upsert the staged rows in place, log updates."""
    result.run_id = db_loading.insert_run(conn, _run_row(result), _reject_rows(result))
    result.inserted, result.updated = db_loading.upsert_staged(conn, result.layer, result.run_id, actor)
    result.unchanged = len(result.accepted) - result.inserted - result.updated
    db_loading.set_run_counts(conn, result.run_id, inserted=result.inserted, updated=result.updated,
                              unchanged=result.unchanged)
