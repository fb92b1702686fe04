"""Upgrading a busy city's database: a migration that builds an index on the case table lets
reports and steps go on meanwhile.

Each story upgrades its own database to just before the migration, keeps a writer's
transaction open on ``cases`` (as a city always has one), and runs the migration. A
concurrent build waits for that writer without taking the table; a plain ``CREATE INDEX``
would queue for a lock that stops every later write until the build ends, so the new case
written meanwhile (with a short ``lock_timeout``) proves which of the two it is.
"""

from __future__ import annotations

import re
import threading
import time
import uuid

import psycopg2
import pytest
from flask_migrate import upgrade
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gridmgr import create_app
from gridmgr.extensions import db

# Migration, the index it builds on cases.
INDEX_MIGRATIONS = [("0025", "ix_cases_created"), ("0027", "ix_cases_description_trgm"),
                    ("0028", "ix_cases_open_location"), ("0029", "ix_cases_open_state_grid")]

A_CASE = """
INSERT INTO cases (code, city_id, state, source, channel, category_id, region_id, grid_code,
                   location)
SELECT %s, ci.id, 'reported', 'citizen', 'app', ca.id, r.id, r.code,
       ST_SetSRID(ST_MakePoint(116.3, 39.9), 4326)
FROM cities ci, categories ca, regions r LIMIT 1
"""

A_CITY = """
INSERT INTO cities (slug, name, timezone) VALUES ('busy', '繁忙市', 'Asia/Shanghai');
INSERT INTO category_classes (code, kind, name_zh, name_en) VALUES ('E01', 'event', '市容', 'A');
INSERT INTO categories (code, class_id, name_zh, name_en)
SELECT 'E0101', id, '暴露垃圾', 'Litter' FROM category_classes;
INSERT INTO regions (city_id, level, code, name, geom, area_m2)
SELECT id, 'grid', '110105001001001', '网格',
       ST_Multi(ST_MakeEnvelope(116.29, 39.89, 116.31, 39.91, 4326)), 1 FROM cities;
"""


@pytest.fixture
def busy_database(database_url):
    """A database of its own (the session's stays at head), dropped afterwards."""
    admin = make_url(database_url).set(database="postgres", drivername="postgresql")
    name = f"gridmgr_online_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(admin.render_as_string(hide_password=False))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = make_url(database_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def _connect(url: str):
    return psycopg2.connect(make_url(url).set(drivername="postgresql")
                            .render_as_string(hide_password=False))


def _migration_waiting(probe, database: str) -> bool:
    """Whether a backend other than ours in ``database`` is waiting on a lock (the build)."""
    with probe.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()", (database,))
        return cur.fetchone()[0] > 0


@pytest.mark.parametrize(("revision", "index"), INDEX_MIGRATIONS)
def test_reports_go_on_while_a_migration_builds_an_index_on_cases(busy_database, tmp_path,
                                                                  revision, index):
    app = create_app({"TESTING": True, "DATABASE_URL": busy_database,
                      "SQLALCHEMY_DATABASE_URI": busy_database, "GRIDMGR_HOME": str(tmp_path),
                      "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
                      "RATELIMIT_ENABLED": False})
    before = f"{int(revision) - 1:04d}"
    with app.app_context():
        upgrade(revision=before)
        db.session.remove()
        db.engine.dispose()
    setup = _connect(busy_database)
    with setup, setup.cursor() as cur:
        cur.execute(A_CITY)
    setup.close()

    writer = _connect(busy_database)  # a step being written: its transaction holds cases
    with writer.cursor() as cur:
        cur.execute(A_CASE, ("BUSY-0001",))
    failures: list[BaseException] = []

    def migrate():
        try:
            with app.app_context():
                upgrade(revision=revision)
        except BaseException as error:  # reported below
            failures.append(error)

    migration = threading.Thread(target=migrate)
    migration.start()
    probe = _connect(busy_database)
    probe.autocommit = True
    database = make_url(busy_database).database
    deadline = time.monotonic() + 30
    while not _migration_waiting(probe, database) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _migration_waiting(probe, database), "the migration never reached its index"

    reporter = _connect(busy_database)
    with reporter.cursor() as cur:
        cur.execute("SET lock_timeout = '3s'")
        cur.execute(A_CASE, ("BUSY-0002",))  # a plain CREATE INDEX makes this time out
    reporter.commit()
    reporter.close()

    writer.commit()
    writer.close()
    migration.join(timeout=60)
    assert not migration.is_alive() and not failures, failures
    with probe.cursor() as cur:
        cur.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass", (index,))
        assert cur.fetchone() == (True,)
        cur.execute("SELECT version_num FROM alembic_version")
        assert cur.fetchone() == (revision,)
        cur.execute("SELECT count(*) FROM cases")
        assert cur.fetchone() == (2,)
    probe.close()


@pytest.mark.parametrize("index", ["ix_cases_open_location", "ix_cases_open_state_grid"])
def test_the_indexes_of_open_cases_hold_exactly_the_states_the_product_calls_open(app_ctx,
                                                                                  index):
    from gridmgr.cases.models import OPEN_STATES

    # the wall and the task lists ask for states among OPEN_STATES; an index over other
    # states would not be read for them
    predicate = db.session.scalar(text(
        "SELECT pg_get_expr(indpred, indrelid) FROM pg_index "
        "WHERE indexrelid = CAST(:index AS regclass)"), {"index": index})
    states = re.findall(r"'([a-z_]+)'", predicate)
    assert sorted(states) == sorted(OPEN_STATES)
