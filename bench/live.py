"""Live channel benchmark: delivery latency and wall fan-out against a real ``gridmgr serve``.

For each client count (default 1,000 and 5,000 grid workers, ten per unit grid, each on duty
and rostered on its grid, connected to ``/live``; the phones run in ``--client-procs``
processes of their own, ``bench/live_clients.py``), reports arrive at ``--rate`` per second:
a reporter's ``POST /api/v1/reports`` (201), then the operator's ``POST
/api/v1/cases/{id}/file`` (200), which dispatches the case by the rules (the roster picks a
worker of the report's grid) in the same request, as in production. Both go to the API
server (``--api-process``). Times are ``time.monotonic()`` on both sides (one clock for the
whole machine), taken when a response's status line arrives and when a phone reads a frame:

- ``report_to_dispatched``: the report's 201 → the responsible worker's phone reads
  ``case.dispatched`` (the end-to-end figure; includes the operator's filing request)
- ``created``: the report's 201 → each phone of the grid reads ``case.created``
- ``dispatched``: the filing's 200 (the dispatch committed) → the worker reads ``case.dispatched``

Then the wall: ``--walls`` city-wide clients; an event to ``city:{id}`` every 0.2 s, time from
commit to the last of them reading it. CPU seconds of every process involved (this driver, the
serve process, the API workers, the phones, PostgreSQL's backends, and the rest of the
machine) are taken over each report stream. Prints a table; writes ``bench/results/<name>.json``.

    .venv/bin/python bench/live.py [--clients 1000 5000] [--rate 50] [--seconds 20]
                                   [--async-mode threading|gevent]
                                   [--api-process gunicorn|same] [--api-workers 2]
                                   [--client-procs 2] [--walls 100]

``--api-process gunicorn`` (default) posts to a separate ``gunicorn -w N wsgi:app`` (sync
workers, same database) while the phones stay connected to ``gridmgr serve``: the production
layout, where the API and the WebSocket process do not share a GIL. ``same`` posts to the
``gridmgr serve`` process that holds the phones.

Needs PostgreSQL with PostGIS (``--admin-url``, default postgresql://postgres@127.0.0.1:5432/
postgres); a scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
from flask_migrate import upgrade
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from record import record  # noqa: E402

from gridmgr import create_app  # noqa: E402
from gridmgr.extensions import db  # noqa: E402

SECRET = "bench-secret-key-that-is-long-enough-for-hs256"
CITY_CODE = "110101"
STREET = CITY_CODE + "001"
COMMUNITY = STREET + "001"
WORKERS_PER_GRID = 10
CELL = 0.001  # degrees; grids in rows of 100


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_ms": round(percentile(values, 0.5) * 1000, 2),
            "p99_ms": round(percentile(values, 0.99) * 1000, 2),
            "max_ms": round(max(values) * 1000, 2),
            "mean_ms": round(statistics.fmean(values) * 1000, 2)}


# -- the database and the city -----------------------------------------------------------------

def scratch_database(admin_url: str) -> tuple[str, callable]:
    name = f"gridmgr_bench_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name, drivername="postgresql+psycopg2")

    def drop() -> None:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()

    return url.render_as_string(hide_password=False), drop


def box(west: float, south: float, east: float, north: float) -> str:
    return (f"SRID=4326;MULTIPOLYGON((({west} {south},{east} {south},{east} {north},"
            f"{west} {north},{west} {south})))")


def grid_cell(i: int) -> tuple[float, float]:
    return 116.3 + (i % 100) * CELL, 39.9 + (i // 100) * CELL


def build_city(grids: int) -> dict:
    """City, district, street, community and ``grids`` unit grids; department, category."""
    rows = (grids + 99) // 100
    outer = box(116.3, 39.9, 116.3 + 100 * CELL, 39.9 + rows * CELL)
    city_id = db.session.execute(text(
        "INSERT INTO cities (slug, name, timezone) VALUES ('bench', '基准市', 'Asia/Shanghai') "
        "RETURNING id")).scalar()
    parent = None
    for code, level in ((CITY_CODE, "district"), (STREET, "street"),
                        (COMMUNITY, "community")):
        parent = db.session.execute(text(
            "INSERT INTO regions (city_id, level, code, name, parent_id, geom, area_m2) "
            "VALUES (:c, :l, :code, :code, :p, ST_GeomFromEWKT(:g), 1) RETURNING id"),
            {"c": city_id, "l": level, "code": code, "p": parent, "g": outer}).scalar()
    for i in range(grids):
        lon, lat = grid_cell(i)
        db.session.execute(text(
            "INSERT INTO regions (city_id, level, code, name, parent_id, geom, area_m2) "
            "VALUES (:c, 'grid', :code, :code, :p, ST_GeomFromEWKT(:g), 10000)"),
            {"c": city_id, "code": f"{COMMUNITY}{i + 1:03d}", "p": parent,
             "g": box(lon, lat, lon + CELL, lat + CELL)})
    department = db.session.execute(text(
        "INSERT INTO departments (city_id, name) VALUES (:c, '城管') RETURNING id"),
        {"c": city_id}).scalar()
    group = db.session.execute(text(
        "INSERT INTO category_classes (code, kind, name_zh, name_en) "
        "VALUES ('E01', 'event', '市容环境', 'Environment') RETURNING id")).scalar()
    db.session.execute(text(
        "INSERT INTO categories (code, class_id, name_zh, name_en, department_id, limits, "
        "auto_dispatch) VALUES ('E0101', :g, '暴露垃圾', 'Exposed garbage', :d, "
        "'{\"handle\": {\"amount\": 2, \"unit\": \"urgent_hours\"}}', true)"),
        {"g": group, "d": department})
    db.session.commit()
    return {"city_id": city_id}


def add_users(city_id: int, role: str, count: int, prefix: str, grids: int = 0) -> list[dict]:
    """``count`` users (workers: on duty and rostered, ten per grid); their ids and tokens."""
    from gridmgr.people.models import User
    from gridmgr.people.tokens import encode_token

    users = []
    for i in range(count):
        grid_code = f"{COMMUNITY}{i // WORKERS_PER_GRID + 1:03d}" if grids else None
        user_id = db.session.execute(text("""
            INSERT INTO users (username, password_hash, role, city_id, region_id)
            VALUES (:u, 'x', :r, :c, (SELECT id FROM regions WHERE code = :g))
            RETURNING id"""), {"u": f"{prefix}{i}", "r": role, "c": city_id,
                               "g": grid_code}).scalar()
        if grid_code:
            db.session.execute(text("""
                INSERT INTO roster_entries (user_id, grid_id)
                SELECT :u, id FROM regions WHERE code = :g"""), {"u": user_id, "g": grid_code})
            db.session.execute(text(
                "INSERT INTO worker_presence (user_id, on_duty) VALUES (:u, true)"),
                {"u": user_id})
        users.append({"id": user_id, "grid": grid_code})
    db.session.commit()
    for user in users:
        user["token"] = encode_token(db.session.get(User, user["id"]), "access",
                                     lifetime=24 * 3600)
    return users


# -- the server --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(database_url: str, home: Path,
                 async_mode: str = "threading") -> tuple[subprocess.Popen, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.py").write_text("RATELIMIT_ENABLED = False\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({"DATABASE_URL": database_url, "SECRET_KEY": SECRET, "GRIDMGR_HOME": str(home),
                "GRIDMGR_ASYNC_MODE": async_mode})
    with open(home / "server.log", "wb") as log:
        process = subprocess.Popen([str(Path(sys.executable).parent / "gridmgr"), "serve",
                                    "--port", str(port)], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    return process, answering(process, port, home / "server.log")


def start_api(database_url: str, home: Path, workers: int) -> tuple[subprocess.Popen, str]:
    """A separate API process: ``gunicorn -w N wsgi:app`` (sync workers), same database."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({"DATABASE_URL": database_url, "SECRET_KEY": SECRET, "GRIDMGR_HOME": str(home)})
    with open(home / "gunicorn.log", "wb") as log:
        process = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-w",
                                    str(workers), "-b", f"127.0.0.1:{port}", "wsgi:app"],
                                   cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, answering(process, port, home / "gunicorn.log")


def answering(process: subprocess.Popen, port: int, log: Path) -> str:
    """The URL of the server ``process`` once it answers on ``port`` (120 s at most: on a
    loaded machine ``gridmgr serve`` took 37 s to import and answer)."""
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/v1/openapi.json", timeout=1):
                return url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{Path(process.args[0]).name} did not start; see {log}")


def server_stats(pid: int) -> dict:
    """Threads, resident memory (MB) and CPU seconds of the server process (Linux /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return {}
    ticks = os.sysconf("SC_CLK_TCK")
    return {"threads": int(fields["Threads"]), "rss_mb": int(fields["VmRSS"].split()[0]) // 1024,
            "cpu_s": round((int(stat[11]) + int(stat[12])) / ticks, 1)}


# -- CPU accounting ----------------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far (Linux /proc), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(stat[11]) + int(stat[12])) / TICKS


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def database_backends(name: str) -> list[int]:
    """PostgreSQL backends connected to the scratch database ``name``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"postgres:") and f" {name} ".encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def relay_backends(database_url: str) -> list[int]:
    """The backends of the serve process's live relay (its LISTEN connection)."""
    conn = psycopg2.connect(make_url(database_url).set(drivername="postgresql")
                            .render_as_string(hide_password=False))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity "
                        "WHERE application_name = 'gridmgr-live-relay'")
            return [pid for (pid,) in cur.fetchall()]
    finally:
        conn.close()


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (all cores, /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS


class CpuMeter:
    """CPU seconds used by each part of the benchmark between :meth:`start` and :meth:`stop`."""

    def __init__(self, parts: dict[str, callable]):
        self.parts = parts  # name → function returning the pids of that part now

    def sample(self) -> dict:
        return {"parts": {name: {pid: process_cpu(pid) for pid in pids()}
                          for name, pids in self.parts.items()},
                "machine": machine_cpu(), "at": time.monotonic()}

    def start(self) -> None:
        self.before = self.sample()

    def stop(self) -> dict:
        after = self.sample()
        used = {}
        for name, pids in after["parts"].items():
            earlier = self.before["parts"].get(name, {})
            used[name] = round(sum((cpu or 0) - (earlier.get(pid) or 0)
                                   for pid, cpu in pids.items()), 1)
        machine = after["machine"] - self.before["machine"]
        used["other processes"] = round(machine - sum(used.values()), 1)
        return {"seconds": round(after["at"] - self.before["at"], 1), "cpu_s": used,
                "machine_cpu_s": round(machine, 1)}


# -- phones ------------------------------------------------------------------------------------

class Phones:
    """``bench/live_clients.py`` processes, each holding a share of the clients."""

    def __init__(self, url: str, processes: int):
        self.processes = [subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "live_clients.py"), url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
        self.open = 0

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def _ask(self, commands: list[dict]) -> list[dict]:
        for process, command in zip(self.processes, commands, strict=True):
            process.stdin.write(json.dumps(command) + "\n")
            process.stdin.flush()
        return [json.loads(process.stdout.readline()) for process in self.processes]

    def connect(self, users: list[dict]) -> dict:
        n = len(self.processes)
        shares = [[{"id": u["id"], "token": u["token"]} for u in users[i::n]] for i in range(n)]
        answers = self._ask([{"connect": share} for share in shares])
        self.open = sum(a["open"] for a in answers)
        return {"connected": sum(a["connected"] for a in answers),
                "failed": sum(a["failed"] for a in answers),
                "seconds": max(a["seconds"] for a in answers), "open": self.open}

    def close_clients(self, users: list[dict]) -> None:
        ids = [u["id"] for u in users]
        self.open = sum(a["open"] for a in self._ask([{"close": ids}] * len(self.processes)))

    def receipts(self) -> list:
        answers = self._ask([{"receipts": True}] * len(self.processes))
        self.open = sum(a["open"] for a in answers)
        return [r for a in answers for r in a["receipts"]]

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._ask([{"stop": True}] * len(self.processes))
        for process in self.processes:
            with contextlib.suppress(OSError):
                process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


# -- scenarios ---------------------------------------------------------------------------------

def post(base: str, path: str, token: str, body: dict) -> tuple[int, float, dict]:
    """POST JSON; the status, ``time.monotonic()`` when the status line arrived, the answer."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Content-Type": "application/json",
                              "Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        at = time.monotonic()
        answer = json.loads(response.read() or b"null")
    finally:
        conn.close()
    return response.status, at, answer


WARM_UP_SECONDS = 3


def report_stream(url: str, reporters: list[dict], operator: dict, grids: int,
                  rate: float, seconds: float) -> list[dict]:
    """Reports at ``rate``/s for ``seconds``: each posted, then filed (and so dispatched by
    the rules) through the API."""

    def one(n: int) -> dict:
        reporter = reporters[n % len(reporters)]
        cell = random.randrange(grids)
        lon, lat = grid_cell(cell)
        status, t201, answer = post(url, "/api/v1/reports", reporter["token"], {
            "lon": lon + CELL / 2, "lat": lat + CELL / 2, "category": "E0101",
            "client_id": uuid.uuid4().hex})
        if status != 201:
            return {"error": f"report {status}: {str(answer)[:200]}"}
        case_id = answer["case"]["id"]
        status, t_filed, filed = post(url, f"/api/v1/cases/{case_id}/file",
                                      operator["token"], {})
        if status != 200:
            return {"error": f"file {status}: {str(filed)[:200]}"}
        if filed.get("state") != "dispatched":
            return {"error": f"filed but {filed.get('state')}, not dispatched"}
        return {"case_id": case_id, "t201": t201, "t_filed": t_filed,
                "grid": f"{COMMUNITY}{cell + 1:03d}"}

    futures = []
    with ThreadPoolExecutor(max_workers=16) as pool:
        start = time.monotonic()
        for n in range(int(rate * seconds)):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(one, n))
    return [future.result() for future in futures]


def responsible_workers(app, sent: list[dict]) -> None:
    """Add to each report the worker the rules dispatched it to (read after the stream: the
    filing's answer does not name the worker)."""
    ids = [item["case_id"] for item in sent if "error" not in item]
    with app.app_context():
        workers = dict(db.session.execute(text(
            "SELECT id, worker_id FROM cases WHERE id = ANY(:ids)"), {"ids": ids}).all())
        db.session.remove()
    for item in sent:
        if "error" not in item:
            item["worker_id"] = workers.get(item["case_id"])


def measure_reports(phones: Phones, sent: list[dict], grid_of: dict[int, str]) -> dict:
    receipts = phones.receipts()
    first: dict[tuple, float] = {}
    for event, key, user_id, t in receipts:
        first.setdefault((event, key, user_id), t)
    by_grid: dict[str, list[int]] = {}
    for user_id, grid in grid_of.items():
        by_grid.setdefault(grid, []).append(user_id)
    created, dispatched, end_to_end = [], [], []
    missing_created = missing_dispatched = undispatched = 0
    ok = [item for item in sent if "error" not in item]
    for item in ok:
        for user_id in by_grid.get(item["grid"], []):
            got = first.get(("case.created", item["case_id"], user_id))
            if got is None:
                missing_created += 1
            else:
                created.append(got - item["t201"])
        if item["worker_id"] is None:
            undispatched += 1
            continue
        got = first.get(("case.dispatched", item["case_id"], item["worker_id"]))
        if got is None:
            missing_dispatched += 1
            continue
        dispatched.append(got - item["t_filed"])
        end_to_end.append(got - item["t201"])
    filing = [item["t_filed"] - item["t201"] for item in ok]
    return {"report_to_dispatched": summary(end_to_end), "created": summary(created),
            "dispatched": summary(dispatched), "filing_request": summary(filing),
            "reports": len(sent), "errors": [i["error"] for i in sent if "error" in i][:5],
            "failed_requests": len(sent) - len(ok), "not_dispatched_to_a_worker": undispatched,
            "missing_dispatched": missing_dispatched, "missing_created": missing_created}


def wall_fanout(app, phones: Phones, city_id: int, walls: list[dict], probes: int) -> dict:
    """An event to the city room every 0.2 s; commit → each wall phone reads it."""
    from gridmgr.live import publish

    phones.receipts()  # forget what came before
    sent = []
    for n in range(probes):
        probe = f"wall-{uuid.uuid4().hex[:8]}"
        with app.app_context():
            publish("case.updated", {"probe": probe, "n": n}, [f"city:{city_id}"])
            db.session.commit()
            sent.append((probe, time.monotonic()))
            db.session.remove()
        time.sleep(0.2)
    time.sleep(2)
    wall_ids = {w["id"] for w in walls}
    got: dict[str, list[float]] = {}
    for event, key, user_id, t in phones.receipts():
        if event == "case.updated" and user_id in wall_ids:
            got.setdefault(key, []).append(t)
    last, every, incomplete = [], [], 0
    for probe, committed in sent:
        times = got.get(probe, [])
        if len(times) < len(walls):
            incomplete += 1
        if times:
            last.append(max(times) - committed)
            every.extend(t - committed for t in times)
    return {"last_of_walls": summary(last), "each_receipt": summary(every),
            "probes": probes, "walls": len(walls), "probes_not_reaching_every_wall": incomplete}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--walls", type=int, default=100)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--admin-url", default=os.environ.get(
        "BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--async-mode", choices=["threading", "gevent"], default="threading",
                        help="the server's GRIDMGR_ASYNC_MODE")
    parser.add_argument("--api-process", choices=["gunicorn", "same"], default="gunicorn",
                        help="post the reports and filings to a separate `gunicorn -w N "
                        "wsgi:app` (same database; events reach the phones through the "
                        "outbox) or to the `gridmgr serve` process that holds the phones")
    parser.add_argument("--api-workers", type=int, default=2,
                        help="gunicorn sync workers with --api-process gunicorn")
    parser.add_argument("--client-procs", type=int, default=2,
                        help="processes the phones are spread over")
    parser.add_argument("--out", help="results name (default live[_gevent][_same])")
    args = parser.parse_args()
    name = "live" if args.async_mode == "threading" else f"live_{args.async_mode}"
    if args.api_process == "same":
        name += "_same"
    args.out = args.out or name

    database_url, drop = scratch_database(args.admin_url)
    database = make_url(database_url).database
    home = Path(f"/tmp/gridmgr-bench-{uuid.uuid4().hex[:6]}")
    app = create_app({"DATABASE_URL": database_url, "SQLALCHEMY_DATABASE_URI": database_url,
                      "GRIDMGR_HOME": str(home), "SECRET_KEY": SECRET})
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
               "async_mode": args.async_mode, "api_process": args.api_process,
               "api_workers": args.api_workers if args.api_process == "gunicorn" else None,
               "client_procs": args.client_procs, "rate_per_s": args.rate,
               "seconds": args.seconds, "runs": []}
    server = api = phones = None
    try:
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            grids = max(args.clients) // WORKERS_PER_GRID
            city = build_city(grids)
            workers = add_users(city["city_id"], "inspector", max(args.clients), "w",
                                grids=grids)
            reporters = add_users(city["city_id"], "inspector", 20, "reporter")
            operator = add_users(city["city_id"], "operator", 1, "op")[0]
            walls = add_users(city["city_id"], "dispatcher", args.walls, "wall")
            db.session.remove()
        server, url = start_server(database_url, home, args.async_mode)
        api_url = url
        if args.api_process == "gunicorn":
            api, api_url = start_api(database_url, home, args.api_workers)
        grid_of = {w["id"]: w["grid"] for w in workers}
        print(f"server {url} ({args.async_mode}); reports to {api_url} ({args.api_process}); "
              f"{grids} grids; {len(workers)} workers; phones in {args.client_procs} processes")
        phones = Phones(url, args.client_procs)
        relays = relay_backends(database_url)
        meter = CpuMeter({
            "driver (this process)": lambda: [os.getpid()],
            "serve": lambda: [server.pid],
            "api workers": lambda: ([api.pid, *children(api.pid)] if api is not None else []),
            "phones": phones.pids,
            "postgresql: relay": lambda: relays,
            "postgresql: other backends": lambda: [
                pid for pid in database_backends(database) if pid not in relays]})
        connected = 0
        for count in sorted(args.clients):
            connecting = phones.connect(workers[connected:count])
            connected = count
            print(f"{count:>6} clients: connect {connecting}")
            if count == min(args.clients):
                # Unmeasured: each API worker's first requests prepare its statements and
                # fill its caches (categories, calendars), once per process.
                report_stream(api_url, reporters, operator, count // WORKERS_PER_GRID,
                              args.rate, WARM_UP_SECONDS)
            time.sleep(2)
            meter.start()
            sent = report_stream(api_url, reporters, operator, count // WORKERS_PER_GRID,
                                 args.rate, args.seconds)
            time.sleep(1)
            cpu = meter.stop()
            time.sleep(2)
            responsible_workers(app, sent)
            run = {"clients": count, "connect": connecting,
                   **measure_reports(phones, sent, grid_of), "open_at_end": phones.open,
                   "cpu": cpu, "load_average_1m": round(os.getloadavg()[0], 2),
                   "server": server_stats(server.pid)}
            results["runs"].append(run)
            print_run(run)
            if count == min(args.clients) and args.walls:
                phones.connect(walls)
                fan = wall_fanout(app, phones, city["city_id"], walls, args.probes)
                results["wall_fanout"] = {**fan, "other_clients": count}
                print(f"wall fan-out to {args.walls} phones ({count} others connected): "
                      f"commit → last wall p50 {fan['last_of_walls'].get('p50_ms')} ms, "
                      f"p99 {fan['last_of_walls'].get('p99_ms')} ms; probes not reaching "
                      f"every wall {fan['probes_not_reaching_every_wall']}")
                # A wall listens to the whole city: leave the next runs to the workers.
                phones.close_clients(walls)
    finally:
        if phones is not None:
            phones.close()
        for process in (api, server):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop()
    record(args.out, results)


def print_run(run: dict) -> None:
    def fig(name: str) -> str:
        s = run[name]
        return f"p50 {s.get('p50_ms')} / p99 {s.get('p99_ms')} / max {s.get('max_ms')} ms"

    print(f"{run['clients']:>6} clients, {run['reports']} reports "
          f"({run['failed_requests']} failed):\n"
          f"    201 → worker reads case.dispatched  {fig('report_to_dispatched')}\n"
          f"    201 → grid reads case.created       {fig('created')}\n"
          f"    filing 200 → worker reads dispatch  {fig('dispatched')}\n"
          f"    filing request (report 201 → 200)   {fig('filing_request')}\n"
          f"    missing: dispatched {run['missing_dispatched']}, created "
          f"{run['missing_created']}, not dispatched to a worker "
          f"{run['not_dispatched_to_a_worker']}; phones open {run['open_at_end']}; "
          f"load {run['load_average_1m']}\n"
          f"    CPU s over {run['cpu']['seconds']} s: {run['cpu']['cpu_s']} "
          f"(machine {run['cpu']['machine_cpu_s']}); serve {run['server']}")


if __name__ == "__main__":
    main()
