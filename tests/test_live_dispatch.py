"""Reports and dispatches reach the right phones live, across processes and Redis outages.

Every test runs real ``gridmgr serve`` processes and real python-socketio clients; reports go
through ``POST /api/v1/reports`` and cases are filed and dispatched by the real workflow."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest
from dispatch_world import GRID_A, POINT_A
from live_server import LiveClient, PrivateRedis, running_server, wait_for
from redis import Redis

from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.people.tokens import encode_token

SHARED_REDIS = "redis://127.0.0.1:6379/{db}"


def token(user) -> str:
    return encode_token(user, "access")


def post_report(server, reporter, point=POINT_A) -> dict:
    """``POST /api/v1/reports`` as the reporter's phone does; the JSON answer (must be 201)."""
    body = json.dumps({"lon": point[0], "lat": point[1], "category": "E0101",
                       "description": "垃圾堆放", "client_id": uuid.uuid4().hex}).encode()
    request = urllib.request.Request(server.url + "/api/v1/reports", data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token(reporter)}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return json.load(response)


def file_and_dispatch(case_id: int, operator) -> dict:
    """Filing a case of an auto-dispatch category dispatches it by the rules at once."""
    return take_step(case_id, "file", operator, StepInput())


def case_ids(client: LiveClient, event: str) -> list[int]:
    return [data["id"] for data in client.named(event)]


@pytest.fixture
def redis_db():
    """A Redis database number of its own on the machine's Redis, emptied afterwards."""
    number = 7 + uuid.uuid4().int % 8
    url = SHARED_REDIS.format(db=number)
    Redis.from_url(url).ping()
    yield url
    Redis.from_url(url).flushdb()


def test_the_on_duty_worker_of_the_grid_receives_the_dispatch_and_the_street_sees_it(
        app, people, tmp_path):
    with running_server(app, tmp_path / "server") as server:
        worker = LiveClient(server.url, token(people["worker"]))
        other = LiveClient(server.url, token(people["other"]))
        street = LiveClient(server.url, token(people["street"]))
        try:
            case = post_report(server, people["reporter"])["case"]
            dispatched = file_and_dispatch(case["id"], people["operator"])
            assert dispatched["worker_id"] == people["worker"].id

            assert wait_for(lambda: case_ids(worker, "case.dispatched") == [case["id"]])
            assert wait_for(lambda: case_ids(street, "case.dispatched") == [case["id"]])
            event = worker.named("case.dispatched")[0]
            for key in ("id", "code", "state", "category", "lon", "lat", "grid_code",
                        "deadline", "clock", "seq"):
                assert key in event, key
            assert (event["state"], event["grid_code"], event["category"]) == (
                "dispatched", GRID_A, "E0101")
            assert case_ids(street, "case.created") == [case["id"]]
            wait_for(lambda: False, timeout=0.3)
            assert other.events == []
        finally:
            for client in (worker, other, street):
                client.close()


def test_a_report_posted_to_one_server_reaches_a_worker_connected_to_another(
        app, people, tmp_path, redis_db):
    channel = f"gridmgr-test-{uuid.uuid4().hex[:8]}"
    with running_server(app, tmp_path / "one", redis_url=redis_db, channel=channel) as one, \
            running_server(app, tmp_path / "two", redis_url=redis_db, channel=channel) as two:
        worker = LiveClient(two.url, token(people["worker"]))
        street = LiveClient(two.url, token(people["street"]))
        street_on_one = LiveClient(one.url, token(people["street"]))
        try:
            case = post_report(one, people["reporter"])["case"]
            assert wait_for(lambda: case_ids(street, "case.created") == [case["id"]])
            file_and_dispatch(case["id"], people["operator"])
            assert wait_for(lambda: case_ids(worker, "case.dispatched") == [case["id"]])
            assert wait_for(lambda: case_ids(street_on_one, "case.dispatched") == [case["id"]])
            wait_for(lambda: False, timeout=0.5)
            # Exactly once on each side, though both servers share the Redis queue.
            assert case_ids(street, "case.dispatched") == [case["id"]]
            assert case_ids(street_on_one, "case.created") == [case["id"]]
            assert len(set(street.seqs())) == len(street.seqs())
        finally:
            for client in (worker, street, street_on_one):
                client.close()


def test_with_redis_down_a_report_is_accepted_and_its_events_still_arrive(
        app, people, tmp_path):
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        with running_server(app, tmp_path / "server", redis_url=redis.url) as server:
            worker = LiveClient(server.url, token(people["worker"]))
            try:
                redis.kill()
                first = post_report(server, people["reporter"])["case"]  # 201 without Redis
                file_and_dispatch(first["id"], people["operator"])
                assert wait_for(lambda: case_ids(worker, "case.dispatched") == [first["id"]])
                last_seq = worker.seqs()[-1]
                worker.close()

                second = post_report(server, people["reporter"])["case"]
                file_and_dispatch(second["id"], people["operator"])
                redis.start()
                # Reconnecting with the last sequence number brings what was missed.
                worker = LiveClient(server.url, token(people["worker"]), since=last_seq)
                assert wait_for(lambda: case_ids(worker, "case.dispatched") == [second["id"]])
                third = post_report(server, people["reporter"])["case"]
                file_and_dispatch(third["id"], people["operator"])
                assert wait_for(lambda: case_ids(worker, "case.dispatched") == [
                    second["id"], third["id"]])
            finally:
                worker.close()
    finally:
        redis.kill()
