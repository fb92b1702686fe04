"""Administrators give only what lies inside their own scope, as it stood before the request;
editing themselves is no way around it, and a refused request changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gridmgr.extensions import db
from gridmgr.live import LiveEvent
from gridmgr.people.models import Department, User

STREET = "110105001"
OTHER_STREET = "110105002"
DISTRICT = "110105"


def _error(response) -> dict:
    return response.get_json()["error"]


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _scope(user_id: int) -> tuple:
    db.session.expire_all()
    user = db.session.get(User, user_id)
    return (user.role, user.region.code if user.region else None, user.city_id,
            user.department_id, user.password_hash, user.is_active)


@pytest.fixture
def street_admin(make_user):
    make_user("operator", region_code=OTHER_STREET)  # the neighbouring street exists
    return make_user("admin", username="street_admin", region_code=STREET,
                     email="street-admin@example.org")


@pytest.fixture
def city_admin(make_user):
    worker = make_user("inspector", username="city_worker", region_code=STREET + "001")
    return make_user("admin", username="city_admin", city_id=worker.city_id)


@pytest.mark.parametrize("change", [
    {"region_code": None, "city": None},
    {"region_code": None},
    {"region_code": DISTRICT},
    {"region_code": OTHER_STREET},
    {"region_code": None, "city": None, "password": "a-new-password"},
])
def test_a_street_administrator_who_widens_her_own_scope_is_refused_and_stays_on_her_street(
        client, street_admin, make_user, auth_headers, auth, change):
    citizen = make_user("citizen", username="resident", email="resident@example.org")
    headers = auth_headers(street_admin)
    before = _scope(street_admin.id)

    response = client.patch(f"/api/v1/admin/users/{street_admin.id}", headers=headers,
                            json=change)

    assert response.status_code == 403, response.get_json()
    assert _error(response)["code"] == "forbidden"
    assert f"outside region {STREET}" in _error(response)["message"]
    assert _scope(street_admin.id) == before
    assert _count(LiveEvent) == 0
    listed = client.get("/api/v1/admin/users", headers=headers).get_json()
    assert [u["username"] for u in listed] == ["street_admin"]
    assert "resident@example.org" not in str(listed)
    assert client.get(f"/api/v1/admin/users/{citizen.id}",
                      headers=headers).status_code == 403
    assert client.get("/api/v1/admin/departments", headers=headers).status_code == 403
    assert auth.login("street_admin").status_code == 200  # the old password still works


def test_a_street_administrator_may_still_move_herself_inside_her_street(
        client, street_admin, make_user, auth_headers):
    make_user("inspector", region_code=STREET + "001")  # the community exists

    narrowed = client.patch(f"/api/v1/admin/users/{street_admin.id}",
                            headers=auth_headers(street_admin),
                            json={"region_code": STREET + "001", "display_name": "王主任"})

    assert narrowed.status_code == 200, narrowed.get_json()
    assert narrowed.get_json()["region_code"] == STREET + "001"
    assert _scope(street_admin.id)[1] == STREET + "001"


@pytest.mark.parametrize("change", [
    {"region_code": None, "city": None},
    {"region_code": None},
    {"region_code": OTHER_STREET},
    {"role": "admin", "region_code": None},
])
def test_a_street_administrator_cannot_move_one_of_her_workers_out_of_her_street(
        client, street_admin, make_user, auth_headers, change):
    worker = make_user("inspector", username="inside", region_code=STREET + "001")
    before = _scope(worker.id)

    response = client.patch(f"/api/v1/admin/users/{worker.id}",
                            headers=auth_headers(street_admin), json=change)

    assert (response.status_code, _error(response)["code"]) == (403, "forbidden")
    assert _scope(worker.id) == before
    assert _count(LiveEvent) == 0


def test_a_city_administrator_cannot_make_herself_or_anyone_platform_wide(
        client, city_admin, auth_headers):
    headers = auth_headers(city_admin)
    users_before = _count(User)
    before = _scope(city_admin.id)

    herself = client.patch(f"/api/v1/admin/users/{city_admin.id}", headers=headers,
                           json={"city": None})
    created = client.post("/api/v1/admin/users", headers=headers, json={
        "username": "everywhere", "password": "pw-secret-123", "role": "admin"})

    assert [herself.status_code, created.status_code] == [403, 403]
    assert {_error(herself)["code"], _error(created)["code"]} == {"forbidden"}
    assert "for every city" in _error(created)["message"]
    assert _scope(city_admin.id) == before
    assert _count(User) == users_before


def test_a_city_administrator_cannot_touch_departments_of_every_city_or_of_another(
        client, city_admin, auth_headers):
    shared = Department(name="城管执法局", name_en="Enforcement")
    own = Department(name="本市环卫中心", city_id=city_admin.city_id)
    db.session.add_all([shared, own])
    db.session.commit()
    headers = auth_headers(city_admin)

    attempts = [
        client.patch(f"/api/v1/admin/departments/{shared.id}", headers=headers,
                     json={"name": "被改名的部门"}),
        client.delete(f"/api/v1/admin/departments/{shared.id}", headers=headers),
        client.patch(f"/api/v1/admin/departments/{own.id}", headers=headers,
                     json={"name": "全国环卫中心", "city": None}),
        client.post("/api/v1/admin/departments", headers=headers, json={"name": "新部门"}),
    ]

    assert [a.status_code for a in attempts] == [403] * 4
    assert {_error(a)["code"] for a in attempts} == {"forbidden"}
    db.session.expire_all()
    assert sorted((d.name, d.city_id) for d in db.session.scalars(select(Department))) == \
        sorted([("城管执法局", None), ("本市环卫中心", city_admin.city_id)])


def test_a_city_administrator_keeps_her_own_citys_departments(client, city_admin,
                                                             auth_headers):
    own = Department(name="本市环卫中心", city_id=city_admin.city_id)
    db.session.add(own)
    db.session.commit()

    renamed = client.patch(f"/api/v1/admin/departments/{own.id}",
                           headers=auth_headers(city_admin), json={"name": "市环卫中心"})

    assert renamed.status_code == 200, renamed.get_json()
    assert renamed.get_json()["name"] == "市环卫中心"
