"""The outbox: every live event is a row written in the same transaction as the change it reports.

Delivery happens after commit (``gridmgr.live.relay``). A writer gives its row an ``id`` only;
a relay numbers committed rows (``seq``) in the order they became visible, and clients send
that number back as ``since`` to replay what they missed. Writers hold no lock of ours, so
they do not wait for one another's commits (PostgreSQL orders the commits that NOTIFY only
for the moment of committing), and a relay that has delivered ``seq`` N never sees N-1
appear afterwards.
"""

from __future__ import annotations

import contextlib
import json
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.extensions import db

# PostgreSQL NOTIFY channel raised by a trigger on every outbox insert.
NOTIFY_CHANNEL = "gridmgr_live"
# Transaction-level advisory lock of the numbering: relays of several processes number in turn.
OUTBOX_LOCK = 0x6C697665  # "live"
# Transaction-level advisory lock a writer takes to NOTIFY (migration 0015): while one writer's
# notification is on its way, the others send none (PostgreSQL commits notifying transactions
# one at a time), and the relays look again shortly after each wake-up (gridmgr.live.relay).
NOTIFY_LOCK = 0x6E6F7469  # "noti"
SEQUENCE_BATCH = 1000
# An outbox event for the relays, not for clients: a user's access changed (a token revoked,
# the account disabled, the password, role, scope or department changed). Each relay checks
# that user's connections to its own process again (gridmgr.live.channel). Its room
# ``access:{user_id}`` is one no client can join, so it is never emitted nor replayed.
ACCESS_EVENT = "access.changed"

# Numbers the committed, unnumbered rows in id order (run on an autocommit connection, then
# COMMIT). The lock is taken by its own statement first, so the UPDATE's snapshot includes every
# numbering committed before: rows numbered later get higher numbers, and readers
# (``seq > delivered``) see a number only once it is committed.
SEQUENCE_SQL = f"""
BEGIN;
SELECT pg_advisory_xact_lock({OUTBOX_LOCK});
WITH numbered AS MATERIALIZED (
    SELECT id, nextval('live_events_seq_seq') AS seq
    FROM (SELECT id FROM live_events WHERE seq IS NULL ORDER BY id LIMIT {SEQUENCE_BATCH}) pending
)
UPDATE live_events e SET seq = numbered.seq FROM numbered WHERE e.id = numbered.id
"""


class LiveEvent(db.Model):
    """One event of the live channel, addressed to one or more rooms."""

    __tablename__ = "live_events"

    __table_args__ = (
        # Rows are inserted unnumbered (NULL) and numbered after commit: only numbers are kept
        # (migration 0017), and every query on seq compares it.
        Index("ix_live_events_seq", "seq", unique=True, postgresql_where=text("seq IS NOT NULL")),
        Index("ix_live_events_unsequenced", "id", postgresql_where=text("seq IS NULL")),
        # Only the prune of old events reads it; rows come in time order (migration 0017).
        Index("ix_live_events_created_at", "created_at", postgresql_using="brin",
              postgresql_with={"autosummarize": "on"}),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSONB)
    rooms: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


def publish(event: str, payload: dict, rooms: list[str]) -> None:
    """Add an event to the current session's transaction; it is delivered after commit.

    The row is inserted when the session flushes (normally at commit).
    """
    if not rooms:
        return
    payload = json.loads(json.dumps(payload, default=_jsonable))
    db.session.add(LiveEvent(event=event, payload=payload, rooms=sorted(set(rooms))))


def announce_access_change(_sender: object, *, user_id: int, reason: str) -> None:
    """Tell every server process, after commit, to check ``user_id``'s live connections again
    (``gridmgr.people.operations.access_changed``)."""
    publish(ACCESS_EVENT, {"user_id": user_id, "reason": reason}, [f"access:{user_id}"])


def sequence_pending(cursor) -> None:
    """Number the committed rows that have no ``seq`` yet (``cursor`` of an autocommit
    connection), a batch at a time, until none is left."""
    while True:
        try:
            cursor.execute(SEQUENCE_SQL)
            numbered = cursor.rowcount
            cursor.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                cursor.execute("ROLLBACK")
            raise
        if numbered < SEQUENCE_BATCH:
            return


def _jsonable(value):
    """Dates as ISO 8601, decimals as numbers: what a payload built from a row may hold."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"live event payloads must be JSON; got {type(value).__name__}")
