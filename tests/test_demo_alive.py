"""Someone runs ``make demo`` and watches the city move: a patrol's report of exposed garbage is
filed, dispatched to the inspector on that grid, escalated when nobody accepts it, while the
patrols' phones send positions; stopping the demo stops the server and the worker with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request

import psutil
from live_server import GRIDMGR, LiveClient, free_port, wait_for
from sqlalchemy import text

from gridmgr.demo.cli import demo
from gridmgr.demo.loading import DEMO_PASSWORD, LIVE_CATEGORIES
from gridmgr.extensions import db

ACCEPT_SECONDS = 3


def post(url: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


def sign_in(url: str, username: str) -> str:
    status, body = post(url + "/api/v1/auth/token",
                        {"username": username, "password": DEMO_PASSWORD})
    assert status == 200, body
    return body["access_token"]


def up(url: str, process: subprocess.Popen) -> bool:
    assert process.poll() is None, f"the demo ended with {process.returncode}"
    try:
        with urllib.request.urlopen(url + "/api/v1/openapi.json", timeout=1):
            return True
    except OSError:
        return False


def start_demo(app, home) -> tuple[subprocess.Popen, str]:
    """``gridmgr demo serve`` as ``make demo`` runs it, on the test database and a free port,
    with the acknowledgement limit and the phones' interval shortened to seconds in
    GRIDMGR_HOME/config.py."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.py").write_text(
        "RATELIMIT_ENABLED = False\n"
        "GRIDMGR_LIVE_POLL_SECONDS = 0.5\n"
        "GRIDMGR_POSITION_INTERVAL_S = 1\n"
        f"GRIDMGR_ACCEPT_LIMIT = {{'amount': {ACCEPT_SECONDS} / 3600, 'unit': 'urgent_hours'}}\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "GRIDMGR_ASYNC_MODE")}
    env.update({"DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
                "SECRET_KEY": app.config["SECRET_KEY"], "GRIDMGR_HOME": str(home)})
    log = open(home / "demo.log", "wb")  # noqa: SIM115 - closed by the caller's process end
    process = subprocess.Popen([GRIDMGR, "demo", "serve", "--port", str(port)], env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return process, f"http://127.0.0.1:{port}"


def test_a_patrol_report_is_dispatched_live_escalated_and_the_demo_stops_whole(
        app, app_ctx, runner, tmp_path):
    assert runner.invoke(demo, ["load"]).exit_code == 0
    grid, lon, lat = db.session.execute(text("""
        SELECT g.code, ST_X(p), ST_Y(p) FROM roster_entries r
        JOIN users u ON u.id = r.user_id AND u.username = 'demo-inspector'
        JOIN regions g ON g.id = r.grid_id, ST_PointOnSurface(g.geom) AS p""")).one()
    demo_process, url = start_demo(app, tmp_path / "home")
    clients = []
    try:
        assert wait_for(lambda: up(url, demo_process), timeout=60, interval=0.2), \
            (tmp_path / "home" / "demo.log").read_text()
        children = psutil.Process(demo_process.pid).children(recursive=True)
        commands = [" ".join(child.cmdline()) for child in children]
        assert any("gunicorn" in c and "GeventWebSocketWorker" in c for c in commands)
        assert any(c.endswith("demo worker") for c in commands)

        inspector = LiveClient(url, sign_in(url, "demo-inspector"))
        chief = LiveClient(url, sign_in(url, "demo-chief"))
        clients += [inspector, chief]
        status, report = post(url + "/api/v1/reports", {
            "lon": lon, "lat": lat, "category": "E0101", "description": "路边暴露垃圾"},
            sign_in(url, "demo-patrol-2"))
        assert status == 201, report
        case_id = report["case"]["id"]

        def ours(client: LiveClient, event: str) -> list[dict]:
            return [e for e in client.named(event) if e["id"] == case_id]

        # demo-operator files it; the rules give it to demo-inspector, rostered on its grid.
        assert wait_for(lambda: ours(inspector, "case.dispatched"), timeout=15)
        dispatched = ours(inspector, "case.dispatched")[0]
        assert dispatched["grid_code"] == grid
        assert dispatched["worker_id"] == db.session.scalar(text(
            "SELECT id FROM users WHERE username = 'demo-inspector'"))
        # Nobody accepts it within the limit: escalated to the community, on the wall.
        assert wait_for(lambda: ours(chief, "case.escalated"), timeout=ACCEPT_SECONDS + 15)
        assert ours(chief, "case.escalated")[0]["level"] == "community"
        # The patrols' phones report where they walk: demo-inspector round its grid.
        inspector_id = dispatched["worker_id"]
        assert wait_for(lambda: len({(p["lon"], p["lat"]) for p in chief.named(
            "worker.position") if p["worker_id"] == inspector_id}) >= 2, timeout=20)
    finally:
        for client in clients:
            client.close()
        demo_process.send_signal(signal.SIGTERM)  # to it alone: it passes it on
        try:
            demo_process.wait(timeout=30)
        finally:
            if demo_process.poll() is None:
                demo_process.kill()

    assert demo_process.returncode == 0
    assert wait_for(lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE
                                    for c in children), timeout=5)
    log = (tmp_path / "home" / "demo.log").read_text()
    assert "Werkzeug" not in log and "development server" not in log
    db.session.expire_all()
    history = db.session.execute(text(
        "SELECT h.action, u.username FROM case_history h LEFT JOIN users u ON u.id = h.actor_id "
        "WHERE h.case_id = :id ORDER BY h.id"), {"id": case_id}).all()
    assert [tuple(row) for row in history[:3]] == [
        ("report", "demo-patrol-2"), ("file", "demo-operator"), ("dispatch", None)]
    assert "escalate" in [row.action for row in history]


def test_the_demo_loads_ten_automatic_categories_each_with_a_department_to_sign_in_as(
        app_ctx, runner):
    assert runner.invoke(demo, ["load"]).exit_code == 0
    again = runner.invoke(demo, ["load"])
    assert again.exit_code == 0, again.output
    live = db.session.execute(text("""
        SELECT k.code, k.limits, d.name,
               (SELECT count(*) FROM users u WHERE u.department_id = d.id
                AND u.role = 'department' AND u.username LIKE 'demo-%') AS staff
        FROM categories k JOIN departments d ON d.id = k.department_id
        WHERE k.auto_dispatch ORDER BY k.code""")).all()
    assert sorted(row.code for row in live) == sorted(LIVE_CATEGORIES)
    assert all(row.staff == 1 for row in live)
    # Handled within minutes, and acknowledged within GRIDMGR_ACCEPT_LIMIT (no limit of its own).
    assert all(row.limits["handle"] == {"amount": 0.1, "unit": "urgent_hours"}
               and "accept" not in row.limits for row in live)
    on_duty = db.session.execute(text("""
        SELECT u.username FROM worker_presence w JOIN users u ON u.id = w.user_id
        JOIN roster_entries r ON r.user_id = u.id WHERE w.on_duty ORDER BY u.username""")
    ).scalars().all()
    assert "demo-inspector" in on_duty and len(on_duty) == 12
