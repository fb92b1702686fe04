"""Benchmark: the map wall in headless Chromium (Debian's), on the demo city.

Loads the demo city (渝中区, about 2,500 unit grids) into its own database, adds a few hundred
cases through the intake (some dispatched, some overdue, some waiting to be filed) and a few
grid workers on patrol, starts ``gridmgr serve`` and measures, in a real browser:

- load to first full render: from navigation start to the moment the page has its counters,
  markers, boundaries and first grid tiles drawn (``body[data-wall-ready]``), five loads;
- report to marker: from sending a report to the API to its marker being on the wall,
  over the live channel, ten reports.

With ``--big`` it also measures the load on the city of ``bench/tiles.py`` (50,000 grids,
100,000 open cases; run that first). Saves the README's screenshot (``docs/wall.png``),
prints the figures and writes ``bench/results/wall.json``.

    .venv/bin/python bench/wall.py [--big]
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

import psycopg2
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from record import record  # noqa: E402

from gridmgr import create_app  # noqa: E402
from gridmgr.extensions import db  # noqa: E402

SCREENSHOT = ROOT / "docs" / "wall.png"
DB_NAME = "gridmgr_bench_wall"
BIG_DB = "gridmgr_bench_maps"
SECRET = "bench-secret-key-of-sufficient-length-0123456789"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
CASES = 360


def database_url(name: str, create: bool) -> str:
    admin = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            if not create:
                raise SystemExit(f"database {name} is missing: run bench/tiles.py first")
            cur.execute(f"CREATE DATABASE {name}")
    admin.close()
    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


def make_app(url: str):
    home = Path(tempfile.mkdtemp(prefix="gridmgr-bench-"))
    return create_app({"DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                       "GRIDMGR_HOME": str(home), "RATELIMIT_ENABLED": False,
                       "SECRET_KEY": SECRET})


def build_demo() -> None:
    """The demo city with cases in every clock state and inspectors on patrol."""
    from flask_migrate import upgrade

    from gridmgr.cases.intake import ReportInput, submit_report
    from gridmgr.cases.workflow import StepInput, take_step
    from gridmgr.categories.operations import load_default_catalogue
    from gridmgr.demo.loading import load_demo
    from gridmgr.dispatch.duty import record_position, set_duty
    from gridmgr.people import operations
    from gridmgr.people.models import Department, User

    upgrade()
    db.session.execute(text("TRUNCATE cities, users, departments, categories, category_classes, "
                            "cases, reports, live_events RESTART IDENTITY CASCADE"))
    db.session.commit()
    load_demo()
    load_default_catalogue()
    db.session.commit()
    chief = db.session.scalar(text("SELECT id FROM users WHERE username = 'demo-chief'"))
    chief = db.session.get(User, chief)
    department = db.session.scalar(db.select(Department).order_by(Department.id).limit(1))
    streets = db.session.execute(text(
        "SELECT code FROM regions WHERE level = 'street' ORDER BY code")).scalars().all()
    inspectors = []
    for n, street in enumerate(streets[:6], start=1):
        inspectors.append(operations.create_user(
            operations.console_admin(), f"demo-patrol-{n}", "gridmgr-demo", "inspector",
            region_code=street, city="chongqing", display_name=["张", "李", "王", "赵", "陈",
                                                                 "刘"][n - 1] + "网格员"))
    db.session.commit()
    points = db.session.execute(text("""
        SELECT ST_X(p), ST_Y(p) FROM (
            SELECT (ST_Dump(ST_GeneratePoints(geom, :n, 42))).geom AS p
            FROM regions WHERE level = 'district') x"""), {"n": CASES}).all()
    categories = db.session.execute(text(
        "SELECT code FROM categories ORDER BY code")).scalars().all()
    for i, (lon, lat) in enumerate(points):
        reporter = inspectors[i % len(inspectors)]
        case_id = submit_report(ReportInput(
            lon=lon, lat=lat, category=categories[(i * 7) % len(categories)],
            description="巡查发现"), reporter).case_id
        if i % 4 != 3:
            take_step(case_id, "file", chief, StepInput())
        if i % 4 in (0, 1):
            take_step(case_id, "dispatch", chief, StepInput(department=str(department.id)))
    # As if time had passed: a fifth of the dispatched cases are overdue, a fifth due soon.
    db.session.execute(text("""
        UPDATE cases SET yellow_at = now() - interval '1 day',
                         deadline = now() - interval '2 hours'
        WHERE state = 'dispatched' AND id % 5 = 0;
        UPDATE cases SET yellow_at = now() - interval '1 hour',
                         deadline = now() + interval '3 hours'
        WHERE state = 'dispatched' AND id % 5 = 1;
        UPDATE reports SET created_at = created_at - (id % 10) * interval '1 hour'
    """))
    db.session.commit()
    for inspector in inspectors:
        set_duty(inspector, True)
        lon, lat = db.session.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(r.geom) p FROM regions r "
            "WHERE r.id = :id) x"), {"id": inspector.region_id}).one()
        record_position(inspector, lon, lat)


def serve(url: str, home: Path) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": SECRET, "GRIDMGR_HOME": str(home)}
    env.pop("REDIS_URL", None)
    log = open(home / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen([str(Path(sys.executable).parent / "gridmgr"), "serve",
                                "--port", str(port)], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/wall/login", timeout=1).close()
            return process, base
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not start; see " + str(home / "server.log"))


def sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/wall/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-wall-ready='1']", state="attached", timeout=60_000)


def load_times(page, base: str, loads: int) -> list[float]:
    """Seconds from navigation start to the first full render, per load."""
    times = []
    for _ in range(loads):
        page.goto(base + "/wall")
        page.wait_for_selector("body[data-wall-ready='1']", state="attached", timeout=60_000)
        times.append(page.evaluate("gridWall.readyAt") / 1000)
    return times


def report_to_marker(page, base: str, token: str, points: list[tuple[float, float]]) -> list:
    """Seconds from sending a report to its marker on the wall, per report."""
    wait_until(page, "document.getElementById('live-dot').className.includes('on')", 10)
    delays = []
    for lon, lat in points:
        body = json.dumps({"lon": lon, "lat": lat, "category": "C0101", "description": "井盖缺失",
                           "client_id": uuid.uuid4().hex}).encode()
        request = urllib.request.Request(base + "/api/v1/reports", data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {token}"})
        sent = time.perf_counter()
        with urllib.request.urlopen(request, timeout=10) as response:
            case_id = json.loads(response.read())["case"]["id"]
        wait_until(page, f"gridWall.markers[{case_id}] !== undefined", 10)
        delays.append(time.perf_counter() - sent)
    return delays


def wait_until(page, expression: str, seconds: float) -> None:
    """Poll ``expression`` in the page until true (the wall's CSP forbids Playwright's eval)."""
    end = time.monotonic() + seconds
    while not page.evaluate(expression):
        if time.monotonic() > end:
            raise SystemExit(f"still false after {seconds} s: {expression}")
        time.sleep(0.005)


def stats(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"n": len(values), "p50_ms": round(statistics.median(ordered) * 1000),
            "max_ms": round(ordered[-1] * 1000)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big", action="store_true",
                        help="also load the wall on bench/tiles.py's 50,000-grid city")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from gridmgr.people.models import User
    from gridmgr.people.tokens import encode_token

    url = database_url(DB_NAME, create=True)
    app = make_app(url)
    with app.app_context():
        started = time.perf_counter()
        build_demo()
        print(f"demo city with {CASES} cases built in {time.perf_counter() - started:.1f} s")
        patrol = db.session.scalar(db.select(User).where(User.username == "demo-patrol-2"))
        token = encode_token(patrol, "access")
        points = db.session.execute(text("""
            SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, 10, 7))).geom p
            FROM regions WHERE id = :id) x"""), {"id": patrol.region_id}).all()
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    home = Path(tempfile.mkdtemp(prefix="gridmgr-bench-wall-"))
    server, base = serve(url, home)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            sign_in(page, base, "demo-chief", "gridmgr-demo")
            results["demo_load"] = stats(load_times(page, base, 5))
            results["report_to_marker"] = stats(report_to_marker(page, base, token, points))
            # The README's picture: one zoom closer, grids shaded, the new reports in.
            page.evaluate("void gridWall.map.setZoom(gridWall.map.getZoom() + 1)")
            page.wait_for_timeout(6_000)
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"demo city: load to first full render p50 {results['demo_load']['p50_ms']} ms, "
          f"max {results['demo_load']['max_ms']} ms")
    print(f"report to marker: p50 {results['report_to_marker']['p50_ms']} ms, "
          f"max {results['report_to_marker']['max_ms']} ms")

    if args.big:
        big_url = database_url(BIG_DB, create=False)
        server, base = serve(big_url, home)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                     args=CHROMIUM_FLAGS)
                page = browser.new_page(viewport={"width": 1600, "height": 900})
                sign_in(page, base, "bench-chief", "bench-password")
                results["big_city_load"] = stats(load_times(page, base, 3))
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
        big = results["big_city_load"]
        print(f"50,000 grids / 100,000 open cases: load to first full render p50 "
              f"{big['p50_ms']} ms, max {big['max_ms']} ms")
    record("wall", results)
    print(f"screenshot: {SCREENSHOT}")


if __name__ == "__main__":
    main()
