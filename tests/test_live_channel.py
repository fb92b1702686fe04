"""The /live channel against a real server: who is let in, which rooms, what arrives, replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from live_server import LiveClient, refusal, running_server, wait_for

from gridmgr.extensions import db
from gridmgr.live import publish
from gridmgr.live.rooms import case_rooms
from gridmgr.people.tokens import encode_token

GRID_A = "110101001001001"
GRID_B = "110101001001002"
OTHER_STREET_GRID = "110101002001001"


@pytest.fixture
def server(app, tmp_path):
    with running_server(app, tmp_path / "server") as running:
        yield running


def token(user, **kwargs) -> str:
    return encode_token(user, "access", **kwargs)


def file_case_event(user_city_id: int, grid: str, worker_id: int | None, case_id: int,
                    event: str = "case.dispatched") -> None:
    """A case change written with its event in one transaction (as the cases workflow does)."""
    publish(event, {"case": {"id": case_id, "code": f"T{case_id:06d}", "state": "dispatched",
                             "grid_code": grid, "worker_id": worker_id}},
            case_rooms(city_id=user_city_id, grid_code=grid, worker_id=worker_id))
    db.session.commit()


def test_a_client_without_a_valid_token_is_refused(server, make_user):
    worker = make_user("inspector", region_code=GRID_A)
    expired = token(worker, now=datetime.now(UTC) - timedelta(hours=2), lifetime=60)
    refresh = encode_token(worker, "refresh")
    assert refusal(server.url, {})["data"]["code"] == "token_missing"
    assert refusal(server.url, {"token": "not-a-token"})["data"]["code"] == "token_invalid"
    assert refusal(server.url, {"token": refresh})["data"]["code"] == "token_invalid"
    assert refusal(server.url, {"token": expired})["data"]["code"] == "token_expired"
    assert refusal(server.url, {"token": token(worker), "since": "x"})["data"]["code"] == (
        "invalid_since")


def test_a_worker_receives_dispatches_of_own_grid_and_the_street_sees_them(server, make_user):
    worker_a = make_user("inspector", region_code=GRID_A)
    worker_b = make_user("inspector", region_code=GRID_B)
    street = make_user("duty_chief", region_code=GRID_A[:9])
    other_street = make_user("duty_chief", region_code=OTHER_STREET_GRID[:9])
    clients = {name: LiveClient(server.url, token(user)) for name, user in
               [("a", worker_a), ("b", worker_b), ("street", street),
                ("other", other_street)]}
    try:
        file_case_event(worker_a.city_id, GRID_A, worker_a.id, 1)
        assert wait_for(lambda: clients["a"].named("case.dispatched")
                        and clients["street"].named("case.dispatched"))
        received = clients["a"].named("case.dispatched")[0]
        assert received["case"]["id"] == 1 and received["seq"] >= 1
        assert clients["street"].named("case.dispatched")[0]["seq"] == received["seq"]
        file_case_event(worker_a.city_id, OTHER_STREET_GRID, None, 2)
        assert wait_for(lambda: clients["other"].named("case.dispatched"))
        assert clients["b"].events == []
        assert [e["case"]["id"] for e in clients["a"].named("case.dispatched")] == [1]
        assert [e["case"]["id"] for e in clients["street"].named("case.dispatched")] == [1]
    finally:
        for client in clients.values():
            client.close()


def test_a_worker_cannot_listen_to_another_worker_or_another_street(server, make_user):
    worker = make_user("inspector", region_code=GRID_A)
    other = make_user("inspector", region_code=OTHER_STREET_GRID)
    client = LiveClient(server.url, token(worker))
    try:
        assert client.call("rooms")["rooms"] == sorted([f"worker:{worker.id}",
                                                         f"region:{GRID_A}"])
        for room in (f"worker:{other.id}", f"region:{OTHER_STREET_GRID[:9]}",
                     f"region:{GRID_A[:9]}", f"city:{worker.city_id}"):
            answer = client.call("join", {"room": room})
            assert answer["ok"] is False and answer["error"]["code"] == "forbidden"
        assert client.call("rooms")["rooms"] == sorted([f"worker:{worker.id}",
                                                         f"region:{GRID_A}"])
        file_case_event(worker.city_id, OTHER_STREET_GRID, other.id, 7)
        file_case_event(worker.city_id, GRID_A, None, 8)
        assert wait_for(lambda: client.named("case.dispatched"))
        assert [e["case"]["id"] for e in client.named("case.dispatched")] == [8]
    finally:
        client.close()


def test_a_street_centre_may_join_a_grid_of_its_street(server, make_user):
    centre = make_user("duty_chief", region_code=GRID_A[:9])
    client = LiveClient(server.url, token(centre))
    try:
        assert client.call("join", {"room": f"region:{GRID_B}"}) == {
            "ok": True, "room": f"region:{GRID_B}"}
        assert client.call("join", {"room": f"region:{OTHER_STREET_GRID}"})["ok"] is False
    finally:
        client.close()


def test_a_reconnecting_worker_gets_exactly_the_missed_events_in_order(server, make_user):
    worker = make_user("inspector", region_code=GRID_A)
    client = LiveClient(server.url, token(worker))
    file_case_event(worker.city_id, GRID_A, worker.id, 1)
    assert wait_for(lambda: client.named("case.dispatched"))
    last_seq = client.seqs()[-1]
    client.close()
    file_case_event(worker.city_id, OTHER_STREET_GRID, None, 99)  # not for this worker
    for case_id in (2, 3, 4):
        file_case_event(worker.city_id, GRID_A, worker.id, case_id)
    again = LiveClient(server.url, token(worker), since=last_seq)
    try:
        file_case_event(worker.city_id, GRID_A, worker.id, 5)  # live, after the replay
        assert wait_for(lambda: len(again.named("case.dispatched")) >= 4)
        assert wait_for(lambda: False, timeout=0.5) is False  # let any duplicate arrive
        ids = [e["case"]["id"] for e in again.named("case.dispatched")]
        assert ids == [2, 3, 4, 5]
        seqs = again.seqs()
        assert seqs == sorted(set(seqs)) and seqs[0] > last_seq
    finally:
        again.close()


def test_a_client_further_behind_than_the_kept_outbox_is_told_to_reload(server, make_user):
    from sqlalchemy import text

    from gridmgr.dispatch.jobs import prune_outbox

    worker = make_user("inspector", region_code=GRID_A)
    watcher = LiveClient(server.url, token(worker))  # starts the server's relay
    for case_id in (1, 2, 3):
        file_case_event(worker.city_id, GRID_A, worker.id, case_id)
    assert wait_for(lambda: len(watcher.named("case.dispatched")) == 3)
    watcher.close()
    db.session.execute(text("UPDATE live_events SET created_at = now() - interval '9 days' "
                            "WHERE seq < 3"))
    db.session.commit()
    assert prune_outbox(7) == 2

    behind = LiveClient(server.url, token(worker), since=0)
    try:
        assert wait_for(lambda: behind.named("replay.truncated"))
        notice = behind.named("replay.truncated")[0]
        assert notice["since"] == 0 and notice["seq"] == 3
        assert behind.named("case.dispatched") == []
    finally:
        behind.close()
