"""Signing in: tokens for good credentials, one answer for every bad one, limits on guessing."""

from __future__ import annotations


def test_an_inspector_signs_in_and_reads_their_profile(make_user, auth, client):
    make_user("inspector", username="wang", region_code="110105001", phone="13800000000")

    response = auth.login("wang")

    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    me = client.get("/api/v1/me", headers=auth.headers).get_json()
    assert me["username"] == "wang" and me["role"] == "inspector"
    assert me["region_code"] == "110105001" and me["phone"] == "13800000000"
    assert "password_hash" not in me and "password" not in me


def test_unknown_user_and_wrong_password_get_the_same_answer(make_user, auth):
    make_user("operator", username="li")

    wrong_password = auth.login("li", "not-the-password")
    unknown_user = auth.login("nobody-here", "not-the-password")

    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.get_json() == unknown_user.get_json()
    assert wrong_password.get_json()["error"]["code"] == "invalid_credentials"


def test_a_disabled_user_cannot_sign_in_and_is_told_nothing_more(make_user, auth):
    make_user("operator", username="zhao", is_active=False)

    response = auth.login("zhao")

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_credentials"


def test_the_profile_needs_a_token(client):
    response = client.get("/api/v1/me")

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "token_missing"
