"""``gridmgr demo load`` (the demo city on 渝中区's real boundary) and ``gridmgr demo serve``
(the demo alive: server, background worker, the inspectors' phones and the operator's desk)."""

from __future__ import annotations

import os

import click
from flask import current_app
from flask.cli import AppGroup, ScriptInfo

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


@demo.command("serve", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", 5000)),
              show_default="PORT or 5000")
@click.pass_context
def serve_command(ctx: click.Context, host: str, port: int) -> None:
    """Serve the demo with gunicorn (gevent-websocket) and run the background worker beside
    it; the patrols' phones send positions and demo-operator files reports of the
    automatically dispatched categories. Ctrl-C or SIGTERM stops everything."""
    from gridmgr.demo.serving import run_demo

    def play_the_city(stop) -> None:
        # Built once the children are starting, so that the three processes start together.
        from gridmgr.demo.serving import apply_settings
        from gridmgr.demo.simulation import simulate

        app = ctx.ensure_object(ScriptInfo).load_app()
        apply_settings(app)
        with app.app_context():
            simulate(stop)

    raise SystemExit(run_demo(host, port, play_the_city))


@demo.command("worker")
@click.pass_context
def worker_command(ctx: click.Context) -> None:
    """``gridmgr worker`` with the demo's settings (a 3-minute acknowledgement limit unless
    GRIDMGR_HOME/config.py sets GRIDMGR_ACCEPT_LIMIT); ``demo serve`` starts it."""
    from gridmgr.demo.serving import apply_settings
    from gridmgr.dispatch.cli import worker

    apply_settings(current_app)
    ctx.invoke(worker)
