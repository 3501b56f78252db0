"""``flask etl zones FILE --set NAME``: load a planner's zones (townships, community grids, planning units).

The command is ``zones_command``; the app registers it in the ``etl`` group.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from etl.zones import DEMO_SET
from services.errors import ServiceError
from services.zones import load_demo_zones, load_zones
from web.database import get_engine


@click.command("zones")
@with_appcontext
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--set", "set_name", default=None, help="Name of the zone set (letters, digits, _ or -).")
@click.option("--crs", default=None, help="CRS of the file when it states none (e.g. EPSG:4548).")
@click.option("--demo", is_flag=True, help=f"Load the demo's synthetic zone set ({DEMO_SET}) instead of a file.")
def zones_command(file: Path | None, set_name: str | None, crs: str | None, demo: bool) -> None:
    """Replace zone set NAME with the polygons in FILE (Shapefile, GeoPackage or GeoJSON), all or nothing.

    Every feature needs a polygon inside the city and a name (columns such as
    name/名称; an id from zone_id/id/code, else its number). Figures by these
    zones: /planner?zones=set:NAME and the API's zones=set:NAME.
    """
    if demo:
        click.echo(f"zone set {DEMO_SET!r}: {load_demo_zones(get_engine())} synthetic zones (labelled 合成); "
                   f"figures by them with zones=set:{DEMO_SET}")
        return
    if file is None or set_name is None:
        click.echo("error: give FILE and --set NAME (or --demo)", err=True)
        sys.exit(2)
    try:
        loaded, rejects = load_zones(get_engine(), file, set_name, crs=crs)
    except ServiceError as exc:
        click.echo(f"error: {file.name}: {exc.message}", err=True)
        sys.exit(2)
    for r in rejects:
        click.echo(f"rejected feature {r.row} (id {r.source_id}): {r.reason}", err=True)
    if rejects:
        click.echo("nothing was written: fix the features above", err=True)
        sys.exit(1)
    click.echo(f"zone set {set_name!r}: {loaded} zones; figures by them with zones=set:{set_name}")
