"""Benchmark: reading cases at scale — lists with filters, cursor pages, a case with its
history, tasks and the phone sync — through the mobile API (Flask test client, in-process)
on the database ``bench/intake.py`` builds (50,000 unit grids, ``--cases`` cases), or on an
already built city given with ``--database`` (``bench/bigcity.py``'s ten million cases).

Prints p50/p95 per query and writes ``bench/results/cases.json``.

    .venv/bin/python bench/cases.py --cases 1000000
    .venv/bin/python bench/cases.py --database \
        postgresql+psycopg2://postgres@127.0.0.1:5432/gridmgr_bench_bigcity
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from intake import bench_app, database_url, prepare  # noqa: E402
from record import record  # noqa: E402

from gridmgr.extensions import db  # noqa: E402


def user(role: str, username: str, region_code: str | None = None,
         department_id: int | None = None):
    from gridmgr.people.models import User
    from gridmgr.people.passwords import hash_password

    found = db.session.scalar(db.select(User).where(User.username == username))
    if found is None:
        region = db.session.execute(db.text("SELECT id, city_id FROM regions WHERE code = :c"),
                                    {"c": region_code}).one() if region_code else None
        city = db.session.scalar(db.text("SELECT id FROM cities LIMIT 1"))
        found = User(username=username, role=role, password_hash=hash_password("bench-pass-1"),
                     region_id=region.id if region else None, city_id=city,
                     department_id=department_id)
        db.session.add(found)
        db.session.commit()
    return found


def timed(client, url: str, headers: dict, runs: int) -> dict:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = client.get(url() if callable(url) else url, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (url, answer.status_code, answer.get_data()[:300])
    samples.sort()
    return {"runs": runs, "p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 2),
            "max_ms": round(samples[-1], 2),
            "items": len(answer.get_json().get("items", [])) if answer.is_json else None}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--database", help="measure this already built city as it is")
    args = parser.parse_args()
    if args.database:
        url = args.database
        setup = {"grids": None, "home": tempfile.mkdtemp(prefix="gridmgr-bench-cases-")}
    else:
        url = database_url()
        setup = prepare(url, args.cases)
    app = bench_app(url, Path(setup["home"]))
    results: dict = {}
    with app.app_context():
        from gridmgr.people.tokens import issue_tokens

        community = db.session.scalar(db.text(
            "SELECT code FROM regions WHERE level = 'community' ORDER BY code LIMIT 1 OFFSET 44"))
        department = db.session.scalar(db.text(
            "SELECT department_id FROM cases WHERE department_id IS NOT NULL LIMIT 1"))
        chief = user("duty_chief", "bench-chief")
        inspector = user("inspector", "bench-inspector", region_code=community)
        staff = user("department", "bench-department", department_id=department)
        headers = {name: {"Authorization": f"Bearer {issue_tokens(u)['access_token']}"}
                   for name, u in (("chief", chief), ("inspector", inspector),
                                   ("department", staff))}
        sample = db.session.execute(db.text(
            "SELECT id FROM cases TABLESAMPLE SYSTEM (0.1) LIMIT 500")).scalars().all()
        client = app.test_client()
        page = client.get("/api/v1/cases?limit=50", headers=headers["chief"]).get_json()
        for _ in range(20):  # a cursor 20 pages deep
            page = client.get(f"/api/v1/cases?limit=50&cursor={page['next_cursor']}",
                              headers=headers["chief"]).get_json()
        deep_cursor = page["next_cursor"]
        hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        day_ago = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        queries = {
            "list newest 50 (city-wide)": ("/api/v1/cases?limit=50", "chief"),
            "filter state=dispatched": ("/api/v1/cases?state=dispatched", "chief"),
            "filter category=E0101": ("/api/v1/cases?category=E0101", "chief"),
            "filter region (community prefix)": (f"/api/v1/cases?region={community}", "chief"),
            "filter clock=red": ("/api/v1/cases?clock=red", "chief"),
            "filter state+category+region": (
                f"/api/v1/cases?state=closed&category=E0101&region={community[:9]}", "chief"),
            "since 1 day": (f"/api/v1/cases?since={day_ago.replace('+', '%2B')}", "chief"),
            "cursor page 21": (f"/api/v1/cases?limit=50&cursor={deep_cursor}", "chief"),
            "inspector's scope (community)": ("/api/v1/cases", "inspector"),
            "department's cases": ("/api/v1/cases", "department"),
            "case with history and photos": (
                lambda: f"/api/v1/cases/{random.choice(sample)}", "chief"),
            "tasks (duty chief, city-wide)": ("/api/v1/tasks", "chief"),
            "tasks (inspector)": ("/api/v1/tasks", "inspector"),
            "sync since 1 hour (inspector)": (
                f"/api/v1/sync?since={hour_ago.replace('+', '%2B')}", "inspector"),
            "nearby same problem": (
                lambda: "/api/v1/cases/nearby?category=E0101&lon="
                        f"{116.2 + random.random() * 0.29:.6f}&lat="
                        f"{39.8 + random.random() * 0.18:.6f}", "chief"),
        }
        for name, (target, who) in queries.items():
            results[name] = timed(client, target, headers[who], args.runs)
            print(f"{name:38s} p50 {results[name]['p50_ms']:7.2f} ms   "
                  f"p95 {results[name]['p95_ms']:7.2f} ms", flush=True)
        cases = db.session.scalar(db.text("SELECT count(*) FROM cases"))
        history = db.session.scalar(db.text("SELECT count(*) FROM case_history"))
        setup["grids"] = setup["grids"] or db.session.scalar(db.text(
            "SELECT count(*) FROM regions WHERE level = 'grid'"))
    out = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "grids": setup["grids"], "cases": cases, "history_rows": history,
           "load_average_1m": round(os.getloadavg()[0], 1), "queries": results,
           "worst_p95_ms": max(r["p95_ms"] for r in results.values())}
    record("cases", out)
    print(f"\n{cases:,} cases, {setup['grids']:,} grids: worst p95 {out['worst_p95_ms']} ms")
    return out


if __name__ == "__main__":
    main()
