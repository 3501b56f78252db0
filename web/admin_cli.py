"""``flask admin``: bearer tokens for the admin API, and backup and restore of the database."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from services import editing, ops
from web.database import get_engine

admin_cli = AppGroup("admin", help="Admin API tokens; backup and restore.")

#: Longest label a token may carry (characters).
MAX_LABEL = 100
#: How long a token lives unless ``--expires`` says otherwise, and the longest it may (days).
DEFAULT_EXPIRY_DAYS = 90
MAX_EXPIRY_DAYS = 3650


def expiry(value: str, now: dt.datetime | None = None) -> dt.datetime:
    """``--expires``: ``<n>d`` (days from now) or a date ``YYYY-MM-DD`` (the token works until that day ends,
    UTC), at most :data:`MAX_EXPIRY_DAYS` ahead."""
    now = now or dt.datetime.now(dt.UTC)
    days = re.fullmatch(r"(\d{1,5})d", value.strip())
    try:
        if days:
            when = now + dt.timedelta(days=int(days.group(1)))
        else:
            when = dt.datetime.combine(dt.date.fromisoformat(value.strip()), dt.time.max, dt.UTC)
    except ValueError:
        when = None
    if when is None or not now < when <= now + dt.timedelta(days=MAX_EXPIRY_DAYS):
        raise click.BadParameter(f"was {value[:40]!r} but must be a number of days like 90d or a future date like "
                                 f"2027-06-30, at most {MAX_EXPIRY_DAYS} days ahead", param_hint="--expires")
    return when


@admin_cli.command("create-token")
@click.option("--role", required=True, type=click.Choice(editing.ROLES),
              help="editor may edit; viewer may only read.")
@click.option("--label", default="", help=f"Who holds the token, for administrators (list-tokens, the admin "
                                          f"history; never public); at most {MAX_LABEL} characters.")
@click.option("--expires", default=f"{DEFAULT_EXPIRY_DAYS}d", show_default=True,
              help="When the token stops working: days from now (30d) or a date (2027-06-30, UTC).")
def create_token(role: str, label: str, expires: str) -> None:
    """Create a token and print it once; only its SHA-256 is stored."""
    if len(label) > MAX_LABEL:
        raise click.BadParameter(f"must be at most {MAX_LABEL} characters", param_hint="--label")
    token, secret = editing.create_token(get_engine(), role, label, expires_at=expiry(expires))
    assert token.expires_at is not None
    click.echo(f"token {token.id}: {token.actor} in the public change log, expires {token.expires_at:%Y-%m-%d %H:%M}"
               " UTC; store it now, it is not shown again:", err=True)
    click.echo(secret)


@admin_cli.command("list-tokens")
def list_tokens() -> None:
    """Every token: id, role, public editor id, state, expiry and label (never the secret)."""
    rows = editing.list_tokens(get_engine())
    click.echo("id\trole\teditor id\tstate\tcreated\texpires\tlabel")
    for r in rows:
        expires = f"{r['expires_at']:%Y-%m-%d %H:%M}" if r["expires_at"] else "never"
        click.echo(f"{r['id']}\t{r['role']}\t{r['public_id']}\t{r['state']}\t{r['created_at']:%Y-%m-%d}\t"
                   f"{expires}\t{r['label']}")


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
