"""``flask export LAYER --format FMT -o PATH``: the same exports as ``/export/<layer>.<fmt>``."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from db.export import COLLECTION_KEYS, Query
from etl.export import FORMATS
from layers.districts import DISTRICT_CODES


@click.command("export")
@with_appcontext
@click.argument("layer", type=click.Choice(COLLECTION_KEYS))
@click.option("--format", "fmt", required=True, type=click.Choice(list(FORMATS)), help="File format.")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (a Shapefile is written as a zip).")
@click.option("--district", type=click.Choice(DISTRICT_CODES), default=None, help="Only this district (adcode).")
@click.option("--crs", type=click.Choice(["wgs84", "gcj02"]), default="wgs84", show_default=True,
              help="gcj02: non-standard GeoJSON for AMap front ends (geojson only).")
def export_command(layer: str, fmt: str, output: Path, district: str | None, crs: str):
    """Export LAYER (a facility layer or population) to a file."""
    from etl.export import ExportError, write_export
    from web.database import get_engine

    try:
        n = write_export(get_engine(), layer, fmt, output, Query(district=district), crs=crs)
    except ExportError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    size = output.stat().st_size
    click.echo(f"{layer} → {output} ({fmt}, {size:,} bytes" + (f", {n:,} features)" if n is not None else ")"))
