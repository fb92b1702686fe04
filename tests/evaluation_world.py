"""A small, hand-computed month (November 2026, Asia/Shanghai) for the evaluation tests.

Two streets: A (110105001, grids A1 and A2 in community 110105001001) and B (110105002, grid
B1 in community 110105002001). Cases and their steps are written out below and inserted
directly with explicit timestamps (history is append-only: INSERT is allowed). Every time is
local (+08:00) in 2026. ``build_month(make_user)`` returns the ids the tests need.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from shapely.geometry import MultiPolygon, box
from sqlalchemy import text

from gridmgr.categories.models import Category, CategoryClass
from gridmgr.extensions import db
from gridmgr.grids.models import City, Region

CST = timezone(timedelta(hours=8))
STREET_A, STREET_B = "110105001", "110105002"
GRIDS = {"A1": "110105001001001", "A2": "110105001001002", "B1": "110105002001001"}

# ref  grid  cat  source       reporter  created        state now    dept  worker handler
#      handling deadline  stage deadlines (deadlines JSON)                         handled_at
#      closed_at
CASES = [
    ("K1", "A1", "X", "inspector", "insp1", "11-01 00:00", "closed", "D1", "w1", "w1",
     "11-04 18:00", {"file": "11-01 10:00", "check": "11-05 12:00"}, "11-03 15:00",
     "11-04 11:00"),
    ("K2", "A1", "X", "citizen", "cit", "11-05 08:00", "closed", "D1", "w1", "w1",
     "11-10 18:00", {"verify": "11-05 12:00", "file": "11-05 14:00", "check": "11-09 12:00"},
     "11-08 10:00", "11-08 16:00"),
    ("K3", "A2", "Y", "citizen", "cit", "11-10 09:00", "closed", "D1", "w1", "w1",
     "11-14 18:00", {"verify": "11-10 12:00", "file": "11-10 17:00", "check": "11-15 10:30"},
     "11-15 10:00", "11-15 12:00"),
    ("K4", "A2", "Y", "inspector", "insp1", "11-20 09:00", "handled", "D2", "w2", "w2",
     "11-25 18:00", {"file": "11-20 11:00"}, "12-02 10:00", None),
    ("K5", "A1", "X", "inspector", "insp1", "11-21 09:00", "closed", None, None, "insp1",
     None, {}, "11-21 09:30", "11-21 09:30"),
    ("K6", "A2", "X", "citizen", "cit", "11-22 09:00", "cancelled", None, None, None,
     None, {"verify": "11-22 12:00"}, None, "11-22 10:00"),
    ("K7", "A1", "Y", "inspector", "insp1", "11-24 09:00", "shelved", "D2", "w2", None,
     "11-26 18:00", {"file": "11-24 10:00"}, None, None),
    ("K8", "A1", "X", "inspector", "insp1", "10-20 09:00", "accepted", "D1", "w1", None,
     "10-25 18:00", {"file": "10-20 11:00"}, None, None),
    ("K9", "B1", "X", "inspector", "insp2", "11-03 09:00", "closed", "D1", "w1", "w1",
     "11-05 18:00", {"file": "11-03 10:00", "check": "11-05 12:00"}, "11-04 09:00",
     "11-04 16:00"),
    ("K10", "B1", "Y", "citizen", "cit", "11-12 09:00", "handled", "D2", "w2", "w2",
     "11-16 18:00", {"verify": "11-12 12:00", "file": "11-12 14:00", "check": "11-19 12:00"},
     "11-18 09:00", None),
    ("K11", "A1", "X", "inspector", "insp1", "12-01 00:00", "reported", None, None, None,
     None, {}, None, None),
]

# ref  action  actor  at  to_state  details  (D1/D2 in details name the department)
STEPS = [
    ("K1", "report", "insp1", "11-01 00:00", "reported", {}),
    ("K1", "file", "op", "11-01 09:30", "filed", {}),
    ("K1", "dispatch", "disp", "11-02 10:00", "dispatched", {"department_id": "D1"}),
    ("K1", "accept", "w1", "11-02 11:00", "accepted", {}),
    ("K1", "handle", "w1", "11-03 15:00", "handled", {}),
    ("K1", "check", "insp1", "11-04 10:00", "checked", {"passed": True}),
    ("K1", "close", "chief", "11-04 11:00", "closed", {}),

    ("K2", "report", "cit", "11-05 08:00", "reported", {}),
    ("K2", "verify", "insp1", "11-05 11:00", "verified", {"valid": True}),
    ("K2", "file", "op", "11-05 15:00", "filed", {}),
    ("K2", "dispatch", "disp", "11-05 16:00", "dispatched", {"department_id": "D1"}),
    ("K2", "accept", "w1", "11-05 17:00", "accepted", {}),
    ("K2", "handle", "w1", "11-06 10:00", "handled", {}),
    ("K2", "rework", "insp1", "11-06 14:00", "dispatched",
     {"department_id": "D1", "rework": 1, "passed": False}),
    ("K2", "accept", "w1", "11-07 09:00", "accepted", {}),
    ("K2", "handle", "w1", "11-08 10:00", "handled", {}),
    ("K2", "check", "insp1", "11-08 15:00", "checked", {"passed": True}),
    ("K2", "close", "chief", "11-08 16:00", "closed", {}),

    ("K3", "report", "cit", "11-10 09:00", "reported", {}),
    ("K3", "verify", "insp1", "11-10 13:00", "verified", {"valid": True}),
    ("K3", "file", "op", "11-10 14:00", "filed", {}),
    ("K3", "dispatch", "disp", "11-10 15:00", "dispatched", {"department_id": "D2"}),
    ("K3", "return", "w2", "11-10 16:00", "filed", {"department_id": "D2"}),
    ("K3", "dispatch", "disp", "11-11 09:00", "dispatched", {"department_id": "D1"}),
    ("K3", "accept", "w1", "11-11 10:00", "accepted", {}),
    ("K3", "extend", "chief", "11-12 09:00", "accepted", {}),
    ("K3", "handle", "w1", "11-15 10:00", "handled", {}),
    ("K3", "check", "insp1", "11-15 11:00", "checked", {"passed": True}),
    ("K3", "close", "chief", "11-15 12:00", "closed", {}),

    ("K4", "report", "insp1", "11-20 09:00", "reported", {}),
    ("K4", "file", "op", "11-20 10:00", "filed", {}),
    ("K4", "dispatch", "disp", "11-20 11:00", "dispatched", {"department_id": "D2"}),
    ("K4", "accept", "w2", "11-20 12:00", "accepted", {}),
    ("K4", "handle", "w2", "12-02 10:00", "handled", {}),  # after the month: still open then

    ("K5", "report", "insp1", "11-21 09:00", "reported", {}),
    ("K5", "self_handle", "insp1", "11-21 09:30", "closed", {}),

    ("K6", "report", "cit", "11-22 09:00", "reported", {}),
    ("K6", "verify", "insp1", "11-22 10:00", "cancelled", {"valid": False}),

    ("K7", "report", "insp1", "11-24 09:00", "reported", {}),
    ("K7", "file", "op", "11-24 09:10", "filed", {}),
    ("K7", "dispatch", "disp", "11-24 10:00", "dispatched", {"department_id": "D2"}),
    ("K7", "accept", "w2", "11-24 11:00", "accepted", {}),
    ("K7", "shelve", "chief", "11-25 09:00", "shelved", {}),

    ("K8", "report", "insp1", "10-20 09:00", "reported", {}),
    ("K8", "file", "op", "10-20 10:00", "filed", {}),
    ("K8", "dispatch", "disp", "10-20 11:00", "dispatched", {"department_id": "D1"}),
    ("K8", "accept", "w1", "10-20 12:00", "accepted", {}),

    ("K9", "report", "insp2", "11-03 09:00", "reported", {}),
    ("K9", "file", "op", "11-03 09:30", "filed", {}),
    ("K9", "dispatch", "disp", "11-03 10:00", "dispatched", {"department_id": "D1"}),
    ("K9", "accept", "w1", "11-03 11:00", "accepted", {}),
    ("K9", "handle", "w1", "11-04 09:00", "handled", {}),
    ("K9", "check", "insp2", "11-04 15:00", "checked", {"passed": True}),
    ("K9", "close", "chief", "11-04 16:00", "closed", {}),

    ("K10", "report", "cit", "11-12 09:00", "reported", {}),
    ("K10", "verify", "insp2", "11-12 10:00", "verified", {"valid": True}),
    ("K10", "file", "op", "11-12 11:00", "filed", {}),
    ("K10", "dispatch", "disp", "11-12 12:00", "dispatched", {"department_id": "D2"}),
    ("K10", "accept", "w2", "11-12 13:00", "accepted", {}),
    ("K10", "handle", "w2", "11-18 09:00", "handled", {}),

    ("K11", "report", "insp1", "12-01 00:00", "reported", {}),  # the next month: not counted
]

# Reports (who told the city about which case): the citizens' own, and inspector insp1's
# duplicate report on K3 (so K3 is not a 漏报 of insp1's community; K2 is, K10 is insp2's).
REPORTS = [("K2", "cit"), ("K3", "cit"), ("K3", "insp1"), ("K6", "cit"), ("K10", "cit")]


def at(local: str | None) -> datetime | None:
    """'MM-DD HH:MM' in 2026, Beijing time."""
    if local is None:
        return None
    return datetime.strptime(f"2026-{local}", "%Y-%m-%d %H:%M").replace(tzinfo=CST)


def _build_regions() -> City:
    city = City(slug="test-city", name="测试市", timezone="Asia/Shanghai")
    db.session.add(city)
    db.session.flush()
    shapes = {"110105": box(116.30, 39.90, 116.34, 39.92),
              STREET_A: box(116.30, 39.90, 116.32, 39.92),
              "110105001001": box(116.30, 39.90, 116.32, 39.92),
              GRIDS["A1"]: box(116.30, 39.90, 116.31, 39.92),
              GRIDS["A2"]: box(116.31, 39.90, 116.32, 39.92),
              STREET_B: box(116.32, 39.90, 116.34, 39.92),
              "110105002001": box(116.32, 39.90, 116.34, 39.92),
              GRIDS["B1"]: box(116.32, 39.90, 116.34, 39.92)}
    levels = {6: "district", 9: "street", 12: "community", 15: "grid"}
    ids: dict[str, int] = {}
    for code, shape in shapes.items():
        region = Region(city_id=city.id, level=levels[len(code)], code=code,
                        name=f"{levels[len(code)]} {code}", parent_id=ids.get(code[:-3]),
                        geom=f"SRID=4326;{MultiPolygon([shape]).wkt}", area_m2=1e6)
        db.session.add(region)
        db.session.flush()
        ids[code] = region.id
    return city


def build_month(make_user) -> dict:
    """Insert the city, people, categories, cases, steps and reports; return their ids."""
    city = _build_regions()
    klass = CategoryClass(code="T01", kind="event", name_zh="测试", name_en="Test")
    db.session.add(klass)
    db.session.flush()
    categories = {}
    for ref, code in (("X", "T0101"), ("Y", "T0102")):
        category = Category(code=code, class_id=klass.id, name_zh=f"类别{ref}",
                            name_en=f"Category {ref}")
        db.session.add(category)
        db.session.flush()
        categories[ref] = category.id
    db.session.commit()
    users = {
        "insp1": make_user("inspector", "insp1", region_code="110105001001"),
        "insp2": make_user("inspector", "insp2", region_code="110105002001"),
        "op": make_user("operator", "op"),
        "disp": make_user("dispatcher", "disp"),
        "chief": make_user("duty_chief", "chief"),
        "w1": make_user("department", "w1", department="环卫"),
        "w2": make_user("department", "w2", department="市政"),
        "cit": make_user("citizen", "cit"),
        "director_a": make_user("duty_chief", "director_a", region_code=STREET_A),
        "director_b": make_user("duty_chief", "director_b", region_code=STREET_B),
    }
    user_ids = {name: user.id for name, user in users.items()}
    departments = {"D1": users["w1"].department_id, "D2": users["w2"].department_id}
    region_ids = dict(db.session.execute(text(
        "SELECT code, id FROM regions WHERE city_id = :c"), {"c": city.id}).all())
    last_step = {}
    for ref, _action, _actor, when, _state, _details in STEPS:
        last_step[ref] = max(last_step.get(ref, at(when)), at(when))
    case_ids = {}
    for number, (ref, grid, cat, source, reporter, created, state, dept, worker, handler,
                 deadline, deadlines, handled_at, closed_at) in enumerate(CASES, start=1):
        case_ids[ref] = db.session.execute(text("""
            INSERT INTO cases (id, code, city_id, state, source, channel, category_id,
                               region_id, grid_code, location, reporter_id, department_id,
                               worker_id, handler_id, deadline, deadlines, handled_at,
                               closed_at, created_at, updated_at, dispatched_at)
            VALUES (:id, :code, :city, :state, :source, 'app', :category, :region, :grid,
                    ST_SetSRID(ST_MakePoint(116.305, 39.91), 4326), :reporter, :dept,
                    :worker, :handler, :deadline, CAST(:deadlines AS jsonb), :handled_at,
                    :closed_at, :created, :updated, NULL)
            RETURNING id"""), {
            "id": number, "code": f"2026110{number:07d}", "city": city.id, "state": state,
            "source": source, "category": categories[cat], "region": region_ids[GRIDS[grid]],
            "grid": GRIDS[grid], "reporter": user_ids[reporter],
            "dept": departments.get(dept), "worker": user_ids.get(worker),
            "handler": user_ids.get(handler), "deadline": at(deadline),
            "deadlines": json.dumps({k: at(v).isoformat() for k, v in deadlines.items()}),
            "handled_at": at(handled_at), "closed_at": at(closed_at), "created": at(created),
            "updated": last_step[ref]}).scalar_one()
    state_of: dict[str, str | None] = {}
    for ref, action, actor, when, to_state, details in STEPS:
        details = {k: departments[v] if k == "department_id" else v
                   for k, v in details.items()}
        db.session.execute(text("""
            INSERT INTO case_history (case_id, actor_id, actor_role, action, from_state,
                                      to_state, at, details)
            VALUES (:case, :actor, :role, :action, :from_state, :to_state, :at,
                    CAST(:details AS jsonb))"""), {
            "case": case_ids[ref], "actor": user_ids[actor], "role": users[actor].role,
            "action": action, "from_state": state_of.get(ref), "to_state": to_state,
            "at": at(when), "details": json.dumps(details)})
        state_of[ref] = to_state
    for number, (ref, reporter) in enumerate(REPORTS, start=1):
        db.session.execute(text("""
            INSERT INTO reports (reporter_key, client_id, reporter_id, channel, coord_sys, location,
                                 category_id, case_id, created_at)
            SELECT :key, :client, :reporter, 'app', 'wgs84', location, category_id, id,
                   created_at
            FROM cases WHERE id = :case"""), {
            "key": f"u{user_ids[reporter]}", "client": f"r{number}",
            "reporter": user_ids[reporter], "case": case_ids[ref]})
    db.session.commit()
    return {"city_id": city.id, "users": user_ids, "departments": departments,
            "categories": categories, "cases": case_ids}
