"""Deadlines and clocks against a city's working calendar.

Units (DESIGN.md "Time limits"):

- ``working_hours`` (工作时): only time inside the working periods of working days counts.
  A start outside working time begins counting at the next working moment.
- ``working_days`` (工作日): N working days = N × (the length of one working day) of working
  time, counted like working hours. With the default periods (8 h a day) one working day started
  Monday 10:00 falls due Tuesday 10:00; started Friday 17:00 it falls due Monday 17:00.
- ``urgent_hours`` (紧急工作时): a continuous clock; nights, weekends and holidays count.
- ``natural_days`` (自然日): calendar days on the city's wall clock (same local time N days
  later, whatever the calendar says, across daylight-saving changes too).

Working periods are closed intervals: a limit that is used up exactly at 12:00 falls due at
12:00, not at 14:00. Every function takes timezone-aware datetimes (any zone; they are read on
the city's clock, ``cal.tz``) and returns aware datetimes **in UTC**: instants that compare
correctly even across an autumn fold (Python compares two datetimes of the same ZoneInfo by
wall clock). Show them with ``.astimezone(cal.tz)``. Durations ("working time") are
``timedelta`` objects measured in the unit's own clock: working time for the working units,
real time for urgent hours and wall-clock time for natural days.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from gridmgr.calendar.national import DEFAULT_COUNTRY, national_year
from gridmgr.errors import InvalidInput

UNITS = ("working_hours", "working_days", "urgent_hours", "natural_days")
WORKING_UNITS = ("working_hours", "working_days")
STATES = ("green", "yellow", "red")
YELLOW_FROM = 0.8

DEFAULT_TZ = "Asia/Shanghai"
DEFAULT_PERIODS = ((time(8), time(12)), (time(14), time(18)))
DEFAULT_WEEKDAYS = frozenset({1, 2, 3, 4, 5})

# A calendar without a single working day in this many days cannot produce a deadline.
_SEARCH_DAYS = 3700
_UTC = UTC


@dataclass(frozen=True)
class Calendar:
    """A city's working calendar: time zone, daily working periods (local times), ISO working
    weekdays (1 = Monday), the country whose national holidays and swapped working days (调休,
    work on a weekend day) apply (none: the weekly pattern alone), and the city's own holidays
    and swapped working days, which take precedence."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TZ))
    periods: tuple[tuple[time, time], ...] = DEFAULT_PERIODS
    weekdays: frozenset[int] = DEFAULT_WEEKDAYS
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    country: str | None = None

    def __post_init__(self) -> None:
        periods = tuple(sorted((tuple(p) for p in self.periods), key=lambda p: p[0]))
        for start, end in periods:
            if not start < end:
                raise InvalidInput(f"a working period must start before it ends: {start}–{end}",
                                   code="invalid_calendar")
        for (_, end), (nxt, _) in zip(periods, periods[1:], strict=False):
            if nxt < end:
                raise InvalidInput("working periods overlap", code="invalid_calendar")
        if any(w not in range(1, 8) for w in self.weekdays):
            raise InvalidInput("weekdays are ISO numbers 1 (Monday) to 7 (Sunday)",
                               code="invalid_calendar")
        object.__setattr__(self, "periods", periods)
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))

    @property
    def day_length(self) -> timedelta:
        """Working time in one ordinary working day (8 h with the default periods)."""
        return sum((_naive_span(a, b) for a, b in self.periods), timedelta(0))

    def is_working_day(self, day: date) -> bool:
        """The city's own days first, then the country's (a swapped working day works, a
        holiday does not), else the weekly pattern decides. A year the national library does
        not cover has no national days."""
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        if self.country:
            national = national_year(self.country, day.year)
            if day in national.workdays:
                return True
            if day in national.holidays:
                return False
        return day.isoweekday() in self.weekdays

    def is_working_time(self, moment: datetime) -> bool:
        """Whether ``moment`` lies inside a working period (ends included) of a working day."""
        local = _aware(moment).astimezone(self.tz)
        if not self.is_working_day(local.date()):
            return False
        return any(a <= local.timetz().replace(tzinfo=None) <= b for a, b in self.periods)


def calendar_for_city(city_id: int | None) -> Calendar:
    """The city's calendar from its WorkingCalendar and CalendarDay rows and its country's
    national days, or the defaults (in the city's own time zone when it has one)."""
    from gridmgr.calendar.models import CalendarDay, WorkingCalendar
    from gridmgr.extensions import db
    from gridmgr.grids.models import City

    if city_id is None:
        return Calendar(country=DEFAULT_COUNTRY)
    found = db.session.execute(
        db.select(City.timezone, City.country, WorkingCalendar)
        .outerjoin(WorkingCalendar, WorkingCalendar.city_id == City.id)
        .where(City.id == city_id)).one_or_none()
    city_tz, country, row = found if found is not None else (None, None, None)
    country = country or DEFAULT_COUNTRY
    if row is None:
        return Calendar(tz=ZoneInfo(city_tz or DEFAULT_TZ), country=country)
    days = db.session.execute(
        db.select(CalendarDay.day, CalendarDay.kind).where(CalendarDay.calendar_id == row.id)).all()
    return Calendar(
        tz=ZoneInfo(row.timezone or DEFAULT_TZ),
        periods=tuple((parse_time(a), parse_time(b)) for a, b in (row.periods or [])),
        weekdays=frozenset(int(w) for w in (row.weekdays or [])),
        holidays=frozenset(d for d, kind in days if kind == "holiday"),
        workdays=frozenset(d for d, kind in days if kind == "workday"),
        country=country,
    )


def calendar_version_sql(city_id: str) -> str:
    """An SQL expression: the version of the working calendar (time zone, country, hours,
    special days) of the city whose id is the SQL ``city_id``. The database raises a calendar's
    version with every change to it or its days (migration 0016). A statement that needs a
    deadline selects it, and :func:`calendar_by_version` answers from the process's cache
    while it is unchanged."""
    return f"""(SELECT concat_ws('|', ci.timezone, ci.country, w.id, w.version)
        FROM cities ci LEFT JOIN working_calendars w ON w.city_id = ci.id
        WHERE ci.id = {city_id})"""


_calendars: dict[tuple[int, str | None], Calendar] = {}


def calendar_by_version(city_id: int, version: str | None) -> Calendar:
    """The city's calendar, cached per process under its version
    (:func:`calendar_version_sql`): an edited calendar has a new version and is read again."""
    calendar = _calendars.get((city_id, version))
    if calendar is None:
        calendar = calendar_for_city(city_id)
        if len(_calendars) > 64:
            _calendars.clear()
        _calendars[(city_id, version)] = calendar
    return calendar


def parse_time(value: str | time) -> time:
    """``"08:00"`` → ``time(8, 0)``; ``"24:00"`` is the end of the day."""
    if isinstance(value, time):
        return value
    if value in ("24:00", "24:00:00"):
        return time.max
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"not a time of day: {value!r}", code="invalid_calendar") from None


def check_unit(unit: str) -> str:
    """The unit itself, or a 422 ``unknown_unit``."""
    if unit not in UNITS:
        raise InvalidInput(f"unknown time-limit unit {unit!r}; use one of {', '.join(UNITS)}",
                           code="unknown_unit", unit=unit)
    return unit


def limit_duration(amount: float, unit: str, cal: Calendar) -> timedelta:
    """The limit as a duration in its unit's clock (working days × the day's working time)."""
    check_unit(unit)
    if amount is None or amount < 0:
        raise InvalidInput("a time limit cannot be negative", code="invalid_limit")
    if unit == "working_days":
        return cal.day_length * amount
    if unit == "natural_days":
        return timedelta(days=amount)
    return timedelta(hours=amount)


def add_limit(start: datetime, amount: float, unit: str, cal: Calendar) -> datetime:
    """The deadline of a limit of ``amount`` ``unit`` that starts at ``start``."""
    return add_duration(start, limit_duration(amount, unit, cal), unit, cal)


def add_duration(start: datetime, duration: timedelta, unit: str, cal: Calendar) -> datetime:
    """``start`` moved forward by ``duration`` measured in the unit's clock."""
    check_unit(unit)
    start = _aware(start)
    if duration < timedelta(0):
        raise InvalidInput("a duration cannot be negative", code="invalid_limit")
    if unit == "urgent_hours":
        return start.astimezone(_UTC) + duration
    if unit == "natural_days":
        wall = start.astimezone(cal.tz).replace(tzinfo=None) + duration
        return _localize(wall, cal.tz).astimezone(_UTC)
    remaining = duration
    begin = start.astimezone(_UTC)
    for a, b in _working_intervals(cal, begin):
        if b < begin:
            continue
        s = max(a, begin)
        if remaining <= b - s:
            return s + remaining
        remaining -= b - s
    raise InvalidInput("the working calendar has no working time", code="invalid_calendar")


def next_working_moment(moment: datetime, cal: Calendar) -> datetime:
    """``moment`` itself when it is working time, else the start of the next working period."""
    return add_duration(moment, timedelta(0), "working_hours", cal)


def working_elapsed(start: datetime, end: datetime, unit: str, cal: Calendar) -> timedelta:
    """The time between ``start`` and ``end`` in the unit's clock (zero when end <= start)."""
    check_unit(unit)
    start, end = _aware(start).astimezone(_UTC), _aware(end).astimezone(_UTC)
    if end <= start:
        return timedelta(0)
    if unit == "urgent_hours":
        return end - start
    if unit == "natural_days":
        return (end.astimezone(cal.tz).replace(tzinfo=None)
                - start.astimezone(cal.tz).replace(tzinfo=None))
    total = timedelta(0)
    for a, b in _working_intervals(cal, start):
        if a >= end:
            break
        lo, hi = max(a, start), min(b, end)
        if hi > lo:
            total += hi - lo
    return total


def clock_state(start: datetime, deadline: datetime, now: datetime, unit: str, cal: Calendar,
                paused: timedelta = timedelta(0)) -> str:
    """``green`` below 80 % of the limit, ``yellow`` from 80 %, ``red`` after the deadline.

    The limit and the time used are measured in the unit's own clock from ``start``.
    ``paused`` is the time (same clock) the case spent shelved, already added to ``deadline``
    by :func:`resume`; it counts neither as limit nor as time used. For a clock that is paused
    right now, pass the moment the pause began as ``now``.
    """
    now, deadline = _aware(now).astimezone(_UTC), _aware(deadline).astimezone(_UTC)
    if now > deadline:
        return "red"
    limit = working_elapsed(start, deadline, unit, cal) - paused
    used = working_elapsed(start, now, unit, cal) - paused
    if limit <= timedelta(0):
        return "yellow"
    return "yellow" if used >= limit * YELLOW_FROM else "green"


def fraction_used(start: datetime, deadline: datetime, now: datetime, unit: str, cal: Calendar,
                  paused: timedelta = timedelta(0)) -> float:
    """The share of the limit used at ``now`` (1.0 at the deadline, more when overdue)."""
    limit = working_elapsed(start, deadline, unit, cal) - paused
    if limit <= timedelta(0):
        return 1.0
    used = working_elapsed(start, now, unit, cal) - paused
    if _aware(now).astimezone(_UTC) > _aware(deadline).astimezone(_UTC):
        used = limit + working_elapsed(deadline, now, unit, cal)
    return max(used / limit, 0.0)


def extend(deadline: datetime, amount: float, unit: str, cal: Calendar) -> datetime:
    """An extension (延期): the new deadline is the old one plus ``amount`` ``unit``."""
    return add_limit(deadline, amount, unit, cal)


def paused_time(paused_at: datetime, resumed_at: datetime, unit: str, cal: Calendar) -> timedelta:
    """How much of the unit's clock a pause (挂账, shelving) from ``paused_at`` to
    ``resumed_at`` took: the working time for working units, real time for urgent hours."""
    return working_elapsed(paused_at, resumed_at, unit, cal)


def resume(deadline: datetime, paused_at: datetime, resumed_at: datetime, unit: str,
           cal: Calendar) -> tuple[datetime, timedelta]:
    """Resuming a shelved clock: the new deadline, moved by the time paused, and that time
    (add it to the case's total ``paused`` for :func:`clock_state`)."""
    took = paused_time(paused_at, resumed_at, unit, cal)
    return add_duration(deadline, took, unit, cal), took


# -- internals ---------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput("times must carry a time zone", code="naive_datetime")
    return moment


def _naive_span(a: time, b: time) -> timedelta:
    day = date(2000, 1, 3)
    return datetime.combine(day, b) - datetime.combine(day, a)


def _localize(wall: datetime, tz: ZoneInfo) -> datetime:
    """A local wall-clock time as an aware datetime. An ambiguous time (autumn fold) is its
    first occurrence; a time skipped by a spring-forward change is the end of the gap (02:30 on
    that night becomes 03:00), so later wall times never map to earlier instants."""
    aware = wall.replace(tzinfo=tz, fold=0)
    normal = aware.astimezone(_UTC).astimezone(tz)
    if normal.replace(tzinfo=None) == wall:
        return normal
    # Inside a gap: the transition instant lies between the two readings of ``wall``.
    lo = wall.replace(tzinfo=tz, fold=1).astimezone(_UTC)
    hi = aware.astimezone(_UTC)
    if lo > hi:
        lo, hi = hi, lo
    after = hi.astimezone(tz).utcoffset()
    while hi - lo > timedelta(microseconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return hi.astimezone(tz)


def _working_intervals(cal: Calendar, begin: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Working periods (UTC start, UTC end) of working days from ``begin``'s local day on."""
    day = begin.astimezone(cal.tz).date() - timedelta(days=1)
    for _ in range(_SEARCH_DAYS):
        yield from _day_intervals(cal, day)
        day += timedelta(days=1)


@lru_cache(maxsize=4096)
def _day_intervals(cal: Calendar, day: date) -> tuple[tuple[datetime, datetime], ...]:
    """The working periods of one local day in UTC (none on a day off). Cached: every report
    times its first stage, and the same few days' periods are converted again each time."""
    if not cal.is_working_day(day):
        return ()
    intervals = ((_localize(datetime.combine(day, a), cal.tz).astimezone(_UTC),
                  _localize(datetime.combine(day, b), cal.tz).astimezone(_UTC))
                 for a, b in cal.periods)
    return tuple((lo, hi) for lo, hi in intervals if hi > lo)
