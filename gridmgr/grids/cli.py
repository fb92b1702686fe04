"""``gridmgr grids ...``: import, generate, check and locate."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from gridmgr.errors import DomainError
from gridmgr.geo.coords import COORD_SYSTEMS
from gridmgr.grids.locating import locate

grids = AppGroup("grids", help="Regions and unit grids.")


@grids.command("locate")
@click.argument("lon", type=float)
@click.argument("lat", type=float)
@click.option("--coord-sys", type=click.Choice(COORD_SYSTEMS), default="wgs84",
              show_default=True, help="Coordinate system of LON LAT.")
def locate_command(lon: float, lat: float, coord_sys: str) -> None:
    """Print the unit grid holding LON LAT and its ancestors."""
    from gridmgr.geo.coords import to_wgs84

    try:
        location = locate(*to_wgs84(lon, lat, coord_sys))
    except DomainError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise SystemExit(1) from exc
    click.echo(json.dumps(location.to_dict(), ensure_ascii=False, indent=2))


@grids.command("generate")
@click.option("--within", type=click.Choice(["district", "street", "community"]),
              default="community", show_default=True, help="Level of the parent regions.")
@click.option("--cell-area", "cell_area", type=float, default=10_000, show_default=True,
              help="Target unit-grid area in square metres.")
@click.option("--city", help="City slug (default: every city).")
def generate_command(within: str, cell_area: float, city: str | None) -> None:
    """Generate unit grids inside every parent region (idempotent on unchanged parents)."""
    from gridmgr.grids.generation import generate_grids

    try:
        result = generate_grids(within=within, cell_area_m2=cell_area, city=city)
    except DomainError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise SystemExit(1) from exc
    for code, reason in result.skipped.items():
        click.echo(f"skipped {code}: {reason}")
    click.echo(f"{sum(result.generated.values())} grids generated in {len(result.generated)} "
               f"{within}(s), {len(result.unchanged)} unchanged, {len(result.skipped)} skipped, "
               f"{result.deleted} surplus grids removed, in {result.seconds:.1f} s.")
