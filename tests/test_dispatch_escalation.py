"""Timed work: an unaccepted dispatch is escalated (督办) level by level, clock changes raise
events, and a worker killed with kill -9 loses no escalation and does none twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from dispatch_world import (
    COMMUNITY,
    GRID_A,
    STREET,
    build_city,
    case_row,
    go_on_duty,
    history,
    outbox,
    report_and_file,
)
from live_server import wait_for
from sqlalchemy import text

from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.dispatch.assign import auto_dispatch
from gridmgr.dispatch.jobs import run_due, schedule
from gridmgr.dispatch.rosters import add_roster_entry
from gridmgr.extensions import db

ONE_MINUTE = {"amount": 1 / 60, "unit": "urgent_hours"}


def backdate(case_id: int, minutes: float) -> None:
    """Pretend the case was dispatched ``minutes`` ago (its clock moves back with it)."""
    db.session.execute(text("""
        UPDATE cases SET dispatched_at = dispatched_at - make_interval(mins => :m),
                         yellow_at = yellow_at - make_interval(mins => :m),
                         deadline = deadline - make_interval(mins => :m)
        WHERE id = :id"""), {"id": case_id, "m": minutes})
    db.session.commit()


def run_worker_pass() -> int:
    schedule()
    return run_due()


def test_an_unaccepted_dispatch_is_escalated_to_the_next_level(app_ctx, make_user):
    build_city(limits={"handle": {"amount": 8, "unit": "urgent_hours"}, "accept": ONE_MINUTE})
    first = make_user("inspector", username="first", region_code=GRID_A)
    second = make_user("inspector", username="second", region_code=GRID_A)
    add_roster_entry("first", GRID_A)
    add_roster_entry("second", GRID_A)
    go_on_duty(first)
    case_id = report_and_file(make_user("inspector"), make_user("operator"))
    auto_dispatch(case_id)
    assert case_row(case_id).worker_id == first.id
    go_on_duty(second)  # comes on duty after the dispatch

    run_worker_pass()
    assert history(case_id, "escalate") == []  # not yet due

    backdate(case_id, 2)
    run_worker_pass()

    row = case_row(case_id)
    (step,) = history(case_id, "escalate")
    assert step.details["level"] == "community" and step.details["region_code"] == COMMUNITY
    assert step.details["previous_worker_id"] == first.id
    assert row.state == "dispatched" and row.worker_id == second.id
    (event,) = outbox("case.escalated")
    assert event.payload["level"] == "community" and f"region:{COMMUNITY}" in event.rooms

    # The second worker does not accept either: the street is told next.
    db.session.execute(text("UPDATE dispatch_jobs SET run_at = now() - interval '1 second' "
                            "WHERE state = 'pending' AND kind = 'ack_timeout'"))
    db.session.commit()
    run_worker_pass()
    levels = [h.details["level"] for h in history(case_id, "escalate")]
    assert levels == ["community", "street"]
    assert outbox("case.escalated")[-1].payload["region_code"] == STREET
    run_worker_pass()
    assert len(history(case_id, "escalate")) == 2  # nothing is done twice


def test_an_accepted_dispatch_is_not_escalated(app_ctx, make_user):
    build_city(limits={"handle": {"amount": 8, "unit": "urgent_hours"}, "accept": ONE_MINUTE})
    worker = make_user("inspector", username="w", region_code=GRID_A)
    add_roster_entry("w", GRID_A)
    go_on_duty(worker)
    case_id = report_and_file(make_user("inspector"), make_user("operator"))
    auto_dispatch(case_id)
    run_worker_pass()  # schedules the timeout
    take_step(case_id, "accept", worker, StepInput())
    backdate(case_id, 2)
    db.session.execute(text("UPDATE dispatch_jobs SET run_at = now() - interval '1 second'"))
    db.session.commit()

    run_worker_pass()

    assert history(case_id, "escalate") == []
    assert case_row(case_id).state == "accepted"


def test_the_clock_turning_yellow_then_red_raises_one_event_each(app_ctx, make_user):
    build_city(limits={"handle": {"amount": 1, "unit": "urgent_hours"},
                       "accept": {"amount": 8, "unit": "urgent_hours"}})
    worker = make_user("inspector", username="w", region_code=GRID_A)
    add_roster_entry("w", GRID_A)
    go_on_duty(worker)
    case_id = report_and_file(make_user("inspector"), make_user("operator"))
    auto_dispatch(case_id)
    run_worker_pass()
    assert outbox("case.clock") == []

    backdate(case_id, 50)  # 50 of 60 minutes used: yellow
    run_worker_pass()
    run_worker_pass()
    assert [e.payload["clock"] for e in outbox("case.clock")] == ["yellow"]

    backdate(case_id, 11)  # 61 minutes: red
    run_worker_pass()
    run_worker_pass()
    events = outbox("case.clock")
    assert [e.payload["clock"] for e in events] == ["yellow", "red"]
    assert events[-1].payload["id"] == case_id and f"worker:{worker.id}" in events[-1].rooms


def _start_worker(app, home: Path) -> subprocess.Popen:
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "SECRET_KEY": app.config["SECRET_KEY"], "GRIDMGR_HOME": str(home)}
    env.pop("REDIS_URL", None)
    log = open(home / "worker.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen([str(Path(sys.executable).parent / "gridmgr"), "worker",
                                 "--interval", "0.2"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    finally:
        log.close()


def _escalations() -> int:
    db.session.rollback()
    return db.session.execute(text(
        "SELECT count(*) FROM case_history WHERE action = 'escalate'")).scalar()


def test_a_worker_killed_mid_run_leaves_every_due_escalation_done_exactly_once(
        app, app_ctx, make_user, tmp_path):
    build_city(limits={"handle": {"amount": 8, "unit": "urgent_hours"}, "accept": ONE_MINUTE})
    worker = make_user("inspector", username="w", region_code=GRID_A)
    add_roster_entry("w", GRID_A)
    go_on_duty(worker)
    reporter, operator = make_user("inspector"), make_user("operator")
    cases = [report_and_file(reporter, operator) for _ in range(150)]
    for case_id in cases:
        auto_dispatch(case_id)
    db.session.execute(text("UPDATE cases SET dispatched_at = now() - interval '5 minutes'"))
    db.session.commit()

    first = _start_worker(app, tmp_path / "w1")
    try:
        assert wait_for(lambda: _escalations() >= 10, timeout=60)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    done_before_restart = _escalations()
    assert done_before_restart < len(cases), "the worker finished before it could be killed"

    # Restart as two workers at once: they share the remaining jobs without doing any twice.
    restarted = [_start_worker(app, tmp_path / "w2"), _start_worker(app, tmp_path / "w3")]
    try:
        assert wait_for(lambda: _escalations() >= len(cases), timeout=120)
        wait_for(lambda: False, timeout=1.0)  # room for a wrong second escalation to show
    finally:
        for process in restarted:
            process.send_signal(signal.SIGTERM)
        for process in restarted:
            process.wait(timeout=20)
    per_case = db.session.execute(text("""
        SELECT case_id, count(*) FROM case_history WHERE action = 'escalate'
        GROUP BY case_id""")).all()
    assert len(per_case) == len(cases) and {n for _, n in per_case} == {1}
    assert len(outbox("case.escalated")) == len(cases)
    assert all(p.returncode == 0 for p in restarted)


def test_a_category_without_an_accept_limit_is_accepted_within_the_citys_configured_limit(
        app, app_ctx, make_user, monkeypatch):
    """Filing a case of an automatically dispatched category hands it to the rostered worker
    at once; with no accept limit of its own it must be accepted within ``Config``'s half
    hour, or within what the city configured instead."""
    build_city(limits={"handle": {"amount": 8, "unit": "urgent_hours"}})
    worker = make_user("inspector", username="w", region_code=GRID_A)
    add_roster_entry("w", GRID_A)
    go_on_duty(worker)
    reporter, operator = make_user("inspector"), make_user("operator")

    def accept_within(case_id: int):
        row = db.session.execute(text(
            "SELECT state, worker_id, CAST(deadlines->>'accept' AS timestamptz) - dispatched_at "
            "AS span FROM cases WHERE id = :id"), {"id": case_id}).one()
        assert (row.state, row.worker_id) == ("dispatched", worker.id)
        return row.span

    assert accept_within(report_and_file(reporter, operator)) == timedelta(minutes=30)
    monkeypatch.setitem(app.config, "GRIDMGR_ACCEPT_LIMIT", {"amount": 0.1, "unit": "urgent_hours"})
    assert accept_within(report_and_file(reporter, operator)) == timedelta(minutes=6)
