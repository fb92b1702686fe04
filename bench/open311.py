"""Benchmark: Open311 POST latency, GET requests over a large city, and open-data streaming.

Files POSTS requests through ``/open311/v2/requests.json`` (median and p95 latency), then adds
CASES cases spread over the last 80 days with one SQL statement, and times a full page
(1000 requests) of ``GET requests`` in JSON and XML, with and without ``extensions=true``,
the newest 100 requests (``page_size=100``, p95 of 40 reads), ``servicerequestupdates`` and
the streamed ``/open-data/cases.csv`` of every case (``--without-open-data`` leaves the
streams out: at 1,000,000 cases each takes minutes).

Side by side, in the same process and in alternating turns so that the machine's drift falls
on both alike: Open311 POSTs per second (form-encoded, anonymous, with an API key) against the
mobile intake's anonymous ``POST /api/v1/reports`` of the same report; the aim is at least
80 % of the mobile rate (both take the one intake statement of ``gridmgr.cases.intake``).

Database: ``gridmgr_bench_open311`` (``--database``: two checkouts measured side by side
need a database each) on the PostgreSQL at 127.0.0.1:5432 (user postgres), created afresh and
dropped at the end. Writes ``bench/results/open311.json``.

    .venv/bin/python bench/open311.py [POSTS] [CASES] [--database NAME] [--without-open-data]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from flask_migrate import upgrade  # noqa: E402
from open311_world import IN_EAST, IN_WEST, build_world  # noqa: E402
from record import record  # noqa: E402
from sqlalchemy import text  # noqa: E402

from gridmgr import create_app  # noqa: E402
from gridmgr.extensions import db  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
NAME = "gridmgr_bench_open311"

BULK_CASES = text("""
INSERT INTO cases (code, city_id, state, source, channel, category_id, region_id, grid_code,
                   location, description, created_at, updated_at)
SELECT '2000' || lpad(g::text, 10, '0'), t.city_id,
       (ARRAY['reported','filed','dispatched','closed','cancelled'])[1 + g % 5],
       t.source, 'open311', t.category_id, t.region_id, t.grid_code,
       ST_Translate(t.location, (g % 50) * 0.00001, (g % 37) * 0.00001),
       'Bulk case ' || g, now() - make_interval(secs => (g % 6912000)),
       now() - make_interval(secs => (g % 6912000))
FROM generate_series(1, :n) AS g,
     (SELECT city_id, source, category_id, region_id, grid_code, location
      FROM cases ORDER BY id LIMIT 1) AS t
""")


def _database(create: bool) -> None:
    """The benchmark's database ``NAME`` dropped, then created afresh if ``create``."""
    admin = psycopg2.connect(ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        if create:
            cur.execute(f'CREATE DATABASE "{NAME}"')
            # Each report commits by itself; the disk's flush per commit would otherwise be
            # most of what the POST side by side measures, on both sides alike.
            cur.execute(f'ALTER DATABASE "{NAME}" SET synchronous_commit = off')
    admin.close()


def _timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def _get(client, url: str, runs: int = 5) -> dict:
    """The median (and p95) time of ``runs`` reads of ``url``, body included, and its size."""
    samples, size = [], 0
    for _ in range(runs):
        # Read the whole body inside the timing: open data is streamed.
        ms, (status, data) = _timed(lambda: (lambda r: (r.status_code, r.get_data()))(
            client.get(url)))
        assert status == 200, data[:300]
        samples.append(ms)
        size = len(data)
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 1),
            "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 1), "bytes": size}


def _rate(post, reports: int) -> tuple[float, float]:
    """Reports per second of ``reports`` calls of ``post(i)``, each answered 200 or 201, and
    the Python CPU (this process) per report in µs."""
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(reports):
        response = post(i)
        assert response.status_code in (200, 201), response.data[:300]
    return (reports / (time.perf_counter() - started),
            1e6 * (time.process_time() - cpu) / reports)


def side_by_side(client, world, reports: int = 500, rounds: int = 5) -> dict:
    """Open311 POSTs and mobile intake reports per second, in alternating turns (median)."""
    def open311(i: int):
        point = IN_WEST if i % 2 else IN_EAST
        return client.post("/open311/v2/requests.json", data={
            "api_key": world.api_key, "service_code": "C9801", "lat": point[1],
            "long": point[0], "description": "Lamp out", "email": "a@example.cn"})

    def mobile(i: int):
        point = IN_WEST if i % 2 else IN_EAST
        return client.post("/api/v1/reports", json={
            "category": "C9801", "lat": point[1], "lon": point[0],
            "description": "Lamp out", "contact_email": "a@example.cn"})

    _rate(open311, 50)  # warm both: prepared statements, caches
    _rate(mobile, 50)
    turns: dict[str, list[tuple[float, float]]] = {"open311": [], "mobile": []}
    for _ in range(rounds):
        turns["open311"].append(_rate(open311, reports))
        turns["mobile"].append(_rate(mobile, reports))
    rate = {k: statistics.median(r for r, _ in vs) for k, vs in turns.items()}
    cpu = {k: statistics.median(c for _, c in vs) for k, vs in turns.items()}
    return {"reports_per_turn": reports, "rounds": rounds,
            "open311_per_s": round(rate["open311"]), "mobile_per_s": round(rate["mobile"]),
            "open311_share_of_mobile": round(rate["open311"] / rate["mobile"], 3),
            "python_us_per_report": {k: round(v) for k, v in cpu.items()},
            "turns_per_s": {k: [round(r) for r, _ in vs] for k, vs in turns.items()}}


def main(posts: int = 200, cases: int = 50_000, open_data: bool = True) -> dict:
    _database(create=True)
    url = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql:", "postgresql+psycopg2:") + f"/{NAME}"
    app = create_app({"DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                      "GRIDMGR_HOME": tempfile.mkdtemp(prefix="gridmgr-bench-"),
                      "SECRET_KEY": "bench-secret-key-long-enough-for-hs256",
                      "RATELIMIT_ENABLED": False})
    try:
        with app.app_context():
            upgrade()
            world = build_world()
            client = app.test_client()
            samples = []
            for i in range(posts):
                point = IN_WEST if i % 2 else IN_EAST
                ms, response = _timed(lambda p=point: client.post(
                    "/open311/v2/requests.json", data={
                        "api_key": world.api_key, "service_code": "C9801", "lat": p[1],
                        "long": p[0], "description": "Lamp out", "email": "a@example.cn"}))
                assert response.status_code == 200, response.data
                samples.append(ms)
            samples.sort()
            # Before the bulk cases: they lie within 50 m of the POSTs' points, and every report
            # would then spend its time in the duplicate check, on both sides alike.
            post_side_by_side = side_by_side(client, world)
            db.session.execute(BULK_CASES, {"n": cases})
            db.session.execute(text("ANALYZE cases"))
            db.session.commit()
            results = {
                "posts": posts, "cases": cases + posts,
                "post_median_ms": round(statistics.median(samples), 1),
                "post_p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
                "get_requests_json_1000": _get(client, "/open311/v2/requests.json"),
                "get_requests_xml_1000": _get(client, "/open311/v2/requests.xml"),
                "get_requests_json_1000_extensions": _get(
                    client, "/open311/v2/requests.json?extensions=true"),
                "get_requests_status_closed_page_5": _get(
                    client, "/open311/v2/requests.json?status=closed&page=5&page_size=100"),
                "get_requests_newest_100": _get(
                    client, "/open311/v2/requests.json?page_size=100", runs=40),
                "servicerequestupdates_json": _get(client,
                                                   "/open311/v2/servicerequestupdates.json"),
                **({"opendata_cases_csv_all": _get(client, "/open-data/cases.csv", runs=3),
                    "opendata_cases_geojson_all": _get(client, "/open-data/cases.geojson",
                                                       runs=3)} if open_data else {}),
                "post_side_by_side": post_side_by_side,
                "machine": platform.platform(), "python": platform.python_version(),
            }
        return results
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        _database(create=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("posts", type=int, nargs="?", default=200)
    parser.add_argument("cases", type=int, nargs="?", default=50_000)
    parser.add_argument("--database", default=NAME,
                        help="the scratch database's name (created and dropped)")
    parser.add_argument("--without-open-data", action="store_true",
                        help="leave out the streamed open-data files of every case")
    args = parser.parse_args()
    NAME = args.database
    figures = main(args.posts, args.cases, open_data=not args.without_open_data)
    record("open311", figures)
    print(json.dumps(figures, indent=2))
