"""Fixtures: a real PostGIS database per test session, emptied after every test.

The database server is ``TEST_DATABASE_URL`` (an admin URL) when set, else the machine's
PostgreSQL on 127.0.0.1:5432, else an embedded cluster started for the run.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg2
import pytest
from flask_migrate import upgrade
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gridmgr import create_app
from gridmgr.calendar import deadlines
from gridmgr.categories import suggest
from gridmgr.database.embedded import EmbeddedCluster
from gridmgr.extensions import db

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "tests" / "data"
KEEP_TABLES = {"spatial_ref_sys", "alembic_version"}


def _refuse_reads_beside_the_checkout(event: str, args: tuple) -> None:
    """A clone must pass alone: opening a file of the shared folder that sits beside a
    checkout (the project's source of test data) fails the test that does it."""
    if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    if path == _BESIDE or path.startswith(_BESIDE + os.sep):
        raise PermissionError(f"tests read only files inside the repository, not {path}")


_BESIDE = str(ROOT.parent / "shared")
sys.addaudithook(_refuse_reads_beside_the_checkout)


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
    # Ids and versions start again with the emptied tables: what this process keeps by id
    # (calendars by version, suggesters by id) would answer the next test with this one's.
    deadlines._calendars.clear()
    suggest._cache.clear()
    suggest._models.clear()


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
def publish_at_once(app):
    """For stories about the shape of public documents rather than about when a report may be
    published: a citizen's report is public as soon as it is made, its point at six decimals."""
    keys = ("GRIDMGR_PUBLISH_CITIZEN_REPORTS_FROM", "GRIDMGR_PUBLIC_COORDINATE_DECIMALS")
    before = {key: app.config[key] for key in keys}
    app.config.update(GRIDMGR_PUBLISH_CITIZEN_REPORTS_FROM="reported",
                      GRIDMGR_PUBLIC_COORDINATE_DECIMALS=6)
    yield
    app.config.update(before)


@pytest.fixture
def data_dir() -> Path:
    """Real boundary files and an Open311 catalogue kept with the tests (see its README)."""
    return DATA_DIR


# --- people: users, tokens, signing in --------------------------------------------------------

TEST_PASSWORD = "pw-secret-123"
TEST_CITY_SLUG = "test-city"


def _test_region(code: str):
    """The region with ``code``, created with its ancestors in a test city when it is missing."""
    from sqlalchemy import select

    from gridmgr.grids.models import LEVEL_OF_CODE_LENGTH, City, Region

    region = db.session.scalar(select(Region).where(Region.code == code))
    if region is not None:
        return region
    city = db.session.scalar(select(City).where(City.slug == TEST_CITY_SLUG))
    if city is None:
        city = City(slug=TEST_CITY_SLUG, name="测试市", timezone="Asia/Shanghai")
        db.session.add(city)
        db.session.flush()
    parent = None
    for length in LEVEL_OF_CODE_LENGTH:
        if length > len(code):
            break
        prefix = code[:length]
        region = db.session.scalar(select(Region).where(Region.code == prefix))
        if region is None:
            region = Region(city_id=city.id, level=LEVEL_OF_CODE_LENGTH[length], code=prefix,
                            name=f"测试 {prefix}", parent_id=parent.id if parent else None,
                            geom="SRID=4326;MULTIPOLYGON(((116.3 39.9,116.31 39.9,116.31 39.91,"
                                 "116.3 39.91,116.3 39.9)))", area_m2=1_000_000.0)
            db.session.add(region)
            db.session.flush()
        parent = region
    return region


@functools.lru_cache(maxsize=8)
def _cached_hash(password: str) -> str:
    """Argon2 is slow on purpose; tests reuse one salted hash per password."""
    from gridmgr.people.passwords import hash_password

    return hash_password(password)


@pytest.fixture
def make_user(app_ctx):
    """``make_user(role, username=None, region_code=None, department=None, password=...)``.

    A committed user; a missing region code is created (with ancestors) in a test city, a
    department named by a string is created when missing, department staff get one by default.
    """
    from sqlalchemy import select

    from gridmgr.people.models import Department, User

    counter = iter(range(1, 10_000))

    def _make(role: str, username: str | None = None, region_code: str | None = None,
              department=None, password: str = TEST_PASSWORD, **fields) -> User:
        region = _test_region(region_code) if region_code else None
        if department is None and role == "department":
            department = "测试部门"
        if isinstance(department, str):
            name = department
            department = db.session.scalar(select(Department).where(Department.name == name))
            if department is None:
                department = Department(name=name, name_en=f"Test {name}")
                db.session.add(department)
                db.session.flush()
        user = User(username=username or f"{role}{next(counter)}", role=role,
                    password_hash=_cached_hash(password),
                    is_active=fields.pop("is_active", True),
                    region_id=region.id if region else None,
                    city_id=region.city_id if region else fields.pop("city_id", None),
                    department_id=department.id if department else None, **fields)
        db.session.add(user)
        db.session.commit()
        return user

    return _make


@pytest.fixture
def auth_headers(app_ctx):
    """``auth_headers(user)``: an ``Authorization: Bearer`` header with a fresh access token."""
    from gridmgr.people.tokens import issue_tokens

    def _headers(user) -> dict:
        return {"Authorization": f"Bearer {issue_tokens(user)['access_token']}"}

    return _headers


class AuthActions:
    """Signing in through the API, as a phone would."""

    def __init__(self, client):
        self._client = client
        self.tokens: dict | None = None

    def login(self, username: str, password: str = TEST_PASSWORD):
        response = self._client.post("/api/v1/auth/token",
                                     json={"username": username, "password": password})
        self.tokens = response.get_json() if response.status_code == 200 else None
        return response

    @property
    def headers(self) -> dict:
        assert self.tokens, "log in first"
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    def refresh(self):
        response = self._client.post("/api/v1/auth/refresh", headers={
            "Authorization": f"Bearer {self.tokens['refresh_token']}"})
        if response.status_code == 200:
            self.tokens = response.get_json()
        return response


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def people(app_ctx, make_user):
    """The live-dispatch cast in tests/dispatch_world.py's city: a worker on duty rostered
    on grid A, one on grid B, the street centre, a reporter and an operator."""
    from dispatch_world import GRID_A, GRID_B, STREET, build_city, go_on_duty

    from gridmgr.dispatch.rosters import add_roster_entry

    build_city()
    worker = make_user("inspector", username="worker_a", region_code=GRID_A)
    other = make_user("inspector", username="worker_b", region_code=GRID_B)
    add_roster_entry("worker_a", GRID_A)
    add_roster_entry("worker_b", GRID_B)
    go_on_duty(worker)
    go_on_duty(other)
    return {"worker": worker, "other": other,
            "street": make_user("duty_chief", region_code=STREET),
            "reporter": make_user("inspector", username="reporter"),
            "operator": make_user("operator")}
