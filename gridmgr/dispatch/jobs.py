"""Timed work for ``gridmgr worker``: schedule jobs from the cases' state, then run due ones.

Scheduling is idempotent (``INSERT ... ON CONFLICT (kind, key) DO NOTHING``; the key names the
case, what is due and the moment it became due), so any number of workers may sweep. A job is
claimed with ``FOR UPDATE SKIP LOCKED`` and its effect (case update, history, outbox event, the
next job) commits in the same transaction as ``state = 'done'``: a worker killed mid-job leaves
the job pending for the next one, and no job is done twice.

Kinds: ``auto_dispatch`` (a filed case of an ``auto_dispatch`` category), ``ack_timeout`` (a
dispatch not accepted in time: escalate, 督办), ``clock`` (yellow at 80 %, red when overdue),
``train_categories`` (the category suggester retrained on the cases once a week, early on the
Monday after; the job's key is the ISO week, so however many workers sweep, one trains).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import text

from gridmgr.cases.events import CASE_RETURNING, clock_of, live_payload, rooms_of
from gridmgr.cases.models import Case
from gridmgr.cases.steps import ACTIONS, WORK_STATES, states_sql
from gridmgr.dispatch.assign import accept_deadline, dispatch_by_rules, escalate
from gridmgr.dispatch.rules import ESCALATION
from gridmgr.extensions import db
from gridmgr.live import publish

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
# Clock jobs are scheduled this far ahead, so the job table holds only what is due soon.
CLOCK_HORIZON = "10 minutes"
_STAMP = "(extract(epoch FROM {col}) * 1000000)::bigint"
# Where the workflow table lets the system dispatch and escalate.
_DISPATCHABLE = states_sql(ACTIONS["dispatch"].sources)
_ESCALABLE = states_sql(ACTIONS["escalate"].sources)


def schedule() -> int:
    """Create the jobs the cases' state calls for; returns how many were new. Commits."""
    new = db.session.execute(text(f"""
        INSERT INTO dispatch_jobs (kind, key, case_id, run_at, payload)
        SELECT 'auto_dispatch', c.id || ':' || c.version, c.id, now(), '{{}}'
        FROM cases c JOIN categories k ON k.id = c.category_id
        WHERE c.state IN {_DISPATCHABLE} AND k.auto_dispatch
        ON CONFLICT (kind, key) DO NOTHING""")).rowcount
    new += db.session.execute(text(f"""
        INSERT INTO dispatch_jobs (kind, key, case_id, run_at, payload)
        SELECT 'clock', c.id || ':' || s.clock || ':' || {_STAMP.format(col='s.at')}, c.id, s.at,
               jsonb_build_object('clock', s.clock, 'at', s.at)
        FROM cases c CROSS JOIN LATERAL (VALUES ('yellow', c.yellow_at), ('red', c.deadline))
             AS s(clock, at)
        WHERE c.state IN {states_sql(WORK_STATES)} AND c.paused_at IS NULL
          AND s.at IS NOT NULL AND s.at <= now() + interval '{CLOCK_HORIZON}'
        ON CONFLICT (kind, key) DO NOTHING""")).rowcount
    stamp = _STAMP.format(col="c.dispatched_at")
    waiting = db.session.execute(text(f"""
        SELECT c.id, {stamp} AS stamp FROM cases c
        WHERE c.state IN {_ESCALABLE} AND c.dispatched_at IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM dispatch_jobs j
            WHERE j.kind = 'ack_timeout' AND j.key = c.id || ':' || {stamp} || '\\:0')""")).all()
    for case_id, case_stamp in waiting:
        case = db.session.get(Case, case_id)
        new += _schedule_ack(case, case_stamp, 0, accept_deadline(case, case.dispatched_at), [])
    # This week's retraining, due at 03:00 on the Monday after it (the city's clock).
    new += db.session.execute(text("""
        INSERT INTO dispatch_jobs (kind, key, run_at, payload)
        SELECT 'train_categories', to_char(local, 'IYYY-"W"IW'),
               (date_trunc('week', local) + interval '7 days 3 hours') AT TIME ZONE :tz, '{}'
        FROM (SELECT now() AT TIME ZONE :tz AS local) AS t
        ON CONFLICT (kind, key) DO NOTHING"""),
        {"tz": current_app.config["GRIDMGR_TIMEZONE"]}).rowcount
    db.session.commit()
    return new


def _schedule_ack(case: Case, stamp: int, step: int, run_at: datetime, tried: list[int]) -> int:
    return db.session.execute(text("""
        INSERT INTO dispatch_jobs (kind, key, case_id, run_at, payload)
        VALUES ('ack_timeout', :key, :case_id, :run_at, CAST(:payload AS jsonb))
        ON CONFLICT (kind, key) DO NOTHING"""), {
        "key": f"{case.id}:{stamp}:{step}", "case_id": case.id, "run_at": run_at,
        "payload": _json({"stamp": stamp, "step": step, "tried": tried})}).rowcount


def run_due(limit: int = 100, now: datetime | None = None) -> int:
    """Claim and run due jobs one by one (each in its own transaction); returns how many ran."""
    ran = 0
    while ran < limit:
        job = db.session.execute(text("""
            SELECT id, kind, case_id, payload FROM dispatch_jobs
            WHERE state = 'pending' AND run_at <= coalesce(:now, now())
            ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"""), {"now": now}).first()
        if job is None:
            db.session.rollback()
            return ran
        try:
            outcome = HANDLERS[job.kind](job)
            db.session.execute(text("""
                UPDATE dispatch_jobs SET state = :state, done_at = now(), attempts = attempts + 1
                WHERE id = :id"""), {"state": outcome, "id": job.id})
            db.session.commit()
        except Exception as error:  # a failing job must not stop the others
            db.session.rollback()
            log.exception("job %s (%s) failed", job.id, job.kind)
            _record_failure(job.id, error)
        ran += 1
    return ran


def _record_failure(job_id: int, error: Exception) -> None:
    db.session.execute(text("""
        UPDATE dispatch_jobs SET attempts = attempts + 1, last_error = :error,
            state = CASE WHEN attempts + 1 >= :max THEN 'failed' ELSE 'pending' END,
            run_at = now() + make_interval(secs => 5 * power(2, attempts))
        WHERE id = :id"""), {"id": job_id, "error": f"{type(error).__name__}: {error}"[:2000],
                             "max": MAX_ATTEMPTS})
    db.session.commit()


def _locked_case(case_id: int) -> Case | None:
    """The case, row-locked for the rest of the job's transaction."""
    return db.session.scalar(db.select(Case).where(Case.id == case_id).with_for_update()
                             .execution_options(populate_existing=True))


def _run_auto_dispatch(job) -> str:
    case = _locked_case(job.case_id)
    if case is None or not case.category.auto_dispatch:
        return "skipped"
    return "done" if dispatch_by_rules(case) is not None else "skipped"


def _run_ack_timeout(job) -> str:
    case = _locked_case(job.case_id)
    payload = job.payload
    if case is None or case.state not in ACTIONS["escalate"].sources \
            or case.dispatched_at is None:
        return "skipped"
    stamp = db.session.execute(text(
        f"SELECT {_STAMP.format(col='dispatched_at')} FROM cases WHERE id = :id"),
        {"id": case.id}).scalar()
    if stamp != payload["stamp"]:
        return "skipped"
    step = int(payload["step"])
    previous = case.worker_id
    row = escalate(case, step, payload.get("tried", []))
    if row is None:
        return "skipped"
    if step + 1 < len(ESCALATION):
        tried = sorted({*payload.get("tried", []), *([previous] if previous else [])})
        case = db.session.get(Case, case.id, populate_existing=True)
        _schedule_ack(case, stamp, step + 1, accept_deadline(case, datetime.now(UTC)), tried)
    return "done"


def _run_clock(job) -> str:
    row = db.session.execute(text(f"SELECT {CASE_RETURNING} FROM cases WHERE id = :id "
                                  "FOR UPDATE"), {"id": job.case_id}).one_or_none()
    wanted = job.payload["clock"]
    if row is None or row.state not in WORK_STATES or clock_of(row) != wanted:
        return "skipped"
    publish("case.clock", {**live_payload(row), "clock": wanted}, rooms_of(row))
    return "done"


def _run_train_categories(job) -> str:
    # Committed with the job itself: the job row stays locked while the model is trained.
    from gridmgr.categories.suggest import train

    train(commit=False)
    return "done"


HANDLERS: dict[str, Callable] = {
    "auto_dispatch": _run_auto_dispatch,
    "ack_timeout": _run_ack_timeout,
    "clock": _run_clock,
    "train_categories": _run_train_categories,
}


def prune_outbox(days: float) -> int:
    """Forget live events older than ``days`` (clients that far behind reload); commits."""
    removed = db.session.execute(text(
        "DELETE FROM live_events WHERE created_at < now() - make_interval(secs => :s)"),
        {"s": days * 86400}).rowcount
    db.session.commit()
    return removed


def work(stop: threading.Event, interval: float = 1.0) -> None:
    """The worker loop: schedule, run what is due, sleep ``interval`` when idle; until stopped.
    Once an hour it prunes the outbox (``GRIDMGR_LIVE_RETENTION_DAYS``, default 7)."""
    retention = float(current_app.config["GRIDMGR_LIVE_RETENTION_DAYS"])
    next_prune = 0.0
    while not stop.is_set():
        try:
            if time.monotonic() >= next_prune:
                prune_outbox(retention)
                next_prune = time.monotonic() + 3600
            schedule()
            if run_due() == 0:
                stop.wait(interval)
        except Exception:  # the database may be restarting: log, wait, carry on
            db.session.rollback()
            log.exception("worker pass failed; retrying in %.1f s", interval)
            stop.wait(interval)
        finally:
            db.session.remove()


def _json(value) -> str:
    return json.dumps(value, default=str)
