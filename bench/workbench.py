"""Benchmark: the workbench's pages at scale — the operator's queue (with every report's
possible duplicates), filtered text searches of the case list, a region and clock filter, a
case page with its timeline, the dispatcher's list with the rules' proposals — server time
through the Flask test client (in process, signed in through the staff sign-in, so each request
opens the sealed session and identifies its user) on the database ``bench/intake.py`` builds
(50,000 unit grids, ``--cases`` cases; built once, then reused: seeding 1,000,000 takes about a
quarter of an hour on a loaded 2-core machine).

Prints p50/p95 per page and writes ``bench/results/workbench.json``. The time from a new report
to its row on an open queue page is ``bench/workbench_live.py``.

    export BENCH_CASES_DATABASE_URL=postgresql+psycopg2://postgres@127.0.0.1/gridmgr_bench_wb
    .venv/bin/python bench/workbench.py --cases 1000000
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cases import user  # noqa: E402
from intake import bench_app, database_url, prepare  # noqa: E402
from record import record  # noqa: E402

from gridmgr.extensions import db  # noqa: E402


def signed_in(app, username: str):
    """A test client signed in through the workbench's own form."""
    client = app.test_client()
    page = client.get("/workbench/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = client.post("/workbench/login", data={
        "username": username, "password": "bench-pass-1", "csrf_token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    return client


def timed(client, url, runs: int) -> dict:
    samples = []
    for _ in range(runs):
        target = url() if callable(url) else url
        started = time.perf_counter()
        answer = client.get(target)
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (target, answer.status_code,
                                           answer.get_data(as_text=True)[:300])
    samples.sort()
    return {"runs": runs, "p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 2),
            "max_ms": round(samples[-1], 2), "bytes": len(answer.get_data())}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    url = database_url()
    setup = prepare(url, args.cases)
    app = bench_app(url, Path(setup["home"]))
    results: dict = {}
    with app.app_context():
        user("operator", "bench-operator")
        user("duty_chief", "bench-chief")
        user("dispatcher", "bench-dispatcher")
        open_sample = db.session.execute(db.text(
            "SELECT id FROM cases TABLESAMPLE SYSTEM (0.5) LIMIT 500")).scalars().all()
        word = db.session.scalar(db.text(
            "SELECT substr(description, 1, 3) FROM cases WHERE length(description) >= 3 "
            "LIMIT 1")) or "井盖"
        community = db.session.scalar(db.text(
            "SELECT code FROM regions WHERE level = 'community' ORDER BY code LIMIT 1 OFFSET 44"))
        queued = db.session.scalar(db.text(
            "SELECT count(*) FROM cases WHERE state IN ('reported', 'verified')"))
        db.session.commit()
        operator = signed_in(app, "bench-operator")
        chief = signed_in(app, "bench-chief")
        dispatcher = signed_in(app, "bench-dispatcher")
        pages = {
            "operator queue (100 oldest, duplicates)": (operator, "/workbench/operator"),
            "search: text": (chief, f"/workbench/cases?q={word}"),
            "search: state + text": (chief, f"/workbench/cases?state=closed&q={word}"),
            "search: text found nowhere": (chief, "/workbench/cases?q=%E6%97%A0%E6%AD%A4%E4%BA%8B"),
            "search: region + clock": (chief, f"/workbench/cases?region={community}&clock=red"),
            "case page (timeline, photos)": (
                chief, lambda: f"/workbench/cases/{random.choice(open_sample)}"),
            "dispatcher's list (rules' proposals)": (dispatcher, "/workbench/dispatcher"),
        }
        for name, (client, target) in pages.items():
            results[name] = timed(client, target, args.runs)
            print(f"{name:42s} p50 {results[name]['p50_ms']:7.2f} ms   "
                  f"p95 {results[name]['p95_ms']:7.2f} ms", flush=True)
        cases = db.session.scalar(db.text("SELECT count(*) FROM cases"))
    out = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "load_1min": round(os.getloadavg()[0], 1)},
           "grids": setup["grids"], "cases": cases, "queue_candidates": queued,
           "search_word": word, "pages": results,
           "worst_p95_ms": max(r["p95_ms"] for r in results.values())}
    record("workbench", out)
    print(f"\n{cases:,} cases, {setup['grids']:,} grids: worst p95 {out['worst_p95_ms']} ms")
    return out


if __name__ == "__main__":
    main()
