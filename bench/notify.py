"""Benchmark: what e-mail notifications cost the intake, and how soon a step's e-mail is sent.

Builds (once) the city of ``bench/intake.py`` (50,000 unit grids, ``--cases`` seeded cases) in
a database of its own (``BENCH_NOTIFY_DATABASE_URL``, else ``gridmgr_bench_notify``), serves
``wsgi:app`` under gunicorn (sync workers) as that benchmark does, and starts an SMTP server
(aiosmtpd) on loopback that notes when it accepted each message. Then, in one run:

1. **Throughput.** Anonymous app reports, each with its own contact e-mail, posted by
   ``--connections`` client threads for ``--seconds`` per turn, while a duty chief files
   ``--file-rate`` of the new cases per second through the API (a report's own intake sends
   nothing: its reporter hears first when it is filed). Three conditions in alternating turns
   (``--rounds``, the order rotated each round), so that the shared machine's changes of speed
   fall on each alike:

   - ``on``: ``gridmgr worker`` running with ``GRIDMGR_SMTP_URL`` at the sink;
   - ``off``: ``gridmgr worker`` running with no SMTP server and no messages configured
     (a city without notifications still runs the worker for its clocks);
   - ``no_worker``: no worker at all (what the delivery loop's fan-out costs by itself).

   Each condition's rate is of its turns' totals; the aim is ``on`` no more than 5 % below
   ``off``. The filings' e-mails during the ``on`` turns give the latency under that load.
2. **Latency.** ``--samples`` reports, each filed through the API at once, paced
   ``--interval`` apart, with the worker ``on`` and no other load: the time from sending the
   filing to the sink's acceptance of its reporter's e-mail (aim: p95 ≤ 2 s).

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
    """Whether the delivery loop has fanned out every outbox event and sent what is due."""
    with psycopg2.connect(plain(url)) as conn, conn.cursor() as cur:
        cur.execute("""SELECT (SELECT coalesce(max(seq), 0) FROM live_events)
                              <= (SELECT seq FROM notify_cursor WHERE name = 'outbox')
                          AND NOT EXISTS (SELECT FROM notifications
                                          WHERE state = 'pending' AND next_at <= now())""")
        return bool(cur.fetchone()[0])


def settle(url: str, limit: float = 180) -> float:
    """Wait until the running worker has caught up; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            if caught_up(url):
                break
        except psycopg2.Error:  # the worker's migration-made rows may not exist yet
            pass
        time.sleep(0.5)
    return round(time.monotonic() - started, 1)


def report_body(client_id: str, address: str) -> bytes:
    return json.dumps({
        "lon": round(WEST + random.random() * (EAST - WEST), 6),
        "lat": round(SOUTH + random.random() * (NORTH - SOUTH), 6),
        "category": random.choice(CATEGORIES), "channel": "app", "client_id": client_id,
        "description": "bench", "contact_email": address}).encode()


def post(conn: http.client.HTTPConnection, path: str, body: bytes,
         headers: dict | None = None) -> tuple[int, bytes]:
    conn.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})})
    answer = conn.getresponse()
    return answer.status, answer.read()


def file_case(conn: http.client.HTTPConnection, chief: dict, case_id: int) -> int:
    status, _ = post(conn, f"/api/v1/cases/{case_id}/file", b"{}", chief)
    return status


def load_turn(port: int, seconds: float, connections: int, prefix: str, chief: dict,
              file_rate: float) -> dict:
    """Reports from ``connections`` threads for ``seconds``; meanwhile ``file_rate`` of the new
    cases a second are filed. The count, the rate, latencies and the filings (address, time)."""
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
            status, body = post(conn, "/api/v1/reports", report_body(f"{prefix}-{n}-{k}", address))
            mine.append(time.perf_counter() - started)
            codes[status] = codes.get(status, 0) + 1
            if status == 201:
                new_cases.put((json.loads(body)["case"]["id"], address))
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
                case_id, address = new_cases.get_nowait()
            except queue.Empty:
                continue
            while True:  # the newest: as an operator works through what just came in
                try:
                    case_id, address = new_cases.get_nowait()
                except queue.Empty:
                    break
            sent = time.monotonic()
            filings.append((address, sent, file_case(conn, chief, case_id)))
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


def latency_samples(port: int, chief: dict, samples: int, interval: float,
                    prefix: str) -> tuple[list[tuple[str, float, int]], list[float]]:
    """``samples`` reports, each filed at once, started ``interval`` apart."""
    filings, step_seconds = [], []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    next_at = time.monotonic()
    for n in range(samples):
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += interval
        address = f"{prefix}-{n}@bench.example"
        status, body = post(conn, "/api/v1/reports", report_body(f"{prefix}-{n}", address))
        if status != 201:
            filings.append((address, time.monotonic(), status))
            continue
        sent = time.monotonic()
        status = file_case(conn, chief, json.loads(body)["case"]["id"])
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


def chief_headers(url: str, home: str) -> dict:
    """A city-wide duty chief's bearer token (the bench's operator who files)."""
    from gridmgr.extensions import db
    from gridmgr.people.models import User
    from gridmgr.people.passwords import hash_password
    from gridmgr.people.tokens import issue_tokens

    with bench_app(url, Path(home)).app_context():
        chief = db.session.scalar(db.select(User).where(User.username == "bench-notify-chief"))
        if chief is None:
            chief = User(username="bench-notify-chief", role="duty_chief",
                         password_hash=hash_password("bench-pass-1"),
                         city_id=db.session.scalar(db.text("SELECT id FROM cities LIMIT 1")))
            db.session.add(chief)
            db.session.commit()
        return {"Authorization": f"Bearer {issue_tokens(chief)['access_token']}"}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=15, help="length of each turn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=10,
                        help="unmeasured seconds of reports before the first turn")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--file-rate", type=float, default=10,
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
    chief = chief_headers(url, home)
    run = f"n{int(time.time())}"
    print(f"database: {setup['grids']:,} unit grids, {setup['cases_before']:,} cases", flush=True)

    with Sink() as sink:
        smtp_url = f"smtp://127.0.0.1:{sink.port}"
        app, port = serve("wsgi:app", url, home, args.workers)
        worker = None
        try:
            worker = start_worker(url, home, "on", smtp_url)
            print(f"worker caught up in {settle(url)} s", flush=True)
            load_turn(port, args.warmup, args.connections, f"{run}-warm", chief, args.file_rate)
            settle(url)
            stop(worker)
            worker = None
            turns: dict[str, list[dict]] = {c: [] for c in CONDITIONS}
            for n in range(args.rounds):
                for condition in CONDITIONS[n % 3:] + CONDITIONS[:n % 3]:
                    if condition != "no_worker":
                        worker = start_worker(url, home, condition, smtp_url)
                        settle(url)
                    cpu_before = process_cpu(worker.pid) if worker else 0.0
                    mails_before = sink.total()
                    turn = load_turn(port, args.seconds, args.connections,
                                     f"{run}-{condition}{n}", chief, args.file_rate)
                    turn["worker_cpu_s"] = round(
                        (process_cpu(worker.pid) if worker else 0.0) - cpu_before, 2)
                    if worker:
                        turn["caught_up_after_s"] = settle(url)
                        stop(worker)
                        worker = None
                    turn["emails"] = sink.total() - mails_before
                    turns[condition].append(turn)
                    print(f"  round {n + 1} {condition:>9}: {turn['rate']:.0f} reports/s "
                          f"(p50 {turn['p50_ms']} ms), {len(turn['filings'])} filings, "
                          f"{turn['emails']} e-mails, worker {turn['worker_cpu_s']} CPU s",
                          flush=True)

            worker = start_worker(url, home, "on", smtp_url)
            settle(url)
            filings, step_seconds = latency_samples(port, chief, args.samples, args.interval,
                                                    f"{run}-lat")
            delays, missing = email_delays(sink, filings)
        finally:
            if worker is not None:
                stop(worker)
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
