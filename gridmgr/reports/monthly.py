"""The numbers of a monthly report: totals, rankings, the grids' counts, trends, overdue cases.

Everything is counted by :mod:`gridmgr.evaluation` (the same definitions as ``gridmgr stats``
and ``/api/v1/stats``); this module only adds what a report needs on top: the month before
for comparison, the daily flow, the grids' shapes and the longest overdue cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from shapely import wkb
from sqlalchemy import text

from gridmgr.calendar.deadlines import calendar_for_city
from gridmgr.evaluation import indicators, periods
from gridmgr.evaluation.periods import Period
from gridmgr.evaluation.tables import evaluate
from gridmgr.extensions import db
from gridmgr.grids.reading import find_region

TREND_MONTHS = 6
OVERDUE_LISTED = 20

_OVERDUE_SQL = text("""
SELECT c.code, c.grid_code, g.name AS grid_name, k.code AS category_code,
       k.name_zh AS category_zh, k.name_en AS category_en,
       d.name AS department_zh, d.name_en AS department_en, c.deadline,
       EXTRACT(EPOCH FROM (:as_of - c.deadline)) / 86400.0 AS days_overdue
FROM cases c
JOIN categories k ON k.id = c.category_id
LEFT JOIN regions g ON g.city_id = c.city_id AND g.code = c.grid_code
LEFT JOIN departments d ON d.id = c.department_id
WHERE c.city_id = :city_id AND c.grid_code LIKE :prefix
  AND c.deadline < :as_of AND c.created_at < :as_of
  AND (c.state IN ('dispatched', 'accepted') OR c.updated_at >= :as_of)
  -- its state at the moment (the last step before it), as the overdue count reads it
  AND CASE WHEN c.updated_at < :as_of THEN c.state
           ELSE (SELECT h.to_state FROM case_history h
                 WHERE h.case_id = c.id AND h.at < :as_of
                 ORDER BY h.at DESC, h.id DESC LIMIT 1) END IN ('dispatched', 'accepted')
ORDER BY c.deadline, c.id
""")

_DAILY_SQL = text("""
SELECT day, sum(reported)::int AS reported, sum(closed)::int AS closed FROM (
    SELECT (c.created_at AT TIME ZONE :tz)::date AS day, 1 AS reported, 0 AS closed
    FROM cases c
    WHERE c.city_id = :city_id AND c.grid_code LIKE :prefix
      AND c.created_at >= :start AND c.created_at < :end
    UNION ALL
    SELECT (max(h.at) AT TIME ZONE :tz)::date, 0, 1
    FROM case_history h JOIN cases c ON c.id = h.case_id
    WHERE c.city_id = :city_id AND c.grid_code LIKE :prefix
      AND h.action IN ('close', 'self_handle') AND h.at >= :start AND h.at < :end
    GROUP BY h.case_id
) f GROUP BY day ORDER BY day
""")

_SHAPES_SQL = text("""
SELECT code, name, ST_AsBinary(ST_SimplifyPreserveTopology(geom, 0.00002)) AS shape
FROM regions
WHERE city_id = :city_id AND length(code) = :length AND code LIKE :prefix
ORDER BY code
""")


@dataclass
class MonthlyReport:
    """Everything one report shows; built by :func:`monthly_report`, drawn by the renderer."""

    city_name: str
    scope_code: str | None
    scope_name: str | None
    period: Period
    previous: Period | None     # the month before (None before year 0001's February)
    as_of: datetime
    totals: dict                 # {"counts": {...}, "rates": {...}} for the month
    previous_totals: dict | None  # the same for the month before
    regions: list[dict]          # evaluation rows, best score first
    region_level: int            # the code length the regions are ranked at
    departments: list[dict]
    inspectors: list[dict]
    categories: list[dict]       # most reported first
    grids: list[dict]            # code, name, shape (shapely), reported, overdue
    outlines: list[dict]         # the ranked regions' code, name, shape (drawn over the grids)
    daily: list[dict]            # day, reported, closed
    trend: list[dict]            # label, reported, rates, one per month, oldest first
    overdue: list[dict] = field(default_factory=list)
    overdue_total: int = 0


def monthly_report(city_id: int, period: str, *, prefix: str | None = None,
                   now: datetime | None = None) -> MonthlyReport:
    """The report of ``period`` (YYYY-MM) for the cases of ``city_id`` under region ``prefix``."""
    city = db.session.execute(text("SELECT name FROM cities WHERE id = :id"),
                              {"id": city_id}).one()
    scope_name = find_region(prefix, city_id).name if prefix else None
    tz = calendar_for_city(city_id).tz
    span = periods.month(period, tz)
    months = _months_up_to(span, tz, TREND_MONTHS)
    as_of = min(span.end, now or datetime.now(UTC))
    level = _ranking_level(city_id, prefix)
    totals = [_totals(month, city_id, prefix) for month in months]
    regions = evaluate("regions", span, city_id, level=level, prefix=prefix)
    grid_counts = {row.key: row.counts for row in indicators.compute(
        "region", span, city_id, level=15, prefix=prefix)}
    shapes = _shapes(city_id, 15, prefix)
    grids = [{**shape, "reported": grid_counts.get(shape["code"], {}).get("reported", 0),
              "overdue": grid_counts.get(shape["code"], {}).get("overdue", 0)}
             for shape in shapes]
    overdue = [dict(row._mapping) for row in db.session.execute(_OVERDUE_SQL, {
        "city_id": city_id, "prefix": (prefix or "") + "%", "as_of": as_of})]
    people = evaluate("people", span, city_id, prefix=prefix)
    return MonthlyReport(
        city_name=city.name, scope_code=prefix, scope_name=scope_name, period=span,
        previous=months[-2] if len(months) > 1 else None, as_of=as_of,
        totals=totals[-1], previous_totals=totals[-2] if len(totals) > 1 else None,
        regions=_best_first(regions), region_level=level,
        departments=_best_first(evaluate("departments", span, city_id, prefix=prefix)),
        inspectors=_best_first([p for p in people if p["role"] == "inspector"]),
        categories=sorted(evaluate("categories", span, city_id, prefix=prefix),
                          key=lambda r: (-r["counts"]["reported"], r["code"] or "")),
        grids=grids, outlines=_shapes(city_id, level, prefix) if level < 15 else [],
        daily=[dict(row._mapping) for row in db.session.execute(_DAILY_SQL, {
            "city_id": city_id, "prefix": (prefix or "") + "%", "start": span.start,
            "end": span.end, "tz": str(tz)})],
        trend=[{"label": month.label, "reported": total["counts"]["reported"],
                "rates": total["rates"]} for month, total in zip(months, totals, strict=True)],
        overdue=overdue[:OVERDUE_LISTED], overdue_total=len(overdue))


def _totals(span: Period, city_id: int, prefix: str | None) -> dict:
    rows = indicators.compute("city", span, city_id, prefix=prefix)
    counts = rows[0].counts if rows else dict.fromkeys(indicators.COUNTS, 0)
    return {"counts": counts, "rates": indicators.rates_of(counts)}


def _months_up_to(span: Period, tz, count: int) -> list[Period]:
    """``count`` calendar months ending with ``span``, oldest first."""
    year, number = (int(part) for part in span.label.split("-"))
    labels = []
    for back in range(count - 1, -1, -1):
        index = year * 12 + number - 1 - back
        if index >= 12:  # year 0001 and later only
            labels.append(f"{index // 12:04d}-{index % 12 + 1:02d}")
    return [periods.month(label, tz) for label in labels]


def _ranking_level(city_id: int, prefix: str | None) -> int:
    """The level below the scope, or further down while it holds a single region."""
    length = min(len(prefix) + 3, 15) if prefix else 6
    while length < 15 and db.session.scalar(text(
            "SELECT count(*) FROM regions WHERE city_id = :c AND length(code) = :n "
            "AND code LIKE :p"), {"c": city_id, "n": length, "p": (prefix or "") + "%"}) <= 1:
        length += 3
    return length


def _shapes(city_id: int, length: int, prefix: str | None) -> list[dict]:
    return [{"code": row.code, "name": row.name, "shape": wkb.loads(bytes(row.shape))}
            for row in db.session.execute(_SHAPES_SQL, {
                "city_id": city_id, "length": length, "prefix": (prefix or "") + "%"})]


def _best_first(rows: list[dict]) -> list[dict]:
    """Scored rows by score, best first; rows without a score (too little data) last."""
    return sorted(rows, key=lambda r: (r.get("score") is None, -(r.get("score") or 0),
                                       r["key"] or ""))
