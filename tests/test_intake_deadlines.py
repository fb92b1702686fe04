"""A report's first deadline (verify, for a citizen) follows the category's time limits and the
city's calendar as they are when it arrives, even though each server process computes it from
what the previous report near the same place was found in."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cityfixtures import city_fixture  # noqa: F401
from sqlalchemy import text

from gridmgr.calendar.models import CalendarDay, WorkingCalendar
from gridmgr.extensions import db


def report(client, city, n: int) -> tuple[datetime, datetime]:
    """An anonymous report of C0101 in grid 0; its case's creation time and verify deadline."""
    lon, lat = city.centre(0)
    answer = client.post("/api/v1/reports", json={
        "lon": lon + n * 1e-5, "lat": lat, "category": "C0101", "client_id": f"deadline-{n}"})
    assert answer.status_code == 201, answer.get_json()
    row = db.session.execute(text("SELECT created_at, deadlines->>'verify' AS due FROM cases "
                                  "WHERE id = :id"), {"id": answer.get_json()["case"]["id"]}).one()
    return row.created_at, datetime.fromisoformat(row.due)


def verify_limit(amount: float, unit: str) -> None:
    db.session.execute(text("""
        UPDATE categories SET limits = jsonb_set(limits, '{verify}',
                                                 jsonb_build_object('unit', :unit, 'amount', :n))
        WHERE code = 'C0101'"""), {"unit": unit, "n": amount})
    db.session.commit()


def test_a_category_given_a_new_time_limit_times_the_next_report_by_it(client, city):
    verify_limit(0.5, "urgent_hours")
    created, due = report(client, city, 1)
    assert abs(due - created - timedelta(minutes=30)) < timedelta(seconds=5)
    created, due = report(client, city, 2)  # the same place, now known to this process
    assert abs(due - created - timedelta(minutes=30)) < timedelta(seconds=5)

    verify_limit(2, "urgent_hours")
    created, due = report(client, city, 3)
    assert abs(due - created - timedelta(hours=2)) < timedelta(seconds=5)


def test_a_holiday_added_to_the_calendar_moves_the_next_reports_deadline(client, city):
    verify_limit(1, "working_hours")
    calendar = WorkingCalendar(city_id=city.city_id, timezone="Asia/Shanghai",
                               periods=[["00:00", "24:00"]], weekdays=[1, 2, 3, 4, 5, 6, 7])
    db.session.add(calendar)
    db.session.commit()
    created, due = report(client, city, 1)  # every hour is a working hour
    assert abs(due - created - timedelta(hours=1)) < timedelta(seconds=5)

    zone = ZoneInfo("Asia/Shanghai")
    today = datetime.now(zone).date()
    db.session.add(CalendarDay(calendar_id=calendar.id, day=today, kind="holiday"))
    db.session.commit()
    created, due = report(client, city, 2)
    tomorrow = datetime.combine(today + timedelta(days=1), datetime.min.time(), zone)
    assert due == tomorrow + timedelta(hours=1)  # the first working hour after the holiday


def test_calendar_edits_made_with_sql_time_the_next_report(client, city):
    """The calendar's version is kept by the database (migration 0016), so an edit made
    outside gridmgr, with SQL, counts as well: new working hours, then a holiday taken away."""
    verify_limit(1, "working_hours")
    zone = ZoneInfo("Asia/Shanghai")
    today = datetime.now(zone).date()
    calendar = WorkingCalendar(city_id=city.city_id, timezone="Asia/Shanghai",
                               periods=[["00:00", "24:00"]], weekdays=[1, 2, 3, 4, 5, 6, 7])
    db.session.add(calendar)
    db.session.flush()
    db.session.add(CalendarDay(calendar_id=calendar.id, day=today, kind="holiday"))
    db.session.commit()
    tomorrow = datetime.combine(today + timedelta(days=1), datetime.min.time(), zone)
    assert report(client, city, 1)[1] == tomorrow + timedelta(hours=1)

    db.session.execute(text("""UPDATE working_calendars SET periods = '[["02:00", "24:00"]]'
                               WHERE id = :id"""), {"id": calendar.id})
    db.session.commit()
    assert report(client, city, 2)[1] == tomorrow + timedelta(hours=3)

    db.session.execute(text("DELETE FROM calendar_days WHERE calendar_id = :id"),
                       {"id": calendar.id})
    db.session.commit()
    now = datetime.now(zone)
    created, due = report(client, city, 3)
    if now.hour >= 2 and now + timedelta(hours=1) < tomorrow:  # today works again, from 02:00
        assert abs(due - created - timedelta(hours=1)) < timedelta(seconds=5)
    else:
        assert due < tomorrow + timedelta(hours=3)
