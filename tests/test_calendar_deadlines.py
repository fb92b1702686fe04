"""Deadlines at the edges of the working calendar: weekends, lunch, holidays, swapped working
days, continuous urgent hours, natural days, daylight saving; clock states, extensions, pauses."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmgr.calendar.deadlines import (
    Calendar,
    add_limit,
    clock_state,
    extend,
    fraction_used,
    resume,
    working_elapsed,
)
from gridmgr.errors import InvalidInput

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")

# China 2026: 国庆 1–7 October off, Saturday 10 October a swapped working day (调休).
NATIONAL_DAY = frozenset(date(2026, 10, d) for d in range(1, 8))
CN_2026 = Calendar(tz=SH, holidays=NATIONAL_DAY,
                   workdays=frozenset({date(2026, 9, 20), date(2026, 10, 10)}))


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def test_two_working_hours_from_friday_evening_fall_due_monday_morning():
    cal = Calendar()
    deadline = add_limit(sh(2026, 11, 27, 17, 30), 2, "working_hours", cal)  # a Friday
    assert deadline == sh(2026, 11, 30, 9, 30)
    assert deadline.utcoffset() == timedelta(0)  # instants come back in UTC
    assert deadline.astimezone(SH).weekday() == 0


def test_a_limit_spanning_lunch_skips_the_midday_break():
    cal = Calendar()
    assert add_limit(sh(2026, 11, 24, 11, 0), 2, "working_hours", cal) == sh(2026, 11, 24, 15, 0)
    # Used up exactly at noon: due at noon, not after lunch.
    assert add_limit(sh(2026, 11, 24, 11, 0), 1, "working_hours", cal) == sh(2026, 11, 24, 12, 0)
    # Started during lunch: counting begins at 14:00.
    assert add_limit(sh(2026, 11, 24, 12, 30), 0.5, "working_hours", cal) == sh(2026, 11, 24,
                                                                                  14, 30)


def test_working_days_are_whole_days_of_working_time():
    cal = Calendar()
    assert add_limit(sh(2026, 11, 23, 10, 0), 1, "working_days", cal) == sh(2026, 11, 24, 10, 0)
    assert add_limit(sh(2026, 11, 27, 10, 0), 3, "working_days", cal) == sh(2026, 12, 2, 10, 0)
    # Reported on a Sunday: the first working moment is Monday 08:00, one day later 18:00.
    assert add_limit(sh(2026, 11, 29, 15, 0), 1, "working_days", cal) == sh(2026, 11, 30, 18, 0)


def test_the_national_day_holiday_week_does_not_count():
    # Wednesday 30 September 17:00, 2 working hours: one hour that evening, one on 8 October.
    deadline = add_limit(sh(2026, 9, 30, 17, 0), 2, "working_hours", CN_2026)
    assert deadline == sh(2026, 10, 8, 9, 0)
    assert add_limit(sh(2026, 9, 30, 10, 0), 1, "working_days", CN_2026) == sh(2026, 10, 8, 10, 0)


def test_a_swapped_saturday_is_a_working_day():
    # Friday 9 October 17:00 + 2 working hours: Saturday 10 October is worked (调休).
    assert add_limit(sh(2026, 10, 9, 17, 0), 2, "working_hours", CN_2026) == sh(2026, 10, 10,
                                                                                 9, 0)
    # Without the swap the same limit would run into Monday.
    plain = Calendar(tz=SH, holidays=NATIONAL_DAY)
    assert add_limit(sh(2026, 10, 9, 17, 0), 2, "working_hours", plain) == sh(2026, 10, 12, 9, 0)


def test_urgent_hours_run_through_nights_and_holidays():
    assert add_limit(sh(2026, 9, 30, 22, 0), 4, "urgent_hours", CN_2026) == sh(2026, 10, 1, 2, 0)
    assert add_limit(sh(2026, 11, 27, 17, 30), 48, "urgent_hours", Calendar()) == sh(
        2026, 11, 29, 17, 30)


def test_natural_days_ignore_the_calendar():
    assert add_limit(sh(2026, 9, 30, 17, 0), 3, "natural_days", CN_2026) == sh(2026, 10, 3, 17, 0)
    assert add_limit(sh(2026, 11, 27, 23, 0), 1, "natural_days", Calendar()) == sh(2026, 11, 28,
                                                                                  23, 0)


@pytest.mark.parametrize("tz, spring, autumn", [
    (NY, date(2026, 3, 8), date(2026, 11, 1)),
    (BERLIN, date(2026, 3, 29), date(2026, 10, 25)),
])
def test_daylight_saving_zones(tz, spring, autumn):
    cal = Calendar(tz=tz)
    # Friday before the spring change, 17:00 local + 2 working hours: Monday 09:00 local.
    friday = datetime.combine(spring - timedelta(days=2), time(17), tzinfo=tz)
    due = add_limit(friday, 2, "working_hours", cal).astimezone(tz)
    assert (due.date(), due.time()) == (spring + timedelta(days=1), time(9))
    # Urgent hours are real hours: 24 of them across the spring change end an hour later
    # on the wall clock; natural days keep the wall clock.
    saturday_noon = datetime.combine(spring - timedelta(days=1), time(12), tzinfo=tz)
    urgent = add_limit(saturday_noon, 24, "urgent_hours", cal).astimezone(tz)
    assert urgent.time() == time(13)
    assert urgent.astimezone(UTC) - saturday_noon.astimezone(UTC) == timedelta(hours=24)
    natural = add_limit(saturday_noon, 1, "natural_days", cal).astimezone(tz)
    assert (natural.date(), natural.time()) == (spring, time(12))
    assert natural.astimezone(UTC) - saturday_noon.astimezone(UTC) == timedelta(hours=23)
    # Autumn: the wall clock goes back; a day of work is still 8 hours of working time.
    autumn_friday = datetime.combine(autumn - timedelta(days=2), time(10), tzinfo=tz)
    due = add_limit(autumn_friday, 1, "working_days", cal).astimezone(tz)
    assert (due.date(), due.time()) == (autumn + timedelta(days=1), time(10))
    assert working_elapsed(autumn_friday, due, "working_days", cal) == timedelta(hours=8)


def test_a_natural_day_landing_in_the_spring_gap_falls_due_when_the_clock_resumes():
    cal = Calendar(tz=NY)
    start = datetime(2026, 3, 7, 2, 30, tzinfo=NY)  # 02:30 on 8 March does not exist
    due = add_limit(start, 1, "natural_days", cal).astimezone(NY)
    assert (due.date(), due.time(), due.utcoffset()) == (date(2026, 3, 8), time(3),
                                                          timedelta(hours=-4))
    assert add_limit(start, 1.01, "natural_days", cal) >= due


def test_a_zone_without_daylight_saving_keeps_its_offset():
    cal = Calendar()
    start = sh(2026, 3, 6, 17, 0)
    due = add_limit(start, 2, "working_hours", cal)
    assert due == sh(2026, 3, 9, 9, 0)
    assert due.astimezone(SH).utcoffset() == timedelta(hours=8)


def test_start_in_utc_is_read_on_the_city_clock():
    # 09:30 UTC on a Friday is 17:30 in Shanghai.
    due = add_limit(datetime(2026, 11, 27, 9, 30, tzinfo=UTC), 2, "working_hours", Calendar())
    assert due == sh(2026, 11, 30, 9, 30)


def test_clock_states_green_yellow_from_eighty_percent_red_after_the_deadline():
    cal = Calendar()
    start = sh(2026, 11, 23, 8, 0)  # Monday
    deadline = add_limit(start, 10, "working_hours", cal)
    assert deadline == sh(2026, 11, 24, 10, 0)
    assert clock_state(start, deadline, sh(2026, 11, 23, 17, 59), "working_hours", cal) == "green"
    # 80 % of 10 working hours is reached at Monday 18:00, and the night stays yellow.
    assert clock_state(start, deadline, sh(2026, 11, 23, 18, 0), "working_hours", cal) == "yellow"
    assert clock_state(start, deadline, sh(2026, 11, 24, 3, 0), "working_hours", cal) == "yellow"
    assert clock_state(start, deadline, deadline, "working_hours", cal) == "yellow"
    late = deadline + timedelta(minutes=1)
    assert clock_state(start, deadline, late, "working_hours", cal) == "red"
    assert fraction_used(start, deadline, sh(2026, 11, 23, 13, 0), "working_hours", cal) == 0.4


def test_clock_state_for_urgent_and_natural_units_counts_the_night():
    cal = Calendar()
    start = sh(2026, 11, 23, 20, 0)
    deadline = add_limit(start, 10, "urgent_hours", cal)
    assert clock_state(start, deadline, sh(2026, 11, 24, 3, 0), "urgent_hours", cal) == "green"
    assert clock_state(start, deadline, sh(2026, 11, 24, 4, 0), "urgent_hours", cal) == "yellow"
    d5 = add_limit(start, 5, "natural_days", cal)
    assert clock_state(start, d5, sh(2026, 11, 27, 19, 59), "natural_days", cal) == "green"
    assert clock_state(start, d5, sh(2026, 11, 27, 20, 0), "natural_days", cal) == "yellow"


def test_an_extension_moves_the_deadline_by_the_extra_amount():
    cal = Calendar()
    deadline = add_limit(sh(2026, 11, 26, 16, 0), 2, "working_days", cal)  # Thursday
    assert deadline == sh(2026, 11, 30, 16, 0)
    assert extend(deadline, 1, "working_days", cal) == sh(2026, 12, 1, 16, 0)
    assert extend(deadline, 3, "working_hours", cal) == sh(2026, 12, 1, 9, 0)


def test_a_pause_stops_the_clock_and_moves_the_deadline_by_the_working_time_paused():
    cal = Calendar()
    start = sh(2026, 11, 23, 8, 0)
    deadline = add_limit(start, 10, "working_hours", cal)  # Tuesday 10:00
    # Shelved Monday 10:00, resumed Monday 15:00: 2 + 1 = 3 working hours paused.
    new_deadline, paused = resume(deadline, sh(2026, 11, 23, 10, 0), sh(2026, 11, 23, 15, 0),
                                  "working_hours", cal)
    assert paused == timedelta(hours=3)
    assert new_deadline == sh(2026, 11, 24, 15, 0)
    # 80 % of the original 10 h used: 8 h of working time not counting the pause.
    # Monday 08–10 (2) + 15–18 (3) + Tuesday 08–11 (3) = 8 → yellow at Tuesday 11:00.
    at = sh(2026, 11, 24, 10, 59)
    assert clock_state(start, new_deadline, at, "working_hours", cal, paused=paused) == "green"
    at = sh(2026, 11, 24, 11, 0)
    assert clock_state(start, new_deadline, at, "working_hours", cal, paused=paused) == "yellow"
    # Without the pause the case would have been red by now.
    assert clock_state(start, deadline, sh(2026, 11, 24, 12, 0), "working_hours", cal) == "red"
    assert clock_state(start, new_deadline, sh(2026, 11, 24, 12, 0), "working_hours", cal,
                       paused=paused) == "yellow"
    # A pause over a weekend costs no working time.
    d2, p2 = resume(deadline, sh(2026, 11, 28, 9, 0), sh(2026, 11, 29, 20, 0), "working_hours",
                    cal)
    assert (d2, p2) == (deadline, timedelta(0))


def test_bad_input_is_refused_with_a_code():
    cal = Calendar()
    with pytest.raises(InvalidInput) as err:
        add_limit(sh(2026, 11, 23, 8, 0), 1, "fortnights", cal)
    assert err.value.code == "unknown_unit"
    with pytest.raises(InvalidInput) as err:
        add_limit(sh(2026, 11, 23, 8, 0), -1, "working_hours", cal)
    assert err.value.code == "invalid_limit"
    with pytest.raises(InvalidInput) as err:
        add_limit(datetime(2026, 11, 23, 8, 0), 1, "working_hours", cal)
    assert err.value.code == "naive_datetime"
    with pytest.raises(InvalidInput) as err:
        add_limit(sh(2026, 11, 23, 8, 0), 1, "working_hours", Calendar(weekdays=frozenset()))
    assert err.value.code == "invalid_calendar"


# -- properties ----------------------------------------------------------------------------

ZONES = [SH, NY, BERLIN, ZoneInfo("UTC"), ZoneInfo("Australia/Lord_Howe")]
starts = st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2027, 2, 1),
                      timezones=st.sampled_from(ZONES))
amounts = st.floats(min_value=0.01, max_value=60, allow_nan=False, allow_infinity=False)
units = st.sampled_from(["working_hours", "working_days"])
calendars = st.sampled_from([
    Calendar(),
    CN_2026,
    Calendar(tz=NY),
    Calendar(tz=BERLIN, periods=((time(7, 30), time(16)),), weekdays=frozenset({1, 2, 3, 4, 5, 6})),
    Calendar(tz=ZoneInfo("Australia/Lord_Howe"), periods=((time(0), time(1, 30)),
                                                          (time(22), time(23, 59)))),
    # Night shifts across the DST changes themselves (gap in March, fold in November).
    Calendar(tz=NY, periods=((time(1), time(3)), (time(20), time(23))),
             weekdays=frozenset(range(1, 8))),
])


@settings(max_examples=300, deadline=None)
@given(start=starts, amount=amounts, unit=units, cal=calendars)
def test_working_deadlines_fall_inside_working_time(start, amount, unit, cal):
    deadline = add_limit(start, amount, unit, cal)
    assert cal.is_working_time(deadline)
    assert deadline > start
    # The working time between start and deadline is the limit (to the microsecond).
    expected = timedelta(hours=amount) if unit == "working_hours" else cal.day_length * amount
    got = working_elapsed(start, deadline, unit, cal)
    assert abs(got - expected) <= timedelta(microseconds=2)


@settings(max_examples=300, deadline=None)
@given(start=starts, amount=amounts, more=st.floats(min_value=0, max_value=30),
       unit=st.sampled_from(["working_hours", "working_days", "urgent_hours", "natural_days"]),
       cal=calendars)
def test_deadlines_never_move_backwards_when_the_limit_grows(start, amount, more, unit, cal):
    assert add_limit(start, amount + more, unit, cal) >= add_limit(start, amount, unit, cal)


def test_deadlines_across_the_autumn_fold_are_ordered_as_instants():
    night = Calendar(tz=NY, periods=((time(1), time(3)),), weekdays=frozenset(range(1, 8)))
    start = datetime(2026, 11, 1, 0, 0, tzinfo=NY)  # 01:00–02:00 happens twice that night
    early = add_limit(start, 0.125, "working_days", night)   # 15 minutes of a 2-hour day
    later = add_limit(start, 0.75, "working_days", night)    # 90 minutes
    assert early < later
    assert later - early == timedelta(minutes=75)
    # The repeated hour counts: the night's period is 3 real hours long.
    assert working_elapsed(start, datetime(2026, 11, 1, 12, tzinfo=NY), "working_hours",
                           night) == timedelta(hours=3)
