"""``gridmgr webhooks ...``: register, list, pause, resume, remove and replay endpoints."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from gridmgr.errors import DomainError

webhooks = AppGroup("webhooks", help="Webhooks: case events POSTed, signed, to other systems.")


def _line(endpoint: dict) -> str:
    scope = (f"department {endpoint['department_id']}" if endpoint["department_id"]
             else f"region {endpoint['region_code']}" if endpoint["region_code"] else "city")
    return (f"{endpoint['id']:>4}  {endpoint['state']:<6} {scope:<22} "
            f"{','.join(endpoint['events'])}  {endpoint['url']}")


@webhooks.command("add")
@click.argument("url")
@click.option("--secret", required=True, help="Shared secret the deliveries are signed with.")
@click.option("--events", required=True,
              help="Comma-separated: case.created, case.dispatched, case.updated, case.clock, "
                   "case.escalated, or *.")
@click.option("--department", help="Only the cases of this department (name or id).")
@click.option("--region", help="Only the cases in this region (code).")
def add_command(url: str, secret: str, events: str, department: str | None,
                region: str | None) -> None:
    """Register an endpoint at URL."""
    from gridmgr.webhooks.operations import add_endpoint, describe

    try:
        endpoint = add_endpoint(url, secret, events, department, region)
    except DomainError as error:
        raise click.ClickException(error.message) from None
    click.echo(_line(describe(endpoint)))


@webhooks.command("list")
def list_command() -> None:
    """List the endpoints."""
    from gridmgr.webhooks.operations import describe, endpoints_for_fan_out

    endpoints = endpoints_for_fan_out()
    for endpoint in endpoints:
        click.echo(_line(describe(endpoint)))
    if not endpoints:
        click.echo("no webhook endpoints")


def _state_command(name: str, state: str, doc: str):
    @webhooks.command(name, help=doc)
    @click.argument("endpoint_id", type=int)
    def command(endpoint_id: int) -> None:
        from gridmgr.webhooks.operations import describe, set_state

        try:
            click.echo(_line(describe(set_state(endpoint_id, state))))
        except DomainError as error:
            raise click.ClickException(error.message) from None

    return command


_state_command("pause", "paused", "Stop deliveries to ENDPOINT_ID; they wait for resume.")
_state_command("resume", "active", "Deliver to ENDPOINT_ID again, what waited first.")


@webhooks.command("remove")
@click.argument("endpoint_id", type=int)
def remove_command(endpoint_id: int) -> None:
    """Forget ENDPOINT_ID and its deliveries."""
    from gridmgr.webhooks.operations import remove_endpoint

    try:
        remove_endpoint(endpoint_id)
    except DomainError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"removed {endpoint_id}")


@webhooks.command("replay")
@click.argument("endpoint_id", type=int)
@click.option("--from", "from_seq", type=int, required=True, help="First sequence number.")
def replay_command(endpoint_id: int, from_seq: int) -> None:
    """Deliver again to ENDPOINT_ID every kept event from a sequence number on."""
    from gridmgr.webhooks.operations import replay

    try:
        count = replay(endpoint_id, from_seq)
    except DomainError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"{count} event(s) will be delivered again")
