"""Benchmark: locating points at 50,000 unit grids, one at a time and in batches.

Uses the city ``bench/grids.py`` builds (central Chongqing, ~55,000 unit grids) in the same
database (``DATABASE_URL``, else ``gridmgr_bench`` on 127.0.0.1:5432), building it first when
the database does not hold it yet. Measures:

- single lookups through the domain function ``locate`` (PostGIS, GiST index, one statement);
- the same statement unprepared on a bare psycopg2 connection (what preparing it saves);
- single lookups through the HTTP API, ``GET /api/v1/locate``, with Flask's test client (the
  whole Flask + flask-smorest request cycle in-process, without a network or WSGI server);
- batch lookups through ``locate_many`` (the in-process hash grid + STRtree index), for
  points spread over the city's bounding box and for points inside the city;
- batches of 10,000 points through ``POST /api/v1/locate``.

Prints the figures and writes ``bench/results/locate.json``.

    .venv/bin/python bench/locate.py
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg2
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from grids import CITY, bench_app, build_city, migrate_and_empty  # noqa: E402
from record import record  # noqa: E402

from gridmgr.extensions import db  # noqa: E402
from gridmgr.grids import locating  # noqa: E402
from gridmgr.grids.locating import OUTSIDE, locate, locate_many  # noqa: E402

SINGLE_N = 5_000
HTTP_N = 2_000
BATCH_N = 1_000_000


def ensure_city() -> int:
    grids = db.session.scalar(text(
        "SELECT count(*) FROM regions r JOIN cities c ON c.id = r.city_id "
        "WHERE c.slug = :slug AND r.level = 'grid'"), {"slug": CITY}) if db.session.scalar(
        text("SELECT to_regclass('regions') IS NOT NULL")) else 0
    if grids < 50_000:
        print("building the benchmark city (bench/grids.py) ...", flush=True)
        migrate_and_empty()
        with tempfile.TemporaryDirectory() as tmp:
            build_city(Path(tmp))
    return db.session.scalar(text("SELECT count(*) FROM regions WHERE level = 'grid'"))


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1)


def main() -> None:
    app = bench_app()
    client = app.test_client()
    with app.app_context():
        grid_count = ensure_city()
        west, south, east, north = db.session.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            "FROM (SELECT ST_Extent(geom) AS e FROM regions WHERE level = 'grid') s")).one()
        rng = np.random.default_rng(2026)
        box_x = rng.uniform(west, east, BATCH_N)
        box_y = rng.uniform(south, north, BATCH_N)

        t = time.perf_counter()
        index = locating.current_index()
        build_s = time.perf_counter() - t
        ids = locate_many(box_x, box_y)
        inside = ids != OUTSIDE
        in_x, in_y = box_x[inside], box_y[inside]

        def best_batch(x, y, repeat=3):
            """Best wall time of ``locate_many`` and the process CPU time of that run."""
            best = (float("inf"), float("inf"))
            for _ in range(repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                locate_many(x, y)
                best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
            return best

        def index_only(x, y):
            """CPU time of the in-process index alone (no version check query)."""
            c0 = time.process_time()
            index.locate_ids(x, y)
            return time.process_time() - c0

        batch_box_s, batch_box_cpu = best_batch(box_x, box_y)
        batch_in_s, batch_in_cpu = best_batch(in_x, in_y)
        index_box_cpu = min(index_only(box_x, box_y) for _ in range(3))
        index_in_cpu = min(index_only(in_x, in_y) for _ in range(3))
        small = best_batch(in_x[:100], in_y[:100], repeat=20)

        # Single lookups through the domain function (PostGIS).
        latencies = []
        for x, y in zip(in_x[:SINGLE_N].tolist(), in_y[:SINGLE_N].tolist(), strict=True):
            t0 = time.perf_counter()
            locate(x, y)
            latencies.append(time.perf_counter() - t0)
        single = np.array(latencies)
        db.session.rollback()

        # The same statement on a bare connection: what the database itself takes.
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        raw = psycopg2.connect(url)
        sql = str(locating.LOCATE_SQL).replace(":lon", "%(lon)s").replace(":lat", "%(lat)s")
        with raw.cursor() as cur:
            cur.execute("SET max_parallel_workers_per_gather = 0")
            t0 = time.perf_counter()
            for x, y in zip(in_x[:SINGLE_N].tolist(), in_y[:SINGLE_N].tolist(), strict=True):
                cur.execute(sql, {"lon": x, "lat": y})
                cur.fetchall()
            raw_s = time.perf_counter() - t0
        raw.close()

    # HTTP, in-process (Flask test client).
    t0 = time.perf_counter()
    for x, y in zip(in_x[:HTTP_N].tolist(), in_y[:HTTP_N].tolist(), strict=True):
        response = client.get(f"/api/v1/locate?lon={x}&lat={y}")
        assert response.status_code == 200, response.get_json()
    http_s = time.perf_counter() - t0

    points = np.column_stack([in_x[:10_000], in_y[:10_000]]).tolist()
    client.post("/api/v1/locate", json={"points": points})
    t0 = time.perf_counter()
    for _ in range(5):
        response = client.post("/api/v1/locate", json={"points": points})
        assert response.status_code == 200
    http_batch_s = (time.perf_counter() - t0) / 5

    figures = {
        "grids": grid_count,
        "index": {"build_s": round(build_s, 3), **index.hash_stats},
        "single_domain": {"lookups_per_s": rate(len(single), single.sum()),
                          "mean_ms": round(single.mean() * 1000, 3),
                          "p50_ms": round(float(np.percentile(single, 50)) * 1000, 3),
                          "p99_ms": round(float(np.percentile(single, 99)) * 1000, 3),
                          "how": "gridmgr.grids.locating.locate, PostGIS GiST, one statement"},
        "single_postgis_bare": {"lookups_per_s": rate(SINGLE_N, raw_s),
                                "how": "the same SQL unprepared (parsed and planned on "
                                       "every call) on a bare psycopg2 connection"},
        "single_http": {"requests_per_s": rate(HTTP_N, http_s),
                        "mean_ms": round(http_s / HTTP_N * 1000, 3),
                        "how": "GET /api/v1/locate through Flask's test client, in-process"},
        "batch_domain": {
            "points_per_s_bbox": rate(BATCH_N, batch_box_s),
            "points_per_s_bbox_cpu": rate(BATCH_N, batch_box_cpu),
            "inside_share_bbox": round(float(inside.mean()), 3),
            "points_per_s_inside": rate(len(in_x), batch_in_s),
            "points_per_s_inside_cpu": rate(len(in_x), batch_in_cpu),
            "index_only_points_per_s_bbox_cpu": rate(BATCH_N, index_box_cpu),
            "index_only_points_per_s_inside_cpu": rate(len(in_x), index_in_cpu),
            "batch_of_100_ms": round(small[0] * 1000, 3),
            "how": "gridmgr.grids.locating.locate_many over 1,000,000 random points in the "
                   "grids' bounding box (and the ones of them inside the city), best of 3; "
                   "wall time and this process's CPU time (the machine is shared)"},
        "batch_http": {"points_per_s": rate(10_000, http_batch_s),
                       "request_ms": round(http_batch_s * 1000, 1),
                       "how": "POST /api/v1/locate with 10,000 points, Flask test client"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
    }
    record("locate", figures)
    print(json.dumps(figures, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
