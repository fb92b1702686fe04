"""Tokens: they expire, refresh once, can be revoked, and forged or tampered ones are refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from gridmgr.errors import Forbidden
from gridmgr.people.tokens import TokenError, encode_token
from mobile_api.auth import auth_optional, auth_required, current_user


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _error_code(response) -> str:
    return response.get_json()["error"]["code"]


@pytest.fixture
def inspector(make_user):
    return make_user("inspector", username="wang")


def test_an_expired_access_token_is_refused(client, inspector):
    token = encode_token(inspector, "access", now=datetime.now(UTC) - timedelta(hours=2),
                         lifetime=3600)

    response = client.get("/api/v1/me", headers=_bearer(token))

    assert response.status_code == 401
    assert _error_code(response) == "token_expired"


def test_tokens_live_as_long_as_configured(app, client, inspector, auth):
    default = app.config["GRIDMGR_ACCESS_TOKEN_SECONDS"]
    app.config["GRIDMGR_ACCESS_TOKEN_SECONDS"] = 60
    try:
        auth.login("wang")
    finally:
        app.config["GRIDMGR_ACCESS_TOKEN_SECONDS"] = default

    claims = jwt.decode(auth.tokens["access_token"], options={"verify_signature": False})
    refresh = jwt.decode(auth.tokens["refresh_token"], options={"verify_signature": False})
    assert auth.tokens["expires_in"] == 60 and claims["exp"] - claims["iat"] == 60
    assert refresh["exp"] - refresh["iat"] == 30 * 24 * 3600


def test_a_refresh_gives_a_new_pair_and_the_old_refresh_token_is_spent(client, inspector, auth):
    auth.login("wang")
    first = dict(auth.tokens)

    response = auth.refresh()

    assert response.status_code == 200
    assert auth.tokens["access_token"] != first["access_token"]
    assert client.get("/api/v1/me", headers=auth.headers).status_code == 200
    replay = client.post("/api/v1/auth/refresh", headers=_bearer(first["refresh_token"]))
    assert replay.status_code == 401 and _error_code(replay) == "token_revoked"


def test_an_access_token_cannot_refresh_and_a_refresh_token_cannot_act(client, inspector, auth):
    auth.login("wang")

    refresh_with_access = client.post("/api/v1/auth/refresh",
                                      headers=_bearer(auth.tokens["access_token"]))
    act_with_refresh = client.get("/api/v1/me", headers=_bearer(auth.tokens["refresh_token"]))

    assert refresh_with_access.status_code == act_with_refresh.status_code == 401
    assert _error_code(refresh_with_access) == _error_code(act_with_refresh) == "token_invalid"


def test_a_revoked_token_is_refused(client, inspector, auth):
    auth.login("wang")

    revoked = client.post("/api/v1/auth/revoke", headers=auth.headers,
                          json={"token": auth.tokens["refresh_token"]})

    assert revoked.status_code == 204
    me = client.get("/api/v1/me", headers=auth.headers)
    assert me.status_code == 401 and _error_code(me) == "token_revoked"
    refreshed = auth.refresh()
    assert refreshed.status_code == 401 and _error_code(refreshed) == "token_revoked"


def test_signing_out_with_a_refresh_token_alone_works(client, inspector, auth):
    auth.login("wang")

    response = client.post("/api/v1/auth/revoke", headers=_bearer(auth.tokens["refresh_token"]))

    assert response.status_code == 204
    assert _error_code(auth.refresh()) == "token_revoked"


def test_a_tampered_token_is_refused(client, inspector, make_user, auth):
    admin = make_user("admin")
    auth.login("wang")
    header, payload, signature = auth.tokens["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(sub=str(admin.id), role="admin")  # pretend to be the administrator
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    response = client.get("/api/v1/admin/users", headers=_bearer(f"{header}.{forged}.{signature}"))

    assert response.status_code == 401 and _error_code(response) == "token_invalid"


def test_a_token_signed_with_alg_none_is_refused(client, inspector):
    now = datetime.now(UTC)
    unsigned = jwt.encode({"sub": str(inspector.id), "type": "access", "jti": "x" * 32,
                           "iat": now, "exp": now + timedelta(hours=1)}, None, algorithm="none")

    response = client.get("/api/v1/me", headers=_bearer(unsigned))

    assert response.status_code == 401 and _error_code(response) == "token_invalid"


def test_a_token_signed_with_another_key_is_refused(client, inspector):
    now = datetime.now(UTC)
    foreign = jwt.encode({"sub": str(inspector.id), "type": "access", "jti": "y" * 32,
                          "iat": now, "exp": now + timedelta(hours=1)},
                         "another-secret-that-is-long-enough-for-hs256", algorithm="HS256")

    response = client.get("/api/v1/me", headers=_bearer(foreign))

    assert response.status_code == 401 and _error_code(response) == "token_invalid"


@pytest.mark.parametrize("header", ["Basic d2FuZzpwdw==", "Bearer", "Bearer not-a-jwt"])
def test_a_malformed_authorization_header_is_refused(client, header):
    response = client.get("/api/v1/me", headers={"Authorization": header})

    assert response.status_code == 401 and _error_code(response) == "token_invalid"


def test_a_disabled_users_tokens_stop_working(client, inspector, make_user, auth_headers, auth):
    admin = make_user("admin")
    auth.login("wang")

    disabled = client.delete(f"/api/v1/admin/users/{inspector.id}", headers=auth_headers(admin))

    assert disabled.status_code == 204
    me = client.get("/api/v1/me", headers=auth.headers)
    assert me.status_code == 401 and _error_code(me) == "token_invalid"


def test_optional_sign_in_knows_the_user_or_nobody_and_still_refuses_a_bad_token(
        app, inspector, auth_headers):
    @auth_optional
    def who():
        return current_user().username if current_user() else "anonymous"

    with app.test_request_context("/"):
        assert who() == "anonymous"
    with app.test_request_context("/", headers=auth_headers(inspector)):
        assert who() == "wang"
    with app.test_request_context("/", headers=_bearer("garbage")), \
            pytest.raises(TokenError) as refused:
        who()
    assert refused.value.code == "token_invalid"


def test_a_role_restricted_view_refuses_other_roles_with_403(app, inspector, make_user,
                                                             auth_headers):
    @auth_required("operator", "duty_chief")
    def file_queue():
        return "queue"

    with app.test_request_context("/", headers=auth_headers(make_user("operator"))):
        assert file_queue() == "queue"
    with app.test_request_context("/", headers=auth_headers(inspector)), \
            pytest.raises(Forbidden) as refused:
        file_queue()
    assert refused.value.status == 403
