"""``gridmgr grids ...``: import, generate, check and locate."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from gridmgr.grids.locating import locate

grids = AppGroup("grids", help="Regions and unit grids.")


@grids.command("locate")
@click.argument("lon", type=float)
@click.argument("lat", type=float)
def locate_command(lon: float, lat: float) -> None:
    """Print the unit grid holding LON LAT (WGS 84) and its ancestors."""
    location = locate(lon, lat)
    click.echo(json.dumps(location.to_dict(), ensure_ascii=False, indent=2))
