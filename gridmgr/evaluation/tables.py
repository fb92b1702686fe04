"""Evaluation tables: indicator rows with names, scores and grades, ready for the API and CLI.

:func:`evaluate` is the one entry point. Rows outside the caller's region prefix never appear:
the counts are made only from cases whose grid code starts with it, and people are listed only
when their own region lies inside it.
"""

from __future__ import annotations

from sqlalchemy import text

from gridmgr.evaluation import indicators, scores
from gridmgr.evaluation.indicators import IndicatorRow
from gridmgr.evaluation.periods import Period
from gridmgr.extensions import db
from gridmgr.opendata.writing import csv_line

TABLES = ("regions", "departments", "categories", "people")
NAME_COLUMNS = ("key", "name", "code", "username", "role", "region_code", "score", "grade")
_GROUPING = {"regions": "region", "departments": "department", "categories": "category",
             "people": "person"}

_MISSED_SQL = text("""
SELECT a.code, count(*) AS problems,
       count(*) FILTER (WHERE CASE WHEN f.source = 'citizen' THEN NOT EXISTS (
           SELECT 1 FROM reports r JOIN users u ON u.id = r.reporter_id
           WHERE (r.case_id = f.case_id OR r.duplicate_of = f.case_id)
             AND u.role = 'inspector') ELSE false END) AS missed
FROM evaluation_facts f
-- an area is a code prefix: join on the grid code cut to each area code's length
JOIN unnest(CAST(:lengths AS int[])) AS l(n) ON true
JOIN unnest(CAST(:codes AS text[])) AS a(code) ON a.code = left(f.grid_code, l.n)
WHERE f.city_id = :city_id AND f.kind = 'reported' AND f.at >= :start AND f.at < :end
  AND f.valid_at < :end
GROUP BY a.code
""")


def evaluate(table: str, period: Period, city_id: int, *, level: int = 15,
             prefix: str | None = None, idle: bool = False) -> list[dict]:
    """Rows of ``table`` (regions, departments, categories, people): key, name, counts,
    rates, and for regions, departments and inspectors a score and grade. ``idle``: also a
    zero row for every region of the level under the prefix, every department of the city and
    every active category that had nothing in the period."""
    rows = indicators.compute(_GROUPING[table], period, city_id, level=level, prefix=prefix)
    if idle and table != "people":
        rows = _with_idle(rows, _IDLE_KEYS[table], {
            "city": city_id, "prefix": (prefix or "") + "%",
            "level": max(level, len(prefix or ""))})
    config = scores.weights()
    return {"regions": _regions, "departments": _departments, "categories": _categories,
            "people": _people}[table](rows, period, city_id, prefix, config)


# The groups a table lists even when they had nothing in the period.
_IDLE_KEYS = {
    "regions": text("SELECT code FROM regions WHERE city_id = :city AND length(code) = :level "
                    "AND code LIKE :prefix"),
    "departments": text("SELECT id::text FROM departments "
                        "WHERE city_id = :city OR city_id IS NULL"),
    "categories": text("SELECT id::text FROM categories WHERE active"),
}


def _with_idle(rows: list[IndicatorRow], keys: text, params: dict) -> list[IndicatorRow]:
    """``rows`` and a row of zero counts (rates null: nothing to divide) for every key the
    statement names that has none, in key order as :func:`indicators.compute` gives them."""
    found = {row.key for row in rows}
    zero = dict.fromkeys(indicators.COUNTS, 0)
    idle = [IndicatorRow(key, dict(zero), indicators.rates_of(zero))
            for key in db.session.scalars(keys, params) if key not in found]
    return sorted([*rows, *idle], key=lambda row: (row.key is None, row.key))


def missed_rates(area_codes: list[str], period: Period, city_id: int) -> dict[str, float | None]:
    """漏报率 per area (an inspector's region code): of the valid problems reported in the
    period in the area, the share that came from the public with no inspector's report
    joined to them. Cases and their validity come from ``evaluation_facts``."""
    if not area_codes:
        return {}
    found = {row.code: indicators.rate(row.missed, row.problems)
             for row in db.session.execute(_MISSED_SQL, {
                 "codes": sorted(set(area_codes)), "city_id": city_id,
                 "lengths": sorted({len(code) for code in area_codes}),
                 "start": period.start, "end": period.end})}
    return {code: found.get(code) for code in area_codes}


def rounded(rates: dict[str, float | None]) -> dict[str, float | None]:
    """Rates as published: 4 decimals."""
    return {name: None if value is None else round(value, 4) for name, value in rates.items()}


def _base(row: IndicatorRow, name: str | None, **extra) -> dict:
    return {"key": row.key, "name": name, **extra, "counts": row.counts,
            "rates": rounded(row.rates)}


def _regions(rows, period, city_id, prefix, config) -> list[dict]:
    names = dict(db.session.execute(text(
        "SELECT code, name FROM regions WHERE city_id = :city AND code = ANY(:codes)"),
        {"city": city_id, "codes": [r.key for r in rows]}).all())
    busiest = max((r.counts["reported"] for r in rows), default=0)
    out = []
    for row in rows:
        load = scores.share_of_busiest(row.counts["reported"], busiest)
        value = scores.score(scores.region_components(row.rates, load), config["region"])
        out.append(_base(row, names.get(row.key), score=value,
                         grade=scores.grade(value, config["grades"])))
    return out


def _departments(rows, period, city_id, prefix, config) -> list[dict]:
    rows = [r for r in rows if r.key is not None]
    names = dict(db.session.execute(text(
        "SELECT id::text, name FROM departments WHERE id::text = ANY(:ids)"),
        {"ids": [r.key for r in rows]}).all())
    busiest = max((r.counts["handled"] for r in rows), default=0)
    out = []
    for row in rows:
        load = scores.share_of_busiest(row.counts["handled"], busiest)
        value = scores.score(scores.department_components(row.rates, load),
                             config["department"])
        out.append(_base(row, names.get(row.key), score=value,
                         grade=scores.grade(value, config["grades"])))
    return out


def _categories(rows, period, city_id, prefix, config) -> list[dict]:
    names = {str(i): (code, name) for i, code, name in db.session.execute(text(
        "SELECT id, code, name_zh FROM categories WHERE id::text = ANY(:ids)"),
        {"ids": [r.key for r in rows]}).all()}
    return [_base(row, names.get(row.key, (None, None))[1],
                  code=names.get(row.key, (None, None))[0]) for row in rows]


def _people(rows, period, city_id, prefix, config) -> list[dict]:
    """Staff only (citizens are never listed), and only those whose region is in the prefix."""
    people = {str(r.id): r for r in db.session.execute(text("""
        SELECT u.id, u.username, u.display_name, u.role, g.code AS region_code
        FROM users u LEFT JOIN regions g ON g.id = u.region_id
        WHERE u.id::text = ANY(:ids) AND u.role <> 'citizen'
          AND (CAST(:prefix AS text) IS NULL OR g.code LIKE :prefix || '%')"""),
        {"ids": [r.key for r in rows if r.key is not None], "prefix": prefix})}
    areas = [p.region_code for p in people.values() if p.role == "inspector" and p.region_code]
    missed = missed_rates(areas, period, city_id)
    out = []
    for row in rows:
        person = people.get(row.key)
        if person is None:
            continue
        extra = {"username": person.username, "role": person.role,
                 "region_code": person.region_code, "score": None, "grade": None}
        rates = dict(row.rates)
        if person.role == "inspector":
            rates["missed_rate"] = missed.get(person.region_code)
            value = scores.score(scores.inspector_components(rates, rates["missed_rate"]),
                                 config["inspector"])
            extra.update(score=value, grade=scores.grade(value, config["grades"]))
        out.append({"key": row.key, "name": person.display_name or person.username, **extra,
                    "counts": row.counts, "rates": rounded(rates)})
    return out


def to_csv(rows: list[dict]) -> str:
    """One line per row: names, score and grade, every count, every rate (empty: null)."""
    names = [n for n in NAME_COLUMNS if any(n in row for row in rows)] or ["key", "name"]
    missed = any("missed_rate" in row["rates"] for row in rows)
    rates = [*indicators.RATES, *(["missed_rate"] if missed else [])]
    lines = [csv_line([*names, *indicators.COUNTS, *rates])]
    for row in rows:
        lines.append(csv_line([*(_cell(row.get(n)) for n in names),
                               *(row["counts"][c] for c in indicators.COUNTS),
                               *(_cell(row["rates"].get(r)) for r in rates)]))
    return "".join(lines)


def _cell(value) -> object:
    return "" if value is None else value
