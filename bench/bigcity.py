"""Build a city of ten million cases (and sixty million history rows) in its own database.

The city is ``bench/intake.py``'s: 50,000 unit grids of about 100 m in 100 communities, the
default catalogue and its departments (made up to 20). Added here: an inspector per
community, a worker per department, an operator, a dispatcher and a duty chief; then
``--cases`` cases created evenly over the year before now, each with its report and its
history:

- the last seven days: reported, filed, dispatched, accepted, handled or closed, in turns;
- older: 10 % cancelled at verification, 2 % still dispatched (past their deadline), the
  rest closed through the whole loop (report, file, dispatch, accept, handle, check, close:
  seven history rows), some handled late.

That is about 6.4 history rows per case and 2 % to 4 % of the cases open, as in a city whose
year of cases is mostly done. The load is bulk SQL (``generate_series``) in two connections
side by side, with the tables' secondary indexes dropped first and built again after the
load, and the triggers off (``session_replication_role = replica``); the evaluation facts the
triggers would have written are then computed by the product's own
``evaluation_refresh_facts``, in batches. Prints the time of each phase and writes
``bench/results/bigcity.json``; ``bench/cases.py``, ``bench/indicators.py`` and
``bench/tiles.py`` then measure the built city with ``--database``.

    .venv/bin/python bench/bigcity.py --cases 10000000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import intake  # noqa: E402
import scratch  # noqa: E402
from intake import EAST, NORTH, SOUTH, WEST, bench_app, plain  # noqa: E402
from record import record  # noqa: E402

NAME = "gridmgr_bench_bigcity"
BIG_TABLES = ("cases", "reports", "case_history", "evaluation_facts")
WORKERS = 2  # the machine's cores
# The evaluation facts are computed for the cases of the last FACT_DAYS days only: the
# measured month (the last whole one) and the weeks before it whose steps fall into it. The
# tables read a month of facts through the (city_id, at) index; older months' facts would
# cost the build a quarter of an hour and no query would read them.
FACT_DAYS = 71

# People: inspector 1000 + n for community n (0-99, by code), worker 2000 + d for
# department d (1-20), 3001 operator, 3002 dispatcher, 3003 duty chief.
PEOPLE = """
INSERT INTO departments (id, city_id, name)
SELECT d, (SELECT id FROM cities LIMIT 1), '部门' || d FROM generate_series(1, 20) d
ON CONFLICT (id) DO NOTHING;
INSERT INTO users (id, username, password_hash, role, city_id, region_id)
SELECT 1000 + n - 1, 'big-inspector-' || n, 'x', 'inspector', r.city_id, r.id
FROM (SELECT row_number() OVER (ORDER BY code) AS n, id, city_id FROM regions
      WHERE level = 'community') r;
INSERT INTO users (id, username, password_hash, role, city_id, department_id)
SELECT 2000 + d, 'big-worker-' || d, 'x', 'department', (SELECT id FROM cities LIMIT 1), d
FROM generate_series(1, 20) d;
INSERT INTO users (id, username, password_hash, role, city_id)
SELECT 3000 + n, (ARRAY['big-operator', 'big-dispatcher', 'big-chief'])[n], 'x',
       (ARRAY['operator', 'dispatcher', 'duty_chief'])[n], (SELECT id FROM cities LIMIT 1)
FROM generate_series(1, 3) n;
SELECT setval(pg_get_serial_sequence('users', 'id'), 4000);
SELECT setval(pg_get_serial_sequence('departments', 'id'), (SELECT max(id) FROM departments))
"""

# The community's inspector, from the grid code (district 6, street 3, community 3 digits).
INSPECTOR = ("(1000 + (substr(q.grid_code, 7, 3)::int - 1) * 10 "
             "+ substr(q.grid_code, 10, 3)::int - 1)")

CASES = f"""
WITH p AS (
    SELECT i, {WEST} + random() * {EAST - WEST} AS lon,
           {SOUTH} + random() * {NORTH - SOUTH} AS lat,
           %(start)s::timestamptz + (i - 1) * (interval '365 days' / %(total)s) AS at,
           (SELECT array_agg(id ORDER BY id) FROM categories) AS cats
    FROM generate_series(%(first)s, %(last)s) i
), q AS (
    SELECT p.*, {intake.GRID_CODE_SQL} AS grid_code,
           cats[1 + i %% array_length(cats, 1)] AS category_id,
           CASE WHEN at > now() - interval '7 days'
                THEN (ARRAY['reported', 'filed', 'dispatched', 'accepted', 'handled',
                            'closed'])[1 + i %% 6]
                WHEN i %% 50 < 5 THEN 'cancelled'
                WHEN i %% 50 = 5 THEN 'dispatched'
                ELSE 'closed' END AS state,
           1 + i %% 20 AS department,
           make_interval(hours => 20 + i %% 40) AS handling
    FROM p
)
INSERT INTO cases (id, code, city_id, state, source, channel, category_id, region_id,
                   grid_code, location, description, reporter_id, department_id, worker_id,
                   handler_id, dispatched_at, deadline, yellow_at, clock_unit, accepted_at,
                   handled_at, closed_at, created_at, updated_at, deadlines)
SELECT q.i, to_char(q.at, 'YYYYMMDD') || lpad(q.i::text, greatest(6, length(q.i::text)), '0'),
       r.city_id, q.state, CASE WHEN q.i %% 5 < 2 THEN 'inspector' ELSE 'citizen' END,
       'app', q.category_id, r.id, q.grid_code, ST_SetSRID(ST_MakePoint(q.lon, q.lat), 4326),
       'seeded', CASE WHEN q.i %% 5 < 2 THEN {INSPECTOR} END,
       CASE WHEN q.state IN ('dispatched', 'accepted', 'handled', 'closed') THEN q.department END,
       CASE WHEN q.state IN ('accepted', 'handled', 'closed') THEN 2000 + q.department END,
       CASE WHEN q.state IN ('handled', 'closed') THEN 2000 + q.department END,
       CASE WHEN q.state IN ('dispatched', 'accepted', 'handled', 'closed')
            THEN q.at + interval '2 hours' END,
       CASE WHEN q.state IN ('dispatched', 'accepted', 'handled', 'closed')
            THEN q.at + interval '50 hours' END,
       CASE WHEN q.state IN ('dispatched', 'accepted', 'handled', 'closed')
            THEN q.at + interval '38 hours' END,
       CASE WHEN q.state IN ('dispatched', 'accepted', 'handled', 'closed')
            THEN 'working_days' END,
       CASE WHEN q.state IN ('accepted', 'handled', 'closed') THEN q.at + interval '3 hours' END,
       CASE WHEN q.state IN ('handled', 'closed') THEN q.at + q.handling END,
       CASE WHEN q.state = 'closed' THEN q.at + q.handling + interval '10 hours'
            WHEN q.state = 'cancelled' THEN q.at + interval '1 hour' END,
       q.at,
       CASE WHEN q.state = 'closed' THEN q.at + q.handling + interval '10 hours'
            WHEN q.state = 'cancelled' THEN q.at + interval '1 hour'
            ELSE q.at + interval '3 hours' END,
       jsonb_build_object('file', q.at + interval '1 hour', 'check', q.at + interval '96 hours')
FROM q JOIN regions r ON r.code = q.grid_code
"""

REPORTS = """
INSERT INTO reports (reporter_key, client_id, channel, location, coord_sys, description,
                     category_id, case_id, created_at)
SELECT 'anon', 'seed-' || id, 'app', location, 'wgs84', description, category_id, id,
       created_at
FROM cases WHERE id BETWEEN %(first)s AND %(last)s
"""

# One row per step a case took, in order: report, verify (the cancelled), file, dispatch,
# accept, handle, check, close.
HISTORY = """
INSERT INTO case_history (case_id, actor_id, action, from_state, to_state, at, location,
                          details)
SELECT c.id, s.actor, s.action, s.from_state, s.to_state, s.at, s.location, s.details
FROM cases c CROSS JOIN LATERAL (VALUES
    (c.reporter_id, 'report', NULL, 'reported', c.created_at, c.location, '{}'::jsonb, true),
    (1000, 'verify', 'reported', 'cancelled', c.closed_at, NULL, '{}', c.state = 'cancelled'),
    (3001, 'file', 'reported', 'filed', c.created_at + interval '30 minutes', NULL, '{}',
     c.state NOT IN ('reported', 'cancelled')),
    (3002, 'dispatch', 'filed', 'dispatched', c.dispatched_at, NULL,
     jsonb_build_object('department_id', c.department_id), c.dispatched_at IS NOT NULL),
    (c.worker_id, 'accept', 'dispatched', 'accepted', c.accepted_at, NULL, '{}',
     c.accepted_at IS NOT NULL),
    (c.handler_id, 'handle', 'accepted', 'handled', c.handled_at, NULL, '{}',
     c.handled_at IS NOT NULL),
    (1000, 'check', 'handled', 'checked', c.closed_at - interval '5 hours', NULL, '{}',
     c.state = 'closed'),
    (3003, 'close', 'checked', 'closed', c.closed_at, NULL, '{}', c.state = 'closed')
) s (actor, action, from_state, to_state, at, location, details, taken)
WHERE c.id BETWEEN %(first)s AND %(last)s AND s.taken
"""


def secondary_indexes(cur, table: str) -> list[tuple[str, str, list[str]]]:
    """(name, drop, create statements) of each index of ``table`` but its primary key."""
    cur.execute("""
        SELECT i.relname, pg_get_indexdef(i.oid), c.conname IS NOT NULL
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype = 'u'
        WHERE x.indrelid = %s::regclass AND NOT x.indisprimary ORDER BY i.relname""",
                (table,))
    found = []
    for name, definition, constraint in cur.fetchall():
        if constraint:
            found.append((name, f"ALTER TABLE {table} DROP CONSTRAINT {name}",
                          [definition, f"ALTER TABLE {table} ADD CONSTRAINT {name} "
                                       f"UNIQUE USING INDEX {name}"]))
        else:
            found.append((name, f"DROP INDEX {name}", [definition]))
    return found


def in_parallel(url: str, jobs: list, run) -> None:
    """``run(cur, job)`` for each job, on WORKERS connections taking jobs in turn."""
    pending = list(jobs)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work():
        conn = psycopg2.connect(plain(url))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
            cur.execute("SET synchronous_commit = off")
            cur.execute("SET maintenance_work_mem = '1GB'")
            cur.execute("SET max_parallel_maintenance_workers = 0")
            cur.execute("SET work_mem = '64MB'")
            while not errors:
                with lock:
                    if not pending:
                        break
                    job = pending.pop(0)
                try:
                    run(cur, job)
                except BaseException as error:  # reported by the caller
                    errors.append(error)
        conn.close()

    threads = [threading.Thread(target=work) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def build(name: str, total: int, batch: int = 250_000) -> dict:
    """The database ``name`` made afresh with a city of ``total`` cases; what it holds and the
    seconds of each phase."""
    url = scratch.fresh_database(name)
    phases: dict[str, float] = {}
    started = time.perf_counter()
    app = bench_app(url, Path(tempfile.mkdtemp(prefix="gridmgr-bench-bigcity-")))
    with app.app_context():
        from flask_migrate import upgrade

        from gridmgr.categories.operations import load_default_catalogue
        from gridmgr.extensions import db

        upgrade()
        conn = psycopg2.connect(plain(url))
        intake.build_city(conn)
        load_default_catalogue()
        db.session.commit()
        with conn.cursor() as cur:
            for statement in PEOPLE.split(";\n"):
                cur.execute(statement)
            cur.execute("SELECT now() - interval '365 days'")
            start = cur.fetchone()[0]
            indexes = {table: secondary_indexes(cur, table) for table in BIG_TABLES}
            for table in BIG_TABLES:
                for _name, drop, _create in indexes[table]:
                    cur.execute(drop)
        conn.commit()
        conn.close()
    phases["city, people and schema"] = time.perf_counter() - started

    def load(cur, first):
        last = min(first + batch - 1, total)
        params = {"first": first, "last": last, "total": total, "start": start}
        cur.execute(CASES, params)
        cur.execute(REPORTS, params)
        cur.execute(HISTORY, params)
        print(f"  cases {first:,}–{last:,} ({time.perf_counter() - mark:.0f} s)", flush=True)

    mark = time.perf_counter()
    in_parallel(url, list(range(1, total + 1, batch)), load)
    phases["cases, reports and history"] = time.perf_counter() - mark

    def create(cur, statements):
        began = time.perf_counter()
        for statement in statements:
            cur.execute(statement)
        print(f"  {statements[0][:90]} ({time.perf_counter() - began:.0f} s)", flush=True)

    mark = time.perf_counter()
    # the largest first, so that the two connections end together
    order = ["case_history", "cases", "reports"]
    in_parallel(url, [c for table in order for _n, _d, c in indexes[table]], create)
    phases["indexes"] = time.perf_counter() - mark

    def facts(cur, first):
        last = min(first + batch - 1, total)
        cur.execute("SELECT evaluation_refresh_facts(ARRAY(SELECT generate_series("
                    "%(first)s::bigint, %(last)s)))", {"first": first, "last": last})
        print(f"  facts of cases {first:,}–{last:,} ({time.perf_counter() - mark:.0f} s)",
              flush=True)

    mark = time.perf_counter()
    # the index by case first: the refresh deletes a case's facts by case id first, which
    # finds nothing here but, without the index, would read the whole table each time
    by_case = "ix_evaluation_facts_case_id"
    in_parallel(url, [c for n, _d, c in indexes["evaluation_facts"] if n == by_case], create)
    in_parallel(url, list(range(total - total * FACT_DAYS // 365, total + 1, batch)), facts)
    in_parallel(url, [c for n, _d, c in indexes["evaluation_facts"] if n != by_case], create)
    phases["evaluation facts"] = time.perf_counter() - mark

    mark = time.perf_counter()
    conn = psycopg2.connect(plain(url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT setval(pg_get_serial_sequence('cases', 'id'), %s)", (total,))
        for table in (*BIG_TABLES, "regions"):
            cur.execute(f"VACUUM (ANALYZE) {table}")
        cur.execute("CHECKPOINT")
        counts = {}
        for table in BIG_TABLES:
            cur.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM cases WHERE state NOT IN ('closed', 'cancelled')")
        counts["open cases"] = cur.fetchone()[0]
        cur.execute("SELECT pg_database_size(current_database())")
        size = cur.fetchone()[0]
    conn.close()
    phases["vacuum and analyse"] = time.perf_counter() - mark
    return {"rows": counts, "database_gb": round(size / 1e9, 1),
            "phases_seconds": {k: round(v) for k, v in phases.items()},
            "build_seconds": round(time.perf_counter() - started)}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000_000)
    parser.add_argument("--name", default=NAME,
                        help="the database, dropped and built afresh on 127.0.0.1:5432")
    args = parser.parse_args()
    print(f"building {args.cases:,} cases in {args.name} …", flush=True)
    figures = build(args.name, args.cases)
    figures["cases"] = args.cases
    for phase, seconds in figures["phases_seconds"].items():
        print(f"{phase:>28}: {seconds:6d} s")
    print(f"{figures['rows']}; {figures['database_gb']} GB; built in "
          f"{figures['build_seconds'] / 60:.1f} min")
    record("bigcity", figures)
    return figures


if __name__ == "__main__":
    main()
