"""``gridmgr cluster up|down|status``."""

from __future__ import annotations

import json

import click

from gridmgr.cluster.operations import ClusterError, down, status, switchover, up
from gridmgr.config import gridmgr_home


@click.group("cluster")
def cluster() -> None:
    """A highly available cluster on this machine under GRIDMGR_HOME/cluster."""


@cluster.command("up")
@click.option("--servers", is_flag=True,
              help="Also two gridmgr servers behind HAProxy and two background workers.")
@click.option("--redis-url", envvar="REDIS_URL", default="redis://127.0.0.1:6379/0",
              show_default=True, help="Redis for the servers' Socket.IO queue and limits.")
def up_command(servers: bool, redis_url: str) -> None:
    """Start etcd, three Patroni nodes, HAProxy (and the servers); migrate the schema."""
    try:
        layout = up(gridmgr_home(), with_servers=servers, redis_url=redis_url, echo=click.echo)
    except ClusterError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"cluster up: primary {layout.primary_url}, replica {layout.replica_url}")


@cluster.command("down")
def down_command() -> None:
    """Stop everything ``gridmgr cluster up`` started."""
    stopped = down(gridmgr_home(), echo=click.echo)
    click.echo("cluster down" if stopped else "nothing was running")


@cluster.command("switchover")
@click.option("--candidate", help="The node to make primary (default: the synchronous standby).")
def switchover_command(candidate: str | None) -> None:
    """Hand the primary role to the synchronous standby before maintenance of the primary:
    the old primary stops cleanly once the standby has every commit, then rejoins as a
    replica."""
    try:
        old, new = switchover(gridmgr_home(), candidate, echo=click.echo)
    except ClusterError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"switched over: {new} is the primary, {old} rejoins as a replica")


@cluster.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_command(as_json: bool) -> None:
    """Every node's role, state and process id, and the entry points; exit 3 when no
    primary answers."""
    report = status(gridmgr_home())
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for name, url in report.get("entry_points", {}).items():
            if url:
                click.echo(f"{name:8} {url}")
        for node in report["nodes"]:
            click.echo(f"{node['name']:8} {node['role']:13} {node['state']:12} "
                       f"patroni {node['pid'] or '-'} postgres {node['postgres_pid'] or '-'} "
                       f"port {node['port']}")
        for process in report["processes"]:
            click.echo(f"{process['name']:8} {'running' if process['running'] else 'stopped':13}"
                       f" pid {process['pid'] or '-'}")
    if not any(n["role"] == "leader" and n["state"] == "running" for n in report["nodes"]):
        raise SystemExit(3)
