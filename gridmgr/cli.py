"""The ``gridmgr`` command: database, grids, demo data, users, serving, the background worker."""

from __future__ import annotations

import os

import click
from flask.cli import FlaskGroup
from flask_migrate.cli import db as db_group

from gridmgr import create_app
from gridmgr.config import gridmgr_home
from gridmgr.database.embedded import EmbeddedCluster


def _create_app():
    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False,
             load_dotenv=False, set_debug_flag=False)
def main() -> None:
    """gridmgr: grid-based urban management."""


# ``gridmgr db ...``: Flask-Migrate's commands (upgrade, migrate, ...) plus the embedded cluster.
@db_group.command("start")
def db_start() -> None:
    """Start the embedded PostGIS cluster under GRIDMGR_HOME (creating it on first use)."""
    cluster = EmbeddedCluster(gridmgr_home())
    started = cluster.start()
    click.echo(("started: " if started else "already running: ") + cluster.status())


@db_group.command("stop")
def db_stop() -> None:
    """Stop the embedded PostGIS cluster."""
    cluster = EmbeddedCluster(gridmgr_home())
    click.echo("stopped" if cluster.stop() else "not running")


@db_group.command("status")
def db_status() -> None:
    """Say whether the embedded cluster exists and runs; exit 3 when it is not running."""
    cluster = EmbeddedCluster(gridmgr_home())
    click.echo(cluster.status())
    if not cluster.is_running():
        raise SystemExit(3)


@db_group.command("url")
def db_url() -> None:
    """Print the database URL gridmgr uses."""
    from gridmgr.database.engine import database_url

    click.echo(database_url(os.environ.get("DATABASE_URL"), gridmgr_home()))


main.add_command(db_group)


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", 5000)),
              show_default="PORT or 5000")
def serve(host: str, port: int) -> None:
    """Serve the app (API, Open311, map wall, live channel)."""
    from flask import current_app

    from gridmgr.extensions import socketio

    if (os.environ.get("GRIDMGR_ASYNC_MODE")
            or current_app.config.get("GRIDMGR_ASYNC_MODE")) == "gevent":
        # gevent must patch the process before anything is imported: start afresh.
        from gridmgr.live.gevent_server import command

        os.environ["GRIDMGR_ASYNC_MODE"] = "gevent"
        argv = command(host, port)
        os.execv(argv[0], argv)
    from gridmgr.serving import settle_memory, start_relay

    start_relay(current_app._get_current_object())
    settle_memory()
    click.echo(f"gridmgr serving on http://{host}:{port}")
    # Werkzeug's threaded server with simple-websocket; production: see docs/live.md.
    # Flask ignores app.run() under its CLI unless this marker is gone.
    os.environ.pop("FLASK_RUN_FROM_CLI", None)
    socketio.run(current_app._get_current_object(), host=host, port=port, use_reloader=False,
                 log_output=False, allow_unsafe_werkzeug=True)


def _register_domain_commands() -> None:
    """Each domain brings its own commands (``gridmgr/<domain>/cli.py``)."""
    from gridmgr.calendar.cli import calendar
    from gridmgr.cases.cli import workflow
    from gridmgr.categories.cli import categories
    from gridmgr.cities.cli import cities
    from gridmgr.cluster.cli import cluster
    from gridmgr.components.cli import components
    from gridmgr.demo.cli import demo
    from gridmgr.dispatch.cli import roster, worker
    from gridmgr.evaluation.cli import stats_command
    from gridmgr.grids.cli import grids
    from gridmgr.legacy.cli import cases
    from gridmgr.notify.cli import notify
    from gridmgr.open311.cli import open311
    from gridmgr.opendata.cli import export_command
    from gridmgr.people.cli import departments, users
    from gridmgr.reports.cli import report_command
    from gridmgr.webhooks.cli import webhooks

    for command in (grids, cities, demo, users, departments, categories, calendar, roster, worker,
                    cases, stats_command, report_command, open311, export_command, cluster,
                    notify, webhooks, workflow, components):
        main.add_command(command)


_register_domain_commands()


if __name__ == "__main__":
    main()
