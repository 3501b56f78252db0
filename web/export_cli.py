"""``flask export LAYER --format FMT -o PATH``: the same exports as ``/export/<layer>.<fmt>``."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from layers.districts import DISTRICT_CODES
from services import exporting
from services.errors import ServiceError
from services.features import FeatureQuery, collection_keys
from web.database import get_engine


@click.command("export")
@with_appcontext
@click.argument("layer", type=click.Choice(collection_keys()))
@click.option("--format", "fmt", required=True, type=click.Choice(list(exporting.FORMATS)), help="File format.")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (a Shapefile is written as a zip).")
@click.option("--district", type=click.Choice(DISTRICT_CODES), default=None, help="Only this district (adcode).")
@click.option("--crs", type=click.Choice(exporting.CRS_CHOICES), default="wgs84", show_default=True,
              help="gcj02: non-standard GeoJSON for AMap front ends (geojson only).")
def export_command(layer: str, fmt: str, output: Path, district: str | None, crs: str) -> None:
    """Export LAYER (a facility layer or population) to a file."""
    try:
        n = exporting.write_file(get_engine(), layer, fmt, output, FeatureQuery(district=district), crs=crs)
    except ServiceError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    size = output.stat().st_size
    click.echo(f"{layer} → {output} ({fmt}, {size:,} bytes" + (f", {n:,} features)" if n is not None else ")"))
