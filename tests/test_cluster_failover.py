"""Stories of the highly available cluster (``gridmgr cluster``): the primary PostgreSQL dies
while eight phones report through HAProxy to two gridmgr servers, then one server dies; no
report answered 201 is lost or stored twice, the wall misses no event, the background workers
do each job once.

Real engines only: etcd, three Patroni nodes with a synchronous standby, HAProxy, two gunicorn
servers and two workers, started by ``gridmgr cluster up --servers`` under a temporary
GRIDMGR_HOME and stopped by ``gridmgr cluster down``. One cluster serves the whole module.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg2
import pytest
from cityfixtures import build_city
from sqlalchemy import text

from gridmgr import create_app
from gridmgr.cluster import operations
from gridmgr.database.replica import replica_engine
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
    done = subprocess.run([GRIDMGR, "cluster", *args], env=env, capture_output=True, text=True,
                          timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"gridmgr cluster {' '.join(args)} exited with {done.returncode}:\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def cluster_status(home: Path) -> dict:
    return json.loads(_gridmgr(home, "status", "--json", check=False).stdout)


def leader(status: dict) -> dict | None:
    return next((n for n in status["nodes"]
                 if n["role"] == "leader" and n["state"] == "running"), None)


SECRET_KEY = "cluster-test-secret-key-long-enough-for-hs256"
PHONES = 8


@pytest.fixture(scope="module")
def cluster_home():
    home = Path(tempfile.mkdtemp(prefix="gridmgr-cluster-"))
    home.chmod(0o755)  # the postgres system user runs the nodes when we are root
    # Read by every gridmgr process of the cluster (create_app's instance config).
    (home / "config.py").write_text(f"SECRET_KEY = {SECRET_KEY!r}\nRATELIMIT_ENABLED = False\n"
                                    "GRIDMGR_LIVE_POLL_SECONDS = 0.5\n")
    try:
        _gridmgr(home, "up", "--servers")
        yield home
    finally:
        _gridmgr(home, "down", check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster_app(cluster_home):
    """The app in this process with its database at HAProxy's primary entry point, and a small
    city in it (the cluster's servers and workers see the same database)."""
    url = cluster_status(cluster_home)["entry_points"]["primary"]
    url = url.replace("postgresql://", "postgresql+psycopg2://") + "?connect_timeout=2"
    app = create_app({
        "TESTING": True, "DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
        "GRIDMGR_HOME": str(cluster_home), "RATELIMIT_ENABLED": False,
        "SECRET_KEY": SECRET_KEY})
    with app.app_context():
        build_city()
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


def report_body(client_id: str) -> dict:
    from cityfixtures import SIZE, SOUTH, WEST

    return {"lon": WEST + SIZE / 2, "lat": SOUTH + SIZE / 2, "category": "C0101",
            "description": "井盖松动", "client_id": client_id, "contact_phone": "13900000000"}


def post_report(base: str, client_id: str) -> tuple[int, dict | None]:
    """POST a report through HAProxy: the status and JSON body, (0, None) when no answer came."""
    request = urllib.request.Request(
        base + "/api/v1/reports", data=json.dumps(report_body(client_id)).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body)
        except ValueError:
            return error.code, None
    except (OSError, http.client.HTTPException, ValueError):  # cut off, or no JSON
        return 0, None


class Phone(threading.Thread):
    """A citizen's phone: reports one after another; a report not answered 201/200 stays in
    its queue and is sent again with the same client_id; now and then it resends one that was
    already answered, as a phone that never saw the answer would."""

    def __init__(self, number: int, base: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.number, self.base, self.stop = number, base, stop
        self.answered: dict[str, int] = {}  # client_id -> case id
        self.successes: list[float] = []  # monotonic time of each 201/200
        self.refusals: list[tuple[float, int, str | None]] = []  # time, status, error code
        self.resends: list[tuple[str, int, int | None]] = []  # client_id, status, case id
        self.failures: list[tuple[int, dict | None]] = []  # any 4xx or 500: must stay empty

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            client_id = f"phone{self.number}-{n}"
            while True:
                status, body = post_report(self.base, client_id)
                if status in (200, 201):
                    break
                if status == 500 or 400 <= status < 500:
                    self.failures.append((status, body))
                code = (body or {}).get("error", {}).get("code") if status == 503 else None
                self.refusals.append((time.monotonic(), status, code))
                time.sleep(0.2)
            self.answered[client_id] = body["case"]["id"]
            self.successes.append(time.monotonic())
            if n % 5 == 4:
                again = f"phone{self.number}-{n - 2}"
                status, body = post_report(self.base, again)
                if status in (200, 201) or status == 500 or 400 <= status < 500:
                    self.resends.append((again, status, (body or {}).get("case", {}).get("id")))
            n += 1
            time.sleep(0.05)


def server_logs(home: Path) -> str:
    """The end of each gridmgr server's log, to say why a request failed."""
    return "\n".join((home / "cluster" / "logs" / f"{name}.log").read_text()[-3000:]
                     for name in ("server1", "server2"))


def wait_until(what: str, predicate, timeout: float, detail=lambda: "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s {detail()}")


def escalation_world(app) -> tuple[int, list[int]]:
    """Two inspectors rostered on one grid, a category dispatched by the rules that must be
    accepted within the hour, and three cases dispatched to the first inspector, who does not
    accept them: the city's id and the cases."""
    from cityfixtures import CITY_SLUG, SIZE, SOUTH, WEST
    from dispatch_world import go_on_duty

    from gridmgr.cases.intake import ReportInput, submit_report
    from gridmgr.cases.workflow import StepInput, take_step
    from gridmgr.dispatch.assign import auto_dispatch
    from gridmgr.dispatch.rosters import add_roster_entry
    from gridmgr.grids.models import City, Region
    from gridmgr.people.models import Department, User
    from gridmgr.people.passwords import hash_password

    with app.app_context():
        city = db.session.scalar(db.select(City).where(City.slug == CITY_SLUG))
        grid = db.session.scalar(db.select(Region).where(Region.level == "grid")
                                 .order_by(Region.code))
        department = Department(city_id=city.id, name="城管执法", name_en="Enforcement")
        db.session.add(department)
        db.session.flush()
        db.session.execute(text("""
            UPDATE categories SET auto_dispatch = true, department_id = :d, limits =
                '{"handle": {"amount": 8, "unit": "urgent_hours"},
                  "accept": {"amount": 1, "unit": "urgent_hours"}}'
            WHERE code = 'E0101'"""), {"d": department.id})
        password = hash_password("pw-secret-123")
        people = {}
        for name, role, region in (("first", "inspector", grid), ("second", "inspector", grid),
                                   ("wall", "operator", None), ("desk", "operator", None),
                                   ("patrol", "inspector", None)):
            people[name] = User(username=name, role=role, city_id=city.id, is_active=True,
                                region_id=region.id if region else None,
                                password_hash=password)
            db.session.add(people[name])
        db.session.commit()
        add_roster_entry("first", grid.code, city_id=city.id)
        add_roster_entry("second", grid.code, city_id=city.id)
        go_on_duty(people["first"])
        cases = []
        for n in range(3):
            result = submit_report(ReportInput(
                lon=WEST + SIZE / 2, lat=SOUTH + SIZE / 2, category="E0101",
                description=f"垃圾堆放 {n}"), people["patrol"])
            take_step(result.case_id, "file", people["desk"], StepInput())
            auto_dispatch(result.case_id)
            cases.append(result.case_id)
        go_on_duty(people["second"])  # comes on duty after the dispatches
        states = db.session.execute(text("SELECT state, worker_id FROM cases WHERE id = ANY(:c)"),
                                    {"c": cases}).all()
        assert states == [("dispatched", people["first"].id)] * 3
        city_id = city.id
        db.session.remove()
    return city_id, cases


def operator_token(app, username: str) -> str:
    from gridmgr.people.models import User
    from gridmgr.people.tokens import issue_tokens

    with app.app_context():
        token = issue_tokens(db.session.scalar(db.select(User).where(User.username == username)))
        db.session.remove()
    return token["access_token"]


def test_eight_phones_report_through_a_primary_failover_and_a_server_crash_and_nothing_is_lost(
        cluster_home, cluster_app):
    from live_server import LiveClient

    city_id, overdue = escalation_world(cluster_app)
    before = wait_for_sync_standby(cluster_home)
    base = before["entry_points"]["http"]
    old = leader(before)
    with cluster_app.app_context():
        # The background workers schedule the acceptance timeouts (督办) of the three cases.
        wait_until("the acceptance timeouts scheduled", lambda: db.session.execute(text(
            "SELECT count(*) FROM dispatch_jobs WHERE kind = 'ack_timeout' AND "
            "case_id = ANY(:c)"), {"c": overdue}).scalar() == 3, 30)
        db.session.remove()

    wall = LiveClient(base, operator_token(cluster_app, "wall"))
    stop = threading.Event()
    phones = [Phone(number, base, stop) for number in range(PHONES)]
    for phone in phones:
        phone.start()
    try:
        wait_until("every phone answered", lambda: all(len(p.answered) >= 3 for p in phones),
                   30, lambda: [(len(p.answered), len(p.refusals), p.refusals[-1:],
                                 p.failures[-1:]) for p in phones] + [server_logs(cluster_home)])
        with cluster_app.app_context():
            # The timeouts fall due while the primary is down.
            db.session.execute(text(
                "UPDATE dispatch_jobs SET run_at = now() + interval '1 second' "
                "WHERE kind = 'ack_timeout' AND case_id = ANY(:c)"), {"c": overdue})
            db.session.commit()
            db.session.remove()
        os.kill(old["postgres_pid"], signal.SIGKILL)
        killed_at = time.monotonic()

        # Writes come back by themselves: each phone has a report answered after its refusals.
        wait_until("every phone answered after the failover", lambda: all(
            p.refusals and p.successes[-1] > p.refusals[-1][0] for p in phones), 60)
        time.sleep(2)
        outage = max(next(t for t in p.successes if t > p.refusals[-1][0]) for p in phones) \
            - killed_at
        print(f"writes refused for at most {outage:.1f} s after the primary was killed")
        assert outage <= OUTAGE_AIM_SECONDS
        refused = [r for p in phones for r in p.refusals if r[0] >= killed_at]
        assert refused and {(status, code) for _, status, code in refused} == {
            (503, "database_unavailable")}, server_logs(cluster_home)
        after = cluster_status(cluster_home)
        new = leader(after)
        assert new is not None and new["name"] != old["name"]
        # The wall's WebSocket never dropped: the servers' relays listen on the new primary.
        reported_after = [case for p in phones for case in list(p.answered.values())[-3:]]
        wait_until("the wall told of the cases reported after the failover", lambda: {
            *reported_after} <= {e["id"] for e in wall.named("case.created")}, 30)

        # One server process dies; the phones carry on through the other.
        server = next(p for p in after["processes"] if p["name"] == "server1")
        os.kill(server["pid"], signal.SIGKILL)
        server_killed_at = time.monotonic()
        counts = [len(p.successes) for p in phones]
        wall.close()  # the wall's network drops too; it comes back with its last seq
        last_seq = max(wall.seqs())
        time.sleep(5)
        assert all(len(p.successes) >= n + 3 for p, n in zip(phones, counts, strict=True))
        gaps = [b - a for p in phones for a, b in zip(p.successes, p.successes[1:], strict=False)
                if a >= server_killed_at]
        print(f"longest wait for an answer after a server was killed: {max(gaps):.2f} s")
        assert max(gaps) < 5
        back = LiveClient(base, operator_token(cluster_app, "wall"), since=last_seq)
        time.sleep(2)
    finally:
        stop.set()
        for phone in phones:
            phone.join(timeout=30)
        wall.close()

    answered = {cid: case for p in phones for cid, case in p.answered.items()}
    try:
        wait_until("the wall told of every case reported", lambda: {*answered.values()} <= {
            *(e["id"] for e in wall.named("case.created")),
            *(e["id"] for e in back.named("case.created"))}, 30)
        seen = wall.seqs() + back.seqs()
    finally:
        back.close()

    assert [f for p in phones for f in p.failures] == [], server_logs(cluster_home)
    resends = [r for p in phones for r in p.resends]
    assert resends
    assert [r for r in resends if r[1:] != (200, answered[r[0]])] == []
    # Read the new primary directly, not through HAProxy.
    conn = psycopg2.connect(host="127.0.0.1", port=new["port"], dbname="gridmgr", user="gridmgr")
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_is_in_recovery()")
        assert cur.fetchone() == (False,)
        # Every report answered 201 or 200 is stored once, as the case it was answered with.
        cur.execute("SELECT r.client_id, array_agg(c.id) FROM reports r "
                    "JOIN cases c ON c.id = r.case_id WHERE r.client_id LIKE 'phone%' "
                    "GROUP BY r.client_id")
        assert dict(cur.fetchall()) == {cid: [case] for cid, case in answered.items()}
        # The wall got every event of its room in order, once, across its reconnection.
        cur.execute("SELECT seq FROM live_events WHERE %s = ANY(rooms) AND seq BETWEEN %s AND %s "
                    "ORDER BY seq", (f"city:{city_id}", seen[0], seen[-1]))
        kept = [row[0] for row in cur.fetchall()]
        cur.execute("SELECT seq, event, created_at FROM live_events WHERE seq = ANY(%s)",
                    (sorted(set(kept) - set(seen)),))
        assert seen == kept, (
            f"reconnected after {last_seq}; missed {cur.fetchall()}, "
            f"twice {sorted(s for s in set(seen) if seen.count(s) > 1)}, out of order "
            f"{[(a, b) for a, b in zip(seen, seen[1:], strict=False) if a > b]}")
        # Each acceptance timeout that fell due during the outage escalated its case once.
        cur.execute("SELECT case_id, count(*) FROM case_history WHERE action = 'escalate' "
                    "AND case_id = ANY(%s) GROUP BY case_id", (overdue,))
        assert dict(cur.fetchall()) == {case: 1 for case in overdue}
        cur.execute("SELECT state, count(*) FROM dispatch_jobs WHERE kind = 'ack_timeout' "
                    "AND case_id = ANY(%s) AND key LIKE '%%:0' GROUP BY state", (overdue,))
        assert cur.fetchall() == [("done", 3)]
    conn.close()

    # `up` again starts the server that died.
    _gridmgr(cluster_home, "up", "--servers")
    assert all(p["running"] for p in cluster_status(cluster_home)["processes"])


def wait_for_sync_standby(home: Path, timeout: float = 60) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = cluster_status(home)
        if leader(status) and any(n["role"] == "sync_standby" and n["state"] in
                                  ("running", "streaming") for n in status["nodes"]):
            return status
        time.sleep(0.5)
    raise AssertionError("the cluster has no synchronous standby again")


def node_sessions(node: dict, application: str) -> int:
    """How many sessions ``application`` has open on one node (read directly, not via
    HAProxy)."""
    conn = psycopg2.connect(host="127.0.0.1", port=node["port"], dbname="postgres",
                            user="postgres", connect_timeout=2)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                        (application,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_the_wall_reads_its_feed_from_a_replica_and_from_the_primary_once_no_replica_is_left(
        cluster_home, cluster_app):
    from cityfixtures import SIZE, SOUTH, WEST

    from gridmgr.grids.models import City
    from gridmgr.people.models import User
    from gridmgr.people.passwords import hash_password

    status = wait_for_sync_standby(cluster_home)
    with cluster_app.app_context():
        city = db.session.scalar(db.select(City))
        db.session.add(User(username="reader", role="operator", city_id=city.id, is_active=True,
                            password_hash=hash_password("pw-secret-123")))
        db.session.commit()
        db.session.remove()
    answer = cluster_app.test_client().post("/api/v1/reports", json=report_body("for-the-wall"))
    assert answer.status_code == 201
    case_id = answer.get_json()["case"]["id"]

    def url(entry: str, application: str) -> str:
        return entry.replace("postgresql://", "postgresql+psycopg2://") + \
            f"?connect_timeout=2&application_name={application}"

    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url(status["entry_points"]["primary"], "gridmgr-writes"),
        "DATABASE_URL": url(status["entry_points"]["primary"], "gridmgr-writes"),
        "GRIDMGR_REPLICA_URL": url(status["entry_points"]["replica"], "gridmgr-reads"),
        "GRIDMGR_HOME": str(cluster_home), "RATELIMIT_ENABLED": False,
        "SECRET_KEY": SECRET_KEY})
    headers = {"Authorization": f"Bearer {operator_token(app, 'reader')}"}
    client = app.test_client()
    bbox = f"{WEST},{SOUTH},{WEST + 2 * SIZE},{SOUTH + 2 * SIZE}"

    def feed():
        answer = client.get(f"/maps/feeds/cases?bbox={bbox}", headers=headers)
        while answer.status_code == 503:  # the wall asks again, as after a failover
            time.sleep(0.5)
            answer = client.get(f"/maps/feeds/cases?bbox={bbox}", headers=headers)
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    try:
        # The report committed on the primary is on the synchronous standby; a replica within
        # the lag the entry point allows shows it.
        end = time.monotonic() + 10
        while case_id not in {m["id"] for m in feed()["cases"]}:
            assert time.monotonic() < end, "the replica never showed the new case"
            time.sleep(0.2)
        primary = leader(status)
        replicas = [n for n in status["nodes"] if n["name"] != primary["name"]]
        # Every read of the feed went to a replica, none to the primary.
        assert sum(node_sessions(n, "gridmgr-reads") for n in replicas) >= 1
        assert node_sessions(primary, "gridmgr-reads") == 0

        # Both replicas stop: the entry point leads the wall's reads to the primary.
        for node in replicas:
            os.kill(node["pid"], signal.SIGTERM)  # Patroni stops its PostgreSQL and itself
        wait_until("the replicas stopped", lambda: not any(
            n["postgres_pid"] for n in cluster_status(cluster_home)["nodes"]
            if n["name"] != primary["name"]), 60)
        assert case_id in {m["id"] for m in feed()["cases"]}
        assert node_sessions(primary, "gridmgr-reads") >= 1
    finally:
        with app.app_context():
            db.engine.dispose()
            replica_engine().dispose()
        _gridmgr(cluster_home, "up", "--servers")  # the replicas start again and catch up
    wait_for_sync_standby(cluster_home)


def test_a_switchover_for_maintenance_hands_the_primary_to_the_standby_while_phones_report(
        cluster_home):
    before = wait_for_sync_standby(cluster_home)
    old = leader(before)["name"]
    standby = next(n["name"] for n in before["nodes"] if n["role"] == "sync_standby")
    other = next(n["name"] for n in before["nodes"] if n["name"] not in (old, standby))
    # Only the synchronous standby is sure to hold every commit: another node is refused with
    # Patroni's reason, and the primary stays where it was.
    refused = _gridmgr(cluster_home, "switchover", "--candidate", other, check=False)
    assert refused.returncode == 1 and "sync_standby" in refused.stderr, refused.stderr
    assert leader(operations.status(cluster_home))["name"] == old

    stop = threading.Event()
    phones = [Phone(100 + number, before["entry_points"]["http"], stop) for number in range(2)]
    for phone in phones:
        phone.start()
    try:
        wait_until("every phone answered", lambda: all(len(p.answered) >= 2 for p in phones), 30)
        done = _gridmgr(cluster_home, "switchover")
        assert f"{standby} is the primary" in done.stdout
        after = cluster_status(cluster_home)
        assert leader(after)["name"] == standby
        switched_at = time.monotonic()
        wait_until("every phone answered after the switchover", lambda: all(
            p.successes[-1] > switched_at for p in phones), 30)
    finally:
        stop.set()
        for phone in phones:
            phone.join(timeout=30)

    assert [f for p in phones for f in p.failures] == []
    assert {(status, code) for p in phones for _, status, code in p.refusals} <= {
        (503, "database_unavailable")}
    answered = {cid: case for p in phones for cid, case in p.answered.items()}
    new = leader(after)
    conn = psycopg2.connect(host="127.0.0.1", port=new["port"], dbname="gridmgr", user="gridmgr")
    with conn, conn.cursor() as cur:
        cur.execute("SELECT r.client_id, array_agg(c.id) FROM reports r "
                    "JOIN cases c ON c.id = r.case_id WHERE r.client_id LIKE 'phone10_-%%' "
                    "GROUP BY r.client_id")
        assert dict(cur.fetchall()) == {cid: [case] for cid, case in answered.items()}
    conn.close()
    # The old primary, stopped cleanly, follows the new one by itself.
    wait_until(f"{old} rejoined as a replica", lambda: any(
        n["name"] == old and n["role"] in ("replica", "sync_standby")
        and n["state"] in ("running", "streaming")
        for n in operations.status(cluster_home)["nodes"]), 60)


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
