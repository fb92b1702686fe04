"""The outbox: an event commits with its change or not at all, and sequence numbers follow
commit order, so a relay that has delivered N never sees N-1 appear afterwards."""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from gridmgr.extensions import db
from gridmgr.live import publish


def events() -> list:
    db.session.rollback()
    return db.session.execute(text("SELECT seq, event, payload, rooms FROM live_events "
                                   "ORDER BY seq")).all()


def test_an_event_is_written_only_if_its_transaction_commits(app_ctx):
    publish("case.updated", {"id": 1}, ["city:1"])
    db.session.rollback()
    assert events() == []
    publish("case.updated", {"id": 2, "at": __import__("datetime").date(2026, 11, 26)},
            ["region:110101", "city:1", "city:1"])
    db.session.commit()
    (row,) = events()
    assert row.payload == {"id": 2, "at": "2026-11-26"} and row.rooms == ["city:1",
                                                                          "region:110101"]


def test_sequence_numbers_follow_commit_order(app):
    """A transaction that drew its number first but commits late holds the others back."""
    flushed, release = threading.Event(), threading.Event()
    committed: dict[str, float] = {}

    def slow():
        with app.app_context():
            publish("case.updated", {"who": "slow"}, ["city:1"])
            db.session.flush()  # the sequence number is drawn here
            flushed.set()
            release.wait(5)
            db.session.commit()
            committed["slow"] = time.monotonic()
            db.session.remove()

    def quick():
        with app.app_context():
            flushed.wait(5)
            publish("case.updated", {"who": "quick"}, ["city:1"])
            db.session.commit()
            committed["quick"] = time.monotonic()
            db.session.remove()

    threads = [threading.Thread(target=slow), threading.Thread(target=quick)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    assert "quick" not in committed  # waits for the slow one's commit
    release.set()
    for thread in threads:
        thread.join(10)
    assert committed["slow"] <= committed["quick"]
    with app.app_context():
        assert [row.payload["who"] for row in events()] == ["slow", "quick"]
