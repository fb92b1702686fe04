"""The closed loop: each step of a case is one conditional UPDATE and one history row.

A step reads the case (for the permission check and the values it computes), then writes with
``UPDATE cases ... WHERE id = :id AND state = :expected AND version = :version RETURNING ...``;
when another user took a step in between, no row matches and the caller gets 409 ``conflict``.
There is no check-then-update window: the database decides who wins.

States: reported → (verify) → verified → (file) → filed → (dispatch) → dispatched → (accept)
→ accepted → (handle) → handled → (check) → checked → (close) → closed; ``return`` sends a
dispatched case back to filed, ``rework`` (or a failed check) back to its department, ``shelve``
pauses the clock until ``resume``, ``extend`` moves the deadline, ``self_handle`` closes an
inspector's own small problem, ``rate`` lets the reporter judge the result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import select, text

from gridmgr.calendar.deadlines import (
    add_duration,
    add_limit,
    calendar_by_version,
    calendar_for_city,
    calendar_version_sql,
    check_unit,
    resume,
    working_elapsed,
)
from gridmgr.cases.events import (
    CASE_RETURNING,
    chained_steps_ctes,
    chained_steps_parameters,
    record_step,
    step_parameters,
)
from gridmgr.cases.models import Case, check_case_id
from gridmgr.cases.photos import StoredPhoto, attach_photos
from gridmgr.database.prepared import Prepared
from gridmgr.errors import Conflict, DomainError, InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.geo.coords import to_wgs84
from gridmgr.people.models import Department, User
from gridmgr.people.policy import authorize, can, user_city_id

DEFAULT_RADIUS_M = 200.0
YELLOW_SHARE = 0.8


@dataclass(frozen=True)
class Step:
    """An action: the permission it needs, the states it starts from, the state it reaches."""

    permission: str
    sources: tuple[str, ...]
    target: str | None  # None: the state does not change
    on_site: bool = False  # the actor's lon/lat must be near the case
    photos_required: bool = False
    note_required: bool = False


STEPS: dict[str, Step] = {
    "verify": Step("case.verify", ("reported",), "verified", on_site=True),
    "file": Step("case.file", ("reported", "verified"), "filed"),
    "cancel": Step("case.cancel", ("reported", "verified", "filed"), "cancelled",
                   note_required=True),
    "dispatch": Step("case.dispatch", ("filed",), "dispatched"),
    "accept": Step("case.accept", ("dispatched",), "accepted"),
    "return": Step("case.return", ("dispatched", "accepted"), "filed", note_required=True),
    "handle": Step("case.handle", ("accepted",), "handled", on_site=True, photos_required=True),
    "check": Step("case.check", ("handled",), "checked", on_site=True),
    "close": Step("case.close", ("checked",), "closed"),
    "rework": Step("case.rework", ("handled", "checked"), "dispatched", note_required=True),
    "extend": Step("case.extend", ("dispatched", "accepted"), None),
    "shelve": Step("case.shelve", ("dispatched", "accepted"), "shelved", note_required=True),
    "resume": Step("case.shelve", ("shelved",), None),
    "self_handle": Step("case.self_handle", ("reported", "verified"), "closed", on_site=True,
                        photos_required=True),
    "rate": Step("case.rate", ("closed",), None),
}
ACTIONS = tuple(STEPS)
# What the receiver of a dispatch may ask a duty chief to approve.
REQUESTABLE = ("extend", "shelve")
_JSONB = ("deadlines", "pending_request")


@dataclass
class StepInput:
    """What an actor sends with a step; only the fields the step uses are read."""

    note: str | None = None
    lon: float | None = None
    lat: float | None = None
    coord_sys: str = "wgs84"
    photos: list[StoredPhoto] = field(default_factory=list)
    department: str | None = None  # id or name
    worker: str | None = None  # id or username
    category: str | None = None
    amount: float | None = None
    unit: str | None = None
    deadline: datetime | None = None
    passed: bool = True
    valid: bool = True
    rating: int | None = None


@dataclass
class _Plan:
    target: str
    values: dict
    action: str
    details: dict = field(default_factory=dict)
    extra_where: str = ""
    category: object | None = None  # file: the corrected category


def take_step(case_id: int, action: str, actor: User | None, data: StepInput) -> dict:
    """Apply ``action`` to the case for ``actor``; returns the case's new public summary.
    403 when policy refuses, 409 ``conflict`` when the case moved meanwhile, 422 on bad input."""
    step = STEPS.get(action)
    if step is None:
        raise NotFound(f"There is no action {action!r:.40}; use one of {', '.join(ACTIONS)}.",
                       code="unknown_action")
    check_case_id(case_id)
    if action == "file":
        return _file(case_id, actor, data)
    case = db.session.get(Case, case_id)
    if case is None:
        raise NotFound(f"No case has the id {case_id}.", code="case_not_found")
    requested, (lon, lat) = _check(case, action, actor, data)
    now = datetime.now(UTC)
    plan = (_request_plan(case, action, actor, data, now) if requested
            else _PLANNERS[action](case, actor, data, now))
    row = _apply(case, plan)
    history_id = record_step(row, action=plan.action, from_state=case.state, actor=actor,
                             note=data.note, lon=lon, lat=lat, details=plan.details)
    _attach(data, case.id, action, actor, history_id)
    db.session.commit()
    return {"id": row.id, "code": row.code, "state": row.state, "action": plan.action,
            "history_id": history_id, "version": row.version,
            "deadline": row.deadline.isoformat() if row.deadline else None}


def _check(case, action: str, actor: User | None,
           data: StepInput) -> tuple[bool, tuple[float | None, float | None]]:
    """The rules every step obeys before it is planned: policy (role, scope, relation), the
    state it starts from, the note, photos and place it needs. Whether the actor only asks
    (a request for a duty chief), and the actor's point."""
    step = STEPS[action]
    context = _policy_context(case)
    requested = False
    if action in REQUESTABLE and not can(actor, step.permission, **context) \
            and can(actor, "case.request", **context):
        requested = True  # the receiver asks; a duty chief approves with the same action
    else:
        authorize(actor, step.permission, **context)
    if case.state not in step.sources:
        raise Conflict(f"Case {case.code} is {case.state}; it cannot be {_past(action)} now.",
                       code="conflict", state=case.state, action=action)
    if step.note_required and not (data.note or "").strip():
        raise InvalidInput(f"Say why in a note to {action} a case.", code="note_required")
    if step.photos_required and not data.photos:
        raise InvalidInput(f"To {action.replace('_', '-')} a case, send at least one photo "
                           "taken after the work.", code="photo_required")
    lon, lat = _actor_point(data, required=step.on_site)
    if step.on_site:
        _require_near(case, lon, lat)
    return requested, (lon, lat)


def _attach(data: StepInput, case_id: int, action: str, actor: User | None,
            history_id: int) -> None:
    if data.photos:
        attach_photos(data.photos, case_id=case_id, history_id=history_id,
                      stage="after" if action in ("handle", "self_handle") else "before",
                      uploaded_by=actor.id if actor else None)


# -- filing: one read, the rules' choice, one write ------------------------------------------
#
# Filing is the operator's busiest step, and a category with ``auto_dispatch`` is dispatched
# in the same request. Both steps are taken by one conditional UPDATE (reported or verified →
# dispatched), with the history row and live event of each step written by the same statement
# in step order, then one commit. The case is read with its category and its city's calendar
# version in one statement (the calendar itself is cached per process by that version).

_FILING_CASE = Prepared("gridmgr_filing_case", f"""
SELECT c.id, c.code, c.state, c.source, c.version, c.city_id, c.grid_code, c.reporter_id,
       c.department_id, c.worker_id, c.handler_id, c.deadlines, c.deadline, c.yellow_at,
       c.handled_at, c.paused_at, ST_X(c.location) AS lon, ST_Y(c.location) AS lat,
       k.id AS category_id, k.code AS category_code, k.limits, k.auto_dispatch,
       k.department_id AS category_department_id,
       {calendar_version_sql("c.city_id")} AS calendar_version
FROM cases c JOIN categories k ON k.id = c.category_id
WHERE c.id = :id
""")

_FILE_WHERE = "WHERE id = :id AND state = :expected AND version = :version"

_FILE = Prepared("gridmgr_file", f"""
WITH u AS (
    UPDATE cases SET category_id = :category_id, deadlines = CAST(:deadlines AS jsonb),
           state = 'filed', version = version + 1, updated_at = now()
    {_FILE_WHERE}
    RETURNING version
), {chained_steps_ctes(1, "u")}
SELECT (SELECT version FROM u) AS version, (SELECT id FROM h1) AS file_id,
       NULL::bigint AS dispatch_id
""")

_FILE_AND_DISPATCH = Prepared("gridmgr_file_and_dispatch", f"""
WITH u AS (
    UPDATE cases SET category_id = :category_id, deadlines = CAST(:deadlines AS jsonb),
           department_id = :department_id, worker_id = :worker_id,
           dispatched_at = :dispatched_at, paused_seconds = :paused_seconds,
           paused_at = :paused_at, deadline = :deadline, yellow_at = :yellow_at,
           clock_unit = :clock_unit, state = 'dispatched', version = version + 2,
           updated_at = now()
    {_FILE_WHERE}
    RETURNING version
), {chained_steps_ctes(2, "u")}
SELECT (SELECT version FROM u) AS version, (SELECT id FROM h1) AS file_id,
       (SELECT id FROM h2) AS dispatch_id
""")


def _file(case_id: int, actor: User | None, data: StepInput) -> dict:
    """File a report as a case (立案) and, for a category with ``auto_dispatch``, dispatch it by
    the rules in the same transaction; the filing stands alone when nobody can receive it
    (the background worker tries again)."""
    from gridmgr.dispatch.assign import AUTOMATIC_NOTE, plan_dispatch_by_rules

    read = _FILING_CASE.execute({"id": case_id})
    try:
        columns = [column.name for column in read.description]
        found = read.fetchone()
    finally:
        read.close()
    if found is None:
        raise NotFound(f"No case has the id {case_id}.", code="case_not_found")
    case = SimpleNamespace(**dict(zip(columns, found, strict=True)))
    case.category = SimpleNamespace(id=case.category_id, code=case.category_code,
                                    limits=case.limits, auto_dispatch=case.auto_dispatch,
                                    department_id=case.category_department_id)
    case.calendar = calendar_by_version(case.city_id, case.calendar_version)
    _, (lon, lat) = _check(case, "file", actor, data)
    now = datetime.now(UTC)
    plan = _plan_file(case, actor, data, now)
    category = plan.category or case.category
    filed = SimpleNamespace(**{**vars(case), "state": "filed", "category": category,
                               "category_id": category.id, "deadlines": plan.values["deadlines"],
                               "version": case.version + 1})
    dispatch = None
    if category.auto_dispatch:
        try:
            dispatch = plan_dispatch_by_rules(filed, now, case.calendar, (case.lon, case.lat))
        except DomainError:
            dispatch = None  # the filing stands; the worker's auto_dispatch job tries again
    file_step = step_parameters(_event_row(filed), action="file", from_state=case.state,
                                actor=actor, note=data.note, lon=lon, lat=lat,
                                details=plan.details)
    params = {"id": case.id, "expected": case.state, "version": case.version,
              "category_id": category.id}
    if dispatch is None:
        statement, final = _FILE, filed
        steps = [file_step]
    else:
        values, details = dispatch
        final = SimpleNamespace(**{**vars(filed), "state": "dispatched", "handled_at": None,
                                   "version": filed.version + 1, **values})
        statement = _FILE_AND_DISPATCH
        steps = [file_step, step_parameters(_event_row(final), action="dispatch",
                                            from_state="filed", note=AUTOMATIC_NOTE,
                                            details=details)]
        params.update({key: final.__dict__[key] for key in (
            "department_id", "worker_id", "dispatched_at", "paused_seconds", "paused_at",
            "deadline", "yellow_at", "clock_unit")})
    params["deadlines"] = json.dumps(final.deadlines or {}, default=str)
    written = statement.one({**params, **chained_steps_parameters(*steps)})
    if written.version is None:
        db.session.rollback()
        raise Conflict(f"Case {case.code} was changed by someone else meanwhile; reload it.",
                       code="conflict")
    _attach(data, case.id, "file", actor, written.file_id)
    db.session.commit()
    result = {"id": case.id, "code": case.code, "state": final.state, "action": "file",
              "history_id": written.file_id, "version": written.version,
              "deadline": final.deadline.isoformat() if final.deadline else None}
    if dispatch is not None:
        result.update(department_id=final.department_id, worker_id=final.worker_id)
    return result


def _event_row(case) -> SimpleNamespace:
    """The case as a step's history and live event describe it (its category by code)."""
    return SimpleNamespace(**{**vars(case), "category": case.category.code})


def handle_radius_m() -> float:
    return float(current_app.config.get("GRIDMGR_HANDLE_RADIUS_M", DEFAULT_RADIUS_M))


# -- the one write ---------------------------------------------------------------------------

def _apply(case: Case, plan: _Plan):
    """One conditional UPDATE: it matches only while the case is as it was read."""
    sets = ", ".join(f"{column} = CAST(:v_{column} AS jsonb)" if column in _JSONB
                     else f"{column} = :v_{column}" for column in plan.values)
    sql = text(f"""
        UPDATE cases SET {sets + ', ' if sets else ''}state = :target,
               version = version + 1, updated_at = now()
        WHERE id = :id AND state = :expected AND version = :version {plan.extra_where}
        RETURNING {CASE_RETURNING}""")
    params = {f"v_{k}": (json.dumps(v, default=str) if k in _JSONB and v is not None else v)
              for k, v in plan.values.items()}
    row = db.session.execute(sql, {**params, "target": plan.target, "id": case.id,
                                   "expected": case.state, "version": case.version}).one_or_none()
    if row is None:
        db.session.rollback()
        raise Conflict(f"Case {case.code} was changed by someone else meanwhile; reload it.",
                       code="conflict")
    return row


# -- one planner per action: checks and the values it writes ---------------------------------

def _plan_verify(case, actor, data, now):
    deadlines = _with_deadline(case, "file", now)
    if not data.valid:
        return _Plan("cancelled", {"verified_by_id": actor.id, "closed_at": now}, "verify",
                     {"valid": False})
    return _Plan("verified", {"verified_by_id": actor.id, "deadlines": deadlines}, "verify",
                 {"valid": True})


def _plan_file(case, actor, data, now):
    if case.state == "reported" and case.source == "citizen":
        raise Conflict(f"Case {case.code} came from a citizen: an inspector must verify it on "
                       "site before it is filed.", code="verification_required")
    values = {}
    details = {}
    category = case.category
    if data.category and data.category != category.code:
        from gridmgr.cases.intake import category_by_code

        category = category_by_code(data.category)
        values["category_id"] = category.id
        details["category"] = category.code
    values["deadlines"] = _with_deadline(case, "dispatch", now, category, case.calendar)
    return _Plan("filed", values, "file", details,
                 category=category if "category" in details else None)


def _plan_cancel(case, actor, data, now):
    return _Plan("cancelled", {"closed_at": now}, "cancel")


def _plan_dispatch(case, actor, data, now):
    department = _department(data.department, case)
    worker = _worker(data.worker, case)
    if department is None and worker is None:
        raise InvalidInput("Name a department or a worker to dispatch to (no department is "
                           "responsible for this category here).", code="receiver_required")
    values = {"department_id": department.id if department else None,
              "worker_id": worker.id if worker else None}
    values.update(start_clock(case, now))
    return _Plan("dispatched", values, "dispatch",
                 {"department_id": values["department_id"], "worker_id": values["worker_id"],
                  "deadline": values["deadline"]})


def _plan_accept(case, actor, data, now):
    return _Plan("accepted", {"accepted_at": now}, "accept")


def _plan_return(case, actor, data, now):
    return _Plan("filed", {"department_id": None, "worker_id": None, "dispatched_at": None,
                           "accepted_at": None, "deadline": None, "yellow_at": None,
                           "clock_unit": None, "paused_seconds": 0,
                           "return_count": case.return_count + 1},
                 "return", {"department_id": case.department_id})


def _plan_handle(case, actor, data, now):
    deadlines = _with_deadline(case, "check", now)
    return _Plan("handled", {"handler_id": actor.id, "handled_at": now,
                             "deadlines": deadlines}, "handle")


def _plan_check(case, actor, data, now):
    if data.passed:
        return _Plan("checked", {}, "check", {"passed": True})
    plan = _plan_rework(case, actor, data, now)
    plan.details["passed"] = False
    return plan


def _plan_close(case, actor, data, now):
    return _Plan("closed", {"closed_at": now}, "close")


def _plan_rework(case, actor, data, now):
    values = {"handler_id": None, "handled_at": None, "accepted_at": None,
              "rework_count": case.rework_count + 1}
    values.update(start_clock(case, now))
    return _Plan("dispatched", values, "rework",
                 {"department_id": case.department_id, "rework": case.rework_count + 1})


def _plan_extend(case, actor, data, now):
    amount, unit, new_deadline = _extension(case, data)
    cal = calendar_for_city(case.city_id)
    if new_deadline is None:
        new_deadline = add_limit(case.deadline, amount, unit, cal)
    if new_deadline <= case.deadline:
        raise InvalidInput("The new deadline must be later than the current one.",
                           code="bad_extension")
    values = {"deadline": new_deadline, "extension_count": case.extension_count + 1,
              "pending_request": None,
              "yellow_at": yellow_at(case.dispatched_at, new_deadline, case.clock_unit,
                                      case.paused_seconds, cal)}
    return _Plan(case.state, values, "extend",
                 {"deadline": new_deadline.isoformat(), "previous": case.deadline.isoformat()})


def _plan_shelve(case, actor, data, now):
    return _Plan("shelved", {"paused_at": now, "shelved_from": case.state,
                             "pending_request": None}, "shelve")


def _plan_resume(case, actor, data, now):
    cal = calendar_for_city(case.city_id)
    deadline, took = resume(case.deadline, case.paused_at, now, case.clock_unit, cal)
    paused = case.paused_seconds + took.total_seconds()
    return _Plan(case.shelved_from, {
        "deadline": deadline, "paused_at": None, "shelved_from": None,
        "paused_seconds": paused,
        "yellow_at": yellow_at(case.dispatched_at, deadline, case.clock_unit, paused, cal)},
        "resume", {"paused_seconds": took.total_seconds()})


def _plan_self_handle(case, actor, data, now):
    if case.reporter_id != actor.id and not can(actor, "case.close",
                                                  **_policy_context(case)):
        raise Conflict("Only the inspector who reported a problem may handle it on the spot.",
                       code="not_your_report")
    return _Plan("closed", {"handler_id": actor.id, "handled_at": now, "closed_at": now},
                 "self_handle")


def _plan_rate(case, actor, data, now):
    if data.rating is None or not 1 <= data.rating <= 5:
        raise InvalidInput("A rating is a whole number from 1 to 5.", code="bad_rating")
    if case.rating is not None:
        raise Conflict(f"Case {case.code} is already rated; a rating cannot be changed.",
                       code="already_rated", rating=case.rating)
    return _Plan("closed", {"rating": data.rating, "rating_note": data.note}, "rate",
                 {"rating": data.rating}, extra_where="AND rating IS NULL")


def _request_plan(case, action, actor, data, now):
    """The receiver asks for an extension or shelving; the state stays, a duty chief decides."""
    if case.pending_request:
        raise Conflict(f"Case {case.code} already has a request waiting for a duty chief.",
                       code="request_pending")
    request = {"kind": action, "by": actor.id, "at": now.isoformat(), "note": data.note}
    if action == "extend":
        amount, unit, deadline = _extension(case, data)
        request.update(amount=amount, unit=unit,
                       deadline=deadline.isoformat() if deadline else None)
    return _Plan(case.state, {"pending_request": request}, f"{action}_requested", request)


_PLANNERS = {
    "verify": _plan_verify, "cancel": _plan_cancel,
    "dispatch": _plan_dispatch, "accept": _plan_accept, "return": _plan_return,
    "handle": _plan_handle, "check": _plan_check, "close": _plan_close,
    "rework": _plan_rework, "extend": _plan_extend, "shelve": _plan_shelve,
    "resume": _plan_resume, "self_handle": _plan_self_handle, "rate": _plan_rate,
}


# -- helpers ---------------------------------------------------------------------------------

def _policy_context(case: Case) -> dict:
    return {"region_code": case.grid_code, "city_id": case.city_id,
            "reporter_id": case.reporter_id, "department_id": case.department_id,
            "assignee_id": case.worker_id, "handler_id": case.handler_id}


def _past(action: str) -> str:
    return {"verify": "verified", "file": "filed", "cancel": "cancelled",
            "dispatch": "dispatched", "accept": "accepted", "return": "returned",
            "handle": "handled", "check": "checked", "close": "closed", "rework": "reworked",
            "extend": "extended", "shelve": "shelved", "resume": "resumed",
            "self_handle": "handled on the spot", "rate": "rated"}[action]


def _actor_point(data: StepInput, required: bool) -> tuple[float | None, float | None]:
    if data.lon is None or data.lat is None:
        if required:
            raise InvalidInput("This step happens on site: send your lon and lat.",
                               code="location_required")
        return None, None
    if not (-180 <= data.lon <= 180 and -90 <= data.lat <= 90):
        raise InvalidInput("lon must be in [-180, 180] and lat in [-90, 90].",
                           code="bad_location")
    return to_wgs84(data.lon, data.lat, data.coord_sys)


def _require_near(case: Case, lon: float, lat: float) -> None:
    distance = db.session.scalar(text("""
        SELECT ST_Distance(location::geography,
                           ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)
        FROM cases WHERE id = :id"""), {"lon": lon, "lat": lat, "id": case.id})
    radius = handle_radius_m()
    if distance > radius:
        raise InvalidInput(f"You are {distance:.0f} m from the case; this step must be taken "
                           f"within {radius:.0f} m of it.", code="too_far",
                           distance_m=round(distance, 1), radius_m=radius)


def _with_deadline(case: Case, stage: str, now: datetime, category=None,
                   calendar=None) -> dict:
    deadlines = dict(case.deadlines or {})
    limit = ((category or case.category).limits or {}).get(stage)
    if limit:
        cal = calendar or calendar_for_city(case.city_id)
        deadlines[stage] = add_limit(now, limit["amount"], limit["unit"], cal).isoformat()
    return deadlines


def start_clock(case: Case, now: datetime, calendar=None) -> dict:
    """Dispatch starts the handling clock from the category's ``handle`` limit (``calendar``:
    the city's, when the caller has it)."""
    limit = (case.category.limits or {}).get("handle")
    values = {"dispatched_at": now, "paused_seconds": 0, "paused_at": None,
              "deadline": None, "yellow_at": None, "clock_unit": None}
    if limit:
        cal = calendar or calendar_for_city(case.city_id)
        deadline = add_limit(now, limit["amount"], limit["unit"], cal)
        values.update(deadline=deadline, clock_unit=limit["unit"],
                      yellow_at=yellow_at(now, deadline, limit["unit"], 0, cal))
        deadlines = dict(case.deadlines or {})
        deadlines["handle"] = deadline.isoformat()
        values["deadlines"] = deadlines
    return values


def yellow_at(start: datetime, deadline: datetime, unit: str, paused_seconds: float,
              cal) -> datetime:
    """The moment 80 % of the limit (not counting shelved time) is used."""
    paused = timedelta(seconds=paused_seconds)
    limit = working_elapsed(start, deadline, unit, cal) - paused
    return add_duration(start, max(limit * YELLOW_SHARE, timedelta(0)) + paused, unit, cal)


def _extension(case: Case, data: StepInput) -> tuple[float | None, str | None, datetime | None]:
    if case.deadline is None:
        raise Conflict(f"Case {case.code} has no running clock to extend.", code="no_clock")
    pending = case.pending_request or {}
    if data.deadline is None and data.amount is None and pending.get("kind") == "extend":
        deadline = pending.get("deadline")
        return (pending.get("amount"), pending.get("unit"),
                datetime.fromisoformat(deadline) if deadline else None)
    if data.deadline is not None:
        if data.deadline.tzinfo is None:
            raise InvalidInput("The new deadline needs a time zone.", code="bad_extension")
        try:
            return None, None, data.deadline.astimezone(UTC)
        except (OverflowError, ValueError):
            raise InvalidInput("The new deadline is out of range.",
                               code="bad_extension") from None
    if data.amount is None or data.amount <= 0 or not data.unit:
        raise InvalidInput("An extension needs amount and unit, or a new deadline.",
                           code="bad_extension")
    return data.amount, check_unit(data.unit), None


def _department(ref: str | None, case: Case) -> Department | None:
    if ref is None or str(ref).strip() == "":
        return _responsible_department(case)
    ref = str(ref).strip()
    stmt = select(Department).where(
        Department.id == int(ref) if ref.isdigit() and len(ref) < 10 else Department.name == ref)
    found = db.session.scalar(stmt)
    if found is None:
        raise InvalidInput(f"No department is called or numbered {ref!r:.60}.",
                           code="unknown_department")
    if found.city_id is not None and found.city_id != case.city_id:
        raise InvalidInput(f"The department {found.name!r:.60} belongs to another city than "
                           f"case {case.code}.", code="department_of_another_city")
    return found


def _responsible_department(case: Case) -> Department | None:
    from gridmgr.categories.operations import responsible_department

    return responsible_department(case.category, case.grid_code, case.city_id)


def _worker(ref: str | None, case: Case) -> User | None:
    if ref is None or str(ref).strip() == "":
        return None
    ref = str(ref).strip()
    stmt = select(User).where(
        User.id == int(ref) if ref.isdigit() and len(ref) < 10 else User.username == ref)
    found = db.session.scalar(stmt)
    if found is None or not found.is_active or found.role not in ("inspector", "department"):
        raise InvalidInput(f"No active grid worker or department member is {ref!r:.60}.",
                           code="unknown_worker")
    # A worker of no city (nor of a department of one) serves every city of the platform.
    city = user_city_id(found)
    if city is None and found.department is not None:
        city = found.department.city_id
    if city is not None and city != case.city_id:
        raise InvalidInput(f"{found.username!r:.60} works in another city than case "
                           f"{case.code}.", code="worker_of_another_city")
    return found
