"""Prevention as a user may read it: city and region scope resolved, policy asked.

Like the statistics, the caller's region scope is the floor: a street's director reads only
the street's grids, a grid inspector only their own grids; asking for another region is
refused (403, ``map.view``).
"""

from __future__ import annotations

from datetime import date, datetime

from gridmgr.calendar.deadlines import calendar_for_city
from gridmgr.errors import InvalidInput
from gridmgr.evaluation.operations import city_id_for
from gridmgr.grids.reading import find_region
from gridmgr.people.models import User
from gridmgr.people.policy import authorize, scope_filter, user_city_id
from gridmgr.prevention.forecast import next_week_forecast
from gridmgr.prevention.hotspots import ALPHA, WEEKS, find_hotspots, recurring_problems


def _scope(user: User | None, region: str | None, city: str | None) -> tuple[int, str | None]:
    own = user_city_id(user) if user is not None else None
    city_id = own if own is not None and not city else city_id_for(city)
    prefix = region or (scope_filter(user) if user is not None else None)
    authorize(user, "map.view", region_code=prefix, city_id=city_id)
    if prefix:
        find_region(prefix, city_id)
    return city_id, prefix


def hotspots_for(user: User | None, *, region: str | None = None, city: str | None = None,
                 end: datetime | None = None, weeks: int = WEEKS, alpha: float = ALPHA,
                 window_days: int = 28, min_cases: int = 3, reopen_days: int = 14) -> dict:
    """This week's hotspots and the recurring problems in the caller's scope."""
    if end is not None and end.tzinfo is None:
        raise InvalidInput("end needs a UTC offset.", code="bad_time")
    city_id, prefix = _scope(user, region, city)
    body = find_hotspots(city_id, prefix, end, weeks=weeks, alpha=alpha)
    body["region"] = prefix
    body["recurring"] = recurring_problems(city_id, prefix, end, window_days=window_days,
                                           min_cases=min_cases, reopen_days=reopen_days)
    return body


def forecast_for(user: User | None, *, region: str | None = None, city: str | None = None,
                 start: date | None = None) -> dict:
    """Next week's expected cases per grid and category in the caller's scope."""
    city_id, prefix = _scope(user, region, city)
    body = next_week_forecast(city_id, calendar_for_city(city_id).tz, prefix, start)
    body["region"] = prefix
    return body
