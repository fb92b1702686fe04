"""``gridmgr grids ...``: import, generate, check and locate."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from gridmgr.errors import DomainError
from gridmgr.geo.coords import COORD_SYSTEMS
from gridmgr.grids.importing import import_regions
from gridmgr.grids.locating import locate
from gridmgr.grids.models import LEVELS
from gridmgr.grids.validation import check_hierarchy

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


def echo_problems(entries: list[dict], key: str) -> None:
    for entry in entries:
        text = entry.get("message") or json.dumps(entry, ensure_ascii=False)
        click.echo(f"  {entry.get(key, '')}: {text}", err=True)


@grids.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--level", required=True, type=click.Choice(LEVELS),
              help="The level the file's polygons are.")
@click.option("--srid", type=int,
              help="EPSG code of the file's CRS: needed when it has none (.prj); overrides it.")
@click.option("--name-field", help="Field holding the region name.")
@click.option("--code-field", help="Field holding the region's own code digits.")
@click.option("--parent-field", help="Field naming the parent region (code, source code or name).")
@click.option("--coord-sys", type=click.Choice(COORD_SYSTEMS), default="wgs84",
              show_default=True, help="Offset system of longitude/latitude files.")
@click.option("--repair", is_flag=True, help="Repair invalid polygons, overlaps and slivers.")
@click.option("--city", default="default", show_default=True, help="City slug (created if new).")
def import_command(path: str, level: str, srid: int | None, name_field: str | None,
                   code_field: str | None, parent_field: str | None, coord_sys: str,
                   repair: bool, city: str) -> None:
    """Import the polygons in PATH (GeoJSON, Shapefile, zipped Shapefile, GeoPackage).

    All or nothing: problems are listed and nothing is written. Re-importing updates the
    regions with the same codes (ids, and so children, are kept).
    """
    try:
        result = import_regions(path, level, city=city, srid=srid, name_field=name_field,
                                code_field=code_field, parent_field=parent_field,
                                coord_sys=coord_sys, repair=repair, progress=True)
    except DomainError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        echo_problems(exc.details.get("problems", []), "problem")
        raise SystemExit(1) from exc
    for change in result.changes:
        click.echo("repaired " + json.dumps(change, ensure_ascii=False))
    for warning in result.warnings:
        click.echo(f"warning: {warning['message']}")
    click.echo(f"imported {len(result.codes)} {level} regions into {city}: "
               f"{result.created} new, {result.updated} updated, {len(result.changes)} repairs, "
               f"{len(result.warnings)} warnings.")


@grids.command("check")
@click.option("--city", help="City slug (default: every city).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_command(city: str | None, as_json: bool) -> None:
    """Report the health of the hierarchy; exit 1 when it has problems."""
    report = check_hierarchy(city)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        for slug, counts in report.counts.items():
            click.echo(f"{slug}: " + ", ".join(f"{n} {lvl}" for lvl, n in counts.items()))
        for problem in report.problems:
            click.echo("problem " + json.dumps(problem, ensure_ascii=False))
        for warning in report.warnings:
            click.echo("warning " + json.dumps(warning, ensure_ascii=False))
        click.echo("healthy" if report.healthy else f"unhealthy: {len(report.problems)} problems")
    if not report.healthy:
        raise SystemExit(1)


@grids.command("generate")
@click.option("--within", type=click.Choice(["district", "street", "community"]),
              default="community", show_default=True, help="Level of the parent regions.")
@click.option("--cell-area", "cell_area", type=float, default=10_000, show_default=True,
              help="Target unit-grid area in square metres.")
@click.option("--city", help="City slug (default: every city).")
@click.option("--parent", "parents", multiple=True,
              help="Only this parent region code (repeatable).")
def generate_command(within: str, cell_area: float, city: str | None,
                     parents: tuple[str, ...]) -> None:
    """Generate unit grids inside every parent region (idempotent on unchanged parents)."""
    from gridmgr.grids.generation import generate_grids

    try:
        result = generate_grids(within=within, cell_area_m2=cell_area, city=city,
                                parents=list(parents) or None)
    except DomainError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise SystemExit(1) from exc
    for code, reason in result.skipped.items():
        click.echo(f"skipped {code}: {reason}")
    click.echo(f"{sum(result.generated.values())} grids generated in {len(result.generated)} "
               f"{within}(s), {len(result.unchanged)} unchanged, {len(result.skipped)} skipped, "
               f"{result.deleted} surplus grids removed, in {result.seconds:.1f} s.")
