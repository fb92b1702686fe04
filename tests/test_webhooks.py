"""Stories of other systems that receive case events by signed webhooks, on a real HTTP
receiver on loopback, and answer back through the API."""

from __future__ import annotations

import pytest
from cityfixtures import city_fixture  # noqa: F401
from outbound_servers import HttpReceiver, SmtpSink
from sqlalchemy import text
from test_cases_loop import photo, step

from gridmgr.cli import main
from gridmgr.extensions import db
from gridmgr.notify import engine
from gridmgr.webhooks.signing import verify

SECRET = "parks-system-shared-secret"


@pytest.fixture
def fast_retries(app, monkeypatch):
    monkeypatch.setitem(app.config, "GRIDMGR_NOTIFY_RETRY_SECONDS", 0.0)


def deliver(passes: int = 30) -> None:
    for _ in range(passes):
        if engine.run_once() == 0:
            return


def count(table: str) -> int:
    return db.session.scalar(text(f"SELECT count(*) FROM {table}"))


def inspector_case(client, headers, lon, lat, client_id):
    answer = client.post("/api/v1/reports", headers=headers, json={
        "lon": lon, "lat": lat, "category": "E0101", "channel": "patrol",
        "client_id": client_id})
    assert answer.status_code == 201
    return answer.get_json()["case"]["id"]


def test_a_department_system_gets_each_event_once_in_order_through_five_failures_and_answers(
        client, city, make_user, auth_headers, fast_retries):
    receiver = HttpReceiver(answer=lambda n, headers, body: 500 if n <= 5 else 200)
    admin = make_user("admin")
    inspector = make_user("inspector", region_code=city.grids[1])
    chief = make_user("duty_chief")
    system = make_user("department", username="parks-system", department="园林局")
    added = client.post("/api/v1/admin/webhooks", headers=auth_headers(admin), json={
        "url": receiver.url, "secret": SECRET, "department": "园林局",
        "events": ["case.dispatched", "case.updated"]})
    assert added.status_code == 201, added.get_json()
    assert "secret" not in added.get_json()
    lon, lat = city.centre(1)
    first = inspector_case(client, auth_headers(inspector), lon, lat, "w-1")
    second = inspector_case(client, auth_headers(inspector), lon, lat, "w-2")
    other = inspector_case(client, auth_headers(inspector), lon, lat, "w-3")
    for case_id in (first, second):
        step(client, auth_headers(chief), case_id, "file")
        assert step(client, auth_headers(chief), case_id, "dispatch",
                    department="园林局").status_code == 200
    step(client, auth_headers(chief), other, "file")  # another department's: not sent
    deliver()
    received = receiver.accepted_json()
    assert [(e["event"], e["data"]["id"]) for e in received] == [
        ("case.dispatched", first), ("case.dispatched", second)]
    assert len(receiver.requests) == 5 + 2
    for headers, body in receiver.accepted:
        assert verify(SECRET, headers["X-Gridmgr-Timestamp"], headers["X-Gridmgr-Signature"],
                      body)
        assert not verify("another-secret-entirely", headers["X-Gridmgr-Timestamp"],
                          headers["X-Gridmgr-Signature"], body)
    # A stale timestamp is refused by the receiver's check.
    headers, body = receiver.accepted[0]
    assert not verify(SECRET, headers["X-Gridmgr-Timestamp"], headers["X-Gridmgr-Signature"],
                      body, now=int(headers["X-Gridmgr-Timestamp"]) + 3600)

    # The parks system answers with its own account: accepted, then handled on site.
    system_headers = auth_headers(system)
    assert step(client, system_headers, first, "accept").status_code == 200
    handled = step(client, system_headers, first, "handle", lon=lon, lat=lat,
                   note="已修剪", photos=[photo()])
    assert handled.status_code == 200, handled.get_json()
    deliver()
    events = receiver.accepted_json()
    assert [(e["data"]["id"], e["data"]["action"]) for e in events[2:]] == [
        (first, "accept"), (first, "handle")]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs))
    receiver.close()


def test_a_replay_from_a_sequence_number_sends_those_events_again_in_order(
        client, city, make_user, auth_headers, runner):
    receiver = HttpReceiver()
    inspector = make_user("inspector", region_code=city.grids[1])
    chief = make_user("duty_chief")
    make_user("department", department="园林局")
    added = runner.invoke(main, args=["webhooks", "add", receiver.url, "--secret", SECRET,
                                      "--events", "*", "--region", city.grids[1][:9]])
    assert added.exit_code == 0, added.output
    endpoint_id = int(added.output.split()[0])
    lon, lat = city.centre(1)
    case_id = inspector_case(client, auth_headers(inspector), lon, lat, "r-1")
    assert step(client, auth_headers(chief), case_id, "file").status_code == 200
    assert step(client, auth_headers(chief), case_id, "dispatch",
                department="园林局").status_code == 200
    deliver()
    seqs = [e["seq"] for e in receiver.accepted_json()]
    assert len(seqs) == 3

    replayed = runner.invoke(main, args=["webhooks", "replay", str(endpoint_id), "--from",
                                         str(seqs[1])])
    assert "2 event(s)" in replayed.output, replayed.output
    deliver()
    assert [e["seq"] for e in receiver.accepted_json()] == seqs + seqs[1:]
    receiver.close()


def test_a_dead_endpoint_is_paused_and_its_administrators_are_told(
        client, city, make_user, auth_headers, app, monkeypatch, fast_retries):
    monkeypatch.setitem(app.config, "GRIDMGR_WEBHOOK_PAUSE_AFTER", 3)
    smtp = SmtpSink()
    smtp.start()
    monkeypatch.setitem(app.config, "GRIDMGR_SMTP_URL", smtp.url)
    receiver = HttpReceiver(answer=lambda n, headers, body: 503)
    admin = make_user("admin", email="it@example.org")
    inspector = make_user("inspector", region_code=city.grids[1])
    added = client.post("/api/v1/admin/webhooks", headers=auth_headers(admin), json={
        "url": receiver.url, "secret": SECRET, "events": ["case.created"]})
    endpoint_id = added.get_json()["id"]
    lon, lat = city.centre(1)
    inspector_case(client, auth_headers(inspector), lon, lat, "d-1")
    deliver()
    assert len(receiver.requests) == 3
    listed = client.get("/api/v1/admin/webhooks", headers=auth_headers(admin)).get_json()
    assert listed[0]["state"] == "paused"
    [told] = smtp.to("it@example.org")
    assert receiver.url in told["Subject"]

    # Resumed once the system is back, the waiting event arrives.
    receiver.answer = lambda n, headers, body: 200
    resumed = client.post(f"/api/v1/admin/webhooks/{endpoint_id}/resume",
                          headers=auth_headers(admin))
    assert resumed.get_json()["state"] == "active"
    deliver()
    assert [e["event"] for e in receiver.accepted_json()] == ["case.created"]
    receiver.close()
    smtp.stop()


@pytest.mark.parametrize("body, status, code", [
    ({"url": "ftp://example.org/x", "events": ["case.created"]}, 422, "bad_webhook_url"),
    ({"url": "https://example.org/x", "events": ["case.created"], "secret": "short"}, 422,
     "weak_webhook_secret"),
    ({"url": "https://example.org/x", "events": ["case.deleted"]}, 422, "unknown_event"),
    ({"url": "https://example.org/x", "events": ["*"], "department": "无此部门"}, 404,
     "department_not_found"),
    ({"url": "https://example.org/x", "events": ["*"], "region_code": "999999"}, 404,
     "region_not_found"),
])
def test_an_administrator_registering_a_bad_endpoint_is_refused_and_nothing_is_kept(
        client, make_user, auth_headers, body, status, code):
    admin = make_user("admin")
    answer = client.post("/api/v1/admin/webhooks", headers=auth_headers(admin),
                         json={"secret": SECRET, **body})
    assert answer.status_code == status, answer.get_json()
    assert answer.get_json()["error"]["code"] == code
    assert count("webhook_endpoints") == 0


def test_a_street_administrator_cannot_register_a_city_wide_endpoint(
        client, city, make_user, auth_headers):
    street_admin = make_user("admin", region_code="110105001")
    answer = client.post("/api/v1/admin/webhooks", headers=auth_headers(street_admin), json={
        "url": "https://example.org/x", "secret": SECRET, "events": ["*"]})
    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == "forbidden"
    assert count("webhook_endpoints") == 0
