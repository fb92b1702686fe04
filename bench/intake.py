"""Benchmark: ``POST /api/v1/reports`` served by gunicorn, against the minimal ceiling.

Builds (once) a benchmark city in its own database (``BENCH_CASES_DATABASE_URL``, else
``gridmgr_bench_cases`` on 127.0.0.1:5432): 50,000 unit grids of about 100 m × 100 m in 100
communities, the default catalogue, and ``--cases`` existing cases with a report and history
each. Each run starts from the seeded cases alone: what earlier runs wrote is deleted first.
Then, in one run, on this machine:

1. the ceiling: ``bench/minimal_app.py`` (locate + insert only) under gunicorn, saturated by wrk;
2. gridmgr's intake (validation, locate, classify, duplicate check, case + report + history +
   live event in one transaction) under the same gunicorn settings, saturated by wrk;
   both served at once and measured in turns (``--rounds``, ceiling then gridmgr each time),
   so that a change in the machine's speed during the run (seen: ±20 % within minutes on a
   shared host) falls on both alike, and the ratio is of the totals;
3. gridmgr's intake at a fixed offered rate (``--rate``, default 500 reports/s) for latency;

and checks that every 201 became exactly one stored report (and one case). Each saturated turn
also counts the CPU time (user + system) that the app's gunicorn processes and all PostgreSQL
processes used per request, which says which side a change saved. A Flask hello app
served the same way is measured before and after (the yardstick for the machine): the
machine's speed moves from day to day and within a run.
Prints the figures and writes ``bench/results/intake.json``.

    .venv/bin/python bench/intake.py --cases 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import psycopg2
from record import record

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/gridmgr_bench_cases"
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
RATELIMIT_STORAGE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
HELLO_SECONDS = 5

# The lattice: 10 × 10 communities of 25 × 20 unit grids of DX × DY degrees (~100 m).
WEST, SOUTH, DX, DY = 116.20, 39.80, 0.00117, 0.0009
COLS, ROWS, CCOLS, CROWS = 25, 20, 10, 10
EAST, NORTH = WEST + DX * COLS * CCOLS, SOUTH + DY * ROWS * CROWS
DISTRICT = "110105"
CATEGORIES = ("C0101", "C0102", "E0101", "E0102", "E0501")

WRK_SCRIPT = r"""
local counter = 0
local thread_id = 0
statuses = {}
local threads = {}
math.randomseed(os.time())

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tid
  prefix = args[1] or "run"
  delay_ms = tonumber(args[2] or "0")
end

function delay()
  return delay_ms
end

local categories = {%(categories)s}

function request()
  counter = counter + 1
  local lon = %(west)f + math.random() * %(width)f
  local lat = %(south)f + math.random() * %(height)f
  local body = string.format(
    '{"lon": %%.6f, "lat": %%.6f, "category": "%%s", "channel": "app", ' ..
    '"client_id": "%%s-%%d-%%d", "description": "bench"}',
    lon, lat, categories[math.random(#categories)], prefix, thread_id, counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, n in pairs(s) do counts[tostring(code)] = (counts[tostring(code)] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(counts) do table.insert(parts, string.format('"%%s": %%d', code, n)) end
  io.write(string.format(
    'WRKJSON {"requests": %%d, "seconds": %%.3f, "p50_ms": %%.2f, "p90_ms": %%.2f, ' ..
    '"p99_ms": %%.2f, "max_ms": %%.2f, "errors": %%d, "statuses": {%%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout + summary.errors.status, table.concat(parts, ", ")))
end
"""


def database_url() -> str:
    return os.environ.get("BENCH_CASES_DATABASE_URL", DEFAULT_URL)


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://")


def ensure_database(url: str) -> None:
    name = url.rsplit("/", 1)[1].split("?")[0]
    admin = psycopg2.connect(plain(url).rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def bench_app(url: str, home: Path):
    from gridmgr import create_app

    return create_app({"DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                       "GRIDMGR_HOME": str(home), "RATELIMIT_ENABLED": False,
                       "SECRET_KEY": "bench-secret-key-of-sufficient-length-0123456789"})


GRID_CODE_SQL = f"""'{DISTRICT}'
    || lpad((floor((lat - {SOUTH}) / {DY * ROWS})::int + 1)::text, 3, '0')
    || lpad((floor((lon - {WEST}) / {DX * COLS})::int + 1)::text, 3, '0')
    || lpad(((({ROWS} - 1) - mod(floor((lat - {SOUTH}) / {DY})::int, {ROWS})) * {COLS}
             + mod(floor((lon - {WEST}) / {DX})::int, {COLS}) + 1)::text, 3, '0')"""


def build_city(conn) -> None:
    """City, district, 10 streets (rows), 100 communities and 50,000 unit grids, by SQL."""
    with conn.cursor() as cur:
        cur.execute("TRUNCATE cities, categories, category_classes, departments, users "
                    "RESTART IDENTITY CASCADE")
        cur.execute("INSERT INTO cities (slug, name, timezone) "
                    "VALUES ('bench-cases', '基准市', 'Asia/Shanghai') RETURNING id")
        city = cur.fetchone()[0]
        box = "ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
        cur.execute(f"""INSERT INTO regions (city_id, level, code, name, geom, area_m2)
            VALUES (%s, 'district', %s, '基准区', {box}, 0) RETURNING id""",
                    (city, DISTRICT, WEST, SOUTH, EAST, NORTH))
        district = cur.fetchone()[0]
        cur.execute(f"""
            INSERT INTO regions (city_id, level, code, name, parent_id, geom, area_m2)
            SELECT %(city)s, 'street', '{DISTRICT}' || lpad((s + 1)::text, 3, '0'),
                   '街道' || (s + 1), %(district)s,
                   ST_Multi(ST_MakeEnvelope({WEST}, {SOUTH} + s * {DY * ROWS}, {EAST},
                                            {SOUTH} + (s + 1) * {DY * ROWS}, 4326)), 0
            FROM generate_series(0, {CROWS - 1}) s""", {"city": city, "district": district})
        cur.execute(f"""
            INSERT INTO regions (city_id, level, code, name, parent_id, geom, area_m2)
            SELECT %(city)s, 'community', p.code || lpad((c + 1)::text, 3, '0'),
                   '社区' || p.code || '-' || (c + 1), p.id,
                   ST_Multi(ST_MakeEnvelope({WEST} + c * {DX * COLS}, ST_YMin(p.geom),
                                            {WEST} + (c + 1) * {DX * COLS}, ST_YMax(p.geom),
                                            4326)), 0
            FROM regions p, generate_series(0, {CCOLS - 1}) c
            WHERE p.level = 'street'""", {"city": city})
        cur.execute(f"""
            INSERT INTO regions (city_id, level, code, name, parent_id, geom, area_m2)
            SELECT %(city)s, 'grid',
                   p.code || lpad(((({ROWS} - 1) - r) * {COLS} + c + 1)::text, 3, '0'),
                   '网格', p.id,
                   ST_Multi(ST_MakeEnvelope(ST_XMin(p.geom) + c * {DX},
                                            ST_YMin(p.geom) + r * {DY},
                                            ST_XMin(p.geom) + (c + 1) * {DX},
                                            ST_YMin(p.geom) + (r + 1) * {DY}, 4326)), 0
            FROM regions p, generate_series(0, {COLS - 1}) c, generate_series(0, {ROWS - 1}) r
            WHERE p.level = 'community'""", {"city": city})
        cur.execute("UPDATE regions SET area_m2 = ST_Area(geom::geography)")
        conn.commit()  # the rows' old versions are then left out of the rebuilt index
        # The lattice went in across the whole city at once and was then updated row by row:
        # its GiST index had wide, overlapping pages (a lookup read 29 pages, 0.6 ms), where a
        # city whose grids gridmgr generated, parent by parent, reads 4 – 7 (measured with 24
        # communities cut into about 21,000 grids). Rebuilt, it reads 7 here: the lookup that the
        # ceiling and gridmgr both make is then a real city's.
        cur.execute("REINDEX INDEX idx_regions_geom")
    conn.commit()


def seed_cases(conn, total: int, batch: int = 100_000) -> float:
    """``total`` existing cases over the last year, each with its report and history rows."""
    started = time.perf_counter()
    states = ("reported", "filed", "dispatched", "accepted", "handled", "closed", "closed",
              "closed", "closed", "cancelled")
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM cases")
        start = cur.fetchone()[0]
        for first in range(start + 1, start + total + 1, batch):
            last = min(first + batch - 1, start + total)
            cur.execute(f"""
            WITH p AS (
                SELECT i, {WEST} + random() * {EAST - WEST} AS lon,
                       {SOUTH} + random() * {NORTH - SOUTH} AS lat,
                       (ARRAY{list(states)})[1 + floor(random() * {len(states)})::int] AS state,
                       now() - random() * interval '365 days' AS at,
                       (SELECT array_agg(id ORDER BY id) FROM categories) AS cats
                FROM generate_series(%(first)s, %(last)s) i
            ), q AS (
                SELECT p.*, {GRID_CODE_SQL} AS grid_code,
                       cats[1 + floor(random() * array_length(cats, 1))::int] AS category_id
                FROM p
            )
            INSERT INTO cases (id, code, city_id, state, source, channel, category_id,
                               region_id, grid_code, location, description, department_id,
                               dispatched_at, deadline, yellow_at, clock_unit, handled_at,
                               closed_at, created_at, updated_at, deadlines)
            SELECT q.i, to_char(q.at, 'YYYYMMDD')
                        || lpad(q.i::text, greatest(6, length(q.i::text)), '0'), r.city_id,
                   q.state, 'citizen', 'app', q.category_id, r.id, q.grid_code,
                   ST_SetSRID(ST_MakePoint(q.lon, q.lat), 4326), 'seeded',
                   CASE WHEN q.state IN ('dispatched', 'accepted', 'handled', 'closed')
                        THEN (SELECT department_id FROM categories WHERE id = q.category_id)
                   END,
                   CASE WHEN q.state IN ('dispatched', 'accepted', 'handled', 'closed')
                        THEN q.at + interval '2 hours' END,
                   CASE WHEN q.state IN ('dispatched', 'accepted', 'handled', 'closed')
                        THEN q.at + interval '2 days' END,
                   CASE WHEN q.state IN ('dispatched', 'accepted', 'handled', 'closed')
                        THEN q.at + interval '1 day 12 hours' END,
                   CASE WHEN q.state IN ('dispatched', 'accepted', 'handled', 'closed')
                        THEN 'working_days' END,
                   CASE WHEN q.state IN ('handled', 'closed') THEN q.at + interval '1 day'
                   END,
                   CASE WHEN q.state IN ('closed', 'cancelled') THEN q.at + interval '3 days'
                   END,
                   q.at, q.at + interval '1 hour', '{{}}'
            FROM q JOIN regions r ON r.code = q.grid_code""", {"first": first, "last": last})
            cur.execute("""
            INSERT INTO reports (reporter_key, client_id, channel, location, coord_sys,
                                 description, category_id, case_id, created_at)
            SELECT 'anon', 'seed-' || id, 'app', location, 'wgs84', description, category_id,
                   id, created_at
            FROM cases WHERE id BETWEEN %(first)s AND %(last)s""",
                        {"first": first, "last": last})
            cur.execute("""
            INSERT INTO case_history (case_id, action, from_state, to_state, at, location)
            SELECT id, 'report', NULL, 'reported', created_at, location
            FROM cases WHERE id BETWEEN %(first)s AND %(last)s
            UNION ALL
            SELECT id, 'file', 'reported', 'filed', created_at + interval '30 minutes', NULL
            FROM cases WHERE id BETWEEN %(first)s AND %(last)s AND state <> 'reported'
            UNION ALL
            SELECT id, 'dispatch', 'filed', 'dispatched', dispatched_at, NULL
            FROM cases WHERE id BETWEEN %(first)s AND %(last)s AND dispatched_at IS NOT NULL
            UNION ALL
            SELECT id, 'close', 'checked', 'closed', closed_at, NULL
            FROM cases WHERE id BETWEEN %(first)s AND %(last)s AND state = 'closed'
            ORDER BY 1, 5""", {"first": first, "last": last})
            conn.commit()
            print(f"  seeded cases {first:,}–{last:,} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
        cur.execute("SELECT setval(pg_get_serial_sequence('cases', 'id'), "
                    "(SELECT max(id) FROM cases))")
        conn.commit()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE cases")
        cur.execute("VACUUM ANALYZE reports")
        cur.execute("VACUUM ANALYZE case_history")
        cur.execute("VACUUM ANALYZE regions")
    conn.autocommit = False
    return time.perf_counter() - started


def prepare(url: str, cases: int) -> dict:
    """The benchmark database at 50,000 grids and at least ``cases`` cases."""
    ensure_database(url)
    home = Path(tempfile.mkdtemp(prefix="gridmgr-bench-intake-"))
    app = bench_app(url, home)
    with app.app_context():
        from flask_migrate import upgrade

        from gridmgr.categories.operations import load_default_catalogue
        from gridmgr.extensions import db

        upgrade()
        grids = db.session.execute(db.text(
            "SELECT count(*) FROM regions WHERE level = 'grid'")).scalar()
        db.session.commit()
        conn = psycopg2.connect(plain(url))
        if grids != COLS * ROWS * CCOLS * CROWS:
            print("building the city (50,000 unit grids)…", flush=True)
            build_city(conn)
            load_default_catalogue()
            db.session.commit()
        removed = remove_earlier_runs(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM cases")
            existing = cur.fetchone()[0]
        seeded = 0.0
        if existing < cases:
            print(f"seeding {cases - existing:,} cases…", flush=True)
            seeded = seed_cases(conn, cases - existing)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM regions WHERE level = 'grid'")
            grids = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM cases")
            existing = cur.fetchone()[0]
        vacuum_started = time.time()
        vacuum(conn)
        conn.close()
    return {"vacuum_seconds": round(time.time() - vacuum_started, 1),
            "grids": grids, "cases_before": existing, "seed_seconds": round(seeded, 1),
            "removed_from_earlier_runs": removed, "home": str(home)}


def remove_earlier_runs(conn) -> int:
    """Delete what earlier runs wrote (every case not seeded, with its reports, history,
    facts and photos; the live events; the ceiling's rows), so that each run starts from the
    seeded cases alone. Without it every run measured a larger database than the last, with
    more recent open cases near each new report to return as possible duplicates.

    The run's own session skips triggers (``session_replication_role``): the history is
    append-only for the application, and the evaluation triggers would recompute facts of
    cases being removed."""
    with conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        cur.execute("CREATE TEMP TABLE gone ON COMMIT DROP AS "
                    "SELECT id FROM cases WHERE description IS DISTINCT FROM 'seeded'")
        removed = cur.rowcount
        if removed:
            print(f"removing {removed:,} cases written by earlier runs…", flush=True)
            for table in ("photos", "evaluation_facts", "case_history", "reports"):
                cur.execute(f"DELETE FROM {table} t USING gone WHERE t.case_id = gone.id")
            cur.execute("DELETE FROM cases c USING gone WHERE c.id = gone.id")
        cur.execute("TRUNCATE live_events")
        cur.execute("SELECT to_regclass('bench_minimal_reports') IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute("TRUNCATE bench_minimal_reports")
        cur.execute("RESET session_replication_role")
    conn.commit()
    return removed


def vacuum(conn) -> None:
    """Vacuum and analyse what both apps write, so that autovacuum does not start on these
    tables in the middle of a run (every run adds tens of thousands of rows to each) and
    take a core from one app but not the other; then checkpoint."""
    conn.commit()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('bench_minimal_reports') IS NOT NULL")
        minimal = ", bench_minimal_reports" if cur.fetchone()[0] else ""
        cur.execute("VACUUM (ANALYZE) cases, reports, case_history, live_events, "
                    f"evaluation_facts{minimal}")
        # Removing the last run's rows and vacuuming write hundreds of MB of WAL. Flushed now,
        # they cannot make PostgreSQL start a checkpoint (at max_wal_size) in the middle of
        # a measured turn, stalling whichever app it falls on (seen: a ceiling turn with a p99
        # of 494 ms, and a paced run's p99 of 335 ms against 31 ms the run before).
        try:
            cur.execute("CHECKPOINT")
        except psycopg2.errors.InsufficientPrivilege:
            print("(no CHECKPOINT: the bench's database role may not run it)", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_served_config(home: str | Path) -> None:
    """The instance configuration the apps are served with. Rate limits stay on, counted in
    Redis as in production (several workers share one count; per-process memory storage would
    be both wrong and slower)."""
    Path(home, "config.py").write_text(
        "RATELIMIT_ENABLED = True\nGRIDMGR_INTAKE_RATE_LIMIT = '1000000 per second'\n"
        f"RATELIMIT_STORAGE_URI = {RATELIMIT_STORAGE!r}\n"
        "SECRET_KEY = 'bench-secret-key-of-sufficient-length-0123456789'\n")


def serve(target: str, url: str, home: str, workers: int,
          threads: int = 1) -> tuple[subprocess.Popen, int]:
    port = free_port()
    write_served_config(home)
    env = {**os.environ, "DATABASE_URL": url, "GRIDMGR_HOME": home, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [GUNICORN, "-w", str(workers), *worker_class(threads), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "--backlog", "2048", target],
        env=env, cwd=str(ROOT), start_new_session=True)
    # The master listens before its workers have imported the app: wait for real answers.
    deadline, answered = time.time() + 120, 0
    while time.time() < deadline and answered < 3 * workers:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"GET /ready HTTP/1.0\r\n\r\n")
                if s.recv(12).startswith(b"HTTP/1."):
                    answered += 1
        except OSError:
            time.sleep(0.3)
    if answered < 3 * workers:
        stop(proc)
        raise RuntimeError(f"{target} did not start")
    return proc, port


def worker_class(threads: int) -> list[str]:
    """gunicorn's sync workers, or gthread workers with ``threads`` threads each."""
    return ["-k", "sync"] if threads <= 1 else ["-k", "gthread", "--threads", str(threads)]


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)


def process_cpu(process: psutil.Process | int) -> float:
    """CPU seconds (user + system) a process (or pid) has used so far; 0 if it is gone."""
    try:
        times = (psutil.Process(process) if isinstance(process, int) else process).cpu_times()
    except psutil.Error:  # gone meanwhile
        return 0.0
    return times.user + times.system


def cpu_seconds(server: subprocess.Popen) -> dict[str, float]:
    """CPU time (user + system) used so far by ``server``'s processes (gunicorn's master and
    workers) and by every PostgreSQL process of this machine."""
    master = psutil.Process(server.pid)
    return {"server": sum(process_cpu(p) for p in [master, *master.children(recursive=True)]),
            "postgres": sum(process_cpu(p) for p in psutil.process_iter()
                            if _name(p) == "postgres")}


def _name(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.Error:
        return ""


def wrk(port: int, path: str, seconds: int, connections: int, prefix: str,
        delay_ms: float = 0.0, warmup: float = 5,
        cpu_of: subprocess.Popen | None = None) -> dict:
    """A wrk run of ``seconds`` against ``path``; first, unmeasured, ``warmup`` seconds. With
    ``cpu_of`` (the server), the result has the CPU time used in the measured run (``cpu_s``:
    the server's processes and PostgreSQL's)."""
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(WRK_SCRIPT % {
        "categories": ", ".join(f'"{c}"' for c in CATEGORIES), "west": WEST, "south": SOUTH,
        "width": EAST - WEST, "height": NORTH - SOUTH})
    url = f"http://127.0.0.1:{port}{path}"
    if warmup:
        subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{warmup:g}s", "-s", str(script), url,
                        "--", f"{prefix}-warm", "0"], capture_output=True, check=True)
    before = cpu_seconds(cpu_of) if cpu_of else None
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "30s",
         "-s", str(script),
         url, "--", prefix, str(int(delay_ms))], capture_output=True, text=True, check=True)
    found = re.search(r"WRKJSON (\{.*\})", out.stdout)
    result = json.loads(found.group(1))
    result["rate"] = round(result["requests"] / result["seconds"], 1)
    if before is not None:
        after = cpu_seconds(cpu_of)
        result["cpu_s"] = {side: round(after[side] - before[side], 3) for side in after}
    return result


def hello_rate(port: int, seconds: int, connections: int) -> float:
    """Requests/s of the Flask hello app (``GET /``): how fast the machine is right now."""
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s",
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                         check=True)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))


def combined(turns: list[dict]) -> dict:
    """Turns of one app as one run: the rate of the totals; the latencies are the median of
    the turns' (p50) and the worst turn's (p99, max)."""
    requests = sum(t["requests"] for t in turns)
    seconds = sum(t["seconds"] for t in turns)
    statuses: dict[str, int] = {}
    for t in turns:
        for code, n in t["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    return {"requests": requests, "seconds": round(seconds, 3),
            "rate": round(requests / seconds, 1),
            "p50_ms": sorted(t["p50_ms"] for t in turns)[len(turns) // 2],
            "p90_ms": max(t["p90_ms"] for t in turns),
            "p99_ms": max(t["p99_ms"] for t in turns),
            "max_ms": max(t["max_ms"] for t in turns),
            "errors": sum(t["errors"] for t in turns), "statuses": statuses,
            **cpu_per_request(turns),
            "turns": [{"rate": t["rate"], "p50_ms": t["p50_ms"], "p99_ms": t["p99_ms"]}
                      for t in turns]}


def cpu_per_request(turns: list[dict]) -> dict:
    """The CPU time of the turns per request answered, in µs, by side (when it was counted)."""
    if not all("cpu_s" in t for t in turns):
        return {}
    requests = sum(t["requests"] for t in turns)
    return {"cpu_us_per_request": {
        side: round(1e6 * sum(t["cpu_s"][side] for t in turns) / requests)
        for side in turns[0]["cpu_s"]}}


def paced_run(port: int, args, prefix: str) -> dict:
    """``args.rate`` reports/s offered by many connections, each waiting between its requests.

    wrk waits a fixed delay after each answer, so a connection offers one request per delay
    plus latency: with a delay of connections / rate alone it offers less than the rate. Short
    runs measure the latency and shorten the delay by it, so the last run offers the rate (it
    still cannot offer more than the server answers: the figure printed is what was achieved).
    """
    connections = max(args.connections, 64)
    delay = 1000.0 * connections / args.rate
    calibration_201 = 0
    for n in range(3):
        probe = wrk(port, "/api/v1/reports", 4, connections, f"{prefix}-c{n}",
                    delay_ms=delay, warmup=0)
        calibration_201 += probe["statuses"].get("201", 0)
        if abs(probe["rate"] - args.rate) < 0.03 * args.rate:
            break
        period = (delay + probe["p50_ms"]) * probe["rate"] / args.rate
        delay = max(0.0, period - probe["p50_ms"])
    paced = wrk(port, "/api/v1/reports", args.seconds, connections, prefix, delay_ms=delay,
                warmup=0)
    return {**paced, "connections": connections, "delay_ms": round(delay, 1),
            "calibration_201": calibration_201}


def count(url: str, sql: str, params: tuple = ()) -> int:
    with psycopg2.connect(plain(url)) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10,
                        help="length of each saturated turn of each app")
    parser.add_argument("--warmup", type=float, default=15,
                        help="unmeasured seconds of load on each app before its first turn "
                             "(gridmgr's first turn after the reset ran cold with 5: 648/s "
                             "against 788 – 917/s in the next two)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="turns of each app, alternating (ceiling, gridmgr, ceiling, ...)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per worker (gthread) for both apps; 1: sync workers")
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--out", help="results name (default: intake or "
                                      "intake-without-evaluation-triggers)")
    parser.add_argument("--without-evaluation-triggers", action="store_true",
                        help="measure intake alone: disable the evaluation-facts triggers "
                             "(migration 0007) on cases and case_history during the run")
    args = parser.parse_args()
    url = database_url()
    setup = prepare(url, args.cases)
    toggled = evaluation_triggers(url, enable=False) if args.without_evaluation_triggers else []
    try:
        return measure(args, url, setup, toggled)
    finally:
        if toggled:
            evaluation_triggers(url, enable=True)


def evaluation_triggers(url: str, enable: bool) -> list[str]:
    """Enable or disable the evaluation-facts triggers; the names of those touched."""
    with psycopg2.connect(plain(url)) as conn, conn.cursor() as cur:
        cur.execute("""SELECT tgname, tgrelid::regclass::text FROM pg_trigger
                       WHERE NOT tgisinternal AND tgname LIKE '%%evaluation_facts%%'""")
        found = cur.fetchall()
        for name, table in found:
            cur.execute(f'ALTER TABLE {table} {"ENABLE" if enable else "DISABLE"} '
                        f'TRIGGER "{name}"')
    return [name for name, _ in found]


def measure(args, url: str, setup: dict, toggled: list[str]) -> dict:
    print(f"database: {setup['grids']:,} unit grids, {setup['cases_before']:,} cases")
    run = f"r{int(time.time())}"

    reports_before = count(url, "SELECT count(*) FROM reports")
    cases_before = count(url, "SELECT count(*) FROM cases")
    hello, hello_port = serve("bench.minimal_app:create_hello_app()", url, setup["home"],
                              args.workers, args.threads)
    minimal = None
    try:
        machine = {"issue_reference": 4958,
                   "before": hello_rate(hello_port, HELLO_SECONDS, args.connections)}
        minimal, minimal_port = serve("bench.minimal_app:create_app()", url, setup["home"],
                                      args.workers, args.threads)
        proc, port = serve("wsgi:app", url, setup["home"], args.workers, args.threads)
        try:
            turns = []
            for n in range(args.rounds):
                turns.append((
                    wrk(minimal_port, "/report", args.seconds, args.connections, f"{run}m{n}",
                        warmup=args.warmup if n == 0 else 0, cpu_of=minimal),
                    wrk(port, "/api/v1/reports", args.seconds, args.connections, f"{run}s{n}",
                        warmup=args.warmup if n == 0 else 0, cpu_of=proc)))
            stop(minimal)
            minimal = None
            ceiling = combined([m for m, _ in turns])
            saturated = combined([g for _, g in turns])
            paced = paced_run(port, args, f"{run}p")
        finally:
            stop(proc)
        machine["after"] = hello_rate(hello_port, HELLO_SECONDS, args.connections)
    finally:
        stop(hello)
        if minimal is not None:
            stop(minimal)

    # The paced run's short calibration runs store reports of the run's prefix too.
    created = sum(r["statuses"].get("201", 0) for r in (saturated, paced)) \
        + paced["calibration_201"]
    warm_created = count(url, "SELECT count(*) FROM reports WHERE client_id LIKE %s",
                         (f"{run}s%-warm-%",))
    stored = count(url, "SELECT count(*) FROM reports WHERE client_id LIKE %s "
                        "AND client_id NOT LIKE %s", (f"{run}%", f"{run}s%-warm-%"))
    new_reports = count(url, "SELECT count(*) FROM reports") - reports_before
    new_cases = count(url, "SELECT count(*) FROM cases") - cases_before
    # wrk stops counting at the deadline while the server finishes what is in flight, so the
    # store may hold a few more reports than wrk saw answered, never fewer.
    orphans = count(url, "SELECT count(*) FROM reports r WHERE r.client_id LIKE %s AND NOT "
                         "EXISTS (SELECT 1 FROM cases c WHERE c.id = r.case_id)", (f"{run}%",))
    per_case = count(url, "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM reports "
                          "WHERE client_id LIKE %s GROUP BY case_id) x", (f"{run}%",))
    check = {"answered_201": created, "stored_reports": stored,
             "completed_after_wrk_stopped": stored - created,
             "warmup_reports": warm_created, "new_reports_total": new_reports,
             "new_cases_total": new_cases, "reports_without_case": orphans,
             "max_reports_per_new_case": per_case,
             "every_201_one_report": created <= stored and new_reports == new_cases
             == stored + warm_created and orphans == 0 and per_case == 1,
             "server_errors": sum(n for r in (saturated, paced)
                                  for code, n in r["statuses"].items() if code >= "500")}
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "flask_hello_per_s": machine},
        "setup": {k: v for k, v in setup.items() if k != "home"},
        "server": f"gunicorn -w {args.workers} {' '.join(worker_class(args.threads))}",
        "load": f"wrk -t2 -c{args.connections}, {args.warmup:g} s unmeasured on each app, "
                f"then {args.rounds} turns of {args.seconds} s each",
        "evaluation_triggers_disabled": toggled,
        "ceiling_minimal_locate_insert": ceiling, "gridmgr_saturated": saturated,
        "gridmgr_paced": {**paced, "offered_rate": args.rate},
        "ratio_to_ceiling": round(saturated["rate"] / ceiling["rate"], 3),
        "ratio_per_round": [round(g["rate"] / m["rate"], 3) for m, g in turns],
        # The same ratio by the CPU time a request cost (gunicorn + PostgreSQL).
        "cpu_ratio_to_ceiling": round(
            sum(ceiling["cpu_us_per_request"].values())
            / sum(saturated["cpu_us_per_request"].values()), 3),
        "check": check,
    }
    print(json.dumps(result, indent=2))
    print(f"\nmachine: Flask hello {machine['before']:.0f}/s before, {machine['after']:.0f}/s "
          f"after (reference 4,958/s)\nceiling {ceiling['rate']:.0f}/s · "
          f"gridmgr {saturated['rate']:.0f}/s "
          f"(p50 {saturated['p50_ms']:.1f} ms, p99 {saturated['p99_ms']:.1f} ms) · ratio "
          f"{result['ratio_to_ceiling']:.0%} (turns: "
          f"{', '.join(f'{r:.0%}' for r in result['ratio_per_round'])}) · "
          f"at {paced['rate']:.0f}/s offered "
          f"{args.rate}/s: p99 {paced['p99_ms']:.1f} ms · every 201 one report: "
          f"{check['every_201_one_report']}")
    mine, its = saturated["cpu_us_per_request"], ceiling["cpu_us_per_request"]
    print(f"CPU per report: ceiling {its['server']} µs in gunicorn + {its['postgres']} µs in "
          f"PostgreSQL · gridmgr {mine['server']} + {mine['postgres']} µs · ceiling's share "
          f"{result['cpu_ratio_to_ceiling']:.0%}")
    name = "intake-without-evaluation-triggers" if toggled else "intake"
    record(args.out or name, result)
    return result


if __name__ == "__main__":
    main()
