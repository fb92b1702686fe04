"""Benchmark: a new report to its row on an open operator queue page, in headless Chromium.

On the database ``bench/intake.py`` builds (50,000 unit grids, ``--cases`` cases), serves
gridmgr as ``gridmgr serve`` does (the app, the ``/live`` channel and the relay of committed
events), opens the operator's queue (``/workbench/operator``) in Debian's Chromium through
Playwright, signed in through the staff sign-in, and posts reports one at a time through
``POST /api/v1/reports``; each figure is the time from the 201 to the report's row being in
the page (the live event, the page's refresh of its rows, the queue's query with every
report's possible duplicates, the rows drawn). Each run starts from the seeded cases alone
(``prepare`` removes what earlier runs added).

The queue lists the 100 oldest waiting reports, and the seeded city has a hundred thousand
waiting: the operator here is scoped to one unit grid, whose few waiting reports leave room
for the new ones. The queue's query still runs on the whole table of cases.

Prints p50/p95 and writes ``bench/results/workbench_live.json``.

    .venv/bin/python bench/workbench_live.py --cases 1000000 --reports 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cases import user  # noqa: E402
from intake import bench_app, database_url, prepare  # noqa: E402
from record import record  # noqa: E402
from wall import CHROMIUM, CHROMIUM_FLAGS, wait_until  # noqa: E402

from gridmgr.extensions import db  # noqa: E402

SECRET = "bench-secret-key-of-sufficient-length-0123456789"
PASSWORD = "bench-pass-1"


def serve(url: str, home: Path) -> tuple[subprocess.Popen, str]:
    """``gridmgr serve`` on a free port, the intake's limit out of the way of the reports."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": SECRET, "GRIDMGR_HOME": str(home),
           "GRIDMGR_INTAKE_RATE_LIMIT": "100000 per minute"}
    env.pop("REDIS_URL", None)
    log = open(home / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gridmgr"), "serve",
                                "--port", str(port)], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(base + "/workbench/login", timeout=1).close()
            return process, base
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not start; see " + str(home / "server.log"))


def post_report(base: str, token: str, lon: float, lat: float) -> tuple[int, float]:
    """The new case's id and the moment its 201 arrived."""
    body = json.dumps({"lon": lon, "lat": lat, "category": "C0101", "description": "井盖缺失",
                       "client_id": uuid.uuid4().hex}).encode()
    request = urllib.request.Request(base + "/api/v1/reports", data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answered = time.perf_counter()
        assert response.status == 201, response.status
        return json.loads(response.read())["case"]["id"], answered


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--reports", type=int, default=50)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from gridmgr.people.tokens import encode_token

    url = database_url()
    setup = prepare(url, args.cases)
    app = bench_app(url, Path(setup["home"]))
    with app.app_context():
        grid = db.session.execute(db.text("""
            SELECT code, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
            FROM regions WHERE level = 'grid' ORDER BY code LIMIT 1 OFFSET 12345""")).one()
        user("operator", "bench-live-operator", region_code=grid.code)
        inspector = user("inspector", "bench-live-inspector", region_code=grid.code)
        token = encode_token(inspector, "access", lifetime=3600)
        waiting = db.session.scalar(db.text(
            "SELECT count(*) FROM cases WHERE state IN ('reported', 'verified') "
            "AND grid_code = :grid"), {"grid": grid.code})
        cases = db.session.scalar(db.text("SELECT count(*) FROM cases"))
        db.session.commit()
    if waiting + args.reports > 100:
        raise SystemExit(f"grid {grid.code} already has {waiting} waiting reports")
    home = Path(tempfile.mkdtemp(prefix="gridmgr-bench-workbench-live-"))
    server, base = serve(url, home)
    delays = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(base + "/workbench/login?next=/workbench/operator")
            page.fill("input[name=username]", "bench-live-operator")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("table.cases", timeout=60_000)
            wait_until(page, "!!(window.workbenchLive && window.workbenchLive.connected)", 30)
            for n in range(args.reports):
                # Spread over the grid's cell, a few metres apart.
                lon = grid.lon + (n % 7 - 3) * 0.00008
                lat = grid.lat + (n // 7 % 7 - 3) * 0.00006
                case_id, answered = post_report(base, token, lon, lat)
                page.wait_for_selector(f"tr[data-case='{case_id}']", state="attached",
                                       timeout=30_000)
                delays.append(time.perf_counter() - answered)
                time.sleep(0.3)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    ordered = sorted(delays)
    figures = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_1min": round(os.getloadavg()[0], 1)},
               "grids": setup["grids"], "cases": cases, "reports": len(ordered),
               "operator_scope": grid.code, "waiting_before": waiting,
               "report_to_row": {
                   "p50_ms": round(statistics.median(ordered) * 1000),
                   "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000),
                   "max_ms": round(ordered[-1] * 1000)}}
    record("workbench_live", figures)
    row = figures["report_to_row"]
    print(f"{cases:,} cases: report 201 → row on the operator's queue page: p50 {row['p50_ms']} "
          f"ms, p95 {row['p95_ms']} ms, max {row['max_ms']} ms ({len(ordered)} reports)")
    return figures


if __name__ == "__main__":
    main()
