"""``gridmgr cities ...``: add a city with its boundaries and calendar, list the cities."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from gridmgr.cities.operations import add_city, list_cities
from gridmgr.errors import DomainError
from gridmgr.geo.coords import COORD_SYSTEMS
from gridmgr.grids.cli import echo_problems
from gridmgr.grids.models import LEVELS

cities = AppGroup("cities", help="The cities of the platform.")


@cities.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="The city's name, as staff and the wall show it.")
@click.option("--timezone", required=True, help="IANA time zone, e.g. Asia/Shanghai.")
@click.option("--country", default="CN", show_default=True,
              help="ISO 3166 code whose holidays and swapped working days the city follows.")
@click.option("--calendar", "calendar_file", type=click.Path(dir_okay=False),
              help="The city's own holidays and swapped working days (JSON, as "
                   "gridmgr calendar load-holidays reads).")
@click.option("--boundaries", required=True, type=click.Path(dir_okay=False),
              help="Boundary file of the city's top regions (GeoJSON, Shapefile, GeoPackage).")
@click.option("--level", type=click.Choice(LEVELS), default="district", show_default=True,
              help="The level the boundary file's polygons are.")
@click.option("--code-field", help="Field holding the region's own code digits.")
@click.option("--name-field", help="Field holding the region name.")
@click.option("--srid", type=int, help="EPSG code of the file's CRS when it has none.")
@click.option("--coord-sys", type=click.Choice(COORD_SYSTEMS), default="wgs84",
              show_default=True, help="Offset system of longitude/latitude files.")
@click.option("--repair", is_flag=True, help="Repair invalid polygons, overlaps and slivers.")
def add_city_command(slug: str, name: str, timezone: str, country: str,
                     calendar_file: str | None, boundaries: str, level: str,
                     code_field: str | None, name_field: str | None, srid: int | None,
                     coord_sys: str, repair: bool) -> None:
    """Add city SLUG with its boundaries, all or nothing; staff are then scoped to it with
    gridmgr users add --city SLUG."""
    try:
        result = add_city(slug, name, timezone, boundaries, country=country, level=level,
                          calendar=calendar_file, code_field=code_field, name_field=name_field,
                          srid=srid, coord_sys=coord_sys, repair=repair)
    except DomainError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        echo_problems(exc.details.get("problems", []), "problem")
        raise SystemExit(1) from exc
    for warning in result.warnings:
        click.echo(f"warning: {warning['message']}")
    click.echo(f"added city {slug} ({name}, {timezone}, {country.upper()}) with "
               f"{len(result.codes)} {level} regions.")


@cities.command("list")
def list_cities_command() -> None:
    """Print every city: slug, name, time zone, country, regions per level, staff."""
    for city in list_cities():
        regions = ", ".join(f"{n} {level}" for level, n in city.regions.items())
        click.echo(f"{city.slug}\t{city.name}\t{city.timezone}\t{city.country}\t{regions}\t"
                   f"{city.staff} staff")
