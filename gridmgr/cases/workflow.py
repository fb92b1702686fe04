"""The closed loop: each step of a case is one conditional UPDATE, its history row and its live
event, written by one statement (:func:`write_step`).

What a step may start from, where it leads, who may take it and what it needs is the workflow
table (``gridmgr.cases.steps``); this module checks a step against it, computes the values the
step writes, and writes them. A step reads the case once, then writes with
``UPDATE cases ... WHERE id = :id AND state = :expected AND version = :version``;
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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import select, text

from gridmgr.calendar.deadlines import (
    add_limit,
    calendar_by_version,
    calendar_for_city,
    calendar_version_sql,
    check_unit,
    resume,
    stage_clock,
    stage_limit,
    start_stages,
    yellow_at,
)
from gridmgr.cases.events import (
    chained_steps_ctes,
    chained_steps_parameters,
    step_parameters,
)
from gridmgr.cases.models import Case, check_case_id
from gridmgr.cases.photos import StoredPhoto, attach_photos
from gridmgr.cases.steps import ACTIONS as TABLE_ACTIONS
from gridmgr.cases.steps import ENDPOINTS, INTO, NOTE, ON_SITE, PHOTO, Action, case_guard
from gridmgr.database.prepared import Prepared
from gridmgr.errors import Conflict, DomainError, InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.geo.coords import to_wgs84
from gridmgr.people.models import Department, User
from gridmgr.people.policy import authorize, can, scope_test, user_city_id

# The step endpoints and the table row each takes (``gridmgr.cases.steps``).
STEPS: dict[str, Action] = {name: TABLE_ACTIONS[name] for name in ENDPOINTS}
ACTIONS = ENDPOINTS
# What the receiver of a dispatch may ask a duty chief to approve.
REQUESTABLE = tuple(a.request for a in TABLE_ACTIONS.values() if a.request)
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
    into: int | None = None  # merge: the open case that carries the report on
    # Found already by the caller (the history import resolves a file's names once): the
    # dispatch's (department id, worker id) and the filed category.
    receiver: tuple[int | None, int | None] | None = None
    found_category: object | None = None


@dataclass
class _Plan:
    """What a step writes beyond its state (which the table gives): the case's new values,
    the history details."""

    values: dict
    details: dict = field(default_factory=dict)
    extra_where: str = ""
    category: object | None = None  # file: the corrected category
    told: dict | None = None  # more the live event says (a merge's moved reports)


def take_step(case_id: int, action: str, actor: User | None, data: StepInput) -> dict:
    """Apply ``action`` to the case for ``actor``; returns the case's new public summary.
    403 when policy refuses, 409 ``conflict`` when the case moved meanwhile, 422 on bad input."""
    if action not in STEPS:
        raise NotFound(f"There is no action {action!r:.40}; use one of {', '.join(ACTIONS)}.",
                       code="unknown_action")
    check_case_id(case_id)
    case = read_case(case_id)
    step, (lon, lat) = _check(case, action, actor, data)
    now = datetime.now(UTC)
    if action == "file":
        return _file(case, actor, data, now, (lon, lat))
    plan = plan_step(step, case, actor, data, now)
    target, recorded = outcome(step, case, data)
    after = case_after(case, target, plan.values)
    written = write_step(case, target, plan.values, [{**step_parameters(
        after, action=recorded, from_state=case.state, actor=actor, note=data.note, lon=lon,
        lat=lat, details=plan.details, told=plan.told), "at": now}], plan.extra_where)
    if written is None:
        raise _moved(case)
    if action == "merge":
        _carry_over(case, plan.details["merged_into"])
    _attach(data, case.id, action, actor, written.h1)
    db.session.commit()
    return step_answer(actor, after, recorded, written)


def step_answer(actor: User | None, after, recorded: str, written) -> dict:
    """The answer to a step (the API's ``CaseStepResultSchema``): the case as the step left it
    (``after``, written as ``written``), the action recorded, its history row, the new version,
    the handling deadline and what ``actor`` may do now."""
    return {"id": after.id, "code": after.code, "state": after.state, "action": recorded,
            "history_id": written.h1, "version": written.version,
            "deadline": after.deadline.isoformat() if after.deadline else None,
            "available_actions": available_actions(actor, _settled(after, written))}


def available_actions(user: User | None, case, memo: dict | None = None) -> list[dict]:
    """What ``user`` may do to ``case`` now, by the table: the state, the permission (or the
    request a receiver may make instead), scope and relation, and the case's guards. Each item
    names the endpoint (``action``), the table row it records (``records``) and what the
    request must carry (``needs``: note, on_site, photo, …), which no list can know before.
    A list passes one ``memo`` for all its rows: cases in the same situation for this user are
    decided once (a 500-case sync has a few dozen situations)."""
    if user is None:
        return []
    if memo is None:
        return _available(user, case)
    situation = memo.get(_situation)
    if situation is None:
        situation = memo[_situation] = _situation(user)
    key = situation(case)
    found = memo.get(key)
    if found is None:
        found = memo[key] = _available(user, case)
    return found


def _situation(user: User):
    """A function of a case giving everything of it that :func:`_available` reads, as it bears
    on ``user``: the state, scope, each relation the policy asks about and each guard's field."""
    me, department, scoped = user.id, user.department_id, scope_test(user)

    def situation(case) -> tuple:
        return (case.state, scoped(case.grid_code, case.city_id), case.worker_id == me,
                case.reporter_id == me, case.handler_id == me,
                department is not None and case.department_id == department,
                case.source, case.rating is None, case.deadline is None,
                bool(case.pending_request))
    return situation


def _available(user: User, case) -> list[dict]:
    context = None
    found = []
    for name, step in STEPS.items():
        if case.state not in step.sources and not (
                step.requested_as and case.state in TABLE_ACTIONS[step.requested_as].sources):
            continue
        context = context or _policy_context(case)
        if not can(user, step.permission, **context):
            if not step.requested_as:
                continue
            step = TABLE_ACTIONS[step.requested_as]
            if not can(user, step.permission, **context):
                continue
        if case.state not in step.sources:
            continue
        if not all(case_guard(guard, case, user.id, guard == "not_your_report"
                              and can(user, "case.close", **context)) for guard in step.guards):
            continue
        found.append({"action": name, "records": step.name, "needs": list(step.needs)})
    return found


def outcome(step: Action, case, data: StepInput | None = None) -> tuple[str, str]:
    """Where ``step`` leads the case and the action its history row names, by the table (a
    request that says "no", ``valid=false`` or ``passed=false``, leads elsewhere)."""
    if step.otherwise is not None and data is not None \
            and not getattr(data, step.otherwise.flag):
        return step.otherwise.target, step.otherwise.records
    return step.leads_to(case.state, getattr(case, "shelved_from", None)), step.name


def _check(case, action: str, actor: User | None,
           data: StepInput) -> tuple[Action, tuple[float | None, float | None]]:
    """The rules every step obeys before it is planned, all from the table: policy (role,
    scope, relation), the state it starts from, the case's guards, the note, photos and place
    it needs. The table row taken (a receiver who may only ask takes the request's row), and
    the actor's point."""
    step = STEPS[action]
    context = _policy_context(case)
    if step.requested_as and not can(actor, step.permission, **context) \
            and can(actor, TABLE_ACTIONS[step.requested_as].permission, **context):
        step = TABLE_ACTIONS[step.requested_as]  # the receiver asks; a duty chief approves
    else:
        authorize(actor, step.permission, **context)
    if case.state not in step.sources:
        raise Conflict(f"Case {case.code} is {case.state}; it cannot be {_past(action)} now.",
                       code="conflict", state=case.state, action=action)
    for guard in step.guards:
        may_close = guard == "not_your_report" and can(actor, "case.close", **context)
        if not case_guard(guard, case, actor.id if actor else None, may_close):
            _refuse(guard, case)
    if NOTE in step.needs and not (data.note or "").strip():
        raise InvalidInput(f"Say why in a note to {action} a case.", code="note_required")
    if INTO in step.needs and data.into is None:
        raise InvalidInput("Name the open case that carries this report on (into: its id).",
                           code="into_required")
    if PHOTO in step.needs and not data.photos:
        raise InvalidInput(f"To {action.replace('_', '-')} a case, send at least one photo "
                           "taken after the work.", code="photo_required")
    on_site = ON_SITE in step.needs
    lon, lat = _actor_point(data, required=on_site)
    if on_site:
        _require_near(case, lon, lat)
    return step, (lon, lat)


def _refuse(guard: str, case) -> None:
    """409 with the guard's code and a sentence about this case."""
    if guard == "verification_required":
        raise Conflict(f"Case {case.code} came from a citizen: an inspector must verify it on "
                       "site before it is filed.", code=guard)
    if guard == "not_a_citizen_report":
        raise Conflict(f"Case {case.code} was reported by an inspector on site; only a "
                       "citizen's report is verified. File it as it is.", code=guard)
    if guard == "not_your_report":
        raise Conflict("Only the inspector who reported a problem may handle it on the spot.",
                       code=guard)
    if guard == "already_rated":
        raise Conflict(f"Case {case.code} is already rated; a rating cannot be changed.",
                       code=guard, rating=case.rating)
    if guard == "no_clock":
        raise Conflict(f"Case {case.code} has no running clock to extend.", code=guard)
    if guard == "request_pending":
        raise Conflict(f"Case {case.code} already has a request waiting for a duty chief.",
                       code=guard)
    raise Conflict(f"Case {case.code} cannot take this step now ({guard}).", code=guard)


def _attach(data: StepInput, case_id: int, action: str, actor: User | None,
            history_id: int) -> None:
    if data.photos:
        attach_photos(data.photos, case_id=case_id, history_id=history_id,
                      stage="after" if action in ("handle", "self_handle") else "before",
                      uploaded_by=actor.id if actor else None)


# -- reading a case for a step ---------------------------------------------------------------
#
# A step reads the case once: every column, its point, its category and its city's calendar
# version in one statement (the calendar itself is cached per process by that version).

_CASE_COLUMNS = ", ".join(f"c.{column.name}" for column in Case.__table__.columns
                          if column.name != "location")
_STEP_CASE = Prepared("gridmgr_step_case", f"""
SELECT {_CASE_COLUMNS}, ST_X(c.location) AS lon, ST_Y(c.location) AS lat,
       k.code AS category_code, k.limits, k.auto_dispatch,
       k.department_id AS category_department_id,
       {calendar_version_sql("c.city_id")} AS calendar_version
FROM cases c JOIN categories k ON k.id = c.category_id
WHERE c.id = :id
""")


def read_case(case_id: int) -> SimpleNamespace:
    """The case as a step reads it (404 ``case_not_found``): its columns, ``lon``/``lat``, its
    ``category`` (id, code, limits, auto_dispatch, department_id) and ``calendar``."""
    read = _STEP_CASE.execute({"id": case_id})
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
    return case


def case_after(case, target: str, values: dict) -> SimpleNamespace:
    """The case as a step leaves it (what its history row and live event describe)."""
    after = SimpleNamespace(**{**vars(case), **values, "state": target})
    after.category = case.category.code
    return after


# -- filing: one read, the rules' choice, one write ------------------------------------------
#
# Filing is the operator's busiest step, and a category with ``auto_dispatch`` is dispatched
# in the same request. Both steps are taken by one conditional UPDATE (reported or verified →
# dispatched), with the history row and live event of each step written by the same statement
# in step order, then one commit.

AUTOMATIC_NOTE = "按派遣规则自动派遣"

# Dispatch by the rules (``gridmgr.dispatch``) reads rosters, duty and positions and takes its
# steps through this workflow, so it stands above it and hands filing its planner
# (:func:`plan_filing_dispatch_with`): ``planner(filed case, now, calendar, (lon, lat))`` gives
# the dispatch's values and history details, or None when nobody can receive the case. Without
# a planner a filed case of an ``auto_dispatch`` category waits for the worker's job.
_filing_dispatch: Callable[..., tuple[dict, dict] | None] | None = None


def plan_filing_dispatch_with(planner: Callable[..., tuple[dict, dict] | None]) -> None:
    """Dispatch a filed case of an ``auto_dispatch`` category by ``planner`` in the filing's
    own statement."""
    global _filing_dispatch
    _filing_dispatch = planner


def _file(case, actor: User | None, data: StepInput, now: datetime,
          point: tuple[float | None, float | None]) -> dict:
    """File a report as a case (立案) and, for a category with ``auto_dispatch``, dispatch it by
    the rules in the same transaction; the filing stands alone when nobody can receive it
    (the background worker tries again)."""
    plan = _plan_file(case, actor, data, now)
    category = plan.category or case.category
    filed_state, _ = outcome(STEPS["file"], case, data)
    filed = SimpleNamespace(**{**vars(case), **plan.values, "state": filed_state,
                               "category": category, "category_id": category.id,
                               "version": case.version + 1})
    dispatch = None
    if category.auto_dispatch and _filing_dispatch is not None:
        try:
            dispatch = _filing_dispatch(filed, now, case.calendar, (case.lon, case.lat))
        except DomainError:
            dispatch = None  # the filing stands; the worker's auto_dispatch job tries again
    lon, lat = point
    records = [{**step_parameters(case_after(filed, filed_state, {}), action="file",
                                  from_state=case.state, actor=actor, note=data.note, lon=lon,
                                  lat=lat, details=plan.details), "at": now}]
    values, final = dict(plan.values), filed
    if dispatch is not None:
        dispatch_values, details = dispatch
        target, recorded = outcome(TABLE_ACTIONS["dispatch"], filed)
        final = SimpleNamespace(**{**vars(filed), **dispatch_values, "state": target,
                                   "version": filed.version + 1})
        values.update(dispatch_values)
        records.append({**step_parameters(case_after(final, target, {}), action=recorded,
                                          from_state=filed_state, note=AUTOMATIC_NOTE,
                                          details=details), "at": now})
    written = write_step(case, final.state, values, records)
    if written is None:
        raise _moved(case)
    _attach(data, case.id, "file", actor, written.h1)
    db.session.commit()
    result = step_answer(actor, final, "file", written)
    if dispatch is not None:
        result.update(department_id=final.department_id, worker_id=final.worker_id)
    return result


def handle_radius_m() -> float:
    return float(current_app.config["GRIDMGR_HANDLE_RADIUS_M"])


# -- the one writer --------------------------------------------------------------------------

_WRITERS: dict[tuple, Prepared] = {}


def write_step(case, target: str, values: dict, records: list[dict],
               extra_where: str = "", *, updated_at: datetime | None = None,
               events: bool = True):
    """The one writer of every step (people's, automatic dispatch, escalation, imported
    history): the conditional UPDATE of ``case`` to ``target`` with ``values``, which matches
    only while the case is in the state and version it was read in, and each of ``records``
    (a step's history row and live event, ``step_parameters``; filing with its dispatch is
    two), in one statement. ``updated_at``: the case's, else the transaction's time;
    ``events=False``: history rows only (``history_parameters``), no live events. The row has
    ``version`` and each history id (``h1``, ``h2``, …); None when the case moved meanwhile
    (nothing was written)."""
    key = (tuple(values), len(records), extra_where, events)
    statement = _WRITERS.get(key)
    if statement is None:
        sets = "".join(f"{column} = CAST(:v_{column} AS jsonb), " if column in _JSONB
                       else f"{column} = :v_{column}, " for column in values)
        ids = ", ".join(f"(SELECT id FROM h{n}) AS h{n}" for n in range(1, len(records) + 1))
        statement = _WRITERS[key] = Prepared(f"gridmgr_step_{len(_WRITERS)}", f"""
WITH u AS (
    UPDATE cases SET {sets}state = :target, version = version + {len(records)},
           updated_at = COALESCE(CAST(:updated_at AS timestamptz), now())
    WHERE id = :id AND state = :expected AND version = :version {extra_where}
    RETURNING version
), {chained_steps_ctes(len(records), "u", events)}
SELECT (SELECT version FROM u) AS version, {ids}""")
    params = {f"v_{k}": (json.dumps(v, default=str) if k in _JSONB and v is not None else v)
              for k, v in values.items()}
    written = statement.one({**params, "target": target, "id": case.id,
                             "expected": case.state, "version": case.version,
                             "updated_at": updated_at, **chained_steps_parameters(*records)})
    return None if written.version is None else written


def _settled(after, written) -> SimpleNamespace:
    """The case as written, with the version the database gave it."""
    return SimpleNamespace(**{**vars(after), "version": written.version})


def _moved(case) -> Conflict:
    db.session.rollback()
    return Conflict(f"Case {case.code} was changed by someone else meanwhile; reload it.",
                    code="conflict")


# -- one planner per action: checks and the values it writes ---------------------------------

def plan_step(step: Action, case, actor, data: StepInput, now: datetime) -> _Plan:
    """What ``step`` (a row of the table) writes to ``case`` at ``now`` beyond its state: the
    one definition for the API and the history import's replay. ``case`` carries its
    ``category`` (with ``limits``) and ``calendar``; ``actor`` anything with ``id``."""
    if step.request:
        return _request_plan(case, step, actor, data, now)
    return _PLANNERS[step.name](case, actor, data, now)


def _counted(case, action: str) -> dict:
    """The counters the table's row ``action`` adds one to."""
    return {counter: getattr(case, counter) + 1 for counter in TABLE_ACTIONS[action].counters}


def _actor_id(actor) -> int | None:
    return actor.id if actor else None


def _plan_verify(case, actor, data, now):
    deadlines = _with_deadline(case, _started_stage("verify"), now)
    if not data.valid:
        return _Plan({"verified_by_id": _actor_id(actor), "closed_at": now}, {"valid": False})
    return _Plan({"verified_by_id": _actor_id(actor), "deadlines": deadlines}, {"valid": True})


def _plan_file(case, actor, data, now):
    values = {}
    details = {}
    category = case.category
    if data.category and data.category != category.code:
        from gridmgr.cases.intake import category_by_code

        category = data.found_category or category_by_code(data.category)
        values["category_id"] = category.id
        details["category"] = category.code
    values["deadlines"] = _with_deadline(case, _started_stage("file"), now, category,
                                         case.calendar)
    return _Plan(values, details, category=category if "category" in details else None)


def _plan_cancel(case, actor, data, now):
    return _Plan({"closed_at": now})


def _plan_merge(case, actor, data, now):
    """Merging needs an open case of the same city, other than this one, that the actor may
    see; the reports that will move are named for the reporters' message."""
    if data.into == case.id:
        raise InvalidInput(f"Case {case.code} cannot be merged into itself.",
                           code="merge_into_itself")
    check_case_id(data.into)
    into = db.session.execute(text("""
        SELECT id, code, state, city_id, grid_code FROM cases WHERE id = :id FOR UPDATE"""),
        {"id": data.into}).one_or_none()
    if into is None or into.city_id != case.city_id:
        raise InvalidInput(f"No case of this city has the id {data.into}.",
                           code="into_not_found")
    authorize(actor, "case.view", region_code=into.grid_code, city_id=into.city_id)
    if into.state in ("closed", "cancelled"):
        raise Conflict(f"Case {into.code} is {into.state}; merge into an open case.",
                       code="into_not_open", state=into.state)
    reports = list(db.session.scalars(text(
        "SELECT id FROM reports WHERE case_id = :id ORDER BY id"), {"id": case.id}))
    return _Plan({"closed_at": now}, {"merged_into": into.id, "duplicate_of": into.id,
                                      "into_code": into.code, "reports": reports},
                 told={"merged_into": into.id, "merged_reports": reports})


def _carry_over(case, into: int) -> None:
    """A merge's second half, in its transaction: the merged case's reports (its followers)
    and their photos move to the surviving case, which counts them as its reporters; when
    that case was closed meanwhile, nothing is written (409)."""
    carried = db.session.execute(text("""
        WITH moved AS (
            UPDATE reports SET case_id = :into WHERE case_id = :id RETURNING id
        ), photos_moved AS (
            -- a report's photos leave the merged case's steps: they belong to its report now
            UPDATE photos SET case_id = :into, history_id = NULL
            WHERE case_id = :id AND (report_id IN (SELECT id FROM moved) OR history_id IS NULL)
            RETURNING id
        )
        UPDATE cases SET reporter_count = reporter_count + (SELECT count(*) FROM moved),
               updated_at = now()
        WHERE id = :into AND state NOT IN ('closed', 'cancelled')
        RETURNING id"""), {"id": case.id, "into": into}).one_or_none()
    if carried is None:
        db.session.rollback()
        raise Conflict("The case to merge into was closed meanwhile; nothing was merged.",
                       code="into_not_open")


def _plan_dispatch(case, actor, data, now):
    if data.receiver is not None:
        department_id, worker_id = data.receiver
    else:
        department, worker = _department(data.department, case), _worker(data.worker, case)
        department_id = department.id if department else None
        worker_id = worker.id if worker else None
    if department_id is None and worker_id is None:
        raise InvalidInput("Name a department or a worker to dispatch to (no department is "
                           "responsible for this category here).", code="receiver_required")
    values = {"department_id": department_id, "worker_id": worker_id}
    values.update(start_clock(case, now, _calendar(case)))
    return _Plan(values, {"department_id": values["department_id"],
                          "worker_id": values["worker_id"], "deadline": values["deadline"]})


def _plan_accept(case, actor, data, now):
    return _Plan({"accepted_at": now})


def _plan_return(case, actor, data, now):
    return _Plan({"department_id": None, "worker_id": None, "dispatched_at": None,
                  "accepted_at": None, "deadline": None, "yellow_at": None,
                  "clock_unit": None, "paused_seconds": 0, **_counted(case, "return")},
                 {"department_id": case.department_id})


def _plan_handle(case, actor, data, now):
    deadlines = _with_deadline(case, _started_stage("handle"), now)
    return _Plan({"handler_id": _actor_id(actor), "handled_at": now, "deadlines": deadlines})


def _plan_check(case, actor, data, now):
    if data.passed:
        return _Plan({}, {"passed": True})
    plan = _plan_rework(case, actor, data, now)
    plan.details["passed"] = False
    return plan


def _plan_close(case, actor, data, now):
    return _Plan({"closed_at": now})


def _plan_rework(case, actor, data, now):
    values = {"handler_id": None, "handled_at": None, "accepted_at": None,
              **_counted(case, "rework")}
    values.update(start_clock(case, now, _calendar(case)))
    return _Plan(values, {"department_id": case.department_id,
                          "rework": values["rework_count"]})


def _plan_extend(case, actor, data, now):
    amount, unit, new_deadline = _extension(case, data)
    cal = _calendar(case)
    if new_deadline is None:
        new_deadline = add_limit(case.deadline, amount, unit, cal)
    if new_deadline <= case.deadline:
        raise InvalidInput("The new deadline must be later than the current one.",
                           code="bad_extension")
    values = {"deadline": new_deadline, **_counted(case, "extend"), "pending_request": None,
              "yellow_at": yellow_at(case.dispatched_at, new_deadline, case.clock_unit,
                                      case.paused_seconds, cal)}
    return _Plan(values, {"deadline": new_deadline.isoformat(),
                          "previous": case.deadline.isoformat()})


def _plan_shelve(case, actor, data, now):
    return _Plan({"paused_at": now, "shelved_from": case.state, "pending_request": None})


def _plan_resume(case, actor, data, now):
    if case.deadline is None:  # a category without a handling limit: no clock to move
        return _Plan({"paused_at": None, "shelved_from": None}, {"paused_seconds": 0.0})
    cal = _calendar(case)
    deadline, took = resume(case.deadline, case.paused_at, now, case.clock_unit, cal)
    paused = case.paused_seconds + took.total_seconds()
    return _Plan({
        "deadline": deadline, "paused_at": None, "shelved_from": None,
        "paused_seconds": paused,
        "yellow_at": yellow_at(case.dispatched_at, deadline, case.clock_unit, paused, cal)},
        {"paused_seconds": took.total_seconds()})


def _plan_self_handle(case, actor, data, now):
    return _Plan({"handler_id": _actor_id(actor), "handled_at": now, "closed_at": now})


def _plan_rate(case, actor, data, now):
    if data.rating is None or not 1 <= data.rating <= 5:
        raise InvalidInput("A rating is a whole number from 1 to 5.", code="bad_rating")
    return _Plan({"rating": data.rating, "rating_note": data.note}, {"rating": data.rating},
                 extra_where="AND rating IS NULL")


def _request_plan(case, step: Action, actor, data, now):
    """The receiver asks for an extension or shelving; the state stays, a duty chief decides."""
    request = {"kind": step.request, "by": actor.id, "at": now.isoformat(), "note": data.note}
    if step.request == "extend":
        amount, unit, deadline = _extension(case, data)
        request.update(amount=amount, unit=unit,
                       deadline=deadline.isoformat() if deadline else None)
    return _Plan({"pending_request": request}, request)


_PLANNERS = {
    "verify": _plan_verify, "file": _plan_file, "cancel": _plan_cancel, "merge": _plan_merge,
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
    return {"verify": "verified", "file": "filed", "cancel": "cancelled", "merge": "merged",
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


def _started_stage(action: str) -> str:
    """The stage deadline a step starts, by the table (the accept and handling clocks are
    started by dispatch, :func:`start_clock`)."""
    (stage,) = (s for s in TABLE_ACTIONS[action].clocks.start if s not in ("accept", "handle"))
    return stage


def _with_deadline(case: Case, stage: str, now: datetime, category=None,
                   calendar=None) -> dict:
    return start_stages(case.deadlines, (stage,), (category or case.category).limits, now,
                        calendar or getattr(case, "calendar", None)
                        or (lambda: calendar_for_city(case.city_id)))


def _calendar(case):
    """The case's city calendar: the one read with the case, else the city's."""
    return getattr(case, "calendar", None) or calendar_for_city(case.city_id)


def start_clock(case: Case, now: datetime, calendar=None) -> dict:
    """Dispatch starts the accept clock and the handling clock from the category's ``accept``
    and ``handle`` limits (``calendar``: the city's, when the caller has it)."""
    cal = calendar or (lambda: calendar_for_city(case.city_id))
    handle = stage_clock("handle", stage_limit(case.category.limits, "handle"), now, cal)
    values = {"dispatched_at": now, "paused_seconds": 0, "paused_at": None,
              "deadline": None, "yellow_at": None, "clock_unit": None,
              "deadlines": start_stages(case.deadlines, ("accept", "handle"),
                                        case.category.limits, now, cal)}
    if handle is not None:
        values.update(deadline=handle.deadline, clock_unit=handle.unit,
                      yellow_at=handle.yellow_at)
    return values


def _extension(case: Case, data: StepInput) -> tuple[float | None, str | None, datetime | None]:
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
