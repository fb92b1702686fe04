"""Holidays and swapped working days (调休) come from maintained libraries, for every year they
cover: an imported 2025 case is timed over that year's 国庆, a city outside China follows its
own country's holidays, a year no library covers yet is named by ``gridmgr calendar list`` and
by the health answer and falls back to the weekly pattern, and a city adds the days of a year
ahead of the library on top."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from cityfixtures import city_fixture  # noqa: F401
from sqlalchemy import text

from gridmgr.calendar.deadlines import add_limit, calendar_for_city
from gridmgr.calendar.models import CalendarDay
from gridmgr.calendar.national import national_year
from gridmgr.cli import main
from gridmgr.extensions import db
from gridmgr.grids.models import City
from gridmgr.legacy.importing import import_history

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
CST = timezone(timedelta(hours=8))
# A year no release of the libraries covers for China for a long while yet.
FAR = 2040


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


@pytest.fixture
def shanghai(app_ctx):
    c = City(slug="shanghai", name="上海市", timezone="Asia/Shanghai")
    db.session.add(c)
    db.session.commit()
    return c


def test_an_imported_2025_case_is_timed_over_that_years_national_day(city, tmp_path):
    """A city moving its 2025 history over: citizens' reports before 国庆 (1–8 October) and on
    the eves of its two swapped working days (Sunday 28 September, Saturday 11 October) are
    given the verify deadline (1 working hour) the calendar of 2025 gave them."""
    p = "116.401,39.901"
    history = tmp_path / "history.csv"
    history.write_text(
        "reference,category,lon,lat,step,time,actor_role,actor,department,note\n"
        f"OLD-A,E0101,{p},reported,2025-09-30T17:30:00+08:00,citizen,张三,,节前\n"
        f"OLD-B,E0101,{p},reported,2025-09-27T17:30:00+08:00,citizen,张三,,周六\n"
        f"OLD-C,E0101,{p},reported,2025-10-10T17:30:00+08:00,citizen,张三,,节后\n",
        encoding="utf-8")
    assert import_history(history).cases == 3
    due = dict(db.session.execute(text(
        "SELECT code, (deadlines->>'verify')::timestamptz FROM cases")).all())
    # Half an hour on Tuesday 30 September, the rest after the eight days off.
    assert due["OLD-A"] == datetime(2025, 10, 9, 8, 30, tzinfo=CST)
    # Saturday is off, Sunday 28 September is worked.
    assert due["OLD-B"] == datetime(2025, 9, 28, 9, 0, tzinfo=CST)
    # Half an hour on Friday 10 October, the rest on the worked Saturday.
    assert due["OLD-C"] == datetime(2025, 10, 11, 8, 30, tzinfo=CST)
    assert db.session.query(CalendarDay).count() == 0


def test_a_us_city_skips_independence_day_and_a_chinese_city_does_not(app_ctx, runner):
    chicago = City(slug="chicago", name="Chicago", timezone="America/Chicago")
    db.session.add(chicago)
    db.session.commit()
    result = runner.invoke(main, args=["calendar", "country", "us", "--city", "chicago"])
    assert result.exit_code == 0, result.output
    assert "chicago: country US" in result.output

    cal = calendar_for_city(chicago.id)
    chi = ZoneInfo("America/Chicago")
    # Thursday 3 July 2025, 17:00 + 2 working hours: Friday the 4th and the weekend are off.
    due = add_limit(datetime(2025, 7, 3, 17, tzinfo=chi), 2, "working_hours", cal)
    assert due == datetime(2025, 7, 7, 9, tzinfo=chi)
    # Thanksgiving, Thursday 27 November 2025.
    assert not cal.is_working_day(date(2025, 11, 27))

    china = calendar_for_city(None)
    due = add_limit(sh(2025, 7, 3, 17), 2, "working_hours", china)
    assert due == sh(2025, 7, 4, 9)
    listing = runner.invoke(main, args=["calendar", "list", "--year", "2025", "--city",
                                        "chicago"]).output
    assert "2025-07-04 Fri holiday Independence Day (US)" in listing


def test_an_unknown_country_is_refused_and_the_city_keeps_its_own(shanghai, runner):
    result = runner.invoke(main, args=["calendar", "country", "XX"])
    assert result.exit_code == 1
    assert "unknown_country" in result.output
    db.session.expire_all()
    assert db.session.get(City, shanghai.id).country == "CN"


def test_a_year_the_library_does_not_cover_is_named_and_follows_the_weekly_pattern(
        shanghai, runner):
    assert not national_year("CN", FAR).covered
    result = runner.invoke(main, args=["calendar", "list", "--year", str(FAR)])
    assert result.exit_code == 0, result.output
    # This year's and the coming weeks' years are checked too (2027 while it is unpublished).
    assert re.search(rf"warning: no national calendar for CN ([0-9]{{4}}, )*{FAR} in "
                     r"chinesecalendar [0-9.]+: deadlines in", result.output)
    assert "follow the weekly pattern only" in result.output
    covered = runner.invoke(main, args=["calendar", "list", "--year", "2025"]).output
    assert "CN 2025" not in covered

    # 1 October of that year, a Monday, is an ordinary working day: nothing is known of it.
    cal = calendar_for_city(shanghai.id)
    assert date(FAR, 10, 1).isoweekday() == 1
    due = add_limit(sh(FAR, 9, 28, 17), 2, "working_hours", cal)  # a Friday
    assert due == sh(FAR, 10, 1, 9)


def test_the_health_answer_names_the_years_without_a_national_calendar(client, shanghai):
    far_ahead = (date(FAR, 12, 31) - date.today()).days
    answer = client.get(f"/api/v1/health?days={far_ahead}")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "ok"
    [china] = body["calendar"]["uncovered"]
    assert china["country"] == "CN" and china["cities"] == ["shanghai"]
    assert FAR in china["years"]
    known = {y for y in range(date.today().year, FAR + 1) if national_year("CN", y).covered}
    assert known and not known & set(china["years"])
    assert str(FAR) in body["warnings"][0] and body["warnings"][0] == china["message"]

    # Within the next day only this year (or the next one on New Year's Eve) is checked.
    near = client.get("/api/v1/health?days=1").get_json()
    assert all(FAR not in u["years"] for u in near["calendar"]["uncovered"])


def test_a_bad_health_question_is_refused(client, shanghai):
    answer = client.get("/api/v1/health?days=-3")
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_input" and "days" in error["details"]["fields"]["query"]


def test_a_deadline_over_the_2027_spring_festival_follows_that_years_days(shanghai, runner,
                                                                          tmp_path):
    """2027's holidays and swapped working days, whether the installed library has them or
    the city added them itself (these are such a city's entries, the festival's 9 days off
    from 除夕, Friday 5 February, and the Sunday after them worked)."""
    days = [{"day": f"2027-02-{d:02d}", "kind": "holiday", "name": "春节"} for d in range(5, 14)]
    days.append({"day": "2027-02-14", "kind": "workday", "name": "春节调休"})
    notice = tmp_path / "2027.json"
    notice.write_text(json.dumps({"days": days}), encoding="utf-8")
    result = runner.invoke(main, args=["calendar", "load-holidays", str(notice)])
    assert result.exit_code == 0, result.output

    cal = calendar_for_city(shanghai.id)
    # Thursday 4 February, 17:00 + 2 working hours: one that evening, one on the worked Sunday.
    due = add_limit(sh(2027, 2, 4, 17), 2, "working_hours", cal)
    assert due == sh(2027, 2, 14, 9)
    # One working day from Thursday 10:00 falls due on the worked Sunday, 10:00.
    assert add_limit(sh(2027, 2, 4, 10), 1, "working_days", cal) == sh(2027, 2, 14, 10)
    listing = runner.invoke(main, args=["calendar", "list", "--year", "2027"]).output
    assert "2027-02-14 Sun workday 春节调休" in listing
