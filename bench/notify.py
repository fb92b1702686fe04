"""Benchmark: what e-mail notifications cost the intake, and how soon a step's e-mail is sent.

Builds (once) the city of ``bench/intake.py`` (50,000 unit grids, ``--cases`` seeded cases) in
a database of its own (``BENCH_NOTIFY_DATABASE_URL``, else ``gridmgr_bench_notify``), serves
``wsgi:app`` under gunicorn (sync workers) as that benchmark does, and starts an SMTP server
(aiosmtpd) on loopback that notes when it accepted each message. Then, in one run:

1. **Throughput.** Anonymous app reports, each with its own contact e-mail, posted by
   ``--connections`` client threads for ``--seconds`` per turn, while an inspector verifies
   and a duty chief files ``--file-rate`` of the new cases per second through the API (a
   report's own intake sends nothing: its reporter hears first when it is filed). Three
   conditions in alternating turns (``--rounds``, the order rotated each round), so that the
   shared machine's changes of speed fall on each alike:

   - ``on``: ``gridmgr worker`` running with ``GRIDMGR_SMTP_URL`` at the sink;
   - ``off``: ``gridmgr worker`` running with no SMTP server and no messages configured
     (a city without notifications still runs the worker for its clocks);
   - ``no_worker``: no worker at all (what the worker, jobs and fan-out, costs the intake).

   Each condition's rate is of its turns' totals; the aim is ``on`` no more than 5 % below
   ``off``. The filings' e-mails during the ``on`` turns give the latency under that load.
2. **Latency.** ``--samples`` reports, each verified and filed through the API at once,
   paced ``--interval`` apart, with the worker ``on`` and no other load: the time from
   sending the filing to the sink's acceptance of its reporter's e-mail (aim: p95 ≤ 2 s).

Prints the figures and appends them to ``bench/results/notify.json``.

    .venv/bin/python bench/notify.py --cases 20000
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
from aiosmtpd.controller import Controller
from intake import (
    CATEGORIES,
    EAST,
    NORTH,
    SOUTH,
    WEST,
    bench_app,
    ensure_database,
    free_port,
    plain,
    prepare,
    process_cpu,
    serve,
    stop,
)
from record import record

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/gridmgr_bench_notify"
GRIDMGR = str(ROOT / ".venv" / "bin" / "gridmgr")
CONDITIONS = ("on", "off", "no_worker")


class Sink:
    """An SMTP server on loopback that notes when it accepted a message for each address."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        now = time.monotonic()
        with self._lock:
            for address in envelope.rcpt_tos:
                self.accepted.setdefault(address, []).append(now)
        return "250 OK"

    def first(self, address: str) -> float | None:
        with self._lock:
            times = self.accepted.get(address)
            return times[0] if times else None

    def total(self) -> int:
        with self._lock:
            return sum(len(t) for t in self.accepted.values())

    def __enter__(self) -> Sink:
        self._controller.start()
        return self

    def __exit__(self, *_) -> None:
        self._controller.stop()


def start_worker(url: str, home: str, condition: str, smtp_url: str) -> subprocess.Popen:
    """``gridmgr worker`` with notifications by e-mail (``on``) or none (``off``)."""
    env = {**os.environ, "DATABASE_URL": url, "GRIDMGR_HOME": home, "PYTHONPATH": str(ROOT),
           "GRIDMGR_PUBLIC_URL": "https://city.example", "GRIDMGR_WEB_PUSH": "0"}
    env.pop("GRIDMGR_SMTP_URL", None)
    env.pop("GRIDMGR_SMS_GATEWAY_URL", None)
    if condition == "on":
        env["GRIDMGR_SMTP_URL"] = smtp_url
    else:
        env["GRIDMGR_NOTIFY_REPORTERS"] = ""
        env["GRIDMGR_NOTIFY_STAFF"] = ""
    proc = subprocess.Popen([GRIDMGR, "worker"], env=env, cwd=str(ROOT), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    line = proc.stdout.readline()  # printed once the app is made and the loops start
    if "worker started" not in line:
        stop(proc)
        raise RuntimeError(f"gridmgr worker did not start: {line!r}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain
    return proc


def caught_up(url: str) -> bool:
    """Whether the worker has fanned out every outbox event, sent what is due and run its due
    jobs."""
    with psycopg2.connect(plain(url)) as conn, conn.cursor() as cur:
        cur.execute("""SELECT (SELECT coalesce(max(id), 0) FROM live_events)
                              <= coalesce((SELECT max(id) FROM live_events
                                           WHERE seq <= (SELECT seq FROM notify_cursor
                                                         WHERE name = 'outbox')), 0)
                          AND NOT EXISTS (SELECT FROM notifications
                                          WHERE state = 'pending' AND next_at <= now())
                          AND NOT EXISTS (SELECT FROM dispatch_jobs
                                          WHERE state = 'pending' AND run_at <= now())""")
        return bool(cur.fetchone()[0])


def settle(url: str, worker: subprocess.Popen, limit: float = 900) -> float:
    """Wait until the running worker has caught up and is idle (under a tenth of a core for
    two seconds); the seconds it took. The seeded cases' clocks and acknowledgement timeouts
    fall due at the worker's first start on a new database: thousands of jobs, run once."""
    started = time.monotonic()
    last = process_cpu(worker.pid)
    while time.monotonic() - started < limit:
        time.sleep(2)
        used, last = process_cpu(worker.pid) - last, process_cpu(worker.pid)
        if used < 0.2 and caught_up(url):
            break
    return round(time.monotonic() - started, 1)


def stop_worker(worker: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if a long job pass has not noticed it within a minute."""
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)


def report_body(client_id: str, address: str) -> dict:
    return {"lon": round(WEST + random.random() * (EAST - WEST), 6),
            "lat": round(SOUTH + random.random() * (NORTH - SOUTH), 6),
            "category": random.choice(CATEGORIES), "channel": "app", "client_id": client_id,
            "description": "bench", "contact_email": address}


def post(conn: http.client.HTTPConnection, path: str, body: dict,
         headers: dict | None = None) -> tuple[int, bytes]:
    conn.request("POST", path, json.dumps(body).encode(),
                 {"Content-Type": "application/json", **(headers or {})})
    answer = conn.getresponse()
    return answer.status, answer.read()


def verify(conn: http.client.HTTPConnection, staff: dict, case_id: int, report: dict) -> int:
    """The inspector's on-site verification that a citizen's report must have to be filed."""
    status, _ = post(conn, f"/api/v1/cases/{case_id}/verify",
                     {"lon": report["lon"], "lat": report["lat"]}, staff["inspector"])
    return status


def file_case(conn: http.client.HTTPConnection, staff: dict, case_id: int) -> int:
    status, _ = post(conn, f"/api/v1/cases/{case_id}/file", {}, staff["chief"])
    return status


def load_turn(port: int, seconds: float, connections: int, prefix: str, staff: dict,
              file_rate: float) -> dict:
    """Reports from ``connections`` threads for ``seconds``; meanwhile ``file_rate`` of the new
    cases a second are verified and filed. The count, the rate, the latencies and the filings
    (address, time sent, status)."""
    deadline = time.monotonic() + seconds
    new_cases: queue.Queue = queue.Queue()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def reporter(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, codes = [], {}
        for k in itertools.count():
            if time.monotonic() >= deadline:
                break
            address = f"{prefix}-{n}-{k}@bench.example"
            started = time.perf_counter()
            report = report_body(f"{prefix}-{n}-{k}", address)
            status, body = post(conn, "/api/v1/reports", report)
            mine.append(time.perf_counter() - started)
            codes[status] = codes.get(status, 0) + 1
            if status == 201:
                new_cases.put((json.loads(body)["case"]["id"], address, report))
        conn.close()
        with lock:
            latencies.extend(mine)
            for status, count in codes.items():
                statuses[status] = statuses.get(status, 0) + count

    filings: list[tuple[str, float, int]] = []

    def filer() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        period, next_at = 1.0 / file_rate, time.monotonic() + 1.0
        while next_at < deadline:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += period
            try:
                case_id, address, report = new_cases.get_nowait()
            except queue.Empty:
                continue
            while True:  # the newest: as an operator works through what just came in
                try:
                    case_id, address, report = new_cases.get_nowait()
                except queue.Empty:
                    break
            if verify(conn, staff, case_id, report) != 200:
                filings.append((address, time.monotonic(), 0))
                continue
            sent = time.monotonic()
            filings.append((address, sent, file_case(conn, staff, case_id)))
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=reporter, args=(n,)) for n in range(connections)]
    if file_rate > 0:
        threads.append(threading.Thread(target=filer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {"requests": len(latencies), "seconds": round(elapsed, 3),
            "rate": round(len(latencies) / elapsed, 1),
            "p50_ms": round(1000 * statistics.median(latencies), 1),
            "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "filings": filings}


def percentiles(samples: list[float]) -> dict:
    if not samples:
        return {"n": 0}
    samples = sorted(samples)
    return {"n": len(samples), "p50_ms": round(1000 * statistics.median(samples), 1),
            "p95_ms": round(1000 * samples[int(0.95 * (len(samples) - 1))], 1),
            "max_ms": round(1000 * samples[-1], 1)}


def email_delays(sink: Sink, filings: list[tuple[str, float, int]],
                 wait: float = 60) -> tuple[list[float], int]:
    """Sending each accepted filing → its reporter's e-mail accepted; and how many never came."""
    filed = [(address, sent) for address, sent, status in filings if status == 200]
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(sink.first(a) is None for a, _ in filed):
        time.sleep(0.2)
    delays = [sink.first(a) - sent for a, sent in filed if sink.first(a) is not None]
    return delays, len(filed) - len(delays)


def latency_samples(port: int, staff: dict, samples: int, interval: float,
                    prefix: str) -> tuple[list[tuple[str, float, int]], list[float]]:
    """``samples`` reports, each verified and filed at once, started ``interval`` apart."""
    filings, step_seconds = [], []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    next_at = time.monotonic()
    for n in range(samples):
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += interval
        address = f"{prefix}-{n}@bench.example"
        report = report_body(f"{prefix}-{n}", address)
        status, body = post(conn, "/api/v1/reports", report)
        case_id = json.loads(body)["case"]["id"] if status == 201 else None
        if case_id is None or verify(conn, staff, case_id, report) != 200:
            filings.append((address, time.monotonic(), status))
            continue
        sent = time.monotonic()
        status = file_case(conn, staff, case_id)
        step_seconds.append(time.monotonic() - sent)
        filings.append((address, sent, status))
    conn.close()
    return filings, step_seconds


def forget_earlier_messages(url: str) -> None:
    """The messages of earlier runs: their cases are about to be removed (without triggers)."""
    with psycopg2.connect(plain(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('notifications') IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute("DELETE FROM notifications")
            cur.execute("DELETE FROM notify_optouts")


def staff_headers(url: str, home: str) -> dict:
    """Bearer tokens of the district's inspector (verifies) and duty chief (files)."""
    from gridmgr.extensions import db
    from gridmgr.people.models import User
    from gridmgr.people.passwords import hash_password
    from gridmgr.people.tokens import issue_tokens

    headers = {}
    with bench_app(url, Path(home)).app_context():
        district = db.session.execute(db.text(
            "SELECT id, city_id FROM regions WHERE level = 'district'")).one()
        for role, name in (("inspector", "inspector"), ("duty_chief", "chief")):
            user = db.session.scalar(db.select(User).where(User.username == f"bench-{name}"))
            if user is None:
                user = User(username=f"bench-{name}", role=role, region_id=district.id,
                            city_id=district.city_id, password_hash=hash_password("bench-pass-1"))
                db.session.add(user)
                db.session.commit()
            headers[name] = {"Authorization": f"Bearer {issue_tokens(user)['access_token']}"}
    return headers


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=15, help="length of each turn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=10,
                        help="unmeasured seconds of reports before the first turn")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--file-rate", type=float, default=4,
                        help="filings a second during each turn (each tells its reporter)")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.25,
                        help="seconds between the latency samples' starts")
    args = parser.parse_args()
    url = os.environ.get("BENCH_NOTIFY_DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    forget_earlier_messages(url)
    setup = prepare(url, args.cases)
    home = setup["home"]
    staff = staff_headers(url, home)
    run = f"n{int(time.time())}"
    print(f"database: {setup['grids']:,} unit grids, {setup['cases_before']:,} cases", flush=True)

    with Sink() as sink:
        smtp_url = f"smtp://127.0.0.1:{sink.port}"
        app, port = serve("wsgi:app", url, home, args.workers)
        worker = None
        try:
            worker = start_worker(url, home, "on", smtp_url)
            print(f"worker caught up in {settle(url, worker)} s", flush=True)
            load_turn(port, args.warmup, args.connections, f"{run}-warm", staff, args.file_rate)
            settle(url, worker)
            stop_worker(worker)
            worker = None
            turns: dict[str, list[dict]] = {c: [] for c in CONDITIONS}
            for n in range(args.rounds):
                for condition in CONDITIONS[n % 3:] + CONDITIONS[:n % 3]:
                    if condition != "no_worker":
                        worker = start_worker(url, home, condition, smtp_url)
                        settle(url, worker)
                    cpu_before = process_cpu(worker.pid) if worker else 0.0
                    mails_before = sink.total()
                    turn = load_turn(port, args.seconds, args.connections,
                                     f"{run}-{condition}{n}", staff, args.file_rate)
                    turn["worker_cpu_s"] = round(
                        (process_cpu(worker.pid) if worker else 0.0) - cpu_before, 2)
                    if worker:
                        turn["caught_up_after_s"] = settle(url, worker)
                        stop_worker(worker)
                        worker = None
                    turn["emails"] = sink.total() - mails_before
                    turns[condition].append(turn)
                    print(f"  round {n + 1} {condition:>9}: {turn['rate']:.0f} reports/s "
                          f"(p50 {turn['p50_ms']} ms), {len(turn['filings'])} filings, "
                          f"{turn['emails']} e-mails, worker {turn['worker_cpu_s']} CPU s",
                          flush=True)

            worker = start_worker(url, home, "on", smtp_url)
            settle(url, worker)
            filings, step_seconds = latency_samples(port, staff, args.samples, args.interval,
                                                    f"{run}-lat")
            delays, missing = email_delays(sink, filings)
        finally:
            if worker is not None:
                stop_worker(worker)
            stop(app)
        loaded_delays, loaded_missing = email_delays(
            sink, [f for t in turns["on"] for f in t["filings"]], wait=0)

    combined = {}
    for condition, its in turns.items():
        requests = sum(t["requests"] for t in its)
        seconds = sum(t["seconds"] for t in its)
        combined[condition] = {
            "rate": round(requests / seconds, 1), "requests": requests,
            "turns": [t["rate"] for t in its],
            "p50_ms": sorted(t["p50_ms"] for t in its)[len(its) // 2],
            "p99_ms": max(t["p99_ms"] for t in its),
            "filings": sum(len(t["filings"]) for t in its),
            "filed_200": sum(1 for t in its for f in t["filings"] if f[2] == 200),
            "emails": sum(t["emails"] for t in its),
            "server_errors": sum(n for t in its for s, n in t["statuses"].items() if s >= "500"),
            "worker_cpu_ms_per_report": round(
                1000 * sum(t["worker_cpu_s"] for t in its) / max(requests, 1), 3)}
    on, off, idle = combined["on"]["rate"], combined["off"]["rate"], combined["no_worker"]["rate"]
    result = {
        "setup": {k: v for k, v in setup.items() if k != "home"},
        "server": f"gunicorn -w {args.workers} -k sync",
        "load": f"{args.connections} client threads (Python), {args.warmup:g} s unmeasured, "
                f"then {args.rounds} rounds of {args.seconds:g} s per condition; "
                f"{args.file_rate:g} filings/s",
        "throughput": combined,
        "on_vs_off": round(on / off, 3),
        "on_vs_off_per_round": [round(a["rate"] / b["rate"], 3)
                                for a, b in zip(turns["on"], turns["off"], strict=True)],
        "off_vs_no_worker": round(off / idle, 3),
        "step_to_email": {**percentiles(delays), "missing": missing,
                          "interval_s": args.interval},
        "step_answer": percentiles(step_seconds),
        "step_to_email_under_load": {**percentiles(loaded_delays), "missing": loaded_missing},
    }
    print(json.dumps(result, indent=2))
    latency = result["step_to_email"]
    loaded = result["step_to_email_under_load"]
    print(f"\nreports/s: on {on:.0f} · off {off:.0f} · no worker {idle:.0f} · on/off "
          f"{result['on_vs_off']:.1%} (rounds: "
          f"{', '.join(f'{r:.0%}' for r in result['on_vs_off_per_round'])}) · "
          f"{combined['on']['emails']} e-mails in the on turns\n"
          f"filing → e-mail accepted: p50 {latency.get('p50_ms')} ms, p95 "
          f"{latency.get('p95_ms')} ms, max {latency.get('max_ms')} ms "
          f"({latency['n']} of {args.samples}); under the intake's load: p95 "
          f"{loaded.get('p95_ms')} ms ({loaded['n']} e-mails, {loaded['missing']} missing)")
    record("notify", result)
    return result


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
