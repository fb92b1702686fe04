"""A city's working calendar kept in the database: China's 2026 holidays and swapped working
days from the national library without loading anything, days added by hand, working hours
changed, and deadlines that follow them."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from gridmgr.calendar import operations as ops
from gridmgr.calendar.deadlines import add_limit, calendar_for_city
from gridmgr.calendar.models import CalendarDay
from gridmgr.cli import main
from gridmgr.errors import InvalidInput
from gridmgr.extensions import db
from gridmgr.grids.models import City

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def city(app_ctx):
    c = City(slug="demo", name="示范市", timezone="Asia/Shanghai")
    db.session.add(c)
    db.session.commit()
    return c


def test_a_city_without_a_calendar_gets_the_defaults_in_its_own_zone(app_ctx):
    berlin = City(slug="berlin", name="Berlin", timezone="Europe/Berlin")
    db.session.add(berlin)
    db.session.commit()
    cal = calendar_for_city(berlin.id)
    assert cal.tz.key == "Europe/Berlin"
    assert [(a.hour, b.hour) for a, b in cal.periods] == [(8, 12), (14, 18)]
    assert cal.weekdays == {1, 2, 3, 4, 5}
    assert calendar_for_city(None).tz.key == "Asia/Shanghai"


def test_china_2026_holidays_come_with_the_city_and_move_deadlines(city, runner):
    cal = calendar_for_city(city.id)
    assert cal.country == "CN"
    assert db.session.query(CalendarDay).count() == 0  # nothing typed in, nothing loaded
    assert not cal.is_working_day(date(2026, 10, 1))       # 国庆
    assert cal.is_working_day(date(2026, 10, 10))          # 调休 Saturday
    assert not cal.is_working_day(date(2026, 2, 17))       # 春节
    assert cal.is_working_day(date(2026, 2, 14))           # 调休 Saturday
    # Wednesday 30 September 17:00 + 2 working hours → Thursday 8 October 09:00.
    due = add_limit(datetime(2026, 9, 30, 17, tzinfo=SH), 2, "working_hours", cal)
    assert due == datetime(2026, 10, 8, 9, tzinfo=SH)
    # Friday 9 October 17:00 + 2 working hours → the swapped Saturday, 09:00.
    due = add_limit(datetime(2026, 10, 9, 17, tzinfo=SH), 2, "working_hours", cal)
    assert due == datetime(2026, 10, 10, 9, tzinfo=SH)

    listing = runner.invoke(main, args=["calendar", "list", "--year", "2026"])
    assert listing.exit_code == 0
    assert "2026-10-10 Sat workday National Day (CN)" in listing.output
    assert "2026-10-01 Thu holiday National Day (CN)" in listing.output
    assert "Asia/Shanghai; 08:00–12:00, 14:00–18:00" in listing.output


def test_a_city_adds_its_own_days_from_a_file_on_top_of_its_countrys(city, runner, tmp_path):
    own = tmp_path / "city-days.json"
    own.write_text(json.dumps({"days": [
        {"day": "2026-12-24", "kind": "holiday", "name": "city festival"},
        {"day": "2026-10-07", "kind": "workday", "name": "city works"}]}), encoding="utf-8")
    result = runner.invoke(main, args=["calendar", "load-holidays", str(own)])
    assert result.exit_code == 0, result.output
    assert "loaded 2 calendar days" in result.output
    # Loading again changes nothing.
    assert runner.invoke(main, args=["calendar", "load-holidays", str(own)]).exit_code == 0
    assert db.session.query(CalendarDay).count() == 2
    cal = calendar_for_city(city.id)
    assert not cal.is_working_day(date(2026, 12, 24))
    assert cal.is_working_day(date(2026, 10, 7))           # a national holiday the city works
    assert not cal.is_working_day(date(2026, 10, 6))       # the rest of 国庆 still holds
    listing = runner.invoke(main, args=["calendar", "list", "--year", "2026"]).output
    assert "2026-10-07 Wed workday city works" in listing
    assert "2026-10-07 Wed holiday" not in listing
    assert "2026-10-06 Tue holiday National Day (CN)" in listing


def test_loading_without_a_file_is_refused_and_nothing_is_written(city, runner):
    result = runner.invoke(main, args=["calendar", "load-holidays"])
    assert result.exit_code == 2
    assert "Missing argument 'FILE'" in result.output
    assert db.session.query(CalendarDay).count() == 0


def test_days_added_by_hand_and_working_hours_changed(city, runner):
    result = runner.invoke(main, args=["calendar", "add", "2026-12-24", "--kind", "holiday",
                                 "--name", "city festival"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, args=["calendar", "hours", "--period", "09:00-17:00",
                                 "--weekdays", "1,2,3,4,5,6"])
    assert result.exit_code == 0, result.output
    cal = calendar_for_city(city.id)
    assert date(2026, 12, 24) in cal.holidays
    assert 6 in cal.weekdays
    # Wednesday 23 December 16:00 + 2 working hours: one that day, Thursday is off, Friday 10:00.
    due = add_limit(datetime(2026, 12, 23, 16, tzinfo=SH), 2, "working_hours", cal)
    assert due == datetime(2026, 12, 25, 10, tzinfo=SH)
    assert runner.invoke(main, args=["calendar", "remove", "2026-12-24"]).exit_code == 0
    assert date(2026, 12, 24) not in calendar_for_city(city.id).holidays


def test_bad_calendar_input_is_refused_and_nothing_changes(city, runner):
    result = runner.invoke(main, args=["calendar", "hours", "--period", "18:00-08:00"])
    assert result.exit_code != 0
    assert "invalid_calendar" in result.output
    db.session.rollback()
    assert [(a.hour, b.hour) for a, b in calendar_for_city(city.id).periods] == [(8, 12), (14, 18)]
    with pytest.raises(InvalidInput) as err:
        ops.set_working_hours(city, timezone="Mars/Olympus")
    assert err.value.code == "invalid_calendar"
    with pytest.raises(InvalidInput):
        ops.set_day(city, date(2026, 1, 5), "party")
