"""What the benchmarks that build their own synthetic city share.

``fresh_database`` drops and creates a scratch database on the PostgreSQL at 127.0.0.1:5432
(user postgres); ``migrated_app`` is the app on it with the schema at head. The SQL every such
city starts from: ``CITY`` (city 1, Asia/Shanghai), ``CATEGORIES`` (one class of 20 event
categories, ids 1–20) and ``GRID_SLOTS`` (a temp table numbering the unit grids from 0, to
spread cases over them); ``run_statements`` runs such scripts in the session. ``percentile``
reads the timings; ``record.record`` keeps the figures.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg2
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text

from gridmgr import create_app
from gridmgr.extensions import db

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

CITY = """
INSERT INTO cities (id, slug, name, timezone) VALUES (1, 'bench', '基准市', 'Asia/Shanghai')
"""

CATEGORIES = """
INSERT INTO category_classes (id, code, kind, name_zh, name_en)
VALUES (1, 'B01', 'event', '基准', 'Bench');
INSERT INTO categories (id, code, class_id, name_zh, name_en)
SELECT n, 'B01' || lpad(n::text, 2, '0'), 1, '类别' || n, 'Category ' || n
FROM generate_series(1, 20) n
"""

# Temporary: only the building reads it, on the session's connection.
GRID_SLOTS = """
CREATE TEMP TABLE bench_grids AS
SELECT (row_number() OVER (ORDER BY code)) - 1 AS slot, id, code
FROM regions WHERE level = 'grid'
"""


def fresh_database(name: str) -> str:
    """Drop the database ``name`` if it is there, create it empty; return its SQLAlchemy URL."""
    admin = psycopg2.connect(ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    server = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql:", "postgresql+psycopg2:")
    return f"{server}/{name}"


def migrated_app(url: str) -> Flask:
    """The app on the database at ``url`` (rate limits off, a throwaway home), migrated to head."""
    app = create_app({"DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                      "GRIDMGR_HOME": tempfile.mkdtemp(prefix="gridmgr-bench-"),
                      "SECRET_KEY": "bench-secret-key-long-enough-for-hs256",
                      "RATELIMIT_ENABLED": False})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    return app


def run_statements(*scripts: str) -> None:
    """Execute each script's statements (each ending in ``;`` at a line's end) in the session."""
    for script in scripts:
        for statement in script.split(";\n"):
            if statement.strip():
                db.session.execute(text(statement))


def percentile(samples: list[float], share: float) -> float:
    """The sample ``share`` (0 to 1) of the way through the sorted samples, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]
