"""What intake accepts: text every list can show, a client_id that answers only its own
report, attributes of a sensible size, JSON of a sensible depth, and names that are not staff's.
Each refusal is a 4xx with a code, and nothing is written."""

from __future__ import annotations

import pytest
from cityfixtures import city_fixture  # noqa: F401
from open311_world import IN_WEST, build_world
from sqlalchemy import text

from gridmgr.errors import DomainError
from gridmgr.extensions import db
from gridmgr.legacy.importing import import_history

TABLES = ("cases", "reports", "case_history", "photos", "live_events", "users")
CONTROL_CHARACTERS = ["\x0b", "\x1b"]  # vertical tab, escape


def counts() -> dict:
    db.session.rollback()
    return {t: db.session.scalar(text(f"SELECT count(*) FROM {t}")) for t in TABLES}


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:400]
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    return error


@pytest.fixture
def citizen_headers(city, make_user, auth_headers):
    return auth_headers(make_user("citizen"))


def report(city, **fields) -> dict:
    lon, lat = city.centre(0)
    return {"lon": lon, "lat": lat, "category": "C0101", **fields}


# -- control characters -----------------------------------------------------------------------

@pytest.mark.parametrize("character", CONTROL_CHARACTERS)
def test_a_citizen_whose_description_holds_a_control_character_is_refused(
        client, city, citizen_headers, character):
    before = counts()
    answer = client.post("/api/v1/reports", headers=citizen_headers, json=report(
        city, description=f"井盖{character}[31m丢失", client_id="ctl-1"))
    error = refused(answer, 422, "invalid_text")
    assert error["details"]["field"] == "description"
    assert counts() == before


def test_an_anonymous_report_with_a_control_character_in_its_attributes_is_refused(
        client, city):
    before = counts()
    answer = client.post("/api/v1/reports", json=report(
        city, attributes={"lamp": {"note": "flick\x1bering"}}))
    error = refused(answer, 422, "invalid_text")
    assert error["details"]["field"] == "attributes.lamp.note"
    assert counts() == before


def test_a_multipart_report_with_a_control_character_in_a_field_is_refused(client, city):
    lon, lat = city.centre(0)
    before = counts()
    answer = client.post("/api/v1/reports", content_type="multipart/form-data", data={
        "lon": str(lon), "lat": str(lat), "category": "C0101", "contact_name": "Li\x0bLei"})
    assert refused(answer, 422, "invalid_text")["details"]["field"] == "contact_name"
    assert counts() == before


def test_tab_newline_and_carriage_return_are_ordinary_text(client, city, citizen_headers):
    words = "第一行\r\n\t第二行"
    answer = client.post("/api/v1/reports", headers=citizen_headers,
                         json=report(city, description=words))
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert db.session.scalar(text("SELECT description FROM cases")) == words


def test_a_lone_surrogate_is_refused_as_a_control_character(client, city, citizen_headers):
    before = counts()
    lon, lat = city.centre(0)
    raw = ('{"lon": ' + str(lon) + ', "lat": ' + str(lat)
           + ', "category": "C0101", "description": "broken \\ud800 lamp"}')
    answer = client.post("/api/v1/reports", headers=citizen_headers, data=raw,
                         content_type="application/json")
    assert refused(answer, 422, "invalid_text")["details"]["field"] == "description"
    assert counts() == before


@pytest.fixture
def world(app_ctx):
    return build_world()


@pytest.mark.parametrize("character", CONTROL_CHARACTERS)
def test_an_open311_client_posting_a_control_character_is_refused(client, world, character):
    before = counts()
    answer = client.post("/open311/v2/requests.json", data={
        "api_key": world.api_key, "service_code": "C9801", "lat": IN_WEST[1],
        "long": IN_WEST[0], "description": f"lamp{character}out"})
    assert answer.status_code == 400, answer.data
    assert "description" in answer.get_json()[0]["description"]
    assert counts() == before
    # The public XML list still parses: nothing unreadable was stored.
    assert client.get("/open311/v2/requests.xml").status_code == 200


HEADER = "reference,category,lon,lat,step,time,actor_role,actor,department,note\n"


@pytest.mark.parametrize("character", CONTROL_CHARACTERS)
def test_a_history_file_with_a_control_character_is_refused_whole(city, tmp_path, character):
    path = tmp_path / "history.csv"
    path.write_text(HEADER + "OLD-1,E0101,116.401,39.901,reported,2025-03-03T09:12:00+08:00,"
                    f"citizen,张三,,路口{character}有垃圾\n"
                    "OLD-2,E0101,116.401,39.901,reported,2025-03-03T09:12:00+08:00,"
                    "citizen,李四,,路口有垃圾\n", encoding="utf-8")
    before = counts()
    with pytest.raises(DomainError) as refusal:
        import_history(path)
    assert refusal.value.code == "invalid_history"
    problems = refusal.value.details["problems"]
    assert [(p["row"], p["reference"], p["problem"]) for p in problems] == [
        (2, "OLD-1", "invalid_text")]
    assert "note" in problems[0]["message"]
    assert counts() == before


def test_a_json_lines_history_with_an_escaped_nul_is_refused(city, tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"reference": "J-1", "category": "E0101", "lon": 116.401, "lat": 39.901, '
                    '"step": "reported", "time": "2025-03-03T09:12:00+08:00", '
                    '"actor_role": "citizen", "actor": "\\u0000x", "department": "", '
                    '"note": ""}\n', encoding="utf-8")
    before = counts()
    with pytest.raises(DomainError) as refusal:
        import_history(path)
    assert [p["problem"] for p in refusal.value.details["problems"]] == ["invalid_text"]
    assert counts() == before



def test_a_json_lines_history_nested_a_thousand_deep_is_refused_by_its_line(city, tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"reference": "J-1", "note": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
                    encoding="utf-8")
    before = counts()
    with pytest.raises(DomainError) as refusal:
        import_history(path)
    assert refusal.value.code == "bad_file"
    assert "line 1" in refusal.value.message
    assert counts() == before

# -- client_id --------------------------------------------------------------------------------

def test_two_anonymous_senders_with_one_client_id_each_keep_their_own_report(client, city):
    first = client.post("/api/v1/reports", json=report(
        city, description="井盖丢失", client_id="phone-1"))
    assert first.status_code == 201
    resend = client.post("/api/v1/reports", json=report(
        city, description="井盖丢失", client_id="phone-1"))
    assert resend.status_code == 200
    assert resend.get_json()["case"] == first.get_json()["case"]
    assert resend.get_json()["created"] is False
    before = counts()
    other = client.post("/api/v1/reports", json=report(
        city, description="路灯不亮", client_id="phone-1"))
    error = refused(other, 409, "client_id_reused")
    body = other.get_data(as_text=True)
    assert first.get_json()["case"]["code"] not in body
    assert "details" not in error
    assert counts() == before


def test_a_citizen_reusing_a_client_id_for_another_report_is_refused(
        client, city, citizen_headers):
    first = client.post("/api/v1/reports", headers=citizen_headers, json=report(
        city, description="井盖丢失", client_id="mine-1"))
    assert first.status_code == 201
    before = counts()
    other = client.post("/api/v1/reports", headers=citizen_headers, json=report(
        city, description="路灯不亮", client_id="mine-1"))
    error = refused(other, 409, "client_id_reused")
    assert error["details"]["case"]["code"] == first.get_json()["case"]["code"]
    assert error["details"]["report"]["id"] == first.get_json()["report"]["id"]
    assert counts() == before


def test_a_client_id_is_the_citizens_own(client, city, make_user, auth_headers):
    one, two = make_user("citizen"), make_user("citizen")
    first = client.post("/api/v1/reports", headers=auth_headers(one), json=report(
        city, description="井盖丢失", client_id="same-1"))
    second = client.post("/api/v1/reports", headers=auth_headers(two), json=report(
        city, description="井盖丢失", client_id="same-1"))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.get_json()["case"]["id"] != second.get_json()["case"]["id"]


# -- attributes -------------------------------------------------------------------------------

def test_five_megabytes_of_attributes_are_refused(client, city, citizen_headers):
    before = counts()
    answer = client.post("/api/v1/reports", headers=citizen_headers, json=report(
        city, attributes={"notes": ["x" * 1000] * 5000}))
    assert answer.status_code in (413, 422)
    assert answer.get_json()["error"]["code"] in ("attributes_too_large",
                                                  "too_many_attributes")
    assert counts() == before


def test_attributes_over_their_size_are_refused_with_413(client, city, citizen_headers):
    before = counts()
    answer = client.post("/api/v1/reports", headers=citizen_headers, json=report(
        city, attributes={f"k{i}": "x" * 900 for i in range(10)}))
    refused(answer, 413, "attributes_too_large")
    assert counts() == before


@pytest.mark.parametrize("attributes, code", [
    ({"a": {"b": {"c": {"d": {"e": 1}}}}}, "attributes_too_deep"),
    ({f"k{i}": i for i in range(101)}, "too_many_attributes"),
    ({"note": "x" * 1001}, "attribute_too_long"),
])
def test_deep_wide_or_long_attributes_are_refused(client, city, citizen_headers, attributes,
                                                  code):
    before = counts()
    answer = client.post("/api/v1/reports", headers=citizen_headers,
                         json=report(city, attributes=attributes))
    refused(answer, 422, code)
    assert counts() == before


def test_ordinary_attributes_are_kept(client, city, citizen_headers):
    attributes = {"size": "large", "blocking": ["road", "sidewalk"], "girth": 120}
    answer = client.post("/api/v1/reports", headers=citizen_headers,
                         json=report(city, attributes=attributes))
    assert answer.status_code == 201
    assert db.session.scalar(text("SELECT attributes FROM reports")) == attributes


# -- JSON depth -------------------------------------------------------------------------------

def deep_json(depth: int, key: str) -> str:
    return f'{{"{key}": {"[" * depth}{"]" * depth}}}'


def test_a_report_nested_a_thousand_deep_is_refused(client, city, citizen_headers):
    before = counts()
    answer = client.post("/api/v1/reports", headers=citizen_headers,
                         data=deep_json(1000, "attributes"), content_type="application/json")
    refused(answer, 400, "json_too_deep")
    assert counts() == before


def test_a_registration_nested_a_thousand_deep_is_refused(client, app_ctx):
    before = counts()
    answer = client.post("/api/v1/auth/register", data=deep_json(1000, "username"),
                         content_type="application/json")
    refused(answer, 400, "json_too_deep")
    assert counts() == before


def test_brackets_inside_strings_do_not_count_as_depth(client, city, citizen_headers):
    answer = client.post("/api/v1/reports", headers=citizen_headers,
                         json=report(city, description="[" * 2000 + "{" * 2000))
    assert answer.status_code == 201, answer.get_data(as_text=True)[:300]


def test_multipart_attributes_nested_a_thousand_deep_are_refused(client, city):
    lon, lat = city.centre(0)
    before = counts()
    answer = client.post("/api/v1/reports", content_type="multipart/form-data", data={
        "lon": str(lon), "lat": str(lat), "category": "C0101",
        "attributes": '{"a": ' + "[" * 1000 + "]" * 1000 + "}"})
    refused(answer, 400, "json_too_deep")
    assert counts() == before


# -- names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, name", [
    ("display_name", "Inspector7"), ("display_name", " 王队长 "), ("username", "INSPECTOR7")])
def test_a_citizen_may_not_register_under_a_staff_members_name(client, make_user, field, name):
    make_user("inspector", "inspector7", display_name="王队长")
    before = counts()
    body = {"username": "new.citizen", "password": "a-long-password-1", field: name}
    answer = client.post("/api/v1/auth/register", json=body)
    refused(answer, 409, "name_reserved")
    assert counts() == before


def test_a_citizen_may_not_rename_herself_after_a_staff_member(client, make_user, auth_headers):
    make_user("operator", "operator9", display_name="调度员小张")
    citizen = make_user("citizen", "xiaoli", display_name="小李")
    answer = client.patch("/api/v1/me", headers=auth_headers(citizen),
                          json={"display_name": "调度员小张"})
    refused(answer, 409, "name_reserved")
    assert db.session.scalar(text(
        "SELECT display_name FROM users WHERE username = 'xiaoli'")) == "小李"


def test_a_citizen_may_take_a_name_only_another_citizen_has(client, make_user):
    make_user("citizen", "neighbour", display_name="老王")
    answer = client.post("/api/v1/auth/register", json={
        "username": "another", "password": "a-long-password-1", "display_name": "老王"})
    assert answer.status_code == 201, answer.get_data(as_text=True)
