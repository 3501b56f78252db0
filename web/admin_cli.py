"""``flask admin``: bearer tokens for the admin API, and backup and restore of the database."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from services import editing, ops
from web.database import get_engine

admin_cli = AppGroup("admin", help="Admin API tokens; backup and restore.")

#: Longest label a token may carry (characters).
MAX_LABEL = 100


@admin_cli.command("create-token")
@click.option("--role", required=True, type=click.Choice(editing.ROLES),
              help="editor may edit; viewer may only read.")
@click.option("--label", default="", help=f"Who holds the token (shown in the change log; at most {MAX_LABEL} "
                                          "characters).")
def create_token(role: str, label: str) -> None:
    """Create a token and print it once; only its SHA-256 is stored."""
    if len(label) > MAX_LABEL:
        raise click.BadParameter(f"must be at most {MAX_LABEL} characters", param_hint="--label")
    token, secret = editing.create_token(get_engine(), role, label)
    click.echo(f"{token.actor}; store it now, it is not shown again:", err=True)
    click.echo(secret)


@admin_cli.command("revoke-token")
@click.argument("token_id", type=int)
def revoke_token(token_id: int) -> None:
    """Revoke the token with id TOKEN_ID."""
    if not editing.revoke_token(get_engine(), token_id):
        raise click.ClickException(f"no live token has id {token_id}")
    click.echo(f"token {token_id} revoked")


@admin_cli.command("backup")
@click.option("--dir", "directory", default="var/backups", show_default=True, type=click.Path(file_okay=False,
              path_type=Path), help="Where the dump goes.")
def backup(directory: Path) -> None:
    """Dump the serving database (pg_dump custom format); prints the file's path."""
    click.echo(ops.backup(current_app.config["DATABASE_URL"], directory))


@admin_cli.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--drain-seconds", default=ops.DRAIN_S, show_default=True, type=click.FloatRange(0, 3600),
              help="How long to wait for readers of the old data before leaving it for the next restore.")
def restore(file: Path, drain_seconds: float) -> None:
    """Restore FILE while the app keeps serving: into a fresh database, then switch to it."""
    report = ops.restore(current_app.config["DATABASE_URL"], file, drain_s=drain_seconds,
                         echo=lambda line: click.echo(line, err=True))
    for name in report.kept:
        click.echo(f"kept {name} (still in use, or the home database); the next restore drops a restored one",
                   err=True)
    click.echo(f"restored {file} into {report.serving} in {report.seconds} s")
