"""The catalogue over HTTP: anyone lists it; administrators edit it, with validated limits;
everyone else is refused with a code and nothing changes."""

from __future__ import annotations

import pytest

from gridmgr.categories import operations as ops
from gridmgr.extensions import db
from gridmgr.people.models import Department


@pytest.fixture
def catalogue(app_ctx):
    ops.load_default_catalogue()


def test_anyone_lists_the_catalogue_with_names_departments_and_limits(catalogue, client):
    response = client.get("/api/v1/categories")
    assert response.status_code == 200
    body = response.get_json()
    assert len(body) >= 40
    lamp = next(c for c in body if c["code"] == "C0111")
    assert lamp["name"] == "路灯" and lamp["name_en"] == "Street lamp"
    assert lamp["class"] == "C01" and lamp["kind"] == "component"
    assert lamp["class_name_zh"] == "公用设施"
    assert lamp["department"]["name"] == "市政管理委员会"
    assert lamp["limits"]["handle"] == {"amount": 3, "unit": "working_days"}
    assert lamp["duplicate_radius_m"] == 30 and lamp["duplicate_window_hours"] == 72

    events = client.get("/api/v1/categories?kind=event&lang=en").get_json()
    assert events and all(c["kind"] == "event" for c in events)
    assert next(c for c in events if c["code"] == "E0501")["name"] == "Unlicensed street vendor"
    e05 = client.get("/api/v1/categories?class=E05").get_json()
    assert {c["code"][:3] for c in e05} == {"E05"}
    english = client.get("/api/v1/categories/E0101", headers={"Accept-Language": "en-GB"})
    assert english.get_json()["name"] == "Exposed garbage"
    assert client.get("/api/v1/categories/E0101").get_json()["name"] == "暴露垃圾"

    missing = client.get("/api/v1/categories/X9999")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "category_not_found"
    bad = client.get("/api/v1/categories?kind=animal")
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_input"


def test_an_administrator_edits_limits_and_adds_a_category(catalogue, client, make_user,
                                                           auth_headers):
    admin = auth_headers(make_user("admin"))
    response = client.patch("/api/v1/admin/categories/E0101", headers=admin, json={
        "limits": {"handle": {"amount": 2, "unit": "working_hours"},
                   "check": {"amount": 1, "unit": "working_hours"}},
        "duplicate_radius_m": 40, "name_en": "Exposed rubbish"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["limits"]["handle"] == {"amount": 2, "unit": "working_hours"}
    fresh = client.get("/api/v1/categories/E0101?lang=en").get_json()
    assert fresh["name"] == "Exposed rubbish" and fresh["duplicate_radius_m"] == 40

    dept = db.session.query(Department).filter_by(name="环卫中心").one()
    created = client.post("/api/v1/admin/categories", headers=admin, json={
        "code": "E0109", "class": "E01", "name_zh": "犬只粪便", "name_en": "Dog fouling",
        "department_id": dept.id, "limits": {"handle": {"amount": 4, "unit": "working_hours"}}})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["department"]["name"] == "环卫中心"
    again = client.post("/api/v1/admin/categories", headers=admin, json={
        "code": "E0109", "class": "E01", "name_zh": "x", "name_en": "x"})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "category_exists"


@pytest.mark.parametrize("limits, code", [
    ({"repair": {"amount": 1, "unit": "working_days"}}, "unknown_stage"),
    ({"handle": {"amount": 1, "unit": "fortnights"}}, "unknown_unit"),
    ({"handle": {"amount": 0, "unit": "working_days"}}, "invalid_limit"),
    ({"handle": {"amount": -1, "unit": "urgent_hours"}}, "invalid_limit"),
])
def test_bad_limits_are_refused_with_a_code_and_nothing_changes(catalogue, client, make_user,
                                                               auth_headers, limits, code):
    admin = auth_headers(make_user("admin"))
    before = client.get("/api/v1/categories/C0101").get_json()
    response = client.patch("/api/v1/admin/categories/C0101", headers=admin,
                            json={"limits": limits, "name_en": "Changed"})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == code
    assert client.get("/api/v1/categories/C0101").get_json() == before


@pytest.mark.parametrize("role", ["citizen", "inspector", "operator", "duty_chief",
                                  "dispatcher", "department"])
def test_only_administrators_edit_the_catalogue(catalogue, client, make_user, auth_headers,
                                                role):
    headers = auth_headers(make_user(role))
    before = client.get("/api/v1/categories/E0501").get_json()
    response = client.patch("/api/v1/admin/categories/E0501", headers=headers,
                            json={"limits": {"handle": {"amount": 1, "unit": "working_hours"}}})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    created = client.post("/api/v1/admin/categories", headers=headers, json={
        "code": "E0599", "class": "E05", "name_zh": "测试", "name_en": "Test"})
    assert created.status_code == 403
    assert client.get("/api/v1/categories/E0501").get_json() == before
    assert client.get("/api/v1/categories/E0599").status_code == 404


def test_editing_needs_a_token(catalogue, client):
    response = client.patch("/api/v1/admin/categories/E0501", json={"name_en": "x"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "token_missing"


def test_a_region_override_of_the_responsible_department(catalogue, client, make_user,
                                                         auth_headers):
    admin = auth_headers(make_user("admin"))
    # A region-scoped administrator and the region itself (created by make_user).
    local_admin = make_user("admin", region_code="110101001")
    street_team = Department(name="东华门街道城管队")
    db.session.add(street_team)
    db.session.commit()

    url = "/api/v1/admin/categories/E0501/regions/110101001"
    response = client.put(url, headers=admin, json={"department_id": street_team.id})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["department"]["name"] == "东华门街道城管队"
    assert ops.responsible_department("E0501", "110101001002003").name == "东华门街道城管队"
    assert ops.responsible_department("E0501", "110102001002003").name == "城管执法局"
    listed = client.get("/api/v1/admin/categories/E0501/regions", headers=admin).get_json()
    assert [r["region_code"] for r in listed] == ["110101001"]

    # The street's own administrator may not set one for a region outside the street.
    make_user("inspector", region_code="110102001")
    outside = client.put("/api/v1/admin/categories/E0501/regions/110102001",
                         headers=auth_headers(local_admin), json={"department_id": street_team.id})
    assert outside.status_code == 403
    assert ops.responsible_department("E0501", "110102001002003").name == "城管执法局"

    unknown = client.put("/api/v1/admin/categories/E0501/regions/110109", headers=admin,
                         json={"department_id": street_team.id})
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "region_not_found"

    assert client.delete(url, headers=admin).status_code == 204
    assert ops.responsible_department("E0501", "110101001002003").name == "城管执法局"
    assert client.delete(url, headers=admin).get_json()["error"]["code"] == "no_override"
