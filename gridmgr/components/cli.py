"""``gridmgr components ...``: import a component inventory."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from gridmgr.components.importing import import_components
from gridmgr.errors import DomainError
from gridmgr.geo.coords import COORD_SYSTEMS

components = AppGroup("components", help="The inventory of components (部件).")


@components.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--srid", type=int,
              help="EPSG code of the file's CRS: needed when it has none; a CSV's default 4326.")
@click.option("--coord-sys", type=click.Choice(COORD_SYSTEMS), default="wgs84",
              show_default=True, help="Offset system of longitude/latitude files.")
@click.option("--dry-run", is_flag=True, help="Check everything, write nothing.")
def import_command(path: str, srid: int | None, coord_sys: str, dry_run: bool) -> None:
    """Import the components in PATH (GeoJSON, Shapefile, GeoPackage, CSV with lon/lat).

    All or nothing: every bad row is listed and nothing is written. Re-importing updates the
    components with the same codes.
    """
    try:
        result = import_components(path, srid=srid, coord_sys=coord_sys, dry_run=dry_run,
                                   progress=True)
    except DomainError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        for problem in exc.details.get("problems", []):
            click.echo(f"  {problem['problem']}: {problem['message']}", err=True)
        raise SystemExit(1) from exc
    verb = "would import" if dry_run else "imported"
    click.echo(f"{verb} {result.rows} components: {result.created} new, {result.updated} "
               f"updated, {result.codes_assigned} codes assigned.")
