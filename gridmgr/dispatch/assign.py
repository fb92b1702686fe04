"""Steps the system takes on a case without a human actor: dispatch by the rules, and escalation
(督办) of a dispatch nobody accepted in time. Each is a row of the workflow table
(``gridmgr.cases.steps``) written by the workflow's one writer (``write_step``: the conditional
UPDATE, the history row and the live event in one statement), in the caller's transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gridmgr.calendar.deadlines import calendar_for_city, stage_clock, stage_limit, start_stages
from gridmgr.cases.events import step_parameters
from gridmgr.cases.models import Case
from gridmgr.cases.steps import ACTIONS
from gridmgr.cases.workflow import (
    AUTOMATIC_NOTE,
    case_after,
    outcome,
    plan_filing_dispatch_with,
    read_case,
    start_clock,
    write_step,
)
from gridmgr.dispatch.rules import ESCALATION, choose_receiver, choose_worker, escalation_region
from gridmgr.extensions import db


def accept_deadline(case: Case, start: datetime) -> datetime:
    """When a dispatch made at ``start`` must be accepted: the category's ``accept`` limit,
    else ``GRIDMGR_ACCEPT_LIMIT`` (default half an hour, continuous)."""
    return stage_clock("accept", stage_limit(case.category.limits, "accept"), start,
                       lambda: calendar_for_city(case.city_id)).deadline


def plan_dispatch_by_rules(case, now: datetime, calendar=None,
                           point: tuple[float, float] | None = None) -> tuple[dict, dict] | None:
    """What dispatching a filed ``case`` by the rules at ``now`` writes: the case's new values
    and the history details; None when nobody can receive it. ``calendar`` (the city's) and
    ``point`` (lon, lat) when the caller has them already."""
    receiver = choose_receiver(case, calendar=calendar, point=point)
    if receiver.department_id is None and receiver.worker_id is None:
        return None
    values = {"department_id": receiver.department_id, "worker_id": receiver.worker_id,
              **start_clock(case, now, calendar)}
    details = {"rule": receiver.rule or "department", "automatic": True,
               "department_id": receiver.department_id, "worker_id": receiver.worker_id,
               "distance_m": receiver.distance_m}
    return values, details


# Filing a case of an ``auto_dispatch`` category dispatches it by the same rules, in the
# filing's own statement.
plan_filing_dispatch_with(plan_dispatch_by_rules)


def dispatch_by_rules(case: Case, now: datetime | None = None):
    """Dispatch a filed case to the receiver the rules choose; the case as written, or None
    when the case is no longer filed or nobody can receive it. The caller commits."""
    step = ACTIONS["dispatch"]
    if case.state not in step.sources:
        return None
    case = read_case(case.id)
    plan = plan_dispatch_by_rules(case, now or datetime.now(UTC), case.calendar,
                                  (case.lon, case.lat))
    if plan is None:
        return None
    values, details = plan
    return _write(case, step, values, note=AUTOMATIC_NOTE, details=details)


def escalate(case: Case, step: int, tried: list[int]):
    """Escalate an unaccepted dispatch to level ``ESCALATION[step]`` (督办) and hand it to
    another on-duty worker when there is one; the case as written, or None if the case moved
    on."""
    action = ACTIONS["escalate"]
    if case.state not in action.sources:
        return None
    case = read_case(case.id)
    level = ESCALATION[min(step, len(ESCALATION) - 1)]
    region_code = escalation_region(case.grid_code, level)
    exclude = tuple({*tried, *([case.worker_id] if case.worker_id else [])})
    worker_id, rule, distance = choose_worker(case.grid_code, case.city_id, case.lon, case.lat,
                                              exclude)
    details = {"level": level, "region_code": region_code, "escalation": step + 1,
               "previous_worker_id": case.worker_id, "worker_id": worker_id or case.worker_id,
               "rule": rule, "distance_m": distance}
    # Escalation starts the accept clock again for the worker it hands the case to.
    deadlines = start_stages(case.deadlines, action.clocks.start, case.category.limits,
                             datetime.now(UTC), case.calendar)
    return _write(case, action, {"worker_id": worker_id or case.worker_id,
                                 "deadlines": deadlines},
                  note=f"超时未签收，督办至{level}级 {region_code}", details=details,
                  told=details)


def _write(case, action, values: dict, *, note: str, details: dict, told: dict | None = None):
    """An automatic step through the workflow's writer; the case as written, or None when it
    moved meanwhile (nothing was written)."""
    target, recorded = outcome(action, case)
    after = case_after(case, target, values)
    record = step_parameters(after, action=recorded, from_state=case.state, note=note,
                             details=details, told=told)
    written = write_step(case, target, values, [record])
    if written is None:
        return None
    after.version = written.version
    return after


def auto_dispatch(case_id: int) -> dict | None:
    """Hook for right after filing: dispatch by the rules now if the category has
    ``auto_dispatch``; commits. The worker's ``auto_dispatch`` jobs catch any case missed."""
    case = db.session.scalar(db.select(Case).where(Case.id == case_id).with_for_update())
    if case is None or not case.category.auto_dispatch:
        db.session.rollback()
        return None
    row = dispatch_by_rules(case)
    db.session.commit()
    if row is None:
        return None
    return {"id": row.id, "code": row.code, "state": row.state, "version": row.version,
            "department_id": row.department_id, "worker_id": row.worker_id,
            "deadline": row.deadline.isoformat() if row.deadline else None}
