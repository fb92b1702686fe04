"""Grid workers go on and off duty and send positions; rosters from the CLI and the API."""

from __future__ import annotations

from dispatch_world import GRID_A, GRID_B, OTHER_GRID, STREET, build_city, outbox
from sqlalchemy import text

from gridmgr.dispatch.cli import roster
from gridmgr.dispatch.duty import presence_of
from gridmgr.extensions import db


def test_a_worker_goes_on_duty_sends_positions_and_the_street_sees_them(
        app, client, make_user, auth_headers):
    interval = app.config["GRIDMGR_POSITION_INTERVAL_S"]
    app.config["GRIDMGR_POSITION_INTERVAL_S"] = 5
    try:
        world = build_city()
        worker = make_user("inspector", region_code=GRID_A)
        headers = auth_headers(worker)

        refused = client.post("/api/v1/positions", json={"lon": 116.3005, "lat": 39.9005},
                              headers=headers)
        assert refused.status_code == 409 and refused.json["error"]["code"] == "off_duty"

        on = client.post("/api/v1/duty", json={"on_duty": True}, headers=headers)
        assert on.status_code == 200 and on.json["on_duty"] is True

        first = client.post("/api/v1/positions", json={"lon": 116.3005, "lat": 39.9005,
                                                       "accuracy_m": 8}, headers=headers)
        assert first.status_code == 201 and first.json["stored"] is True
        again = client.post("/api/v1/positions", json={"lon": 116.3006, "lat": 39.9005},
                            headers=headers)
        assert again.status_code == 429 and again.json["error"]["code"] == "too_frequent"
        assert 0 < again.json["error"]["details"]["retry_after"] <= 5

        kept = presence_of(worker.id)
        assert kept["on_duty"] is True and (kept["lon"], kept["lat"]) == (116.3005, 39.9005)
        (event,) = outbox("worker.position")
        assert event.payload["worker_id"] == worker.id
        assert set(event.rooms) == {f"region:{STREET}", f"city:{world['city_id']}"}

        off = client.post("/api/v1/duty", json={"on_duty": False}, headers=headers)
        assert off.json["on_duty"] is False and presence_of(worker.id)["on_duty"] is False
    finally:
        app.config["GRIDMGR_POSITION_INTERVAL_S"] = interval


def test_bad_positions_are_refused_and_change_nothing(client, make_user, auth_headers):
    build_city()
    worker = make_user("inspector", region_code=GRID_A)
    headers = auth_headers(worker)
    client.post("/api/v1/duty", json={"on_duty": True}, headers=headers)
    for body in ({"lon": 200, "lat": 39.9}, {"lat": 39.9}, {"lon": "x", "lat": 1},
                 {"lon": 116.3, "lat": 39.9, "coord_sys": "mars"}):
        response = client.post("/api/v1/positions", json=body, headers=headers)
        assert response.status_code == 422, body
    assert presence_of(worker.id)["lon"] is None
    assert client.post("/api/v1/positions", json={"lon": 116.3, "lat": 39.9}).status_code == 401


def test_only_a_duty_chief_sets_another_workers_duty(client, make_user, auth_headers):
    build_city()
    worker = make_user("inspector", region_code=GRID_A)
    colleague = make_user("inspector", region_code=GRID_A)
    chief = make_user("duty_chief", region_code=STREET)
    refused = client.post("/api/v1/duty", json={"on_duty": True, "worker_id": worker.id},
                          headers=auth_headers(colleague))
    assert refused.status_code == 403
    allowed = client.post("/api/v1/duty", json={"on_duty": True, "worker_id": worker.id},
                          headers=auth_headers(chief))
    assert allowed.status_code == 200 and presence_of(worker.id)["on_duty"] is True
    assert presence_of(colleague.id) is None


def test_an_administrator_keeps_rosters_from_the_command_line(app_ctx, runner, make_user):
    build_city()
    make_user("inspector", username="zhang", region_code=GRID_A)
    make_user("operator", username="li")

    added = runner.invoke(roster, ["add", "zhang", "--grid", GRID_A, "--from", "08:00",
                                "--to", "18:00", "--weekdays", "1-5"])
    assert added.exit_code == 0, added.output
    assert "zhang" in added.output and "08:00-18:00" in added.output
    assert "weekdays 1,2,3,4,5" in added.output
    twice = runner.invoke(roster, ["add", "zhang", "--grid", GRID_A, "--from", "08:00",
                                "--to", "18:00"])
    assert twice.exit_code != 0 and "already rostered" in twice.output
    for args, message in ((["li", "--grid", GRID_A], "not an active grid worker"),
                          (["zhang", "--grid", "110101001001999"], "No unit grid"),
                          (["zhang", "--grid", GRID_B, "--from", "8"], "HH:MM"),
                          (["zhang", "--grid", GRID_B, "--weekdays", "5-1"], "backwards"),
                          (["nobody", "--grid", GRID_B], "No user")):
        bad = runner.invoke(roster, ["add", *args])
        assert bad.exit_code != 0 and message in bad.output, (args, bad.output)

    listed = runner.invoke(roster, ["list", "--grid", GRID_A[:9]])
    assert listed.output.count("zhang") == 1
    entry_id = int(listed.output.split()[0])
    removed = runner.invoke(roster, ["remove", str(entry_id)])
    assert removed.exit_code == 0 and "removed" in removed.output
    assert "no roster entries" in runner.invoke(roster, ["list"]).output
    assert db.session.execute(text("SELECT count(*) FROM roster_entries")).scalar() == 0


def test_a_street_duty_chief_manages_rosters_of_own_street_only(client, make_user, auth_headers):
    build_city()
    make_user("inspector", username="wang", region_code=GRID_A)
    chief = make_user("duty_chief", region_code=STREET)
    headers = auth_headers(chief)

    created = client.post("/api/v1/rosters", json={"username": "wang", "grid_code": GRID_A,
                                                   "from": "20:00", "to": "08:00",
                                                   "weekdays": [6, 7]}, headers=headers)
    assert created.status_code == 201, created.json
    assert created.json["from"] == "20:00" and created.json["weekdays"] == [6, 7]
    outside = client.post("/api/v1/rosters", json={"username": "wang", "grid_code": OTHER_GRID},
                          headers=headers)
    assert outside.status_code == 403
    listed = client.get("/api/v1/rosters", headers=headers)
    assert [e["username"] for e in listed.json] == ["wang"]
    worker_headers = auth_headers(make_user("inspector", region_code=GRID_A))
    assert client.get("/api/v1/rosters", headers=worker_headers).status_code == 403
    deleted = client.delete(f"/api/v1/rosters/{created.json['id']}", headers=headers)
    assert deleted.status_code == 204
    assert client.delete(f"/api/v1/rosters/{created.json['id']}",
                         headers=headers).status_code == 404
