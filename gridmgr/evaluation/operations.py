"""Statistics as a user may read them: city and scope resolved, policy asked, the table made.

The caller's region scope is the floor: a street's director reads only cases in the street
and people whose region is in it; asking for another street (or the district above) is
refused (403), and grouping above the scope is not possible.
"""

from __future__ import annotations

from sqlalchemy import select

from gridmgr.calendar.deadlines import calendar_for_city
from gridmgr.errors import InvalidInput, NotFound
from gridmgr.evaluation import periods
from gridmgr.evaluation.tables import TABLES, evaluate
from gridmgr.extensions import db
from gridmgr.grids.models import CODE_LENGTH, City
from gridmgr.grids.reading import find_region
from gridmgr.people.models import User
from gridmgr.people.policy import authorize, scope_filter, user_city_id


def statistics(user: User | None, table: str, *, period: str | None = None,
               start: str | None = None, end: str | None = None, level: str | None = None,
               region: str | None = None, city: str | None = None) -> dict:
    """One evaluation table for ``user``: 403 outside their scope or without ``stats.view``,
    404 for an unknown city or region, 422 for a bad period or level."""
    city_id = _city_id(user, city)
    prefix = region or (scope_filter(user) if user is not None else None)
    authorize(user, "stats.view", region_code=prefix, city_id=city_id)
    return city_table(table, city_id, prefix=prefix, period=period, start=start, end=end,
                      level=level)


def city_table(table: str, city_id: int, *, prefix: str | None = None,
               period: str | None = None, start: str | None = None, end: str | None = None,
               level: str | None = None) -> dict:
    """One evaluation table for the cases of a city under ``prefix``, with no caller to check
    (the CLI: whoever runs the server sees everything)."""
    if table not in TABLES:
        raise NotFound(f"There are statistics for {', '.join(TABLES)}.", code="unknown_table")
    if prefix:
        find_region(prefix, city_id)
    span = periods.resolve(calendar_for_city(city_id).tz, period, start, end)
    length = max(_level_length(level, prefix), len(prefix or ""))
    # every region, department and category is listed, with zeros when nothing happened
    rows = evaluate(table, span, city_id, level=length, prefix=prefix, idle=True)
    return {"table": table, "city_id": city_id, "region": prefix,
            "level": next(name for name, n in CODE_LENGTH.items() if n == length)
            if table == "regions" else None,
            "period": {"label": span.label, "start": span.start.isoformat(),
                       "end": span.end.isoformat()},
            "rows": rows}


def city_id_for(slug: str | None) -> int:
    """The city called ``slug``, or the only city there is (404 / 422 otherwise)."""
    if slug:
        # a NUL can be in no slug, and PostgreSQL refuses it in a parameter
        found = None if "\x00" in slug else db.session.scalar(
            select(City.id).where(City.slug == slug))
        if found is None:
            raise NotFound(f"No city is called {slug!r:.60}.", code="unknown_city")
        return found
    ids = db.session.scalars(select(City.id).limit(2)).all()
    if len(ids) != 1:
        raise InvalidInput("Say which city: city=<slug>.", code="city_required")
    return ids[0]


def _city_id(user: User | None, slug: str | None) -> int:
    # another city than the user's own is refused by policy
    own = user_city_id(user) if user is not None else None
    return own if own is not None and not slug else city_id_for(slug)


def _level_length(level: str | None, prefix: str | None) -> int:
    """The code length to group regions by: the named level, else the one below the prefix."""
    if level is None:
        return min(len(prefix) + 3, 15) if prefix else 6
    if level not in CODE_LENGTH:
        raise InvalidInput(f"level is one of {', '.join(CODE_LENGTH)}.", code="bad_level")
    return CODE_LENGTH[level]
