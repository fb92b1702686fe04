"""Benchmark: category suggestions backtested on imported history, and their latency.

A city's history is imported as an old system's export would be (``gridmgr cases import``:
one ``reported`` step per past case, its description the note): the tests' two sets of
citizens' own wording (tests/data/category_citizen_*.csv, 700 descriptions, zh and en, every
subclass) spread over four months. The suggester is trained on the cases of the first three
months as ``gridmgr categories train`` trains (the catalogue and each case's description with
its category) and asked about the last month's, beside two baselines in the same run: the
intake's former rule (the first category, by code, whose keyword or name occurs in the text)
and a matcher on the catalogue's names and keywords alone. Latency: ``suggest`` in the app,
p50 and p95, with the backtest's suggester stored as the city's newest. Database:
``DATABASE_URL`` when set, else ``gridmgr_bench_suggest`` on 127.0.0.1:5432, emptied first.

    .venv/bin/python bench/suggest.py
"""

from __future__ import annotations

import csv
import io
import os
import pickle
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from record import record  # noqa: E402

from gridmgr import create_app  # noqa: E402
from gridmgr.categories.suggest import _catalogue_texts, build_model  # noqa: E402
from gridmgr.extensions import db  # noqa: E402


def _first_keyword_hit(catalogue: list, description: str) -> str | None:
    lowered = description.lower()
    for c in sorted(catalogue, key=lambda c: c.code):
        if any(w and w.lower() in lowered for w in [*(c.keywords or []), c.name_zh, c.name_en]):
            return c.code
    return None


def _accuracy(model, rows: list[dict]) -> tuple[float, float]:
    probabilities = model.predict_proba([r["text"].lower() for r in rows])
    top = np.argsort(-probabilities, axis=1)[:, :3]
    classes = model.classes_
    first = np.mean([classes[top[i, 0]] == r["code"] for i, r in enumerate(rows)])
    top3 = np.mean([r["code"] in classes[top[i]] for i, r in enumerate(rows)])
    return float(first), float(top3)


def _bench_database(name: str) -> str:
    admin = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {name}")
    admin.close()
    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


MONTHS = ("2026-08", "2026-09", "2026-10", "2026-11")
WEST, SOUTH, SIZE = 116.2, 39.8, 0.2


def _history_file(rows: list[dict], path: Path) -> None:
    """Each labelled description as a case reported by a citizen in one of the months."""
    from gridmgr.legacy.importing import COLUMNS

    rng = random.Random(7)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for i, row in enumerate(rows):
            month = MONTHS[i * len(MONTHS) // len(rows)]
            writer.writerow({
                "reference": f"H{i:05d}", "category": row["code"],
                "lon": f"{WEST + rng.random() * SIZE:.6f}",
                "lat": f"{SOUTH + rng.random() * SIZE:.6f}", "step": "reported",
                "time": f"{month}-{rng.randint(1, 28):02d}T{rng.randint(7, 21):02d}:00:00+08:00",
                "actor_role": "citizen", "actor": "市民", "department": "",
                "note": row["text"]})


def _imported_city(rows: list[dict]) -> None:
    """An empty bench database with one city, the catalogue and ``rows`` imported as history."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from gridmgr.categories.operations import load_default_catalogue
    from gridmgr.legacy.importing import import_history

    upgrade()
    db.session.execute(text("TRUNCATE cities, categories, category_classes, departments "
                            "RESTART IDENTITY CASCADE"))
    db.session.execute(text("""
        INSERT INTO cities (slug, name, timezone) VALUES ('bench', 'bench', 'Asia/Shanghai');
        INSERT INTO regions (city_id, level, code, name, geom, area_m2)
        VALUES (1, 'district', '110101', 'bench district',
                ST_Multi(ST_MakeEnvelope(:w, :s, :w + :d, :s + :d, 4326)), 4e8)"""),
        {"w": WEST, "s": SOUTH, "d": SIZE})
    db.session.commit()
    load_default_catalogue()
    path = Path(tempfile.mkdtemp()) / "history.csv"
    _history_file(rows, path)
    import_history(path)


def _backtest() -> tuple[dict, object]:
    """Figures of the backtest and the suggester trained on the earlier months."""
    from sqlalchemy import text

    from gridmgr.categories.suggest import _catalogue, training_set

    cases = db.session.execute(text("""
        SELECT c.description, k.code, to_char(c.created_at AT TIME ZONE 'Asia/Shanghai',
                                              'YYYY-MM') AS month
        FROM cases c JOIN categories k ON k.id = c.category_id ORDER BY c.id""")).all()
    last_month = max(c.month for c in cases)
    earlier = [(c.description, c.code) for c in cases if c.month < last_month]
    last = [{"text": c.description, "code": c.code} for c in cases if c.month == last_month]
    catalogue_rows = _catalogue()
    catalogue = _catalogue_texts(catalogue_rows)
    started = time.perf_counter()
    model = build_model(*training_set(catalogue, earlier))
    train_s = time.perf_counter() - started
    top1, top3 = _accuracy(model, last)
    names_top1, names_top3 = _accuracy(build_model(*catalogue), last)
    keyword = float(np.mean([_first_keyword_hit(catalogue_rows, r["text"]) == r["code"]
                             for r in last]))
    return {"imported_cases": len(cases), "history": len(earlier), "asked": len(last),
            "asked_month": last_month, "train_s": round(train_s, 2),
            "top1": round(top1, 3), "top3": round(top3, 3),
            "catalogue_only_top1": round(names_top1, 3),
            "catalogue_only_top3": round(names_top3, 3),
            "first_keyword_hit_top1": round(keyword, 3)}, model


def _latencies(model, texts: list[str]) -> list[float]:
    """Milliseconds of each ``suggest`` call in the app, ``model`` being the city's newest
    suggester."""
    from sqlalchemy import text

    from gridmgr.categories.suggest import suggest

    blob = io.BytesIO()
    pickle.dump(model, blob, protocol=pickle.HIGHEST_PROTOCOL)
    db.session.execute(text("INSERT INTO category_suggesters (city_id, cases, model, metrics) "
                            "VALUES (1, 0, :m, '{}')"), {"m": blob.getvalue()})
    db.session.commit()
    suggest(texts[0])  # the first call loads the suggester; requests after it are timed
    times = []
    for t in texts:
        started = time.perf_counter()
        suggest(t)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    rows = []
    for name in ("category_citizen_history.csv", "category_citizen_heldback.csv"):
        with (ROOT / "tests" / "data" / name).open(encoding="utf-8") as f:
            rows += list(csv.DictReader(f))
    random.Random(7).shuffle(rows)
    url = os.environ.get("DATABASE_URL") or _bench_database("gridmgr_bench_suggest")
    app = create_app({"DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                      "GRIDMGR_HOME": tempfile.mkdtemp(prefix="gridmgr-bench-"),
                      "RATELIMIT_ENABLED": False,
                      "SECRET_KEY": "bench-secret-key-of-sufficient-length-0123456789"})
    with app.app_context():
        _imported_city(rows)
        figures, model = _backtest()
        times = _latencies(model, [r["text"] for r in rows[:500]])
    figures.update(latency_p50_ms=round(float(np.percentile(times, 50)), 2),
                   latency_p95_ms=round(float(np.percentile(times, 95)), 2))
    print(figures)
    record("suggest", figures)


if __name__ == "__main__":
    main()
