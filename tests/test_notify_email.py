"""Stories of the messages people get by e-mail, through a real SMTP server on loopback."""

from __future__ import annotations

import re
import time

import pytest
from cityfixtures import city_fixture, jpeg_bytes  # noqa: F401
from outbound_servers import SmtpSink
from sqlalchemy import text
from test_cases_loop import photo, step

from gridmgr.cli import main
from gridmgr.extensions import db
from gridmgr.notify import engine


@pytest.fixture
def smtp(app, monkeypatch):
    sink = SmtpSink()
    sink.start()
    monkeypatch.setitem(app.config, "GRIDMGR_SMTP_URL", sink.url)
    monkeypatch.setitem(app.config, "GRIDMGR_PUBLIC_URL", "https://city.example")
    yield sink
    sink.stop()


def deliver(until=lambda: True, passes: int = 20) -> None:
    """Run the worker's notification passes until nothing is left or ``until`` holds."""
    for _ in range(passes):
        handled = engine.run_once()
        if handled == 0 and until():
            return
    assert until()


def pending() -> int:
    return db.session.scalar(text("SELECT count(*) FROM notifications WHERE state = 'pending'"))


def test_a_citizen_hears_of_every_step_of_her_report_once_in_her_language(
        client, city, make_user, auth_headers, smtp):
    citizen = make_user("citizen")
    inspector = make_user("inspector", region_code=city.grids[0])
    checker = make_user("inspector", region_code="110105001")
    chief = make_user("duty_chief", region_code="110105")
    lon, lat = city.centre(0)
    answer = client.post("/api/v1/reports", headers=auth_headers(citizen), json={
        "lon": lon, "lat": lat, "category": "C0101", "description": "Broken manhole cover",
        "client_id": "phone-1", "contact_email": "ann@example.org",
        "attributes": {"language": "en"}})
    assert answer.status_code == 201
    case_id = answer.get_json()["case"]["id"]
    # A neighbour reports the same problem anonymously, in Chinese, and follows the case.
    joined = client.post("/api/v1/reports", json={
        "lon": lon, "lat": lat, "category": "C0101", "duplicate_of": case_id,
        "client_id": "anon-1", "contact_email": "li@example.org"})
    assert joined.status_code == 201, joined.get_json()

    assert step(client, auth_headers(inspector), case_id, "verify", lon=lon,
                lat=lat).status_code == 200
    assert step(client, auth_headers(chief), case_id, "file").status_code == 200
    assert step(client, auth_headers(chief), case_id, "dispatch").status_code == 200
    department_id = db.session.scalar(text("SELECT department_id FROM cases WHERE id = :id"),
                                      {"id": case_id})
    staff = make_user("department", email="crew@example.org", department=db.session.scalar(
        text("SELECT name FROM departments WHERE id = :id"), {"id": department_id}))
    assert step(client, auth_headers(staff), case_id, "accept").status_code == 200
    assert step(client, auth_headers(staff), case_id, "handle", lon=lon, lat=lat,
                photos=[photo()]).status_code == 200
    assert step(client, auth_headers(checker), case_id, "check", lon=lon,
                lat=lat).status_code == 200
    assert step(client, auth_headers(chief), case_id, "close").status_code == 200
    deliver(lambda: pending() == 0)

    ann = smtp.to("ann@example.org")
    code = answer.get_json()["case"]["code"]
    assert [m["Subject"] for m in ann] == [f"Your report is now case {code}",
                                           f"Your report {code} was handled",
                                           f"Your report {code} is closed"]
    closed = ann[-1].get_content()
    assert f"https://city.example/api/v1/cases/{case_id}" in closed
    assert "After the work: https://city.example/api/v1/photos/" in closed
    assert "Please rate the work" in closed
    assert "Stop messages about this case: https://city.example/api/v1/notify/unsubscribe" \
        in closed
    assert ann[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    li = smtp.to("li@example.org")
    assert [m["Subject"] for m in li] == [f"您反映的问题已立案：{code}",
                                          f"您反映的问题已处置：{code}",
                                          f"您反映的问题已结案：{code}"]
    # An anonymous follower's link is the case's public page (a GeoReport request's id is its
    # code).
    assert f"https://city.example/open311/v2/requests/{code}.json" in li[0].get_content()

    # The department's staff heard of the dispatch, once.
    assert [m["Subject"] for m in smtp.to("crew@example.org")] == [f"新派遣案件：{code}"]
    # Nothing is sent twice by another pass.
    before = len(smtp.messages)
    deliver()
    assert len(smtp.messages) == before


def test_staff_hear_of_a_case_dispatched_to_them(client, city, make_user, auth_headers, smtp):
    inspector = make_user("inspector", region_code=city.grids[1])
    chief = make_user("duty_chief")
    make_user("department", department="园林局", email="parks@example.org")
    lon, lat = city.centre(1)
    answer = client.post("/api/v1/reports", headers=auth_headers(inspector), json={
        "lon": lon, "lat": lat, "category": "E0101", "channel": "patrol", "client_id": "i-1"})
    case_id = answer.get_json()["case"]["id"]
    assert step(client, auth_headers(chief), case_id, "file").status_code == 200
    assert step(client, auth_headers(chief), case_id, "dispatch",
                department="园林局").status_code == 200
    deliver(lambda: pending() == 0)
    [message] = smtp.to("parks@example.org")
    assert message["Subject"].startswith("新派遣案件")
    # Staff messages carry no unsubscribe link: receiving cases is their work.
    assert "unsubscribe" not in message.get_content()
    # The inspector who reported has no contact detail on the report and is staff: nothing.
    assert len(smtp.messages) == 1


def test_reports_are_answered_at_once_while_the_mail_server_is_down_and_mail_follows(
        client, city, make_user, auth_headers, smtp, app, monkeypatch):
    monkeypatch.setitem(app.config, "GRIDMGR_NOTIFY_RETRY_SECONDS", 0.0)
    inspector = make_user("inspector", region_code=city.grids[0])
    chief = make_user("duty_chief", region_code="110105")
    smtp.stop()
    lon, lat = city.centre(0)
    cases = []
    for n in range(10):
        started = time.monotonic()
        answer = client.post("/api/v1/reports", json={
            "lon": lon, "lat": lat, "category": "C0101", "client_id": f"burst-{n}",
            "contact_email": f"r{n}@example.org"})
        assert answer.status_code == 201
        assert time.monotonic() - started < 1.0
        cases.append(answer.get_json()["case"]["id"])
    for case_id in cases:
        assert step(client, auth_headers(inspector), case_id, "verify", lon=lon,
                    lat=lat).status_code == 200
        started = time.monotonic()
        assert step(client, auth_headers(chief), case_id, "file").status_code == 200
        assert time.monotonic() - started < 1.0
    engine.run_once()
    engine.run_once()
    assert smtp.messages == []
    errors = db.session.execute(text(
        "SELECT DISTINCT state, last_error IS NOT NULL FROM notifications")).all()
    assert errors == [("pending", True)]

    smtp.start()
    deliver(lambda: pending() == 0)
    assert sorted(m["To"] for m in smtp.messages) == sorted(f"r{n}@example.org"
                                                            for n in range(10))


def test_a_message_given_up_is_listed_and_sent_again(client, city, make_user, auth_headers,
                                                     smtp, app, monkeypatch, runner):
    monkeypatch.setitem(app.config, "GRIDMGR_NOTIFY_GIVE_UP_SECONDS", 0.0)
    inspector = make_user("inspector", region_code=city.grids[0])
    chief = make_user("duty_chief", region_code="110105")
    lon, lat = city.centre(0)
    case_id = client.post("/api/v1/reports", json={
        "lon": lon, "lat": lat, "category": "C0101", "client_id": "late-1",
        "contact_email": "late@example.org"}).get_json()["case"]["id"]
    step(client, auth_headers(inspector), case_id, "verify", lon=lon, lat=lat)
    step(client, auth_headers(chief), case_id, "file")
    smtp.stop()
    engine.run_once()
    listed = runner.invoke(main, args=["notify", "failures"])
    assert "late@example.org" in listed.output and "email" in listed.output
    assert smtp.messages == []

    smtp.start()
    engine.run_once()
    assert smtp.messages == []  # given up: not sent until asked
    monkeypatch.setitem(app.config, "GRIDMGR_NOTIFY_GIVE_UP_SECONDS", 3600.0)
    resent = runner.invoke(main, args=["notify", "resend", "--all"])
    assert "1 message(s)" in resent.output
    deliver(lambda: pending() == 0)
    assert [m["To"] for m in smtp.messages] == ["late@example.org"]
    assert "no messages given up" in runner.invoke(main, args=["notify", "failures"]).output


def test_a_reporter_stops_a_cases_messages_from_the_link_and_a_forged_link_does_nothing(
        client, city, make_user, auth_headers, smtp):
    inspector = make_user("inspector", region_code=city.grids[0])
    chief = make_user("duty_chief", region_code="110105")
    lon, lat = city.centre(0)
    case_id = client.post("/api/v1/reports", json={
        "lon": lon, "lat": lat, "category": "C0101", "client_id": "stop-1",
        "contact_email": "quiet@example.org"}).get_json()["case"]["id"]
    step(client, auth_headers(inspector), case_id, "verify", lon=lon, lat=lat)
    step(client, auth_headers(chief), case_id, "file")
    deliver(lambda: pending() == 0)
    [filed] = smtp.to("quiet@example.org")
    # Links stand apart from the text around them (a space after Chinese punctuation).
    link = re.search(r"(?<= )https://city.example(/api/v1/notify/unsubscribe\S+)",
                     filed.get_content()).group(1)

    forged = client.post(link.replace("quiet%40", "loud%40"))
    assert forged.status_code == 403
    assert forged.get_json()["error"]["code"] == "bad_signature"
    assert db.session.scalar(text("SELECT count(*) FROM notify_optouts")) == 0
    # Opening the link shows a button; it changes nothing by itself.
    assert client.get(link).status_code == 200
    assert db.session.scalar(text("SELECT count(*) FROM notify_optouts")) == 0
    assert client.post(link).get_json() == {"stopped": True, "case_id": case_id}

    assert step(client, auth_headers(chief), case_id, "cancel",
                note="重复上报").status_code == 200
    deliver(lambda: pending() == 0)
    assert len(smtp.to("quiet@example.org")) == 1
