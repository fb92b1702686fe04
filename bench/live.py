"""Live channel benchmark: delivery latency and wall fan-out against a real ``gridmgr serve``.

For each client count (default 1,000 and 5,000 grid workers, ten per unit grid, each on duty
and rostered on its grid, connected to ``/live`` with python-socketio's asyncio client):
reports arrive at ``--rate`` per second through ``POST /api/v1/reports``; each is filed and
dispatched by the rules (the roster picks a worker of the report's grid) in this process.
Measured on the receiving clients' clocks (same machine):

- ``created``: the 201 of ``POST /api/v1/reports`` → the grid's workers receive ``case.created``
- ``dispatched``: commit of the dispatch → the chosen worker receives ``case.dispatched``
- ``report_to_dispatched``: the 201 → ``case.dispatched`` (includes filing, done here at once)

Then the wall: ``--walls`` city-wide clients; an event to ``city:{id}`` every 0.2 s, time from
commit to the last of them receiving it. Prints a table; writes ``bench/results/live.json``.

    .venv/bin/python bench/live.py [--clients 1000 5000] [--rate 50] [--seconds 20]
                                   [--async-mode threading|gevent]
                                   [--api-process same|gunicorn] [--api-workers 2]

``--api-process gunicorn`` posts the reports to a separate ``gunicorn -w N wsgi:app`` (sync
workers, same database) while the clients stay connected to ``gridmgr serve``: the production
layout where the API process and the WebSocket process do not share a GIL.

Needs PostgreSQL with PostGIS (``--admin-url``, default postgresql://postgres@127.0.0.1:5432/
postgres); a scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
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

import psycopg2
import socketio
from flask_migrate import upgrade
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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
    """The URL of the server ``process`` once it answers on ``port`` (30 s at most)."""
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
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


# -- clients -----------------------------------------------------------------------------------

class Receipts:
    """What the clients received: (event, case id, user id) → first receipt time."""

    def __init__(self) -> None:
        self.first: dict[tuple, float] = {}
        self.all: dict[tuple, list[float]] = {}

    def add(self, event: str, key, user_id: int) -> None:
        now = time.time()
        self.first.setdefault((event, key, user_id), now)
        self.first.setdefault((event, key, None), now)
        self.all.setdefault((event, key), []).append(now)


async def _swarm(url: str, commands, answers) -> None:
    """The clients' event loop (in its own process, so the publisher does not hold its GIL)."""
    receipts = Receipts()
    clients: list[socketio.AsyncClient] = []
    loop = asyncio.get_running_loop()

    async def one(user, gate) -> bool:
        client = socketio.AsyncClient(reconnection=False)
        user_id = user["id"]

        async def on_any(event, data):
            key = data.get("id", data.get("probe")) if isinstance(data, dict) else None
            receipts.add(event, key, user_id)

        client.on("*", on_any, namespace="/live")
        for _attempt in range(3):
            try:
                async with gate:
                    await client.connect(url, namespaces=["/live"], transports=["websocket"],
                                         auth={"token": user["token"]}, wait_timeout=60)
                clients.append(client)
                return True
            except socketio.exceptions.ConnectionError:
                await asyncio.sleep(1)
        return False

    while True:
        command, argument = await loop.run_in_executor(None, commands.get)
        if command == "connect":
            started = time.monotonic()
            gate = asyncio.Semaphore(20)
            done = await asyncio.gather(*(one(u, gate) for u in argument))
            # Thousands of phones, one process: keep the collector from pausing all of them
            # at once in a full pass over every client (that measured the harness, not gridmgr).
            gc.collect()
            gc.freeze()
            answers.put({"connected": sum(done), "failed": len(done) - sum(done),
                         "seconds": round(time.monotonic() - started, 1),
                         "still_connected": sum(1 for c in clients if c.connected)})
        elif command == "receipts":
            answers.put((receipts.first, receipts.all,
                         sum(1 for c in clients if c.connected)))
        elif command == "stop":
            await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
            answers.put("stopped")
            return


def _swarm_main(url: str, commands, answers) -> None:
    asyncio.run(_swarm(url, commands, answers))


class ClientSwarm:
    """Many asyncio Socket.IO clients in a child process, driven through queues."""

    def __init__(self, url: str):
        context = multiprocessing.get_context("spawn")
        self.commands, self.answers = context.Queue(), context.Queue()
        self.process = context.Process(target=_swarm_main,
                                       args=(url, self.commands, self.answers), daemon=True)
        self.process.start()

    def connect(self, users: list[dict]) -> dict:
        self.commands.put(("connect", users))
        return self.answers.get()

    def receipts(self) -> Receipts:
        self.commands.put(("receipts", None))
        receipts = Receipts()
        receipts.first, receipts.all, self.connected = self.answers.get()
        return receipts

    def close(self) -> None:
        self.commands.put(("stop", None))
        self.answers.get(timeout=300)
        self.process.join(timeout=30)


# -- scenarios ---------------------------------------------------------------------------------

def report_stream(app, url: str, reporters: list[dict], operator_id: int, grids: int,
                  rate: float, seconds: float) -> list[dict]:
    """Reports at ``rate``/s for ``seconds``; each filed and auto-dispatched here."""
    from gridmgr.cases.workflow import StepInput, take_step
    from gridmgr.dispatch.assign import auto_dispatch
    from gridmgr.people.models import User

    def one(n: int) -> dict:
        reporter = reporters[n % len(reporters)]
        lon, lat = grid_cell(random.randrange(grids))
        body = json.dumps({"lon": lon + CELL / 2, "lat": lat + CELL / 2, "category": "E0101",
                           "client_id": uuid.uuid4().hex}).encode()
        request = urllib.request.Request(
            url + "/api/v1/reports", data=body, method="POST",
            headers={"Content-Type": "application/json",
                     "Authorization": f"Bearer {reporter['token']}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        t201 = time.time()
        case_id = answer["case"]["id"]
        with app.app_context():
            take_step(case_id, "file", db.session.get(User, operator_id), StepInput())
            result = auto_dispatch(case_id)
            t_dispatch = time.time()
            db.session.remove()
        return {"case_id": case_id, "t201": t201, "t_dispatch": t_dispatch,
                "worker_id": result["worker_id"] if result else None}

    results, futures = [], []
    with ThreadPoolExecutor(max_workers=16) as pool:
        start = time.monotonic()
        for n in range(int(rate * seconds)):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(one, n))
        for future in futures:
            results.append(future.result())
    return results


def measure_reports(swarm: ClientSwarm, sent: list[dict], wait: float = 5.0) -> dict:
    time.sleep(wait)
    receipts = swarm.receipts()
    created, dispatched, end_to_end, missing = [], [], [], 0
    for item in sent:
        got_created = receipts.first.get(("case.created", item["case_id"], None))
        got = receipts.first.get(("case.dispatched", item["case_id"], item["worker_id"]))
        if got_created:
            created.append(max(got_created - item["t201"], 0.0))
        if got is None:
            missing += 1
            continue
        dispatched.append(max(got - item["t_dispatch"], 0.0))
        end_to_end.append(got - item["t201"])
    return {"created": summary(created), "dispatched": summary(dispatched),
            "report_to_dispatched": summary(end_to_end), "reports": len(sent),
            "missing_dispatched": missing}


def wall_fanout(app, swarm: ClientSwarm, city_id: int, walls: int, probes: int) -> dict:
    """An event to the city room every 0.2 s; commit → the last wall client's receipt."""
    from gridmgr.live import publish

    sent = []
    for n in range(probes):
        probe = f"wall-{uuid.uuid4().hex[:8]}"
        with app.app_context():
            publish("case.updated", {"probe": probe, "n": n}, [f"city:{city_id}"])
            db.session.commit()
            sent.append((probe, time.time()))
            db.session.remove()
        time.sleep(0.2)
    time.sleep(2)
    receipts = swarm.receipts()
    last, every, incomplete = [], [], 0
    for probe, committed in sent:
        got = receipts.all.get(("case.updated", probe), [])
        if len(got) < walls:
            incomplete += 1
        if got:
            last.append(max(got) - committed)
            every.extend(t - committed for t in got)
    return {"last_of_walls": summary(last), "each_receipt": summary(every),
            "probes": probes, "walls": walls, "probes_not_reaching_every_wall": incomplete}


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
    parser.add_argument("--api-process", choices=["same", "gunicorn"], default="same",
                        help="post the reports to the `gridmgr serve` process that holds the "
                        "clients (same) or to a separate `gunicorn -w N wsgi:app` (same "
                        "database; events reach the clients through the outbox)")
    parser.add_argument("--api-workers", type=int, default=2,
                        help="gunicorn sync workers with --api-process gunicorn")
    parser.add_argument("--out", help="default bench/results/live.json (threading) or "
                        "live_gevent.json; with --api-process gunicorn: live_gunicorn*.json")
    args = parser.parse_args()
    name = "live" if args.async_mode == "threading" else f"live_{args.async_mode}"
    if args.api_process == "gunicorn":
        name = name.replace("live", "live_gunicorn", 1)
    args.out = args.out or str(ROOT / "bench" / "results" / f"{name}.json")

    database_url, drop = scratch_database(args.admin_url)
    home = Path(f"/tmp/gridmgr-bench-{uuid.uuid4().hex[:6]}")
    app = create_app({"DATABASE_URL": database_url, "SQLALCHEMY_DATABASE_URI": database_url,
                      "GRIDMGR_HOME": str(home), "SECRET_KEY": SECRET,
                      "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 20, "max_overflow": 10}})
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "async_mode": args.async_mode},
               "api_process": args.api_process,
               "api_workers": args.api_workers if args.api_process == "gunicorn" else None,
               "rate_per_s": args.rate, "seconds": args.seconds, "runs": []}
    server = api = None
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
        server, url = start_server(database_url, home, args.async_mode)
        api_url = url
        if args.api_process == "gunicorn":
            api, api_url = start_api(database_url, home, args.api_workers)
        print(f"server {url} ({args.async_mode}); reports to {api_url} ({args.api_process}); "
              f"{grids} grids; {len(workers)} workers")
        swarm = ClientSwarm(url)
        connected = 0
        for count in sorted(args.clients):
            connecting = swarm.connect(workers[connected:count])
            connected = count
            print(f"{count:>6} clients: connect {connecting}")
            active_grids = count // WORKERS_PER_GRID
            before = server_stats(server.pid)
            clients_before = server_stats(swarm.process.pid)
            sent = report_stream(app, api_url, reporters, operator["id"], active_grids,
                                 args.rate, args.seconds)
            run = {"clients": count, "connect": connecting, **measure_reports(swarm, sent),
                   "connected_at_end": swarm.connected,
                   "load_average_1m": round(os.getloadavg()[0], 2),
                   "server": server_stats(server.pid),
                   "server_cpu_s_during_reports": None,
                   "api": server_stats(api.pid) if api is not None else None}
            clients_after = server_stats(swarm.process.pid)
            if clients_before and clients_after:
                run["client_process_cpu_s_during_reports"] = round(
                    clients_after["cpu_s"] - clients_before["cpu_s"], 1)
            if before and run["server"]:
                run["server_cpu_s_during_reports"] = round(
                    run["server"]["cpu_s"] - before["cpu_s"], 1)
            results["runs"].append(run)
            print(f"{count:>6} clients: dispatched p50 {run['dispatched'].get('p50_ms')} ms "
                  f"p99 {run['dispatched'].get('p99_ms')} ms; created (from 201) p50 "
                  f"{run['created'].get('p50_ms')} ms p99 {run['created'].get('p99_ms')} ms; "
                  f"report→dispatched p99 {run['report_to_dispatched'].get('p99_ms')} ms; "
                  f"missing {run['missing_dispatched']}; connected at end "
                  f"{run['connected_at_end']}; server {run['server']} "
                  f"(cpu during reports {run['server_cpu_s_during_reports']} s); "
                  f"load {run['load_average_1m']}")
            if count == min(args.clients):
                swarm.connect(walls)
                fan = wall_fanout(app, swarm, city["city_id"], args.walls, args.probes)
                results["wall_fanout"] = {**fan, "other_clients": count}
                print(f"wall fan-out to {args.walls} clients ({count} others connected): "
                      f"last receipt p50 {fan['last_of_walls'].get('p50_ms')} ms "
                      f"p99 {fan['last_of_walls'].get('p99_ms')} ms")
        swarm.close()
    finally:
        for process in (api, server):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
