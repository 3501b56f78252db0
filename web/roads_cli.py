"""``flask etl roads FILE``: import an OpenStreetMap road network (``.osm.pbf`` or ``.osm``), all or nothing.

The command is ``roads_command``; the app registers it in the ``etl`` group.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from services.errors import ServiceError
from services.roads import import_roads
from web.database import get_engine


@click.command("roads")
@with_appcontext
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--report-json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the import report here as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def roads_command(file: Path, report_json: Path | None, quiet: bool) -> None:
    """Replace the road network with the one in FILE (an OpenStreetMap extract, e.g. clipped with osmium).

    Ways are split into edges at every node two or more ways share; lengths are
    geodesic metres; walking and driving rules come from the highway and access
    tags. One transaction: a file that cannot be read leaves the old network.
    """
    try:
        report = import_roads(get_engine(), file, progress=not quiet)
    except ServiceError as exc:
        click.echo(f"error: {exc.message}", err=True)
        click.echo("the road network in the database was not changed", err=True)
        sys.exit(2)
    for line in report.lines():
        click.echo(line)
    if report_json:
        report_json.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
