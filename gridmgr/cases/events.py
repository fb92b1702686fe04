"""Recording a step of a case: one history row and one live event, in the caller's transaction.

:func:`record_step` is the only place that writes history or publishes case events, so every
state change is told to the same rooms in the same shape.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import text

from gridmgr.calendar.deadlines import current_clock, handling_clock
from gridmgr.cases.steps import TABLE
from gridmgr.database.prepared import PARAMETER
from gridmgr.extensions import db
from gridmgr.grids.models import ancestor_codes
from gridmgr.live.outbox import _jsonable, publish

# Columns every conditional UPDATE / INSERT returns, enough for history and the live payload.
CASE_RETURNING = """
    id, code, state, city_id, grid_code, category_id, reporter_id, department_id, worker_id,
    handler_id, deadline, yellow_at, handled_at, paused_at, version, source, deadlines,
    ST_X(location) AS lon, ST_Y(location) AS lat,
    (SELECT code FROM categories WHERE categories.id = cases.category_id) AS category
"""

# The live event of each action, by the workflow table; any other action is ``case.updated``.
EVENTS = {action.name: action.event for action in TABLE}

_HISTORY_COLUMNS = """case_id, actor_id, actor_role, action, from_state, to_state, at, location,
    note, details"""
_HISTORY_VALUES = """:case_id, :actor_id, :actor_role, :action, :from_state, :to_state, now(),
    CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
         ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END,
    :note, {details}"""

_INSERT_HISTORY = text(f"""
INSERT INTO case_history ({_HISTORY_COLUMNS})
VALUES ({_HISTORY_VALUES.format(details="CAST(:details AS jsonb)")})
RETURNING id
""")


def history_and_event_ctes(source: str = "(SELECT 1) AS one",
                           details: str = "CAST(:details AS jsonb)", *,
                           case_id: str = ":case_id", payload: str = "CAST(:payload AS jsonb)",
                           rooms: str = "CAST(:rooms AS text[])") -> str:
    """Two CTEs for a statement that also makes the change: ``h``, the history row (one per row
    of ``source``, normally one), and its outbox row; the parameters come from
    :func:`step_parameters`. ``details``, ``case_id``, ``payload``, ``rooms``: SQL for what
    the statement itself decides (they may name columns of ``source``)."""
    history_values = _HISTORY_VALUES.replace(":case_id", case_id).format(details=details)
    return f"""h AS (
    INSERT INTO case_history ({_HISTORY_COLUMNS})
    SELECT {history_values} FROM {source}
    RETURNING id
), e AS (
    INSERT INTO live_events (event, payload, rooms)
    SELECT :event, {payload}, {rooms} FROM h, {source}
)"""


def chained_steps_ctes(count: int, source: str, events: bool = True) -> str:
    """CTEs for a statement that makes one change recorded as ``count`` steps (file, then
    dispatch): step n's history row ``h{n}`` and outbox row ``e{n}``, each written only after
    the previous step's, so history ids and event order follow the steps. One row of ``source``
    writes them; the parameters are :func:`chained_steps_parameters` (a step's ``at``, when
    given, is its history time, else the transaction's). ``events=False``: history rows only
    (imported history is not news)."""
    timed = _HISTORY_VALUES.replace("now()", "COALESCE(CAST(:at AS timestamptz), now())")
    ctes = []
    for n in range(1, count + 1):
        values = PARAMETER.sub(rf":\1_{n}", timed).format(
            details=f"CAST(:details_{n} AS jsonb)")
        after = source if n == 1 else f"e{n - 1}" if events else f"h{n - 1}"
        ctes.append(f"""h{n} AS (
    INSERT INTO case_history ({_HISTORY_COLUMNS})
    SELECT {values} FROM {after}
    RETURNING id
)""" + (f""", e{n} AS (
    INSERT INTO live_events (event, payload, rooms)
    SELECT :event_{n}, CAST(:payload_{n} AS jsonb), CAST(:rooms_{n} AS text[]) FROM h{n}
    RETURNING id
)""" if events else ""))
    return ",\n".join(ctes)


def chained_steps_parameters(*steps: dict) -> dict:
    """The parameters of :func:`chained_steps_ctes` from each step's :func:`step_parameters`
    (or, without events, :func:`history_parameters`)."""
    return {f"{name}_{n}": value for n, params in enumerate(steps, 1)
            for name, value in {"at": None, **params}.items()}



# The history row and, in the same statement, the outbox row (what ``publish`` adds at flush):
# one round trip fewer for a step whose transaction commits right after.
_INSERT_HISTORY_AND_EVENT = text(f"WITH {history_and_event_ctes()} SELECT id FROM h")


def clock_of(row, now: datetime | None = None) -> str | None:
    """The handling clock of a case row: green, yellow, red, paused, or None before dispatch
    (the one rule, ``gridmgr.calendar.deadlines.clock_colour``)."""
    return handling_clock(row, now)


def rooms_of(row) -> list[str]:
    """Live rooms told about a case: its city, its grid and every ancestor, its receivers."""
    rooms = [f"city:{row.city_id}"]
    code = row.grid_code
    rooms += [f"region:{prefix}" for prefix in ancestor_codes(code)]
    if row.department_id is not None:
        rooms.append(f"department:{row.department_id}")
    if row.worker_id is not None:
        rooms.append(f"worker:{row.worker_id}")
    if row.reporter_id is not None:
        rooms.append(f"worker:{row.reporter_id}")
    return rooms


def live_payload(row, now: datetime | None = None) -> dict:
    """The public shape of a case in live events (no reporter, no contact details): the
    handling clock (``deadline``, ``clock``) and the current stage's (``stage_clock``)."""
    now = now or datetime.now(UTC)
    return {
        "id": row.id, "code": row.code, "state": row.state, "category": row.category,
        "lon": row.lon, "lat": row.lat, "grid_code": row.grid_code,
        "deadline": row.deadline.isoformat() if row.deadline else None,
        "clock": clock_of(row, now), "stage_clock": current_clock(row, now),
        "department_id": row.department_id, "worker_id": row.worker_id,
    }


def record_step(row, *, action: str, from_state: str | None, actor=None, note: str | None = None,
                lon: float | None = None, lat: float | None = None,
                details: dict | None = None, last: bool = False) -> int:
    """Append the history row for a step already applied to ``row`` and publish its event:
    ``case.created`` for a new case, ``case.dispatched`` for a dispatch, else ``case.updated``.

    ``last``: the caller commits right after, so history and event go in one statement."""
    params = step_parameters(row, action=action, from_state=from_state, actor=actor,
                             note=note, lon=lon, lat=lat, details=details)
    if last and params["rooms"]:
        return db.session.execute(_INSERT_HISTORY_AND_EVENT, params).scalar_one()
    history_id = db.session.execute(_INSERT_HISTORY, params).scalar_one()
    publish(params["event"], json.loads(params["payload"]), params["rooms"])
    return history_id


def step_parameters(row, *, action: str, from_state: str | None, actor=None,
                    note: str | None = None, lon: float | None = None,
                    lat: float | None = None, details: dict | None = None,
                    told: dict | None = None) -> dict:
    """The bound parameters of a step's history row and live event (see
    :func:`history_and_event_ctes`), ``details`` and ``payload`` as JSON text; ``told``: more
    the live event says (an escalation's level and region)."""
    values = step_values(row, action=action, from_state=from_state, actor=actor, note=note,
                         lon=lon, lat=lat, details=details)
    if told:
        values["payload"].update(told)
    values["details"] = json.dumps(values["details"], ensure_ascii=False, default=str)
    values["payload"] = json.dumps(values["payload"], default=_jsonable)
    return values


def step_values(row, *, action: str, from_state: str | None, actor=None,
                note: str | None = None, lon: float | None = None, lat: float | None = None,
                details: dict | None = None) -> dict:
    """:func:`step_parameters` with ``details`` and ``payload`` as dicts, for a statement that
    takes its parameters as one JSON object (``Prepared`` with ``types``)."""
    payload = live_payload(row)
    payload["action"] = action
    return {
        **history_values(row.id, row.state, action=action, from_state=from_state, actor=actor,
                         note=note, lon=lon, lat=lat, details=details),
        "event": EVENTS.get(action, "case.updated"),
        "payload": payload, "rooms": sorted(set(rooms_of(row))),
    }


def history_values(case_id: int | None, to_state: str, *, action: str, from_state: str | None,
                   actor=None, note: str | None = None, lon: float | None = None,
                   lat: float | None = None, details: dict | None = None) -> dict:
    """A step's history row (``actor``: anything with ``id`` and ``role``), the part of
    :func:`step_values` that the history import writes too."""
    return {
        "case_id": case_id, "actor_id": actor.id if actor else None,
        "actor_role": actor.role if actor else None, "action": action,
        "from_state": from_state, "to_state": to_state, "lon": lon, "lat": lat, "note": note,
        "details": details or {},
    }


def history_parameters(values: dict, at: datetime | None) -> dict:
    """A :func:`history_values` row as bound parameters of :func:`chained_steps_ctes` without
    events: ``details`` as JSON text, ``at`` the step's time."""
    return {**values, "details": json.dumps(values["details"], ensure_ascii=False, default=str),
            "at": at}
