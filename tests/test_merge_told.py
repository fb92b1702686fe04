"""A neighbour who reported anonymously, leaving an e-mail address, and whose report an
operator merged into the case already open for the same problem, is told by e-mail which case
carries the report (its code and public page), and the tracking token she was given answers
with that case and says it carries her report."""

from __future__ import annotations

import pytest
from cityfixtures import city_fixture  # noqa: F401
from outbound_servers import SmtpSink
from sqlalchemy import text
from test_cases_loop import step

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


def test_a_merged_reporter_is_told_by_mail_and_by_her_token_which_case_carries_her_report(
        client, city, make_user, auth_headers, smtp):
    citizen, operator = make_user("citizen"), make_user("operator", region_code="110105")
    lon, lat = city.centre(0)
    first = client.post("/api/v1/reports", headers=auth_headers(citizen), json={
        "lon": lon, "lat": lat, "category": "C0101", "description": "井盖丢了",
        "client_id": "ann-1"})
    assert first.status_code == 201, first.get_json()
    carrier = first.get_json()["case"]
    anonymous = client.post("/api/v1/reports", json={
        "lon": lon + 0.0002, "lat": lat, "category": "C0101", "description": "Missing cover",
        "client_id": "anon-1", "contact_email": "li@example.org",
        "attributes": {"language": "en"}})
    assert anonymous.status_code == 201, anonymous.get_json()
    merged, token = anonymous.get_json()["case"], anonymous.get_json()["tracking_token"]
    assert merged["id"] != carrier["id"]

    # Before the merge her token follows her own case, carried by no other.
    before = client.get(f"/api/v1/reports/track/{token}").get_json()
    assert (before["case"]["code"], before["carried_by"]) == (merged["code"], None)

    answer = step(client, auth_headers(operator), merged["id"], "merge", into=carrier["id"],
                  note="Same manhole")
    assert answer.status_code == 200, answer.get_json()
    assert db.session.scalar(text(
        "SELECT details ->> 'duplicate_of' FROM case_history WHERE case_id = :id "
        "AND action = 'merge'"), {"id": merged["id"]}) == str(carrier["id"])

    for _ in range(10):
        engine.run_once()
    [told] = smtp.to("li@example.org")
    body = told.get_content()
    assert told["Subject"] == f"Your report {merged['code']} was cancelled"
    assert f"Your report is carried by case {carrier['code']}" in body
    assert f"https://city.example/open311/v2/requests/{carrier['code']}.json" in body
    # Nothing is sent twice by another pass.
    engine.run_once()
    assert len(smtp.to("li@example.org")) == 1

    tracked = client.get(f"/api/v1/reports/track/{token}")
    assert tracked.status_code == 200
    answer = tracked.get_json()
    assert answer["case"]["code"] == carrier["code"]
    assert answer["carried_by"] == {
        "code": carrier["code"], "merged_from": merged["code"],
        "tracking_link": f"https://city.example/api/v1/reports/track/{token}"}


def test_an_unknown_token_is_a_404_and_tells_of_no_case(client, city):
    answer = client.get("/api/v1/reports/track/no-such-token")
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "report_not_found"
