"""Benchmark: category suggestions backtested on labelled history, and their latency.

The tests' labelled descriptions (tests/data/category_texts.csv, zh and en, every subclass)
stand in for imported history: shuffled into "months", the suggester is trained on the
earlier months and asked about the last, beside two baselines in the same run: the intake's
former rule (the first category, by code, whose keyword or name occurs in the text) and a
matcher on the catalogue's names and keywords alone. Latency: ``suggest`` in the app, p95,
with the backtest's suggester stored as the city's newest (database ``DATABASE_URL`` when
set, else ``gridmgr_bench_suggest`` on 127.0.0.1:5432).

    .venv/bin/python bench/suggest.py
"""

from __future__ import annotations

import csv
import io
import json
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


class _Row:
    def __init__(self, c: dict):
        self.code, self.name_zh, self.name_en = c["code"], c["name_zh"], c["name_en"]
        self.keywords = c.get("keywords", [])


def _first_keyword_hit(catalogue: list[_Row], description: str) -> str | None:
    lowered = description.lower()
    for c in sorted(catalogue, key=lambda c: c.code):
        if any(w and w.lower() in lowered for w in [*c.keywords, c.name_zh, c.name_en]):
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


def _latencies(model, texts: list[str]) -> list[float]:
    """Milliseconds of each ``suggest`` call in the app, ``model`` being the newest suggester."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from gridmgr.categories.operations import load_default_catalogue
    from gridmgr.categories.suggest import suggest

    url = os.environ.get("DATABASE_URL") or _bench_database("gridmgr_bench_suggest")
    app = create_app({"DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                      "GRIDMGR_HOME": tempfile.mkdtemp(prefix="gridmgr-bench-"),
                      "RATELIMIT_ENABLED": False,
                      "SECRET_KEY": "bench-secret-key-of-sufficient-length-0123456789"})
    with app.app_context():
        upgrade()
        if not db.session.scalar(text("SELECT count(*) FROM categories")):
            load_default_catalogue()
        blob = io.BytesIO()
        pickle.dump(model, blob, protocol=pickle.HIGHEST_PROTOCOL)
        db.session.execute(text("INSERT INTO category_suggesters (cases, model, metrics) "
                                "VALUES (0, :m, '{}')"), {"m": blob.getvalue()})
        db.session.commit()
        suggest(texts[0])  # the first call loads the suggester; requests after it are timed
        times = []
        for t in texts:
            started = time.perf_counter()
            suggest(t)
            times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    catalogue = [_Row(c) for c in json.loads(
        (ROOT / "gridmgr" / "data" / "categories.json").read_text())["categories"]]
    with (ROOT / "tests" / "data" / "category_texts.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    random.Random(7).shuffle(rows)
    last_month = len(rows) // 4
    earlier, last = rows[last_month:], rows[:last_month]
    base_texts, base_labels = _catalogue_texts(catalogue)
    started = time.perf_counter()
    model = build_model(base_texts + [r["text"].lower() for r in earlier],
                        base_labels + [r["code"] for r in earlier])
    train_s = time.perf_counter() - started
    top1, top3 = _accuracy(model, last)
    names_top1, names_top3 = _accuracy(build_model(base_texts, base_labels), last)
    keyword = float(np.mean([_first_keyword_hit(catalogue, r["text"]) == r["code"]
                             for r in last]))
    times = _latencies(model, [r["text"] for r in last * 5])
    figures = {"history": len(earlier), "asked": len(last), "train_s": round(train_s, 2),
               "top1": round(top1, 3), "top3": round(top3, 3),
               "catalogue_only_top1": round(names_top1, 3),
               "catalogue_only_top3": round(names_top3, 3),
               "first_keyword_hit_top1": round(keyword, 3),
               "latency_p50_ms": round(float(np.percentile(times, 50)), 2),
               "latency_p95_ms": round(float(np.percentile(times, 95)), 2)}
    print(figures)
    record("suggest", figures)


if __name__ == "__main__":
    main()
