"""``flask admin create-token|revoke-token``: bearer tokens for the admin API."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from services import editing
from web.database import get_engine

admin_cli = AppGroup("admin", help="Admin API tokens.")

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
