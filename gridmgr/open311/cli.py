"""``gridmgr open311 ...``: API keys for Open311 clients."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from gridmgr.errors import DomainError
from gridmgr.open311.keys import create_api_key, list_api_keys, revoke_api_key

open311 = AppGroup("open311", help="Open311 GeoReport v2 endpoint.")
keys = AppGroup("keys", help="API keys of Open311 clients.")
open311.add_command(keys)


@keys.command("add")
@click.argument("name")
def add_key(name: str) -> None:
    """Make a key for client NAME and print it (it is shown this once only)."""
    try:
        key = create_api_key(name)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(key)
    click.echo(f"API key of {name!r}: give it to the client now; it is not shown again.",
               err=True)


@keys.command("list")
def list_keys() -> None:
    """List keys by name with their creation and revocation times (never the keys)."""
    for key in list_api_keys():
        state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
        click.echo(f"{key.name}\tcreated {key.created_at.isoformat()}\t{state}")


@keys.command("revoke")
@click.argument("name")
def revoke_key(name: str) -> None:
    """Revoke the key of client NAME."""
    try:
        revoke_api_key(name)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"revoked {name}")
