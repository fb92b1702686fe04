"""A city's working calendar: its hours and working weekdays and its country, changed here
(audited), a month of days each marked worked or not and why (the city's own day, its
country's holiday or swapped working day from ``chinesecalendar`` / ``holidays``, or the
weekly pattern), and the city's own days, added, changed or removed here (audited). Whether a
day is worked is the calendar's own answer (``Calendar.is_working_day``), the one the deadline
clock counts with; changes go through ``gridmgr.calendar.operations``, as the command line's
do. Who may is the policy's ``admin.rules`` (time limits)."""

from __future__ import annotations

import calendar as weeks
from datetime import date, datetime

from flask import redirect, request, url_for
from sqlalchemy import select

from gridmgr.calendar import operations as calendars
from gridmgr.calendar.deadlines import Calendar, calendar_for_city
from gridmgr.calendar.national import library_name, national_year
from gridmgr.errors import InvalidInput
from gridmgr.extensions import db
from gridmgr.grids.models import City
from gridmgr.people.models import User
from gridmgr.people.policy import authorize, user_city_id
from web.workbench import bp
from web.workbench.i18n import gettext
from web.workbench.pages import render, require

NAME_LENGTH = 100  # calendar_days.name


def _city(user: User, slug: str | None) -> City:
    """The city whose calendar is shown: the user's own, or the one a platform administrator
    names (the first by slug when she names none); 403 for another city's."""
    own = user_city_id(user)
    if not slug:
        city = db.session.get(City, own) if own is not None else db.session.scalar(
            select(City).order_by(City.slug).limit(1))
        if city is None:
            raise InvalidInput("There is no city yet: add one with gridmgr cities add.",
                               code="city_not_found")
    else:
        city = calendars.find_city(slug[:64])
    # A city's calendar holds for the whole city: its administrator, not a street's.
    authorize(user, "admin.rules", region_code=None, city_id=city.id)
    return city


def _month(value: str | None, today: date) -> date:
    """The first day of the month asked for (``YYYY-MM``), this month by default."""
    if not value:
        return today.replace(day=1)
    try:
        return datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise InvalidInput("month must be YYYY-MM.", code="bad_month") from None


def _shifted(month: date, by: int) -> str:
    index = month.year * 12 + month.month - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@bp.get("/workbench/admin/calendar")
def admin_calendar():
    """A city's working calendar, a month at a time, with the city's own days of its year."""
    user = require("admin.rules")
    return _calendar_page(user, request.args.get("city"), request.args.get("month"))


def _back(city: City, month: str | None, anchor: str):
    return redirect(url_for("workbench.admin_calendar", city=city.slug, month=month or None)
                    + f"#{anchor}", code=303)


def _calendar_page(user: User, slug: str | None, month_arg: str | None, status: int = 200,
                   errors: dict | None = None, form: dict | None = None):
    city = _city(user, slug)
    cal = calendar_for_city(city.id)
    month = _month(month_arg, datetime.now(cal.tz).date())
    own = {d.day: d for d in calendars.list_days(city, month.year)}
    national = national_year(cal.country, month.year)
    days = []
    for week in weeks.Calendar().monthdatescalendar(month.year, month.month):
        days.append([_day(d, cal, own, national) if d.month == month.month else None
                     for d in week])
    cities = [] if user_city_id(user) is not None else list(
        db.session.scalars(select(City).order_by(City.slug)))
    return render("admin_calendar.html", status, city=city, cal=cal, month=month,
                  weeks=days, own_days=sorted(own.values(), key=lambda d: d.day),
                  national=national, library=library_name(cal.country), cities=cities,
                  previous=_shifted(month, -1), next=_shifted(month, 1),
                  kinds=calendars.DAY_KINDS, errors=errors or {}, form=form or {})


def _day(day: date, cal, own: dict, national) -> dict:
    """One day of the month: worked or not (the calendar's answer) and the rule that says so."""
    mark = own.get(day)
    if mark is not None:
        source, name = "city", mark.name
    elif day in national.holidays or day in national.workdays:
        source, name = "national", national.names.get(day)
    else:
        source, name = "week", None
    return {"day": day, "working": cal.is_working_day(day), "source": source, "name": name}


def _sentences() -> dict[str, str]:
    return {"bad_day": gettext("Give the day as a date (YYYY-MM-DD)."),
            "invalid_calendar_day": gettext("Choose a holiday or a working day."),
            "name_too_long": gettext("The name may have at most 100 characters."),
            "invalid_calendar": gettext("Give the working hours as periods such as 08:00-12:00, "
                                        "14:00-18:00, each ending after it starts, none "
                                        "overlapping another."),
            "bad_weekdays": gettext("Choose the working weekdays from the list."),
            "unknown_country": gettext("There is no holiday calendar for this country: give a "
                                       "two-letter ISO 3166 code such as CN or US.")}


@bp.post("/workbench/admin/calendar")
def admin_calendar_day():
    """Mark a day of the city as a holiday or a working day, or change its mark (audited); a
    refusal is shown next to its field and changes nothing."""
    user = require("admin.rules")
    form = request.form
    city = _city(user, form.get("city"))
    raw_day, kind = (form.get("day") or "").strip(), form.get("kind") or ""
    name = (form.get("name") or "").strip() or None
    try:
        day = _parse_day(raw_day)
        if name is not None and len(name) > NAME_LENGTH:
            raise InvalidInput("The name may have at most 100 characters.",
                               code="name_too_long")
        calendars.set_day(city, day, kind, name, actor=user)
    except InvalidInput as refused:
        db.session.rollback()
        field = {"bad_day": "day", "invalid_calendar_day": "kind",
                 "name_too_long": "name"}.get(refused.code, "form")
        sentence = _sentences().get(refused.code) or refused.message
        return _calendar_page(user, city.slug, form.get("month"), refused.status,
                              {field: sentence},
                              {"day": raw_day, "kind": kind, "name": name or ""})
    return redirect(url_for("workbench.admin_calendar", city=city.slug,
                            month=day.strftime("%Y-%m")) + f"#day-{day.isoformat()}", code=303)


@bp.post("/workbench/admin/calendar/remove")
def admin_calendar_remove():
    """Forget a day's own mark: the country's calendar and the weekly pattern decide it again
    (audited)."""
    user = require("admin.rules")
    city = _city(user, request.form.get("city"))
    day = _parse_day((request.form.get("day") or "").strip())
    calendars.remove_day(city, day, actor=user)
    return redirect(url_for("workbench.admin_calendar", city=city.slug,
                            month=day.strftime("%Y-%m")), code=303)


@bp.post("/workbench/admin/calendar/hours")
def admin_calendar_hours():
    """Change the city's daily working periods and working weekdays at once (the same change,
    checks and audit entry as ``gridmgr calendar hours``); a refusal is shown next to its field
    and changes nothing."""
    user = require("admin.rules")
    form = request.form
    city = _city(user, form.get("city"))
    raw_periods, raw_days = (form.get("periods") or "").strip(), form.getlist("weekdays")
    field = "hours"
    try:
        periods = _parse_periods(raw_periods)
        field = "weekdays"
        days = _parse_weekdays(raw_days)
        field = "hours"
        calendars.set_working_hours(city, periods, days, actor=user)
    except InvalidInput as refused:
        db.session.rollback()
        return _calendar_page(user, city.slug, form.get("month"), refused.status,
                              {field: _sentences().get(refused.code) or refused.message},
                              {"periods": raw_periods, "weekdays": raw_days})
    return _back(city, form.get("month"), "set-hours")


@bp.post("/workbench/admin/calendar/country")
def admin_calendar_country():
    """Make the city follow another country's holidays and swapped working days (the same
    change, check and audit entry as ``gridmgr calendar country``)."""
    user = require("admin.rules")
    form = request.form
    city = _city(user, form.get("city"))
    code = (form.get("country") or "").strip()
    try:
        calendars.set_country(city, code, actor=user)
    except InvalidInput as refused:
        db.session.rollback()
        return _calendar_page(user, city.slug, form.get("month"), refused.status,
                              {"country": _sentences().get(refused.code) or refused.message},
                              {"country": code})
    return _back(city, form.get("month"), "set-country")


def _parse_periods(value: str) -> list[list[str]]:
    """``"08:00-12:00, 14:00-18:00"`` (or with en dashes, as the page shows them) → the
    periods as the command line gives them; the times themselves are the calendar's to check."""
    periods = [p.replace("–", "-").split("-") for p in value.split(",") if p.strip()]
    if not periods or any(len(p) != 2 for p in periods):
        raise InvalidInput("periods look like 08:00-12:00, 14:00-18:00", code="invalid_calendar")
    return [[a.strip(), b.strip()] for a, b in periods]


def _parse_weekdays(values: list[str]) -> list[int]:
    """The ticked weekdays as numbers, refused as the calendar itself refuses them."""
    try:
        days = [int(v) for v in values]
    except ValueError:
        raise InvalidInput("weekdays are numbers", code="bad_weekdays") from None
    try:
        Calendar(weekdays=frozenset(days))
    except InvalidInput as refused:
        raise InvalidInput(refused.message, code="bad_weekdays") from None
    return days


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("Give the day as a date (YYYY-MM-DD).", code="bad_day") from None
