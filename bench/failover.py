"""Benchmark: failovers of the highly available cluster under load, and what synchronous
replication costs the intake.

1. ``gridmgr cluster up --servers`` under a temporary GRIDMGR_HOME (or ``--home``), a small
   city, then ``--kills`` times: eight phones report through HAProxy's HTTP entry point, a
   wall listens on ``/live``, the primary's PostgreSQL is killed with SIGKILL; the write outage
   is the longest time from the kill to a phone's first answer after its last refusal. After
   each kill, read on the new primary directly: reports answered 201/200 and missing (lost),
   client_ids stored more than once (duplicated), cases reported whose ``case.created`` the
   wall never got (events lost).
2. Reports per second of the intake (the app in this process, ``--threads`` clients posting
   one report after another) against the cluster's primary entry point (a commit waits for the
   synchronous standby) and against one plain PostgreSQL (``--plain-url``, a database of its
   own), in alternating turns of ``--seconds``.

Prints the figures and writes ``bench/results/failover.json``.

    .venv/bin/python bench/failover.py --kills 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg2
from record import record

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from cityfixtures import build_city  # noqa: E402
from live_server import LiveClient  # noqa: E402
from test_cluster_failover import (  # noqa: E402
    PHONES,
    SECRET_KEY,
    Phone,
    cluster_status,
    leader,
    operator_token,
    report_body,
    wait_for_sync_standby,
    wait_until,
)

from gridmgr import create_app  # noqa: E402
from gridmgr.extensions import db  # noqa: E402

GRIDMGR = str(Path(sys.executable).parent / "gridmgr")
PLAIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/gridmgr_bench_plain"


def gridmgr_cluster(home: Path, *args: str) -> None:
    env = {**os.environ, "GRIDMGR_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    subprocess.run([GRIDMGR, "cluster", *args], env=env, check=True, capture_output=True,
                   timeout=600)


def city_app(url: str, home: Path):
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                      "GRIDMGR_HOME": str(home), "RATELIMIT_ENABLED": False,
                      "SECRET_KEY": SECRET_KEY})
    return app


def add_wall_user(app) -> None:
    from gridmgr.grids.models import City
    from gridmgr.people.models import User
    from gridmgr.people.passwords import hash_password

    with app.app_context():
        city = db.session.scalar(db.select(City))
        db.session.add(User(username="wall", role="operator", city_id=city.id, is_active=True,
                            password_hash=hash_password("pw-secret-123")))
        db.session.commit()
        db.session.remove()


def one_failover(home: Path, app, number: int) -> dict:
    """Kill the primary while eight phones report and a wall listens; the figures."""
    before = wait_for_sync_standby(home, timeout=120)
    base = before["entry_points"]["http"]
    wall = LiveClient(base, operator_token(app, "wall"))
    stop = threading.Event()
    phones = [Phone(n + 100 * number, base, stop) for n in range(PHONES)]
    for phone in phones:
        phone.start()
    try:
        wait_until("phones answered", lambda: all(len(p.answered) >= 3 for p in phones), 60)
        os.kill(leader(before)["postgres_pid"], signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until("writes back", lambda: all(
            p.refusals and p.successes[-1] > p.refusals[-1][0] for p in phones), 120)
        outage = max(next(t for t in p.successes if t > p.refusals[-1][0])
                     for p in phones) - killed_at
        time.sleep(2)
    finally:
        stop.set()
        for phone in phones:
            phone.join(timeout=30)
    answered = {cid: case for p in phones for cid, case in p.answered.items()}
    told = lambda: {e["id"] for e in wall.named("case.created")}  # noqa: E731
    with contextlib.suppress(AssertionError):  # what is missing is counted below
        wait_until("the wall told", lambda: set(answered.values()) <= told(), 30)
    wall.close()
    new = leader(cluster_status(home))
    conn = psycopg2.connect(host="127.0.0.1", port=new["port"], dbname="gridmgr",
                            user="gridmgr")
    with conn, conn.cursor() as cur:
        cur.execute("SELECT r.client_id, count(*) FROM reports r WHERE r.client_id = ANY(%s) "
                    "GROUP BY r.client_id", (list(answered),))
        stored = dict(cur.fetchall())
    conn.close()
    resends = [r for p in phones for r in p.resends]
    return {
        "outage_s": round(outage, 2),
        "reports_answered": len(answered),
        "reports_lost": sum(1 for cid in answered if cid not in stored),
        "reports_duplicated": sum(1 for count in stored.values() if count > 1),
        "resends_given_another_case": sum(1 for cid, status, case in resends
                                          if (status, case) != (200, answered[cid])),
        "events_lost": len(set(answered.values()) - told()),
        "refusals": sum(len(p.refusals) for p in phones),
        "failures_4xx_500": sum(len(p.failures) for p in phones),
    }


def intake_rate(app, seconds: float, threads: int, label: str) -> float:
    """Reports per second stored by ``threads`` clients, each one report after another."""
    stop = threading.Event()
    counts = [0] * threads

    def client(n: int) -> None:
        test_client = app.test_client()
        k = 0
        while not stop.is_set():
            answer = test_client.post("/api/v1/reports",
                                      json=report_body(f"{label}-{time.time_ns()}-{n}-{k}"))
            if answer.status_code == 201:
                counts[n] += 1
            k += 1

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - start)


def plain_database(url: str) -> None:
    """A fresh database for the plain node, migrated, with the same small city."""
    name = url.rsplit("/", 1)[1]
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=name)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        cur.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--plain-url", default=PLAIN_URL)
    parser.add_argument("--home", type=Path, help="a cluster folder to reuse (kept)")
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="gridmgr-bench-cluster-"))
    home.chmod(0o755)
    (home / "config.py").write_text(f"SECRET_KEY = {SECRET_KEY!r}\nRATELIMIT_ENABLED = False\n"
                                    "GRIDMGR_LIVE_POLL_SECONDS = 0.5\n")
    try:
        started = time.monotonic()
        gridmgr_cluster(home, "up", "--servers")
        print(f"cluster up in {time.monotonic() - started:.0f} s")
        primary = cluster_status(home)["entry_points"]["primary"].replace(
            "postgresql://", "postgresql+psycopg2://") + "?connect_timeout=2"
        app = city_app(primary, home)
        with app.app_context():
            build_city()
            db.session.remove()
        add_wall_user(app)

        kills = []
        for number in range(args.kills):
            figures = one_failover(home, app, number)
            print(f"kill {number + 1}: {json.dumps(figures)}")
            kills.append(figures)

        # The cost of the synchronous standby: the same intake against one plain node.
        wait_for_sync_standby(home, timeout=120)
        plain_database(args.plain_url)
        subprocess.run([GRIDMGR, "db", "upgrade"], check=True, capture_output=True,
                       env={**os.environ, "DATABASE_URL": args.plain_url,
                            "GRIDMGR_HOME": str(home)})
        plain = city_app(args.plain_url, home)
        with plain.app_context():
            build_city()
            db.session.remove()
        rates: dict[str, list[float]] = {"cluster": [], "plain": []}
        for _ in range(args.rounds):
            for label, target in (("cluster", app), ("plain", plain)):
                rate = intake_rate(target, args.seconds, args.threads, label)
                rates[label].append(round(rate, 1))
                print(f"{label}: {rate:.1f} reports/s")
        cluster_rate, plain_rate = (statistics.mean(rates[k]) for k in ("cluster", "plain"))
        figures = {
            "kills": len(kills),
            "outage_s": [k["outage_s"] for k in kills],
            "outage_max_s": max(k["outage_s"] for k in kills),
            "reports_answered": sum(k["reports_answered"] for k in kills),
            "reports_lost": sum(k["reports_lost"] for k in kills),
            "reports_duplicated": sum(k["reports_duplicated"] for k in kills),
            "resends_given_another_case": sum(k["resends_given_another_case"] for k in kills),
            "events_lost": sum(k["events_lost"] for k in kills),
            "failures_4xx_500": sum(k["failures_4xx_500"] for k in kills),
            "intake_threads": args.threads, "intake_turn_s": args.seconds,
            "intake_cluster_per_s": round(cluster_rate, 1),
            "intake_plain_per_s": round(plain_rate, 1),
            "intake_cluster_vs_plain": round(cluster_rate / plain_rate, 2),
            "intake_turns": rates,
        }
        print(json.dumps(figures, indent=2))
        record("failover", figures)
        with app.app_context():
            db.engine.dispose()
        with plain.app_context():
            db.engine.dispose()
    finally:
        if not args.home:
            gridmgr_cluster(home, "down")
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
