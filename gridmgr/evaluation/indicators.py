"""Counts and rates for a period, grouped by region, department, category or person.

Everything is counted in PostgreSQL in one statement over ``case_history`` (the steps) and
``cases`` (their region, category, department and clocks); Python only divides. A period is
``[start, end)``; a step belongs to it when its ``at`` does.

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

from gridmgr.errors import InvalidInput
from gridmgr.evaluation.periods import Period
from gridmgr.extensions import db

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
LEVELS = (6, 9, 12, 15)

_KEY = {
    "region": "left(grid_code, :level)",
    "department": "department_id::text",
    "category": "category_id::text",
    "person": "person_id::text",
    "city": "''",
}


def _on_time(metric: str) -> str:
    """SQL: ``metric`` when the step met its stage deadline (see ``steps.on_time``)."""
    return f"CASE WHEN s.on_time THEN '{metric}' END"


_FACTS_SQL = f"""
WITH steps AS (
    -- narrow rows: the deadline checks are made here, not carried along as JSON
    SELECT h.id AS step_id, h.case_id, h.action, h.at, h.actor_id,
           COALESCE(NULLIF(h.details->>'department_id', '')::bigint, c.department_id)
               AS department_id,
           c.grid_code, c.category_id,
           h.action = 'rework' AND h.details->>'passed' = 'false' AS failed_check,
           (h.at <= (c.deadlines->>(CASE h.action WHEN 'verify' THEN 'verify'
                                                  WHEN 'file' THEN 'file'
                                                  ELSE 'check' END))::timestamptz)
               IS NOT FALSE AS on_time
    FROM case_history h JOIN cases c ON c.id = h.case_id
    WHERE h.at >= :start AND h.at < :end
      AND h.action IN ('verify', 'file', 'dispatch', 'return', 'check', 'rework', 'extend',
                       'shelve', 'handle', 'self_handle', 'close')
      AND c.city_id = :city_id AND c.grid_code LIKE :prefix
),
reported AS (
    SELECT c.id AS case_id, c.grid_code, c.department_id, c.category_id,
           c.reporter_id AS person_id,
           -- only filed (or self-handled) cases get past these states; look at the history
           -- only when the state may have been reached after the period
           CASE WHEN c.state IN ('reported', 'verified') THEN false
                WHEN c.state <> 'cancelled' AND c.updated_at < :end THEN true
                ELSE (SELECT true FROM case_history v
                      WHERE v.case_id = c.id AND v.action IN ('file', 'self_handle')
                        AND v.at < :end LIMIT 1) IS NOT NULL END AS valid
    FROM cases c
    WHERE c.created_at >= :start AND c.created_at < :end
      AND c.city_id = :city_id AND c.grid_code LIKE :prefix
),
step_facts AS (
    SELECT s.grid_code, s.department_id, s.category_id,
           CASE WHEN m.metric = 'reworked' THEN (
               -- a rework counts for the person whose handling was sent back
               SELECT p.actor_id FROM case_history p
               WHERE p.case_id = s.case_id AND p.action = 'handle' AND p.at <= s.at
               ORDER BY p.at DESC, p.id DESC LIMIT 1)
           ELSE s.actor_id END AS person_id,
           m.metric
    FROM steps s
    CROSS JOIN LATERAL unnest(CASE s.action
        WHEN 'verify' THEN ARRAY['verified', {_on_time('verified_on_time')}]
        WHEN 'file' THEN ARRAY['filed', {_on_time('filed_on_time')}]
        WHEN 'dispatch' THEN ARRAY['dispatched']
        WHEN 'return' THEN ARRAY['returned']
        WHEN 'check' THEN ARRAY['checked', {_on_time('checked_on_time')}]
        WHEN 'rework' THEN CASE WHEN s.failed_check
            THEN ARRAY['reworked', 'checked', {_on_time('checked_on_time')}]
            ELSE ARRAY['reworked'] END
        WHEN 'extend' THEN ARRAY['extended']
        WHEN 'shelve' THEN ARRAY['shelved']
        ELSE ARRAY[]::text[] END) AS m(metric)
    WHERE m.metric IS NOT NULL
),
handles AS (
    SELECT DISTINCT ON (case_id) case_id, at, actor_id FROM steps
    WHERE action IN ('handle', 'self_handle')
    ORDER BY case_id, at DESC, step_id DESC
),
closes AS (
    SELECT DISTINCT ON (case_id) case_id, at FROM steps
    WHERE action IN ('close', 'self_handle')
    ORDER BY case_id, at DESC, step_id DESC
),
overdue AS (
    SELECT c.id AS case_id FROM cases c
    WHERE c.city_id = :city_id AND c.grid_code LIKE :prefix
      -- overdue by the period's end, or by now while the period is still running
      AND c.deadline < LEAST(:end, now()) AND c.created_at < :end
      -- open now, or changed since the period's end (both indexed)
      AND (c.state IN ('dispatched', 'accepted') OR c.updated_at >= :end)
      -- untouched since the period's end: its state then is its state now
      AND CASE WHEN c.updated_at < :end THEN c.state
               ELSE (SELECT h.to_state FROM case_history h
                     WHERE h.case_id = c.id AND h.at < :end
                     ORDER BY h.at DESC, h.id DESC LIMIT 1) END
          IN ('dispatched', 'accepted')
),
disposal AS (
    SELECT c.grid_code, c.department_id, c.category_id,
           COALESCE(hd.actor_id, c.handler_id, c.worker_id) AS person_id,
           hd.case_id IS NOT NULL AS handled,
           hd.case_id IS NOT NULL AND (c.deadline IS NULL OR hd.at <= c.deadline)
               AS handled_on_time,
           cl.case_id IS NOT NULL AS closed,
           cl.case_id IS NOT NULL AND (c.deadline IS NULL OR c.handled_at <= c.deadline)
               AND (cl.at <= (c.deadlines->>'close')::timestamptz) IS NOT FALSE
               AS closed_on_time,
           od.case_id IS NOT NULL AS overdue
    FROM (SELECT case_id FROM handles UNION SELECT case_id FROM closes
          UNION SELECT case_id FROM overdue) k
    JOIN cases c ON c.id = k.case_id
    LEFT JOIN handles hd ON hd.case_id = k.case_id
    LEFT JOIN closes cl ON cl.case_id = k.case_id
    LEFT JOIN overdue od ON od.case_id = k.case_id
),
facts AS (
    SELECT grid_code, department_id, category_id, person_id, 'reported' AS metric
    FROM reported
    UNION ALL
    SELECT grid_code, department_id, category_id, person_id, 'valid' FROM reported WHERE valid
    UNION ALL
    SELECT grid_code, department_id, category_id, person_id, metric FROM step_facts
    UNION ALL
    SELECT d.grid_code, d.department_id, d.category_id, d.person_id, m.metric
    FROM disposal d CROSS JOIN LATERAL unnest(ARRAY[
        CASE WHEN d.handled THEN 'handled' END,
        CASE WHEN d.handled_on_time THEN 'handled_on_time' END,
        CASE WHEN d.closed THEN 'closed' END,
        CASE WHEN d.closed_on_time THEN 'closed_on_time' END,
        CASE WHEN d.overdue THEN 'overdue' END,
        CASE WHEN d.handled OR d.overdue THEN 'due_handling' END,
        CASE WHEN d.handled OR d.closed OR d.overdue THEN 'due_closing' END]) AS m(metric)
    WHERE m.metric IS NOT NULL
)
SELECT {{key}} AS key, metric, count(*) AS n
FROM facts
GROUP BY 1, 2
"""


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
    # JIT compiling this statement costs more than it saves at every size measured.
    db.session.execute(text("SET LOCAL jit = off"))
    rows = db.session.execute(text(_FACTS_SQL.replace("{key}", _KEY[by])), {
        "city_id": city_id, "prefix": (prefix or "") + "%", "start": period.start,
        "end": period.end, "level": level}).all()
    grouped: dict[str | None, dict[str, int]] = {}
    for key, metric, number in rows:  # one row per group and count, not per case
        grouped.setdefault(key, dict.fromkeys(COUNTS, 0))[metric] = int(number)
    return [IndicatorRow(key, counts, rates_of(counts))
            for key, counts in sorted(grouped.items(), key=lambda kv: (kv[0] is None, kv[0]))]
