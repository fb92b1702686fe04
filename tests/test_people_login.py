"""Signing in: tokens for good credentials, one answer for every bad one, limits on guessing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


# Limits are off in the session's app. Flask-Limiter, Flask-SocketIO and flask-smorest keep one
# object per process, so an app with limits on is built in a separate process, on the same
# database, and asked the same questions a client would ask.
LIMITED_CLIENT = """
import json, sys, tempfile
from gridmgr import create_app
url, attempts = sys.argv[1], json.loads(sys.argv[2])
app = create_app({"TESTING": True, "DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                  "GRIDMGR_HOME": tempfile.mkdtemp(), "RATELIMIT_ENABLED": True,
                  "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
                  "GRIDMGR_LOGIN_RATE_LIMIT": "3 per minute",
                  "GRIDMGR_REGISTER_RATE_LIMIT": "2 per hour"})
client = app.test_client()
answers = []
for path, body, address in attempts:
    response = client.post(path, json=body, environ_base={"REMOTE_ADDR": address})
    answers.append([response.status_code, (response.get_json() or {}).get("error", {}).get("code")])
print(json.dumps(answers))
"""


def _with_limits_on(database_url: str, attempts: list) -> list:
    done = subprocess.run([sys.executable, "-c", LIMITED_CLIENT, database_url,
                           json.dumps(attempts)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    return [tuple(answer) for answer in json.loads(done.stdout.strip().splitlines()[-1])]


def test_guessing_passwords_and_mass_registration_are_cut_off(database_url, make_user):
    make_user("operator", username="li")
    guess = [["/api/v1/auth/token", {"username": "li", "password": f"guess{i}"}, "10.0.0.1"]
             for i in range(3)]
    right = {"username": "li", "password": TEST}
    register = [["/api/v1/auth/register", {"username": f"citizen{i}", "password": TEST},
                 "10.0.0.3"] for i in range(3)]

    answers = _with_limits_on(database_url, [
        *guess, ["/api/v1/auth/token", right, "10.0.0.1"],
        ["/api/v1/auth/token", right, "10.0.0.2"], *register])

    assert answers[:3] == [(401, "invalid_credentials")] * 3
    assert answers[3] == (429, "too_many_requests")  # even the right password, from there
    assert answers[4] == (200, None)  # another address is not blocked
    assert [status for status, _ in answers[5:]] == [201, 201, 429]
