"""A country's public holidays and swapped working days (调休), from maintained libraries.

China comes from ``chinesecalendar``: the State Council's yearly notice, holidays and the
weekend days worked in exchange. Every other country comes from ``holidays`` (its public
holidays, observed days included, and the weekend working days of the countries that have
them). Each country and year is read once per process.

A year a library does not cover (China's next year before its notice is in a release, say)
has no national days: deadlines in it follow the city's weekly pattern alone, and
:func:`uncovered_years` names it so that ``gridmgr calendar list`` and ``/api/v1/health``
can warn about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from importlib.metadata import version

import chinese_calendar
import holidays

from gridmgr.errors import InvalidInput

DEFAULT_COUNTRY = "CN"
# Years reached within this many days of today are checked for a national calendar.
WARN_AHEAD_DAYS = 60


@dataclass(frozen=True)
class NationalYear:
    """One country's year: days off and weekend days worked, by name; ``covered`` is False
    when the library has no data for the year (then both are empty)."""

    country: str
    year: int
    covered: bool
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    names: dict[date, str] = field(default_factory=dict, compare=False, hash=False)


@lru_cache(maxsize=512)
def national_year(country: str, year: int) -> NationalYear:
    """The country's national days of ``year`` (cached per process)."""
    if country == "CN":
        return _china(year)
    return _from_holidays(country, year)


def _china(year: int) -> NationalYear:
    first, last = date(year, 1, 1), date(year, 12, 31)
    try:
        off = chinese_calendar.get_holidays(first, last, include_weekends=False)
        worked = [d for d in chinese_calendar.get_workdays(first, last) if d.weekday() >= 5]
    except NotImplementedError:
        return NationalYear("CN", year, covered=False)
    names = {d: chinese_calendar.get_holiday_detail(d)[1] or "" for d in (*off, *worked)}
    return NationalYear("CN", year, True, frozenset(off), frozenset(worked), names)


def _from_holidays(country: str, year: int) -> NationalYear:
    try:
        days = holidays.country_holidays(country, years=year)
    except NotImplementedError:
        return NationalYear(country, year, covered=False)
    if not days.start_year <= year <= days.end_year:
        return NationalYear(country, year, covered=False)
    worked = frozenset(d for d in days.weekend_workdays if d.year == year)
    return NationalYear(country, year, True, frozenset(days), worked,
                        {**dict(days.items()), **{d: "working day" for d in worked}})


def check_country(code: str | None) -> str:
    """The ISO 3166 alpha-2 code in capitals, or a 422 ``unknown_country`` when no
    library has a calendar for it."""
    country = (code or "").strip().upper()
    if country != "CN" and country not in holidays.list_supported_countries():
        raise InvalidInput(f"no public-holiday calendar for country {code!r}; use an ISO 3166 "
                           "two-letter code such as CN or US", code="unknown_country")
    return country


def library_name(country: str) -> str:
    """The library (and its version) that holds the country's calendar."""
    name = "chinesecalendar" if country == "CN" else "holidays"
    return f"{name} {version(name)}"


def years_ahead(today: date, days: int = WARN_AHEAD_DAYS) -> list[int]:
    """This year and every year reached within ``days`` from ``today``."""
    return list(range(today.year, (today + timedelta(days=days)).year + 1))


def uncovered_years(country: str, years: list[int] | range) -> list[int]:
    """The years among ``years`` for which the library has no calendar of ``country``."""
    return [y for y in years if not national_year(country, y).covered]


def uncovered_warning(country: str, years: list[int]) -> str:
    """A sentence naming the years without a national calendar and what follows."""
    listed = ", ".join(str(y) for y in years)
    return (f"no national calendar for {country} {listed} in {library_name(country)}: "
            f"deadlines in {listed} follow the weekly pattern only (no holidays, no swapped "
            "working days) until the library is upgraded or the days are added to the city's "
            "calendar")
