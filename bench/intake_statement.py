"""Benchmark: what PostgreSQL spends on one report, gridmgr's intake against the ceiling's.

``bench/intake.py`` measures the whole stack under load; this measures the database side
alone, with nothing else running, so that the figures hold still on a busy machine. It uses
the benchmark city of ``bench/intake.py`` (50,000 unit grids, ``--cases`` existing cases;
built first when missing, and what earlier runs wrote is deleted) and counts the CPU time
(user + system) of the PostgreSQL backends that serve:

- gridmgr: reports posted one at a time to the app in-process with Flask's test client
  (``POST /api/v1/reports``,
  the same random points and categories as ``bench/intake.py``), so that the statement is
  built and run exactly as served; only the backend's CPU is counted, not Python's;
- the ceiling: the minimal app's locate-and-insert statement (``bench/minimal_app.py``) on a
  connection of its own, the same points;

in alternating turns, first as built, then with the three statement triggers that a new case
fires disabled for the turn (the evaluation facts of a new case and of its history, migration
0007, and the NOTIFY to the live relays, migration 0015), to show what they cost. The
triggers are enabled again at the end, whatever happens.

Prints the figures and writes ``bench/results/intake_statement.json``.

    .venv/bin/python bench/intake_statement.py --cases 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.intake import (  # noqa: E402
    CATEGORIES,
    EAST,
    NORTH,
    RESULTS,
    SOUTH,
    WEST,
    bench_app,
    database_url,
    plain,
    prepare,
)

APPLICATION = "gridmgr-bench-intake-statement"
# The triggers an intake statement fires besides the foreign keys: (table, trigger).
TRIGGERS = (("cases", "cases_evaluation_facts_insert"),
            ("case_history", "case_history_evaluation_facts"),
            ("live_events", "live_events_notify"))


def backend_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the backends ``pids`` have used so far."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def random_point() -> tuple[float, float]:
    return (WEST + random.random() * (EAST - WEST), SOUTH + random.random() * (NORTH - SOUTH))


class Gridmgr:
    """Reports posted to the app in-process; its backends found by application name."""

    def __init__(self, url: str, run: str) -> None:
        separator = "&" if "?" in url else "?"
        self.app = bench_app(f"{url}{separator}application_name={APPLICATION}",
                             Path(tempfile.mkdtemp(prefix="gridmgr-bench-statement-")))
        self.client = self.app.test_client()
        self.run, self.posted = run, 0
        self.admin = psycopg2.connect(plain(url))
        self.admin.autocommit = True

    def post(self) -> None:
        lon, lat = random_point()
        self.posted += 1
        answer = self.client.post("/api/v1/reports", json={
            "lon": lon, "lat": lat, "category": random.choice(CATEGORIES),
            "client_id": f"{self.run}-{self.posted}", "channel": "app"})
        if answer.status_code != 201:
            raise RuntimeError(f"a report was refused: {answer.status} {answer.data[:200]!r}")

    def backends(self) -> list[int]:
        with self.admin.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                        (APPLICATION,))
            return [pid for (pid,) in cur.fetchall()]


class Ceiling:
    """The minimal app's prepared statement on a connection of its own."""

    def __init__(self, url: str, run: str) -> None:
        os.environ.setdefault("DATABASE_URL", url)
        from bench.minimal_app import REPORT, TABLE

        self.conn = psycopg2.connect(plain(url))
        self.conn.autocommit = True
        self.run, self.posted = run, 0
        with self.conn.cursor() as cur:
            cur.execute(TABLE)
            cur.execute("SET plan_cache_mode = force_generic_plan")
            cur.execute(REPORT)
            cur.execute("SELECT pg_backend_pid()")
            self.pid = cur.fetchone()[0]

    def post(self) -> None:
        lon, lat = random_point()
        self.posted += 1
        with self.conn.cursor() as cur:
            cur.execute("EXECUTE minimal_report(%s, %s, %s)",
                        (lon, lat, f"{self.run}-m{self.posted}"))
            if cur.fetchone()[0] is None:
                raise RuntimeError("the ceiling found no grid for a point inside the city")

    def backends(self) -> list[int]:
        return [self.pid]


def turn(side, reports: int) -> float:
    """µs of backend CPU per report over ``reports`` reports (after a few unmeasured)."""
    for _ in range(50):
        side.post()
    pids = side.backends()
    before = backend_cpu(pids)
    for _ in range(reports):
        side.post()
    if set(side.backends()) != set(pids):
        raise RuntimeError("the backends changed during a turn")
    return 1e6 * (backend_cpu(pids) - before) / reports


def set_triggers(url: str, enable: bool) -> None:
    with psycopg2.connect(plain(url)) as conn, conn.cursor() as cur:
        for table, trigger in TRIGGERS:
            cur.execute(f'ALTER TABLE {table} {"ENABLE" if enable else "DISABLE"} '
                        f'TRIGGER "{trigger}"')


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--reports", type=int, default=2_000, help="reports per turn")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = database_url()
    setup = prepare(url, args.cases)
    run = f"st{int(time.time())}"
    gridmgr, ceiling = Gridmgr(url, run), Ceiling(url, run)
    figures: dict[str, list[float]] = {"gridmgr": [], "gridmgr_without_triggers": [],
                                       "ceiling": []}
    try:
        for n in range(args.rounds):
            figures["ceiling"].append(turn(ceiling, args.reports))
            figures["gridmgr"].append(turn(gridmgr, args.reports))
            set_triggers(url, enable=False)
            try:
                figures["gridmgr_without_triggers"].append(turn(gridmgr, args.reports))
            finally:
                set_triggers(url, enable=True)
            print(f"round {n + 1}: " + ", ".join(f"{name} {values[-1]:.0f} µs"
                                                 for name, values in figures.items()),
                  flush=True)
    finally:
        set_triggers(url, enable=True)
    medians = {name: round(statistics.median(values)) for name, values in figures.items()}
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "setup": {k: v for k, v in setup.items() if k != "home"},
        "reports_per_turn": args.reports,
        "backend_cpu_us_per_report": {name: [round(v) for v in values]
                                      for name, values in figures.items()},
        "median_backend_cpu_us_per_report": medians,
        "ceiling_share": round(medians["ceiling"] / medians["gridmgr"], 3),
    }
    print(json.dumps(result, indent=2))
    print(f"\nPostgreSQL CPU per report (median of {args.rounds} turns of {args.reports}): "
          f"ceiling {medians['ceiling']} µs · gridmgr {medians['gridmgr']} µs, "
          f"{medians['gridmgr_without_triggers']} µs without its three statement triggers")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "intake_statement.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
