"""Benchmark: what one report costs on each side, Python and PostgreSQL, gridmgr's intake
against the ceiling's.

``bench/intake.py`` measures the whole stack under load; this measures the two sides of a
report alone, with nothing else running, so that the figures hold still on a busy machine.
It uses the benchmark city of ``bench/intake.py`` (50,000 unit grids, ``--cases`` existing
cases; built first when missing, and what earlier runs wrote is deleted). Both apps run in
this process, configured as ``bench/intake.py`` serves them (rate limits counted in Redis),
and take one report at a time through their WSGI entry point, with the same random points and
categories as ``bench/intake.py``:

- gridmgr: ``POST /api/v1/reports`` (``wsgi:app``'s app);
- the ceiling: ``POST /report`` of the minimal app (``bench/minimal_app.py``).

Each turn counts the CPU time (user + system) of this process, which is the app's Python (the
requests' environs are built before the turn), and of the PostgreSQL backends that served it.
Turns alternate: the ceiling, gridmgr as built, then gridmgr with the three statement triggers
that a new case fires disabled for the turn (the evaluation facts of a new case and of its
history, migration 0007, and the NOTIFY to the live relays, migration 0015), to show what
they cost. The triggers are enabled again at the end, whatever happens. Under gunicorn at
saturation both sides cost more for both apps (``bench/intake.py`` prints that); what this
adds is which part of the gap is where.

Prints the figures and writes ``bench/results/intake_sides.json``.

    .venv/bin/python bench/intake_sides.py --cases 1000000
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

import psycopg2
from werkzeug.test import EnvironBuilder, run_wsgi_app

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from record import record  # noqa: E402

from bench.intake import (  # noqa: E402
    CATEGORIES,
    EAST,
    NORTH,
    SOUTH,
    WEST,
    database_url,
    plain,
    prepare,
    process_cpu,
    write_served_config,
)

# The triggers an intake statement fires besides the foreign keys: (table, trigger).
TRIGGERS = (("cases", "cases_evaluation_facts_insert"),
            ("case_history", "case_history_evaluation_facts"),
            ("live_events", "live_events_notify"))


def backend_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the backends ``pids`` have used so far."""
    return sum(process_cpu(pid) for pid in pids)


class Side:
    """One app in this process, its requests made ahead, its backends found by application
    name."""

    def __init__(self, name: str, app, path: str, url: str, application: str,
                 run: str) -> None:
        self.name, self.app, self.path, self.application = name, app, path, application
        self.run, self.posted = run, 0
        self.admin = psycopg2.connect(plain(url))
        self.admin.autocommit = True

    def requests(self, count: int) -> list[dict]:
        """WSGI environs of ``count`` new reports."""
        made = []
        for _ in range(count):
            self.posted += 1
            body = {"lon": WEST + random.random() * (EAST - WEST),
                    "lat": SOUTH + random.random() * (NORTH - SOUTH),
                    "category": random.choice(CATEGORIES), "channel": "app",
                    "client_id": f"{self.run}-{self.name}-{self.posted}",
                    "description": "bench"}
            made.append(EnvironBuilder(self.path, method="POST", json=body,
                                       environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ())
        return made

    def post(self, environ: dict) -> None:
        answer, status, _ = run_wsgi_app(self.app, environ)
        try:
            body = b"".join(answer)
        finally:
            answer.close()
        if not status.startswith("201"):
            raise RuntimeError(f"{self.name}: a report was refused: {status} {body[:200]!r}")

    def backends(self) -> list[int]:
        with self.admin.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                        (self.application,))
            return [pid for (pid,) in cur.fetchall()]


def sides(url: str, run: str) -> tuple[Side, Side]:
    """gridmgr and the ceiling, each with its own application name on its connections."""
    separator = "&" if "?" in url else "?"
    home = Path(tempfile.mkdtemp(prefix="gridmgr-bench-sides-"))
    write_served_config(home)
    own = f"{url}{separator}application_name=gridmgr-bench-sides"
    from gridmgr import create_app

    gridmgr = create_app({"DATABASE_URL": own, "SQLALCHEMY_DATABASE_URI": own,
                          "GRIDMGR_HOME": str(home)})
    os.environ["DATABASE_URL"] = f"{url}{separator}application_name=gridmgr-bench-sides-ceiling"
    from bench.minimal_app import create_app as create_minimal_app
    from gridmgr.serving import settle_memory

    minimal = create_minimal_app()
    settle_memory()  # as wsgi.py does once the app is built
    return (Side("gridmgr", gridmgr, "/api/v1/reports", url, "gridmgr-bench-sides", run),
            Side("ceiling", minimal, "/report", url, "gridmgr-bench-sides-ceiling", run))


def turn(side: Side, reports: int) -> dict[str, float]:
    """µs of CPU per report over ``reports`` reports (after a few unmeasured): this process's
    (the app's Python) and its backends'."""
    for environ in side.requests(50):
        side.post(environ)
    environs = side.requests(reports)
    pids = side.backends()
    python, backends = time.process_time(), backend_cpu(pids)
    for environ in environs:
        side.post(environ)
    python, backends = time.process_time() - python, backend_cpu(pids) - backends
    if set(side.backends()) != set(pids):
        raise RuntimeError("the backends changed during a turn")
    return {"python": 1e6 * python / reports, "postgres": 1e6 * backends / reports}


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
    gridmgr, ceiling = sides(url, f"sd{int(time.time())}")
    figures: dict[str, list[dict[str, float]]] = {
        "ceiling": [], "gridmgr": [], "gridmgr_without_triggers": []}
    try:
        for n in range(args.rounds):
            figures["ceiling"].append(turn(ceiling, args.reports))
            figures["gridmgr"].append(turn(gridmgr, args.reports))
            set_triggers(url, enable=False)
            try:
                figures["gridmgr_without_triggers"].append(turn(gridmgr, args.reports))
            finally:
                set_triggers(url, enable=True)
            print(f"round {n + 1}: " + "; ".join(
                f"{name} {values[-1]['python']:.0f} + {values[-1]['postgres']:.0f} µs"
                for name, values in figures.items()), flush=True)
    finally:
        set_triggers(url, enable=True)
    medians = {name: {part: round(statistics.median(v[part] for v in values))
                      for part in ("python", "postgres")}
               for name, values in figures.items()}
    total = {name: sum(parts.values()) for name, parts in medians.items()}
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "setup": {k: v for k, v in setup.items() if k != "home"},
        "reports_per_turn": args.reports,
        "cpu_us_per_report": {name: [{part: round(v) for part, v in turn_.items()}
                                     for turn_ in values]
                              for name, values in figures.items()},
        "median_cpu_us_per_report": medians,
        "ceiling_share": {
            "python": round(medians["ceiling"]["python"] / medians["gridmgr"]["python"], 3),
            "postgres": round(medians["ceiling"]["postgres"]
                              / medians["gridmgr"]["postgres"], 3),
            "both": round(total["ceiling"] / total["gridmgr"], 3)},
    }
    print(json.dumps(result, indent=2))
    its, mine, bare = (medians[name] for name in
                       ("ceiling", "gridmgr", "gridmgr_without_triggers"))
    print(f"\nCPU per report, Python + PostgreSQL (median of {args.rounds} turns of "
          f"{args.reports}): ceiling {its['python']} + {its['postgres']} µs · gridmgr "
          f"{mine['python']} + {mine['postgres']} µs ({bare['postgres']} µs in PostgreSQL "
          f"without its three statement triggers) · ceiling's share "
          f"{result['ceiling_share']['both']:.0%}")
    record("intake_sides", result)
    return result


if __name__ == "__main__":
    main()
