"""Merging a report into an existing case (合并): the reports, their photos and followers move to
the surviving case, the merged case ends cancelled naming it, and its reporters are told which
case carries their report; through the API and from the operator's page."""

from __future__ import annotations

import itertools
import re

import pytest
from cityfixtures import city_fixture  # noqa: F401
from outbound_servers import SmtpSink
from sqlalchemy import text
from test_cases_loop import photo, step
from test_workbench_pages import form_token, sign_in

from gridmgr.extensions import db
from gridmgr.notify import engine

SERIAL = itertools.count(1)


@pytest.fixture
def smtp(app, monkeypatch):
    sink = SmtpSink()
    sink.start()
    monkeypatch.setitem(app.config, "GRIDMGR_SMTP_URL", sink.url)
    monkeypatch.setitem(app.config, "GRIDMGR_PUBLIC_URL", "https://city.example")
    yield sink
    sink.stop()


@pytest.fixture
def people(city, make_user):
    return {"operator": make_user("operator", username="op", region_code="110105"),
            "dispatcher": make_user("dispatcher", username="disp", region_code="110105"),
            "citizen": make_user("citizen", username="ann"),
            "neighbour": make_user("citizen", username="bo")}


def citizen_report(client, auth_headers, citizen, lon, lat, words, email=None, with_photo=False):
    body = {"lon": str(lon), "lat": str(lat), "category": "C0101", "description": words,
            "client_id": f"{citizen.username}-{next(SERIAL)}"}
    if email:
        body["contact_email"] = email
    if with_photo:
        answer = client.post("/api/v1/reports", headers=auth_headers(citizen),
                             data={**body, "photos": [photo("before.jpg")]},
                             content_type="multipart/form-data")
    else:
        answer = client.post("/api/v1/reports", headers=auth_headers(citizen), json=body)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["case"]


def case_facts(case_id: int):
    db.session.rollback()
    return db.session.execute(text("""
        SELECT state, reporter_count, version,
               (SELECT count(*) FROM reports WHERE case_id = c.id) AS reports,
               (SELECT count(*) FROM photos WHERE case_id = c.id) AS photos,
               (SELECT count(*) FROM case_history WHERE case_id = c.id) AS steps
        FROM cases c WHERE id = :id"""), {"id": case_id}).one()


def test_an_operator_merges_a_report_and_its_reporter_is_told_which_case_carries_it(
        client, city, people, auth_headers, smtp):
    lon, lat = city.centre(0)
    surviving = citizen_report(client, auth_headers, people["citizen"], lon, lat, "井盖丢了")
    merged = citizen_report(client, auth_headers, people["neighbour"], lon + 0.0002, lat,
                            "这里没有井盖", email="bo@example.org", with_photo=True)
    assert merged["id"] != surviving["id"]
    engine.run_once()
    smtp.messages.clear()

    answer = step(client, auth_headers(people["operator"]), merged["id"], "merge",
                  into=surviving["id"], note="同一个井盖")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["state"] == "cancelled" and answer.get_json()["action"] == "merge"

    gone, kept = case_facts(merged["id"]), case_facts(surviving["id"])
    assert (gone.state, gone.reports, gone.photos) == ("cancelled", 0, 0)
    assert (kept.state, kept.reports, kept.photos, kept.reporter_count) == ("reported", 2, 1, 2)
    details = db.session.scalar(text(
        "SELECT details FROM case_history WHERE case_id = :id AND action = 'merge'"),
        {"id": merged["id"]})
    assert details["merged_into"] == surviving["id"] == details["duplicate_of"]

    for _ in range(10):
        engine.run_once()
    told = smtp.to("bo@example.org")
    assert told, "the merged case's reporter heard nothing"
    body = told[-1].get_content()
    assert merged["code"] in told[-1]["Subject"] and surviving["code"] in body


@pytest.mark.parametrize("into, status, code", [
    (None, 422, "into_required"), ("self", 422, "merge_into_itself"),
    (987654321, 422, "into_not_found"), ("cancelled", 409, "into_not_open")])
def test_a_merge_into_no_open_case_is_refused_and_changes_nothing(
        client, city, people, auth_headers, into, status, code):
    lon, lat = city.centre(0)
    merged = citizen_report(client, auth_headers, people["citizen"], lon, lat, "井盖丢了")
    other = citizen_report(client, auth_headers, people["neighbour"], lon, lat + 0.0003, "另一个")
    headers = auth_headers(people["operator"])
    assert step(client, headers, other["id"], "cancel", note="误报").status_code == 200
    target = {"self": merged["id"], "cancelled": other["id"]}.get(into, into)
    before = case_facts(merged["id"])
    body = {"note": "重复"} | ({"into": target} if target is not None else {})
    answer = step(client, headers, merged["id"], "merge", **body)
    assert answer.status_code == status, answer.get_json()
    assert answer.get_json()["error"]["code"] == code
    assert case_facts(merged["id"]) == before


def test_a_dispatcher_may_not_merge(client, city, people, auth_headers):
    lon, lat = city.centre(0)
    kept = citizen_report(client, auth_headers, people["citizen"], lon, lat, "井盖丢了")
    merged = citizen_report(client, auth_headers, people["neighbour"], lon, lat, "又一个")
    answer = step(client, auth_headers(people["dispatcher"]), merged["id"], "merge",
                  into=kept["id"])
    assert answer.status_code == 403
    assert case_facts(merged["id"]).state == "reported"
    assert case_facts(kept["id"]).reporter_count == 1


def test_the_operator_merges_from_the_case_page_into_the_duplicate_it_shows(
        client, city, people, auth_headers):
    lon, lat = city.centre(0)
    kept = citizen_report(client, auth_headers, people["citizen"], lon, lat, "井盖丢了")
    merged = citizen_report(client, auth_headers, people["neighbour"], lon, lat, "这里没有井盖")
    sign_in(client, "op")
    page = client.get(f"/workbench/cases/{merged['id']}").text
    offered = set(re.findall(rf'action="/workbench/cases/{merged["id"]}/(\w+)"', page))
    assert "merge" in offered
    assert f'<option value="{kept["code"]}">' in page  # the duplicate is offered as the target
    token = form_token(client, f"/workbench/cases/{merged['id']}")
    refused = client.post(f"/workbench/cases/{merged['id']}/merge",
                          data={"csrf_token": token, "into": "NO-SUCH-CODE"})
    assert refused.status_code == 422 and "into_not_found" in refused.text
    assert case_facts(merged["id"]).state == "reported"
    answer = client.post(f"/workbench/cases/{merged['id']}/merge",
                         data={"csrf_token": token, "into": kept["code"], "note": "同一处"})
    assert answer.status_code == 303
    assert case_facts(merged["id"]).state == "cancelled"
    assert case_facts(kept["id"]).reports == 2
