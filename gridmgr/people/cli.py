"""``gridmgr users ...`` and ``gridmgr departments ...``.

The console acts as an unscoped administrator (``operations.console_admin``): the commands
call the same operations as the admin API, so the policy and every validation apply alike.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from gridmgr.errors import DomainError
from gridmgr.extensions import db
from gridmgr.people import operations
from gridmgr.people.models import ROLES

users = AppGroup("users", help="Users, roles and region scopes.")
departments = AppGroup("departments", help="Departments (专业部门 / 责任单位).")


def _fail(error: DomainError) -> None:
    db.session.rollback()
    raise click.ClickException(f"{error.message} ({error.code})")


@users.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--region", "region_code", help="Scope: a district, street or community code.")
@click.option("--city", help="City slug (for a whole-city user, or to tell equal codes apart).")
@click.option("--department", help="Department name, English name or id.")
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--display-name")
@click.option("--phone")
@click.option("--email")
def add_user(username: str, role: str, region_code: str | None, city: str | None,
             department: str | None, password: str, display_name: str | None,
             phone: str | None, email: str | None) -> None:
    """Create user USERNAME with a role, an optional region scope and department."""
    try:
        user = operations.create_user(
            operations.console_admin(), username, password, role, region_code=region_code,
            city=city, department=department, display_name=display_name, phone=phone,
            email=email)
        db.session.commit()
    except DomainError as error:
        _fail(error)
    click.echo(f"created user {user.username} (id {user.id}, {user.role}, "
               f"scope {region_code or 'whole city'})")


@users.command("list")
@click.option("--role", type=click.Choice(ROLES))
def list_users(role: str | None) -> None:
    """List users: username, role, scope, department, active."""
    for user in operations.list_users(operations.console_admin(), role=role):
        click.echo("\t".join([
            user.username, user.role, user.region.code if user.region else "city",
            user.department.name if user.department else "-",
            "active" if user.is_active else "disabled"]))


@users.command("set-password")
@click.argument("username")
@click.option("--password", required=True, prompt=True, hide_input=True)
def set_password(username: str, password: str) -> None:
    """Set USERNAME's password."""
    try:
        operations.update_user(operations.console_admin(), operations.find_user(username),
                               password=password)
        db.session.commit()
    except DomainError as error:
        _fail(error)
    click.echo(f"password set for {username}")


@users.command("disable")
@click.argument("username")
def disable_user(username: str) -> None:
    """Disable USERNAME: no sign-in, tokens refused; history keeps the user."""
    try:
        operations.deactivate_user(operations.console_admin(), operations.find_user(username))
        db.session.commit()
    except DomainError as error:
        _fail(error)
    click.echo(f"disabled {username}")


@departments.command("add")
@click.argument("name")
@click.option("--name-en", help="English name.")
@click.option("--city", help="City slug, when the department belongs to one city.")
def add_department(name: str, name_en: str | None, city: str | None) -> None:
    """Create department NAME."""
    try:
        department = operations.create_department(operations.console_admin(), name, name_en,
                                                  city)
        db.session.commit()
    except DomainError as error:
        _fail(error)
    click.echo(f"created department {department.name} (id {department.id})")


@departments.command("list")
def list_departments() -> None:
    """List departments: id, name, English name."""
    for department in operations.list_departments():
        click.echo(f"{department.id}\t{department.name}\t{department.name_en or '-'}")
