"""Flask CLI: ``flask etl load|candidates|demo``, ``flask layers validate``, ``flask db upgrade``, ``flask admin``.

Each command parses its options and calls one function (a use case of
:mod:`services.loading`, :func:`layers.validate_registry` or :func:`db.migrate`),
then prints the result. Another module adds a command to the ``etl`` group
with ``etl_cli.add_command(command)`` before :func:`register_cli` runs.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from db import migrate
from etl.load import LoadResult
from layers import LAYER_KEYS, LAYERS, validate_registry
from services import loading
from services.errors import ServiceError
from web.admin_cli import admin_cli
from web.database import get_engine
from web.export_cli import export_command
from web.roads_cli import roads_command
from web.zones_cli import zones_command

etl_cli = AppGroup("etl", help="Load facility files, candidate sites and the demo city.")
layers_cli = AppGroup("layers", help="The layer registry.")
db_cli = AppGroup("db", help="Database schema.")

#: Bounds of ``flask etl demo`` options.
DEMO_RESOLUTION_M = (20.0, 5000.0)
DEMO_MAX_SCALE = 1000.0
_CRS_HELP = "Source CRS: wgs84, cgcs2000, gcj02, bd09 or EPSG:<code>."


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations."""
    migrate(current_app.config["DATABASE_URL"])
    click.echo("schema is up to date")


@layers_cli.command("validate")
def layers_validate() -> None:
    """Check every layer record; exit 1 on any problem."""
    problems = validate_registry()
    for p in problems:
        click.echo(f"problem: {p}", err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{len(LAYERS)} layers OK: {', '.join(LAYERS)}")


@etl_cli.command("load")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--layer", required=True, type=click.Choice(LAYER_KEYS), help="Layer key.")
@click.option("--crs", default=None, help=_CRS_HELP)
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
@click.option("--report-json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the full report (rejects and accepted positions) here.")
@click.option("--accept-partial", is_flag=True, help="Load the good rows even if some are rejected.")
def etl_load(file: Path, layer: str, crs: str | None, dry_run: bool, report_json: Path | None,
             accept_partial: bool) -> None:
    """Load FILE into LAYER in one transaction (all or nothing)."""
    problem = _unwritable(report_json) if report_json else None
    if problem:
        click.echo(f"error: --report-json {report_json}: {problem}; nothing was loaded", err=True)
        sys.exit(2)
    try:
        result = loading.load_file(get_engine(), file, layer, crs=crs, dry_run=dry_run,
                                   accept_partial=accept_partial, progress=True)
    except ServiceError as exc:
        click.echo(f"error: {file.name}: {exc.message}", err=True)
        sys.exit(2)
    _print_load(file, result)
    if report_json:
        report_json.write_text(json.dumps(result.as_report(), ensure_ascii=False, indent=2), encoding="utf-8")
    sys.exit(1 if result.status == "rejected" else 0)


def _unwritable(path: Path) -> str | None:
    """Why a report cannot be written at ``path`` (checked before any loading), or None."""
    if path.is_dir():
        return "it is a folder"
    if not path.parent.is_dir():
        return f"its folder {str(path.parent)!r} does not exist"
    existed = path.exists()
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        return f"it cannot be written ({exc.strerror})"
    if not existed:
        path.unlink()
    return None


def _print_load(file: Path, result: LoadResult) -> None:
    for note in result.notes:
        click.echo(f"note: {note}")
    for r in result.rejects:
        click.echo(f"rejected row {r.row} (id {r.source_id}): {r.reason}", err=True)
    click.echo(f"{file.name}: {result.status}; accepted {len(result.accepted)}, rejected {len(result.rejects)}, "
               f"inserted {result.inserted}, updated {result.updated}, unchanged {result.unchanged} "
               f"(load run {result.run_id})")
    if result.status == "rejected":
        click.echo("nothing was written: fix the rows above, or pass --accept-partial", err=True)


@etl_cli.command("candidates")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "set_name", required=True, help="Name of the candidate set (letters, digits, _ or -).")
@click.option("--crs", default=None, help=_CRS_HELP)
def etl_candidates(file: Path, set_name: str, crs: str | None) -> None:
    """Load candidate sites for /api/suggest?candidates=set:NAME (replaces the set)."""
    try:
        loaded, rejects = loading.load_candidates(get_engine(), file, set_name, crs=crs)
    except ServiceError as exc:
        click.echo(f"error: {file.name}: {exc.message}", err=True)
        sys.exit(2)
    for r in rejects:
        click.echo(f"rejected row {r.row} (id {r.source_id}): {r.reason}", err=True)
    if rejects:
        click.echo("nothing was written: fix the rows above", err=True)
        sys.exit(1)
    click.echo(f"candidate set {set_name!r}: {loaded} sites; use /api/suggest?candidates=set:{set_name}")


@etl_cli.command("demo")
@click.option("--seed", default=20221, show_default=True, type=int)
@click.option("--resolution", "resolution_m", default=250.0, show_default=True,
              type=click.FloatRange(*DEMO_RESOLUTION_M), help="Population grid cell size in metres (EPSG:4548).")
@click.option("--scale", default=1.0, show_default=True, type=click.FloatRange(0, DEMO_MAX_SCALE, min_open=True),
              help="Multiply facilities and grid density (for benchmarks).")
@click.option("--force", is_flag=True, help="Rebuild even if the same demo is loaded.")
def etl_demo(seed: int, resolution_m: float, scale: float, force: bool) -> None:
    """Load the demo city: real districts and census, synthetic facilities and grid."""
    loading.load_demo(get_engine(), seed=seed, resolution_m=resolution_m, scale=scale, force=force, progress=True,
                      echo=click.echo)


etl_cli.add_command(roads_command)
etl_cli.add_command(zones_command)


def register_cli(app: Flask) -> None:
    """Add the command groups to ``app.cli``."""
    for command in (etl_cli, layers_cli, db_cli, export_command, admin_cli):
        app.cli.add_command(command)
