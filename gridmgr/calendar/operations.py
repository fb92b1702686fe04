"""Keeping a city's working calendar: its row, its country, and the holidays and swapped
working days it adds to its country's (gridmgr.calendar.national)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gridmgr.audit import operations as audit
from gridmgr.calendar.deadlines import Calendar, parse_time
from gridmgr.calendar.models import CalendarDay, WorkingCalendar
from gridmgr.calendar.national import (
    WARN_AHEAD_DAYS,
    check_country,
    uncovered_warning,
    uncovered_years,
    years_ahead,
)
from gridmgr.errors import InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.grids.models import City
from gridmgr.people.models import User

DAY_KINDS = ("holiday", "workday")


def find_city(slug: str | None) -> City:
    """The city with this slug, or the only city when none is named."""
    if slug:
        city = db.session.execute(db.select(City).where(City.slug == slug)).scalar_one_or_none()
        if city is None:
            raise NotFound(f"no city {slug!r}", code="city_not_found")
        return city
    cities = db.session.execute(db.select(City).limit(2)).scalars().all()
    if len(cities) != 1:
        raise InvalidInput("name the city (--city SLUG): there is not exactly one city",
                           code="city_required")
    return cities[0]


def calendar_row(city: City) -> WorkingCalendar:
    """The city's WorkingCalendar row, created with the defaults (and the city's time zone)."""
    row = db.session.execute(
        db.select(WorkingCalendar).where(WorkingCalendar.city_id == city.id)).scalar_one_or_none()
    if row is None:
        row = WorkingCalendar(city_id=city.id, timezone=city.timezone or "Asia/Shanghai",
                              periods=[["08:00", "12:00"], ["14:00", "18:00"]],
                              weekdays=[1, 2, 3, 4, 5])
        db.session.add(row)
        db.session.flush()
    return row


def set_working_hours(city: City, periods: list[list[str]] | None = None,
                      weekdays: list[int] | None = None, timezone: str | None = None,
                      actor: User | None = None) -> WorkingCalendar:
    """Change the city's daily working periods, working weekdays or time zone (validated);
    commits, with its audit entry."""
    row = calendar_row(city)
    before = _hours(city, row)
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"unknown time zone {timezone!r}", code="invalid_calendar") from None
        row.timezone = timezone
    if periods is not None:
        row.periods = [[parse_time(a).strftime("%H:%M"), parse_time(b).strftime("%H:%M")]
                       for a, b in periods]
    if weekdays is not None:
        row.weekdays = sorted({int(w) for w in weekdays})
    # Validates periods and weekdays together (raises InvalidInput, nothing committed).
    Calendar(tz=ZoneInfo(row.timezone),
             periods=tuple((parse_time(a), parse_time(b)) for a, b in row.periods),
             weekdays=frozenset(row.weekdays))
    if _hours(city, row) != before:
        audit.record(actor, "calendar.hours", "calendar", city.slug, before=before,
                     after=_hours(city, row))
    db.session.commit()
    return row


def _hours(city: City, row: WorkingCalendar) -> dict:
    return {"city_id": city.id, "city": city.slug, "timezone": row.timezone,
            "periods": list(row.periods), "weekdays": list(row.weekdays)}


def set_country(city: City, code: str, actor: User | None = None) -> City:
    """Make the city follow ``code``'s national holidays and swapped working days; commits,
    with its audit entry."""
    before = {"city_id": city.id, "city": city.slug, "country": city.country}
    city.country = check_country(code)
    if city.country != before["country"]:
        audit.record(actor, "calendar.country", "calendar", city.slug, before=before,
                     after={**before, "country": city.country})
    db.session.commit()
    return city


def set_day(city: City, day: date, kind: str, name: str | None = None,
            actor: User | None = None) -> CalendarDay:
    """Mark ``day`` as a holiday or a swapped working day (replacing an earlier mark); commits,
    with its audit entry (``actor`` None: the command line)."""
    if kind not in DAY_KINDS:
        raise InvalidInput(f"a calendar day is a holiday or a workday, not {kind!r}",
                           code="invalid_calendar_day")
    row = calendar_row(city)
    entry = _own_day(row, day)
    before = _audited(city, entry)
    if entry is None:
        entry = CalendarDay(calendar_id=row.id, day=day)
        db.session.add(entry)
    entry.kind, entry.name = kind, name
    if _audited(city, entry) != before:
        audit.record(actor, "calendar.day", "calendar_day", day.isoformat(), before=before,
                     after=_audited(city, entry))
    db.session.commit()
    return entry


def remove_day(city: City, day: date, actor: User | None = None) -> bool:
    """Forget a holiday or swapped working day (audited); False when there was none."""
    row = calendar_row(city)
    entry = _own_day(row, day)
    if entry is None:
        return False
    audit.record(actor, "calendar.day.remove", "calendar_day", day.isoformat(),
                 before=_audited(city, entry))
    db.session.delete(entry)
    db.session.commit()
    return True


def _own_day(row: WorkingCalendar, day: date) -> CalendarDay | None:
    return db.session.execute(db.select(CalendarDay).where(
        CalendarDay.calendar_id == row.id, CalendarDay.day == day)).scalar_one_or_none()


def _audited(city: City, entry: CalendarDay | None) -> dict | None:
    """What the audit log keeps of a city's own day: the day, its kind and name, the city."""
    if entry is None:
        return None
    return {"city_id": city.id, "city": city.slug, "day": entry.day.isoformat(),
            "kind": entry.kind, "name": entry.name}


def list_days(city: City, year: int | None = None) -> list[CalendarDay]:
    """The city's holidays and swapped working days, in date order."""
    query = db.select(CalendarDay).join(WorkingCalendar).where(WorkingCalendar.city_id == city.id)
    if year is not None:
        query = query.where(CalendarDay.day >= date(year, 1, 1),
                            CalendarDay.day <= date(year, 12, 31))
    return list(db.session.execute(query.order_by(CalendarDay.day)).scalars())


def read_holiday_file(path: Path) -> list[tuple[date, str, str | None]]:
    """``[(day, kind, name)]`` from a holiday file (``{"days": [{"day", "kind", "name"}]}``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read holiday file {path}: {exc}", code="invalid_file") from None
    entries = data.get("days") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise InvalidInput("a holiday file holds a list of days", code="invalid_file")
    out = []
    for i, item in enumerate(entries):
        try:
            day = date.fromisoformat(item["day"])
            kind = item.get("kind", "holiday")
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InvalidInput(f"entry {i} needs a 'day' as YYYY-MM-DD",
                               code="invalid_file") from None
        if kind not in DAY_KINDS:
            raise InvalidInput(f"entry {i}: kind must be holiday or workday", code="invalid_file")
        out.append((day, kind, item.get("name")))
    return out


def load_holidays(city: City, path: Path, actor: User | None = None) -> int:
    """Load a holiday file of the city's own days (on top of its country's) into its calendar;
    returns the count. Idempotent: days already present are updated, none is duplicated. One
    audit entry names the days as they were and as the file makes them."""
    entries = read_holiday_file(path)
    row = calendar_row(city)
    existing = {d.day: d for d in db.session.execute(
        db.select(CalendarDay).where(CalendarDay.calendar_id == row.id)).scalars()}
    before = [_audited(city, existing.get(day)) for day, _, _ in entries]
    for day, kind, name in entries:
        entry = existing.get(day)
        if entry is None:
            entry = CalendarDay(calendar_id=row.id, day=day)
            db.session.add(entry)
            existing[day] = entry
        entry.kind, entry.name = kind, name
    after = [_audited(city, existing[day]) for day, _, _ in entries]
    if after != before:
        audit.record(actor, "calendar.load", "calendar", city.slug,
                     before={"city_id": city.id, "days": [d for d in before if d]},
                     after={"city_id": city.id, "file": Path(path).name, "days": after})
    db.session.commit()
    return len(entries)


def uncovered_calendars(ahead_days: int = WARN_AHEAD_DAYS) -> list[dict]:
    """For each country the cities follow, the years from each city's today to ``ahead_days``
    ahead that its national library does not cover: ``[{country, years, cities, message}]``."""
    wanted: dict[str, tuple[set[int], set[str]]] = {}
    for slug, tz, country in db.session.execute(
            db.select(City.slug, City.timezone, City.country).order_by(City.slug)):
        years, cities = wanted.setdefault(country, (set(), set()))
        today = datetime.now(ZoneInfo(tz or "Asia/Shanghai")).date()
        missing = uncovered_years(country, years_ahead(today, ahead_days))
        if missing:
            years.update(missing)
            cities.add(slug)
    return [{"country": country, "years": sorted(years), "cities": sorted(cities),
             "message": uncovered_warning(country, sorted(years))}
            for country, (years, cities) in sorted(wanted.items()) if years]
