"""Flask CLI: ``flask etl load|demo``, ``flask layers validate``, ``flask db upgrade``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from layers import LAYER_KEYS

etl_cli = AppGroup("etl", help="Load facility files and the demo city.")
layers_cli = AppGroup("layers", help="The layer registry.")
db_cli = AppGroup("db", help="Database schema.")


def _engine():
    from web.database import get_engine

    return get_engine()


@db_cli.command("upgrade")
def db_upgrade():
    """Apply migrations."""
    from flask import current_app

    from db import migrate

    migrate(current_app.config["DATABASE_URL"])
    click.echo("schema is up to date")


@layers_cli.command("validate")
def layers_validate():
    """Check every layer record; exit 1 on any problem."""
    from layers import LAYERS, validate_registry

    problems = validate_registry()
    for p in problems:
        click.echo(f"problem: {p}", err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{len(LAYERS)} layers OK: {', '.join(LAYERS)}")


@etl_cli.command("load")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--layer", required=True, type=click.Choice(LAYER_KEYS), help="Layer key.")
@click.option("--crs", default=None, help="Source CRS: wgs84, cgcs2000, gcj02, bd09 or EPSG:<code>.")
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
@click.option("--report-json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the full report (rejects and accepted positions) here.")
@click.option("--accept-partial", is_flag=True, help="Load the good rows even if some are rejected.")
def etl_load(file: Path, layer: str, crs: str | None, dry_run: bool, report_json: Path | None,
             accept_partial: bool):
    """Load FILE into LAYER in one transaction (all or nothing)."""
    from etl.errors import ETLError
    from etl.load import load_file
    from geo.errors import CRSError

    try:
        result = load_file(_engine(), file, layer, crs=crs, dry_run=dry_run, accept_partial=accept_partial,
                           progress=True)
    except (ETLError, CRSError) as exc:
        click.echo(f"error: {file.name}: {exc}", err=True)
        sys.exit(2)
    report = result.as_report()
    for note in result.notes:
        click.echo(f"note: {note}")
    for r in result.rejects:
        click.echo(f"rejected row {r.row} (id {r.source_id}): {r.reason}", err=True)
    click.echo(f"{file.name}: {result.status}; accepted {len(result.accepted)}, rejected {len(result.rejects)}, "
               f"inserted {result.inserted}, updated {result.updated}, unchanged {result.unchanged} "
               f"(load run {result.run_id})")
    if result.status == "rejected":
        click.echo("nothing was written: fix the rows above, or pass --accept-partial", err=True)
    if report_json:
        report_json.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    sys.exit(1 if result.status == "rejected" else 0)


@etl_cli.command("candidates")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "set_name", required=True, help="Name of the candidate set (letters, digits, _ or -).")
@click.option("--crs", default=None, help="Source CRS: wgs84, cgcs2000, gcj02, bd09 or EPSG:<code>.")
def etl_candidates(file: Path, set_name: str, crs: str | None):
    """Load candidate sites for /api/suggest?candidates=set:NAME (replaces the set)."""
    from etl.candidates import load_candidates
    from etl.errors import ETLError
    from geo.errors import CRSError

    try:
        loaded, rejects = load_candidates(_engine(), file, set_name, crs=crs)
    except (ETLError, CRSError) as exc:
        click.echo(f"error: {file.name}: {exc}", err=True)
        sys.exit(2)
    for r in rejects:
        click.echo(f"rejected row {r.row} (id {r.source_id}): {r.reason}", err=True)
    if rejects:
        click.echo("nothing was written: fix the rows above", err=True)
        sys.exit(1)
    click.echo(f"candidate set {set_name!r}: {loaded} sites; use /api/suggest?candidates=set:{set_name}")


@etl_cli.command("demo")
@click.option("--seed", default=20221, show_default=True, type=int)
@click.option("--resolution", "resolution_m", default=250.0, show_default=True, type=float,
              help="Population grid cell size in metres.")
@click.option("--scale", default=1.0, show_default=True, type=float,
              help="Multiply facilities and grid density (for benchmarks).")
@click.option("--force", is_flag=True, help="Rebuild even if the same demo is loaded.")
def etl_demo(seed: int, resolution_m: float, scale: float, force: bool):
    """Load the demo city: real districts and census, synthetic facilities and grid."""
    from etl.demo import load_demo

    if resolution_m < 20 or resolution_m > 5000:
        raise click.BadParameter("must be from 20 to 5000 metres", param_hint="--resolution")
    if scale <= 0 or scale > 1000:
        raise click.BadParameter("must be above 0 and at most 1000", param_hint="--scale")
    load_demo(_engine(), seed=seed, resolution_m=resolution_m, scale=scale, force=force, progress=True,
              echo=click.echo)


def register_cli(app: Flask) -> None:
    app.cli.add_command(etl_cli)
    app.cli.add_command(layers_cli)
    app.cli.add_command(db_cli)
    app.cli.add_command(__import__("web.export_cli", fromlist=["export_command"]).export_command)
    from web.admin_cli import admin_cli

    app.cli.add_command(admin_cli)
