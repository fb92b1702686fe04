"""Citizens create their own accounts; their phone and email stay between them and the admins."""

from __future__ import annotations

from sqlalchemy import func, select

from gridmgr.extensions import db
from gridmgr.people.models import User


def _register(client, **fields):
    body = {"username": "xiaoming", "password": "pw-secret-123", **fields}
    return client.post("/api/v1/auth/register", json=body)


def test_a_citizen_registers_signs_in_and_sees_their_own_contact_details(client, auth, app_ctx):
    response = _register(client, phone="13812345678", email="xm@example.org",
                         display_name="小明")

    assert response.status_code == 201
    body = response.get_json()
    assert body["role"] == "citizen" and body["region_code"] is None
    assert "password" not in body and "password_hash" not in body
    assert auth.login("xiaoming").status_code == 200
    me = auth._client.get("/api/v1/me", headers=auth.headers).get_json()
    assert (me["phone"], me["email"], me["display_name"]) == ("13812345678", "xm@example.org",
                                                              "小明")


def test_nobody_registers_as_staff(client, app_ctx):
    response = _register(client, role="admin")

    assert response.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_a_taken_username_or_a_short_password_is_refused(client, make_user):
    make_user("citizen", username="xiaoming")

    taken = _register(client)
    short = _register(client, username="xiaohong", password="short")

    assert (taken.status_code, taken.get_json()["error"]["code"]) == (409, "username_taken")
    assert short.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_a_citizen_changes_their_password_only_with_the_current_one(client, make_user, auth):
    make_user("citizen", username="xiaoming")
    auth.login("xiaoming")

    refused = client.patch("/api/v1/me", headers=auth.headers,
                           json={"password": "another-password", "current_password": "wrong"})
    changed = client.patch("/api/v1/me", headers=auth.headers,
                           json={"password": "another-password",
                                 "current_password": "pw-secret-123", "phone": "13900001111"})

    assert (refused.status_code, refused.get_json()["error"]["code"]) == (422, "wrong_password")
    assert changed.status_code == 200 and changed.get_json()["phone"] == "13900001111"
    assert auth.login("xiaoming", "another-password").status_code == 200


def test_a_citizen_cannot_promote_themselves(client, make_user, auth_headers):
    citizen = make_user("citizen")

    response = client.patch("/api/v1/me", headers=auth_headers(citizen), json={"role": "admin"})

    assert response.status_code == 422
    db.session.expire_all()
    assert db.session.get(User, citizen.id).role == "citizen"
