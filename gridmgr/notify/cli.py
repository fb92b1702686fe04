"""``gridmgr notify ...``: messages given up, and sending them again."""

from __future__ import annotations

import click
from flask.cli import AppGroup

notify = AppGroup("notify", help="Notifications: what was given up, and sending it again.")


@notify.command("failures")
@click.option("--limit", type=int, default=100, show_default=True)
def failures_command(limit: int) -> None:
    """List the messages given up, newest first."""
    from gridmgr.notify.engine import failures

    rows = failures(limit)
    for row in rows:
        click.echo(f"{row['id']:>7}  {row['channel']:<7} {row['kind']:<16} "
                   f"{row['case_code'] or '-':<16} {row['address']}  after {row['attempts']} "
                   f"attempts: {row['last_error']}")
    if not rows:
        click.echo("no messages given up")


@notify.command("resend")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Every message given up.")
def resend_command(ids: tuple[int, ...], every: bool) -> None:
    """Send the given-up messages IDS (or --all) again."""
    from gridmgr.notify.engine import resend

    if not ids and not every:
        raise click.UsageError("Name the messages to send again, or --all.")
    click.echo(f"{resend(None if every else list(ids))} message(s) will be sent again")


@notify.command("run")
def run_command() -> None:
    """Fan out the outbox and deliver what is due, once (``gridmgr worker`` does it always)."""
    from gridmgr.notify.engine import run_once

    click.echo(f"{run_once()} event(s) and message(s) handled")
