"""The background worker retrains each city's category suggester once a week, however many
workers run."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from citizen_texts import HISTORY, file_cases, labelled
from dispatch_world import POINT_A, build_city
from sqlalchemy import text

from gridmgr.categories.operations import load_default_catalogue
from gridmgr.categories.suggest import suggest
from gridmgr.dispatch.jobs import run_due, schedule
from gridmgr.extensions import db


def _suggesters() -> int:
    return db.session.scalar(text("SELECT count(*) FROM category_suggesters"))


def test_two_workers_sweeping_schedule_one_weekly_training_and_only_one_of_them_trains(app_ctx):
    build_city()
    load_default_catalogue()
    file_cases(labelled(HISTORY), "110101001001001", POINT_A)

    schedule()
    schedule()  # a second worker sweeps the same week

    [(key, run_at)] = db.session.execute(text(
        "SELECT key, run_at FROM dispatch_jobs WHERE kind = 'train_categories'")).all()
    local = run_at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert key.count("-W") == 1 and (local.weekday(), local.hour, local.minute) == (0, 3, 0)
    assert run_due() == 0  # due on the Monday after the week, not now
    assert _suggesters() == 0

    # One worker has claimed the job (its row locked while it trains): the other skips it.
    with db.engine.connect() as first_worker:
        first_worker.execute(text(
            "SELECT id FROM dispatch_jobs WHERE kind = 'train_categories' FOR UPDATE"))
        assert run_due(now=run_at) == 0
        assert _suggesters() == 0
        first_worker.rollback()

    assert run_due(now=run_at) == 1
    assert run_due(now=run_at) == 0
    assert _suggesters() == 1
    assert db.session.scalar(text(
        "SELECT state FROM dispatch_jobs WHERE kind = 'train_categories'")) == "done"
    schedule()  # the same week again: nothing new to train
    assert db.session.scalar(text(
        "SELECT count(*) FROM dispatch_jobs WHERE kind = 'train_categories'")) == 1
    # Suggestions now come from the trained suggester.
    assert suggest("路灯不亮")[0]["reason"].startswith("learnt from the city's cases")
