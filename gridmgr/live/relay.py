"""Delivery after commit: each server process relays outbox rows to its own Socket.IO clients.

The relay holds one PostgreSQL connection that LISTENs on the outbox trigger's channel and also
polls every ``GRIDMGR_LIVE_POLL_SECONDS`` (a missed notification only delays an event). A
writer notifies only when no other writer's notification is on its way (migration 0015), so
after each wake-up that found events the relay looks again 10, 50 and 200 ms later. Woken, it
numbers the rows committed since (``gridmgr.live.outbox.sequence_pending``; relays of several
processes take turns), then emits every row with ``seq`` above the last one it delivered, in
order, to the rows' rooms on ``/live`` with ``ignore_queue=True``: every process reads the
outbox itself, so an event reaches each client exactly once whether or not Redis is up.
Connects take the relay's lock to replay what a client missed up to :attr:`Relay.delivered`, so
replay and live events neither overlap nor leave a gap. An ``access.changed`` row is not
emitted: the relay checks that user's connections again and closes those whose token or rooms
no longer hold (``gridmgr.live.channel.check_connections``).
"""

from __future__ import annotations

import logging
import select
import threading
import time

import psycopg2
from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from gridmgr.live.outbox import ACCESS_EVENT, NOTIFY_CHANNEL, sequence_pending

NAMESPACE = "/live"
BATCH = 500
# After a wake-up that found events, look again after these pauses (seconds) before waiting for
# the next notification: a writer whose transaction overlapped a notifying one sent none
# (``gridmgr.live.outbox.NOTIFY_LOCK``), and its rows may commit just after our read.
LOOK_AGAIN = (0.01, 0.05, 0.2)
log = logging.getLogger(__name__)


def event_data(seq: int, payload: dict) -> dict:
    """The data a client receives: the payload with the event's sequence number."""
    return {**payload, "seq": seq}


class Relay:
    """The outbox reader of one server process (start once; safe to call start again)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.delivered: int | None = None
        self.ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._dsn: str | None = None
        self._app: Flask | None = None
        self._poll = 1.0

    def start(self, app: Flask) -> None:
        """Start the background reader for ``app``'s database unless it already runs."""
        with self.lock:
            if self._thread is not None and self._thread.is_alive():
                return
            url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
            self._dsn = url.render_as_string(hide_password=False)
            self._poll = float(app.config["GRIDMGR_LIVE_POLL_SECONDS"])
            self._app = app
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="gridmgr-live-relay",
                                            daemon=True)
            self._thread.start()
        self.ready.wait(timeout=10)

    def caught_up(self, seq: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until this relay has delivered ``seq``."""
        end = time.monotonic() + timeout
        while (self.delivered or 0) < seq:
            if time.monotonic() >= end:
                return False
            time.sleep(0.005)
        return True

    def stop(self) -> None:
        """Ask the reader to stop after its current wait."""
        self._stop.set()

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._listen()
                backoff = 0.5
            except psycopg2.Error as error:
                log.warning("live relay lost the database (%s); retrying in %.1f s", error,
                            backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _listen(self) -> None:
        conn = psycopg2.connect(self._dsn, application_name="gridmgr-live-relay")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f"LISTEN {NOTIFY_CHANNEL}")
                if self.delivered is None:
                    # What was written before this process relayed anything is history: it is
                    # numbered (replayable with ``since``), not pushed to today's clients.
                    sequence_pending(cur)
                    cur.execute("SELECT coalesce(max(seq), 0) FROM live_events")
                    self.delivered = cur.fetchone()[0]
            self.ready.set()
            pauses = iter(())
            while not self._stop.is_set():
                conn.notifies.clear()
                if self._drain(conn):
                    pauses = iter(LOOK_AGAIN)
                if conn.notifies:
                    # A commit notified while we drained: psycopg2 read its notice with our
                    # queries' results, so the socket is quiet and select() would sleep for
                    # the whole poll interval. Its row may be newer than what we read: again.
                    continue
                if select.select([conn], [], [], next(pauses, self._poll))[0]:
                    conn.poll()
        finally:
            conn.close()

    def _drain(self, conn) -> bool:
        """Number what has committed since, then emit every row after ``delivered``, in
        sequence order; whether there was any."""
        with conn.cursor() as cur:
            sequence_pending(cur)
        emitted = False
        while True:
            with conn.cursor() as cur:
                cur.execute("SELECT seq, event, payload, rooms FROM live_events WHERE seq > %s "
                            "ORDER BY seq LIMIT %s", (self.delivered, BATCH))
                rows = cur.fetchall()
            if not rows:
                return emitted
            with self.lock:
                for seq, event, payload, rooms in rows:
                    if event == ACCESS_EVENT:
                        self._check_connections(payload["user_id"])
                    else:
                        _emit(event, event_data(seq, payload), rooms)
                    self.delivered = seq
            emitted = True
            if len(rows) < BATCH:
                return emitted


    def _check_connections(self, user_id: int) -> None:
        from gridmgr.live.channel import check_connections

        try:
            with self._app.app_context():
                check_connections(user_id)
        except DBAPIError as error:
            # As for the relay's own queries: reconnect and handle this row again.
            raise error.orig from error
        except Exception:
            # One user's check must not stop the delivery of everyone's events.
            log.exception("live relay could not check the connections of user %s", user_id)


def _emit(event: str, data: dict, to) -> None:
    from gridmgr.extensions import socketio

    socketio.emit(event, data, to=to, namespace=NAMESPACE, ignore_queue=True)


relay = Relay()
