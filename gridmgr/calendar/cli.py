"""``gridmgr calendar ...``: working hours, country, holidays and swapped working days of a
city."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click
from flask.cli import AppGroup

from gridmgr.calendar import operations as ops
from gridmgr.calendar.deadlines import calendar_for_city
from gridmgr.calendar.national import (
    national_year,
    uncovered_warning,
    uncovered_years,
    years_ahead,
)
from gridmgr.errors import DomainError

calendar = AppGroup("calendar", help="A city's working calendar.")
city_option = click.option("--city", "city_slug", default=None,
                           help="City slug (default: the only city).")


def _fail(err: DomainError) -> None:
    raise click.ClickException(f"{err.code}: {err.message}")


@calendar.command("load-holidays")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@city_option
def load_holidays_command(file: Path, city_slug: str | None) -> None:
    """Load FILE's holidays and swapped working days as the city's own days, on top of its
    country's."""
    try:
        count = ops.load_holidays(ops.find_city(city_slug), file)
    except DomainError as err:
        _fail(err)
    click.echo(f"loaded {count} calendar days")


@calendar.command("country")
@click.argument("code")
@city_option
def country_command(code: str, city_slug: str | None) -> None:
    """Make the city follow CODE's (ISO 3166, e.g. CN, US) holidays and swapped working days."""
    try:
        city = ops.set_country(ops.find_city(city_slug), code)
    except DomainError as err:
        _fail(err)
    click.echo(f"{city.slug}: country {city.country}")


@calendar.command("add")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--kind", type=click.Choice(ops.DAY_KINDS), default="holiday", show_default=True)
@click.option("--name", default=None)
@city_option
def add_command(day, kind: str, name: str | None, city_slug: str | None) -> None:
    """Mark DAY (YYYY-MM-DD) as a holiday or a swapped working day."""
    try:
        ops.set_day(ops.find_city(city_slug), day.date(), kind, name)
    except DomainError as err:
        _fail(err)
    click.echo(f"{day.date().isoformat()} {kind}")


@calendar.command("remove")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
@city_option
def remove_command(day, city_slug: str | None) -> None:
    """Forget the mark on DAY."""
    try:
        removed = ops.remove_day(ops.find_city(city_slug), day.date())
    except DomainError as err:
        _fail(err)
    click.echo("removed" if removed else "nothing to remove")


@calendar.command("list")
@click.option("--year", type=int, default=None)
@city_option
def list_command(year: int | None, city_slug: str | None) -> None:
    """Print the working hours and the city's own holidays and swapped working days (with
    --year, the country's as well), and warn of years the national library does not cover."""
    try:
        city = ops.find_city(city_slug)
        cal = calendar_for_city(city.id)
        days = ops.list_days(city, year)
    except DomainError as err:
        _fail(err)
    periods = ", ".join(f"{a:%H:%M}–{b:%H:%M}" for a, b in cal.periods)
    click.echo(f"{city.slug}: {cal.tz.key}; {periods}; weekdays {sorted(cal.weekdays)}; "
               f"country {cal.country}")
    years = sorted({*years_ahead(datetime.now(cal.tz).date()), *([year] if year else [])})
    missing = uncovered_years(cal.country, years)
    if missing:
        click.echo(f"warning: {uncovered_warning(cal.country, missing)}", err=True)
    lines = {d.day: (d.kind, d.name or "") for d in days}
    if year is not None:
        national = national_year(cal.country, year)
        for day in national.holidays | national.workdays:
            if day not in lines:
                kind = "workday" if day in national.workdays else "holiday"
                lines[day] = (kind, f"{national.names.get(day, '')} ({cal.country})")
    for day in sorted(lines):
        kind, name = lines[day]
        click.echo(f"{day.isoformat()} {date.strftime(day, '%a')} {kind} {name}".rstrip())


@calendar.command("hours")
@click.option("--period", "periods", multiple=True, metavar="HH:MM-HH:MM",
              help="A daily working period; repeat for several.")
@click.option("--weekdays", default=None, help="ISO weekdays, e.g. 1,2,3,4,5")
@click.option("--timezone", default=None)
@city_option
def hours_command(periods: tuple[str, ...], weekdays: str | None, timezone: str | None,
                  city_slug: str | None) -> None:
    """Set the city's working periods, working weekdays or time zone."""
    try:
        parsed = [p.split("-", 1) for p in periods] if periods else None
        if parsed and any(len(p) != 2 for p in parsed):
            raise click.BadParameter("periods look like 08:00-12:00")
        days = [int(w) for w in weekdays.split(",")] if weekdays else None
        row = ops.set_working_hours(ops.find_city(city_slug), parsed, days, timezone)
    except DomainError as err:
        _fail(err)
    except ValueError:
        raise click.BadParameter("weekdays look like 1,2,3,4,5") from None
    click.echo(f"{row.timezone}; {row.periods}; weekdays {row.weekdays}")
