"""Counts and rates for a period, grouped by region, department, category or person.

Everything is counted in PostgreSQL: the steps in one pass over ``evaluation_facts`` (one
narrow row per counted step of ``case_history`` and per case's report, with its case's region,
category, department and deadline checks, kept by triggers: ``models.py``, migration 0007),
and overdue cases from ``cases``; Python only adds and divides. A period is ``[start, end)``;
a step belongs to it when its ``at`` does.

Counts (key, what is counted, who the "person" of it is):

- ``reported``: cases created in the period (the reporter).
- ``valid``: of those, the ones filed (``file``) or handled on the spot (``self_handle``)
  before the period's end (the reporter). 有效上报.
- ``verified`` / ``verified_on_time``: ``verify`` steps; on time when at or before
  ``deadlines['verify']`` or when the case has no such deadline (the inspector). 核实.
- ``filed`` / ``filed_on_time``: ``file`` steps, on time against ``deadlines['file']``
  (the operator). 立案.
- ``dispatched``: ``dispatch`` steps (the dispatcher). ``returned``: ``return`` steps, i.e.
  mis-dispatches sent back (the member who returned it). Both count for the department named
  in the step's details, the one the case was dispatched to or returned by.
- ``checked`` / ``checked_on_time``: ``check`` steps plus failed checks (a ``rework`` step
  whose details say ``passed: false``), on time against ``deadlines['check']`` (the
  inspector). 核查.
- ``reworked``, ``extended``, ``shelved``: ``rework``, ``extend`` and ``shelve`` steps; a
  rework counts for the person whose handling it sent back (the last ``handle`` before it).
- ``handled`` / ``handled_on_time``: cases with a ``handle`` or ``self_handle`` step in the
  period, counted once; on time when the last such step is at or before the case's handling
  deadline (``cases.deadline``; no deadline counts as on time) (the handler).
- ``closed`` / ``closed_on_time``: cases with a ``close`` or ``self_handle`` step in the
  period; on time when the case's final handling met its deadline and, when the case has
  ``deadlines['close']``, the close step met that too (the handler).
- ``overdue``: cases whose state at the period's end (the last step before it) was
  ``dispatched`` or ``accepted`` and whose handling deadline had passed by then (by now,
  while the period is still running) (the worker or handler). A case shelved at the end
  is not overdue: shelving pauses the clock.
- ``due_handling``: cases handled in the period or overdue at its end, each once.
  ``due_closing``: cases handled or closed in the period or overdue at its end, each once.

Rates (``None`` when the denominator is zero: "no data", not 0 % or 100 %):
有效上报率 ``valid_report_rate`` = valid / reported; 按时立案率 ``filed_on_time_rate`` =
filed_on_time / filed; 准确派遣率 ``dispatch_accuracy`` = (dispatched − returned) / dispatched;
处置率 ``handling_rate`` = handled / due_handling; 按期处置率 ``handled_on_time_rate`` =
handled_on_time / due_handling; 结案率 ``closing_rate`` = closed / due_closing; 按期结案率
``closed_on_time_rate`` = closed_on_time / due_closing; 返工率 ``rework_rate`` = reworked /
handled (events over cases, so it can exceed 1); 按期核实率 ``verified_on_time_rate`` =
verified_on_time / verified; 按期核查率 ``checked_on_time_rate`` = checked_on_time / checked.
Rates are exact here; tables round them to 4 decimals (scores use the exact values).

Deadlines are the case's current ones (``cases.deadline`` and the ``deadlines`` JSON): an
extension granted after the period moves them for that period too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text

from gridmgr.calendar.deadlines import overdue_sql
from gridmgr.errors import InvalidInput
from gridmgr.evaluation.periods import Period
from gridmgr.extensions import db
from gridmgr.grids.models import LEVEL_OF_CODE_LENGTH

COUNTS = ("reported", "valid", "verified", "verified_on_time", "filed", "filed_on_time",
          "dispatched", "returned", "handled", "handled_on_time", "closed", "closed_on_time",
          "reworked", "extended", "shelved", "checked", "checked_on_time", "overdue",
          "due_handling", "due_closing")

# rate -> (numerator, denominator); numerator "dispatched-returned" is a difference.
RATES: dict[str, tuple[str, str]] = {
    "valid_report_rate": ("valid", "reported"),                  # 有效上报率
    "filed_on_time_rate": ("filed_on_time", "filed"),            # 按时立案率
    "dispatch_accuracy": ("dispatched-returned", "dispatched"),  # 准确派遣率
    "handling_rate": ("handled", "due_handling"),                # 处置率
    "handled_on_time_rate": ("handled_on_time", "due_handling"),  # 按期处置率
    "closing_rate": ("closed", "due_closing"),                   # 结案率
    "closed_on_time_rate": ("closed_on_time", "due_closing"),    # 按期结案率
    "rework_rate": ("reworked", "handled"),                      # 返工率
    "verified_on_time_rate": ("verified_on_time", "verified"),   # 按期核实率
    "checked_on_time_rate": ("checked_on_time", "checked"),      # 按期核查率
}

GROUPINGS = ("region", "department", "category", "person", "city")
LEVELS = tuple(LEVEL_OF_CODE_LENGTH)  # a region code's lengths, district to grid

_KEY = {
    "region": "left(grid_code, :level)",
    "department": "department_id::text",
    "category": "category_id::text",
    "person": "person_id::text",
    "city": "''",
}


_PERSON = ("CASE WHEN kind = 'close' AND handle_at >= :start AND handle_at < :end "
           "THEN handle_person_id ELSE person_id END::text")
_KEY_OF_FACT = {**_KEY, "person": _PERSON}
_KEY_OF_OVERDUE = {**_KEY, "region": "left(o.grid_code, :level)",
                   "department": "o.department_id::text", "category": "o.category_id::text",
                   "person": "COALESCE(hd.person_id, o.handler_id, o.worker_id)::text"}
_HANDLING = "kind IN ('handle', 'self_handle')"
_CLOSING = "kind IN ('close', 'self_handle')"
_LAST_HANDLING = f"{_HANDLING} AND (next_at IS NULL OR next_at >= :end)"
_CHECK = "kind = 'check'"  # failed checks included (models.py)

# The period's steps from ``evaluation_facts`` (see models.py): one pass, one row per group.
_STEPS_SQL = f"""
SELECT {{key}} AS key,
       count(*) FILTER (WHERE kind = 'reported') AS reported,
       count(*) FILTER (WHERE kind = 'reported' AND valid_at < :end) AS valid,
       count(*) FILTER (WHERE kind = 'verify') AS verified,
       count(*) FILTER (WHERE kind = 'verify' AND on_time) AS verified_on_time,
       count(*) FILTER (WHERE kind = 'file') AS filed,
       count(*) FILTER (WHERE kind = 'file' AND on_time) AS filed_on_time,
       count(*) FILTER (WHERE kind = 'dispatch') AS dispatched,
       count(*) FILTER (WHERE kind = 'return') AS returned,
       count(*) FILTER (WHERE {_CHECK}) AS checked,
       count(*) FILTER (WHERE {_CHECK} AND on_time) AS checked_on_time,
       count(*) FILTER (WHERE kind = 'rework') AS reworked,
       count(*) FILTER (WHERE kind = 'extend') AS extended,
       count(*) FILTER (WHERE kind = 'shelve') AS shelved,
       -- a case's last handling in the period is the one whose next is not in it
       count(*) FILTER (WHERE {_LAST_HANDLING}) AS handled,
       count(*) FILTER (WHERE {_LAST_HANDLING} AND on_time) AS handled_on_time,
       count(*) FILTER (WHERE {_CLOSING}) AS closed,
       count(*) FILTER (WHERE {_CLOSING} AND closed_on_time) AS closed_on_time,
       -- closed cases also handled in the period (a close is final: its handling came before)
       count(*) FILTER (WHERE {_CLOSING} AND handle_at >= :start AND handle_at < :end)
           AS handled_and_closed
FROM evaluation_facts
WHERE city_id = :city_id AND at >= :start AND at < :end AND grid_code LIKE :prefix
GROUP BY 1
"""

# Overdue at the period's end is a state, not a step: read from ``cases``.
_OVERDUE_SQL = """
-- the cases open now or changed since the period's end, each from its own index: written as
-- one OR, the planner walked every case with a deadline instead (9 s at ten million cases)
WITH candidates AS (
    SELECT id FROM cases WHERE city_id = :city_id AND state IN ('dispatched', 'accepted')
    UNION
    SELECT id FROM cases WHERE updated_at >= :end
), overdue AS (
    SELECT c.id, c.grid_code, c.department_id, c.category_id, c.handler_id, c.worker_id,
           c.rework_count
    FROM candidates k JOIN cases c ON c.id = k.id
    WHERE c.city_id = :city_id AND c.grid_code LIKE :prefix
      -- overdue by the period's end, or by now while the period is still running
      AND {overdue} AND c.created_at < :end
      -- open now, or changed since the period's end (both indexed)
      AND (c.state IN ('dispatched', 'accepted') OR c.updated_at >= :end)
      -- untouched since the period's end: its state then is its state now
      AND CASE WHEN c.updated_at < :end THEN c.state
               ELSE (SELECT h.to_state FROM case_history h
                     WHERE h.case_id = c.id AND h.at < :end
                     ORDER BY h.at DESC, h.id DESC LIMIT 1) END
          IN ('dispatched', 'accepted')
)
SELECT {key} AS key, count(*) AS overdue, count(hd.found) AS overdue_handled
FROM overdue o
-- handled in the period and open again at its end: only after a rework
LEFT JOIN LATERAL (SELECT true AS found, f.person_id FROM evaluation_facts f
                   WHERE o.rework_count > 0 AND f.case_id = o.id
                     AND f.kind IN ('handle', 'self_handle')
                     AND f.at >= :start AND f.at < :end
                     AND (f.next_at IS NULL OR f.next_at >= :end)
                   LIMIT 1) hd ON true
GROUP BY 1
""".replace("{overdue}", overdue_sql("c.deadline", "LEAST(:end, now())"))


@dataclass
class IndicatorRow:
    """One group's counts and rates; ``key`` is a region code, or a department, category or
    user id as text (``''`` for the whole city, ``None`` for steps nobody is tied to)."""

    key: str | None
    counts: dict[str, int]
    rates: dict[str, float | None] = field(default_factory=dict)


def rate(numerator: int, denominator: int) -> float | None:
    """numerator / denominator; None when there is nothing to divide."""
    return None if denominator == 0 else numerator / denominator


def rates_of(counts: dict[str, int]) -> dict[str, float | None]:
    """Every rate of :data:`RATES` from one group's counts."""
    out = {}
    for name, (numerator, denominator) in RATES.items():
        if numerator == "dispatched-returned":
            top = counts["dispatched"] - counts["returned"]
        else:
            top = counts[numerator]
        out[name] = rate(top, counts[denominator])
    return out


def compute(by: str, period: Period, city_id: int, *, level: int = 15,
            prefix: str | None = None) -> list[IndicatorRow]:
    """Counts and rates per group for cases of ``city_id`` whose grid code starts with
    ``prefix``; ``by`` is one of :data:`GROUPINGS`, ``level`` the region code length."""
    if by not in GROUPINGS:
        raise InvalidInput(f"Group by one of {', '.join(GROUPINGS)}.", code="bad_grouping")
    if level not in LEVELS:
        raise InvalidInput("level is a region code length: 6, 9, 12 or 15.", code="bad_level")
    level = max(level, len(prefix or ""))  # never group above the scope: no foreign totals
    # JIT compiling these statements costs more than it saves at every size measured.
    db.session.execute(text("SET LOCAL jit = off"))
    params = {"city_id": city_id, "prefix": (prefix or "") + "%", "start": period.start,
              "end": period.end, "level": level}
    grouped: dict[str | None, dict[str, int]] = {}
    for row in db.session.execute(text(_STEPS_SQL.replace("{key}", _KEY_OF_FACT[by])),
                                  params).mappings():
        counts = grouped.setdefault(row["key"], dict.fromkeys(COUNTS, 0))
        for name in COUNTS:
            counts[name] = int(row.get(name) or 0)
        counts["due_handling"] = counts["handled"]
        counts["due_closing"] = (counts["handled"] + counts["closed"]
                                 - int(row["handled_and_closed"]))
    for key, overdue, both in db.session.execute(
            text(_OVERDUE_SQL.replace("{key}", _KEY_OF_OVERDUE[by])), params):
        counts = grouped.setdefault(key, dict.fromkeys(COUNTS, 0))
        counts["overdue"] = int(overdue)
        counts["due_handling"] += int(overdue) - int(both)
        counts["due_closing"] += int(overdue) - int(both)
    return [IndicatorRow(key, counts, rates_of(counts))
            for key, counts in sorted(grouped.items(), key=lambda kv: (kv[0] is None, kv[0]))
            if any(counts.values())]  # a group with only uncounted steps is no group
