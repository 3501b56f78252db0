"""``flask admin create-token|revoke-token``: bearer tokens for the admin API."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from db.admin import ROLES

admin_cli = AppGroup("admin", help="Admin API tokens.")


@admin_cli.command("create-token")
@click.option("--role", required=True, type=click.Choice(ROLES), help="editor may edit; viewer may only read.")
@click.option("--label", default="", help="Who holds the token (shown in the change log).")
def create_token(role: str, label: str):
    """Create a token and print it once; only its SHA-256 is stored."""
    from db.admin import create_token as make
    from web.database import get_engine

    if len(label) > 100:
        raise click.BadParameter("must be at most 100 characters", param_hint="--label")
    token, secret = make(get_engine(), role, label)
    click.echo(f"token {token.id} ({token.role}{': ' + token.label if token.label else ''}); "
               "store it now, it is not shown again:", err=True)
    click.echo(secret)


@admin_cli.command("revoke-token")
@click.argument("token_id", type=int)
def revoke_token(token_id: int):
    """Revoke the token with id TOKEN_ID."""
    from db.admin import revoke_token as revoke
    from web.database import get_engine

    if not revoke(get_engine(), token_id):
        raise click.ClickException(f"no live token has id {token_id}")
    click.echo(f"token {token_id} revoked")
