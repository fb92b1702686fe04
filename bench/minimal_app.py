"""The ceiling for intake: a minimal Flask app whose one endpoint locates a point in its unit
grid with the grid's parents (the same lookup as ``gridmgr.grids.locating``) and inserts one
row. Nothing else: no validation library, no ORM, no auth, no history, no live event.

It is written as fast as such an app can be, with what gridmgr itself uses: one server-side
prepared statement per connection, planned once (``force_generic_plan``), that locates and
inserts in one round trip on an autocommit connection. Run unprepared, the lookup then the
insert then a COMMIT, it took 1,064/s against 1,474/s for this one in alternating turns on the
same machine: a slower ceiling would make gridmgr's share of it look larger than it is.

Serve it like the real app: ``gunicorn -w 4 'bench.minimal_app:create_app()'`` with
``DATABASE_URL`` set. ``bench/intake.py`` does this and compares.
"""

from __future__ import annotations

import os
import threading

import psycopg2
from flask import Flask, jsonify, request

from gridmgr.grids.locating import LOCATE_SQL

TABLE = """CREATE TABLE IF NOT EXISTS bench_minimal_reports (
    id bigserial PRIMARY KEY, client_id text UNIQUE, region_id integer,
    location geometry(Point, 4326), created_at timestamptz DEFAULT now())"""
# The lookup (the grid and its parents, depth 0 first), then the insert of the grid's row.
LOCATE = LOCATE_SQL.text.replace(":lon", "$1").replace(":lat", "$2").replace(
    "SELECT id, level, code, name, city_id FROM chain ORDER BY depth",
    "SELECT id, level, code, name, city_id, depth FROM chain")
REPORT = f"""PREPARE minimal_report(float8, float8, text) AS
WITH located AS ({LOCATE}), inserted AS (
    INSERT INTO bench_minimal_reports (client_id, region_id, location)
    SELECT $3, id, ST_SetSRID(ST_MakePoint($1, $2), 4326) FROM located WHERE depth = 0
    RETURNING id
)
SELECT (SELECT id FROM inserted), (SELECT code FROM located WHERE depth = 0),
       (SELECT json_agg(code ORDER BY depth DESC) FROM located)"""


def create_app() -> Flask:
    app = Flask(__name__)
    url = os.environ["DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://")

    local = threading.local()  # one connection per worker thread (gthread workers share none)

    def connection():
        conn = getattr(local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg2.connect(url)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SET plan_cache_mode = force_generic_plan")
                cur.execute(REPORT)
            local.conn = conn
        return conn

    @app.post("/report")
    def report():
        body = request.get_json()
        lon, lat = float(body["lon"]), float(body["lat"])
        with connection().cursor() as cur:
            cur.execute("EXECUTE minimal_report(%s, %s, %s)", (lon, lat, body["client_id"]))
            report_id, grid, regions = cur.fetchone()
        if report_id is None:
            return jsonify(error={"code": "outside_city"}), 422
        return jsonify(id=report_id, grid=grid, regions=regions), 201

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(4242)")  # workers boot at once
        cur.execute(TABLE)
    return app


def create_hello_app() -> Flask:
    """The machine's yardstick: a Flask "hello" endpoint, served and loaded as the two apps
    are. ``bench/intake.py`` measures it before and after the apps, so that each run says how
    fast the machine was."""
    app = Flask(__name__)

    @app.get("/")
    def hello():
        return "Hello, World!"

    return app
