"""A city moving from its old system gets the same cases it would have got had its staff used
gridmgr: a case driven through the whole loop by the API, exported as a history file with the
API's own times and imported, gives a case with the same case row, history and evaluation
facts."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from cityfixtures import city_fixture, jpeg_bytes  # noqa: F401
from sqlalchemy import text

from gridmgr.extensions import db
from gridmgr.legacy.importing import COLUMNS, import_history

# Who takes each step of the loop, in order: (role, endpoint, what the request says).
LOOP = (
    ("inspector", "verify", {}),
    ("duty_chief", "file", {}),
    ("duty_chief", "dispatch", {}),
    ("duty_chief", "shelve", {"note": "等待施工许可"}),
    ("duty_chief", "resume", {}),
    ("department", "accept", {}),
    ("department", "handle", {"note": "已修复"}),
    ("inspector", "check", {"passed": False, "note": "井盖仍松动"}),
    ("department", "accept", {}),
    ("duty_chief", "extend", {"amount": 2, "unit": "natural_days", "note": "等配件"}),
    ("department", "handle", {"note": "已更换井盖"}),
    ("inspector", "check", {}),
    ("duty_chief", "close", {}),
    ("citizen", "rate", {"rating": 4, "note": "满意"}),
)
# The columns a step writes (ids and the case number aside).
CASE_COLUMNS = """state, source, channel, category_id, grid_code, description, reporter_id,
    verified_by_id, department_id, worker_id, handler_id, dispatched_at, clock_unit, deadline,
    yellow_at, paused_at, paused_seconds, shelved_from, pending_request, accepted_at,
    handled_at, closed_at, extension_count, rework_count, return_count, rating, rating_note,
    version, created_at"""
FACT_COLUMNS = """kind, city_id, grid_code, category_id, department_id, person_id,
    handle_person_id, handle_at, at, on_time, closed_on_time, next_at, valid_at, source"""


def _take(client, headers, case_id: int, endpoint: str, body: dict, point) -> None:
    lon, lat = point
    if endpoint == "handle":
        answer = client.post(
            f"/api/v1/cases/{case_id}/handle", headers=headers,
            data={**body, "lon": str(lon), "lat": str(lat),
                  "photos": [(io.BytesIO(jpeg_bytes()), "after.jpg")]},
            content_type="multipart/form-data")
    else:
        answer = client.post(f"/api/v1/cases/{case_id}/{endpoint}", headers=headers,
                             json={**body, "lon": lon, "lat": lat})
    assert answer.status_code == 200, (endpoint, answer.get_json())


def _case(case_id: int):
    return db.session.execute(text(f"SELECT {CASE_COLUMNS}, updated_at, deadlines FROM cases "
                                   "WHERE id = :id"), {"id": case_id}).one()


def _history(case_id: int) -> list[dict]:
    rows = db.session.execute(text("""
        SELECT h.action, h.from_state, h.to_state, h.at, h.actor_id, h.actor_role, h.note,
               h.details, ST_X(h.location) AS lon, ST_Y(h.location) AS lat, u.username
        FROM case_history h LEFT JOIN users u ON u.id = h.actor_id
        WHERE h.case_id = :id ORDER BY h.id"""), {"id": case_id}).mappings().all()
    return [dict(row) for row in rows]


def _facts(case_id: int) -> list[tuple]:
    return sorted(db.session.execute(text(f"""
        SELECT {FACT_COLUMNS} FROM evaluation_facts WHERE case_id = :id"""),
        {"id": case_id}).all(), key=lambda fact: (fact.at, fact.kind))


def _export(history: list[dict], category: str, department: str, path) -> None:
    """The history file an old system would give for these steps, at the API's times."""
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow((*COLUMNS, "channel", "deadline", "passed", "rating"))
        for h in history:
            details = h["details"]
            failed = h["action"] == "rework" and details.get("passed") is False
            step = {"report": "reported"}.get(h["action"], "check" if failed else h["action"])
            out.writerow((
                "LIVE-1", category if step == "reported" else "",
                "" if h["lon"] is None else repr(h["lon"]),
                "" if h["lat"] is None else repr(h["lat"]), step,
                h["at"].astimezone(UTC).isoformat(), h["actor_role"] or "", h["username"] or "",
                department if step == "dispatch" else "", h["note"] or "",
                details.get("channel", "") if step == "reported" else "",
                details.get("deadline", "") if step == "extend" else "",
                "false" if failed else "", details.get("rating", "")))


def _comparable(history: list[dict]) -> list[dict]:
    """History rows as both writers must agree on them: the report's id (the live report's
    row) and the import's marker aside."""
    return [{**h, "details": {k: v for k, v in h["details"].items()
                              if k not in ("report_id", "imported")}} for h in history]


def test_the_import_of_a_loop_equals_the_loop_taken_through_the_api(
        client, city, make_user, auth_headers, tmp_path):
    users = {role: make_user(role, region_code=city.grids[0] if role == "inspector" else None)
             for role in ("citizen", "inspector", "duty_chief", "department")}
    headers = {role: auth_headers(user) for role, user in users.items()}
    point = city.centre(0)
    reported = client.post("/api/v1/reports", headers=headers["citizen"], json={
        "lon": point[0], "lat": point[1], "category": "C0101", "description": "井盖破损",
        "channel": "app", "client_id": "loop-1"})
    assert reported.status_code == 201, reported.get_json()
    live_id = reported.get_json()["case"]["id"]
    receiver = {"department": str(users["department"].department_id)}
    for role, endpoint, body in LOOP:
        _take(client, headers[role], live_id, endpoint,
              {**body, **receiver} if endpoint == "dispatch" else body, point)
    db.session.rollback()
    live, live_history, live_facts = _case(live_id), _history(live_id), _facts(live_id)
    assert [h["action"] for h in live_history] == [
        "report", "verify", "file", "dispatch", "shelve", "resume", "accept", "handle",
        "rework", "accept", "extend", "handle", "check", "close", "rate"]
    assert (live.state, live.rework_count, live.extension_count, live.rating) == (
        "closed", 1, 1, 4)
    department = db.session.scalar(text("SELECT name FROM departments WHERE id = :id"),
                                   {"id": live.department_id})
    _export(live_history, "C0101", department, tmp_path / "history.csv")

    # The old system's file of the same steps arrives (history is append-only: the live case
    # stays beside the imported one).
    result = import_history(tmp_path / "history.csv")
    assert (result.cases, result.steps) == (1, len(LOOP) + 1)
    imported_id = db.session.scalar(text("SELECT id FROM cases WHERE code = 'LIVE-1'"))
    imported = _case(imported_id)

    assert dict(imported._mapping) | {"updated_at": None, "deadlines": None} == \
        dict(live._mapping) | {"updated_at": None, "deadlines": None}
    # The live case's last change is stamped by the database's clock, the import's by the
    # file's time of the last step: the same moment within the request.
    assert abs((imported.updated_at - live.updated_at).total_seconds()) < 1
    # Every stage deadline is the same; the report's own stage is timed by the intake from its
    # own reading of the clock, within the request of the report.
    live_stages, imported_stages = dict(live.deadlines), dict(imported.deadlines)
    live_yellow, imported_yellow = live_stages.pop("yellow"), imported_stages.pop("yellow")
    for stages in (live_stages, imported_stages, live_yellow, imported_yellow):
        stages["verify"] = datetime.fromisoformat(stages["verify"])
    assert abs((imported_stages.pop("verify") - live_stages.pop("verify")).total_seconds()) < 1
    assert abs((imported_yellow.pop("verify") - live_yellow.pop("verify")).total_seconds()) < 1
    assert (imported_stages, imported_yellow) == (live_stages, live_yellow)

    imported_history = _history(imported_id)
    assert all(h["details"]["imported"] is True for h in imported_history)
    assert _comparable(imported_history) == _comparable(live_history)
    assert _facts(imported_id) == live_facts
    # Imported history is not news: no live event names the imported case.
    assert db.session.scalar(text("""
        SELECT count(*) FROM live_events WHERE (payload->>'id')::bigint = :id"""),
        {"id": imported_id}) == 0
