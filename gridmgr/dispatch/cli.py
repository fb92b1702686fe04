"""``gridmgr roster ...`` (who covers which grid when) and ``gridmgr worker`` (timed work)."""

from __future__ import annotations

import logging
import signal
import threading

import click
from flask.cli import AppGroup, with_appcontext

from gridmgr.dispatch import rosters
from gridmgr.errors import DomainError

roster = AppGroup("roster", help="Duty rosters: which grid worker covers which unit grid.")


@roster.command("add")
@click.argument("username")
@click.option("--grid", "grid_code", required=True, help="15-digit unit grid code.")
@click.option("--from", "starts", help="Shift start, HH:MM (with --to; none: all day).")
@click.option("--to", "ends", help="Shift end, HH:MM; before --from means over midnight.")
@click.option("--weekdays", default="1-7", show_default=True,
              help="ISO weekdays, e.g. 1-5 or 1,3,5 (1 = Monday).")
def roster_add(username: str, grid_code: str, starts: str | None, ends: str | None,
               weekdays: str) -> None:
    """Roster USERNAME on a unit grid."""
    try:
        entry = rosters.add_roster_entry(username, grid_code, starts, ends, weekdays)
    except DomainError as error:
        raise click.ClickException(error.message) from None
    click.echo(_line(rosters.describe(entry)))


@roster.command("list")
@click.option("--grid", "grid_prefix", help="Only grids under this region code.")
@click.option("--user", "username", help="Only this worker.")
def roster_list(grid_prefix: str | None, username: str | None) -> None:
    """List roster entries."""
    entries = rosters.list_roster(grid_prefix, username)
    for entry in entries:
        click.echo(_line(rosters.describe(entry)))
    if not entries:
        click.echo("no roster entries")


@roster.command("remove")
@click.argument("entry_id", type=int)
def roster_remove(entry_id: int) -> None:
    """Remove the roster entry ENTRY_ID (see ``roster list``)."""
    try:
        entry = rosters.remove_roster_entry(entry_id)
    except DomainError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"removed {entry_id} ({entry.user.username} on {entry.grid.code})")


def _line(entry: dict) -> str:
    shift = f"{entry['from']}-{entry['to']}" if entry["from"] else "all day"
    days = ",".join(str(d) for d in entry["weekdays"])
    return (f"{entry['id']:>5}  {entry['username']:<20} {entry['grid_code']}  {shift:<11} "
            f"weekdays {days}")


@click.command("worker")
@click.option("--interval", type=float, default=1.0, show_default=True,
              help="Seconds to wait when nothing is due.")
@with_appcontext
def worker(interval: float) -> None:
    """Run timed work: auto-dispatch, acknowledgement timeouts (督办), clock events; and
    send notifications and webhook deliveries (a loop of its own beside the jobs).

    Run one or several; each job is done once. Stops cleanly on SIGTERM or Ctrl-C.
    """
    from flask import current_app

    from gridmgr.dispatch.jobs import work
    from gridmgr.notify import engine

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"gridmgr worker started (idle interval {interval:g} s)")
    engine.start(current_app._get_current_object(), stop)
    work(stop, interval)
    click.echo("gridmgr worker stopped")
