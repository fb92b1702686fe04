"""Fixtures: a real PostGIS database per test session, emptied after every test.

The database server is ``TEST_DATABASE_URL`` (an admin URL) when set, else the machine's
PostgreSQL on 127.0.0.1:5432, else an embedded cluster started for the run.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import psycopg2
import pytest
from flask_migrate import upgrade
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gridmgr import create_app
from gridmgr.database.embedded import EmbeddedCluster
from gridmgr.extensions import db

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()
KEEP_TABLES = {"spatial_ref_sys", "alembic_version"}


def _admin_url() -> str:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return explicit
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    try:
        psycopg2.connect(local, connect_timeout=2).close()
        return local
    except psycopg2.OperationalError:
        home = Path(tempfile.mkdtemp(prefix="gridmgr-test-pg-"))
        home.chmod(0o755)  # the postgres system user runs it when we are root
        cluster = EmbeddedCluster(home)
        cluster.start()
        return cluster.url.replace("/gridmgr?", "/postgres?").replace("+psycopg2", "")


def _psycopg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """A fresh database with PostGIS for this test session (one per xdist worker)."""
    admin = _admin_url()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"gridmgr_test_{worker}_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(_psycopg_dsn(admin))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name, drivername="postgresql+psycopg2")
    yield url.render_as_string(hide_password=False)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    home = tmp_path_factory.mktemp("gridmgr-home")
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "GRIDMGR_HOME": str(home),
        "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
        "RATELIMIT_ENABLED": False,
    })
    with app.app_context():
        upgrade()
    return app


@pytest.fixture(autouse=True)
def _empty_database(request):
    """Every test starts from an empty (migrated) database."""
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    with app.app_context():
        db.session.remove()
        tables = db.session.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
        names = [f'"{t}"' for t in tables if t not in KEEP_TABLES]
        if names:
            db.session.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
            db.session.commit()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
