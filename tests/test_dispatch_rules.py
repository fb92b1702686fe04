"""Dispatch rules: roster first, then the nearest on-duty worker of the street, then none."""

from __future__ import annotations

from dispatch_world import (
    CATEGORY,
    GRID_A,
    GRID_B,
    OTHER_GRID,
    POINT_A,
    POINT_OTHER,
    build_city,
    case_row,
    go_on_duty,
    history,
    outbox,
    report_and_file,
)

from gridmgr.cases.intake import ReportInput, submit_report
from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.dispatch.assign import auto_dispatch
from gridmgr.dispatch.rosters import add_roster_entry


def test_a_filed_case_goes_to_the_on_duty_worker_rostered_on_its_grid(app_ctx, make_user):
    world = build_city()
    rostered = make_user("inspector", username="grid_a_worker", region_code=GRID_A)
    off_duty = make_user("inspector", username="grid_a_sleeper", region_code=GRID_A)
    add_roster_entry("grid_a_worker", GRID_A)
    add_roster_entry("grid_a_sleeper", GRID_A)
    go_on_duty(rostered)
    reporter = make_user("inspector", region_code=GRID_B)
    operator = make_user("operator")
    case_id = report_and_file(reporter, operator)  # filing dispatches at once

    row = case_row(case_id)
    assert row.worker_id == rostered.id != off_duty.id
    assert (row.state, row.worker_id, row.department_id) == (
        "dispatched", rostered.id, world["department_id"])
    step = history(case_id, "dispatch")[0]
    assert step.details["rule"] == "roster" and step.details["automatic"] is True
    event = outbox("case.dispatched")[-1]
    assert event.payload["id"] == case_id
    assert {f"worker:{rostered.id}", f"region:{GRID_A}", f"region:{GRID_A[:9]}"} <= set(
        event.rooms)


def test_a_shift_outside_the_current_time_does_not_count(app_ctx, make_user):
    build_city()
    worker = make_user("inspector", username="night_worker", region_code=GRID_A)
    # A one-minute shift twelve hours away from now, every day: never covers now.
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    later = datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(hours=12)
    add_roster_entry("night_worker", GRID_A, later.strftime("%H:%M"),
                     (later + timedelta(minutes=1)).strftime("%H:%M"))
    go_on_duty(worker)
    case_id = report_and_file(make_user("inspector"), make_user("operator"))

    assert case_row(case_id).worker_id is None


def test_nobody_on_duty_in_the_grid_sends_the_nearest_worker_of_the_same_street(
        app_ctx, make_user):
    build_city()
    near = make_user("inspector", username="near", region_code=GRID_B)
    far = make_user("inspector", username="far", region_code=GRID_B)
    stranger = make_user("inspector", username="other_street", region_code=OTHER_GRID)
    go_on_duty(near, (POINT_A[0] + 0.002, POINT_A[1]))
    go_on_duty(far, (POINT_A[0] + 0.02, POINT_A[1]))
    go_on_duty(stranger, (POINT_A[0] + 0.0001, POINT_A[1]))  # closest, but another street
    case_id = report_and_file(make_user("inspector"), make_user("operator"))

    assert case_row(case_id).worker_id == near.id != stranger.id != far.id
    details = history(case_id, "dispatch")[0].details
    assert details["rule"] == "nearest" and 150 < details["distance_m"] < 200


def test_with_nobody_on_duty_the_case_goes_to_the_department_alone(app_ctx, make_user):
    world = build_city()
    case_id = report_and_file(make_user("inspector"), make_user("operator"), POINT_OTHER)

    row = case_row(case_id)
    assert (row.state, row.worker_id, row.department_id) == (
        "dispatched", None, world["department_id"])


def test_a_category_without_auto_dispatch_waits_for_a_dispatcher(app_ctx, make_user):
    build_city(auto_dispatch=False)
    worker = make_user("inspector", username="w", region_code=GRID_A)
    add_roster_entry("w", GRID_A)
    go_on_duty(worker)
    case_id = report_and_file(make_user("inspector"), make_user("operator"))

    assert auto_dispatch(case_id) is None
    assert case_row(case_id).state == "filed"


def test_the_operator_filing_a_case_is_answered_with_its_automatic_dispatch(app_ctx, make_user):
    world = build_city()
    worker = make_user("inspector", username="w", region_code=GRID_A)
    add_roster_entry("w", GRID_A)
    go_on_duty(worker)
    report = submit_report(ReportInput(lon=POINT_A[0], lat=POINT_A[1], category=CATEGORY,
                                       description="垃圾堆放"), make_user("inspector"))

    answer = take_step(report.case_id, "file", make_user("operator"), StepInput())

    assert (answer["state"], answer["worker_id"], answer["department_id"]) == (
        "dispatched", worker.id, world["department_id"])
    assert answer["deadline"] is not None
    assert [h.action for h in history(report.case_id)][-2:] == ["file", "dispatch"]


def test_filing_and_its_automatic_dispatch_are_told_in_step_order(app_ctx, make_user):
    world = build_city()
    worker = make_user("inspector", username="w", region_code=GRID_A)
    add_roster_entry("w", GRID_A)
    go_on_duty(worker)
    operator = make_user("operator")
    case_id = report_and_file(make_user("inspector"), operator)

    steps = history(case_id)
    assert [(h.action, h.from_state, h.to_state) for h in steps] == [
        ("report", None, "reported"), ("file", "reported", "filed"),
        ("dispatch", "filed", "dispatched")]
    events = [e for e in outbox() if e.payload["id"] == case_id]
    assert [(e.event, e.payload["action"], e.payload["state"]) for e in events] == [
        ("case.created", "report", "reported"), ("case.updated", "file", "filed"),
        ("case.dispatched", "dispatch", "dispatched")]
    filed, dispatched = events[1], events[2]
    assert f"worker:{worker.id}" not in filed.rooms and filed.payload["worker_id"] is None
    assert {f"worker:{worker.id}", f"department:{world['department_id']}"} <= set(
        dispatched.rooms)
    assert dispatched.payload["clock"] == "green"
    assert case_row(case_id).version == 3  # one per step: report, file, dispatch


def test_a_region_with_its_own_department_receives_the_automatic_dispatch(app_ctx, make_user):
    from sqlalchemy import text

    from gridmgr.extensions import db
    from gridmgr.people.models import Department

    world = build_city()
    street_team = Department(city_id=world["city_id"], name="街道城管队")
    db.session.add(street_team)
    db.session.flush()
    db.session.execute(text("""
        INSERT INTO category_departments (category_id, region_id, department_id)
        SELECT :category, id, :department FROM regions WHERE code = :street"""),
        {"category": world["category"].id, "department": street_team.id,
         "street": GRID_A[:9]})
    db.session.commit()

    inside = report_and_file(make_user("inspector"), make_user("operator"))
    outside = report_and_file(make_user("inspector"), make_user("operator"), POINT_OTHER)

    assert case_row(inside).department_id == street_team.id
    assert case_row(outside).department_id == world["department_id"]
