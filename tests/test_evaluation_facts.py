"""The indicators come from ``evaluation_facts``, which triggers keep in step with the cases.

The reference below is the indicators' earlier definition as one statement over
``case_history`` and ``cases`` (no facts). The facts path must give exactly its counts, for
every grouping and several periods, on the hand-computed month plus a randomised history, and
still after cases change (a later rework, resume and handling, an extension, a new category).
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from evaluation_world import CST, GRIDS, STREET_A, build_month
from sqlalchemy import text

from gridmgr.evaluation import indicators, periods
from gridmgr.extensions import db

TZ = ZoneInfo("Asia/Shanghai")

_REFERENCE_SQL = """
WITH steps AS (
    SELECT h.id AS step_id, h.case_id, h.action, h.at, h.actor_id,
           COALESCE(NULLIF(h.details->>'department_id', '')::bigint, c.department_id)
               AS department_id,
           c.grid_code, c.category_id,
           h.action = 'rework' AND h.details->>'passed' = 'false' AS failed_check,
           (h.at <= (c.deadlines->>(CASE h.action WHEN 'verify' THEN 'verify'
                                                  WHEN 'file' THEN 'file'
                                                  ELSE 'check' END))::timestamptz)
               IS NOT FALSE AS on_time
    FROM case_history h JOIN cases c ON c.id = h.case_id
    WHERE h.at >= :start AND h.at < :end
      AND h.action IN ('verify', 'file', 'dispatch', 'return', 'check', 'rework', 'extend',
                       'shelve', 'handle', 'self_handle', 'close')
      AND c.city_id = :city_id AND c.grid_code LIKE :prefix
),
reported AS (
    SELECT c.id AS case_id, c.grid_code, c.department_id, c.category_id,
           c.reporter_id AS person_id,
           CASE WHEN c.state IN ('reported', 'verified') THEN false
                WHEN c.state <> 'cancelled' AND c.updated_at < :end THEN true
                ELSE (SELECT true FROM case_history v
                      WHERE v.case_id = c.id AND v.action IN ('file', 'self_handle')
                        AND v.at < :end LIMIT 1) IS NOT NULL END AS valid
    FROM cases c
    WHERE c.created_at >= :start AND c.created_at < :end
      AND c.city_id = :city_id AND c.grid_code LIKE :prefix
),
step_facts AS (
    SELECT s.grid_code, s.department_id, s.category_id,
           CASE WHEN m.metric = 'reworked' THEN (
               SELECT p.actor_id FROM case_history p
               WHERE p.case_id = s.case_id AND p.action = 'handle' AND p.at <= s.at
               ORDER BY p.at DESC, p.id DESC LIMIT 1)
           ELSE s.actor_id END AS person_id,
           m.metric
    FROM steps s
    CROSS JOIN LATERAL unnest(CASE s.action
        WHEN 'verify' THEN ARRAY['verified', CASE WHEN s.on_time THEN 'verified_on_time' END]
        WHEN 'file' THEN ARRAY['filed', CASE WHEN s.on_time THEN 'filed_on_time' END]
        WHEN 'dispatch' THEN ARRAY['dispatched']
        WHEN 'return' THEN ARRAY['returned']
        WHEN 'check' THEN ARRAY['checked', CASE WHEN s.on_time THEN 'checked_on_time' END]
        WHEN 'rework' THEN CASE WHEN s.failed_check
            THEN ARRAY['reworked', 'checked', CASE WHEN s.on_time THEN 'checked_on_time' END]
            ELSE ARRAY['reworked'] END
        WHEN 'extend' THEN ARRAY['extended']
        WHEN 'shelve' THEN ARRAY['shelved']
        ELSE ARRAY[]::text[] END) AS m(metric)
    WHERE m.metric IS NOT NULL
),
handles AS (
    SELECT DISTINCT ON (case_id) case_id, at, actor_id FROM steps
    WHERE action IN ('handle', 'self_handle')
    ORDER BY case_id, at DESC, step_id DESC
),
closes AS (
    SELECT DISTINCT ON (case_id) case_id, at FROM steps
    WHERE action IN ('close', 'self_handle')
    ORDER BY case_id, at DESC, step_id DESC
),
overdue AS (
    SELECT c.id AS case_id FROM cases c
    WHERE c.city_id = :city_id AND c.grid_code LIKE :prefix
      AND c.deadline < LEAST(:end, now()) AND c.created_at < :end
      AND (c.state IN ('dispatched', 'accepted') OR c.updated_at >= :end)
      AND CASE WHEN c.updated_at < :end THEN c.state
               ELSE (SELECT h.to_state FROM case_history h
                     WHERE h.case_id = c.id AND h.at < :end
                     ORDER BY h.at DESC, h.id DESC LIMIT 1) END
          IN ('dispatched', 'accepted')
),
disposal AS (
    SELECT c.grid_code, c.department_id, c.category_id,
           COALESCE(hd.actor_id, c.handler_id, c.worker_id) AS person_id,
           hd.case_id IS NOT NULL AS handled,
           hd.case_id IS NOT NULL AND (c.deadline IS NULL OR hd.at <= c.deadline)
               AS handled_on_time,
           cl.case_id IS NOT NULL AS closed,
           cl.case_id IS NOT NULL AND (c.deadline IS NULL OR c.handled_at <= c.deadline)
               AND (cl.at <= (c.deadlines->>'close')::timestamptz) IS NOT FALSE
               AS closed_on_time,
           od.case_id IS NOT NULL AS overdue
    FROM (SELECT case_id FROM handles UNION SELECT case_id FROM closes
          UNION SELECT case_id FROM overdue) k
    JOIN cases c ON c.id = k.case_id
    LEFT JOIN handles hd ON hd.case_id = k.case_id
    LEFT JOIN closes cl ON cl.case_id = k.case_id
    LEFT JOIN overdue od ON od.case_id = k.case_id
),
facts AS (
    SELECT grid_code, department_id, category_id, person_id, 'reported' AS metric
    FROM reported
    UNION ALL
    SELECT grid_code, department_id, category_id, person_id, 'valid' FROM reported WHERE valid
    UNION ALL
    SELECT grid_code, department_id, category_id, person_id, metric FROM step_facts
    UNION ALL
    SELECT d.grid_code, d.department_id, d.category_id, d.person_id, m.metric
    FROM disposal d CROSS JOIN LATERAL unnest(ARRAY[
        CASE WHEN d.handled THEN 'handled' END,
        CASE WHEN d.handled_on_time THEN 'handled_on_time' END,
        CASE WHEN d.closed THEN 'closed' END,
        CASE WHEN d.closed_on_time THEN 'closed_on_time' END,
        CASE WHEN d.overdue THEN 'overdue' END,
        CASE WHEN d.handled OR d.overdue THEN 'due_handling' END,
        CASE WHEN d.handled OR d.closed OR d.overdue THEN 'due_closing' END]) AS m(metric)
    WHERE m.metric IS NOT NULL
)
SELECT {key} AS key, metric, count(*) AS n FROM facts GROUP BY 1, 2
"""
_REFERENCE_KEY = {"region": "left(grid_code, :level)", "department": "department_id::text",
                  "category": "category_id::text", "person": "person_id::text", "city": "''"}


def reference(by: str, period: periods.Period, city_id: int, level: int = 15,
              prefix: str | None = None) -> list[tuple[str | None, dict[str, int]]]:
    """(key, counts) per group by the earlier full computation over the history."""
    rows = db.session.execute(text(_REFERENCE_SQL.replace("{key}", _REFERENCE_KEY[by])), {
        "city_id": city_id, "prefix": (prefix or "") + "%", "start": period.start,
        "end": period.end, "level": max(level, len(prefix or ""))}).all()
    grouped: dict[str | None, dict[str, int]] = {}
    for key, metric, number in rows:
        grouped.setdefault(key, dict.fromkeys(indicators.COUNTS, 0))[metric] = int(number)
    return sorted(grouped.items(), key=lambda kv: (kv[0] is None, kv[0]))


def from_facts(by: str, period: periods.Period, city_id: int, level: int = 15,
               prefix: str | None = None) -> list[tuple[str | None, dict[str, int]]]:
    return [(row.key, row.counts)
            for row in indicators.compute(by, period, city_id, level=level, prefix=prefix)]


PERIODS = [periods.month("2026-10", TZ), periods.month("2026-11", TZ),
           periods.month("2026-12", TZ),
           periods.between("2026-11-06T12:00:00+08:00", "2026-11-15T10:30:00+08:00", TZ)]
GROUPINGS = [("city", 15, None), ("region", 6, None), ("region", 9, None),
             ("region", 12, None), ("region", 15, None), ("region", 9, STREET_A),
             ("department", 15, None), ("category", 15, None), ("person", 15, None),
             ("person", 15, STREET_A)]


def assert_same_as_reference(city_id: int) -> int:
    """Every grouping and period agrees with the reference; returns the counts compared."""
    compared = 0
    for period in PERIODS:
        for by, level, prefix in GROUPINGS:
            expected = reference(by, period, city_id, level, prefix)
            assert from_facts(by, period, city_id, level, prefix) == expected, \
                (by, level, prefix, period.label)
            compared += sum(sum(counts.values()) for _key, counts in expected)
    return compared


@pytest.fixture
def month(app_ctx, make_user):
    return build_month(make_user)


def test_the_hand_computed_month_matches_the_reference(month):
    assert assert_same_as_reference(month["city_id"]) > 100


def test_the_backfill_rebuilds_the_facts_of_existing_cases(month):
    """What migration 0007 runs for the cases that exist when it is applied."""
    city = month["city_id"]
    expected = from_facts("person", PERIODS[1], city)
    db.session.execute(text("DELETE FROM evaluation_facts"))
    assert from_facts("person", PERIODS[1], city) != expected
    db.session.execute(text("SELECT evaluation_refresh_facts(ARRAY(SELECT id FROM cases))"))
    db.session.commit()
    assert from_facts("person", PERIODS[1], city) == expected
    assert_same_as_reference(city)


FACT_COLUMNS = ("case_id, step_id, kind, city_id, grid_code, category_id, department_id, "
                "person_id, handle_person_id, handle_at, at, on_time, closed_on_time, next_at, "
                "valid_at, source")


def all_facts() -> list:
    return db.session.execute(text(
        f"SELECT {FACT_COLUMNS} FROM evaluation_facts ORDER BY {FACT_COLUMNS}")).all()


def test_a_new_case_gets_the_same_facts_as_the_general_refresh(month, client):
    """Migration 0009: the insert trigger writes a new case's 'reported' row itself; the row
    is the one the general refresh computes, for reports and for cases inserted with their
    counted steps in one statement."""
    places = db.session.execute(text(
        "SELECT ST_X(c.location), ST_Y(c.location), k.code FROM cases c "
        "JOIN categories k ON k.id = c.category_id ORDER BY c.id LIMIT 3")).all()
    # the month's cases were written with their own ids
    db.session.execute(text("SELECT setval(pg_get_serial_sequence('cases', 'id'), "
                            "(SELECT max(id) FROM cases))"))
    db.session.commit()
    for n, (lon, lat, category) in enumerate(places):
        answer = client.post("/api/v1/reports", json={
            "lon": lon, "lat": lat, "category": category, "client_id": f"facts-{n}"})
        assert answer.status_code == 201, answer.json
    db.session.execute(text("""
        WITH c AS (
            INSERT INTO cases (code, city_id, state, source, channel, category_id, region_id,
                               grid_code, location, deadlines, created_at)
            SELECT 'F' || id, city_id, 'filed', 'inspector', 'patrol', category_id, region_id,
                   grid_code, location, '{}', created_at - interval '1 day'
            FROM cases ORDER BY id LIMIT 2
            RETURNING id, created_at
        )
        INSERT INTO case_history (case_id, action, from_state, to_state, at)
        SELECT id, 'file', 'reported', 'filed', created_at + interval '1 hour' FROM c"""))
    db.session.commit()
    written = all_facts()
    assert sum(1 for f in written if f.kind == "reported" and f.valid_at is not None) >= 2
    db.session.execute(text("SELECT evaluation_refresh_facts(ARRAY(SELECT id FROM cases))"))
    assert all_facts() == written


def test_facts_follow_later_changes_to_cases(month):
    city, cases, users = month["city_id"], month["cases"], month["users"]
    november = periods.month("2026-11", TZ)
    [before] = indicators.compute("city", november, city)
    assert (before.counts["handled_on_time"], before.counts["reworked"]) == (4, 1)

    # K10 was handled late (11-18 09:00 > 11-16 18:00); an extension granted afterwards
    # moves its deadline to 11-19 18:00, for November too: handled on time. Then insp2's check
    # fails on 11-19 10:00 (rework): dispatched again, it is overdue at the month's end,
    # though handled in it (due once).
    step = text("""
        INSERT INTO case_history (case_id, actor_id, action, to_state, at, details)
        VALUES (:case, :actor, :action, :state, :at, CAST(:details AS jsonb))""")
    k10, k7 = cases["K10"], cases["K7"]
    db.session.execute(step, {"case": k10, "actor": users["insp2"], "action": "rework",
                              "state": "dispatched", "at": datetime(2026, 11, 19, 10, tzinfo=CST),
                              "details": json.dumps({"department_id": month["departments"]["D2"],
                                                     "rework": 1, "passed": False})})
    db.session.execute(text("""
        UPDATE cases SET deadline = :d, state = 'dispatched', handler_id = NULL,
                         handled_at = NULL, rework_count = 1, updated_at = :at
        WHERE id = :id"""), {"d": datetime(2026, 11, 19, 18, tzinfo=CST),
                             "at": datetime(2026, 11, 19, 10, tzinfo=CST), "id": k10})
    # K7, shelved on 11-25 09:00, resumes at 12:00 (deadline a day later) and w2 handles it
    for action, state, hour in (("resume", "accepted", 12), ("handle", "handled", 15)):
        db.session.execute(step, {"case": k7, "actor": users["w2"], "action": action,
                                  "state": state, "at": datetime(2026, 11, 25, hour, tzinfo=CST),
                                  "details": "{}"})
    db.session.execute(text("""
        UPDATE cases SET deadline = deadline + interval '1 day', state = 'handled',
                         handler_id = :w2, handled_at = :at, updated_at = :at
        WHERE id = :id"""), {"w2": users["w2"], "id": k7,
                             "at": datetime(2026, 11, 25, 15, tzinfo=CST)})
    # K9 moves to category Y
    db.session.execute(text("UPDATE cases SET category_id = :cat WHERE id = :id"),
                       {"cat": month["categories"]["Y"], "id": cases["K9"]})
    db.session.commit()

    [after] = indicators.compute("city", november, city)
    assert after.counts == {**before.counts, "handled": 7, "handled_on_time": 6,
                            "reworked": 2, "checked": 6, "checked_on_time": 5, "overdue": 3,
                            "due_handling": 9, "due_closing": 9}
    people = {row.key: row.counts for row in indicators.compute("person", november, city)}
    assert people[str(users["w2"])]["reworked"] == 1  # K10's handling was sent back
    assert people[str(users["w2"])]["overdue"] == 2  # K4 and K10
    by_category = {row.key: row.counts["reported"]
                   for row in indicators.compute("category", november, city)}
    assert by_category == {str(month["categories"]["X"]): 4,  # K1, K2, K5, K6
                           str(month["categories"]["Y"]): 5}  # K3, K4, K7, K9, K10
    assert_same_as_reference(city)


def test_two_steps_written_at_once_to_one_case_leave_one_row_each(month):
    """The second writer's refresh waits for the first's to commit, then rewrites the case."""
    case = month["cases"]["K4"]
    insert = text("""
        INSERT INTO case_history (case_id, actor_id, action, to_state, at)
        VALUES (:case, :actor, :action, 'accepted', :at)""")
    engine = db.engine  # the thread below has no application context
    first = engine.connect()
    first.begin()
    first.execute(insert, {"case": case, "actor": month["users"]["chief"], "action": "extend",
                           "at": datetime(2026, 11, 21, 9, tzinfo=CST)})
    failures: list[BaseException] = []

    def second() -> None:
        try:
            with engine.begin() as connection:
                connection.execute(insert, {
                    "case": case, "actor": month["users"]["chief"], "action": "extend",
                    "at": datetime(2026, 11, 22, 9, tzinfo=CST)})
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    thread = threading.Thread(target=second)
    thread.start()
    waited = 0.0
    with db.engine.connect() as watcher:  # until the second writer waits for the first
        while waited < 10 and not watcher.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%INSERT INTO case_history%'")):
            time.sleep(0.05)
            waited += 0.05
    first.commit()
    first.close()
    thread.join(30)
    assert not failures and not thread.is_alive()
    db.session.commit()
    rows = db.session.execute(text("""
        SELECT count(*), count(DISTINCT step_id) FILTER (WHERE kind = 'extend')
        FROM evaluation_facts WHERE case_id = :case"""), {"case": case}).one()
    # report + file, dispatch, handle (12-02) + the two extensions; accept is not counted
    assert tuple(rows) == (6, 2)
    assert_same_as_reference(month["city_id"])


# The case workflow (gridmgr/cases/workflow.py): action -> (from states, to state)
_MOVES = {
    "reported": ["verify", "file", "cancel", "self_handle"],
    "verified": ["file", "cancel", "self_handle"],
    "filed": ["dispatch", "dispatch", "cancel"],
    "dispatched": ["accept", "accept", "return", "extend", "shelve"],
    "accepted": ["handle", "handle", "handle", "return", "extend", "shelve"],
    "shelved": ["resume"],
    "handled": ["check", "check", "rework"],
    "checked": ["close", "close", "rework"],
}
_TARGET = {"verify": "verified", "file": "filed", "cancel": "cancelled",
           "self_handle": "closed", "dispatch": "dispatched", "accept": "accepted",
           "return": "filed", "handle": "handled", "check": "checked", "close": "closed",
           "rework": "dispatched", "shelve": "shelved"}


def _random_case(rng: random.Random, month: dict, number: int) -> tuple[dict, list[dict]]:
    """A case that walked the workflow at random from a random October-December start."""
    users, departments = month["users"], month["departments"]
    staff = [users[name] for name in ("insp1", "insp2", "op", "disp", "chief")]
    workers = {departments["D1"]: users["w1"], departments["D2"]: users["w2"]}
    t = datetime(2026, 10, 15, tzinfo=CST) + timedelta(hours=rng.uniform(0, 24 * 55))
    grid = rng.choice(list(GRIDS.values()))
    reporter = rng.choice([users["insp1"], users["insp2"], users["cit"]])
    case = {"id": number, "code": f"R{number:08d}", "grid": grid, "reporter": reporter,
            "category": rng.choice(list(month["categories"].values())), "created": t,
            "department": None, "worker": None, "handler": None, "deadline": None,
            "deadlines": {}, "handled_at": None, "closed_at": None, "rework_count": 0,
            "state": "reported", "shelved_from": None}
    steps = [{"action": "report", "actor": reporter, "at": t, "to": "reported", "details": {}}]
    while case["state"] in _MOVES and rng.random() < 0.9:
        action = rng.choice(_MOVES[case["state"]])
        t += timedelta(hours=rng.choice([0, 0.5, 3, 20, 70]))
        actor = rng.choice(staff)
        details: dict = {}
        stage = {"verify": "file", "file": "dispatch", "handle": "check", "check": "close"}
        if action in stage and rng.random() < 0.8:
            case["deadlines"][stage[action]] = (t + timedelta(hours=rng.uniform(1, 40)))
        if action == "verify":
            case["deadlines"].setdefault("verify", t + timedelta(hours=rng.uniform(-5, 5)))
        if action == "dispatch":
            case["department"] = rng.choice(list(workers))
            case["worker"] = workers[case["department"]]
            case["deadline"] = t + timedelta(hours=rng.uniform(2, 80))
            details = {"department_id": case["department"]}
        elif action == "return":
            details = {"department_id": case["department"]}
            case.update(department=None, worker=None, deadline=None)
            actor = case["worker"] or actor
        elif action == "accept":
            actor = case["worker"]
        elif action == "extend":
            case["deadline"] += timedelta(hours=rng.uniform(5, 50))
        elif action == "shelve":
            case["shelved_from"] = case["state"]
        elif action == "resume":
            case["deadline"] += timedelta(hours=rng.uniform(1, 30))
        elif action in ("handle", "self_handle"):
            actor = case["worker"] if action == "handle" else reporter
            case.update(handler=actor, handled_at=t)
        elif action == "rework":
            case.update(handler=None, handled_at=None, rework_count=case["rework_count"] + 1)
            details = {"department_id": case["department"], "rework": case["rework_count"]}
            if case["state"] == "handled":
                details["passed"] = False
        if action in ("close", "self_handle"):
            case["closed_at"] = t
        target = (case["shelved_from"] if action == "resume"
                  else _TARGET.get(action, case["state"]))
        steps.append({"action": action, "actor": actor, "at": t, "to": target,
                      "details": details})
        case["state"] = target
    case["updated"] = t
    return case, steps


def test_a_random_history_counts_the_same_as_the_reference(month):
    rng = random.Random(8)
    city = month["city_id"]
    region_ids = dict(db.session.execute(text(
        "SELECT code, id FROM regions WHERE city_id = :c"), {"c": city}).all())
    for number in range(100, 400):
        case, steps = _random_case(rng, month, number)
        db.session.execute(text("""
            INSERT INTO cases (id, code, city_id, state, source, channel, category_id,
                               region_id, grid_code, location, reporter_id, department_id,
                               worker_id, handler_id, deadline, deadlines, handled_at,
                               closed_at, rework_count, created_at, updated_at)
            VALUES (:id, :code, :city, :state, 'inspector', 'app', :category, :region, :grid,
                    ST_SetSRID(ST_MakePoint(116.305, 39.91), 4326), :reporter, :department,
                    :worker, :handler, :deadline, CAST(:deadlines AS jsonb), :handled_at,
                    :closed_at, :rework_count, :created, :updated)"""), {
            **case, "city": city, "region": region_ids[case["grid"]],
            "deadlines": json.dumps({k: v.isoformat() for k, v in case["deadlines"].items()})})
        # half the histories in one statement (a bulk import), half one step at a time
        chunks = [steps] if number % 2 else [[step] for step in steps]
        for chunk in chunks:
            db.session.execute(text("""
                INSERT INTO case_history (case_id, actor_id, action, to_state, at, details)
                SELECT :case, (s->>'actor')::int, s->>'action', s->>'to',
                       (s->>'at')::timestamptz, s->'details'
                FROM jsonb_array_elements(CAST(:steps AS jsonb)) s"""), {
                "case": number, "steps": json.dumps([
                    {**step, "at": step["at"].isoformat()} for step in chunk])})
    db.session.commit()
    assert assert_same_as_reference(city) > 3000
