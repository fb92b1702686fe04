"""Order across reconnections: a live client that drops and comes back with its last ``seq``
gets every event of its rooms once and in order, from whichever server process it reaches,
while writers keep committing (one of them slowly, so events become visible out of the order
they were written in)."""

from __future__ import annotations

import threading
import time

import pytest
from live_server import LiveClient, running_server, wait_for
from sqlalchemy import text

from gridmgr.extensions import db
from gridmgr.live import publish
from gridmgr.live.rooms import case_rooms
from gridmgr.people.tokens import encode_token

GRID_A = "110101001001001"
OTHER_STREET_GRID = "110101002001001"
GEVENT = {"GRIDMGR_ASYNC_MODE": "gevent"}
RECONNECTIONS = 6


@pytest.fixture
def two_servers(app, tmp_path):
    with running_server(app, tmp_path / "one", extra_env=GEVENT) as one, \
            running_server(app, tmp_path / "two", extra_env=GEVENT) as two:
        yield one, two


class Writers:
    """Inspectors' changes committed by three threads: two quick writers and one that holds
    its transaction open after writing, so later events commit before its own."""

    def __init__(self, app, city_id: int):
        self.app, self.city_id = app, city_id
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(n,), daemon=True)
                        for n in range(3)]

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _write(self, writer: int) -> None:
        with self.app.app_context():
            n = 0
            while not self.stop.is_set():
                n += 1
                grid = OTHER_STREET_GRID if n % 4 == 0 else GRID_A  # not every event is ours
                for step in range(1 + n % 2):  # some transactions carry two events
                    publish("case.updated", {"case": {"id": writer * 100_000 + n,
                                                      "action": f"step{step}"}},
                            case_rooms(city_id=self.city_id, grid_code=grid))
                if writer == 2:
                    db.session.flush()
                    time.sleep(0.15)  # the row has its id; the quick writers commit past it
                db.session.commit()
                time.sleep(0.01)
            db.session.remove()


def kept(room: str, first: int, last: int) -> list[int]:
    db.session.rollback()
    return db.session.execute(text(
        "SELECT seq FROM live_events WHERE :room = ANY(rooms) AND seq BETWEEN :first AND :last "
        "ORDER BY seq"), {"room": room, "first": first, "last": last}).scalars().all()


def test_a_street_wall_reconnecting_to_either_server_while_cases_change_gets_every_event_in_order(
        app, two_servers, make_user):
    inspector = make_user("inspector", region_code=GRID_A)
    token = encode_token(inspector, "access")
    clients = [LiveClient(two_servers[0].url, token)]
    with Writers(app, inspector.city_id):
        for turn in range(1, RECONNECTIONS + 1):
            assert wait_for(lambda: len(clients[-1].seqs()) >= 10, timeout=30)
            clients[-1].close()  # the network drops; the wall keeps the last seq it saw
            since = max(seq for client in clients for seq in client.seqs())
            time.sleep(0.5)  # events keep coming meanwhile: a replay, then the live stream
            clients.append(LiveClient(two_servers[turn % 2].url, token, since=since))
        assert wait_for(lambda: len(clients[-1].seqs()) >= 10, timeout=30)
    room = f"region:{GRID_A}"

    def arrived() -> list[int]:
        return [seq for client in clients for seq in client.seqs()]

    try:
        # Every event committed before the writers stopped reaches the last connection.
        assert wait_for(lambda: max(arrived()) == kept(room, 0, 2**62)[-1], timeout=10)
        seen = arrived()
        assert seen == kept(room, seen[0], seen[-1])
        assert all(client.named("replay.truncated") == [] for client in clients)
    finally:
        clients[-1].close()
