"""The outbox: an event commits with its change or not at all; relays number events in the
order they became visible, so one that has delivered N never sees N-1 appear afterwards, and
no publisher waits for another's commit."""

from __future__ import annotations

import threading
import time

import psycopg2
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gridmgr.extensions import db
from gridmgr.live import publish
from gridmgr.live.outbox import SEQUENCE_BATCH, sequence_pending


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


def numbered(app) -> None:
    """What a relay does when woken: number the committed, unnumbered rows."""
    conn = psycopg2.connect(_dsn(app))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            sequence_pending(cur)
    finally:
        conn.close()


def _dsn(app) -> str:
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def test_a_slow_publisher_holds_no_other_back_and_numbers_follow_visibility(app):
    """A transaction that wrote its event first but commits late neither delays the others'
    commits nor takes a number below one already handed out."""
    flushed, release = threading.Event(), threading.Event()
    committed: dict[str, float] = {}

    def slow():
        with app.app_context():
            publish("case.updated", {"who": "slow"}, ["city:1"])
            db.session.flush()  # the row (and its id) is written here
            flushed.set()
            release.wait(10)
            db.session.commit()
            committed["slow"] = time.monotonic()
            db.session.remove()

    thread = threading.Thread(target=slow)
    thread.start()
    assert flushed.wait(5)
    with app.app_context():
        publish("case.updated", {"who": "quick"}, ["city:1"])
        db.session.commit()
        committed["quick"] = time.monotonic()
        db.session.remove()
    assert "slow" not in committed  # the quick one did not wait for the slow one
    numbered(app)
    with app.app_context():
        assert [(row.seq, row.payload["who"]) for row in events()] == [(1, "quick")]
    release.set()
    thread.join(10)
    numbered(app)
    with app.app_context():
        rows = events()
        assert [(row.seq, row.payload["who"]) for row in rows] == [(1, "quick"), (2, "slow")]
        ids = dict(db.session.execute(text("SELECT payload->>'who', id FROM live_events")).all())
        assert ids["slow"] < ids["quick"]  # written first, numbered second


def test_relays_numbering_at_once_give_each_event_one_number_in_write_order(app):
    with app.app_context():
        for n in range(SEQUENCE_BATCH + 300):
            publish("case.updated", {"n": n}, ["city:1"])
        db.session.commit()
    errors: list[BaseException] = []

    def relay():
        try:
            numbered(app)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with app.app_context():
        rows = events()
        assert [row.seq for row in rows] == list(range(1, SEQUENCE_BATCH + 301))
        assert [row.payload["n"] for row in rows] == list(range(SEQUENCE_BATCH + 300))


def test_a_starting_relay_numbers_what_came_before_and_pushes_only_what_comes_after(
        app, monkeypatch):
    from gridmgr.live import relay as relay_module

    with app.app_context():
        for n in range(3):
            publish("case.updated", {"n": n}, ["city:1"])
        db.session.commit()
    emitted: list[dict] = []
    monkeypatch.setattr(relay_module, "_emit", lambda event, data, to: emitted.append(data))
    relay = relay_module.Relay()
    relay.start(app)
    try:
        assert relay.delivered == 3 and emitted == []  # history, replayable with since
        with app.app_context():
            publish("case.updated", {"n": 3}, ["city:1"])
            db.session.commit()
        assert relay.caught_up(4, timeout=5)
        assert [(data["n"], data["seq"]) for data in emitted] == [(3, 4)]
    finally:
        relay.stop()


def test_a_writer_overlapping_a_notifying_one_stays_silent_and_is_still_delivered_at_once(
        app, monkeypatch):
    """PostgreSQL commits notifying transactions one at a time, so a writer sends no NOTIFY
    while another's is on its way; the relay, woken by that one, looks again shortly after and
    delivers the silent writer's event long before its poll (set to 30 s here)."""
    from gridmgr.live import relay as relay_module

    emitted: list[dict] = []
    monkeypatch.setattr(relay_module, "_emit", lambda event, data, to: emitted.append(data))
    monkeypatch.setitem(app.config, "GRIDMGR_LIVE_POLL_SECONDS", 30)
    relay = relay_module.Relay()
    relay.start(app)
    first, second = psycopg2.connect(_dsn(app)), psycopg2.connect(_dsn(app))
    listener = psycopg2.connect(_dsn(app))
    listener.autocommit = True
    try:
        listener.cursor().execute("LISTEN gridmgr_live")
        insert = ("INSERT INTO live_events (event, payload, rooms) "
                  "VALUES ('case.updated', %s, ARRAY['city:1'])")
        first.cursor().execute(insert, ('{"n": 1}',))
        second.cursor().execute(insert, ('{"n": 2}',))  # while the first's NOTIFY is pending
        first.commit()
        assert relay.caught_up(1, timeout=5)
        second.commit()
        started = time.monotonic()
        assert relay.caught_up(2, timeout=5)
        assert time.monotonic() - started < 1
        assert [(data["n"], data["seq"]) for data in emitted] == [(1, 1), (2, 2)]
        listener.poll()
        assert len(listener.notifies) == 1  # the second writer sent none
    finally:
        relay.stop()
        for conn in (first, second, listener):
            conn.close()
