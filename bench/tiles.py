"""Benchmark: the wall's unit-grid vector tiles and feeds at 50,000 grids and 100,000 open cases.

The city is a lattice of 50,000 unit grids of about 100 m x 100 m (250 x 200), grouped into
500 communities, 50 streets and 5 districts, with 100,000 open cases (a third of them
dispatched with a running clock, some overdue) and one report each in the last 7 days, all
written with SQL (the intake's own speed is benchmarked elsewhere). Every request goes
through the app (token check, scope, SQL, response) with Flask's test client, so the
figures are what the server spends on a tile, without the network.

Database: ``DATABASE_URL`` when set (its cities are replaced), else ``gridmgr_bench_maps`` on
the PostgreSQL at 127.0.0.1:5432, created when missing; or, with ``--database``, an already
built city measured as it is (``bench/bigcity.py``'s ten million cases: the tiles and windows
then cover its grids). Prints the figures and writes ``bench/results/tiles.json``.

    .venv/bin/python bench/tiles.py [--tiles-per-zoom 120]
    .venv/bin/python bench/tiles.py --zooms 14 --database \
        postgresql+psycopg2://postgres@127.0.0.1:5432/gridmgr_bench_bigcity
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from record import record  # noqa: E402

from gridmgr import create_app  # noqa: E402
from gridmgr.extensions import db  # noqa: E402

DB_NAME = "gridmgr_bench_maps"
COLS, ROWS = 250, 200  # unit grids
WEST, NORTH = 106.40, 29.70
GRID_W, GRID_H = 0.00104, 0.0009  # about 100 m x 100 m at 29.6° N
CASES = 100_000
ZOOMS = range(12, 18)
MEASURES = ("open", "overdue", "reports7d", "forecast")


def bench_app(url: str | None = None):
    """The app on ``url``, else on the benchmark database (created when missing unless
    DATABASE_URL is set)."""
    url = url or os.environ.get("DATABASE_URL")
    if not url:
        admin = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
            if cur.fetchone() is None:
                cur.execute(f"CREATE DATABASE {DB_NAME}")
        admin.close()
        url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{DB_NAME}"
    home = Path(tempfile.mkdtemp(prefix="gridmgr-bench-"))
    return create_app({"DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                       "GRIDMGR_HOME": str(home), "RATELIMIT_ENABLED": False,
                       "SECRET_KEY": "bench-secret-key-of-sufficient-length-0123456789"})


REGIONS_SQL = """
WITH lattice AS (
    SELECT c AS col, r AS row FROM generate_series(0, :cols - 1) c, generate_series(0, :rows - 1) r
), coded AS (
    SELECT col, row,
           row / 40 AS d,                           -- 5 districts, 40 rows each
           (row % 40) / 20 * 5 + col / 50 AS s,      -- 10 streets per district: 50 x 20 grids
           (row % 20) / 10 * 5 + (col % 50) / 10 AS m, -- 10 communities per street: 10 x 10
           (row % 10) * 10 + col % 10 + 1 AS serial   -- west to east, then north to south
    FROM lattice
)
SELECT col, row, '11010' || (d + 1) AS district,
       '11010' || (d + 1) || lpad((s + 1)::text, 3, '0') AS street,
       '11010' || (d + 1) || lpad((s + 1)::text, 3, '0') || lpad((m + 1)::text, 3, '0')
           AS community,
       '11010' || (d + 1) || lpad((s + 1)::text, 3, '0') || lpad((m + 1)::text, 3, '0')
           || lpad(serial::text, 3, '0') AS grid
FROM coded
"""


def build_city() -> int:
    """The lattice city, its categories, 100,000 open cases with reports; the city id."""
    from gridmgr.categories.operations import load_default_catalogue

    db.session.execute(text("TRUNCATE cities, cases, reports, live_events RESTART IDENTITY "
                            "CASCADE"))
    city_id = db.session.scalar(text(
        "INSERT INTO cities (slug, name, timezone) VALUES ('bench', '基准市', 'Asia/Shanghai') "
        "RETURNING id"))
    params = {"cols": COLS, "rows": ROWS, "w": WEST, "n": NORTH, "gw": GRID_W, "gh": GRID_H,
              "city": city_id}
    db.session.execute(text(f"""
        CREATE TEMP TABLE lattice ON COMMIT DROP AS {REGIONS_SQL}"""), params)
    for level, parent in (("district", None), ("street", "district"),
                          ("community", "street"), ("grid", "community")):
        # One rectangle per code over its lattice cells; the parent found by its code.
        parent_code = f"min(l.{parent})" if parent else "NULL"
        db.session.execute(text(f"""
            INSERT INTO regions (city_id, level, code, name, parent_id, geom, area_m2)
            SELECT :city, :level, x.code, :level || ' ' || x.code, p.id,
                   ST_Multi(ST_MakeEnvelope(:w + x.c0 * :gw, :n - (x.r1 + 1) * :gh,
                                            :w + (x.c1 + 1) * :gw, :n - x.r0 * :gh, 4326)),
                   10000.0 * x.cells
            FROM (SELECT l.{level} AS code, {parent_code} AS parent_code, min(l.col) c0,
                         max(l.col) c1, min(l.row) r0, max(l.row) r1, count(*) cells
                  FROM lattice l GROUP BY l.{level}) x
            LEFT JOIN regions p ON p.city_id = :city AND p.code = x.parent_code
        """), {**params, "level": level})
    load_default_catalogue()
    db.session.flush()
    # Grids and categories numbered 0..n-1, so each case picks one by arithmetic.
    db.session.execute(text("""
        CREATE TEMP TABLE numbered ON COMMIT DROP AS
        SELECT row_number() OVER (ORDER BY code) - 1 AS n, id, code, ST_Centroid(geom) AS c
        FROM regions WHERE city_id = :city AND level = 'grid';
        CREATE TEMP TABLE numbered_categories ON COMMIT DROP AS
        SELECT row_number() OVER (ORDER BY code) - 1 AS n, id FROM categories;
    """), params)
    db.session.execute(text("""
        INSERT INTO cases (code, city_id, state, source, channel, category_id, region_id,
                           grid_code, location, dispatched_at, clock_unit, deadline, yellow_at,
                           created_at, updated_at)
        SELECT 'B' || lpad(i::text, 12, '0'), :city,
               CASE WHEN i % 3 = 0 THEN 'dispatched' WHEN i % 3 = 1 THEN 'filed'
                    ELSE 'reported' END,
               'inspector', 'app', cat.id, g.id, g.code,
               ST_SetSRID(ST_MakePoint(ST_X(c) + (random() - 0.5) * :gw * 0.9,
                                       ST_Y(c) + (random() - 0.5) * :gh * 0.9), 4326),
               CASE WHEN i % 3 = 0 THEN now() - interval '2 days' END,
               CASE WHEN i % 3 = 0 THEN 'working_days' END,
               CASE WHEN i % 3 = 0 THEN now() + (i % 7 - 2) * interval '1 day' END,
               CASE WHEN i % 3 = 0 THEN now() + (i % 7 - 3) * interval '1 day' END,
               now() - (i % 168) * interval '1 hour', now()
        FROM generate_series(1, :cases) i
        JOIN numbered g ON g.n = (hashint4(i) & 2147483647) % :grids
        JOIN numbered_categories cat ON cat.n = i % (SELECT count(*) FROM categories)
    """), {**params, "cases": CASES, "grids": COLS * ROWS})
    db.session.execute(text("""
        INSERT INTO reports (reporter_key, client_id, channel, coord_sys, location, category_id,
                             case_id, created_at)
        SELECT 'bench', code, 'app', 'wgs84', location, category_id, id, created_at FROM cases
        WHERE city_id = :city
    """), params)
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    return city_id


LATTICE = (WEST, NORTH - ROWS * GRID_H, WEST + COLS * GRID_W, NORTH)


def tile_range(z: int, bounds: tuple[float, float, float, float] = LATTICE
               ) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 of the tiles covering ``bounds`` (west, south, east, north) at zoom z."""
    def tile(lon, lat):
        n = 2 ** z
        return (int((lon + 180) / 360 * n),
                int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))
    west, south, east, north = bounds
    x0, y0 = tile(west, north)
    x1, y1 = tile(east - 1e-9, south + 1e-9)
    return x0, y0, x1, y1


def timed(client, url: str, headers: dict) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.get(url, headers=headers)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, (url, response.status_code, response.data[:200])
    return elapsed, len(response.data)


def summary(times: list[float], sizes: list[int]) -> dict:
    ordered = sorted(times)
    return {"n": len(times), "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] * 1000, 1),
            "per_s": round(len(times) / sum(times), 1),
            "bytes_mean": round(statistics.mean(sizes)), "bytes_max": max(sizes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles-per-zoom", type=int, default=120)
    parser.add_argument("--reuse", action="store_true", help="keep an already built city")
    parser.add_argument("--database", help="measure this already built city as it is")
    parser.add_argument("--zooms", type=int, nargs="+", default=list(ZOOMS))
    parser.add_argument("--measures", nargs="+", default=list(MEASURES),
                        help="the measures of the z14 tiles (the other zooms: open)")
    parser.add_argument("--no-feeds", action="store_true", help="the tiles alone")
    args = parser.parse_args()
    app = bench_app(args.database)
    rng = random.Random(7)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        built = time.perf_counter()
        grids = db.session.scalar(text("SELECT count(*) FROM regions WHERE level = 'grid'"))
        if not args.database and (not args.reuse or grids != COLS * ROWS):
            build_city()
        build_seconds = time.perf_counter() - built
        bounds = LATTICE
        if args.database:
            bounds = db.session.execute(text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                "ST_Extent(geom) AS e FROM regions WHERE level = 'grid') x")).one()
        cases = db.session.scalar(text("SELECT count(*) FROM cases"))
        counts = dict(db.session.execute(text(
            "SELECT level, count(*) FROM regions GROUP BY level")).all())
        open_cases = db.session.scalar(text(
            "SELECT count(*) FROM cases WHERE state NOT IN ('closed', 'cancelled')"))
        from gridmgr.people.models import User
        from gridmgr.people.passwords import hash_password
        from gridmgr.people.tokens import encode_token

        chief = db.session.scalar(text("SELECT id FROM users WHERE username = 'bench-chief'"))
        if chief is None:
            user = User(username="bench-chief", role="duty_chief",
                        password_hash=hash_password("bench-password"),
                        city_id=db.session.scalar(text("SELECT id FROM cities LIMIT 1")))
            db.session.add(user)
            db.session.commit()
            chief = user.id
        headers = {"Authorization": "Bearer " + encode_token(db.session.get(User, chief),
                                                             "access")}
    client = app.test_client()
    results = {"city": {**counts, "open_cases": open_cases, "cases": cases,
                        "build_seconds": round(build_seconds, 1)},
               "load_average_1m": round(os.getloadavg()[0], 1),
               "tiles": {}, "feeds": {}}
    print(f"city: {counts} grids, {open_cases} open cases (built in {build_seconds:.1f} s)")
    print(f"{'zoom':>4} {'measure':>9} {'n':>4} {'p50 ms':>7} {'p95 ms':>7} {'tiles/s':>8} "
          f"{'kB mean':>8} {'kB max':>7}")
    for z in args.zooms:
        x0, y0, x1, y1 = tile_range(z, bounds)
        picks = [(rng.randint(x0, x1), rng.randint(y0, y1)) for _ in range(args.tiles_per_zoom)]
        measures = args.measures if z == 14 else ("open",)
        for measure in measures:
            # the first tile of a measure; for the forecast it computes the city's forecast,
            # which the process then keeps until a new case
            first, _ = timed(client, f"/maps/tiles/grids/{z}/{x0}/{y0}.pbf?measure={measure}",
                             headers)
            if measure == "forecast":
                results["forecast_first_tile_ms"] = round(first * 1000, 1)
                print(f"first forecast tile (the city's forecast computed): {first * 1000:.0f} ms")
            times, sizes = [], []
            for x, y in picks:
                elapsed, size = timed(client, f"/maps/tiles/grids/{z}/{x}/{y}.pbf?measure="
                                      f"{measure}", headers)
                times.append(elapsed)
                sizes.append(size)
            row = summary(times, sizes)
            results["tiles"][f"z{z}_{measure}"] = row
            print(f"{z:>4} {measure:>9} {row['n']:>4} {row['p50_ms']:>7} {row['p95_ms']:>7} "
                  f"{row['per_s']:>8} {row['bytes_mean'] / 1024:>8.1f} "
                  f"{row['bytes_max'] / 1024:>7.1f}")

    lon0, lat0, lon1, lat1 = bounds
    feeds = {
        # a wall at zoom 14 (about 2.5 km x 1.5 km) and the whole city (clusters)
        "cases_z14": lambda: "/maps/feeds/cases?bbox={},{},{},{}".format(
            *_window(rng, lon0, lat0, lon1, lat1, 0.025, 0.015)),
        "cases_city": lambda: f"/maps/feeds/cases?bbox={lon0},{lat0},{lon1},{lat1}",
        "heat_z14": lambda: "/maps/feeds/heat?bbox={},{},{},{}".format(
            *_window(rng, lon0, lat0, lon1, lat1, 0.025, 0.015)),
        "boundaries_community_city": lambda: (
            f"/maps/feeds/boundaries?level=community&zoom=12&bbox={lon0},{lat0},{lon1},{lat1}"),
        "stats": lambda: "/maps/feeds/stats",
        # kept per process for 5 minutes (or until a new case); the first call computes it
        "hotspots": lambda: "/maps/feeds/hotspots",
    }
    print(f"{'feed':>26} {'n':>4} {'p50 ms':>7} {'p95 ms':>7} {'kB mean':>8}")
    for name, make_url in ({} if args.no_feeds else feeds).items():
        if name == "hotspots":
            first, _ = timed(client, make_url(), headers)
            results["hotspots_first_ms"] = round(first * 1000, 1)
            print(f"first hotspots feed (this week's hotspots computed): {first * 1000:.0f} ms")
        times, sizes = [], []
        for _ in range(20):
            elapsed, size = timed(client, make_url(), headers)
            times.append(elapsed)
            sizes.append(size)
        row = summary(times, sizes)
        results["feeds"][name] = row
        print(f"{name:>26} {row['n']:>4} {row['p50_ms']:>7} {row['p95_ms']:>7} "
              f"{row['bytes_mean'] / 1024:>8.1f}")
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    record("tiles", results)


def _window(rng, lon0, lat0, lon1, lat1, width, height) -> tuple[float, float, float, float]:
    w = rng.uniform(lon0, lon1 - width)
    s = rng.uniform(lat0, lat1 - height)
    return round(w, 6), round(s, 6), round(w + width, 6), round(s + height, 6)


if __name__ == "__main__":
    main()
