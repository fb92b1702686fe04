"""Every new report is stored by the intake's one statement, whichever way it came: a phone
that sends the point, a phone whose point is only in its photo's EXIF, and an Open311 portal
all get a case in the same grid with the same kind of number, one history row and one live
event told to the same rooms, and the duplicate check of the same statement."""

from __future__ import annotations

import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from cityfixtures import jpeg_bytes, multipart
from open311_world import IN_WEST, build_world
from sqlalchemy import event, select, text

from gridmgr.cases.models import Case
from gridmgr.extensions import db

GRID = "110101001001001"


def _written(case_id: int) -> tuple[list, list]:
    history = db.session.execute(text(
        "SELECT action, to_state FROM case_history WHERE case_id = :id ORDER BY id"),
        {"id": case_id}).all()
    events = db.session.execute(text(
        "SELECT event, rooms, payload->>'code' AS code FROM live_events "
        "WHERE payload->>'id' = CAST(:id AS text) ORDER BY id"), {"id": case_id}).all()
    return [tuple(h) for h in history], [tuple(e) for e in events]


def test_a_point_sent_one_in_a_photo_and_an_open311_request_make_cases_alike(client, app_ctx):
    world = build_world()
    sent = client.post("/api/v1/reports", json={
        "category": "C9801", "lon": IN_WEST[0], "lat": IN_WEST[1], "description": "Lamp out"})
    in_photo = client.post("/api/v1/reports", **multipart({
        "category": "C9801", "description": "Lamp out again",
        "photos": [(io.BytesIO(jpeg_bytes(gps=IN_WEST)), "lamp.jpg")]}))
    portal = client.post("/open311/v2/requests.json", data={
        "api_key": world.api_key, "service_code": "C9801", "lat": IN_WEST[1],
        "long": IN_WEST[0], "description": "Lamp out, says the portal"})
    assert (sent.status_code, in_photo.status_code, portal.status_code) == (201, 201, 200)

    codes = [sent.get_json()["case"]["code"], in_photo.get_json()["case"]["code"],
             portal.get_json()[0]["service_request_id"]]
    cases = [db.session.scalar(select(Case).where(Case.code == code)) for code in codes]
    today = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
    rooms = sorted([f"city:{world.city_id}", "region:110101", "region:110101001",
                    "region:110101001001", f"region:{GRID}"])
    for case in cases:
        assert (case.grid_code, case.city_id, case.state) == (GRID, world.city_id, "reported")
        assert case.code == f"{today}{case.id:06d}"
        history, events = _written(case.id)
        assert history == [("report", "reported")]
        assert events == [("case.created", rooms, case.code)]
    # The duplicate check ran in each statement: the later reports were told of the earlier.
    assert [d["code"] for d in in_photo.get_json()["possible_duplicates"]] == [codes[0]]


def test_a_photo_without_gps_and_no_point_is_refused_and_nothing_is_stored(client, app_ctx):
    build_world()
    answer = client.post("/api/v1/reports", **multipart({
        "category": "C9801", "photos": [(io.BytesIO(jpeg_bytes()), "lamp.jpg")]}))
    assert answer.status_code == 422
    assert answer.get_json()["error"]["code"] == "location_required"
    assert db.session.scalar(text("SELECT count(*) FROM cases")) == 0
    assert db.session.scalar(text("SELECT count(*) FROM photos")) == 0


def test_a_report_joining_an_open_case_is_written_by_one_statement(client, app_ctx):
    """A second citizen's report of the same lamp joins the open case: one more reporter, the
    report, its history row and its live event (the case as it stands, told to its rooms) are
    written together by one statement, so no reader ever sees one without the others."""
    build_world()
    first = client.post("/api/v1/reports", json={
        "category": "C9801", "lon": IN_WEST[0], "lat": IN_WEST[1], "description": "Lamp out"})
    case_id = first.get_json()["case"]["id"]
    rooms_before = _written(case_id)[1][0][1]
    writes = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if re.match(r"\s*(WITH|INSERT|UPDATE|DELETE)\b", statement, re.IGNORECASE) \
                and re.search(r"\b(INSERT|UPDATE|DELETE)\b", statement, re.IGNORECASE):
            writes.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        joined = client.post("/api/v1/reports", json={
            "category": "C9801", "lon": IN_WEST[0] + 0.00005, "lat": IN_WEST[1],
            "description": "Still out", "duplicate_of": case_id})
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert joined.status_code == 201, joined.get_json()
    assert joined.get_json()["case"]["id"] == case_id
    assert len(writes) == 1, writes
    db.session.rollback()
    assert db.session.scalar(text(
        "SELECT reporter_count FROM cases WHERE id = :id"), {"id": case_id}) == 2
    assert db.session.scalar(text(
        "SELECT count(*) FROM reports WHERE case_id = :id"), {"id": case_id}) == 2
    history, events = _written(case_id)
    assert history == [("report", "reported"), ("report_joined", "reported")]
    code = first.get_json()["case"]["code"]
    assert events == [("case.created", rooms_before, code), ("case.updated", rooms_before, code)]
    told = db.session.execute(text(
        "SELECT payload FROM live_events WHERE payload->>'action' = 'report_joined'")).scalar()
    assert (told["state"], told["category"]) == ("reported", "C9801")


def test_a_report_joining_a_case_that_moved_meanwhile_tells_the_case_as_it_is_now(
        client, app_ctx):
    """The case's history row and event are made from the case as read; when an inspector
    verified it between that read and the write, the join reads it again and tells it as
    verified."""
    build_world()
    first = client.post("/api/v1/reports", json={
        "category": "C9801", "lon": IN_WEST[0], "lat": IN_WEST[1], "description": "Lamp out"})
    case_id = first.get_json()["case"]["id"]
    reads = []

    def file_after_first_read(conn, cursor, statement, parameters, context, executemany):
        if not reads and statement.lstrip().startswith("SELECT") \
                and "FROM cases WHERE id = %(id)s" in statement:
            reads.append(statement)
            # An inspector verifies the case on another connection and commits, between
            # this report's read of the case and its write.
            with db.engine.connect() as other:
                other.execute(text("UPDATE cases SET state = 'verified', version = version + 1 "
                                   "WHERE id = :id"), {"id": case_id})
                other.commit()

    event.listen(db.engine, "before_cursor_execute", file_after_first_read)
    try:
        joined = client.post("/api/v1/reports", json={
            "category": "C9801", "lon": IN_WEST[0], "lat": IN_WEST[1],
            "description": "Still out", "duplicate_of": case_id})
    finally:
        event.remove(db.engine, "before_cursor_execute", file_after_first_read)
    assert reads and joined.status_code == 201, joined.get_json()
    assert joined.get_json()["case"]["state"] == "verified"
    db.session.rollback()
    told = db.session.execute(text(
        "SELECT payload FROM live_events WHERE payload->>'action' = 'report_joined'")).scalar()
    assert told["state"] == "verified"
    assert db.session.execute(text(
        "SELECT from_state, to_state FROM case_history WHERE action = 'report_joined'")
    ).one() == ("verified", "verified")
