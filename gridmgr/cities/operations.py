"""Adding a city is one step: its row (name, time zone, the country whose holidays it follows),
optionally its own holidays and swapped working days, and its boundary file imported by
:func:`gridmgr.grids.importing.import_regions`, all in one transaction: a refused boundary
file or calendar leaves no city behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select

from gridmgr.calendar.models import CalendarDay
from gridmgr.calendar.national import check_country
from gridmgr.calendar.operations import calendar_row, read_holiday_file
from gridmgr.errors import Conflict, InvalidInput
from gridmgr.extensions import db
from gridmgr.grids.importing import ImportResult, import_regions
from gridmgr.grids.models import LEVELS, City, Region
from gridmgr.people.models import User

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


@dataclass
class CitySummary:
    """A city as ``gridmgr cities list`` prints it."""

    slug: str
    name: str
    timezone: str
    country: str
    regions: dict[str, int]
    staff: int


def add_city(slug: str, name: str, timezone: str, boundaries: str | Path, *,
             country: str = "CN", level: str = "district", calendar: str | Path | None = None,
             code_field: str | None = None, name_field: str | None = None,
             srid: int | None = None, coord_sys: str = "wgs84",
             repair: bool = False) -> ImportResult:
    """Create city ``slug`` with its boundaries (regions of ``level``), all or nothing."""
    if not SLUG.match(slug or ""):
        raise InvalidInput("A city slug is 1-64 lower-case letters, digits and hyphens, "
                           "starting with a letter or digit.", code="bad_slug")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("A city needs a name of 1-200 characters.", code="bad_city_name")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"Unknown time zone {timezone!r:.60}; use an IANA name such as "
                           "Asia/Shanghai.", code="invalid_calendar") from None
    country = check_country(country)
    # A day named twice in the file: its last line counts.
    days = {day: (kind, day_name) for day, kind, day_name
            in (read_holiday_file(Path(calendar)) if calendar is not None else [])}
    if db.session.scalar(select(City.id).where(City.slug == slug)) is not None:
        raise Conflict(f"A city {slug!r} exists already; import more regions into it with "
                       f"gridmgr grids import --city {slug}.", code="city_exists")
    try:
        city = City(slug=slug, name=name, timezone=timezone, country=country)
        db.session.add(city)
        db.session.flush()
        row = calendar_row(city)
        db.session.add_all(CalendarDay(calendar_id=row.id, day=day, kind=kind, name=day_name)
                           for day, (kind, day_name) in days.items())
        # import_regions finds the pending city and commits it with the regions.
        return import_regions(boundaries, level, city=slug, srid=srid, name_field=name_field,
                              code_field=code_field, coord_sys=coord_sys, repair=repair)
    except Exception:
        db.session.rollback()
        raise


def list_cities() -> list[CitySummary]:
    """Every city with its region counts per level and its number of staff accounts."""
    counts: dict[int, dict[str, int]] = {}
    for city_id, level, n in db.session.execute(
            select(Region.city_id, Region.level, func.count()).group_by(Region.city_id,
                                                                        Region.level)):
        counts.setdefault(city_id, {})[level] = n
    staff = dict(db.session.execute(
        select(func.coalesce(User.city_id, Region.city_id), func.count())
        .select_from(User).outerjoin(Region, Region.id == User.region_id)
        .where(User.role != "citizen").group_by(func.coalesce(User.city_id, Region.city_id))
    ).all())
    return [CitySummary(c.slug, c.name, c.timezone, c.country,
                        {lvl: counts.get(c.id, {}).get(lvl, 0) for lvl in LEVELS},
                        staff.get(c.id, 0))
            for c in db.session.scalars(select(City).order_by(City.slug))]
