"""Benchmark: hotspots, recurring problems and the forecast from PostGIS, as the API runs them.

A synthetic city (1 district, 10 streets, 100 communities, 800 unit grids on a 40 × 20
lattice of 0.001° cells, so each grid has up to 8 touching neighbours; 20 categories) gets
``--cases`` cases over the three years before 2026-11-23 (Asia/Shanghai), grids and
categories drawn unevenly, a tenth cancelled. Then ``find_hotspots``, ``recurring_problems``
and ``next_week_forecast`` run ``--runs`` times for the whole city and for one street, and
p50/p95 are printed; the forecast both computed (its per-process cache emptied) and kept.
The data is synthetic; only the timings mean something here (the quality of the figures is
measured by bench/forecast.py).

Database: ``gridmgr_bench_prevention`` on the PostgreSQL at 127.0.0.1:5432 (user postgres),
dropped and created afresh. Writes ``bench/results/prevention_api.json``.

    .venv/bin/python bench/prevention_api.py --cases 1000000
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import scratch  # noqa: E402
from record import record  # noqa: E402

from gridmgr.extensions import db  # noqa: E402
from gridmgr.prevention import forecast  # noqa: E402
from gridmgr.prevention.forecast import next_week_forecast  # noqa: E402
from gridmgr.prevention.hotspots import find_hotspots, recurring_problems  # noqa: E402

NAME = "gridmgr_bench_prevention"
END = datetime(2026, 11, 23, tzinfo=timezone(timedelta(hours=8)))

# The regions of scratch.CITY (its categories: scratch.CATEGORIES)
WORLD = """
INSERT INTO regions (city_id, level, code, name, geom, area_m2)
SELECT 1, 'district', '110105', 'district', ST_Multi(ST_MakeEnvelope(116, 39, 116.04, 39.02,
       4326)), 1e7;
INSERT INTO regions (city_id, level, code, name, geom, area_m2)
SELECT 1, 'street', '110105' || lpad(s::text, 3, '0'), 'street ' || s,
       ST_Multi(ST_MakeEnvelope(116, 39 + (s - 1) * 0.002, 116.04, 39 + s * 0.002, 4326)), 1e6
FROM generate_series(1, 10) s;
INSERT INTO regions (city_id, level, code, name, geom, area_m2)
SELECT 1, 'community', '110105' || lpad(s::text, 3, '0') || lpad(c::text, 3, '0'), 'c',
       ST_Multi(ST_MakeEnvelope(116 + (c - 1) * 0.004, 39 + (s - 1) * 0.002,
                                116 + c * 0.004, 39 + s * 0.002, 4326)), 1e5
FROM generate_series(1, 10) s, generate_series(1, 10) c;
INSERT INTO regions (city_id, level, code, name, geom, area_m2)
SELECT 1, 'grid', '110105' || lpad(s::text, 3, '0') || lpad(c::text, 3, '0')
                  || lpad(g::text, 3, '0'), 'g',
       ST_Multi(ST_MakeEnvelope(x, y, x + 0.001, y + 0.001, 4326)), 1e4
FROM generate_series(1, 10) s, generate_series(1, 10) c, generate_series(1, 10) g,
     LATERAL (SELECT 116 + (c - 1) * 0.004 + ((g - 1) % 4) * 0.001 AS x,
                     39 + (s - 1) * 0.002 + ((g - 1) / 4) * 0.001 AS y) p
WHERE g <= 8
"""

CASES = """
INSERT INTO cases (code, city_id, state, source, channel, category_id, region_id, grid_code,
                   location, created_at, updated_at)
SELECT 'B' || lpad(n::text, 12, '0'), 1, CASE WHEN n % 10 = 0 THEN 'cancelled' ELSE 'closed' END,
       'inspector', 'patrol', 1 + floor(20 * power(random(), 1.6))::int, g.id, g.code,
       ST_SetSRID(ST_MakePoint(116.01, 39.01), 4326), t, t
FROM generate_series(:first, :last) n
-- "+ 0 * n": a lateral subquery that names n is evaluated per row, with fresh random()s
CROSS JOIN LATERAL (SELECT floor(:grids * power(random(), 1.4))::int + 0 * n AS slot,
                           :end - (random() + 0 * n) * interval '1095 days' AS t) k
JOIN bench_grids g ON g.slot = k.slot
"""


def build(total: int, batch: int = 200_000) -> float:
    started = time.perf_counter()
    scratch.run_statements(scratch.CITY, scratch.CATEGORIES, WORLD, scratch.GRID_SLOTS)
    grids = db.session.scalar(text("SELECT count(*) FROM bench_grids"))
    for first in range(1, total + 1, batch):
        last = min(first + batch - 1, total)
        db.session.execute(text(CASES), {"first": first, "last": last, "grids": grids,
                                         "end": END})
        db.session.commit()
        print(f"  {last:,} cases", flush=True)
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    return time.perf_counter() - started


def _cold(call):
    """Run ``call`` with the forecast's per-process model cache emptied first."""
    forecast._MODELS.clear()
    return call()


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    app = scratch.migrated_app(scratch.fresh_database(NAME))
    tz = ZoneInfo("Asia/Shanghai")
    with app.app_context():
        print(f"building {args.cases:,} cases ...", flush=True)
        seconds = build(args.cases)
        calls = {
            "hotspots, city (800 grids)": lambda: len(find_hotspots(1, None, END)["hotspots"]),
            "hotspots, one street": lambda: len(find_hotspots(1, "110105001", END)["hotspots"]),
            "recurring, city": lambda: len(recurring_problems(1, None, END)),
            "recurring, one street": lambda: len(recurring_problems(1, "110105001", END)),
            "forecast, city, computed": lambda: _cold(lambda: len(next_week_forecast(
                1, tz, None, date(2026, 11, 23))["grids"])),
            "forecast, one street, computed": lambda: _cold(lambda: len(next_week_forecast(
                1, tz, "110105001", date(2026, 11, 23))["grids"])),
            "forecast, city, kept": lambda: len(next_week_forecast(
                1, tz, None, date(2026, 11, 23))["grids"]),
            "forecast, one street, kept": lambda: len(next_week_forecast(
                1, tz, "110105001", date(2026, 11, 23))["grids"]),
        }
        figures = {}
        for name, call in calls.items():
            samples = []
            for _ in range(args.runs):
                started = time.perf_counter()
                rows = call()
                samples.append((time.perf_counter() - started) * 1000)
                db.session.rollback()
            figures[name] = {"p50_ms": round(scratch.percentile(samples, 0.5), 1),
                             "p95_ms": round(scratch.percentile(samples, 0.95), 1), "rows": rows}
            print(f"{name:32s} p50 {figures[name]['p50_ms']:8.1f} ms  "
                  f"p95 {figures[name]['p95_ms']:8.1f} ms  ({rows} rows)", flush=True)
    report = {"cases": args.cases, "grids": 800, "categories": 20, "years": 3,
              "runs": args.runs, "build_seconds": round(seconds, 1), "calls": figures,
              "data": "synthetic; timings only"}
    record("prevention_api", report)
    return report


if __name__ == "__main__":
    main()
