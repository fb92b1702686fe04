"""Benchmark: ``gridmgr cases import`` of a large synthetic history file.

A synthetic city (1 district, 1 street, 10 communities, 400 unit grids on a 20 × 20 lattice of
0.001° cells, the default category catalogue) and a CSV of ``--cases`` past cases written by
this script: each closed through the whole loop (reported, file, dispatch, accept, handle,
check, close: 7 steps) at random places and times of 2024–2025. The import (validation,
locating, replaying with deadlines, writing) is timed once.

Database: ``gridmgr_bench_history`` on the PostgreSQL at 127.0.0.1:5432 (user postgres),
dropped and created afresh. Writes ``bench/results/history_import.json``.

    .venv/bin/python bench/history_import.py --cases 20000
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import scratch  # noqa: E402
from record import record  # noqa: E402

from gridmgr.categories.operations import load_default_catalogue  # noqa: E402
from gridmgr.extensions import db  # noqa: E402
from gridmgr.legacy.importing import COLUMNS, import_history  # noqa: E402

NAME = "gridmgr_bench_history"
CST = timezone(timedelta(hours=8))

# The regions of scratch.CITY
WORLD = """
INSERT INTO regions (city_id, level, code, name, geom, area_m2)
VALUES (1, 'district', '110105', 'd', ST_Multi(ST_MakeEnvelope(116, 39, 116.02, 39.02, 4326)),
        4e6);
INSERT INTO regions (city_id, level, code, name, geom, area_m2, parent_id)
SELECT 1, 'street', '110105001', 's', geom, area_m2, id FROM regions WHERE code = '110105';
INSERT INTO regions (city_id, level, code, name, geom, area_m2, parent_id)
SELECT 1, 'community', '110105001' || lpad(c::text, 3, '0'), 'c',
       ST_Multi(ST_MakeEnvelope(116, 39 + (c - 1) * 0.002, 116.02, 39 + c * 0.002, 4326)),
       4e5, (SELECT id FROM regions WHERE code = '110105001')
FROM generate_series(1, 10) c;
INSERT INTO regions (city_id, level, code, name, geom, area_m2, parent_id)
SELECT 1, 'grid', '110105001' || lpad(c::text, 3, '0') || lpad(g::text, 3, '0'), 'g',
       ST_Multi(ST_MakeEnvelope(116 + ((g - 1) % 20) * 0.001,
                                39 + (c - 1) * 0.002 + ((g - 1) / 20) * 0.001,
                                116 + ((g - 1) % 20 + 1) * 0.001,
                                39 + (c - 1) * 0.002 + ((g - 1) / 20 + 1) * 0.001, 4326)),
       1e4, (SELECT id FROM regions r WHERE r.code = '110105001' || lpad(c::text, 3, '0'))
FROM generate_series(1, 10) c, generate_series(1, 40) g
"""

STEPS = (("reported", "inspector", 0), ("file", "operator", 0.3), ("dispatch", "dispatcher", 0.6),
         ("accept", "department", 1.0), ("handle", "department", 5.0),
         ("check", "inspector", 20.0), ("close", "duty_chief", 22.0))


def write_file(path: Path, cases: int, seed: int = 1) -> int:
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1, tzinfo=CST)
    categories = ("E0101", "E0102", "C0301", "E0501")
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(COLUMNS)
        for n in range(cases):
            when = start + timedelta(days=float(rng.uniform(0, 700)))
            lon, lat = 116 + rng.uniform(0.0001, 0.0199), 39 + rng.uniform(0.0001, 0.0199)
            for step, role, hours in STEPS:
                first = step == "reported"
                out.writerow([f"H{n:08d}", categories[n % 4] if first else "",
                              f"{lon:.6f}" if first else "", f"{lat:.6f}" if first else "",
                              step, (when + timedelta(hours=hours)).isoformat(), role,
                              f"person{n % 50}", "", ""])
                rows += 1
    return rows


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    args = parser.parse_args()
    app = scratch.migrated_app(scratch.fresh_database(NAME))
    path = Path(tempfile.mkdtemp(prefix="gridmgr-history-")) / "history.csv"
    rows = write_file(path, args.cases)
    with app.app_context():
        scratch.run_statements(scratch.CITY, WORLD)
        load_default_catalogue()
        db.session.commit()
        started = time.perf_counter()
        result = import_history(path)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        again = import_history(path)
        again_seconds = time.perf_counter() - started
    report = {"cases": result.cases, "steps": result.steps, "rows": rows,
              "seconds": round(seconds, 2), "cases_per_second": round(result.cases / seconds),
              "reimport_skipped": len(again.skipped), "reimport_seconds": round(again_seconds, 2),
              "data": "synthetic"}
    print(f"imported {result.cases:,} cases ({result.steps:,} steps) in {seconds:.1f} s: "
          f"{report['cases_per_second']:,} cases/s; importing again skipped "
          f"{len(again.skipped):,} in {again_seconds:.1f} s")
    record("history_import", report)
    return report


if __name__ == "__main__":
    main()
