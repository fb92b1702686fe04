"""A live connection lasts only as long as its token and its user's access: signing out, a
disabled account, a new role or scope and a new password close it within seconds, on a real
server process, and old tokens stop working after a password change."""

from __future__ import annotations

import pytest
from live_server import LiveClient, refusal, running_server, wait_for
from sqlalchemy import func, select

from gridmgr.extensions import db
from gridmgr.live import LiveEvent, publish
from gridmgr.live.rooms import case_rooms
from gridmgr.people.models import User
from gridmgr.people.tokens import issue_tokens

GRID = "110101001001001"
OTHER_STREET_GRID = "110101002001001"
OTHER_COMMUNITY = OTHER_STREET_GRID[:12]
NEW_PASSWORD = "a-new-password-456"


@pytest.fixture
def server(app, tmp_path):
    with running_server(app, tmp_path / "server") as running:
        yield running


@pytest.fixture
def worker(make_user):
    make_user("operator", region_code=OTHER_STREET_GRID)  # the other street exists
    return make_user("inspector", username="wang", region_code=GRID)


@pytest.fixture
def admin(make_user):
    return make_user("admin", username="root")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def case_dispatched(city_id: int, grid: str, case_id: int) -> None:
    """A case dispatched on ``grid``, written with its event in one transaction."""
    publish("case.dispatched", {"case": {"id": case_id, "grid_code": grid}},
            case_rooms(city_id=city_id, grid_code=grid))
    db.session.commit()


def ended(client: LiveClient) -> bool:
    return "/live" not in client.sio.namespaces


def assert_ended_with(client: LiveClient, code: str) -> None:
    assert wait_for(lambda: ended(client), timeout=5), "the connection is still open"
    assert [notice["code"] for notice in client.named("session.ended")] == [code]


def assert_hears_nothing_more(client: LiveClient, worker: User) -> None:
    case_dispatched(worker.city_id, GRID, 99)
    assert wait_for(lambda: client.named("case.dispatched"), timeout=1.5) is False


def test_a_worker_who_signs_out_on_one_phone_loses_that_phones_channel_only(
        server, client, worker):
    phone, tablet = issue_tokens(worker), issue_tokens(worker)
    on_phone = LiveClient(server.url, phone["access_token"])
    on_tablet = LiveClient(server.url, tablet["access_token"])
    try:
        signed_out = client.post("/api/v1/auth/revoke", headers=bearer(phone["access_token"]),
                                 json={"token": phone["refresh_token"]})

        assert signed_out.status_code == 204
        assert_ended_with(on_phone, "token_revoked")
        case_dispatched(worker.city_id, GRID, 1)
        assert wait_for(lambda: on_tablet.named("case.dispatched"))
        assert on_phone.named("case.dispatched") == []
        assert not ended(on_tablet)
        assert refusal(server.url, {"token": phone["access_token"]})["data"]["code"] == (
            "token_revoked")
    finally:
        on_phone.close()
        on_tablet.close()


def test_a_disabled_worker_is_disconnected_and_hears_nothing_more(
        server, client, worker, admin, auth_headers):
    listening = LiveClient(server.url, issue_tokens(worker)["access_token"])
    try:
        disabled = client.delete(f"/api/v1/admin/users/{worker.id}", headers=auth_headers(admin))

        assert disabled.status_code == 204
        assert_ended_with(listening, "token_invalid")
        assert_hears_nothing_more(listening, worker)
    finally:
        listening.close()


def test_a_worker_moved_to_another_street_no_longer_hears_the_old_one(
        server, client, worker, admin, auth_headers):
    token = issue_tokens(worker)["access_token"]
    listening = LiveClient(server.url, token)
    try:
        moved = client.patch(f"/api/v1/admin/users/{worker.id}", headers=auth_headers(admin),
                             json={"region_code": OTHER_COMMUNITY})

        assert moved.status_code == 200, moved.get_json()
        assert_ended_with(listening, "access_changed")
        assert_hears_nothing_more(listening, worker)
    finally:
        listening.close()
    again = LiveClient(server.url, token)  # the token still holds; the rooms are the new ones
    try:
        assert again.call("rooms")["rooms"] == sorted([f"worker:{worker.id}",
                                                        f"region:{OTHER_COMMUNITY}"])
        case_dispatched(worker.city_id, GRID, 2)
        case_dispatched(worker.city_id, OTHER_STREET_GRID, 3)
        assert wait_for(lambda: again.named("case.dispatched"))
        assert [e["case"]["id"] for e in again.named("case.dispatched")] == [3]
    finally:
        again.close()


def test_a_worker_made_a_citizen_loses_the_region_channel(
        server, client, worker, admin, auth_headers):
    listening = LiveClient(server.url, issue_tokens(worker)["access_token"])
    try:
        demoted = client.patch(f"/api/v1/admin/users/{worker.id}", headers=auth_headers(admin),
                               json={"role": "citizen", "region_code": None})

        assert demoted.status_code == 200, demoted.get_json()
        assert_ended_with(listening, "access_changed")
        assert_hears_nothing_more(listening, worker)
    finally:
        listening.close()


def test_a_worker_who_changes_her_password_ends_every_old_token_and_channel(
        server, client, worker, auth):
    assert auth.login("wang").status_code == 200
    old = auth.tokens
    listening = LiveClient(server.url, old["access_token"])
    try:
        changed = client.patch("/api/v1/me", headers=bearer(old["access_token"]),
                               json={"current_password": "pw-secret-123",
                                     "password": NEW_PASSWORD})

        assert changed.status_code == 200, changed.get_json()
        assert_ended_with(listening, "token_revoked")
        assert_hears_nothing_more(listening, worker)
    finally:
        listening.close()
    me = client.get("/api/v1/me", headers=bearer(old["access_token"]))
    refreshed = client.post("/api/v1/auth/refresh", headers=bearer(old["refresh_token"]))
    assert (me.status_code, me.get_json()["error"]["code"]) == (401, "token_revoked")
    assert (refreshed.status_code, refreshed.get_json()["error"]["code"]) == (
        401, "token_revoked")
    assert refusal(server.url, {"token": old["access_token"]})["data"]["code"] == (
        "token_revoked")
    assert auth.login("wang", NEW_PASSWORD).status_code == 200
    assert client.get("/api/v1/me", headers=auth.headers).status_code == 200


def test_a_password_set_by_an_administrator_ends_the_workers_tokens_and_channel(
        server, client, worker, admin, auth_headers, auth):
    assert auth.login("wang").status_code == 200
    old = auth.tokens
    listening = LiveClient(server.url, old["access_token"])
    try:
        reset = client.patch(f"/api/v1/admin/users/{worker.id}", headers=auth_headers(admin),
                             json={"password": NEW_PASSWORD})

        assert reset.status_code == 200, reset.get_json()
        assert_ended_with(listening, "token_revoked")
    finally:
        listening.close()
    assert client.get("/api/v1/me", headers=bearer(old["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh",
                       headers=bearer(old["refresh_token"])).status_code == 401
    assert auth.login("wang", NEW_PASSWORD).status_code == 200


def test_a_wrong_current_password_changes_nothing_and_keeps_the_channel(
        server, client, worker, auth):
    assert auth.login("wang").status_code == 200
    listening = LiveClient(server.url, auth.tokens["access_token"])
    try:
        refused = client.patch("/api/v1/me", headers=auth.headers,
                               json={"current_password": "not-my-password",
                                     "password": NEW_PASSWORD})

        assert (refused.status_code, refused.get_json()["error"]["code"]) == (
            422, "wrong_password")
        assert db.session.scalar(select(func.count()).select_from(LiveEvent)) == 0
        case_dispatched(worker.city_id, GRID, 4)
        assert wait_for(lambda: listening.named("case.dispatched"))
        assert not ended(listening)
        assert client.get("/api/v1/me", headers=auth.headers).status_code == 200
    finally:
        listening.close()


def test_a_disabled_worker_is_disconnected_from_every_server_process(
        app, client, worker, admin, auth_headers, tmp_path):
    token = issue_tokens(worker)["access_token"]
    with running_server(app, tmp_path / "threading") as first, \
            running_server(app, tmp_path / "gevent",
                           extra_env={"GRIDMGR_ASYNC_MODE": "gevent"}) as second:
        assert "(gevent)" in second.log.read_text()
        on_first = LiveClient(first.url, token)
        on_second = LiveClient(second.url, token)
        try:
            disabled = client.delete(f"/api/v1/admin/users/{worker.id}",
                                     headers=auth_headers(admin))

            assert disabled.status_code == 204
            assert_ended_with(on_first, "token_invalid")
            assert_ended_with(on_second, "token_invalid")
        finally:
            on_first.close()
            on_second.close()
