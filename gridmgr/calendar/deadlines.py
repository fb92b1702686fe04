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

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from gridmgr.calendar.national import DEFAULT_COUNTRY, national_year
from gridmgr.errors import InvalidInput

UNITS = ("working_hours", "working_days", "urgent_hours", "natural_days")
WORKING_UNITS = ("working_hours", "working_days")
STATES = ("green", "yellow", "red")
# The share of a limit used when its clock turns yellow: the one threshold of every clock.
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
    """The clock's colour by its definition (docs/clock.md): ``green`` below
    :data:`YELLOW_FROM` of the limit, ``yellow`` from there up to the deadline itself, ``red``
    after the deadline.

    The limit and the time used are measured in the unit's own clock from ``start``.
    ``paused`` is the time (same clock) the case spent shelved, already added to ``deadline``
    by :func:`resume`; it counts neither as limit nor as time used. For a clock that is paused
    right now, pass the moment the pause began as ``now``.
    """
    now, deadline = _aware(now).astimezone(_UTC), _aware(deadline).astimezone(_UTC)
    if _overdue(deadline, now):
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


# -- stage clocks ------------------------------------------------------------------------
#
# Every stage of a case has a clock when its category gives the stage a limit. One rule colours
# all of them (docs/clock.md), here in Python and as SQL generated here from the same constants,
# so no list, filter, feed, tile, live event or evaluation can colour a clock differently.

CLOCK_STAGES = ("verify", "file", "dispatch", "accept", "handle", "check", "close")
COLOURS = ("green", "yellow", "red", "paused")
# The comparisons of the rule, written once for both languages: red strictly after the deadline
# (a step taken at the deadline is on time, as the evaluation counts it), yellow from the moment
# YELLOW_FROM of the limit is used.
RED_WHEN = ">"
YELLOW_WHEN = ">="
_COMPARE = {">": operator.gt, ">=": operator.ge}
# A case's current stage by its state (a reported case: by who reported it). Closed and
# cancelled cases have none. Only shelving pauses a clock (the handling one).
REPORTED_STAGE = {"citizen": "verify", "inspector": "file"}
STAGE_OF_STATE = {"verified": "file", "filed": "dispatch", "dispatched": "accept",
                  "accepted": "handle", "shelved": "handle", "handled": "check",
                  "checked": "close"}
# In a case's ``deadlines`` JSON: {stage: deadline, ..., "yellow": {stage: yellow moment}}.
YELLOW_KEY = "yellow"


def stage_limit(limits: dict | None, stage: str) -> dict | None:
    """The limit of ``stage`` in a category's ``limits`` (None: the stage has no clock); the
    accept stage falls back on ``GRIDMGR_ACCEPT_LIMIT`` (``Config``: half an hour, continuous)."""
    limit = (limits or {}).get(stage)
    if limit or stage != "accept":
        return limit or None
    from flask import current_app

    return current_app.config["GRIDMGR_ACCEPT_LIMIT"]


@dataclass(frozen=True)
class StageClock:
    """A stage's clock as started: its limit's unit, its start, deadline and yellow moment."""

    stage: str
    unit: str
    start: datetime
    deadline: datetime
    yellow_at: datetime


def yellow_at(start: datetime, deadline: datetime, unit: str, paused_seconds: float,
              cal: Calendar) -> datetime:
    """The moment :data:`YELLOW_FROM` of the limit (not counting paused time) is used."""
    paused = timedelta(seconds=paused_seconds)
    limit = working_elapsed(start, deadline, unit, cal) - paused
    return add_duration(start, max(limit * YELLOW_FROM, timedelta(0)) + paused, unit, cal)


def stage_clock(stage: str, limit: dict | None, start: datetime,
                cal: Calendar | Callable[[], Calendar]) -> StageClock | None:
    """The clock of ``stage`` started at ``start`` under ``limit`` (``{amount, unit}``; None:
    the stage has no clock). ``cal`` is the city's calendar or a function that gives it, asked
    only when there is a limit."""
    if not limit:
        return None
    calendar = cal if isinstance(cal, Calendar) else cal()
    unit = check_unit(limit["unit"])
    deadline = add_limit(start, float(limit["amount"]), unit, calendar)
    return StageClock(stage, unit, _aware(start).astimezone(_UTC), deadline,
                      yellow_at(start, deadline, unit, 0, calendar))


def start_stages(deadlines: dict | None, stages: tuple[str, ...] | list[str], limits: dict | None,
                 start: datetime, cal: Calendar | Callable[[], Calendar]) -> dict:
    """A case's ``deadlines`` JSON with each of ``stages`` that ``limits`` (a category's) gives
    a limit started at ``start``: its deadline under its name, its yellow moment under
    :data:`YELLOW_KEY`. The JSON given is not changed."""
    result = dict(deadlines or {})
    yellows = dict(result.get(YELLOW_KEY) or {})
    for stage in stages:
        clock = stage_clock(stage, stage_limit(limits, stage), start, cal)
        if clock is not None:
            result[stage] = clock.deadline.isoformat()
            yellows[stage] = clock.yellow_at.isoformat()
    if yellows:
        result[YELLOW_KEY] = yellows
    return result


def clock_colour(deadline: datetime | None, yellow: datetime | None, now: datetime,
                 paused_at: datetime | None = None, stopped_at: datetime | None = None
                 ) -> str | None:
    """The colour of a clock from its stored instants: None without a deadline, ``paused``
    while paused, else ``red``/``yellow``/``green`` at ``stopped_at`` (a stopped clock keeps
    its colour) or ``now``. :func:`clock_colour_sql` is the same rule in SQL."""
    if deadline is None:
        return None
    if paused_at is not None:
        return "paused"
    at = stopped_at or now
    if _overdue(deadline, at):
        return "red"
    if yellow is not None and _COMPARE[YELLOW_WHEN](at, yellow):
        return "yellow"
    return "green"


def clock_colour_sql(deadline: str, yellow: str, paused_at: str | None = None,
                     stopped_at: str | None = None, now: str = "now()") -> str:
    """:func:`clock_colour` as an SQL expression over the given SQL columns or expressions."""
    at = f"coalesce({stopped_at}, {now})" if stopped_at else now
    paused = f"WHEN {paused_at} IS NOT NULL THEN 'paused' " if paused_at else ""
    return (f"(CASE WHEN {deadline} IS NULL THEN NULL {paused}"
            f"WHEN {overdue_sql(deadline, at)} THEN 'red' "
            f"WHEN {at} {YELLOW_WHEN} {yellow} THEN 'yellow' ELSE 'green' END)")


def overdue_sql(deadline: str, at: str = "now()") -> str:
    """SQL: the clock with ``deadline`` is red at ``at``. A comparison of the deadline column
    alone, so an index on it serves it."""
    return f"{at} {RED_WHEN} {deadline}"


# The handling clock (started by dispatch, moved by extensions and shelving) in SQL over a case
# row ``c``: a handled case keeps the colour it had when it was handled.
HANDLING_CLOCK_SQL = clock_colour_sql("c.deadline", "c.yellow_at", "c.paused_at", "c.handled_at")


def handling_clock(case, now: datetime | None = None) -> str | None:
    """:data:`HANDLING_CLOCK_SQL` in Python, for any object with the case's columns."""
    return clock_colour(case.deadline, case.yellow_at, now or datetime.now(_UTC),
                        case.paused_at, case.handled_at)


def current_stage(state: str, source: str | None) -> str | None:
    """The stage whose clock runs for a case in ``state`` (None: closed or cancelled)."""
    if state == "reported":
        return REPORTED_STAGE.get(source or "citizen")
    return STAGE_OF_STATE.get(state)


def current_clock(case, now: datetime | None = None) -> dict | None:
    """``{stage, deadline, colour}`` of the case's current stage (any object with the case's
    columns); None when no stage runs. :func:`current_clock_sql` is the same in SQL."""
    stage = current_stage(case.state, getattr(case, "source", None))
    if stage is None:
        return None
    if stage == "handle":
        deadline, yellow, paused = case.deadline, case.yellow_at, case.paused_at
    else:
        deadlines = case.deadlines or {}
        deadline = _instant(deadlines.get(stage))
        yellow = _instant((deadlines.get(YELLOW_KEY) or {}).get(stage))
        paused = None
    return clock_answer(stage, deadline,
                        clock_colour(deadline, yellow, now or datetime.now(_UTC), paused))


def clock_answer(stage: str | None, deadline: datetime | None, colour: str | None
                 ) -> dict | None:
    """A stage clock as answers show it: ``{stage, deadline (UTC, ISO), colour}``; None
    without a stage."""
    if stage is None:
        return None
    return {"stage": stage,
            "deadline": deadline.astimezone(_UTC).isoformat() if deadline else None,
            "colour": colour}


def current_clock_sql(alias: str = "c", now: str = "now()") -> dict[str, str]:
    """SQL expressions over the case row ``alias``: its current ``stage``, that stage's
    ``deadline`` and ``colour`` (:func:`current_clock`)."""
    branches = [(f"{alias}.state = 'reported' AND {alias}.source = '{source}'", stage)
                for source, stage in REPORTED_STAGE.items()]
    branches += [(f"{alias}.state = '{state}'", stage) for state, stage in STAGE_OF_STATE.items()]

    def over(expression) -> str:
        whens = " ".join(f"WHEN {condition} THEN {expression(stage)}"
                         for condition, stage in branches)
        return f"(CASE {whens} END)"

    def columns(stage: str) -> tuple[str, str, str | None]:
        if stage == "handle":
            return f"{alias}.deadline", f"{alias}.yellow_at", f"{alias}.paused_at"
        return (f"CAST({alias}.deadlines->>'{stage}' AS timestamptz)",
                f"CAST({alias}.deadlines->'{YELLOW_KEY}'->>'{stage}' AS timestamptz)", None)

    return {"stage": over(lambda stage: f"'{stage}'"),
            "deadline": over(lambda stage: columns(stage)[0]),
            "colour": over(lambda stage: clock_colour_sql(*columns(stage), now=now))}


def _overdue(deadline: datetime, at: datetime) -> bool:
    return _COMPARE[RED_WHEN](at, deadline)


def _instant(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


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
