"""Stories of the highly available cluster (``gridmgr cluster``): the primary PostgreSQL dies
while citizens report, and no report that was answered 201 is lost or stored twice.

Real engines only: etcd, three Patroni nodes with a synchronous standby, HAProxy, started by
``gridmgr cluster up`` under a temporary GRIDMGR_HOME and stopped by ``gridmgr cluster down``.
The app runs in this process with its database at HAProxy's primary entry point.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
from cityfixtures import build_city

from gridmgr import create_app
from gridmgr.extensions import db

GRIDMGR = str(Path(sys.executable).parent / "gridmgr")
ENGINES = ("patroni", "etcd", "haproxy")
OUTAGE_AIM_SECONDS = 15

pytestmark = pytest.mark.skipif(
    not all(shutil.which(name) or Path("/usr/sbin", name).exists() for name in ENGINES),
    reason="Debian's patroni, etcd-server and haproxy: scripts/install-system-deps.sh --cluster")


def _gridmgr(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRIDMGR_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    return subprocess.run([GRIDMGR, "cluster", *args], env=env, capture_output=True, text=True,
                          check=check, timeout=300)


def cluster_status(home: Path) -> dict:
    return json.loads(_gridmgr(home, "status", "--json", check=False).stdout)


def leader(status: dict) -> dict | None:
    return next((n for n in status["nodes"]
                 if n["role"] == "leader" and n["state"] == "running"), None)


@pytest.fixture(scope="module")
def cluster_home():
    home = Path(tempfile.mkdtemp(prefix="gridmgr-cluster-"))
    home.chmod(0o755)  # the postgres system user runs the nodes when we are root
    try:
        _gridmgr(home, "up")
        yield home
    finally:
        _gridmgr(home, "down", check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster_app(cluster_home):
    """The app with its database at HAProxy's primary entry point, and a small city in it."""
    url = cluster_status(cluster_home)["entry_points"]["primary"]
    url = url.replace("postgresql://", "postgresql+psycopg2://") + "?connect_timeout=2"
    app = create_app({
        "TESTING": True, "DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
        "GRIDMGR_HOME": str(cluster_home), "RATELIMIT_ENABLED": False,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256"})
    with app.app_context():
        build_city()
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


def report(client, client_id: str):
    from cityfixtures import SIZE, SOUTH, WEST

    return client.post("/api/v1/reports", json={
        "lon": WEST + SIZE / 2, "lat": SOUTH + SIZE / 2, "description": "路灯不亮",
        "client_id": client_id, "contact_phone": "13900000000"})


def test_the_primary_dies_while_citizens_report_and_no_answered_report_is_lost_or_doubled(
        cluster_home, cluster_app):
    client = cluster_app.test_client()
    answered: dict[str, int] = {}  # client_id -> case id, for every 201 or 200
    for n in range(20):
        answer = report(client, f"before-{n}")
        assert answer.status_code == 201, answer.get_json()
        answered[f"before-{n}"] = answer.get_json()["case"]["id"]

    before = cluster_status(cluster_home)
    old = leader(before)
    assert old is not None and old["postgres_pid"]
    assert any(n["role"] == "sync_standby" for n in before["nodes"])
    os.kill(old["postgres_pid"], signal.SIGKILL)
    killed_at = time.monotonic()

    refusals: list[tuple[int, str | None, str | None]] = []
    retried: set[str] = set()
    back_after = None
    n = 0
    while len(answered) < 60 and time.monotonic() - killed_at < 60:
        client_id = f"during-{n}"
        answer = report(client, client_id)
        while answer.status_code == 503:
            # The phone keeps the report in its queue and sends it again, same client_id.
            refusals.append((answer.status_code, answer.get_json()["error"]["code"],
                             answer.headers.get("Retry-After")))
            retried.add(client_id)
            time.sleep(0.2)
            assert time.monotonic() - killed_at < 60, "writes did not come back within 60 s"
            answer = report(client, client_id)
        assert answer.status_code in (200, 201), answer.get_json()
        if back_after is None and retried:
            back_after = time.monotonic() - killed_at
        answered[client_id] = answer.get_json()["case"]["id"]
        n += 1

    print(f"writes refused for {back_after} s after the primary was killed; "
          f"{len(refusals)} answers 503, {len(retried)} reports resent")
    # The pool noticed: the in-flight and pooled connections to the dead primary failed.
    assert refusals, "no request noticed the failover"
    assert back_after is not None and back_after <= OUTAGE_AIM_SECONDS
    assert all(r == (503, "database_unavailable", "1") for r in refusals), set(refusals)

    # A phone resending a report answered before the failover gets the same case, not a new one.
    resent = report(client, "before-3")
    assert resent.status_code == 200
    assert resent.get_json()["case"]["id"] == answered["before-3"]

    after = cluster_status(cluster_home)
    new = leader(after)
    assert new is not None and new["name"] != old["name"]
    # Read the new primary directly, not through HAProxy: every answered report is there once.
    conn = psycopg2.connect(host="127.0.0.1", port=new["port"], dbname="gridmgr",
                            user="gridmgr")
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_is_in_recovery()")
        assert cur.fetchone() == (False,)
        cur.execute("SELECT r.client_id, array_agg(c.id) FROM reports r "
                    "JOIN cases c ON c.id = r.case_id GROUP BY r.client_id")
        stored = dict(cur.fetchall())
        cur.execute("SELECT count(*) FROM cases")
        cases = cur.fetchone()[0]
    conn.close()
    assert stored == {client_id: [case_id] for client_id, case_id in answered.items()}
    assert cases == len(answered)


def wait_for_sync_standby(home: Path, timeout: float = 60) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = cluster_status(home)
        if leader(status) and any(n["role"] == "sync_standby" and n["state"] in
                                  ("running", "streaming") for n in status["nodes"]):
            return status
        time.sleep(0.5)
    raise AssertionError("the cluster has no synchronous standby again")


def test_a_wall_connected_before_a_failover_receives_a_case_reported_after_it(
        cluster_home, cluster_app):
    from live_server import LiveClient, running_server, wait_for

    from gridmgr.grids.models import City
    from gridmgr.people.models import User
    from gridmgr.people.passwords import hash_password
    from gridmgr.people.tokens import issue_tokens

    before = wait_for_sync_standby(cluster_home)
    with cluster_app.app_context():
        city = db.session.scalar(db.select(City))
        operator = User(username="wall-operator", role="operator", city_id=city.id,
                        password_hash=hash_password("pw-secret-123"), is_active=True)
        db.session.add(operator)
        db.session.commit()
        token = issue_tokens(operator)["access_token"]
        db.session.remove()
    with running_server(cluster_app, cluster_home / "live") as server:
        wall = LiveClient(server.url, token)
        try:
            os.kill(leader(before)["postgres_pid"], signal.SIGKILL)
            client = cluster_app.test_client()
            answer = report(client, "after-failover")
            while answer.status_code == 503:
                time.sleep(0.2)
                answer = report(client, "after-failover")
            assert answer.status_code == 201, answer.get_json()
            case_id = answer.get_json()["case"]["id"]
            # The server's relay lost its LISTEN connection with the old primary and listens
            # on the new one; the wall's WebSocket to the server never dropped.
            assert wait_for(lambda: any(e["id"] == case_id for e in wall.named("case.created")),
                            timeout=30), wall.events
            assert leader(cluster_status(cluster_home))["name"] != leader(before)["name"]
        finally:
            wall.close()


def test_the_status_lists_every_node_with_its_role_and_process(cluster_home):
    # A node that was primary before a failover rejoins as a replica by itself.
    end = time.monotonic() + 60
    while time.monotonic() < end:
        report_ = cluster_status(cluster_home)
        if all(n["state"] in ("running", "streaming") for n in report_["nodes"]):
            break
        time.sleep(0.5)
    assert report_["entry_points"]["primary"].startswith("postgresql://gridmgr@127.0.0.1:")
    assert {n["name"] for n in report_["nodes"]} == {"node1", "node2", "node3"}
    assert all(n["pid"] and n["postgres_pid"] for n in report_["nodes"])
    assert sorted(n["role"] for n in report_["nodes"]).count("leader") == 1
    assert all(p["running"] for p in report_["processes"])


def test_down_stops_every_process_up_started(cluster_home):
    before = cluster_status(cluster_home)
    pids = [n["pid"] for n in before["nodes"]] + [n["postgres_pid"] for n in before["nodes"]]
    pids += [p["pid"] for p in before["processes"]]
    _gridmgr(cluster_home, "down")
    gone = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            state = "gone"
        gone.append(state in ("gone", "Z", "X"))
    assert all(gone), list(zip(pids, gone, strict=True))
    assert _gridmgr(cluster_home, "status", check=False).returncode == 3
