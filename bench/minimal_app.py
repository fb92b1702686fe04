"""The ceiling for intake: a minimal Flask app whose one endpoint locates a point in its unit
grid (the same statement as ``gridmgr.grids.locating``) and inserts one row. Nothing else:
no validation library, no ORM, no auth, no history, no live event.

Serve it like the real app: ``gunicorn -w 4 'bench.minimal_app:create_app()'`` with
``DATABASE_URL`` set. ``bench/intake.py`` does this and compares.
"""

from __future__ import annotations

import os
import threading

import psycopg2
from flask import Flask, g, jsonify, request

from gridmgr.grids.locating import LOCATE_SQL

TABLE = """CREATE TABLE IF NOT EXISTS bench_minimal_reports (
    id bigserial PRIMARY KEY, client_id text UNIQUE, region_id integer,
    location geometry(Point, 4326), created_at timestamptz DEFAULT now())"""
LOCATE = str(LOCATE_SQL.text).replace(":lon", "%(lon)s").replace(":lat", "%(lat)s")
INSERT = """INSERT INTO bench_minimal_reports (client_id, region_id, location)
VALUES (%(client_id)s, %(region_id)s, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))
RETURNING id"""


def create_app() -> Flask:
    app = Flask(__name__)
    url = os.environ["DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://")

    local = threading.local()  # one connection per worker thread (gthread workers share none)

    def connection():
        if "conn" not in g:
            conn = getattr(local, "conn", None)
            if conn is None or conn.closed:
                conn = psycopg2.connect(url)
                local.conn = conn
            g.conn = conn
        return g.conn

    @app.post("/report")
    def report():
        body = request.get_json()
        lon, lat = float(body["lon"]), float(body["lat"])
        conn = connection()
        with conn.cursor() as cur:
            cur.execute(LOCATE, {"lon": lon, "lat": lat})
            rows = cur.fetchall()
            if not rows:
                conn.rollback()
                return jsonify(error={"code": "outside_city"}), 422
            cur.execute(INSERT, {"client_id": body["client_id"], "region_id": rows[0][0],
                                 "lon": lon, "lat": lat})
            report_id = cur.fetchone()[0]
        conn.commit()
        return jsonify(id=report_id, grid=rows[0][2]), 201

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(4242)")  # workers boot at once
        cur.execute(TABLE)
    return app
