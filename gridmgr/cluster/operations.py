"""Bringing the one-machine cluster up, down, and reporting on it.

The engines do the work: etcd holds the cluster's state, Patroni runs each PostgreSQL node
(bootstrap, streaming replication, synchronous standby, failover), HAProxy leads the
entry points to whichever node Patroni's REST API calls primary or replica. This module only
writes their configuration, starts them in order and records their process ids.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg2

from gridmgr.cluster import processes
from gridmgr.cluster.layout import DB_NAME, DB_USER, SERVER_NAMES, WORKER_NAMES, Layout, Node
from gridmgr.database.embedded import _postgres_bindir

POSTGRES_USER = "postgres"  # PostgreSQL refuses to run as root
EXTENSIONS = ("postgis", "btree_gist")
STARTUP_SECONDS = 120


class ClusterError(RuntimeError):
    """The cluster could not be brought up."""


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None)
    if not found:
        raise ClusterError(f"{name} is not installed; run scripts/install-system-deps.sh "
                           "--cluster (Debian packages patroni, etcd-server, haproxy).")
    return found


def _wait(what: str, predicate: Callable[[], bool], timeout: float = STARTUP_SECONDS) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.25)
    raise ClusterError(f"{what} did not happen within {timeout:.0f} s")


def _get_json(url: str) -> tuple[int, dict | None]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None
    except (OSError, ValueError):
        return 0, None


def _post_json(url: str, body: dict, timeout: float) -> tuple[int, str]:
    """POST ``body`` as JSON; the status and the answer's text (0 when none came)."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError as error:
        return 0, str(error)


def _owner() -> pwd.struct_passwd | None:
    return pwd.getpwnam(POSTGRES_USER) if os.geteuid() == 0 else None


def _prepare_node(layout: Layout, node: Node, bindir: Path) -> None:
    node.folder.mkdir(parents=True, exist_ok=True)
    node.config.write_text(layout.render_patroni(node, bindir))
    owner = _owner()
    if owner:
        node.socket_dir.mkdir(mode=0o755, exist_ok=True)
        for path in (node.folder, node.config, node.socket_dir):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        node.folder.chmod(0o700)


def _check_reachable(layout: Layout) -> None:
    """The postgres system user must be able to enter the cluster folder."""
    owner = _owner()
    if owner and subprocess.run(["runuser", "-u", owner.pw_name, "--", "test", "-x",
                                 str(layout.folder)], check=False).returncode != 0:
        raise ClusterError(
            f"The '{owner.pw_name}' system user, which runs PostgreSQL when gridmgr runs as "
            f"root, cannot enter {layout.folder}; choose a GRIDMGR_HOME it can reach (every "
            "parent folder needs o+x).")


def _members(layout: Layout) -> list[dict]:
    """Patroni's view of the cluster (from the first node that answers), or []."""
    for node in layout.nodes:
        status, body = _get_json(node.rest_url + "/cluster")
        if status == 200 and body:
            return body.get("members", [])
    return []


def _has_sync_standby(layout: Layout) -> bool:
    members = _members(layout)
    return (any(m.get("role") == "leader" and m.get("state") == "running" for m in members)
            and any(m.get("role") == "sync_standby" and m.get("state") in ("running", "streaming")
                    for m in members))


def _primary_answers(layout: Layout, dbname: str = "postgres", user: str = POSTGRES_USER) -> bool:
    try:
        psycopg2.connect(host="127.0.0.1", port=layout.ports["primary"], dbname=dbname,
                         user=user, connect_timeout=2).close()
        return True
    except psycopg2.OperationalError:
        return False


def _ensure_database(layout: Layout) -> None:
    """The gridmgr role and database with its extensions, created once on the primary."""
    conn = psycopg2.connect(host="127.0.0.1", port=layout.ports["primary"], dbname="postgres",
                            user=POSTGRES_USER, connect_timeout=5)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DB_USER,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE ROLE {DB_USER} LOGIN")
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {DB_NAME} OWNER {DB_USER}")
    conn.close()
    conn = psycopg2.connect(host="127.0.0.1", port=layout.ports["primary"], dbname=DB_NAME,
                            user=POSTGRES_USER, connect_timeout=5)
    conn.autocommit = True
    with conn.cursor() as cur:
        for extension in EXTENSIONS:
            cur.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
    conn.close()


def app_environment(layout: Layout, redis_url: str | None) -> dict:
    """The environment of every gridmgr process of the cluster: the primary entry point, and
    the replica entry point for the views that may read a replica."""
    env = {**os.environ, "DATABASE_URL": layout.primary_url,
           "GRIDMGR_REPLICA_URL": layout.replica_url, "GRIDMGR_HOME": str(layout.home),
           "GRIDMGR_TRUSTED_PROXIES": "1"}
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def _migrate(layout: Layout) -> None:
    result = subprocess.run([sys.executable, "-m", "gridmgr.cli", "db", "upgrade"],
                            env=app_environment(layout, None), capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise ClusterError(f"the schema migration failed:\n{result.stderr[-3000:]}")


def _start(layout: Layout, name: str, argv: list[str], **kwargs) -> None:
    if processes.is_running(layout.pids.get(name), layout.folder):
        return
    layout.pids[name] = processes.start(argv, layout.log(name), layout.folder, **kwargs)
    layout.save()


def up(home: Path, *, with_servers: bool = False, redis_url: str | None = None,
       echo: Callable[[str], None] = print) -> Layout:
    """Start whatever part of the cluster is not running; wait until the primary has a
    synchronous standby and the schema is migrated. Running it again restarts what died."""
    layout = Layout(home)
    layout.with_servers = layout.with_servers or with_servers
    layout.allocate_ports()
    layout.folder.mkdir(parents=True, exist_ok=True)
    layout.save()
    _check_reachable(layout)
    bindir = _postgres_bindir()
    patroni, etcd, haproxy = _binary("patroni"), _binary("etcd"), _binary("haproxy")

    etcd_peer = f"http://127.0.0.1:{layout.ports['etcd_peer']}"
    etcd_client = f"http://127.0.0.1:{layout.ports['etcd']}"
    _start(layout, "etcd", [
        etcd, "--name", "gridmgr", "--data-dir", str(layout.etcd_dir),
        "--listen-client-urls", etcd_client, "--advertise-client-urls", etcd_client,
        "--listen-peer-urls", etcd_peer, "--initial-advertise-peer-urls", etcd_peer,
        "--initial-cluster", f"gridmgr={etcd_peer}"])
    _wait("etcd answering", lambda: _get_json(etcd_client + "/health")[0] == 200)
    echo(f"etcd on {etcd_client}")

    for node in layout.nodes:
        _prepare_node(layout, node, bindir)
        _start(layout, node.name, [patroni, str(node.config)],
               user=POSTGRES_USER if _owner() else None, cwd=node.folder)
    layout.haproxy_config.write_text(layout.render_haproxy())
    _start(layout, "haproxy", [haproxy, "-db", "-f", str(layout.haproxy_config)])
    _wait("a primary with a synchronous standby", lambda: _has_sync_standby(layout))
    _wait("the primary entry point answering", lambda: _primary_answers(layout))
    echo(f"PostgreSQL primary via {layout.primary_url}")
    _ensure_database(layout)
    _migrate(layout)
    echo("schema migrated")

    if layout.with_servers:
        env = app_environment(layout, redis_url)
        for server in layout.servers:
            # Socket.IO on gevent-websocket's own WebSocket, as the worker class serves it.
            _start(layout, server.name, [
                sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{server.port}",
                "--workers", "1", "--worker-class",
                "geventwebsocket.gunicorn.workers.GeventWebSocketWorker",
                "--graceful-timeout", "5", "--log-level", "warning",
                "--name", f"gridmgr-{server.name}",
                "gridmgr.cluster.serving:create_served_app()"],
                env={**env, "GRIDMGR_ASYNC_MODE": "gevent"})
        for name in WORKER_NAMES:
            _start(layout, name, [sys.executable, "-m", "gridmgr.cli", "worker"], env=env)
        _wait("the gridmgr servers answering", lambda: all(
            _get_json(f"http://127.0.0.1:{s.port}/api/v1/openapi.json")[0] == 200
            for s in layout.servers))
        echo(f"gridmgr on {layout.http_url}")
    return layout


def switchover(home: Path, candidate: str | None = None,
               echo: Callable[[str], None] = print) -> tuple[str, str]:
    """Hand the primary role to ``candidate`` (default: the synchronous standby, the only node
    Patroni accepts in synchronous mode) through Patroni's REST API, for maintenance of the
    primary's machine; wait until the new primary has a synchronous standby again. The names
    of the old and the new primary."""
    layout = Layout(home)
    members = _members(layout)
    leader = next((m["name"] for m in members
                   if m.get("role") == "leader" and m.get("state") == "running"), None)
    if leader is None:
        raise ClusterError("No primary is running: there is nothing to switch over from.")
    candidate = candidate or next((m["name"] for m in members
                                   if m.get("role") == "sync_standby"), None)
    if candidate is None:
        raise ClusterError("There is no synchronous standby to hand the primary role to yet; "
                           "wait until `gridmgr cluster status` shows one.")
    node = next(n for n in layout.nodes if n.name == leader)
    echo(f"switching over from {leader} to {candidate}")
    # Patroni answers once the candidate has been promoted (or the switchover has failed).
    code, answer = _post_json(node.rest_url + "/switchover",
                              {"leader": leader, "candidate": candidate}, timeout=60)
    if code != 200:
        raise ClusterError(f"Patroni refused the switchover from {leader} to {candidate}: "
                           f"{answer.strip() or code}")
    _wait(f"{candidate} primary with a synchronous standby", lambda: _has_sync_standby(layout)
          and any(m["name"] == candidate and m.get("role") == "leader"
                  for m in _members(layout)))
    return leader, candidate


def _stop_postmaster(node: Node, timeout: float = 30.0) -> None:
    """Fast shutdown of a node's PostgreSQL left running without its Patroni."""
    pid = processes.postmaster_pid(node.datadir)
    if pid is None:
        return
    os.kill(pid, 2)  # SIGINT: PostgreSQL's fast shutdown
    end = time.monotonic() + timeout
    while processes.postmaster_pid(node.datadir) and time.monotonic() < end:
        time.sleep(0.1)


def down(home: Path, echo: Callable[[str], None] = print) -> list[str]:
    """Stop every process ``up`` started: the gridmgr processes, HAProxy, the replicas, the
    primary (so no replica takes over while the cluster stops), then etcd. The names stopped."""
    layout = Layout(home)
    if not layout.ports:
        return []
    leader = next((m["name"] for m in _members(layout) if m.get("role") == "leader"), None)
    replicas = [n.name for n in layout.nodes if n.name != leader]
    stopped = []
    for group in ([*WORKER_NAMES, *SERVER_NAMES, "haproxy"], replicas, [leader], ["etcd"]):
        names = processes.stop({name: layout.pids[name] for name in group
                                if name in layout.pids}, layout.folder, timeout=60)
        stopped += names
        for name in names:
            echo(f"stopped {name}")
    for node in layout.nodes:
        _stop_postmaster(node)
    layout.pids = {}
    layout.save()
    return stopped


def status(home: Path) -> dict:
    """Every piece of the cluster with its process id and whether it runs; each node with
    its role and state as Patroni reports them; the entry points."""
    layout = Layout(home)
    if not layout.ports:
        return {"folder": str(layout.folder), "created": False, "nodes": [], "processes": []}
    members = {m["name"]: m for m in _members(layout)}
    nodes = []
    for node in layout.nodes:
        pid = layout.pids.get(node.name)
        member = members.get(node.name, {})
        nodes.append({
            "name": node.name, "role": member.get("role", "unknown"),
            "state": member.get("state", "unreachable"),
            "timeline": member.get("timeline"), "lag": member.get("lag"),
            "pid": pid if processes.is_running(pid, layout.folder) else None,
            "postgres_pid": processes.postmaster_pid(node.datadir),
            "port": node.pg_port, "rest_api": node.rest_url})
    names = ["etcd", "haproxy"]
    if layout.with_servers:
        names += [*SERVER_NAMES, *WORKER_NAMES]
    others = [{"name": name, "pid": layout.pids.get(name),
               "running": processes.is_running(layout.pids.get(name), layout.folder)}
              for name in names]
    return {
        "folder": str(layout.folder), "created": True,
        "entry_points": {
            "primary": layout.primary_url, "replica": layout.replica_url,
            "http": layout.http_url if layout.with_servers else None},
        "nodes": nodes, "processes": others}
