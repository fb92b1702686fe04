"""Every new report is stored by the intake's one statement, whichever way it came: a phone
that sends the point, a phone whose point is only in its photo's EXIF, and an Open311 portal
all get a case in the same grid with the same kind of number, one history row and one live
event told to the same rooms, and the duplicate check of the same statement."""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

from cityfixtures import jpeg_bytes, multipart
from open311_world import IN_WEST, build_world
from sqlalchemy import select, text

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
