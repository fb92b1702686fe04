"""Evaluation periods: half-open instant ranges ``[start, end)`` in the city's time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from gridmgr.errors import InvalidInput

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Period:
    """``[start, end)`` as aware datetimes, and the label people read ("2026-11")."""

    start: datetime
    end: datetime
    label: str


def month(value: str, tz: ZoneInfo) -> Period:
    """The calendar month ``YYYY-MM`` from local midnight of its first day to the next month's."""
    found = _MONTH.match(value or "")
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise InvalidInput(f"A period is a month written YYYY-MM, not {value!r:.40}.",
                           code="bad_period")
    year, number = int(found.group(1)), int(found.group(2))
    if not 1 <= year < 9999:
        raise InvalidInput("A period's year must be between 0001 and 9998.", code="bad_period")
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    return Period(_local_midnight(first, tz), _local_midnight(following, tz), value)


def between(start: str, end: str, tz: ZoneInfo) -> Period:
    """Explicit bounds: dates (local midnight) or ISO datetimes with an offset; end excluded."""
    begins, ends = _instant(start, tz, "start"), _instant(end, tz, "end")
    if ends <= begins:
        raise InvalidInput("The period's end must come after its start.", code="bad_period")
    return Period(begins, ends, f"{start}/{end}")


def resolve(tz: ZoneInfo, period: str | None = None, start: str | None = None,
            end: str | None = None) -> Period:
    """A period from either ``period`` (YYYY-MM) or both ``start`` and ``end``."""
    if period and (start or end):
        raise InvalidInput("Give either period or start and end, not both.", code="bad_period")
    if period:
        return month(period, tz)
    if start and end:
        return between(start, end, tz)
    raise InvalidInput("Give period=YYYY-MM, or start and end dates.", code="bad_period")


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def _instant(value: str, tz: ZoneInfo, name: str) -> datetime:
    try:
        if len(value) == 10:
            return _local_midnight(date.fromisoformat(value), tz)
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"The period's {name} must be a date YYYY-MM-DD or an ISO datetime.",
                           code="bad_period") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"The period's {name} needs a time zone offset.", code="bad_period")
    return moment
