"""Signing in: tokens for good credentials, one answer for every bad one, limits on guessing."""

from __future__ import annotations

import pytest

from gridmgr import create_app
from gridmgr.extensions import limiter

TEST = "pw-secret-123"


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


@pytest.fixture
def limited_app(database_url, tmp_path):
    """An app like the session's, but with rate limits on (and small ones, to hit quickly)."""
    app = create_app({
        "TESTING": True, "DATABASE_URL": database_url, "SQLALCHEMY_DATABASE_URI": database_url,
        "GRIDMGR_HOME": str(tmp_path), "SECRET_KEY": "test-secret-key-that-is-long-enough-hs256",
        "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://",
        "GRIDMGR_LOGIN_RATE_LIMIT": "3 per minute", "GRIDMGR_REGISTER_RATE_LIMIT": "2 per hour",
    })
    yield app
    # The limiter is one object shared by every app in this process: switch it back off.
    limiter.reset()
    limiter.enabled = False


def test_guessing_passwords_is_cut_off_after_a_few_tries(limited_app, app, make_user):
    make_user("operator", username="li")
    client = limited_app.test_client()

    answers = [client.post("/api/v1/auth/token", json={"username": "li", "password": f"guess{i}"})
               for i in range(3)]
    blocked = client.post("/api/v1/auth/token", json={"username": "li", "password": TEST})

    assert [a.status_code for a in answers] == [401, 401, 401]
    assert blocked.status_code == 429
    assert blocked.get_json()["error"]["code"] == "too_many_requests"
    other_address = client.post("/api/v1/auth/token", json={"username": "li", "password": TEST},
                                environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other_address.status_code == 200


def test_registration_is_rate_limited(limited_app, app_ctx):
    client = limited_app.test_client()

    statuses = [client.post("/api/v1/auth/register", json={
        "username": f"citizen{i}", "password": "pw-secret-123"}).status_code for i in range(3)]

    assert statuses == [201, 201, 429]
