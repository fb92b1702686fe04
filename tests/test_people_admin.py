"""Administrators keep users and departments through the API; nobody else can, and refusals
change nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gridmgr.extensions import db
from gridmgr.people.models import Department, User


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _error(response) -> dict:
    return response.get_json()["error"]


@pytest.fixture
def admin(make_user):
    return make_user("admin", username="root", phone="13900000000")


def test_an_administrator_creates_a_department_and_a_scoped_worker(client, admin, auth_headers,
                                                                  make_user):
    make_user("operator", region_code="110105001")  # the street exists
    headers = auth_headers(admin)

    department = client.post("/api/v1/admin/departments", headers=headers,
                             json={"name": "园林绿化局", "name_en": "Landscaping Bureau"})
    created = client.post("/api/v1/admin/users", headers=headers, json={
        "username": "chen", "password": "pw-secret-123", "role": "department",
        "department_id": department.get_json()["id"], "region_code": "110105001",
        "phone": "13700000000", "email": "chen@example.org"})

    assert department.status_code == 201
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["department"] == "园林绿化局" and body["region_code"] == "110105001"
    assert body["phone"] == "13700000000" and body["email"] == "chen@example.org"
    assert "password" not in body and "password_hash" not in body
    listed = client.get("/api/v1/admin/users?role=department", headers=headers).get_json()
    assert [u["username"] for u in listed] == ["chen"]
    assert all("password_hash" not in u for u in listed)


def test_an_administrator_changes_a_users_role_scope_and_password(client, admin, auth_headers,
                                                                 make_user, auth):
    worker = make_user("inspector", username="wang", region_code="110105001")
    make_user("operator", region_code="110105002")

    changed = client.patch(f"/api/v1/admin/users/{worker.id}", headers=auth_headers(admin),
                           json={"role": "operator", "region_code": "110105002",
                                 "password": "a-new-password"})

    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["role"] == "operator"
    assert changed.get_json()["region_code"] == "110105002"
    assert auth.login("wang", "pw-secret-123").status_code == 401
    assert auth.login("wang", "a-new-password").status_code == 200


@pytest.mark.parametrize("role", ["citizen", "inspector", "operator", "duty_chief",
                                  "dispatcher", "department"])
def test_nobody_but_an_administrator_manages_people(client, make_user, auth_headers, role):
    user = make_user(role)
    before = (_count(User), _count(Department))
    headers = auth_headers(user)

    attempts = [
        client.get("/api/v1/admin/users", headers=headers),
        client.post("/api/v1/admin/users", headers=headers, json={
            "username": "intruder", "password": "pw-secret-123", "role": "admin"}),
        client.patch(f"/api/v1/admin/users/{user.id}", headers=headers, json={"role": "admin"}),
        client.post("/api/v1/admin/departments", headers=headers, json={"name": "影子部门"}),
        client.get("/api/v1/admin/departments", headers=headers),
    ]

    assert [a.status_code for a in attempts] == [403] * 5
    assert {_error(a)["code"] for a in attempts} == {"forbidden"}
    assert "may not manage" in _error(attempts[1])["message"]
    db.session.expire_all()
    assert (_count(User), _count(Department)) == before
    assert db.session.get(User, user.id).role == role


def test_a_street_administrator_manages_only_users_of_the_street(client, make_user, auth_headers):
    street_admin = make_user("admin", region_code="110105001")
    inside = make_user("inspector", username="inside", region_code="110105001001")
    outside = make_user("inspector", username="outside", region_code="110106001")
    headers = auth_headers(street_admin)
    before = _count(User)

    listed = client.get("/api/v1/admin/users", headers=headers).get_json()
    moved_out = client.patch(f"/api/v1/admin/users/{inside.id}", headers=headers,
                             json={"region_code": "110106001"})
    created_out = client.post("/api/v1/admin/users", headers=headers, json={
        "username": "newbie", "password": "pw-secret-123", "role": "inspector",
        "region_code": "110106001"})
    touched_out = client.delete(f"/api/v1/admin/users/{outside.id}", headers=headers)

    assert sorted(u["username"] for u in listed) == ["admin1", "inside"]
    assert [moved_out.status_code, created_out.status_code, touched_out.status_code] == [403] * 3
    assert "outside region 110105001" in _error(created_out)["message"]
    db.session.expire_all()
    assert _count(User) == before
    assert db.session.get(User, inside.id).region.code == "110105001001"
    assert db.session.get(User, outside.id).is_active


def test_bad_user_input_is_refused_with_codes(client, admin, auth_headers):
    headers = auth_headers(admin)
    base = {"username": "li", "password": "pw-secret-123", "role": "operator"}

    unknown_region = client.post("/api/v1/admin/users", headers=headers,
                                 json={**base, "region_code": "999999001"})
    no_department = client.post("/api/v1/admin/users", headers=headers,
                                json={**base, "role": "department"})
    bad_role = client.post("/api/v1/admin/users", headers=headers, json={**base, "role": "king"})
    citizen_scope = client.post("/api/v1/admin/users", headers=headers,
                                json={**base, "role": "citizen", "region_code": "110105"})
    taken = client.post("/api/v1/admin/users", headers=headers, json={**base, "username": "root"})

    assert (unknown_region.status_code, _error(unknown_region)["code"]) == (404, "region_not_found")
    assert _error(no_department)["code"] == "department_required"
    assert (bad_role.status_code, _error(bad_role)["code"]) == (422, "invalid_input")
    assert citizen_scope.status_code == 422
    assert (taken.status_code, _error(taken)["code"]) == (409, "username_taken")
    assert _count(User) == 1


def test_a_department_with_staff_is_not_deleted(client, admin, auth_headers, make_user):
    staff = make_user("department", department="环卫中心")
    headers = auth_headers(admin)

    refused = client.delete(f"/api/v1/admin/departments/{staff.department_id}", headers=headers)
    renamed = client.patch(f"/api/v1/admin/departments/{staff.department_id}", headers=headers,
                           json={"name": "环境卫生中心"})
    duplicate = client.post("/api/v1/admin/departments", headers=headers,
                            json={"name": "环境卫生中心"})

    assert (refused.status_code, _error(refused)["code"]) == (409, "department_in_use")
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "环境卫生中心"
    assert (duplicate.status_code, _error(duplicate)["code"]) == (409, "department_exists")
    assert _count(Department) == 1


def test_an_administrator_cannot_disable_themselves(client, admin, auth_headers):
    response = client.delete(f"/api/v1/admin/users/{admin.id}", headers=auth_headers(admin))

    assert (response.status_code, _error(response)["code"]) == (409, "cannot_disable_self")


def test_the_openapi_document_declares_bearer_auth(client):
    spec = client.get("/api/v1/openapi.json").get_json()

    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["paths"]["/api/v1/admin/users"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in spec["paths"]["/api/v1/auth/token"]["post"]
