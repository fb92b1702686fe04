"""Stories around the whole loop, one per role, through the mobile API."""

from __future__ import annotations

import io

from cityfixtures import city_fixture, jpeg_bytes  # noqa: F401
from sqlalchemy import text

from gridmgr.extensions import db


def photo(name: str = "after.jpg", **kwargs):
    return (io.BytesIO(jpeg_bytes(**kwargs)), name)


def step(client, headers, case_id, action, **body):
    files = body.pop("photos", None)
    if files:
        return client.post(f"/api/v1/cases/{case_id}/{action}", headers=headers,
                           data={**{k: str(v) for k, v in body.items()}, "photos": files},
                           content_type="multipart/form-data")
    return client.post(f"/api/v1/cases/{case_id}/{action}", headers=headers, json=body)


def history_actions(case_id):
    return db.session.execute(text(
        "SELECT action FROM case_history WHERE case_id = :id ORDER BY id"), {"id": case_id}
    ).scalars().all()


def test_a_citizen_report_goes_around_the_whole_loop(client, city, make_user, auth_headers):
    citizen = make_user("citizen")
    inspector = make_user("inspector", region_code=city.grids[0])
    checker = make_user("inspector", region_code="110105001")
    chief = make_user("duty_chief", region_code="110105")
    lon, lat = city.centre(0)

    answer = client.post("/api/v1/reports", headers=auth_headers(citizen), json={
        "lon": lon, "lat": lat, "category": "C0101", "description": "井盖破损",
        "channel": "app", "client_id": "phone-1-0001",
        "contact_name": "张三", "contact_phone": "13800000000"})
    assert answer.status_code == 201, answer.get_json()
    case_id = answer.get_json()["case"]["id"]
    assert answer.get_json()["case"]["state"] == "reported"

    # A citizen's report must be verified on site before it is filed.
    refused = step(client, auth_headers(chief), case_id, "file")
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "verification_required"

    verified = step(client, auth_headers(inspector), case_id, "verify", lon=lon, lat=lat,
                    note="确认井盖破损")
    assert verified.status_code == 200, verified.get_json()
    assert step(client, auth_headers(chief), case_id, "file").status_code == 200

    dispatched = step(client, auth_headers(chief), case_id, "dispatch")
    assert dispatched.status_code == 200, dispatched.get_json()
    assert dispatched.get_json()["deadline"] is not None
    department_id = db.session.scalar(text("SELECT department_id FROM cases WHERE id = :id"),
                                      {"id": case_id})
    assert department_id is not None  # the category's responsible department
    staff = make_user("department", department=db.session.scalar(text(
        "SELECT name FROM departments WHERE id = :id"), {"id": department_id}))

    assert step(client, auth_headers(staff), case_id, "accept").status_code == 200
    no_photo = step(client, auth_headers(staff), case_id, "handle", lon=lon, lat=lat)
    assert no_photo.get_json()["error"]["code"] == "photo_required"
    far = step(client, auth_headers(staff), case_id, "handle", lon=lon + 0.01, lat=lat,
               photos=[photo()])
    assert far.status_code == 422 and far.get_json()["error"]["code"] == "too_far"
    handled = step(client, auth_headers(staff), case_id, "handle", lon=lon, lat=lat,
                   note="已更换井盖", photos=[photo()])
    assert handled.status_code == 200, handled.get_json()

    checked = step(client, auth_headers(checker), case_id, "check", lon=lon, lat=lat)
    assert checked.status_code == 200, checked.get_json()
    assert step(client, auth_headers(chief), case_id, "close").status_code == 200
    rated = step(client, auth_headers(citizen), case_id, "rate", rating=5, note="很快")
    assert rated.status_code == 200, rated.get_json()
    assert step(client, auth_headers(citizen), case_id, "rate", rating=1).status_code == 409

    assert history_actions(case_id) == ["report", "verify", "file", "dispatch", "accept",
                                        "handle", "check", "close", "rate"]
    detail = client.get(f"/api/v1/cases/{case_id}", headers=auth_headers(citizen)).get_json()
    assert detail["state"] == "closed" and detail["rating"] == 5
    assert [p["stage"] for p in detail["photos"]] == ["after"]
    assert detail["reports"][0]["contact_phone"] == "13800000000"
    hidden = client.get(f"/api/v1/cases/{case_id}", headers=auth_headers(staff)).get_json()
    assert "reports" not in hidden


def file_and_dispatch(client, headers, case_id, **dispatch):
    assert step(client, headers, case_id, "file").status_code == 200
    answer = step(client, headers, case_id, "dispatch", **dispatch)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def inspector_report(client, headers, lon, lat, category="E0101", client_id="insp-1"):
    answer = client.post("/api/v1/reports", headers=headers, json={
        "lon": lon, "lat": lat, "category": category, "channel": "patrol",
        "client_id": client_id})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["case"]["id"]


def test_a_department_returns_a_mis_dispatch_and_the_chief_redispatches(
        client, city, make_user, auth_headers):
    inspector = make_user("inspector", region_code=city.grids[1])
    chief = make_user("duty_chief")
    wrong = make_user("department", department="园林局")
    right = make_user("department", department="市政局")
    lon, lat = city.centre(1)
    case_id = inspector_report(client, auth_headers(inspector), lon, lat)

    # An inspector's own report may be filed directly, without a verification.
    file_and_dispatch(client, auth_headers(chief), case_id, department="园林局")
    refused = step(client, auth_headers(right), case_id, "accept")
    assert refused.status_code == 403
    bare = step(client, auth_headers(wrong), case_id, "return")
    assert bare.get_json()["error"]["code"] == "note_required"
    returned = step(client, auth_headers(wrong), case_id, "return", note="不属于园林局")
    assert returned.status_code == 200 and returned.get_json()["state"] == "filed"

    again = step(client, auth_headers(chief), case_id, "dispatch",
                 department=str(right.department_id))
    assert again.status_code == 200
    assert step(client, auth_headers(right), case_id, "accept").status_code == 200
    row = db.session.execute(text(
        "SELECT department_id, return_count, state FROM cases WHERE id = :id"),
        {"id": case_id}).one()
    assert (row.department_id, row.return_count, row.state) == (right.department_id, 1,
                                                                  "accepted")
    assert history_actions(case_id) == ["report", "file", "dispatch", "return", "dispatch",
                                        "accept"]


def test_a_failed_check_and_a_chiefs_rework_go_back_to_the_same_department(
        client, city, make_user, auth_headers):
    reporter = make_user("inspector", region_code=city.grids[2])
    checker = make_user("inspector", region_code=city.grids[2])
    chief = make_user("duty_chief")
    staff = make_user("department", department="市政局")
    lon, lat = city.centre(2)
    case_id = inspector_report(client, auth_headers(reporter), lon, lat)
    file_and_dispatch(client, auth_headers(chief), case_id, department="市政局")

    def handle():
        assert step(client, auth_headers(staff), case_id, "accept").status_code == 200
        answer = step(client, auth_headers(staff), case_id, "handle", lon=lon, lat=lat,
                      photos=[photo()])
        assert answer.status_code == 200, answer.get_json()

    handle()
    failed = step(client, auth_headers(checker), case_id, "check", lon=lon, lat=lat,
                  passed=False, note="仍有垃圾")
    assert failed.status_code == 200 and failed.get_json()["state"] == "dispatched"
    handle()
    assert step(client, auth_headers(checker), case_id, "check", lon=lon,
                lat=lat).status_code == 200
    reworked = step(client, auth_headers(chief), case_id, "rework", note="照片不清楚")
    assert reworked.status_code == 200 and reworked.get_json()["state"] == "dispatched"
    row = db.session.execute(text(
        "SELECT department_id, rework_count FROM cases WHERE id = :id"), {"id": case_id}).one()
    assert (row.department_id, row.rework_count) == (staff.department_id, 2)
    handle()
    assert step(client, auth_headers(checker), case_id, "check", lon=lon,
                lat=lat).status_code == 200
    assert step(client, auth_headers(chief), case_id, "close").status_code == 200


def test_nobody_checks_their_own_handling(client, city, make_user, auth_headers):
    inspector = make_user("inspector", region_code=city.grids[0])
    chief = make_user("duty_chief")
    lon, lat = city.centre(0)
    case_id = inspector_report(client, auth_headers(inspector), lon, lat)
    file_and_dispatch(client, auth_headers(chief), case_id, worker=inspector.username)
    assert step(client, auth_headers(inspector), case_id, "accept").status_code == 200
    assert step(client, auth_headers(inspector), case_id, "handle", lon=lon, lat=lat,
                photos=[photo()]).status_code == 200
    own = step(client, auth_headers(inspector), case_id, "check", lon=lon, lat=lat)
    assert own.status_code == 403
    assert "other than the handler" in own.get_json()["error"]["message"]


def test_a_department_asks_for_more_time_and_the_duty_chief_approves(
        client, city, make_user, auth_headers):
    inspector = make_user("inspector", region_code=city.grids[0])
    chief = make_user("duty_chief")
    staff = make_user("department", department="市政局")
    lon, lat = city.centre(0)
    case_id = inspector_report(client, auth_headers(inspector), lon, lat)
    first = file_and_dispatch(client, auth_headers(chief), case_id, department="市政局")
    asked = step(client, auth_headers(staff), case_id, "extend", amount=2,
                 unit="working_days", note="需要采购配件")
    assert asked.status_code == 200 and asked.get_json()["action"] == "extend_requested"
    assert asked.get_json()["deadline"] == first["deadline"]  # nothing moves yet
    tasks = client.get("/api/v1/tasks", headers=auth_headers(chief)).get_json()["items"]
    assert {"approve"} <= {t["action"] for t in tasks if t["case"]["id"] == case_id}

    approved = step(client, auth_headers(chief), case_id, "extend", note="同意")
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["deadline"] > first["deadline"]
    row = db.session.execute(text(
        "SELECT extension_count, pending_request FROM cases WHERE id = :id"),
        {"id": case_id}).one()
    assert (row.extension_count, row.pending_request) == (1, None)
    # A new deadline given outright must lie after the current one.
    earlier = step(client, auth_headers(chief), case_id, "extend",
                   deadline="2020-01-01T00:00:00+08:00")
    assert earlier.status_code == 422
    assert earlier.get_json()["error"]["code"] == "bad_extension"


def test_a_shelved_case_stops_its_clock_until_resumed(client, city, make_user, auth_headers):
    inspector = make_user("inspector", region_code=city.grids[3])
    chief = make_user("duty_chief")
    staff = make_user("department", department="市政局")
    lon, lat = city.centre(3)
    case_id = inspector_report(client, auth_headers(inspector), lon, lat)
    file_and_dispatch(client, auth_headers(chief), case_id, department="市政局")
    asked = step(client, auth_headers(staff), case_id, "shelve", note="待资金到位")
    assert asked.get_json()["action"] == "shelve_requested"
    shelved = step(client, auth_headers(chief), case_id, "shelve", note="同意挂账")
    assert shelved.status_code == 200 and shelved.get_json()["state"] == "shelved"
    listed = client.get("/api/v1/cases?clock=paused", headers=auth_headers(chief)).get_json()
    assert [c["id"] for c in listed["items"]] == [case_id]
    refused = step(client, auth_headers(staff), case_id, "accept")
    assert refused.status_code == 409
    resumed = step(client, auth_headers(chief), case_id, "resume")
    assert resumed.status_code == 200 and resumed.get_json()["state"] == "dispatched"
    assert history_actions(case_id)[-3:] == ["shelve_requested", "shelve", "resume"]


def test_an_inspector_fixes_a_small_problem_on_the_spot(client, city, make_user, auth_headers):
    inspector = make_user("inspector", region_code=city.grids[0])
    other = make_user("inspector", region_code=city.grids[0])
    lon, lat = city.centre(0)
    case_id = inspector_report(client, auth_headers(inspector), lon, lat, category="E0101")
    no_photo = step(client, auth_headers(inspector), case_id, "self_handle", lon=lon, lat=lat)
    assert no_photo.get_json()["error"]["code"] == "photo_required"
    not_mine = step(client, auth_headers(other), case_id, "self_handle", lon=lon, lat=lat,
                    photos=[photo()])
    assert not_mine.status_code == 409
    done = step(client, auth_headers(inspector), case_id, "self_handle", lon=lon, lat=lat,
                note="已清理", photos=[photo(), photo(color="green")])
    assert done.status_code == 200 and done.get_json()["state"] == "closed"
    detail = client.get(f"/api/v1/cases/{case_id}", headers=auth_headers(inspector)).get_json()
    assert detail["handler_id"] == inspector.id
    assert len(detail["history"][-1]["photos"]) == 2


def a_citizens_case_and_a_second_citizen(client, city, make_user, auth_headers):
    """A citizen's C0101 report at the centre of grid 0; (second citizen, lon, lat, case id)."""
    first, second = make_user("citizen"), make_user("citizen")
    lon, lat = city.centre(0)
    created = client.post("/api/v1/reports", headers=auth_headers(first), json={
        "lon": lon, "lat": lat, "category": "C0101", "client_id": "a-1"}).get_json()
    return second, lon, lat, created["case"]["id"]


def test_a_second_citizen_joins_an_open_case_instead_of_opening_another(
        client, city, make_user, auth_headers):
    second, lon, lat, case_id = a_citizens_case_and_a_second_citizen(client, city, make_user,
                                                                     auth_headers)

    nearby = client.get(f"/api/v1/cases/nearby?lon={lon + 0.0001}&lat={lat}&category=C0101")
    assert nearby.status_code == 200
    assert [c["id"] for c in nearby.get_json()["items"]] == [case_id]
    far = client.get(f"/api/v1/cases/nearby?lon={lon + 0.001}&lat={lat}&category=C0101")
    assert far.get_json()["items"] == []  # C0101's radius is 20 m
    other = client.get(f"/api/v1/cases/nearby?lon={lon}&lat={lat}&category=E0101")
    assert other.get_json()["items"] == []

    joined = client.post("/api/v1/reports", headers=auth_headers(second), json={
        "lon": lon + 0.0001, "lat": lat, "duplicate_of": case_id, "client_id": "b-1"})
    assert joined.status_code == 201, joined.get_json()
    assert joined.get_json()["case"]["id"] == case_id
    assert db.session.scalar(text("SELECT count(*) FROM cases")) == 1
    assert db.session.scalar(text("SELECT reporter_count FROM cases")) == 2
    # The second reporter follows the case.
    seen = client.get("/api/v1/cases", headers=auth_headers(second)).get_json()["items"]
    assert [c["id"] for c in seen] == [case_id]
    assert history_actions(case_id) == ["report", "report_joined"]


def test_a_new_report_is_told_of_the_open_case_of_its_kind_17_m_east(
        client, city, make_user, auth_headers):
    # C0101's radius is 20 m; at this latitude a degree of longitude is only ~85 km, so a box
    # of the radius in degrees of latitude would miss a case due east or west.
    second, lon, lat, case_id = a_citizens_case_and_a_second_citizen(client, city, make_user,
                                                                     auth_headers)
    for metres, told in ((17, True), (-17, True), (25, False)):
        east, _ = city.near(0, metres_east=metres)
        answer = client.post("/api/v1/reports", headers=auth_headers(second), json={
            "lon": east, "lat": lat, "category": "C0101", "client_id": f"east-2-{metres}"})
        assert answer.status_code == 201, answer.get_json()
        found = [(d["id"], round(d["distance_m"])) for d in answer.get_json()[
            "possible_duplicates"] if d["id"] == case_id]
        assert found == ([(case_id, abs(metres))] if told else [])


def test_an_anonymous_citizen_follows_a_report_with_its_tracking_token(client, city):
    lon, lat = city.centre(2)
    answer = client.post("/api/v1/reports", json={
        "lon": lon, "lat": lat, "description": "路边有暴露垃圾", "client_id": "anon-xyz",
        "contact_phone": "13900000000"})
    assert answer.status_code == 201, answer.get_json()
    token = answer.get_json()["tracking_token"]
    again = client.post("/api/v1/reports", json={
        "lon": lon, "lat": lat, "description": "路边有暴露垃圾", "client_id": "anon-xyz",
        "contact_phone": "13900000000"})
    assert again.status_code == 200 and "tracking_token" not in again.get_json()
    assert again.get_json()["case"]["id"] == answer.get_json()["case"]["id"]
    tracked = client.get(f"/api/v1/reports/track/{token}")
    assert tracked.status_code == 200
    body = tracked.get_json()
    assert body["case"]["state"] == "reported" and body["case"]["category"] == "E0101"
    assert "13900000000" not in tracked.get_data(as_text=True)
    assert db.session.scalar(text("SELECT count(*) FROM reports WHERE tracking_token_hash = "
                                  ":t"), {"t": token}) == 0  # only the hash is kept
    assert client.get("/api/v1/reports/track/not-a-token").status_code == 404


def test_phones_see_their_tasks_lists_and_changes(client, city, make_user, auth_headers):
    citizen = make_user("citizen")
    inspector = make_user("inspector", region_code=city.grids[0])
    elsewhere = make_user("inspector", region_code=city.grids[3])
    lon, lat = city.centre(0)
    case_id = client.post("/api/v1/reports", headers=auth_headers(citizen), json={
        "lon": lon, "lat": lat, "category": "C0101", "client_id": "t-1"}).get_json()["case"]["id"]

    tasks = client.get("/api/v1/tasks", headers=auth_headers(inspector)).get_json()["items"]
    assert [(t["action"], t["case"]["id"]) for t in tasks] == [("verify", case_id)]
    assert client.get("/api/v1/tasks", headers=auth_headers(elsewhere)).get_json()["items"] == []

    listed = client.get("/api/v1/cases?state=reported&category=C0101&region=110105001001001",
                        headers=auth_headers(inspector)).get_json()
    assert [c["id"] for c in listed["items"]] == [case_id]
    assert client.get("/api/v1/cases", headers=auth_headers(elsewhere)).get_json()["items"] == []
    assert client.get(f"/api/v1/cases/{case_id}",
                      headers=auth_headers(elsewhere)).status_code == 403

    delta = client.get("/api/v1/sync", headers=auth_headers(inspector)).get_json()
    assert [c["id"] for c in delta["items"]] == [case_id]
    quiet = client.get("/api/v1/sync", query_string={"since": delta["next"]},
                       headers=auth_headers(inspector)).get_json()
    assert quiet["items"] == []
    step(client, auth_headers(inspector), case_id, "verify", lon=lon, lat=lat)
    changed = client.get("/api/v1/sync", query_string={"since": delta["next"]},
                         headers=auth_headers(inspector)).get_json()
    assert [(c["id"], c["state"]) for c in changed["items"]] == [(case_id, "verified")]


def test_cursor_pagination_walks_every_case_once(client, city, make_user, auth_headers):
    inspector = make_user("inspector")
    for n in range(5):
        lon, lat = city.near(n % 4, metres_east=n * 3)
        inspector_report(client, auth_headers(inspector), lon, lat, client_id=f"p-{n}")
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/cases", query_string=query,
                          headers=auth_headers(inspector)).get_json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == [1, 2, 3, 4, 5] and len(seen) == 5


def test_every_step_is_published_on_the_live_channel(client, city, make_user, auth_headers):
    inspector = make_user("inspector", region_code=city.grids[0])
    chief = make_user("duty_chief")
    lon, lat = city.centre(0)
    case_id = inspector_report(client, auth_headers(inspector), lon, lat)
    file_and_dispatch(client, auth_headers(chief), case_id)
    events = db.session.execute(text(
        "SELECT event, payload, rooms FROM live_events ORDER BY id")).all()
    assert [e.event for e in events] == ["case.created", "case.updated", "case.dispatched"]
    dispatched = events[-1]
    assert dispatched.payload["id"] == case_id and dispatched.payload["clock"] == "green"
    assert f"department:{dispatched.payload['department_id']}" in dispatched.rooms
    assert {"region:110105", "region:110105001001001", f"city:{city.city_id}"} <= set(
        dispatched.rooms)
