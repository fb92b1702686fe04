"""The live channel in gevent mode (``GRIDMGR_ASYNC_MODE=gevent``): a real ``gridmgr serve``
patched by gevent, real python-socketio clients, reports through ``POST /api/v1/reports``."""

from __future__ import annotations

from dispatch_world import GRID_A
from live_server import LiveClient, running_server, wait_for
from test_live_dispatch import case_ids, file_and_dispatch, post_report, token

GEVENT = {"GRIDMGR_ASYNC_MODE": "gevent"}


def test_a_gevent_server_delivers_the_dispatch_to_the_worker_of_the_grid_only(
        app, people, tmp_path):
    with running_server(app, tmp_path / "server", extra_env=GEVENT) as server:
        assert "(gevent)" in server.log.read_text()
        worker = LiveClient(server.url, token(people["worker"]))
        other = LiveClient(server.url, token(people["other"]))
        street = LiveClient(server.url, token(people["street"]))
        try:
            case = post_report(server, people["reporter"])["case"]
            assert file_and_dispatch(case["id"], people["operator"])["worker_id"] == \
                people["worker"].id

            assert wait_for(lambda: case_ids(worker, "case.dispatched") == [case["id"]])
            assert wait_for(lambda: case_ids(street, "case.dispatched") == [case["id"]])
            event = worker.named("case.dispatched")[0]
            assert (event["state"], event["grid_code"]) == ("dispatched", GRID_A)
            wait_for(lambda: False, timeout=0.3)
            assert other.events == []
        finally:
            for client in (worker, other, street):
                client.close()


def test_a_gevent_server_replays_what_a_reconnecting_worker_missed(app, people, tmp_path):
    with running_server(app, tmp_path / "server", extra_env=GEVENT) as server:
        worker = LiveClient(server.url, token(people["worker"]))
        first = post_report(server, people["reporter"])["case"]
        file_and_dispatch(first["id"], people["operator"])
        assert wait_for(lambda: case_ids(worker, "case.dispatched") == [first["id"]])
        last_seq = worker.seqs()[-1]
        worker.close()

        missed = []
        for _ in range(3):
            case = post_report(server, people["reporter"])["case"]
            file_and_dispatch(case["id"], people["operator"])
            missed.append(case["id"])

        again = LiveClient(server.url, token(people["worker"]), since=last_seq)
        try:
            assert wait_for(lambda: case_ids(again, "case.dispatched") == missed)
            seqs = again.seqs()
            assert seqs == sorted(set(seqs)) and seqs[0] > last_seq
        finally:
            again.close()
