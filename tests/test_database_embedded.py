"""The embedded PostGIS cluster: gridmgr's own database when no DATABASE_URL is given."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from gridmgr.database.embedded import EmbeddedCluster, EmbeddedDatabaseError

pytestmark = pytest.mark.skipif(not os.path.isdir("/usr/lib/postgresql"),
                                reason="needs the system's PostgreSQL binaries")


def _connect(cluster: EmbeddedCluster):
    url = make_url(cluster.url)
    return psycopg2.connect(dbname=url.database, user=url.username,
                            host=url.query["host"], port=url.query["port"])


@pytest.fixture
def tmp_path():
    """A folder the ``postgres`` system user can enter (pytest's own is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="gridmgr-embedded-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cluster(tmp_path):
    cluster = EmbeddedCluster(tmp_path / "home")
    yield cluster
    cluster.stop()


def test_first_start_creates_a_postgis_database(cluster):
    assert not cluster.is_initialised()
    assert cluster.start() is True
    with _connect(cluster) as conn, conn.cursor() as cur:
        cur.execute("SELECT postgis_version()")
        assert cur.fetchone()[0].startswith("3.")
    assert "running" in cluster.status()


def test_restart_keeps_the_data(cluster):
    cluster.start()
    with _connect(cluster) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE kept (name text); INSERT INTO kept VALUES ('东城区')")
    assert cluster.stop() is True
    assert not cluster.is_running()
    assert "stopped" in cluster.status()
    assert cluster.start() is True
    with _connect(cluster) as conn, conn.cursor() as cur:
        cur.execute("SELECT name FROM kept")
        assert cur.fetchall() == [("东城区",)]


def test_starting_twice_is_harmless(cluster):
    assert cluster.start() is True
    assert cluster.start() is False


def test_two_instances_run_side_by_side(tmp_path):
    first, second = EmbeddedCluster(tmp_path / "a"), EmbeddedCluster(tmp_path / "b")
    try:
        first.start()
        second.start()
        with _connect(first) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE only_in_first (x int)")
        with _connect(second) as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('only_in_first')")
            assert cur.fetchone()[0] is None
    finally:
        first.stop()
        second.stop()


def test_a_home_the_postgres_user_cannot_enter_is_a_clear_error(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    cluster = EmbeddedCluster(private / "home")
    if os.geteuid() != 0:
        pytest.skip("only root hands the cluster to the postgres user")
    with pytest.raises(EmbeddedDatabaseError, match="cannot enter"):
        cluster.start()


def test_a_deep_instance_folder_gets_a_short_socket_path(tmp_path):
    deep = tmp_path / ("very-long-folder-name-" * 5) / "home"
    cluster = EmbeddedCluster(deep)
    assert len(str(cluster.socket_dir)) < 100
    assert cluster.socket_dir == EmbeddedCluster(deep).socket_dir


def test_the_cli_starts_reports_and_stops_the_cluster(tmp_path):
    env = {**os.environ, "GRIDMGR_HOME": str(tmp_path / "cli-home")}
    env.pop("DATABASE_URL", None)
    gridmgr = [sys.executable, "-m", "gridmgr.cli"]

    def run(*args):
        return subprocess.run([*gridmgr, *args], env=env, capture_output=True, text=True,
                              timeout=120)

    assert run("db", "status").returncode == 3
    started = run("db", "start")
    assert started.returncode == 0, started.stderr
    assert "started" in started.stdout
    upgraded = run("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert run("db", "status").returncode == 0
    assert "stopped" in run("db", "stop").stdout
    assert run("db", "status").returncode == 3
