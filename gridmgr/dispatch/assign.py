"""Steps the system takes on a case without a human actor: dispatch by the rules, and escalation
(督办) of a dispatch nobody accepted in time. Each is one conditional UPDATE plus the case's
history row and live event (``gridmgr.cases.events.record_step``), in the caller's transaction.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import text

from gridmgr.calendar.deadlines import add_limit, calendar_for_city
from gridmgr.cases.events import CASE_RETURNING, live_payload, record_step
from gridmgr.cases.models import Case
from gridmgr.dispatch.rules import ESCALATION, choose_receiver, choose_worker, escalation_region
from gridmgr.extensions import db
from gridmgr.live import publish

DEFAULT_ACCEPT_LIMIT = {"amount": 0.5, "unit": "urgent_hours"}


def accept_deadline(case: Case, start: datetime) -> datetime:
    """When a dispatch made at ``start`` must be accepted: the category's ``accept`` limit,
    else ``GRIDMGR_ACCEPT_LIMIT`` (default half an hour, continuous)."""
    limit = ((case.category.limits or {}).get("accept")
             or current_app.config.get("GRIDMGR_ACCEPT_LIMIT") or DEFAULT_ACCEPT_LIMIT)
    return add_limit(start, float(limit["amount"]), limit["unit"], calendar_for_city(case.city_id))


def dispatch_by_rules(case: Case, now: datetime | None = None):
    """Dispatch a filed case to the receiver the rules choose; the new row, or None when the
    case is no longer filed or nobody can receive it. The caller commits."""
    if case.state != "filed":
        return None
    plan = plan_dispatch_by_rules(case, now or datetime.now(UTC))
    if plan is None:
        return None
    values, details = plan
    row = _update(case, "dispatched", values)
    if row is not None:
        record_step(row, action="dispatch", from_state="filed", note=AUTOMATIC_NOTE,
                    details=details)
    return row


AUTOMATIC_NOTE = "按派遣规则自动派遣"


def plan_dispatch_by_rules(case, now: datetime, calendar=None,
                           point: tuple[float, float] | None = None) -> tuple[dict, dict] | None:
    """What dispatching a filed ``case`` by the rules at ``now`` writes: the case's new values
    and the history details; None when nobody can receive it. ``calendar`` (the city's) and
    ``point`` (lon, lat) when the caller has them already."""
    from gridmgr.cases.workflow import start_clock

    receiver = choose_receiver(case, calendar=calendar, point=point)
    if receiver.department_id is None and receiver.worker_id is None:
        return None
    values = {"department_id": receiver.department_id, "worker_id": receiver.worker_id,
              **start_clock(case, now, calendar)}
    details = {"rule": receiver.rule or "department", "automatic": True,
               "department_id": receiver.department_id, "worker_id": receiver.worker_id,
               "distance_m": receiver.distance_m}
    return values, details


def escalate(case: Case, step: int, tried: list[int]):
    """Escalate an unaccepted dispatch to level ``ESCALATION[step]`` (督办) and hand it to
    another on-duty worker when there is one; the new row, or None if the case moved on."""
    if case.state != "dispatched":
        return None
    level = ESCALATION[min(step, len(ESCALATION) - 1)]
    region_code = escalation_region(case.grid_code, level)
    lon, lat = db.session.execute(text(
        "SELECT ST_X(location), ST_Y(location) FROM cases WHERE id = :id"),
        {"id": case.id}).one()
    exclude = tuple({*tried, *([case.worker_id] if case.worker_id else [])})
    worker_id, rule, distance = choose_worker(case.grid_code, case.city_id, lon, lat, exclude)
    row = _update(case, "dispatched", {"worker_id": worker_id or case.worker_id})
    if row is None:
        return None
    details = {"level": level, "region_code": region_code, "escalation": step + 1,
               "previous_worker_id": case.worker_id, "worker_id": row.worker_id,
               "rule": rule, "distance_m": distance}
    record_step(row, action="escalate", from_state="dispatched",
                note=f"超时未签收，督办至{level}级 {region_code}", details=details)
    publish("case.escalated", {**live_payload(row), **details},
            [f"region:{region_code}", f"city:{row.city_id}"])
    return row


def _update(case: Case, target: str, values: dict):
    """One conditional UPDATE that matches only while the case is as it was read."""
    jsonb = {"deadlines"}
    sets = ", ".join(f"{c} = CAST(:v_{c} AS jsonb)" if c in jsonb else f"{c} = :v_{c}"
                     for c in values)
    params = {f"v_{c}": (_json(v) if c in jsonb else v) for c, v in values.items()}
    return db.session.execute(text(f"""
        UPDATE cases SET {sets}, state = :target, version = version + 1, updated_at = now()
        WHERE id = :id AND state = :expected AND version = :version
        RETURNING {CASE_RETURNING}"""), {**params, "target": target, "id": case.id,
                                         "expected": case.state,
                                         "version": case.version}).one_or_none()


def _json(value) -> str:
    return json.dumps(value, default=str)


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
