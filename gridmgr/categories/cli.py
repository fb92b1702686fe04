"""``gridmgr categories ...``: load the default catalogue, import files, list, set overrides."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

from gridmgr.categories import operations as ops
from gridmgr.categories.models import KINDS
from gridmgr.errors import DomainError

categories = AppGroup("categories", help="The category catalogue.")


def _fail(err: DomainError) -> None:
    raise click.ClickException(f"{err.code}: {err.message}")


@categories.command("load-defaults")
@click.option("--update", is_flag=True,
              help="Also reset existing categories to the shipped values.")
def load_defaults_command(update: bool) -> None:
    """Load the shipped catalogue (idempotent)."""
    try:
        report = ops.load_default_catalogue(update=update)
    except DomainError as err:
        _fail(err)
    click.echo(report.summary())


@categories.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(KINDS), default="event", show_default=True,
              help="Kind of the classes created from Open311 groups.")
@click.option("--keep", is_flag=True, help="Leave existing categories unchanged.")
def import_command(file: Path, kind: str, keep: bool) -> None:
    """Import FILE: our catalogue, an Open311 services.json list or a service definition."""
    try:
        report = ops.import_file(file, kind=kind, update=not keep)
    except DomainError as err:
        _fail(err)
    click.echo(report.summary())


@categories.command("list")
@click.option("--kind", type=click.Choice(KINDS), default=None)
@click.option("--class", "class_code", default=None, help="Major class code, e.g. C01.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(kind: str | None, class_code: str | None, as_json: bool) -> None:
    """List the categories with their department and handling limit."""
    rows = ops.list_categories(kind=kind, class_code=class_code)
    if as_json:
        click.echo(json.dumps([{
            "code": c.code, "class": c.category_class.code, "name_zh": c.name_zh,
            "name_en": c.name_en, "department": c.department.name if c.department else None,
            "limits": c.limits} for c in rows], ensure_ascii=False, indent=2))
        return
    for c in rows:
        handle = c.limits.get("handle")
        limit = f"{handle['amount']:g} {handle['unit']}" if handle else "-"
        dept = c.department.name if c.department else "-"
        click.echo(f"{c.code}\t{c.category_class.code}\t{c.name_zh}\t{c.name_en}\t{dept}\t{limit}")
    click.echo(f"{len(rows)} categories")


@categories.command("set-department")
@click.argument("category_code")
@click.argument("region_code")
@click.argument("department_name")
def set_department_command(category_code: str, region_code: str, department_name: str) -> None:
    """Make DEPARTMENT_NAME responsible for CATEGORY_CODE inside REGION_CODE."""
    from sqlalchemy import select

    from gridmgr.extensions import db
    from gridmgr.people.models import Department

    dept = db.session.scalar(select(Department).where(Department.name == department_name))
    if dept is None:
        raise click.ClickException(f"department_not_found: no department {department_name!r}")
    try:
        ops.set_region_department(category_code, region_code, dept.id)
    except DomainError as err:
        _fail(err)
    click.echo(f"{category_code} in {region_code}: {dept.name}")


@categories.command("train")
@click.option("--city", help="City slug (default: every city, each on its own cases).")
def train_command(city: str | None) -> None:
    """Train each city's category suggester on its own cases and the catalogue."""
    from gridmgr.categories.suggest import min_cases, train

    try:
        results = train(city)
    except DomainError as err:
        _fail(err)
    for r in results:
        if r["trained"]:
            click.echo(f"{r['city']}: trained on {r['cases']} cases and the catalogue "
                       f"({r['categories']} categories).")
        else:
            click.echo(f"{r['city']}: {r['cases']} cases, fewer than {min_cases()}; "
                       "suggestions come from the catalogue.")
