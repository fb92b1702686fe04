"""An Open311 client that sends its POST as a JSON object instead of the form the standard
names: the same fields, the same answers, the same refusals, and the same one intake path."""

from __future__ import annotations

from open311_world import IN_WEST, build_city, build_world
from sqlalchemy import func, select

from gridmgr.cases.models import Case, CaseHistory, Report
from gridmgr.extensions import db
from gridmgr.open311.keys import revoke_api_key

URL = "/open311/v2/requests.json"


def _counts() -> tuple[int, int, int]:
    return (db.session.scalar(select(func.count(Case.id))),
            db.session.scalar(select(func.count(Report.id))),
            db.session.scalar(select(func.count(CaseHistory.id))))


def test_a_portal_posting_json_files_a_request_with_its_answers(client, app_ctx):
    world = build_world()
    answer = client.post(URL, json={
        "api_key": world.api_key, "service_code": "e9901", "lat": IN_WEST[1],
        "long": IN_WEST[0], "description": "A tree fell on the pavement",
        "first_name": "Li", "last_name": "Na", "email": "li.na@example.cn",
        "attribute": {"SIZE": "large", "BLOCKING": ["road", "sidewalk"]}, "phone": None})
    assert answer.status_code == 200, answer.data
    [filed] = answer.get_json()
    case = db.session.scalar(select(Case).where(Case.code == filed["service_request_id"]))
    assert case.channel == "open311" and case.state == "reported"
    report = db.session.scalar(select(Report).where(Report.case_id == case.id))
    assert report.attributes == {"SIZE": "large", "BLOCKING": ["road", "sidewalk"]}
    assert report.contact_name == "Li Na" and report.contact_phone is None
    assert filed["token"]
    assert client.get(f"/open311/v2/tokens/{filed['token']}.json").get_json() == [
        {"service_request_id": case.code, "token": filed["token"]}]


def test_json_answers_may_also_be_named_as_the_form_names_them(client, app_ctx):
    world = build_world()
    answer = client.post(URL, json={
        "api_key": world.api_key, "service_code": "E9901", "lat": str(IN_WEST[1]),
        "long": str(IN_WEST[0]), "attribute[SIZE]": "small"})
    assert answer.status_code == 200, answer.data
    assert db.session.scalar(select(Report.attributes)) == {"SIZE": "small"}


def test_a_json_request_missing_a_required_answer_is_refused_and_files_nothing(client,
                                                                               app_ctx):
    world = build_world()
    answer = client.post(URL, json={"api_key": world.api_key, "service_code": "E9901",
                                    "lat": IN_WEST[1], "long": IN_WEST[0]})
    assert answer.status_code == 400
    assert "attribute[SIZE] is required" in answer.get_json()[0]["description"]
    assert _counts() == (0, 0, 0)


def test_a_json_body_that_is_not_an_object_of_fields_is_a_400(client, app_ctx):
    world = build_world()
    for bad in ([1, 2], {"api_key": world.api_key, "service_code": "C9801",
                         "lat": {"deg": 39.9}, "long": IN_WEST[0]},
                {"api_key": world.api_key, "service_code": "C9801", "lat": True,
                 "long": IN_WEST[0]}):
        answer = client.post(URL, json=bad)
        assert answer.status_code == 400, (bad, answer.data)
        assert answer.get_json()[0]["code"] == 400
    answer = client.post(URL, data=b"{not json", content_type="application/json")
    assert answer.status_code == 400
    assert _counts() == (0, 0, 0)


def test_a_json_post_with_a_revoked_key_is_a_403_and_files_nothing(client, app_ctx):
    world = build_world()
    revoke_api_key("test-client")
    answer = client.post(URL, json={"api_key": world.api_key, "service_code": "C9801",
                                    "lat": IN_WEST[1], "long": IN_WEST[0]})
    assert answer.status_code == 403
    assert "not valid" in answer.get_json()[0]["description"]
    assert _counts() == (0, 0, 0)


def test_a_key_may_come_in_the_query_of_a_json_post(client, app_ctx):
    world = build_world()
    answer = client.post(f"{URL}?api_key={world.api_key}", json={
        "service_code": "C9801", "lat": IN_WEST[1], "long": IN_WEST[0]})
    assert answer.status_code == 200, answer.data
    assert _counts()[0] == 1


def test_a_request_outside_its_named_jurisdiction_or_to_an_unknown_one_files_nothing(
        client, app_ctx):
    world = build_world()
    build_city(slug="xicheng", district="110102", name="西城区", offset=0.01)
    db.session.commit()
    fields = {"api_key": world.api_key, "service_code": "C9801", "lat": IN_WEST[1],
              "long": IN_WEST[0]}
    outside = client.post(URL, json={**fields, "jurisdiction_id": "xicheng"})
    assert outside.status_code == 400
    assert "not inside jurisdiction 'xicheng'" in outside.get_json()[0]["description"]
    unknown = client.post(URL, data={**fields, "jurisdiction_id": "atlantis"})
    assert unknown.status_code == 404
    assert "atlantis" in unknown.get_json()[0]["description"]
    assert _counts() == (0, 0, 0)
    inside = client.post(URL, json={**fields, "jurisdiction_id": "dongcheng"})
    assert inside.status_code == 200, inside.data
    assert db.session.scalar(select(Case.city_id)) == world.city_id


def test_a_question_added_to_a_service_after_a_request_holds_for_the_next_one(client,
                                                                               app_ctx):
    """The questions this process remembers are checked again by the statement that stores
    a request: a question made required meanwhile refuses the next request without it."""
    from gridmgr.categories.models import Category

    world = build_world()
    fields = {"api_key": world.api_key, "service_code": "C9801", "lat": IN_WEST[1],
              "long": IN_WEST[0]}
    assert client.post(URL, json=fields).status_code == 200
    lamp = db.session.scalar(select(Category).where(Category.code == "C9801"))
    lamp.attributes = [{"variable": True, "code": "POLE", "datatype": "string",
                        "required": True, "order": 1, "description": "Pole number"}]
    db.session.commit()
    refused = client.post(URL, json=fields)
    assert refused.status_code == 400
    assert "attribute[POLE] is required" in refused.get_json()[0]["description"]
    assert _counts()[0] == 1
    answered = client.post(URL, json={**fields, "attribute": {"POLE": "A-17"}})
    assert answered.status_code == 200, answered.data
    assert _counts()[0] == 2
