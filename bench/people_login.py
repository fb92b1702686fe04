"""Benchmark: sign-in timing for an unknown user, a wrong password and a right one; policy speed.

A failed sign-in must not tell whether the user exists, also not by its duration: the unknown
user's attempt is verified against a dummy Argon2 hash. This prints the median and spread of
each kind of attempt through the API (rate limits off), and how many permission decisions
``policy.can`` makes per second.

Database: a database ``gridmgr_bench_people`` on the PostgreSQL at 127.0.0.1:5432 (user
postgres), created afresh and dropped at the end. Writes ``bench/results/people_login.json``.

    .venv/bin/python bench/people_login.py [ATTEMPTS]
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade  # noqa: E402
from record import record  # noqa: E402

from gridmgr import create_app  # noqa: E402
from gridmgr.extensions import db  # noqa: E402
from gridmgr.people.models import User  # noqa: E402
from gridmgr.people.passwords import hash_password  # noqa: E402
from gridmgr.people.policy import ACTIONS, can  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
NAME = "gridmgr_bench_people"


def _database(create: bool) -> None:
    admin = psycopg2.connect(ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        if create:
            cur.execute(f'CREATE DATABASE "{NAME}"')
    admin.close()


def _timed(client, username: str, password: str) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    return (time.perf_counter() - started) * 1000, response.status_code


def _summary(samples: list[float]) -> dict:
    return {"median_ms": round(statistics.median(samples), 2),
            "p10_ms": round(statistics.quantiles(samples, n=10)[0], 2),
            "p90_ms": round(statistics.quantiles(samples, n=10)[-1], 2)}


def main(attempts: int = 30) -> dict:
    _database(create=True)
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{NAME}"
    try:
        with tempfile.TemporaryDirectory() as home:
            app = create_app({"DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                              "GRIDMGR_HOME": home, "RATELIMIT_ENABLED": False,
                              "SECRET_KEY": "bench-secret-key-that-is-long-enough-for-hs256"})
            with app.app_context():
                upgrade()
                db.session.add(User(username="wang", role="inspector", is_active=True,
                                    password_hash=hash_password("pw-secret-123")))
                db.session.commit()
                user = db.session.query(User).one()
                client = app.test_client()
                kinds = {"unknown_user": ("nobody", "pw-secret-123"),
                         "wrong_password": ("wang", "not-the-password"),
                         "right_password": ("wang", "pw-secret-123")}
                samples: dict[str, list[float]] = {kind: [] for kind in kinds}
                _timed(client, "wang", "warm-up")
                for _ in range(attempts):  # interleaved, so load drifts hit every kind alike
                    for kind, (username, password) in kinds.items():
                        elapsed, status = _timed(client, username, password)
                        assert status == (200 if kind == "right_password" else 401), status
                        samples[kind].append(elapsed)
                decisions = 0
                started = time.perf_counter()
                while time.perf_counter() - started < 1.0:
                    for action in ACTIONS:
                        can(user, action, region_code="110105001002003", city_id=1,
                            assignee_id=user.id)
                    decisions += len(ACTIONS)
                per_second = decisions / (time.perf_counter() - started)
    finally:
        _database(create=False)
    result = {kind: _summary(values) for kind, values in samples.items()}
    unknown, wrong = result["unknown_user"]["median_ms"], result["wrong_password"]["median_ms"]
    result["unknown_vs_wrong_median_ratio"] = round(unknown / wrong, 3)
    result["policy_decisions_per_second"] = round(per_second)
    result["attempts_per_kind"] = attempts
    result["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    return result


if __name__ == "__main__":
    figures = main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
    for key, value in figures.items():
        print(f"{key:32} {value}")
    record("people_login", figures)
