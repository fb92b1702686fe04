"""``gridmgr demo load``: the demo city on 渝中区's real boundary."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from gridmgr.errors import DomainError

demo = AppGroup("demo", help="Demo data.")


@demo.command("load")
def load_command() -> None:
    """Load the demo city (渝中区, Chongqing): streets, communities, unit grids, the
    catalogue, staff, patrol inspectors and four weeks of cases."""
    from gridmgr.demo.loading import DEMO_PASSWORD, load_demo

    try:
        result = load_demo(progress=False)
    except DomainError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise SystemExit(1) from exc
    counts = ", ".join(f"{result.counts.get(level, 0)} {plural}" for level, plural in (
        ("district", "districts"), ("street", "streets"), ("community", "communities"),
        ("grid", "unit grids")))
    click.echo(f"demo city {result.city}: {counts} ({result.seconds:.1f} s)")
    activity = result.activity
    click.echo(f"{activity['past_cases']} past cases imported, {activity['fresh_reports']} "
               f"reports of today, {activity['inspectors']} patrol inspectors on duty")
    if result.users:
        click.echo(f"demo staff created (password {DEMO_PASSWORD}): {', '.join(result.users)}")
