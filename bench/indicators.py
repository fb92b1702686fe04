"""Benchmark: the evaluation tables for one month of a city with many cases.

A synthetic city (1 district, 10 streets, 100 communities, 1,000 unit grids, 20 categories,
10 departments, 100 inspectors) gets ``--cases`` cases spread evenly over the twelve months
before 2026-12-01 (Asia/Shanghai), each with a full history written by ``generate_series``:
a tenth cancelled at verification, six tenths through the whole loop (some handled late), a
tenth still open past its deadline, a tenth reworked once, a tenth handled on the spot. Then
each table (regions by street, departments, categories, people; and the city total) for
November 2026 is computed ``--runs`` times and p50/p95 printed. The triggers of migration
0007 fill ``evaluation_facts`` while the cases and histories are inserted (the build time
includes them); the tables read those facts.

Database: ``gridmgr_bench_indicators`` on the PostgreSQL at 127.0.0.1:5432 (user postgres),
dropped and created afresh; or, with ``--database``, an already built city measured as it is
(``bench/bigcity.py``'s ten million cases, district 110105 too). Prints the figures and writes
``bench/results/indicators.json``.

    .venv/bin/python bench/indicators.py --cases 1000000
    .venv/bin/python bench/indicators.py --database \
        postgresql+psycopg2://postgres@127.0.0.1:5432/gridmgr_bench_bigcity
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import scratch  # noqa: E402
from record import record  # noqa: E402

from gridmgr.evaluation import indicators, periods  # noqa: E402
from gridmgr.evaluation.tables import evaluate  # noqa: E402
from gridmgr.extensions import db  # noqa: E402

NAME = "gridmgr_bench_indicators"

# Regions, departments and people of scratch.CITY (its categories: scratch.CATEGORIES)
WORLD = """
INSERT INTO regions (city_id, level, code, name, geom, area_m2)
SELECT 1, level, code, level || ' ' || code,
       ST_Multi(ST_MakeEnvelope(116 + n * 0.001, 39, 116 + n * 0.001 + 0.001, 39.001, 4326)),
       10000
FROM (SELECT 'district' AS level, '110105' AS code, 0 AS n
      UNION ALL SELECT 'street', '110105' || lpad(s::text, 3, '0'), s
      FROM generate_series(1, 10) s
      UNION ALL SELECT 'community', '110105' || lpad(s::text, 3, '0') || lpad(c::text, 3, '0'),
                       s * 10 + c
      FROM generate_series(1, 10) s, generate_series(1, 10) c
      UNION ALL SELECT 'grid', '110105' || lpad(s::text, 3, '0') || lpad(c::text, 3, '0')
                               || lpad(g::text, 3, '0'), s * 100 + c * 10 + g
      FROM generate_series(1, 10) s, generate_series(1, 10) c, generate_series(1, 10) g) r;
INSERT INTO departments (id, city_id, name) SELECT n, 1, '部门' || n FROM generate_series(1, 10) n;
-- users 1-100 inspectors (one per community), 101-110 department staff, 111 operator,
-- 112 dispatcher, 113 duty chief, 114 a citizen
INSERT INTO users (id, username, password_hash, role, city_id, region_id, department_id)
SELECT n, 'inspector' || n, 'x', 'inspector', 1,
       (SELECT id FROM regions WHERE level = 'community' ORDER BY code OFFSET n - 1 LIMIT 1),
       NULL
FROM generate_series(1, 100) n;
INSERT INTO users (id, username, password_hash, role, city_id, department_id)
SELECT 100 + n, 'worker' || n, 'x', 'department', 1, n FROM generate_series(1, 10) n;
INSERT INTO users (id, username, password_hash, role, city_id) VALUES
    (111, 'operator', 'x', 'operator', 1), (112, 'dispatcher', 'x', 'dispatcher', 1),
    (113, 'chief', 'x', 'duty_chief', 1), (114, 'citizen', 'x', 'citizen', 1);
"""

# Case n: grid n % 1000, category n % 20, department n % 10, profile n % 10; created evenly
# over the year before 2026-12-01 (+08:00). Deadlines: file +1 h, handle +72 h, check +96 h.
CASES = """
INSERT INTO cases (id, code, city_id, state, source, channel, category_id, region_id,
                   grid_code, location, reporter_id, department_id, worker_id, handler_id,
                   deadline, deadlines, handled_at, closed_at, created_at, updated_at)
SELECT n, 'B' || lpad(n::text, 12, '0'), 1,
       CASE p WHEN 0 THEN 'cancelled' WHEN 7 THEN 'accepted' ELSE 'closed' END,
       CASE WHEN p IN (0, 3) THEN 'citizen' ELSE 'inspector' END, 'app',
       1 + n % 20, g.id, g.code, ST_SetSRID(ST_MakePoint(116.5, 39.5), 4326),
       CASE WHEN p IN (0, 3) THEN 114 ELSE 1 + (n % 1000) / 10 END,
       CASE WHEN p IN (0, 9) THEN NULL ELSE 1 + n % 10 END,
       CASE WHEN p IN (0, 9) THEN NULL ELSE 101 + n % 10 END,
       CASE WHEN p IN (0, 7) THEN NULL WHEN p = 9 THEN 1 + (n % 1000) / 10
            ELSE 101 + n % 10 END,
       CASE WHEN p IN (0, 9) THEN NULL ELSE t + interval '72 hours' END,
       jsonb_build_object('file', t + interval '1 hour', 'check', t + interval '96 hours'),
       CASE WHEN p IN (0, 7) THEN NULL WHEN p = 9 THEN t + interval '30 minutes'
            ELSE t + make_interval(hours => 20 + n % 70) END,
       CASE WHEN p IN (0, 7) THEN NULL WHEN p = 9 THEN t + interval '30 minutes'
            ELSE t + make_interval(hours => 30 + n % 70) END,
       t, t + make_interval(hours => 30 + n % 70)
FROM generate_series(:first, :last) n
CROSS JOIN LATERAL (SELECT n % 10 AS p,
                           timestamptz '2025-12-01 00:00+08'
                           + (n - 1) * (interval '365 days' / :total) AS t) k
JOIN bench_grids g ON g.slot = n % 1000
"""

# One row per step of each profile: (profile, step, action, to_state, hours after creation,
# actor: i inspector, w worker, o operator, d dispatcher, c chief, r reporter)
TEMPLATE = [
    (0, 1, "report", "reported", "0", "r"), (0, 2, "verify", "cancelled", "1", "i"),
    *[(p, 1, "report", "reported", "0", "r") for p in range(1, 10)],
    *[(p, s, a, st, h, who) for p in (1, 2, 3, 4, 5, 6, 8) for s, a, st, h, who in (
        (2, "file", "filed", "0.5 + (n % 3) * 0.4", "o"),
        (3, "dispatch", "dispatched", "2", "d"), (4, "accept", "accepted", "3", "w"))],
    *[(p, s, a, st, h, who) for p in (1, 2, 3, 4, 5, 6) for s, a, st, h, who in (
        (5, "handle", "handled", "20 + n % 70", "w"), (6, "check", "checked", "25 + n % 70", "i"),
        (7, "close", "closed", "30 + n % 70", "c"))],
    (7, 2, "file", "filed", "0.5", "o"), (7, 3, "dispatch", "dispatched", "2", "d"),
    (7, 4, "accept", "accepted", "3", "w"),
    (8, 5, "handle", "handled", "10", "w"), (8, 6, "rework", "dispatched", "12", "i"),
    (8, 7, "accept", "accepted", "13", "w"), (8, 8, "handle", "handled", "20 + n % 70", "w"),
    (8, 9, "check", "checked", "25 + n % 70", "i"), (8, 10, "close", "closed", "30 + n % 70", "c"),
    (9, 2, "self_handle", "closed", "0.5", "r"),
]

ACTORS = {"i": "1 + (n % 1000) / 10", "w": "101 + n % 10", "o": "111", "d": "112", "c": "113",
          "r": "CASE WHEN n % 10 IN (0, 3) THEN 114 ELSE 1 + (n % 1000) / 10 END"}


def history_sql() -> str:
    """One INSERT ... SELECT per profile step, over the cases of that profile."""
    parts = []
    for profile, step, action, state, hours, who in TEMPLATE:
        details = ("jsonb_build_object('department_id', 1 + n % 10)"
                   if action in ("dispatch", "rework") else "'{}'::jsonb")
        if action == "rework":
            details = "jsonb_build_object('department_id', 1 + n % 10, 'passed', false)"
        parts.append(f"""
            SELECT n, {ACTORS[who]}, '{action}', '{state}',
                   c.created_at + make_interval(secs => ({hours}) * 3600), {details},
                   {step}
            FROM cases c, LATERAL (SELECT c.id AS n) k
            WHERE c.id BETWEEN :first AND :last AND c.id % 10 = {profile}""")
    return ("INSERT INTO case_history (case_id, actor_id, action, to_state, at, details)\n"
            "SELECT n, actor, action, to_state, at, details FROM (\n"
            + "\nUNION ALL".join(parts) + "\n) s (n, actor, action, to_state, at, details, step)"
            " ORDER BY n, step")


def _database() -> str:
    # NAME is read at call time: bench/report.py sets its own before calling this.
    return scratch.fresh_database(NAME)


def build(total: int, batch: int = 100_000) -> float:
    started = time.perf_counter()
    scratch.run_statements(scratch.CITY, scratch.CATEGORIES, WORLD, scratch.GRID_SLOTS)
    history = text(history_sql())
    for first in range(1, total + 1, batch):
        last = min(first + batch - 1, total)
        params = {"first": first, "last": last, "total": total}
        db.session.execute(text(CASES), params)
        db.session.execute(history, params)
        db.session.commit()
        print(f"  {last:,} cases", flush=True)
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    return time.perf_counter() - started


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database", help="measure this already built city as it is")
    args = parser.parse_args()
    app = scratch.migrated_app(args.database or _database())
    with app.app_context():
        seconds = None
        if not args.database:
            print(f"building {args.cases:,} cases with their histories ...", flush=True)
            seconds = build(args.cases)
        args.cases = db.session.scalar(text("SELECT count(*) FROM cases"))
        history_rows = db.session.scalar(text("SELECT count(*) FROM case_history"))
        fact_rows = db.session.scalar(text("SELECT count(*) FROM evaluation_facts"))
        month = periods.month("2026-11", ZoneInfo("Asia/Shanghai"))
        in_month = db.session.scalar(text(
            "SELECT count(*) FROM cases WHERE created_at >= :s AND created_at < :e"),
            {"s": month.start, "e": month.end})
        tables = {
            "city": lambda: indicators.compute("city", month, 1),
            "regions by street": lambda: evaluate("regions", month, 1, level=9),
            "departments": lambda: evaluate("departments", month, 1),
            "categories": lambda: evaluate("categories", month, 1),
            "people": lambda: evaluate("people", month, 1),
            "one street's people": lambda: evaluate("people", month, 1, prefix="110105001"),
        }
        figures = {}
        for name, call in tables.items():
            samples = []
            for _ in range(args.runs):
                started = time.perf_counter()
                rows = call()
                samples.append((time.perf_counter() - started) * 1000)
            figures[name] = {"rows": len(rows),
                             "p50_ms": round(scratch.percentile(samples, 0.5), 1),
                             "p95_ms": round(scratch.percentile(samples, 0.95), 1)}
            print(f"{name:>22}: {len(rows):4d} rows  p50 {figures[name]['p50_ms']:8.1f} ms  "
                  f"p95 {figures[name]['p95_ms']:8.1f} ms", flush=True)
        [city] = indicators.compute("city", month, 1)
    results = {"cases": args.cases, "load_average_1m": round(os.getloadavg()[0], 1),
               "history_rows": history_rows, "fact_rows": fact_rows,
               "cases_in_month": in_month,
               "build_seconds": seconds and round(seconds, 1), "runs": args.runs, "tables": figures,
               "city_counts": city.counts, "python": platform.python_version(),
               "machine": platform.machine()}
    print(f"{history_rows:,} history rows, {in_month:,} cases created in 2026-11; "
          f"built in {seconds or 0:.0f} s; load average {results['load_average_1m']}")
    record("indicators", results)
    return results


if __name__ == "__main__":
    main()
